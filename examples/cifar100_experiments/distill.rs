//! One distillation run, the same code for every method: a `Method` (a row of the grid, the
//! changes it makes to the run's `DistillerConfig`) through `training::fit`, burn-train's
//! loop.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn_distill::experiment::{Method, TeacherChoice, grid_from_json, load_grid, resume_point};
use burn_distill::files::{load_weights, save_weights};
use burn_distill::models::ZooModel;
use burn_distill::train::{DistillMetrics, EpochRecord, read_history};
use burn_distill::{
    DistillationLossConfig, DistillerConfig, Error, Teacher, TeacherSelectorConfig,
};
use serde::{Deserialize, Serialize};

use crate::Res;
use crate::args::{Cli, RunConfig};
use crate::training::{Context, fit, train_classifier};

/// The bundled grid: every row of docs/RESULTS.md's tables.
const GRID: &str = include_str!("grid.json");

/// The run's distiller before a row's changes: the library's defaults with the options
/// given (`--temperature`, `--tau`, `--screening`, `--feature-*`).
pub fn base(c: &RunConfig, steps_per_epoch: usize) -> DistillerConfig {
    let steps = |epochs: f64| (epochs * steps_per_epoch as f64).round() as usize;
    let selector = TeacherSelectorConfig::new()
        .with_tau(c.tau)
        .with_screening(c.screening.clone());
    let loss = DistillationLossConfig::new()
        .with_temperature(c.temperature)
        .with_feature_weight(c.feature_weight)
        .with_feature_delay_steps(steps(c.feature_delay_epochs))
        .with_feature_ramp_steps(steps(c.feature_ramp_epochs))
        .with_feature_norm(c.feature_norm);
    DistillerConfig::new()
        .with_selector(selector)
        .with_loss(loss)
}

/// The rows of `--grid`, else of the bundled grid, each checked before anything trains.
pub fn grid(cli: &Cli) -> Res<Vec<Method>> {
    let base = base(&cli.config, 1);
    Ok(match &cli.grid {
        Some(path) => load_grid(path, &base).map_err(|e| match e {
            Error::Io { .. } => format!("cannot read the grid: {e}"),
            e => e.to_string(),
        })?,
        None => grid_from_json(GRID, &base).map_err(|e| format!("the bundled grid.json: {e}"))?,
    })
}

/// What a checkpointed run was made with; a resume must match it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct RunIdentity {
    config: RunConfig,
    method: Method,
    seed: u64,
    teachers: Vec<String>,
}

/// The teachers of `method`: all as given, or the best (lowest cross-entropy on the
/// validation split when there is one, never on the test split, else on the first 1,024
/// training images) alone or first.
fn arrange(
    ctx: &Context,
    method: &Method,
    teachers: &[Arc<dyn Teacher>],
) -> Res<Vec<Arc<dyn Teacher>>> {
    if method.teachers == TeacherChoice::All {
        return Ok(teachers.to_vec());
    }
    let on = match ctx.config.valid_from_train {
        Some(_) => ctx.eval.clone(),
        None => ctx.train_head(1024),
    };
    let ce = ctx.evaluate(teachers, &on)?.mean_cross_entropy;
    let teachers = method.teachers.arrange(teachers, &ce);
    println!(
        "{}: the best teacher is {}",
        method.name,
        teachers[0].name()
    );
    Ok(teachers)
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
    let (student, history) = if method.plain {
        let student = ctx.student(seed)?;
        (
            train_classifier(ctx, student, dir, ctx.config.epochs, seed)?,
            Vec::new(),
        )
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
    given: &[Arc<dyn Teacher>],
    method: &Method,
    seed: u64,
    dir: &Path,
) -> Res<(ZooModel, Vec<EpochRecord>)> {
    let config = ctx.config;
    let teachers = arrange(ctx, method, given)?;
    let names: Vec<String> = teachers.iter().map(|t| t.name().to_string()).collect();
    // The student is the first thing built after seeding: the same initial weights for
    // every method of a seed.
    let student = ctx.student(seed)?;
    let steps_per_epoch = ctx.train.labels.len().div_ceil(config.batch_size);
    let distiller = method.distiller(&base(config, steps_per_epoch))?;
    let distiller = distiller.init(student, teachers, &ctx.device.clone().autodiff())?;
    let identity = RunIdentity {
        config: config.clone(),
        method: method.clone(),
        seed,
        teachers: names.clone(),
    };
    let resume = resume_point(dir, &identity, ctx.cli.resume)?.min(config.epochs);
    if resume > 0 {
        // The checkpoint restores the weights and the schedule's step count alike.
        println!(
            "resuming after epoch {resume} from {}",
            dir.join("checkpoint").display()
        );
    }
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
    // Telemetry in the order the teachers were given (`best-first` reorders them).
    let at: Vec<usize> = given
        .iter()
        .filter_map(|g| names.iter().position(|n| n == g.name()))
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
    // The evaluation batches are read once and shared by both reloads.
    let batches = ctx.batches(&ctx.eval)?;
    let reload = |path: &Path| -> Res<f64> {
        let fresh = ctx.net(ctx.config.student, ctx.config.student_width())?;
        let model = load_weights(fresh, path)?.valid();
        Ok(burn_distill::evaluate(&model, batches.iter().cloned())?.accuracy)
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
