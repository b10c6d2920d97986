//! The long CIFAR experiments: teachers, distillation with every weighting, the ablation over
//! seeds (its rows a data file, `grid.json`), the screening analysis, charts and resumable
//! runs. Every model trains in burn-train's loop (`training::fit`); see `--help`.

mod ablation;
mod args;
mod distill;
mod screening;
mod training;

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Instant;

use burn_distill::charts::history_chart;
use burn_distill::experiment::{Method, ModelReport};
use burn_distill::files::save_json;
use burn_distill::models::parameter_count;

use clap::Parser;

use crate::args::{Cli, Stage};
use crate::distill::{reload_accuracy, run_method};
use crate::training::Report;

/// The harness's result: any error, reported as one line.
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Bad options exit with 2, as clap's own errors do; failures with 1.
    let result = cli
        .config
        .check()
        .map_err(|e| (2, e.into()))
        .and_then(|()| {
            let grid = distill::grid(&cli).map_err(|e| (1, e))?;
            let method = distill::method(&grid, cli.method.as_deref()).map_err(|e| (2, e))?;
            run(&cli, &grid, &method).map_err(|e| (1, e))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, error)) => {
            eprintln!("error: {error}");
            ExitCode::from(code)
        }
    }
}

fn run(cli: &Cli, grid: &[Method], method: &Method) -> Res<()> {
    let (config, started) = (&cli.config, Instant::now());
    let (ctx, source) = training::context(cli, config)?;
    let (train, eval, split) = (
        ctx.train.labels.len(),
        ctx.eval.labels.len(),
        config.eval_split(),
    );
    let (device, dataset) = (&config.device, config.dataset);
    println!(
        "burn-distill distillation example: device {device}, {dataset} ({train} train / {eval} {split} images \
         from {source}); the defaults only show the pipeline works, scripts/cifar100-paper.sh runs the paper's setting"
    );
    let mut stages: BTreeSet<Stage> = cli.stages.iter().copied().collect();
    if stages.is_empty() || stages.remove(&Stage::All) {
        stages.extend([Stage::TrainTeachers, Stage::Distill, Stage::Eval]);
    }
    let results = cli.out.join("results.json");
    let mut report = Report::load(&results);
    report.config = Some(config.clone());
    // Teachers are loaded (or trained) and evaluated once, by the first stage (all need them).
    let train_teachers = !matches!(stages.first(), Some(Stage::Distill | Stage::Eval));
    let (teachers, reports) = training::teachers(&ctx, train_teachers)?;
    report.teachers = reports;
    save_json(&results, &report)?;
    for stage in stages {
        match stage {
            Stage::TrainTeachers | Stage::All => {}
            Stage::Distill => {
                let (_, history) = run_method(&ctx, &teachers, method, config.seed, &cli.out)?;
                let chart = cli.out.join("accuracy.png");
                history_chart(&chart, &history, config.eval_split())?;
                println!("wrote {}", chart.display());
                report.history = history;
            }
            Stage::Eval => {
                let accuracy = reload_accuracy(&ctx, &cli.out, true)?;
                let params = parameter_count(&ctx.net(config.student, config.student_width())?);
                let (name, file) = (
                    format!("student-{}", config.student),
                    cli.out.join("student.bpk"),
                );
                report.student = Some(ModelReport::new(name, params, file, accuracy));
                report.wall_seconds = started.elapsed().as_secs_f64();
                let student = report.student.as_ref();
                println!(
                    "\n{}",
                    ModelReport::markdown(&report.teachers, student, "test")
                );
            }
            Stage::Ablation => ablation::run(&ctx, &teachers, &report.teachers, grid)?,
            Stage::Screening => screening::run(&ctx, &teachers, &report.teachers)?,
        }
        save_json(&results, &report)?;
    }
    Ok(())
}
