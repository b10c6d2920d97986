//! The long CIFAR experiments: teachers, distillation with every weighting, the ablation
//! stage over seeds, charts and resumable runs, with its own training loop (the per-method
//! ablation, its hand-made LR schedule and resume checks predate the burn-train version in
//! `examples/cifar100.rs`, which is the tutorial). See `--help`.

mod ablation;
mod args;
mod plot;
mod screening;
mod training;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{}", args::HELP);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{}", args::HELP);
            return ExitCode::from(2);
        }
    };
    match training::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}
