//! Command-line options (clap). The defaults are a quick setting for a laptop CPU;
//! `scripts/cifar100-paper.sh` runs the harness with the paper's.

use std::path::PathBuf;

use burn_distill::data::ImageDataset;
use burn_distill::models::Architecture;
use burn_distill::{FeatureNorm, ScreeningRule};
use clap::{Args, Parser, ValueEnum};
use serde::{Deserialize, Serialize};

/// Any type the library reads from text, as a clap value parser.
fn text<T: std::str::FromStr<Err = burn_distill::Error>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: burn_distill::Error| e.to_string())
}

/// burn-distill CIFAR experiments: train teachers, distill a student, evaluate, export, and
/// compare every weighting method over seeds (ablation). Every run trains with burn-train.
#[derive(Parser, Debug)]
#[command(
    name = "cifar100_experiments",
    args_override_self = true,
    help_template = "{about}\n\nUSAGE: {usage}\n\n{all-args}\n\n{after-help}",
    after_help = "ENVIRONMENT\n  BURN_DISTILL_CIFAR100_URL, _SIZE, _MD5   replace the CIFAR-100 archive's address, \
                  size in bytes\n                   and MD5 (mirrors); BURN_DISTILL_CIFAR10_... likewise"
)]
pub struct Cli {
    /// Stages to run, in this order whatever the order given [default: all]
    #[arg(value_enum)]
    pub stages: Vec<Stage>,
    #[command(flatten)]
    pub config: RunConfig,
    /// Folder with the data (CIFAR: binary files or PNG folders; Fashion-MNIST: IDX files)
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Never download: fail with where to put the files instead
    #[arg(long)]
    pub no_download: bool,
    /// Weights for the teachers, in order: .bpk, .safetensors or PyTorch (RepDistiller) .pt/.pth
    #[arg(long, value_delimiter = ',')]
    pub teacher_weights: Vec<PathBuf>,
    /// The `distill` stage's method: a grid row's name [default: the row without changes]
    #[arg(long, value_name = "NAME")]
    pub method: Option<String>,
    /// Seeds per method in the ablation
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub seeds: usize,
    /// Only the ablation rows whose name contains one of these ('A|B')
    #[arg(long, value_name = "A|B", value_delimiter = '|')]
    pub only: Vec<String>,
    /// Leave out the ablation rows whose name contains one of these ('A|B'), after --only
    #[arg(long, value_name = "A|B", value_delimiter = '|')]
    pub skip: Vec<String>,
    /// The ablation's rows: a JSON list like (and by default) the harness's grid.json
    #[arg(long, value_name = "FILE")]
    pub grid: Option<PathBuf>,
    #[arg(long, default_value = "runs/cifar100")]
    pub out: PathBuf,
    /// Continue from the checkpoints (and finished ablation runs) in --out
    #[arg(long)]
    pub resume: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Stage {
    /// Train (or load) the teachers and report their accuracy
    TrainTeachers,
    /// Distill the student from the teachers (--method)
    Distill,
    /// The student with every method of the grid over --seeds seeds; ablation.md / .json / .png
    Ablation,
    /// What each weighting rule makes of the teachers, without training; screening.md
    Screening,
    /// Evaluate the exported student and the teachers; print the results table
    Eval,
    /// train-teachers, distill, eval
    All,
}

/// A teacher: its architecture and, for a deliberately weak one, its own epoch count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeacherSpec {
    pub arch: Architecture,
    pub epochs: Option<usize>,
}

impl TeacherSpec {
    /// `vgg13`, or `vgg13-e1` for `vgg13:1`.
    pub fn slug(&self) -> String {
        match self.epochs {
            Some(e) => format!("{}-e{e}", self.arch),
            None => self.arch.to_string(),
        }
    }
}

fn device(name: &str) -> Result<String, String> {
    let parsed = burn_distill::devices::parse_device(name);
    parsed.map(|_| name.to_string()).map_err(|e| e.to_string())
}

fn arch(name: &str) -> Result<Architecture, String> {
    let known = "vgg8, vgg13, resnet8x4, resnet32x4";
    name.parse()
        .map_err(|_| format!("unknown architecture '{name}' ({known})"))
}

