//! The `ablation` stage: the same student trained with each method of the grid over several
//! seeds. Every row is one `run_method` call: the same initialisation (the student is built
//! right after seeding the device), data order and augmentation (seeded by the run's seed),
//! burn-train loop, optimiser, schedule and evaluation; rows differ only in their distiller.

use std::sync::Arc;
use std::time::Instant;

use burn_distill::charts::{Bar, bar_chart};
use burn_distill::experiment::{Method, MethodSummary, SeedRun, markdown_table, summarize};
use burn_distill::files::save_json;
use burn_distill::{FeatureTarget, Teacher};
use serde::Serialize;

use crate::Res;
use crate::distill::{base, run_method};
use crate::training::{Context, ModelReport};

#[derive(Debug, Serialize)]
struct Ablation<'a> {
    config: &'a crate::args::RunConfig,
    seeds: Vec<u64>,
    train_images: usize,
    eval_images: usize,
    eval_split: &'static str,
    teachers: &'a [ModelReport],
    methods: Vec<MethodSummary>,
    wall_seconds: f64,
    /// The runs' own times summed (with `--resume`, including runs of earlier invocations).
    run_seconds: f64,
}

/// The grid's rows after `--only` and `--skip`, less the feature-mixture rows when the
/// teachers' maps differ (one adapter needs maps of one shape).
fn methods(ctx: &Context, teachers: &[Arc<dyn Teacher>], grid: &[Method]) -> Res<Vec<Method>> {
    let (only, skip) = (&ctx.cli.only, &ctx.cli.skip);
    let named = |m: &Method, list: &[String]| list.iter().any(|o| m.name.contains(o.as_str()));
    let methods: Vec<_> = grid
        .iter()
        .filter(|m| only.is_empty() || named(m, only))
        .collect();
    if methods.is_empty() {
        return Err(format!("--only {only:?} matches no ablation row").into());
    }
    let methods: Vec<_> = methods.into_iter().filter(|m| !named(m, skip)).collect();
    if methods.is_empty() {
        return Err(format!("--skip {skip:?} leaves no ablation row").into());
    }
    let specs: Vec<_> = teachers.iter().map(|t| t.feature_specs()).collect();
    let same_maps = specs.windows(2).all(|w| w[0] == w[1]);
    let mut kept = Vec::new();
    for m in methods {
        let target = m.distiller(&base(ctx.config, 1))?.loss.feature_target;
        let mixture = target == FeatureTarget::Mixture;
        match mixture && !same_maps {
            true => println!(
                "left out '{}': the teachers' feature maps differ ({specs:?})",
                m.name
            ),
            false => kept.push(m.clone()),
        }
    }
    Ok(kept)
}

fn one_run(
    ctx: &Context,
    teachers: &[Arc<dyn Teacher>],
    method: &Method,
    seed: u64,
) -> Res<SeedRun> {
    let name = &method.name;
    let dir = ctx
        .cli
        .out
        .join("ablation")
        .join(format!("{}-seed{seed}", method.slug()));
    if let Some(result) = SeedRun::load(&dir).filter(|_| ctx.cli.resume) {
        println!(
            "{name} (seed {seed}): finished earlier, reusing {}",
            dir.join("result.json").display()
        );
        return Ok(result);
    }
    println!("\n== {name} (seed {seed}) ==");
    let started = Instant::now();
    let (accuracy, history) = run_method(ctx, teachers, method, seed, &dir)?;
    // Telemetry only where every teacher took part.
    let last = history
        .last()
        .filter(|l| l.keep_rate.len() == teachers.len());
    let result = SeedRun {
        accuracy,
        keep_rate: last.map(|l| l.keep_rate.clone()).unwrap_or_default(),
        mean_weight: last.map(|l| l.mean_weight.clone()).unwrap_or_default(),
        seconds: started.elapsed().as_secs_f64(),
    };
    let split = ctx.config.eval_split();
    println!(
        "{name} (seed {seed}): {split} accuracy {:.2}%",
        100.0 * accuracy
    );
    result.save(&dir)?;
    Ok(result)
}

pub fn run(
    ctx: &Context,
    teachers: &[Arc<dyn Teacher>],
    reports: &[ModelReport],
    grid: &[Method],
) -> Res<()> {
    let seeds: Vec<u64> = (0..ctx.cli.seeds as u64)
        .map(|i| ctx.config.seed + i)
        .collect();
    let (started, methods) = (Instant::now(), methods(ctx, teachers, grid)?);
    let mut runs: Vec<Vec<SeedRun>> = Vec::new();
    for method in &methods {
        let per_seed = seeds
            .iter()
            .map(|&seed| one_run(ctx, teachers, method, seed));
        runs.push(per_seed.collect::<Res<_>>()?);
        // The table so far, after every method: a long run that stops still leaves results.
        let ablation = Ablation {
            config: ctx.config,
            seeds: seeds.clone(),
            train_images: ctx.train.labels.len(),
            eval_images: ctx.eval.labels.len(),
            eval_split: ctx.config.eval_split(),
            teachers: reports,
            methods: summarize(&methods, &runs, reports.len()),
            wall_seconds: started.elapsed().as_secs_f64(),
            run_seconds: runs.iter().flatten().map(|r| r.seconds).sum(),
        };
        write_report(ctx, &ablation, runs.len() == methods.len())?;
    }
    Ok(())
}

fn write_report(ctx: &Context, ablation: &Ablation, finished: bool) -> Res<()> {
    let (markdown, out) = (markdown(ablation)?, &ctx.cli.out);
    let written = std::fs::write(out.join("ablation.md"), &markdown);
    written.map_err(|e| format!("cannot write ablation.md: {e}"))?;
    save_json(out.join("ablation.json"), ablation)?;
    let bar = |m: &MethodSummary| Bar::new(&m.method, 100.0 * m.mean, 100.0 * m.std);
    let bars: Vec<Bar> = ablation.methods.iter().map(bar).collect();
    let (split, seeds) = (ablation.eval_split, ablation.seeds.len());
    let title = format!("{split} accuracy per method, mean ± std over {seeds} seeds");
    bar_chart(out.join("ablation.png"), &title, &bars)?;
    if finished {
        println!(
            "\n{markdown}\nwrote ablation.md, ablation.json and ablation.png in {}",
            out.display()
        );
    }
    Ok(())
}

fn markdown(a: &Ablation) -> Res<String> {
    let (c, split) = (a.config, a.eval_split);
    let mut s = format!(
        "Student {} on {} training and {} {split} images, seeds {:?}; every row is the library's default \
         distiller with the grid's changes, over these settings: `{}`.\n\n\
         | teacher | parameters | {split} accuracy |\n|---|---:|---:|\n",
        c.student,
        a.train_images,
        a.eval_images,
        a.seeds,
        serde_json::to_string(c)?
    );
    for t in a.teachers {
        s += &format!(
            "| {} | {} | {:.2}% |\n",
            t.name,
            t.params,
            100.0 * t.test_accuracy
        );
    }
    let names: Vec<&str> = a.teachers.iter().map(|t| t.name.as_str()).collect();
    let (runs, wall) = (a.run_seconds / 60.0, a.wall_seconds / 60.0);
    Ok(s + &format!(
        "\n{}\nStudent runs: {runs:.1} min in all (this invocation: {wall:.1} min wall time).\n",
        markdown_table(&a.methods, split, &names)
    ))
}
