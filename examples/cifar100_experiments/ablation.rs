//! The `ablation` stage: the same student trained with each method of the grid over several
//! seeds.
//!
//! Every distilled row is one `distill::distill` call: the same initialisation (the student
//! is built right after seeding the device), the same data order and augmentation (seeded
//! by the run's seed), the same burn-train loop, optimiser, schedule and evaluation. Rows
//! differ only in the loss: the student alone is the distiller with soft and feature weight 0
//! (its teachers run but have no say). One extra row trains the student as a plain
//! classifier in the same loop, to measure how far the two ways of minimising the same loss
//! drift.

use std::sync::Arc;
use std::time::Instant;

use burn_distill::stats::{mean_std, paired_t_interval};
use burn_distill::{FeatureTarget, Teacher};
use serde::{Deserialize, Serialize};

use crate::Res;
use crate::distill::{Method, run_method};
use crate::training::{Context, ModelReport, write_json};

/// The bundled grid: every row of docs/RESULTS.md's tables.
const GRID: &str = include_str!("grid.json");

/// The row that is the library's default method.
const DEFAULT_ROW: &str = "screened, per batch, standardized + features";

/// What one (method, seed) run produced; saved next to its logs so that `--resume` skips
/// finished runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunResult {
    accuracy: f64,
    keep_rate: Vec<f64>,
    mean_weight: Vec<f64>,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct MethodResult {
    method: String,
    accuracies: Vec<f64>,
    mean: f64,
    std: f64,
    /// Per seed: the library default's accuracy minus this method's.
    default_minus: Vec<f64>,
    /// Mean over seeds of the last epoch's per-teacher keep rate and mean weight.
    keep_rate: Vec<f64>,
    mean_weight: Vec<f64>,
    seconds_per_run: f64,
}

#[derive(Debug, Serialize)]
struct Ablation<'a> {
    config: &'a crate::args::RunConfig,
    seeds: Vec<u64>,
    train_images: usize,
    eval_images: usize,
    eval_split: &'static str,
    teachers: &'a [ModelReport],
    methods: Vec<MethodResult>,
    wall_seconds: f64,
    /// The runs' own times summed (with `--resume`, including runs of earlier invocations).
    run_seconds: f64,
}

/// The rows of `--grid` (a JSON list of [`Method`]s), else of the bundled grid, after
/// `--only` and `--skip`, less the feature-mixture rows when the teachers' maps differ.
fn methods(ctx: &Context, teachers: &[Arc<dyn Teacher>]) -> Res<Vec<Method>> {
    let (text, source) = match &ctx.cli.grid {
        Some(path) => {
            let text = std::fs::read_to_string(path);
            let text = text.map_err(|e| format!("cannot read the grid {}: {e}", path.display()))?;
            (text, path.display().to_string())
        }
        None => (GRID.to_string(), "the bundled grid.json".to_string()),
    };
    let methods: Vec<Method> =
        serde_json::from_str(&text).map_err(|e| format!("{source}: not a grid of rows: {e}"))?;
    let mut names = std::collections::HashSet::new();
    if let Some(m) = methods.iter().find(|m| !names.insert(slug(&m.name))) {
        let name = &m.name;
        return Err(
            format!("{source}: two rows named '{name}' (or with the same folder name)").into(),
        );
    }
    let (only, skip) = (&ctx.cli.only, &ctx.cli.skip);
    let named = |m: &Method, list: &[String]| list.iter().any(|o| m.name.contains(o.as_str()));
    let methods: Vec<_> = methods
        .into_iter()
        .filter(|m| only.is_empty() || named(m, only))
        .collect();
    if methods.is_empty() {
        return Err(format!("--only {only:?} matches no ablation row").into());
    }
    let methods: Vec<_> = methods.into_iter().filter(|m| !named(m, skip)).collect();
    if methods.is_empty() {
        return Err(format!("--skip {skip:?} leaves no ablation row").into());
    }
    // The feature mixture needs every teacher's maps to agree in shape (one adapter).
    let specs: Vec<_> = teachers.iter().map(|t| t.feature_specs()).collect();
    let same_maps = specs.windows(2).all(|w| w[0] == w[1]);
    let (kept, left): (Vec<Method>, Vec<Method>) = methods
        .into_iter()
        .partition(|m| m.feature_target != FeatureTarget::Mixture || same_maps);
    for m in left {
        println!(
            "left out '{}': the teachers' feature maps differ ({specs:?})",
            m.name
        );
    }
    if kept.is_empty() {
        return Err("no ablation row is left for these teachers".into());
    }
    Ok(kept)
}

