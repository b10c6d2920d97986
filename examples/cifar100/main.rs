//! The CIFAR-100 distillation example: several teachers distilled into a small VGG student
//! with the screened cross-entropy method. See `--help`.

mod ablation;
mod args;
mod plot;
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
