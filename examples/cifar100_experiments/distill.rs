//! One distillation run, the same code for every method: a [`Method`] (a row of the grid)
//! says which teachers have a say and how; the loop is `training::fit`, burn-train's.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn_distill::files::{load_weights, save_weights};
use burn_distill::models::ZooModel;
use burn_distill::train::{DistillMetrics, EpochRecord, last_checkpoint, read_history};
use burn_distill::{DistillationLossConfig, DistillerConfig, FeatureNorm, FeatureTarget};
use burn_distill::{ScreeningRule, SoftLoss, Teacher, TeacherSelectorConfig, Weighting};
use serde::{Deserialize, Serialize};

use crate::Res;
use crate::args::{RunConfig, WeightingChoice};
use crate::training::{Context, fit, train_classifier, write_json};

/// A method: one row of the grid file (`grid.json` beside this file, or `--grid`). Every
/// field but the first four may be left out; each is an option of the library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Method {
    pub name: String,
    pub weighting: WeightingChoice,
    /// The soft term on (weight 1) or off.
    pub soft: bool,
    /// The feature term on (weight `--feature-weight`) or off.
    pub features: bool,
    /// Trained as a plain classifier instead of by the distiller (reference row).
    #[serde(default)]
    pub plain: bool,
    /// The soft term against the teachers' weighted mixture (`SoftLoss::Mixture`).
    #[serde(default)]
    pub mixture: bool,
    /// Logit standardization of the soft term.
    #[serde(default)]
    pub standardize: bool,
    /// A screening rule of its own (`{"RelativeToBest": 1.5}`, `"KeepAll"`, ...).
    #[serde(default)]
    pub screening: Option<ScreeningRule>,
    /// What the feature term compares with (`"Mixture"`, `"Closest"`; default per teacher).
    #[serde(default = "per_teacher")]
    pub feature_target: FeatureTarget,
    /// A feature distance of its own (`"TeacherMeanSquare"`) instead of `--feature-norm`.
    #[serde(default)]
    pub feature_norm: Option<FeatureNorm>,
    /// The teachers ordered by cross-entropy, the best first (for `"FirstTeacher"`).
    #[serde(default)]
    pub best_teacher_first: bool,
}

fn per_teacher() -> FeatureTarget {
    FeatureTarget::PerTeacher
}

impl Method {
    /// The `distill` stage's method: `--weighting` with the library's default loss (soft
    /// and feature terms, logit standardization, features per teacher).
    pub fn from_weighting(weighting: WeightingChoice) -> Self {
        let row = serde_json::json!({
            "name": format!("{weighting:?}"), "weighting": weighting,
            "soft": true, "features": true, "standardize": true,
        });
        serde_json::from_value(row).expect("a valid row")
    }
}

/// What a checkpointed run was made with; a resume must match it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct RunIdentity {
    config: RunConfig,
    method: Method,
    seed: u64,
    teachers: Vec<String>,
}

/// The selector of `method` and its teachers: one, the best, for single-best; ordered best
/// first for `best_teacher_first`. The best has the lowest cross-entropy on the validation
/// split when there is one (never on the test split), else on the first 1,024 training images.
fn selector(
    ctx: &Context,
    method: &Method,
    teachers: &[Arc<dyn Teacher>],
) -> Res<(TeacherSelectorConfig, Vec<Arc<dyn Teacher>>)> {
    let rule = method
        .screening
        .clone()
        .unwrap_or(ctx.config.screening.clone());
    let screened =
        |config: TeacherSelectorConfig| config.with_tau(ctx.config.tau).with_screening(rule);
    let unscreened = TeacherSelectorConfig::unscreened;
    let single = method.weighting == WeightingChoice::SingleBest;
    let mut teachers = teachers.to_vec();
    if single || method.best_teacher_first {
        let on = if ctx.config.valid_from_train.is_some() {
            ctx.eval.clone()
        } else {
            ctx.train_head(1024)
        };
        let ce = ctx.evaluate(&teachers, &on)?.mean_cross_entropy;
        let mut order: Vec<usize> = (0..teachers.len()).collect();
        order.sort_by(|a, b| ce[*a].total_cmp(&ce[*b]));
        teachers = order
            .iter()
            .map(|&k| teachers[k].clone())
            .take(if single { 1 } else { order.len() })
            .collect();
        println!(
            "{}: the best teacher is {}",
            method.name,
            teachers[0].name()
        );
    }
    let selector = match method.weighting {
        WeightingChoice::Average | WeightingChoice::SingleBest => unscreened(Weighting::Average),
        WeightingChoice::Confidence => unscreened(Weighting::Confidence),
        WeightingChoice::Entropy => unscreened(Weighting::Entropy),
        WeightingChoice::Screened => screened(TeacherSelectorConfig::new()),
        WeightingChoice::ScreenedPerSample => screened(TeacherSelectorConfig::seed_paper()),
        WeightingChoice::ScreenedConfidence => {
            screened(TeacherSelectorConfig::seed_paper().with_weighting(Weighting::Confidence))
        }
    };
    Ok((selector, teachers))
}

