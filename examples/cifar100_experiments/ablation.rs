//! The `ablation` stage: the same student trained with each method over several seeds.
//!
//! Every row goes through one loop, `distill_student`: the same initialisation (the student
//! is built right after seeding the device), the same data order and augmentation (seeded
//! by the run's seed), the same optimiser, schedule and evaluation. Rows differ only in
//! the loss: the student alone is the distiller with soft and feature weight 0 (its teachers
//! run but have no say). One extra row trains the student with the plain cross-entropy
//! loop the teachers use, to measure how far two loops that minimise the same loss drift.

use std::sync::Arc;
use std::time::Instant;

use burn_distill::Teacher;
use burn_distill::models::{ResNetConfig, VggConfig};
use serde::{Deserialize, Serialize};

use crate::training::{
    Context, ModelReport, Plan, accuracy, distill_student, train_classifier, write_atomic,
};
use crate::with_arch;

/// One row of the comparison.
struct Method {
    name: String,
    weighting: &'static str,
    per_batch: bool,
    soft: bool,
    features: bool,
    /// Trained by the plain cross-entropy loop instead of the distiller (reference row).
    plain_loop: bool,
}

impl Method {
    fn distilled(
        name: &str,
        weighting: &'static str,
        per_batch: bool,
        soft: bool,
        features: bool,
    ) -> Self {
        Self {
            name: name.into(),
            weighting,
            per_batch,
            soft,
            features,
            plain_loop: false,
        }
    }
}

/// What one (method, seed) run produced; saved next to its checkpoint so that `--resume`
/// skips finished runs.
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

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

fn methods() -> Vec<Method> {
    let mut methods = vec![
        Method::distilled(
            "student alone (distiller, soft 0, feature 0)",
            "average",
            false,
            false,
            false,
        ),
        Method {
            plain_loop: true,
            ..Method::distilled(
                "student alone (plain CE loop)",
                "average",
                false,
                false,
                false,
            )
        },
        Method::distilled("KD, single best teacher", "single-best", false, true, false),
        Method::distilled(
            "FitNets, single best teacher",
            "single-best",
            false,
            false,
            true,
        ),
    ];
    let weightings: [(&str, &'static str, bool); 5] = [
        ("AVER", "average", false),
        ("CA-MKD weights", "confidence", false),
        ("EBKD weights", "entropy", false),
        ("screened, per sample", "screened", false),
        ("screened, per batch", "screened", true),
    ];
    for features in [false, true] {
        for (name, weighting, per_batch) in weightings {
            let suffix = if features { " + features" } else { ", logits" };
            methods.push(Method::distilled(
                &format!("{name}{suffix}"),
                weighting,
                per_batch,
                true,
                features,
            ));
        }
    }
    methods
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
        .args
        .out
        .join("ablation")
        .join(format!("{}-seed{seed}", slug(&method.name)));
    let result_path = dir.join("result.json");
    if ctx.args.resume
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
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    println!("\n== {} (seed {seed}) ==", method.name);
    let started = Instant::now();
    // The student is the first thing built after seeding: the same initial weights for
    // every row of a seed.
    ctx.device.seed(seed);
    // Accuracy, and per-teacher keep rate and mean weight where the teachers had a say.
    let (accuracy, keep_rate, mean_weight) = if method.plain_loop {
        let accuracy = with_arch!(ctx, config.student.as_str(), config.student_width(), |m| {
            let label = format!("{} seed {seed}", method.name);
            let student = train_classifier(ctx, m, &label, config.epochs, seed)?;
            let student = burn::module::Module::valid(&student);
            accuracy(ctx, |x| {
                burn_distill::FeatureModel::forward_features(&student, x).logits
            })
        })?;
        (accuracy, Vec::new(), Vec::new())
    } else {
        let plan = Plan {
            name: method.name.clone(),
            weighting: method.weighting.to_string(),
            per_batch: method.per_batch,
            hard_weight: 1.0,
            soft_weight: if method.soft { 1.0 } else { 0.0 },
            feature_weight: if method.features {
                config.feature_weight
            } else {
                0.0
            },
            seed,
            dir: dir.clone(),
        };
        let history = with_arch!(ctx, config.student.as_str(), config.student_width(), |m| {
            distill_student(ctx, m, teachers.to_vec(), &plan)
        })?;
        let last = history.last().ok_or("no epoch was run")?;
        // Telemetry only where the teachers had a say and every teacher took part.
        if (method.soft || method.features) && last.keep_rate.len() == teachers.len() {
            (
                last.test_accuracy,
                last.keep_rate.clone(),
                last.mean_weight.clone(),
            )
        } else {
            (last.test_accuracy, Vec::new(), Vec::new())
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
    let json = serde_json::to_vec_pretty(&result).map_err(|e| e.to_string())?;
    write_atomic(&result_path, &json)?;
    Ok(result)
}

pub fn run(
    ctx: &Context,
    teachers: &[Arc<dyn Teacher>],
    reports: &[ModelReport],
) -> Result<(), String> {
    let config = ctx.config;
    let seeds: Vec<u64> = (0..ctx.args.seeds as u64)
        .map(|i| config.seed + i)
        .collect();
    let started = Instant::now();
    let only = &ctx.args.only;
    let methods: Vec<Method> = methods()
        .into_iter()
        .filter(|m| only.is_empty() || only.iter().any(|o| m.name.contains(o.as_str())))
        .collect();
    if methods.is_empty() {
        return Err(format!("--only {only:?} matches no ablation row"));
    }
    let mut runs: Vec<Vec<RunResult>> = Vec::new();
    for method in &methods {
        let mut per_seed = Vec::new();
        for &seed in &seeds {
            per_seed.push(one_run(ctx, teachers, method, seed)?);
        }
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
        eval_images: ctx.test.labels.len(),
        eval_split: ctx.config.eval_split(),
        teachers: reports,
        methods: results,
        wall_seconds: started.elapsed().as_secs_f64(),
        run_seconds: runs.iter().flatten().map(|r| r.seconds).sum(),
    };
    let markdown = markdown(&ablation);
    let out = &ctx.args.out;
    write_atomic(&out.join("ablation.md"), markdown.as_bytes())?;
    let json = serde_json::to_vec_pretty(&ablation).map_err(|e| e.to_string())?;
    write_atomic(&out.join("ablation.json"), &json)?;
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
    s += &format!(
        "Student {} (width {}; teachers width {}, {} epochs unless marked -eN) on {} ({} training \
         images, {} {split} images), {} student epochs, batch {}, seeds {:?}; T = {}, hard 1 / \
         soft 1 / feature {}{}; feature term off for {} epoch(s), then ramped over {} epoch(s); \
         screening {}, tau {}.\n\n",
        c.student,
        c.student_width(),
        c.width,
        c.teacher_epochs,
        c.dataset,
        a.train_images,
        a.eval_images,
        c.epochs,
        c.batch_size,
        a.seeds,
        c.temperature,
        c.feature_weight,
        if c.feature_norm == "teacher" {
            ", feature MSE divided by the teacher map's mean square"
        } else {
            ", plain feature MSE"
        },
        c.feature_delay_epochs,
        c.feature_ramp_epochs,
        c.screening,
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
        "\n| method | {split} accuracy (mean ± std) | per seed | Δ vs AVER (paired) | Δ vs single-best KD (paired) | keep rate per teacher ({}) | mean weight per teacher | time per run |\n|---|---:|---|---:|---:|---|---|---:|\n",
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
            "| {} | {:.2}% ± {:.2} | {} | {} | {} | {} | {} | {:.0} s |\n",
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
