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
use crate::training::{Context, Teachers, fit, train_classifier};

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

/// The `distill` stage's method: the row named `name`, else the library's default (the
/// grid's row without changes).
pub fn method(grid: &[Method], name: Option<&str>) -> Res<Method> {
    let default = Method::new("default");
    let mut rows = grid.iter().chain([&default]);
    let found = rows.find(|m| name.map_or(m.is_default(), |n| m.name == n));
    let names: Vec<&str> = grid.iter().map(|m| m.name.as_str()).collect();
    let name = name.unwrap_or_default();
    let error = format!("invalid value '{name}' for '--method': the grid's rows are {names:?}");
    Ok(found.ok_or(error)?.clone())
}

/// What a checkpointed run was made with; a resume must match it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct RunIdentity {
    config: RunConfig,
    method: Method,
    seed: u64,
    teachers: Vec<String>,
}

/// The teachers of `method` and, for each, its index among those given: all as given, or
/// those its `TeacherChoice` picks by cross-entropy on the validation split when there is
/// one (never on the test split), else on the first 1,024 training images.
fn arrange(
    ctx: &Context,
    method: &Method,
    teachers: &[Arc<dyn Teacher>],
) -> Res<(Teachers, Vec<usize>)> {
    if method.teachers == TeacherChoice::All {
        return Ok((teachers.to_vec(), (0..teachers.len()).collect()));
    }
    let (on, split) = match ctx.config.valid_from_train {
        Some(_) => (ctx.eval.clone(), "validation"),
        None => (ctx.train_head(1024), "training"),
    };
    let mut result = ctx.evaluate(teachers, &on)?;
    let order = method.teachers.order(&result.mean_cross_entropy);
    // `kept` in the given order, as `Prescreen` has it; the run takes them in `order`.
    result.kept = (0..teachers.len()).filter(|k| order.contains(k)).collect();
    let names: Vec<&str> = teachers.iter().map(|t| t.name()).collect();
    let (name, n, lines) = (&method.name, on.labels.len(), result.describe(&names));
    let choice = method.teachers;
    println!("{name}: pre-screening on {n} {split} images ({choice:?}):\n{lines}");
    Ok((order.iter().map(|&k| teachers[k].clone()).collect(), order))
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
    let (student, history) = match method.plain {
        true => (
            train_classifier(ctx, ctx.student(seed)?, dir, ctx.config.epochs, seed)?,
            Vec::new(),
        ),
        false => distill(ctx, teachers, method, seed, dir)?,
    };
    for file in ["student.bpk", "student.safetensors"] {
        save_weights(student.clone(), dir.join(file))?;
    }
    let file = dir.join("student.bpk");
    println!("exported the distilled student to {}", file.display());
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
    let (teachers, order) = arrange(ctx, method, given)?;
    let names: Vec<String> = teachers.iter().map(|t| t.name().to_string()).collect();
    // The student is the first thing built after seeding: the same initial weights for
    // every method of a seed.
    let student = ctx.student(seed)?;
    let steps_per_epoch = ctx.train.labels.len().div_ceil(config.batch_size);
    let distiller = method.distiller(&base(config, steps_per_epoch))?;
    let distiller = distiller.init(student, teachers, &ctx.device.clone().autodiff())?;
    let (config, method, teachers) = (config.clone(), method.clone(), names.clone());
    let identity = RunIdentity {
        config,
        method,
        seed,
        teachers,
    };
    let resume = resume_point(dir, &identity, ctx.cli.resume)?.min(ctx.config.epochs);
    if resume > 0 {
        // The checkpoint restores the weights and the schedule's step count alike.
        let from = dir.join("checkpoint");
        println!("resuming after epoch {resume} from {}", from.display());
    }
    let k = names.len();
    let trained = fit(
        ctx,
        distiller,
        dir,
        (ctx.config.epochs, seed, resume),
        |t| t.distill_metrics(k),
    )?;
    let mut history = read_history(dir, k)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    print!(
        "{}",
        history
            .last()
            .map_or(String::new(), |last| last.describe_teachers(&names))
    );
    // Telemetry in the order the teachers were given (`best-first` reorders them).
    history.iter_mut().for_each(|e| e.in_given_order(&order));
    Ok((trained.into_student(), history))
}

/// The accuracy of the student exported in `dir` on the evaluation split, reloaded from
/// `student.bpk` (and, when `both`, from `student.safetensors`, which must agree).
pub fn reload_accuracy(ctx: &Context, dir: &Path, both: bool) -> Res<f64> {
    let path = dir.join("student.bpk");
    if !path.is_file() {
        let at = path.display();
        return Err(format!("no exported student at {at}: run the distill stage first").into());
    }
    // The evaluation batches are read once and shared by both reloads.
    let batches = ctx.batches(&ctx.eval)?;
    let reload = |path: &Path| -> Res<f64> {
        let model = load_weights(
            ctx.net(ctx.config.student, ctx.config.student_width())?,
            path,
        )?;
        Ok(burn_distill::evaluate(&model.valid(), batches.iter().cloned())?.accuracy)
    };
    let (accuracy, safetensors) = (reload(&path)?, path.with_extension("safetensors"));
    if both && safetensors.is_file() {
        let again = reload(&safetensors)?;
        let (a, b) = (safetensors.display(), path.display());
        if again != accuracy {
            return Err(format!("{a} gives {again} but {b} gives {accuracy}").into());
        }
        println!("{a} reloads with the same accuracy");
    }
    Ok(accuracy)
}