fn parse_teacher(spec: &str) -> Result<TeacherSpec, String> {
    let (arch, epochs) = spec
        .split_once(':')
        .map_or((spec, None), |(a, e)| (a, Some(e)));
    let epochs = epochs.map(|e| {
        e.parse()
            .map_err(|_| format!("invalid epochs in teacher '{spec}'"))
    });
    Ok(TeacherSpec {
        arch: self::arch(arch)?,
        epochs: epochs.transpose()?,
    })
}

/// Everything a run's results depend on; saved with the checkpoints so that a resume can
/// check it matches.
#[derive(Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// flex, ndarray, tch, wgpu, wgpu:N, cuda or cuda:N (each needs its feature)
    #[arg(long, default_value = "flex", value_parser = device)]
    pub device: String,
    /// cifar100, cifar10 or fashion-mnist
    #[arg(long, default_value = "cifar100", value_parser = text::<ImageDataset>)]
    pub dataset: ImageDataset,
    /// Teacher architectures; `arch:N` trains that one for N epochs only (a weak teacher)
    #[arg(long, value_delimiter = ',', value_parser = parse_teacher, default_value = "vgg13,resnet8x4")]
    pub teachers: Vec<TeacherSpec>,
    #[arg(long, value_parser = arch, default_value = "vgg8")]
    pub student: Architecture,
    /// Student epochs
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub epochs: usize,
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub teacher_epochs: usize,
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub batch_size: usize,
    /// Initial learning rate (SGD, momentum 0.9, weight decay 5e-4)
    #[arg(long, value_name = "X", default_value_t = 0.05)]
    pub lr: f64,
    /// Fractions of the run after which the learning rate is multiplied by 0.1
    #[arg(long, value_delimiter = ',', default_value = "0.75")]
    pub lr_decay_at: Vec<f64>,
    /// Channels of the first VGG stage (ResNets scale alike)
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub width: usize,
    /// The student's width [default: --width]
    #[arg(long, value_name = "N")]
    pub student_width: Option<usize>,
    /// Use the first N training images (0: all)
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub limit_train: usize,
    /// Use the first N test (or validation) images (0: all)
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub limit_test: usize,
    /// Hold out N training images (stratified, seeded) as a validation split to evaluate on
    #[arg(long, value_name = "N")]
    pub valid_from_train: Option<usize>,
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,
    /// Softmax temperature of the soft loss
    #[arg(long, value_name = "T", default_value_t = 4.0)]
    pub temperature: f64,
    #[arg(long, value_name = "X", default_value_t = 50.0)]
    pub feature_weight: f64,
    /// none (plain MSE, as CA-MKD) or teacher (MSE over the teacher map's mean square)
    #[arg(long, value_parser = text::<FeatureNorm>, default_value = "none")]
    pub feature_norm: FeatureNorm,
    /// Epochs with the feature term off at the start
    #[arg(long = "feature-delay", value_name = "E", default_value_t = 1.0)]
    pub feature_delay_epochs: f64,
    /// Epochs over which the feature weight then rises linearly
    #[arg(long = "feature-ramp", value_name = "E", default_value_t = 0.0)]
    pub feature_ramp_epochs: f64,
    /// Temperature of the screened softmax weights
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub tau: f64,
    /// Screening rule: below-mean, top-k:N, max-ce:X, relative:R (within R x the best CE), keep-all
    #[arg(long, value_parser = text::<ScreeningRule>, default_value = "below-mean")]
    pub screening: ScreeningRule,
}

impl RunConfig {
    /// What the evaluation split is called in logs and tables.
    pub fn eval_split(&self) -> &'static str {
        if self.valid_from_train.is_some() {
            "validation"
        } else {
            "test"
        }
    }

    /// The student's width.
    pub fn student_width(&self) -> usize {
        self.student_width.unwrap_or(self.width)
    }

    /// Checks what the types cannot.
    pub fn check(&self) -> Result<(), String> {
        let counts = [
            ("--epochs", self.epochs),
            ("--teacher-epochs", self.teacher_epochs),
        ];
        let sizes = [
            ("--batch-size", self.batch_size),
            ("--width", self.width),
            ("--student-width", self.student_width()),
        ];
        if let Some((flag, _)) = counts
            .into_iter()
            .chain(sizes)
            .find(|(_, value)| *value == 0)
        {
            return Err(format!("{flag} must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("--lr {} must be a positive number", self.lr));
        }
        if self.teachers.is_empty() {
            return Err("--teachers: give at least one teacher".into());
        }
        Ok(())
    }
}