/// Trains a fresh student (initialised from `seed`) with `method` in `dir` (burn-train's
/// logs and checkpoints; with `--resume`, from the last checkpoint of the same run), exports
/// it as `student.bpk` and `student.safetensors`, and returns the accuracy of the exported
/// file, reloaded, and the per-epoch history (empty for a plain classifier).
pub fn run_method(
    ctx: &Context,
    teachers: &[Arc<dyn Teacher>],
    method: &Method,
    seed: u64,
    dir: &Path,
) -> Res<(f64, Vec<EpochRecord>)> {
    let config = ctx.config;
    crate::create_dir(dir)?;
    let (student, history) = if method.plain {
        let student = train_classifier(ctx, ctx.student(seed)?, dir, config.epochs, seed)?;
        (student, Vec::new())
    } else {
        distill(ctx, teachers, method, seed, dir)?
    };
    for file in ["student.bpk", "student.safetensors"] {
        save_weights(student.clone(), dir.join(file))?;
    }
    println!(
        "exported the distilled student to {}",
        dir.join("student.bpk").display()
    );
    Ok((reload_accuracy(ctx, dir, false)?, history))
}

fn distill(
    ctx: &Context,
    teachers: &[Arc<dyn Teacher>],
    method: &Method,
    seed: u64,
    dir: &Path,
) -> Res<(ZooModel, Vec<EpochRecord>)> {
    let config = ctx.config;
    let given: Vec<String> = teachers.iter().map(|t| t.name().to_string()).collect();
    let (selector, teachers) = selector(ctx, method, teachers)?;
    let names: Vec<String> = teachers.iter().map(|t| t.name().to_string()).collect();
    let steps_per_epoch = ctx.train.labels.len().div_ceil(config.batch_size) as f64;
    let steps = |epochs: f64| (epochs * steps_per_epoch).round() as usize;
    let weight = |on: bool, weight: f64| if on { weight } else { 0.0 };
    let loss = DistillationLossConfig::new()
        .with_temperature(config.temperature)
        .with_soft_weight(weight(method.soft, 1.0))
        .with_feature_weight(weight(method.features, config.feature_weight))
        .with_feature_delay_steps(steps(config.feature_delay_epochs))
        .with_feature_ramp_steps(steps(config.feature_ramp_epochs))
        .with_feature_norm(method.feature_norm.unwrap_or(config.feature_norm))
        .with_soft_loss(if method.mixture {
            SoftLoss::Mixture
        } else {
            SoftLoss::Kd
        })
        .with_logit_standardization(method.standardize)
        .with_feature_target(method.feature_target);
    // The student is the first thing built after seeding: the same initial weights for
    // every method of a seed.
    let student = ctx.student(seed)?;
    let distiller = DistillerConfig::new()
        .with_selector(selector)
        .with_loss(loss);
    let distiller = distiller.init(student, teachers, &ctx.device.clone().autodiff())?;
    let identity = RunIdentity {
        config: config.clone(),
        method: method.clone(),
        seed,
        teachers: names.clone(),
    };
    let identity_path = dir.join("run.json");
    let mut resume = 0;
    if ctx.cli.resume
        && let Some(epoch) = last_checkpoint(dir)
    {
        let saved = std::fs::read_to_string(&identity_path).unwrap_or_default();
        let saved: Option<RunIdentity> = serde_json::from_str(&saved).ok();
        if saved.as_ref() != Some(&identity) {
            let dir = dir.display();
            return Err(format!(
                "the checkpoint in {dir} was made with another configuration ({saved:?}); refusing to resume \
                 from it with {identity:?}. Use another --out or drop --resume."
            )
            .into());
        }
        // The checkpoint restores the weights and the schedule's step count alike.
        resume = epoch.min(config.epochs);
        println!(
            "resuming after epoch {resume} from {}",
            dir.join("checkpoint").display()
        );
    }
    write_json(&identity_path, &identity)?;
    let k = names.len();
    let trained = fit(ctx, distiller, dir, (config.epochs, seed, resume), |t| {
        t.distill_metrics(k)
    })?;
    let mut history = read_history(dir, k)?;
    if let Some(last) = history.last() {
        for (k, name) in names.iter().enumerate() {
            let (kept, weight) = (100.0 * last.keep_rate[k], last.mean_weight[k]);
            println!("    teacher {name:<14} kept {kept:5.1}%  mean weight {weight:.3}");
        }
    }
    // Telemetry in the order the teachers were given (`best_teacher_first` reorders them).
    let at: Vec<usize> = given
        .iter()
        .filter_map(|g| names.iter().position(|n| n == g))
        .collect();
    if at.len() == k {
        for e in &mut history {
            e.keep_rate = at.iter().map(|&i| e.keep_rate[i]).collect();
            e.mean_weight = at.iter().map(|&i| e.mean_weight[i]).collect();
        }
    }
    Ok((trained.into_student(), history))
}

