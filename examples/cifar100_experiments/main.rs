//! The long CIFAR experiments: teachers, distillation with every weighting, the ablation over
//! seeds, the screening analysis, charts and resumable runs. Every model trains in
//! burn-train's loop (`training::fit`); see `--help`.

mod ablation;
mod args;
mod distill;
mod plot;
mod screening;
mod select;
mod training;

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use burn_distill::Teacher;
use clap::Parser;

use crate::args::{Cli, Preset, RunConfig, Stage};
use crate::distill::{Plan, distill, evaluate_student, prescreen_teachers};
use crate::training::{Context, EpochLog, Report};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = RunConfig::resolve(&cli);
    if let Err(message) = config.check() {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    match run(&cli, &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli, config: &RunConfig) -> Result<(), String> {
    if cli.stages.contains(&Stage::Select) {
        if cli.stages.len() > 1 {
            return Err("select runs on its own: it reads finished ablations (--pools)".into());
        }
        return select::run(&cli.pools, &cli.out);
    }
    let started = Instant::now();
    let (ctx, source) = training::context(cli, config)?;
    println!(
        "burn-distill distillation example: preset {:?}, device {:?}, {:?} ({} train / {} {} images from {source})",
        config.preset,
        config.device,
        config.dataset,
        ctx.train.labels.len(),
        ctx.eval.labels.len(),
        config.eval_split(),
    );
    if config.preset == Preset::Quick {
        println!(
            "quick preset: a {}-image subset, {} teacher / {} student epochs and models {}x narrower \
             than the paper's. Its numbers show the pipeline works; they are not the paper's \
             (use --preset paper on a GPU for those).",
            ctx.train.labels.len(),
            config.teacher_epochs,
            config.epochs,
            64 / config.width.max(1)
        );
    }
    std::fs::create_dir_all(&cli.out)
        .map_err(|e| format!("cannot create output folder {}: {e}", cli.out.display()))?;
    let mut stages: BTreeSet<Stage> = cli.stages.iter().copied().collect();
    if stages.is_empty() || stages.remove(&Stage::All) {
        stages.extend([Stage::TrainTeachers, Stage::Distill, Stage::Eval]);
    }
    let mut report = Report::load(&cli.out.join("results.json"));
    report.config = Some(config.clone());
    // Teachers are loaded (or trained) and evaluated once, by the first stage that needs them.
    let mut loaded: Option<Vec<Arc<dyn Teacher>>> = None;
    for stage in stages {
        let train_teachers = !matches!(stage, Stage::Distill | Stage::Eval);
        let teachers = match &loaded {
            Some(teachers) => teachers.clone(),
            None => {
                let (teachers, reports) = training::teachers(&ctx, train_teachers)?;
                report.teachers = reports;
                report.save(&cli.out)?;
                loaded.insert(teachers).clone()
            }
        };
        match stage {
            Stage::TrainTeachers | Stage::All | Stage::Select => {}
            Stage::Distill => {
                let teachers = if cli.prescreen {
                    prescreen_teachers(&ctx, teachers)?
                } else {
                    teachers
                };
                let (_, history) = distill(&ctx, &teachers, &Plan::from_config(config, &cli.out))?;
                plot_history(&ctx, &history)?;
                report.history = history;
                report.save(&cli.out)?;
            }
            Stage::Eval => {
                report.student = Some(evaluate_student(&ctx)?);
                report.wall_seconds = started.elapsed().as_secs_f64();
                report.save(&cli.out)?;
                report.print();
            }
            Stage::Ablation => ablation::run(&ctx, &teachers, &report.teachers)?,
            Stage::Screening => screening::run(&ctx, &teachers, &report.teachers)?,
        }
    }
    Ok(())
}

/// Train and evaluation accuracy per epoch of the distilled student, as a PNG.
fn plot_history(ctx: &Context, history: &[EpochLog]) -> Result<(), String> {
    let path = ctx.cli.out.join("accuracy.png");
    let points = |f: fn(&EpochLog) -> f64| -> Vec<(f64, f64)> {
        history
            .iter()
            .map(|e| (e.epoch as f64, 100.0 * f(e)))
            .collect()
    };
    plot::lines(
        &path,
        "distilled student: accuracy per epoch",
        "epoch",
        &[
            ("train (augmented)", points(|e| e.train_accuracy)),
            (ctx.config.eval_split(), points(|e| e.test_accuracy)),
        ],
    )?;
    println!("wrote {}", path.display());
    Ok(())
}
