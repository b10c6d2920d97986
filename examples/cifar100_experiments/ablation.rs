//! The `ablation` stage: the same student trained with each method over several seeds.
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

use burn_distill::{FeatureTarget, ScreeningRule, Teacher};
use serde::{Deserialize, Serialize};

use crate::args::WeightingChoice;
use crate::distill::{Plan, distill};
use crate::training::{Context, ModelReport, train_classifier, write_json};

/// One row of the comparison: an entry of the grid file (`grid.json` beside this file, or
/// `--grid`); every field but the first four may be left out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Method {
    name: String,
    weighting: WeightingChoice,
    soft: bool,
    features: bool,
    /// Trained as a plain classifier instead of by the distiller (reference row).
    #[serde(default)]
    plain: bool,
    /// The soft term against the teachers' weighted mixture.
    #[serde(default)]
    mixture: bool,
    /// Logit standardization of the soft term.
    #[serde(default)]
    standardize: bool,
    /// A screening rule of its own (`{"RelativeToBest": 1.5}`, `"KeepAll"`, ...).
    #[serde(default)]
    screening: Option<ScreeningRule>,
    /// What the feature term compares with (`"Mixture"`, `"Closest"`; default the
    /// per-teacher term).
    #[serde(default = "crate::distill::per_teacher")]
    feature_target: FeatureTarget,
}

/// The bundled grid: every row of docs/RESULTS.md's tables.
const GRID: &str = include_str!("grid.json");

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
    /// Per seed: this method's accuracy minus AVER's with the same feature setting.
    minus_aver: Vec<f64>,
    /// Per seed: this method's accuracy minus single-best KD's.
    minus_single_best: Vec<f64>,
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

/// The row that is the library's default method (screened per batch, features, logit
/// standardization).
const DEFAULT_ROW: &str = "screened, per batch, standardized + features";

/// Two-sided 95 % quantiles of Student's t for 1..=30 degrees of freedom (the standard table,
/// e.g. NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.6.7.2).
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The paired 95 % t-interval of the mean of `d` (per-seed differences), in points:
/// `mean ± t(0.975, n-1) · sd / √n` (beyond 30 degrees of freedom, the 30's quantile:
/// slightly wide). None with fewer than two values.
pub fn t_interval(d: &[f64]) -> Option<(f64, f64)> {
    if d.len() < 2 {
        return None;
    }
    let (mean, sd) = mean_std(d);
    let t = T95[(d.len() - 2).min(T95.len() - 1)];
    let half = t * sd / (d.len() as f64).sqrt();
    Some((mean - half, mean + half))
}

pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// The rows of `--grid` (a JSON list of [`Method`]s), else of the bundled grid.
fn methods(grid: Option<&std::path::Path>) -> Result<Vec<Method>, String> {
    let (text, source) = match grid {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the grid {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        None => (GRID.to_string(), "the bundled grid.json".to_string()),
    };
    let methods: Vec<Method> =
        serde_json::from_str(&text).map_err(|e| format!("{source}: not a grid of rows: {e}"))?;
    let mut names = std::collections::HashSet::new();
    for m in &methods {
        if !names.insert(slug(&m.name)) {
            return Err(format!(
                "{source}: two rows named '{}' (or with the same folder name)",
                m.name
            ));
        }
    }
    Ok(methods)
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn one_run(
    ctx: &Context,
    teachers: &[Arc<dyn Teacher>],
    method: &Method,
    seed: u64,
) -> Result<RunResult, String> {
    let config = ctx.config;
    let dir = ctx
        .cli
        .out
        .join("ablation")
        .join(format!("{}-seed{seed}", slug(&method.name)));
    let result_path = dir.join("result.json");
    if ctx.cli.resume
        && let Ok(text) = std::fs::read_to_string(&result_path)
        && let Ok(result) = serde_json::from_str::<RunResult>(&text)
    {
        println!(
            "{} (seed {seed}): finished earlier, reusing {}",
            method.name,
            result_path.display()
        );
        return Ok(result);
    }
    println!("\n== {} (seed {seed}) ==", method.name);
    let started = Instant::now();
    let (accuracy, keep_rate, mean_weight) = if method.plain {
        // Seeded like the distilled rows: the same initial student.
        ctx.device.seed(seed);
        let student = ctx.net(config.student, config.student_width)?;
        let student = train_classifier(ctx, student, &dir, config.epochs, seed)?;
        (ctx.accuracy(&student)?, Vec::new(), Vec::new())
    } else {
        let plan = Plan {
            name: method.name.clone(),
            weighting: method.weighting,
            soft_weight: if method.soft { 1.0 } else { 0.0 },
            feature_weight: if method.features {
                config.feature_weight
            } else {
                0.0
            },
            seed,
            dir: dir.clone(),
            mixture: method.mixture,
            standardize: method.standardize,
            screening: method.screening.clone(),
            feature_target: method.feature_target,
        };
        let (student, history) = distill(ctx, teachers, &plan)?;
        let last = history.last().ok_or("no epoch was run")?;
        let accuracy = ctx.accuracy(&student)?;
        // Telemetry only where the teachers had a say and every teacher took part.
        if (method.soft || method.features) && last.keep_rate.len() == teachers.len() {
            (accuracy, last.keep_rate.clone(), last.mean_weight.clone())
        } else {
            (accuracy, Vec::new(), Vec::new())
        }
    };
    let result = RunResult {
        accuracy,
        keep_rate,
        mean_weight,
        seconds: started.elapsed().as_secs_f64(),
    };
    println!(
        "{} (seed {seed}): {} accuracy {:.2}%",
        method.name,
        config.eval_split(),
        100.0 * result.accuracy
    );
    write_json(&result_path, &result)?;
    Ok(result)
}

pub fn run(
    ctx: &Context,
    teachers: &[Arc<dyn Teacher>],
    reports: &[ModelReport],
) -> Result<(), String> {
    let seeds: Vec<u64> = (0..ctx.cli.seeds as u64)
        .map(|i| ctx.config.seed + i)
        .collect();
    let started = Instant::now();
    let only = &ctx.cli.only;
    let methods: Vec<Method> = methods(ctx.cli.grid.as_deref())?
        .into_iter()
        .filter(|m| only.is_empty() || only.iter().any(|o| m.name.contains(o.as_str())))
        .collect();
    if methods.is_empty() {
        return Err(format!("--only {only:?} matches no ablation row"));
    }
    let skip = &ctx.cli.skip;
    let methods: Vec<Method> = methods
        .into_iter()
        .filter(|m| !skip.iter().any(|o| m.name.contains(o.as_str())))
        .collect();
    if methods.is_empty() {
        return Err(format!("--skip {skip:?} leaves no ablation row"));
    }
    // The feature mixture needs every teacher's maps to agree in shape (one adapter).
    let specs: Vec<_> = teachers.iter().map(|t| t.feature_specs()).collect();
    let same_maps = specs.windows(2).all(|w| w[0] == w[1]);
    let methods: Vec<Method> = methods
        .into_iter()
        .filter(|m| {
            let keep = m.feature_target != FeatureTarget::Mixture || same_maps;
            if !keep {
                println!(
                    "left out '{}': the teachers' feature maps differ ({specs:?})",
                    m.name
                );
            }
            keep
        })
        .collect();
    if methods.is_empty() {
        return Err("no ablation row is left for these teachers".into());
    }
    let mut runs: Vec<Vec<RunResult>> = Vec::new();
    for method in &methods {
        let per_seed = seeds
            .iter()
            .map(|&seed| one_run(ctx, teachers, method, seed))
            .collect::<Result<_, _>>()?;
        runs.push(per_seed);
        // The table so far, after every method: a long run that stops still leaves results.
        write_report(ctx, reports, &methods, &runs, &seeds, started)?;
    }
    Ok(())
}

fn write_report(
    ctx: &Context,
    reports: &[ModelReport],
    methods: &[Method],
    runs: &[Vec<RunResult>],
    seeds: &[u64],
    started: Instant,
) -> Result<(), String> {
    let accuracies = |i: usize| -> Vec<f64> { runs[i].iter().map(|r| r.accuracy).collect() };
    let find = |name: &str| {
        methods
            .iter()
            .position(|m| m.name == name)
            .filter(|i| *i < runs.len())
    };
    let single_best = find("KD, single best teacher").map(accuracies);
    let default = find(DEFAULT_ROW).map(accuracies);
    let aver_logits = find("AVER, logits").map(accuracies);
    let aver_features = find("AVER + features").map(accuracies);
    let minus = |a: &[f64], b: &Option<Vec<f64>>| -> Vec<f64> {
        match b {
            Some(b) => a.iter().zip(b).map(|(x, y)| x - y).collect(),
            None => Vec::new(),
        }
    };
    let k = reports.len();
    let results: Vec<MethodResult> = runs
        .iter()
        .enumerate()
        .map(|(i, per_seed)| {
            let acc = accuracies(i);
            let (mean, std) = mean_std(&acc);
            let average = |get: fn(&RunResult) -> &Vec<f64>| -> Vec<f64> {
                let with: Vec<&Vec<f64>> =
                    per_seed.iter().map(get).filter(|v| v.len() == k).collect();
                (0..k)
                    .map(|t| with.iter().map(|v| v[t]).sum::<f64>() / with.len().max(1) as f64)
                    .collect()
            };
            let aver = if methods[i].features {
                &aver_features
            } else {
                &aver_logits
            };
            MethodResult {
                method: methods[i].name.clone(),
                minus_aver: minus(&acc, aver),
                minus_single_best: minus(&acc, &single_best),
                default_minus: default.as_ref().map_or(Vec::new(), |d| {
                    d.iter().zip(&acc).map(|(x, y)| x - y).collect()
                }),
                accuracies: acc,
                mean,
                std,
                keep_rate: average(|r| &r.keep_rate),
                mean_weight: average(|r| &r.mean_weight),
                seconds_per_run: per_seed.iter().map(|r| r.seconds).sum::<f64>()
                    / per_seed.len().max(1) as f64,
            }
        })
        .collect();
    let ablation = Ablation {
        config: ctx.config,
        seeds: seeds.to_vec(),
        train_images: ctx.train.labels.len(),
        eval_images: ctx.eval.labels.len(),
        eval_split: ctx.config.eval_split(),
        teachers: reports,
        methods: results,
        wall_seconds: started.elapsed().as_secs_f64(),
        run_seconds: runs.iter().flatten().map(|r| r.seconds).sum(),
    };
    let markdown = markdown(&ablation);
    let out = &ctx.cli.out;
    std::fs::write(out.join("ablation.md"), &markdown)
        .map_err(|e| format!("cannot write ablation.md: {e}"))?;
    write_json(&out.join("ablation.json"), &ablation)?;
    let bars: Vec<(String, f64, f64)> = ablation
        .methods
        .iter()
        .map(|m| (m.method.clone(), 100.0 * m.mean, 100.0 * m.std))
        .collect();
    crate::plot::bars(
        &out.join("ablation.png"),
        &format!(
            "{} accuracy per method, mean ± std over {} seeds",
            ablation.eval_split,
            ablation.seeds.len()
        ),
        &bars,
    )?;
    if runs.len() == methods.len() {
        println!("\n{markdown}");
        println!(
            "wrote {}, {} and {}",
            out.join("ablation.md").display(),
            out.join("ablation.json").display(),
            out.join("ablation.png").display()
        );
    }
    Ok(())
}

fn markdown(a: &Ablation) -> String {
    let c = a.config;
    let split = a.eval_split;
    let mut s = String::new();
    let lower = |value: &dyn std::fmt::Debug| format!("{value:?}").to_lowercase();
    let (student, dataset, screening) = (lower(&c.student), lower(&c.dataset), lower(&c.screening));
    s += &format!(
        "Student {} (width {}; teachers width {}, {} epochs unless marked -eN) on {} ({} training \
         images, {} {split} images), {} student epochs, batch {}, seeds {:?}; T = {}, hard 1 / \
         soft 1 / feature {}{}; feature term off for {} epoch(s), then ramped over {} epoch(s); \
         screening {}, tau {}.\n\n",
        student,
        c.student_width,
        c.width,
        c.teacher_epochs,
        dataset,
        a.train_images,
        a.eval_images,
        c.epochs,
        c.batch_size,
        a.seeds,
        c.temperature,
        c.feature_weight,
        if c.feature_norm == burn_distill::FeatureNorm::TeacherMeanSquare {
            ", feature MSE divided by the teacher map's mean square"
        } else {
            ", plain feature MSE"
        },
        c.feature_delay_epochs,
        c.feature_ramp_epochs,
        screening,
        c.tau,
    );
    s += &format!("| teacher | parameters | {split} accuracy |\n|---|---:|---:|\n");
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
        "\n| method | {split} accuracy (mean ± std) | per seed | Δ vs AVER (paired) | Δ vs single-best KD (paired) | default − this (paired 95 % t-interval) | keep rate per teacher ({}) | mean weight per teacher | time per run |\n|---|---:|---|---:|---:|---:|---|---|---:|\n",
        names.join(", ")
    );
    let paired = |d: &[f64]| {
        if d.is_empty() {
            "–".to_string()
        } else {
            let (m, sd) = mean_std(d);
            format!("{:+.2} ± {:.2}", 100.0 * m, 100.0 * sd)
        }
    };
    for m in &a.methods {
        let fmt = |v: &[f64]| {
            if v.iter().all(|x| *x == 0.0) {
                "–".to_string()
            } else {
                v.iter()
                    .map(|x| format!("{x:.2}"))
                    .collect::<Vec<_>>()
                    .join(" / ")
            }
        };
        s += &format!(
            "| {} | {:.2}% ± {:.2} | {} | {} | {} | {} | {} | {} | {:.0} s |\n",
            m.method,
            100.0 * m.mean,
            100.0 * m.std,
            m.accuracies
                .iter()
                .map(|x| format!("{:.2}", 100.0 * x))
                .collect::<Vec<_>>()
                .join(", "),
            paired(&m.minus_aver),
            paired(&m.minus_single_best),
            if m.method == DEFAULT_ROW {
                "–".to_string()
            } else {
                t_interval(&m.default_minus).map_or("–".to_string(), |(lo, hi)| {
                    format!("[{:+.2}, {:+.2}]", 100.0 * lo, 100.0 * hi)
                })
            },
            fmt(&m.keep_rate),
            fmt(&m.mean_weight),
            m.seconds_per_run
        );
    }
    s += &format!(
        "\nStudent runs: {:.1} min in all (this invocation: {:.1} min wall time).\n",
        a.run_seconds / 60.0,
        a.wall_seconds / 60.0
    );
    s
}
