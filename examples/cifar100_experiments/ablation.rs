//! The `ablation` stage: the same student trained with each method of the grid over several
//! seeds. Every row is one `run_method` call: the same initialisation (the student is built
//! right after seeding the device), data order and augmentation (seeded by the run's seed),
//! burn-train loop, optimiser, schedule and evaluation; rows differ only in their distiller.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use burn_distill::charts::{Bar, bar_chart};
use burn_distill::experiment::{
    Method, MethodSummary, ModelReport, SeedRun, markdown_table, run_grid, select, summarize,
};
use burn_distill::files::save_json;
use burn_distill::{FeatureTarget, Teacher};
use serde::Serialize;

use crate::Res;
use crate::distill::{base, run_method};
use crate::training::Context;

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
    let specs: Vec<_> = teachers.iter().map(|t| t.feature_specs()).collect();
    let same_maps = specs.windows(2).all(|w| w[0] == w[1]);
    let mut kept = Vec::new();
    for m in select(grid, &ctx.cli.only, &ctx.cli.skip)? {
        let (target, name) = (
            m.distiller(&base(ctx.config, 1))?.loss.feature_target,
            &m.name,
        );
        match target == FeatureTarget::Mixture && !same_maps {
            true => println!("left out '{name}': the teachers' feature maps differ ({specs:?})"),
            false => kept.push(m),
        }
    }
    Ok(kept)
}

/// One cell: the run's accuracy, and each teacher's keep rate and mean weight in its last
/// epoch where every teacher took part.
fn one_run(
    ctx: &Context,
    teachers: &[Arc<dyn Teacher>],
    method: &Method,
    seed: u64,
    dir: &Path,
) -> Res<SeedRun> {
    let (accuracy, history) = run_method(ctx, teachers, method, seed, dir)?;
    let split = ctx.config.eval_split();
    let (name, percent) = (&method.name, 100.0 * accuracy);
    println!("{name} (seed {seed}): {split} accuracy {percent:.2}%");
    let last = history
        .last()
        .filter(|l| l.keep_rate.len() == teachers.len());
    Ok(SeedRun {
        accuracy,
        keep_rate: last.map(|l| l.keep_rate.clone()).unwrap_or_default(),
        mean_weight: last.map(|l| l.mean_weight.clone()).unwrap_or_default(),
        seconds: 0.0,
    })
}

pub fn run(
    ctx: &Context,
    teachers: &[Arc<dyn Teacher>],
    reports: &[ModelReport],
    grid: &[Method],
) -> Res<()> {
    let seeds: Vec<u64> = (ctx.config.seed..).take(ctx.cli.seeds).collect();
    let (started, methods) = (Instant::now(), methods(ctx, teachers, grid)?);
    let dir = ctx.cli.out.join("ablation");
    let cell = |method: &Method, seed, dir: &Path| one_run(ctx, teachers, method, seed, dir);
    // The table so far, after every method: a long run that stops still leaves results.
    let table = |runs: &[Vec<SeedRun>]| {
        let ablation = Ablation {
            config: ctx.config,
            seeds: seeds.clone(),
            train_images: ctx.train.labels.len(),
            eval_images: ctx.eval.labels.len(),
            eval_split: ctx.config.eval_split(),
            teachers: reports,
            methods: summarize(&methods, runs, reports.len()),
            wall_seconds: started.elapsed().as_secs_f64(),
            run_seconds: runs.iter().flatten().map(|r| r.seconds).sum(),
        };
        write_report(ctx, &ablation, runs.len() == methods.len())
    };
    run_grid(&methods, &seeds, dir, ctx.cli.resume, cell, table)?;
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
        let out = out.display();
        println!("\n{markdown}\nwrote ablation.md, ablation.json and ablation.png in {out}");
    }
    Ok(())
}

fn markdown(a: &Ablation) -> Res<String> {
    let (c, split, settings) = (a.config, a.eval_split, serde_json::to_string(a.config)?);
    let (runs, wall) = (a.run_seconds / 60.0, a.wall_seconds / 60.0);
    let names: Vec<&str> = a.teachers.iter().map(|t| t.name.as_str()).collect();
    Ok(format!(
        "Student {} on {} training and {} {split} images, seeds {:?}; every row is the library's default \
         distiller with the grid's changes, over these settings: `{settings}`.\n\nThe teachers:\n\n{}\n{}\n\
         Student runs: {runs:.1} min in all (this invocation: {wall:.1} min wall time).\n",
        c.student,
        a.train_images,
        a.eval_images,
        a.seeds,
        ModelReport::markdown(a.teachers, None, split),
        markdown_table(&a.methods, split, &names)
    ))
}
