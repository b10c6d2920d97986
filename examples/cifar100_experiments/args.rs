//! Command-line options (clap) and the typed run configuration they resolve to.

use std::path::PathBuf;

use burn_distill::{FeatureNorm, ScreeningRule};
use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};

const ENVIRONMENT: &str = "\
ENVIRONMENT
  BURN_DISTILL_CIFAR100_URL, _SIZE, _MD5   replace the CIFAR-100 archive's address, size in bytes
                   and MD5 (mirrors); BURN_DISTILL_CIFAR10_... likewise";

/// burn-distill CIFAR experiments: train teachers, distill a student, evaluate, export, and
/// compare every weighting method over seeds (ablation). Every run trains with burn-train.
#[derive(Parser, Debug)]
#[command(
    name = "cifar100_experiments",
    args_override_self = true,
    help_template = "{about}\n\nUSAGE: {usage}\n\n{all-args}\n\n{after-help}",
    after_help = ENVIRONMENT
)]
pub struct Cli {
    /// Stages to run, in this order whatever the order given [default: train-teachers
    /// distill eval]
    #[arg(value_enum)]
    pub stages: Vec<Stage>,
    /// quick: narrow models, a 5,000-image subset, a few epochs (~10 min on 2 cores);
    /// paper: the literature's models and 240-epoch schedule
    #[arg(long, value_enum, default_value_t = Preset::Quick)]
    pub preset: Preset,
    #[arg(long, value_enum)]
    pub device: Option<DeviceChoice>,
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetChoice>,
    /// Folder with the data (CIFAR: binary files or PNG folders; Fashion-MNIST: IDX files)
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Never download: fail with where to put the files instead
    #[arg(long)]
    pub no_download: bool,
    /// Teacher architectures; `arch:N` trains that one for N epochs only (a weak teacher)
    #[arg(long, value_delimiter = ',', value_parser = parse_teacher)]
    pub teachers: Option<Vec<TeacherSpec>>,
    /// Weights for the teachers, in order: .bpk, .safetensors or PyTorch .pt/.pth
    /// (RepDistiller layout)
    #[arg(long, value_delimiter = ',')]
    pub teacher_weights: Vec<PathBuf>,
    #[arg(long, value_enum)]
    pub student: Option<Arch>,
    #[arg(long, value_enum)]
    pub weighting: Option<WeightingChoice>,
    /// Student epochs
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    #[arg(long, value_name = "N")]
    pub teacher_epochs: Option<usize>,
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Initial learning rate (SGD, momentum 0.9, weight decay 5e-4)
    #[arg(long, value_name = "X")]
    pub lr: Option<f64>,
    /// Channels of the first VGG stage (ResNets scale alike)
    #[arg(long, value_name = "N")]
    pub width: Option<usize>,
    /// The student's width, if it should differ from --width
    #[arg(long, value_name = "N")]
    pub student_width: Option<usize>,
    #[arg(long, value_name = "N")]
    pub limit_train: Option<usize>,
    /// Use the first N test (or validation) images
    #[arg(long, value_name = "N")]
    pub limit_test: Option<usize>,
    /// Hold out N training images (stratified, seeded) and evaluate on them, reported as
    /// validation: for data without a test split and for every hyper-parameter choice
    #[arg(long, value_name = "N")]
    pub valid_from_train: Option<usize>,
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Seeds per method in the ablation
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub seeds: usize,
    /// Only the ablation rows whose name contains one of these ('A|B')
    #[arg(long, value_name = "A|B", value_delimiter = '|')]
    pub only: Vec<String>,
    /// The ablation's rows: a JSON list like examples/cifar100_experiments/grid.json (the
    /// default)
    #[arg(long, value_name = "FILE")]
    pub grid: Option<PathBuf>,
    /// Leave out the ablation rows whose name contains one of these ('A|B'), after --only
    #[arg(long, value_name = "A|B", value_delimiter = '|')]
    pub skip: Vec<String>,
    /// Temperature of the screened softmax weights
    #[arg(long, value_name = "X")]
    pub tau: Option<f64>,
    /// Screening rule of the screened methods: below-mean, top-k:N or relative:R (keep
    /// teachers within R times the best one's cross-entropy)
    #[arg(long, value_parser = parse_screening)]
    pub screening: Option<ScreeningRule>,
    /// Softmax temperature of the soft loss
    #[arg(long, value_name = "T")]
    pub temperature: Option<f64>,
    #[arg(long, value_name = "X")]
    pub feature_weight: Option<f64>,
    /// Epochs with the feature term off at the start
    #[arg(long, value_name = "E")]
    pub feature_delay: Option<f64>,
    /// Epochs over which the feature weight then rises linearly
    #[arg(long, value_name = "E")]
    pub feature_ramp: Option<f64>,
    #[arg(long, value_enum)]
    pub feature_norm: Option<FeatureNormChoice>,
    #[arg(long, default_value = "runs/cifar100")]
    pub out: PathBuf,
    /// Continue from the checkpoints (and finished ablation runs) in --out
    #[arg(long)]
    pub resume: bool,
    /// Before distilling, drop the teachers above the mean cross-entropy on the first 1,000
    /// training images
    #[arg(long)]
    pub prescreen: bool,
    /// The select stage: --out folders of finished ablations, one per teacher pool
    #[arg(long, value_delimiter = ',', value_name = "DIR,DIR")]
    pub pools: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Stage {
    /// Train (or load) the teachers and report their accuracy
    TrainTeachers,
    /// Distill the student from the teachers
    Distill,
    /// The student with every method over --seeds seeds; ablation.md / .json / .png
    Ablation,
    /// What each weighting rule makes of the teachers, without training; screening.md
    Screening,
    /// Evaluate the exported student and the teachers; print the results table
    Eval,
    /// Apply the rule for the library's default to the ablations in --pools; selection.md
    /// in --out (reads only their ablation.json: no data, no training)
    Select,
    /// train-teachers, distill, eval
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
pub enum Preset {
    Quick,
    Paper,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
pub enum DeviceChoice {
    Flex,
    Ndarray,
    Wgpu,
    Tch,
    /// An NVIDIA GPU through Burn's CUDA backend (build with `--features cuda`)
    Cuda,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
pub enum DatasetChoice {
    Cifar100,
    Cifar10,
    FashionMnist,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
pub enum Arch {
    Vgg8,
    Vgg13,
    #[value(name = "resnet8x4")]
    Resnet8x4,
    #[value(name = "resnet32x4")]
    Resnet32x4,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
pub enum WeightingChoice {
    /// Screened per batch (the library's default)
    Screened,
    /// The seed paper's per-sample rule
    ScreenedPerSample,
    Average,
    Confidence,
    Entropy,
    SingleBest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
pub enum FeatureNormChoice {
    /// Plain MSE (CA-MKD)
    None,
    /// MSE over the teacher feature's mean square (scale-free)
    Teacher,
}

impl From<FeatureNormChoice> for FeatureNorm {
    fn from(choice: FeatureNormChoice) -> Self {
        match choice {
            FeatureNormChoice::None => FeatureNorm::None,
            FeatureNormChoice::Teacher => FeatureNorm::TeacherMeanSquare,
        }
    }
}

/// A teacher: its architecture and, for a deliberately weak one, its own epoch count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeacherSpec {
    pub arch: Arch,
    pub epochs: Option<usize>,
}

impl TeacherSpec {
    /// `vgg13`, or `vgg13-e1` for `vgg13:1`.
    pub fn slug(&self) -> String {
        let arch = self
            .arch
            .to_possible_value()
            .map(|v| v.get_name().to_string());
        let arch = arch.unwrap_or_default();
        match self.epochs {
            Some(e) => format!("{arch}-e{e}"),
            None => arch,
        }
    }
}

fn parse_teacher(text: &str) -> Result<TeacherSpec, String> {
    let (arch, epochs) = match text.split_once(':') {
        Some((arch, epochs)) => (arch, Some(epochs)),
        None => (text, None),
    };
    let arch = Arch::from_str(arch, true).map_err(|_| {
        format!("unknown architecture '{arch}' (vgg8, vgg13, resnet8x4, resnet32x4)")
    })?;
    let epochs = epochs
        .map(|e| {
            e.parse()
                .map_err(|_| format!("invalid epochs in teacher '{text}'"))
        })
        .transpose()?;
    Ok(TeacherSpec { arch, epochs })
}

fn parse_screening(text: &str) -> Result<ScreeningRule, String> {
    let bad = || format!("unknown screening '{text}' (below-mean, top-k:N or relative:R)");
    match text {
        "below-mean" => Ok(ScreeningRule::BelowMean),
        _ => {
            if let Some(k) = text.strip_prefix("top-k:") {
                k.parse().map(ScreeningRule::TopK).map_err(|_| bad())
            } else if let Some(ratio) = text.strip_prefix("relative:") {
                ratio
                    .parse()
                    .map(ScreeningRule::RelativeToBest)
                    .map_err(|_| bad())
            } else {
                Err(bad())
            }
        }
    }
}

/// Everything a run's results depend on, resolved from the preset and the options; saved with
/// the checkpoints so that a resume can check it matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub preset: Preset,
    pub device: DeviceChoice,
    pub dataset: DatasetChoice,
    pub teachers: Vec<TeacherSpec>,
    pub student: Arch,
    pub weighting: WeightingChoice,
    pub epochs: usize,
    pub teacher_epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Fractions of the run after which the learning rate is multiplied by 0.1.
    pub lr_decay_at: Vec<f64>,
    pub width: usize,
    pub student_width: usize,
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
    pub valid_from_train: Option<usize>,
    pub seed: u64,
    pub temperature: f64,
    pub feature_weight: f64,
    pub feature_norm: FeatureNorm,
    pub feature_delay_epochs: f64,
    pub feature_ramp_epochs: f64,
    pub tau: f64,
    pub screening: ScreeningRule,
}

impl RunConfig {
    /// The preset, with every option given on the command line applied.
    pub fn resolve(cli: &Cli) -> Self {
        let quick = Self {
            preset: Preset::Quick,
            device: DeviceChoice::Flex,
            dataset: DatasetChoice::Cifar100,
            // ResNet32x4 costs ~5x a VGG13 per image: the quick preset uses ResNet8x4.
            teachers: [Arch::Vgg13, Arch::Resnet8x4]
                .map(|arch| TeacherSpec { arch, epochs: None })
                .to_vec(),
            student: Arch::Vgg8,
            weighting: WeightingChoice::Screened,
            epochs: 3,
            teacher_epochs: 4,
            batch_size: 64,
            lr: 0.05,
            lr_decay_at: vec![0.75],
            width: 16,
            student_width: 16,
            limit_train: Some(5000),
            limit_test: Some(2000),
            valid_from_train: None,
            seed: 42,
            temperature: 4.0,
            feature_weight: 50.0,
            feature_norm: FeatureNorm::None,
            feature_delay_epochs: 1.0,
            feature_ramp_epochs: 0.0,
            tau: 1.0,
            screening: ScreeningRule::BelowMean,
        };
        let preset = match cli.preset {
            Preset::Quick => quick,
            // Tian et al. (2020) / Zhang et al. (2022): 240 epochs, batch 64, SGD momentum
            // 0.9, weight decay 5e-4, lr 0.05 x0.1 at epochs 150, 180 and 210.
            Preset::Paper => Self {
                preset: Preset::Paper,
                epochs: 240,
                teacher_epochs: 240,
                lr_decay_at: vec![150.0 / 240.0, 180.0 / 240.0, 210.0 / 240.0],
                teachers: [Arch::Vgg13, Arch::Resnet32x4]
                    .map(|arch| TeacherSpec { arch, epochs: None })
                    .to_vec(),
                width: 64,
                student_width: 64,
                limit_train: None,
                limit_test: None,
                ..quick
            },
        };
        let width = cli.width.unwrap_or(preset.width);
        Self {
            device: cli.device.unwrap_or(preset.device),
            dataset: cli.dataset.unwrap_or(preset.dataset),
            teachers: cli.teachers.clone().unwrap_or(preset.teachers),
            student: cli.student.unwrap_or(preset.student),
            weighting: cli.weighting.unwrap_or(preset.weighting),
            epochs: cli.epochs.unwrap_or(preset.epochs),
            teacher_epochs: cli.teacher_epochs.unwrap_or(preset.teacher_epochs),
            batch_size: cli.batch_size.unwrap_or(preset.batch_size),
            lr: cli.lr.unwrap_or(preset.lr),
            width,
            student_width: cli.student_width.unwrap_or(width),
            limit_train: cli.limit_train.or(preset.limit_train),
            limit_test: cli.limit_test.or(preset.limit_test),
            valid_from_train: cli.valid_from_train,
            seed: cli.seed.unwrap_or(preset.seed),
            temperature: cli.temperature.unwrap_or(preset.temperature),
            feature_weight: cli.feature_weight.unwrap_or(preset.feature_weight),
            feature_norm: cli.feature_norm.map_or(preset.feature_norm, Into::into),
            feature_delay_epochs: cli.feature_delay.unwrap_or(preset.feature_delay_epochs),
            feature_ramp_epochs: cli.feature_ramp.unwrap_or(preset.feature_ramp_epochs),
            tau: cli.tau.unwrap_or(preset.tau),
            screening: cli.screening.clone().unwrap_or(preset.screening),
            ..preset
        }
    }

    /// What the evaluation split is called in logs and tables.
    pub fn eval_split(&self) -> &'static str {
        if self.valid_from_train.is_some() {
            "validation"
        } else {
            "test"
        }
    }

    /// Checks what the types cannot.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("--epochs", self.epochs),
            ("--teacher-epochs", self.teacher_epochs),
            ("--batch-size", self.batch_size),
            ("--width", self.width),
            ("--student-width", self.student_width),
        ];
        for (flag, value) in positive {
            if value == 0 {
                return Err(format!("{flag} must be at least 1"));
            }
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
