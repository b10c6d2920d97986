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
use burn_distill::experiment::Method;
use burn_distill::files::save_json;

use crate::args::{Cli, Preset, Stage};
use crate::distill::{prescreen_teachers, reload_accuracy, run_method};
use crate::training::{ModelReport, Report};

/// The harness's result: any error, reported as one line.
pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let cli = Cli::resolve();
    if let Err(message) = cli.config.check() {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let grid = match distill::grid(&cli) {
        Ok(grid) => grid,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    // The distill stage's method: the row named by --method, else the library's default.
    let default = || {
        grid.iter()
            .find(|m| m.is_default())
            .cloned()
            .unwrap_or(Method::new("default"))
    };
    let method = match &cli.method {
        None => default(),
        Some(name) => match grid.iter().find(|m| &m.name == name) {
            Some(method) => method.clone(),
            None => {
                let names: Vec<&str> = grid.iter().map(|m| m.name.as_str()).collect();
                eprintln!(
                    "error: invalid value '{name}' for '--method': the grid's rows are {names:?}"
                );
                return ExitCode::from(2);
            }
        },
    };
    if let Err(error) = run(&cli, &grid, &method) {
        eprintln!("error: {error}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn run(cli: &Cli, grid: &[Method], method: &Method) -> Res<()> {
    let (config, started) = (&cli.config, Instant::now());
    let (ctx, source) = training::context(cli, config)?;
    let (train, eval, split) = (
        ctx.train.labels.len(),
        ctx.eval.labels.len(),
        config.eval_split(),
    );
    let (preset, device, dataset) = (cli.preset, &config.device, config.dataset);
    println!(
        "burn-distill distillation example: preset {preset:?}, device {device}, {dataset} ({train} train / \
         {eval} {split} images from {source})"
    );
    if cli.preset == Preset::Quick {
        println!(
            "quick preset: a subset, few epochs and narrow models. Its numbers show the pipeline works; they are \
             not the paper's (use --preset paper on a GPU for those)."
        );
    }
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
                let teachers = if cli.prescreen {
                    prescreen_teachers(&ctx, &teachers)?
                } else {
                    teachers.clone()
                };
                let (_, history) = run_method(&ctx, &teachers, method, config.seed, &cli.out)?;
                let chart = cli.out.join("accuracy.png");
                history_chart(&chart, &history, config.eval_split())?;
                println!("wrote {}", chart.display());
                report.history = history;
            }
            Stage::Eval => {
                let test_accuracy = reload_accuracy(&ctx, &cli.out, true)?;
                let (name, bytes) = (
                    format!("student-{}", config.student),
                    std::fs::metadata(cli.out.join("student.bpk"))?.len(),
                );
                let params = burn_distill::models::parameter_count(
                    &ctx.net(config.student, config.student_width())?,
                );
                report.student = Some(ModelReport {
                    name,
                    params,
                    bytes,
                    test_accuracy,
                });
                report.wall_seconds = started.elapsed().as_secs_f64();
                report.print();
            }
            Stage::Ablation => ablation::run(&ctx, &teachers, &report.teachers, grid)?,
            Stage::Screening => screening::run(&ctx, &teachers, &report.teachers)?,
        }
        save_json(&results, &report)?;
    }
    Ok(())
}
