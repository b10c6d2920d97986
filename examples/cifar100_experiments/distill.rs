//! One distillation run, the same code for every method: the plan says which teachers have
//! a say and how; the loop is `training::fit`, burn-train's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use burn_distill::files::{load_weights, save_weights};
use burn_distill::models::parameter_count;
use burn_distill::{
    DistillationLossConfig, DistillerConfig, FeatureTarget, ScreeningRule, SoftLoss, Teacher,
    TeacherSelectorConfig, Weighting,
};
use serde::{Deserialize, Serialize};

use crate::args::{RunConfig, WeightingChoice};
use crate::training::{
    Context, EpochLog, ModelReport, Net, distill_metrics, fit, history, last_checkpoint, write_json,
};

/// One distillation run: the method, its loss weights, its seed and its folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    pub weighting: WeightingChoice,
    pub soft_weight: f64,
    pub feature_weight: f64,
    pub seed: u64,
    /// burn-train's logs and checkpoints, and the exported student.
    pub dir: PathBuf,
    /// The soft term against the teachers' weighted mixture (`SoftLoss::Mixture`) instead
    /// of the weighted sum of per-teacher KDs.
    #[serde(default)]
    pub mixture: bool,
    /// Logit standardization of the soft term.
    #[serde(default)]
    pub standardize: bool,
    /// This run's screening rule instead of the configuration's (screened methods).
    #[serde(default)]
    pub screening: Option<ScreeningRule>,
    /// What the feature term compares with (`FeatureTarget::Mixture`: the teachers' weighted
    /// mixture through one adapter; `Closest`: each sample's closest kept teacher).
    #[serde(default = "per_teacher")]
    pub feature_target: FeatureTarget,
}

/// The feature target of runs saved before the field existed, and of grid rows without one.
pub fn per_teacher() -> FeatureTarget {
    FeatureTarget::PerTeacher
}

impl Plan {
    /// The run the command line asks for.
    pub fn from_config(config: &RunConfig, out: &Path) -> Self {
        Self {
            name: format!("{:?}", config.weighting),
            weighting: config.weighting,
            soft_weight: 1.0,
            feature_weight: config.feature_weight,
            seed: config.seed,
            dir: out.to_path_buf(),
            mixture: false,
            standardize: false,
            screening: None,
            feature_target: FeatureTarget::PerTeacher,
        }
    }
}

/// What a checkpointed run was made with; a resume must match it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct RunIdentity {
    config: RunConfig,
    plan: Plan,
    teachers: Vec<String>,
}

/// The selector of `plan` and the teachers it uses (one, for single-best).
fn selector(
    ctx: &Context,
    plan: &Plan,
    teachers: &[Arc<dyn Teacher>],
) -> Result<(TeacherSelectorConfig, Vec<Arc<dyn Teacher>>), String> {
    let unscreened = TeacherSelectorConfig::unscreened;
    let rule = plan
        .screening
        .clone()
        .unwrap_or_else(|| ctx.config.screening.clone());
    let screened = |config: TeacherSelectorConfig| {
        config.with_tau(ctx.config.tau).with_screening(rule.clone())
    };
    Ok(match plan.weighting {
        WeightingChoice::Average => (unscreened(Weighting::Average), teachers.to_vec()),
        WeightingChoice::Confidence => (unscreened(Weighting::Confidence), teachers.to_vec()),
        WeightingChoice::Entropy => (unscreened(Weighting::Entropy), teachers.to_vec()),
        WeightingChoice::Screened => (screened(TeacherSelectorConfig::new()), teachers.to_vec()),
        WeightingChoice::ScreenedPerSample => (
            screened(TeacherSelectorConfig::seed_paper()),
            teachers.to_vec(),
        ),
        WeightingChoice::SingleBest => {
            // The lowest cross-entropy on the validation split when there is one (never on
            // the test split), else on (up to) the first 1,024 training images.
            let on = if ctx.config.eval_split() == "validation" {
                ctx.eval.clone()
            } else {
                let mut subset = (*ctx.train).clone();
                subset.truncate(1024);
                Arc::new(subset)
            };
            let ce = ctx.evaluate(teachers, &on)?.mean_cross_entropy;
            let best = (0..teachers.len())
                .min_by(|a, b| ce[*a].total_cmp(&ce[*b]))
                .ok_or("no teachers")?;
            let best = teachers[best].clone();
            println!("{}: using the best teacher, {}", plan.name, best.name());
            (unscreened(Weighting::Average), vec![best])
        }
    })
}