fn slug(name: &str) -> String {
    let dash = |c: char| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        }
    };
    name.chars().map(dash).collect()
}

fn one_run(
    ctx: &Context,
    teachers: &[Arc<dyn Teacher>],
    method: &Method,
    seed: u64,
) -> Res<RunResult> {
    let (config, name) = (ctx.config, &method.name);
    let dir = ctx
        .cli
        .out
        .join("ablation")
        .join(format!("{}-seed{seed}", slug(name)));
    let result_path = dir.join("result.json");
    let saved = std::fs::read_to_string(&result_path).unwrap_or_default();
    if let (true, Ok(result)) = (ctx.cli.resume, serde_json::from_str::<RunResult>(&saved)) {
        println!(
            "{name} (seed {seed}): finished earlier, reusing {}",
            result_path.display()
        );
        return Ok(result);
    }
    println!("\n== {name} (seed {seed}) ==");
    let started = Instant::now();
    let (accuracy, history) = run_method(ctx, teachers, method, seed, &dir)?;
    // Telemetry only where the teachers had a say and every teacher took part.
    let last = history
        .last()
        .filter(|l| (method.soft || method.features) && l.keep_rate.len() == teachers.len());
    let (keep_rate, mean_weight) = last.map_or_else(Default::default, |l| {
        (l.keep_rate.clone(), l.mean_weight.clone())
    });
    let seconds = started.elapsed().as_secs_f64();
    let result = RunResult {
        accuracy,
        keep_rate,
        mean_weight,
        seconds,
    };
    println!(
        "{name} (seed {seed}): {} accuracy {:.2}%",
        config.eval_split(),
        100.0 * accuracy
    );
    write_json(&result_path, &result)?;
    Ok(result)
}

pub fn run(ctx: &Context, teachers: &[Arc<dyn Teacher>], reports: &[ModelReport]) -> Res<()> {
    let seeds: Vec<u64> = (0..ctx.cli.seeds as u64)
        .map(|i| ctx.config.seed + i)
        .collect();
    let started = Instant::now();
    let methods = methods(ctx, teachers)?;
    let mut runs: Vec<Vec<RunResult>> = Vec::new();
    for method in &methods {
        let per_seed = seeds
            .iter()
            .map(|&seed| one_run(ctx, teachers, method, seed));
        runs.push(per_seed.collect::<Res<_>>()?);
        // The table so far, after every method: a long run that stops still leaves results.
        let ablation = summarize(ctx, reports, &methods, &runs, &seeds, started);
        write_report(ctx, &ablation, runs.len() == methods.len())?;
    }
    Ok(())
}

fn summarize<'a>(
    ctx: &'a Context,
    reports: &'a [ModelReport],
    methods: &[Method],
    runs: &[Vec<RunResult>],
    seeds: &[u64],
    started: Instant,
) -> Ablation<'a> {
    let accuracies = |i: usize| -> Vec<f64> { runs[i].iter().map(|r| r.accuracy).collect() };
    let default = methods
        .iter()
        .position(|m| m.name == DEFAULT_ROW)
        .filter(|i| *i < runs.len());
    let default = default.map(accuracies);
    let k = reports.len();
    let methods = runs.iter().enumerate().map(|(i, per_seed)| {
        let acc = accuracies(i);
        let (mean, std) = mean_std(&acc);
        let average = |get: fn(&RunResult) -> &Vec<f64>| -> Vec<f64> {
            let with: Vec<&Vec<f64>> = per_seed.iter().map(get).filter(|v| v.len() == k).collect();
            let n = with.len().max(1) as f64;
            (0..k)
                .map(|t| with.iter().map(|v| v[t]).sum::<f64>() / n)
                .collect()
        };
        let seconds =
            per_seed.iter().map(|r| r.seconds).sum::<f64>() / per_seed.len().max(1) as f64;
        MethodResult {
            method: methods[i].name.clone(),
            default_minus: default
                .iter()
                .flat_map(|d| d.iter().zip(&acc).map(|(x, y)| x - y))
                .collect(),
            accuracies: acc,
            mean,
            std,
            keep_rate: average(|r| &r.keep_rate),
            mean_weight: average(|r| &r.mean_weight),
            seconds_per_run: seconds,
        }
    });
    Ablation {
        config: ctx.config,
        seeds: seeds.to_vec(),
        train_images: ctx.train.labels.len(),
        eval_images: ctx.eval.labels.len(),
        eval_split: ctx.config.eval_split(),
        teachers: reports,
        methods: methods.collect(),
        wall_seconds: started.elapsed().as_secs_f64(),
        run_seconds: runs.iter().flatten().map(|r| r.seconds).sum(),
    }
}

