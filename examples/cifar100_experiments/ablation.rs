//! The `ablation` stage: the same student trained with each method over several seeds.

use std::sync::Arc;
use std::time::Instant;

use burn_distill::Teacher;
use burn_distill::models::{ResNetConfig, VggConfig};
use serde::Serialize;

use crate::training::{
    Context, ModelReport, Plan, accuracy, distill_student, train_classifier, write_atomic,
};
use crate::with_arch;

/// One method of the comparison.
struct Method {
    name: &'static str,
    weighting: &'static str,
    per_batch: bool,
    /// Hard, soft and feature weights; `None` trains the student alone with plain CE.
    weights: Option<(f64, f64, f64)>,
}

#[derive(Debug, Serialize)]
struct MethodResult {
    method: String,
    accuracies: Vec<f64>,
    mean: f64,
    std: f64,
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
    test_images: usize,
    teachers: &'a [ModelReport],
    methods: Vec<MethodResult>,
    wall_seconds: f64,
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

pub fn run(
    ctx: &Context,
    teachers: &[Arc<dyn Teacher>],
    reports: &[ModelReport],
) -> Result<(), String> {
    let config = ctx.config;
    let feature = config.feature_weight;
    let methods = [
        Method {
            name: "student alone (CE)",
            weighting: "average",
            per_batch: false,
            weights: None,
        },
        Method {
            name: "KD, single best teacher",
            weighting: "single-best",
            per_batch: false,
            weights: Some((1.0, 1.0, 0.0)),
        },
        Method {
            name: "FitNets, single best teacher",
            weighting: "single-best",
            per_batch: false,
            weights: Some((1.0, 0.0, feature)),
        },
        Method {
            name: "AVER (average)",
            weighting: "average",
            per_batch: false,
            weights: Some((1.0, 1.0, feature)),
        },
        Method {
            name: "CA-MKD (confidence)",
            weighting: "confidence",
            per_batch: false,
            weights: Some((1.0, 1.0, feature)),
        },
        Method {
            name: "EBKD (entropy)",
            weighting: "entropy",
            per_batch: false,
            weights: Some((1.0, 1.0, feature)),
        },
        Method {
            name: "screened CE, per sample",
            weighting: "screened",
            per_batch: false,
            weights: Some((1.0, 1.0, feature)),
        },
        Method {
            name: "screened CE, per batch",
            weighting: "screened",
            per_batch: true,
            weights: Some((1.0, 1.0, feature)),
        },
    ];
    let seeds: Vec<u64> = (0..ctx.args.seeds as u64)
        .map(|i| config.seed + i)
        .collect();
    let started = Instant::now();
    let mut results = Vec::new();
    for method in &methods {
        let mut accuracies = Vec::new();
        let mut keep = vec![0.0; teachers.len()];
        let mut weight = vec![0.0; teachers.len()];
        let mut seconds = 0.0;
        for &seed in &seeds {
            let slug: String = method
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            let dir = ctx
                .args
                .out
                .join("ablation")
                .join(format!("{slug}-seed{seed}"));
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            println!("\n== {} (seed {seed}) ==", method.name);
            let run_started = Instant::now();
            ctx.device.seed(seed);
            let accuracy_here = match method.weights {
                None => with_arch!(ctx, config.student.as_str(), config.student_width(), |m| {
                    let label = format!("{} seed {seed}", method.name);
                    let student = train_classifier(ctx, m, &label, config.epochs, seed)?;
                    let student = burn::module::Module::valid(&student);
                    accuracy(ctx, |x| {
                        burn_distill::FeatureModel::forward_features(&student, x).logits
                    })
                })?,
                Some((hard, soft, feature)) => {
                    let plan = Plan {
                        name: method.name.to_string(),
                        weighting: method.weighting.to_string(),
                        per_batch: method.per_batch,
                        hard_weight: hard,
                        soft_weight: soft,
                        feature_weight: feature,
                        seed,
                        dir: dir.clone(),
                    };
                    let history =
                        with_arch!(ctx, config.student.as_str(), config.student_width(), |m| {
                            distill_student(ctx, m, teachers.to_vec(), &plan)
                        })?;
                    let last = history.last().ok_or("no epoch was run")?;
                    // Telemetry is per teacher only when every teacher took part.
                    if last.keep_rate.len() == teachers.len() {
                        for k in 0..teachers.len() {
                            keep[k] += last.keep_rate[k] / seeds.len() as f64;
                            weight[k] += last.mean_weight[k] / seeds.len() as f64;
                        }
                    }
                    last.test_accuracy
                }
            };
            seconds += run_started.elapsed().as_secs_f64();
            println!(
                "{} (seed {seed}): test accuracy {:.2}%",
                method.name,
                100.0 * accuracy_here
            );
            accuracies.push(accuracy_here);
        }
        let (mean, std) = mean_std(&accuracies);
        results.push(MethodResult {
            method: method.name.to_string(),
            accuracies,
            mean,
            std,
            keep_rate: keep,
            mean_weight: weight,
            seconds_per_run: seconds / seeds.len() as f64,
        });
    }
    let ablation = Ablation {
        config,
        seeds,
        train_images: ctx.train.labels.len(),
        test_images: ctx.test.labels.len(),
        teachers: reports,
        methods: results,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    let markdown = markdown(&ablation);
    println!("\n{markdown}");
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
            "test accuracy per method, mean ± std over {} seeds",
            ablation.seeds.len()
        ),
        &bars,
    )?;
    println!(
        "wrote {}, {} and {}",
        out.join("ablation.md").display(),
        out.join("ablation.json").display(),
        out.join("ablation.png").display()
    );
    Ok(())
}

fn markdown(a: &Ablation) -> String {
    let c = a.config;
    let mut s = String::new();
    s += &format!(
        "Student {} (width {}; teachers width {}, {} epochs unless marked -eN) on {} ({} training \
         images, {} test images), {} student epochs, batch {}, seeds {:?}; T = {}, hard 1 / soft 1 \
         / feature {}{} (feature term off in epoch 1).\n\n",
        c.student,
        c.student_width(),
        c.width,
        c.teacher_epochs,
        c.dataset,
        a.train_images,
        a.test_images,
        c.epochs,
        c.batch_size,
        a.seeds,
        c.temperature,
        c.feature_weight,
        if c.feature_norm == "teacher" {
            ", feature MSE divided by the teacher map's mean square"
        } else {
            ""
        }
    );
    s += "| teacher | parameters | test accuracy |\n|---|---:|---:|\n";
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
        "\n| method | test accuracy (mean ± std) | per seed | keep rate per teacher ({}) | mean weight per teacher | time per run |\n|---|---:|---|---|---|---:|\n",
        names.join(", ")
    );
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
            "| {} | {:.2}% ± {:.2} | {} | {} | {} | {:.0} s |\n",
            m.method,
            100.0 * m.mean,
            100.0 * m.std,
            m.accuracies
                .iter()
                .map(|x| format!("{:.2}", 100.0 * x))
                .collect::<Vec<_>>()
                .join(", "),
            fmt(&m.keep_rate),
            fmt(&m.mean_weight),
            m.seconds_per_run
        );
    }
    s += &format!("\nTotal wall time: {:.1} min.\n", a.wall_seconds / 60.0);
    s
}