/// Keeps the teachers at or below the mean cross-entropy on (up to) the first 1,000 training
/// images, without augmentation.
pub fn prescreen_teachers(
    ctx: &Context,
    teachers: &[Arc<dyn Teacher>],
) -> Res<Vec<Arc<dyn Teacher>>> {
    let subset = ctx.train_head(1000);
    let result = ctx.evaluate(teachers, &subset)?;
    println!("pre-screening on {} training images:", subset.labels.len());
    for (i, teacher) in teachers.iter().enumerate() {
        let verdict = if result.kept.contains(&i) {
            "kept"
        } else {
            "dropped"
        };
        let (ce, accuracy) = (result.mean_cross_entropy[i], 100.0 * result.accuracy[i]);
        println!(
            "    teacher {:<14} cross-entropy {ce:.3}  accuracy {accuracy:5.1}%  {verdict}",
            teacher.name()
        );
    }
    Ok(result.keep(teachers))
}

/// The accuracy of the student exported in `dir` on the evaluation split, reloaded from
/// `student.bpk` (and, when `both`, from `student.safetensors`, which must agree).
pub fn reload_accuracy(ctx: &Context, dir: &Path, both: bool) -> Res<f64> {
    let path = dir.join("student.bpk");
    if !path.is_file() {
        return Err(format!(
            "no exported student at {}: run the distill stage first",
            path.display()
        )
        .into());
    }
    let reload = |path: &Path| -> Res<f64> {
        let fresh = ctx.net(ctx.config.student, ctx.config.student_width())?;
        ctx.accuracy(&load_weights(fresh, path)?.valid())
    };
    let accuracy = reload(&path)?;
    let safetensors = path.with_extension("safetensors");
    if both && safetensors.is_file() {
        let again = reload(&safetensors)?;
        if again != accuracy {
            let (a, b) = (safetensors.display(), path.display());
            return Err(format!("{a} gives {again} but {b} gives {accuracy}").into());
        }
        println!("{} reloads with the same accuracy", safetensors.display());
    }
    Ok(accuracy)
}