fn write_report(ctx: &Context, ablation: &Ablation, finished: bool) -> Res<()> {
    let (markdown, out) = (markdown(ablation), &ctx.cli.out);
    let written = std::fs::write(out.join("ablation.md"), &markdown);
    written.map_err(|e| format!("cannot write ablation.md: {e}"))?;
    write_json(&out.join("ablation.json"), ablation)?;
    let bar = |m: &MethodResult| (m.method.clone(), 100.0 * m.mean, 100.0 * m.std);
    let bars: Vec<(String, f64, f64)> = ablation.methods.iter().map(bar).collect();
    let (split, seeds) = (ablation.eval_split, ablation.seeds.len());
    let title = format!("{split} accuracy per method, mean ± std over {seeds} seeds");
    crate::plot::bars(&out.join("ablation.png"), &title, &bars)?;
    if finished {
        println!(
            "\n{markdown}\nwrote ablation.md, ablation.json and ablation.png in {}",
            out.display()
        );
    }
    Ok(())
}

fn markdown(a: &Ablation) -> String {
    let (c, split) = (a.config, a.eval_split);
    let norm = match c.feature_norm {
        burn_distill::FeatureNorm::TeacherMeanSquare => {
            "feature MSE divided by the teacher map's mean square"
        }
        _ => "plain feature MSE",
    };
    let screening = format!("{:?}", c.screening).to_lowercase();
    let mut s = format!(
        "Student {} (width {}; teachers width {}, {} epochs unless marked -eN) on {} ({} training images, {} \
         {split} images), {} student epochs, batch {}, seeds {:?}; T = {}, hard 1 / soft 1 / feature {}, {norm}; \
         feature term off for {} epoch(s), then ramped over {} epoch(s); screening {screening}, tau {}.\n\n\
         | teacher | parameters | {split} accuracy |\n|---|---:|---:|\n",
        c.student,
        c.student_width(),
        c.width,
        c.teacher_epochs,
        c.dataset.name().replace('-', ""),
        a.train_images,
        a.eval_images,
        c.epochs,
        c.batch_size,
        a.seeds,
        c.temperature,
        c.feature_weight,
        c.feature_delay_epochs,
        c.feature_ramp_epochs,
        c.tau,
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
    s += &format!(
        "\n| method | {split} accuracy (mean ± std) | per seed | default − this (paired 95 % t-interval) | \
         keep rate per teacher ({}) | mean weight per teacher | time per run |\n|---|---:|---|---:|---|---|---:|\n",
        names.join(", ")
    );
    let list = |v: &[f64], scale: f64, sep: &str| {
        v.iter()
            .map(|x| format!("{:.2}", scale * x))
            .collect::<Vec<_>>()
            .join(sep)
    };
    let telemetry = |v: &[f64]| {
        if v.iter().all(|x| *x == 0.0) {
            "–".into()
        } else {
            list(v, 1.0, " / ")
        }
    };
    for m in &a.methods {
        let interval = match paired_t_interval(&m.default_minus) {
            Some((lo, hi)) if m.method != DEFAULT_ROW => {
                format!("[{:+.2}, {:+.2}]", 100.0 * lo, 100.0 * hi)
            }
            _ => "–".to_string(),
        };
        let (mean, std, per_seed) = (
            100.0 * m.mean,
            100.0 * m.std,
            list(&m.accuracies, 100.0, ", "),
        );
        let (keep, weight) = (telemetry(&m.keep_rate), telemetry(&m.mean_weight));
        let seconds = m.seconds_per_run;
        s += &format!(
            "| {} | {mean:.2}% ± {std:.2} | {per_seed} | {interval} | {keep} | {weight} | {seconds:.0} s |\n",
            m.method
        );
    }
    let (runs, wall) = (a.run_seconds / 60.0, a.wall_seconds / 60.0);
    s + &format!(
        "\nStudent runs: {runs:.1} min in all (this invocation: {wall:.1} min wall time).\n"
    )
}