/// Distils a fresh student (initialised from the plan's seed) from `teachers` with burn-train;
/// returns the trained student and its per-epoch history.
pub fn distill(
    ctx: &Context,
    all_teachers: &[Arc<dyn Teacher>],
    plan: &Plan,
) -> Result<(Net, Vec<EpochLog>), String> {
    let config = ctx.config;
    let (selector, teachers) = selector(ctx, plan, all_teachers)?;
    let names: Vec<String> = teachers.iter().map(|t| t.name().to_string()).collect();
    let steps = |epochs: f64| (epochs * ctx.steps_per_epoch() as f64).round() as usize;
    let loss = DistillationLossConfig::new()
        .with_temperature(config.temperature)
        .with_soft_weight(plan.soft_weight)
        .with_feature_weight(plan.feature_weight)
        .with_feature_delay_steps(steps(config.feature_delay_epochs))
        .with_feature_ramp_steps(steps(config.feature_ramp_epochs))
        .with_feature_norm(config.feature_norm)
        .with_soft_loss(if plan.mixture {
            SoftLoss::Mixture
        } else {
            SoftLoss::Kd
        })
        .with_logit_standardization(plan.standardize)
        .with_feature_target(plan.feature_target);
    // The student is the first thing built after seeding: the same initial weights for
    // every method of a seed.
    ctx.device.seed(plan.seed);
    let student = ctx.net(config.student, config.student_width)?;
    let distiller = DistillerConfig::new()
        .with_selector(selector)
        .with_loss(loss)
        .init(student, teachers, &ctx.device.clone().autodiff())
        .map_err(|e| e.to_string())?;

    std::fs::create_dir_all(&plan.dir)
        .map_err(|e| format!("cannot create {}: {e}", plan.dir.display()))?;
    let identity = RunIdentity {
        config: config.clone(),
        plan: plan.clone(),
        teachers: names.clone(),
    };
    let identity_path = plan.dir.join("run.json");
    let mut resume_from = 0;
    if ctx.cli.resume
        && let Some(epoch) = last_checkpoint(&plan.dir)
    {
        let saved: Option<RunIdentity> = std::fs::read_to_string(&identity_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if saved.as_ref() != Some(&identity) {
            return Err(format!(
                "the checkpoint in {} was made with another configuration ({saved:?}); refusing to \
                 resume from it with {identity:?}. Use another --out or drop --resume.",
                plan.dir.display()
            ));
        }
        // The checkpoint restores the weights and the schedule's step count alike.
        resume_from = epoch.min(config.epochs);
        println!(
            "resuming after epoch {resume_from} from {}",
            plan.dir.join("checkpoint").display()
        );
    }
    write_json(&identity_path, &identity)?;
    let trained = fit(
        ctx,
        distiller,
        &plan.dir,
        config.epochs,
        plan.seed,
        resume_from,
        distill_metrics(names.len()),
    )?;
    let history = history(ctx, &plan.dir, config.epochs, names.len())?;
    for log in &history {
        println!(
            "epoch {}/{}: lr {:.4}  loss {:.4} (hard {:.4}, soft {:.4}, feature {:.4})  train acc {:.2}%  {} acc {:.2}%",
            log.epoch,
            config.epochs,
            log.lr,
            log.loss,
            log.hard,
            log.soft,
            log.feature,
            100.0 * log.train_accuracy,
            config.eval_split(),
            100.0 * log.test_accuracy
        );
    }
    if let Some(last) = history.last() {
        for (k, name) in names.iter().enumerate() {
            println!(
                "    teacher {name:<14} kept {:5.1}%  mean weight {:.3}",
                100.0 * last.keep_rate[k],
                last.mean_weight[k]
            );
        }
    }
    let student = trained.into_student();
    for file in ["student.bpk", "student.safetensors"] {
        save_weights(student.clone(), plan.dir.join(file)).map_err(|e| e.to_string())?;
    }
    println!(
        "exported the distilled student to {}",
        plan.dir.join("student.bpk").display()
    );
    Ok((student, history))
}

/// Keeps the teachers at or below the mean cross-entropy (`Context::evaluate` screens
/// below the mean) on (up to) the first 1,000 training images, without augmentation.
pub fn prescreen_teachers(
    ctx: &Context,
    teachers: Vec<Arc<dyn Teacher>>,
) -> Result<Vec<Arc<dyn Teacher>>, String> {
    let mut subset = (*ctx.train).clone();
    subset.truncate(1000);
    let images = subset.labels.len();
    let result = ctx.evaluate(&teachers, &Arc::new(subset))?;
    println!("pre-screening on {images} training images:");
    for (i, teacher) in teachers.iter().enumerate() {
        let verdict = if result.kept.contains(&i) {
            "kept"
        } else {
            "dropped"
        };
        println!(
            "    teacher {:<14} cross-entropy {:.3}  accuracy {:5.1}%  {verdict}",
            teacher.name(),
            result.mean_cross_entropy[i],
            100.0 * result.accuracy[i]
        );
    }
    Ok(result.keep(&teachers))
}

/// Reloads the exported student (Burn record, then SafeTensors: both must agree).
pub fn evaluate_student(ctx: &Context) -> Result<ModelReport, String> {
    let path = ctx.cli.out.join("student.bpk");
    if !path.is_file() {
        return Err(format!(
            "no exported student at {}: run the distill stage first",
            path.display()
        ));
    }
    let fresh = || ctx.net(ctx.config.student, ctx.config.student_width);
    let student = load_weights(fresh()?, &path)
        .map_err(|e| e.to_string())?
        .valid();
    let test_accuracy = ctx.accuracy(&student)?;
    let safetensors = path.with_extension("safetensors");
    if safetensors.is_file() {
        let copy = load_weights(fresh()?, &safetensors)
            .map_err(|e| e.to_string())?
            .valid();
        let again = ctx.accuracy(&copy)?;
        if again != test_accuracy {
            return Err(format!(
                "{} gives {again} but {} gives {test_accuracy}",
                safetensors.display(),
                path.display()
            ));
        }
        println!("{} reloads with the same accuracy", safetensors.display());
    }
    Ok(ModelReport {
        name: format!("student-{:?}", ctx.config.student).to_lowercase(),
        params: parameter_count(&student),
        bytes: std::fs::metadata(&path).map_or(0, |m| m.len()),
        test_accuracy,
    })
}
