//! Command-line options and presets.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub const HELP: &str = "\
burn-distill CIFAR example: train teachers, distill a student, evaluate, export.

USAGE: cargo run --release --example cifar100_experiments -- [STAGE] [OPTIONS]

STAGES (default, or `all`: train-teachers, distill, eval; `ablation` runs only when named)
  train-teachers   train (or load) the teachers and report their test accuracy
  distill          distill the student from the teachers (needs trained teachers)
  eval             evaluate the exported student and the teachers, print the results table
  ablation         train the teachers once, then the student with every method (alone,
                   single-best KD, FitNets, AVER, CA-MKD, EBKD, screened per sample / per
                   batch) over --seeds seeds; writes ablation.md and ablation.json
  screening        train (or load) the teachers, then measure what each weighting rule makes
                   of them on the training images (soft-target accuracy, weight on right
                   teachers, keep rates) without training a student; writes screening.md

OPTIONS
  --preset quick|paper      quick (default): narrow models (VGG13 + ResNet8x4 teachers), a
                            5,000-image subset and a few epochs, ~10 min on a 2-core CPU;
                            paper: the literature's models (VGG13 + ResNet32x4) and schedule
  --device flex|ndarray|wgpu|tch
  --dataset cifar100|cifar10|fashion-mnist
  --data-dir DIR            folder with the data files (default for CIFAR: the official binary
                            files in ~/.cache/burn-distill/<cifar-100|cifar-10>, else the PNG
                            folders burn-dataset's CifarDataset caches in
                            ~/.cache/burn-dataset/<cifar100|cifar10>, else downloaded into the
                            first (with the `download` feature); for Fashion-MNIST:
                            /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist)
  --no-download             never download: fail with where to put the files instead
  --teachers A,B,..         teacher architectures: vgg8, vgg13, resnet8x4, resnet32x4; `arch:N`
                            trains that teacher for N epochs only (a deliberately weak teacher)
  --teacher-weights F,..    weights for the teachers, in the same order: Burn records
                            (.bpk), .safetensors, or PyTorch .pt/.pth (RepDistiller layout)
  --student ARCH            student architecture (default vgg8)
  --weighting W             screened (default: per batch, the library's default),
                            screened-per-sample (the seed paper's rule), average,
                            confidence, entropy, single-best
  --epochs N                student epochs
  --teacher-epochs N        teacher epochs
  --batch-size N
  --lr X                    initial learning rate
  --width N                 channels of the first VGG stage (ResNets scale alike)
  --student-width N         the student's width, if it should differ (default: --width)
  --limit-train N           use the first N training images
  --limit-test N            use the first N test (or validation) images
  --valid-from-train N      hold out N training images (stratified by class, seeded by --seed)
                            and evaluate on them instead of the test split; reported as
                            validation. For data without a test split (../shared/data)
                            and for every choice of hyper-parameters
  --seed N
  --seeds N                 seeds per method in the ablation stage (default 3)
  --only 'A|B'              only the ablation rows whose name contains A or B (e.g.
                            'screened, per sample|AVER'), for a grid over one setting
  --tau X                   temperature of the screened softmax weights (default 1)
  --screening below-mean|top-k:N
                            screening rule of the screened methods (default below-mean, the
                            seed paper's; top-k:1 keeps each sample's best teacher only)
  --temperature T           softmax temperature of the soft loss (default 4)
  --feature-weight X        weight of the feature loss (default 50, as in CA-MKD)
  --feature-delay E         epochs with the feature term off at the start (default 1, as in
                            CA-MKD; the library's feature_delay_steps)
  --feature-ramp E          epochs over which the feature weight then rises linearly to its
                            full value (default 0; the library's feature_ramp_steps)
  --feature-norm none|teacher
                            feature distance: plain MSE (none, default, as in CA-MKD) or MSE
                            divided by the teacher map's mean square (teacher: scale-free)
  --out DIR                 output folder (default: runs/cifar100)
  --resume                  continue from the checkpoints in --out
  --prescreen               before distilling, evaluate the teachers on the first 1,000
                            training images and drop those above the mean cross-entropy
  -h, --help

ENVIRONMENT
  BURN_DISTILL_CIFAR100_URL, _SIZE, _MD5   replace the CIFAR-100 archive's address, size in
                            bytes and MD5 (mirrors); BURN_DISTILL_CIFAR10_... likewise. The
                            official archives are 168,513,733 (CIFAR-100) and 170,052,171
                            (CIFAR-10) bytes from https://www.cs.toronto.edu/~kriz/
";

/// Everything a run depends on; saved with checkpoints so a resume can check it matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub preset: String,
    pub device: String,
    pub dataset: String,
    pub teachers: Vec<String>,
    pub student: String,
    pub weighting: String,
    pub epochs: usize,
    pub teacher_epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Epochs (as fractions of the run) at which the learning rate is multiplied by 0.1.
    pub lr_decay_at: Vec<f64>,
    pub width: usize,
    /// The student's first-stage width, when it differs from the teachers' (`width`).
    #[serde(default)]
    pub student_width: Option<usize>,
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
    pub seed: u64,
    pub temperature: f64,
    pub hard_weight: f64,
    pub soft_weight: f64,
    pub feature_weight: f64,
    /// `none` (plain MSE) or `teacher` (MSE over the teacher map's mean square).
    #[serde(default = "feature_norm_none")]
    pub feature_norm: String,
    /// Evaluate on this many held-out training images instead of the test split.
    #[serde(default)]
    pub valid_from_train: Option<usize>,
    /// Epochs with the feature term off, then epochs of its linear ramp.
    #[serde(default = "one")]
    pub feature_delay_epochs: f64,
    #[serde(default)]
    pub feature_ramp_epochs: f64,
    /// Temperature of the screened softmax weights.
    #[serde(default = "one")]
    pub tau: f64,
    /// Screening rule of the screened methods: `below-mean` or `top-k:N`.
    #[serde(default = "below_mean")]
    pub screening: String,
}

fn below_mean() -> String {
    "below-mean".into()
}

fn one() -> f64 {
    1.0
}

fn feature_norm_none() -> String {
    "none".into()
}

pub struct Args {
    pub stages: Vec<String>,
    pub config: RunConfig,
    pub data_dir: Option<PathBuf>,
    pub teacher_weights: Vec<PathBuf>,
    pub out: PathBuf,
    pub resume: bool,
    /// Drop teachers above the mean cross-entropy before distilling.
    pub prescreen: bool,
    /// Never download missing CIFAR data.
    pub no_download: bool,
    /// Seeds per method in the ablation stage.
    pub seeds: usize,
    /// Ablation rows to run: those whose name contains one of these (all when empty).
    pub only: Vec<String>,
}

impl RunConfig {
    /// The student's first-stage width.
    pub fn student_width(&self) -> usize {
        self.student_width.unwrap_or(self.width)
    }

    /// What the evaluation split is called in logs and tables.
    pub fn eval_split(&self) -> &'static str {
        if self.valid_from_train.is_some() {
            "validation"
        } else {
            "test"
        }
    }
}

fn preset(name: &str) -> Result<RunConfig, String> {
    let quick = RunConfig {
        preset: "quick".into(),
        device: "flex".into(),
        dataset: "cifar100".into(),
        // ResNet32x4 costs ~5x a VGG13 per image: the quick preset uses ResNet8x4.
        teachers: vec!["vgg13".into(), "resnet8x4".into()],
        student: "vgg8".into(),
        weighting: "screened".into(),
        epochs: 3,
        teacher_epochs: 4,
        batch_size: 64,
        lr: 0.05,
        lr_decay_at: vec![0.75],
        width: 16,
        student_width: None,
        limit_train: Some(5000),
        limit_test: Some(2000),
        seed: 42,
        temperature: 4.0,
        hard_weight: 1.0,
        soft_weight: 1.0,
        feature_weight: 50.0,
        feature_norm: feature_norm_none(),
        valid_from_train: None,
        feature_delay_epochs: 1.0,
        feature_ramp_epochs: 0.0,
        tau: 1.0,
        screening: below_mean(),
    };
    match name {
        "quick" => Ok(quick),
        // Tian et al. (2020) / Zhang et al. (2022): 240 epochs, batch 64, SGD momentum 0.9,
        // weight decay 5e-4, lr 0.05 x0.1 at epochs 150, 180 and 210.
        "paper" => Ok(RunConfig {
            preset: "paper".into(),
            epochs: 240,
            teacher_epochs: 240,
            lr_decay_at: vec![150.0 / 240.0, 180.0 / 240.0, 210.0 / 240.0],
            teachers: vec!["vgg13".into(), "resnet32x4".into()],
            width: 64,
            limit_train: None,
            limit_test: None,
            ..quick
        }),
        other => Err(format!(
            "unknown preset '{other}' (expected quick or paper)"
        )),
    }
}

fn value<T: std::str::FromStr>(flag: &str, raw: Option<String>) -> Result<T, String> {
    let raw = raw.ok_or_else(|| format!("{flag} needs a value"))?;
    raw.parse()
        .map_err(|_| format!("invalid value '{raw}' for {flag}"))
}

fn list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

pub fn parse(raw: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let raw: Vec<String> = raw.collect();
    // The preset comes first so that other options override it.
    let preset_name = raw
        .iter()
        .position(|a| a == "--preset")
        .and_then(|i| raw.get(i + 1).cloned())
        .unwrap_or_else(|| "quick".into());
    let mut config = preset(&preset_name)?;
    let mut args = Args {
        stages: Vec::new(),
        config: config.clone(),
        data_dir: None,
        teacher_weights: Vec::new(),
        out: PathBuf::from("runs/cifar100"),
        resume: false,
        prescreen: false,
        no_download: false,
        seeds: 3,
        only: Vec::new(),
    };
    let mut it = raw.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--preset" => {
                it.next();
            }
            "--device" => config.device = value(&arg, it.next())?,
            "--dataset" => config.dataset = value(&arg, it.next())?,
            "--data-dir" => args.data_dir = Some(value(&arg, it.next())?),
            "--teachers" => config.teachers = list(&value::<String>(&arg, it.next())?),
            "--teacher-weights" => {
                args.teacher_weights = list(&value::<String>(&arg, it.next())?)
                    .into_iter()
                    .map(PathBuf::from)
                    .collect()
            }
            "--student" => config.student = value(&arg, it.next())?,
            "--weighting" => config.weighting = value(&arg, it.next())?,
            "--epochs" => config.epochs = value(&arg, it.next())?,
            "--teacher-epochs" => config.teacher_epochs = value(&arg, it.next())?,
            "--batch-size" => config.batch_size = value(&arg, it.next())?,
            "--lr" => config.lr = value(&arg, it.next())?,
            "--width" => config.width = value(&arg, it.next())?,
            "--student-width" => config.student_width = Some(value(&arg, it.next())?),
            "--limit-train" => config.limit_train = Some(value(&arg, it.next())?),
            "--limit-test" => config.limit_test = Some(value(&arg, it.next())?),
            "--valid-from-train" => config.valid_from_train = Some(value(&arg, it.next())?),
            "--feature-delay" => config.feature_delay_epochs = value(&arg, it.next())?,
            "--feature-ramp" => config.feature_ramp_epochs = value(&arg, it.next())?,
            "--seed" => config.seed = value(&arg, it.next())?,
            "--out" => args.out = value(&arg, it.next())?,
            "--resume" => args.resume = true,
            "--prescreen" => args.prescreen = true,
            "--no-download" => args.no_download = true,
            "--seeds" => args.seeds = value(&arg, it.next())?,
            "--only" => {
                args.only = value::<String>(&arg, it.next())?
                    .split('|')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "--tau" => config.tau = value(&arg, it.next())?,
            "--screening" => config.screening = value(&arg, it.next())?,
            "--temperature" => config.temperature = value(&arg, it.next())?,
            "--feature-weight" => config.feature_weight = value(&arg, it.next())?,
            "--feature-norm" => config.feature_norm = value(&arg, it.next())?,
            "all" | "train-teachers" | "distill" | "eval" | "ablation" | "screening" => {
                args.stages.push(arg)
            }
            other => return Err(format!("unknown argument '{other}' (see --help)")),
        }
    }
    check(&config)?;
    if !args.teacher_weights.is_empty() && args.teacher_weights.len() != config.teachers.len() {
        return Err(format!(
            "--teacher-weights has {} files for {} teachers",
            args.teacher_weights.len(),
            config.teachers.len()
        ));
    }
    if args.seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    if args.stages.is_empty() || args.stages.iter().any(|s| s == "all") {
        args.stages = vec!["train-teachers".into(), "distill".into(), "eval".into()];
    }
    args.config = config;
    Ok(Some(args))
}

fn check(c: &RunConfig) -> Result<(), String> {
    const ARCHS: [&str; 4] = ["vgg8", "vgg13", "resnet8x4", "resnet32x4"];
    if c.teachers.is_empty() {
        return Err("--teachers is empty: give at least one teacher".into());
    }
    for spec in c.teachers.iter().chain(std::iter::once(&c.student)) {
        let (arch, epochs) = crate::training::split_spec(spec);
        if !ARCHS.contains(&arch) {
            return Err(format!(
                "unknown architecture '{arch}' (expected one of {ARCHS:?})"
            ));
        }
        if epochs.is_some_and(|e| e.parse::<usize>().map_or(true, |e| e == 0)) {
            return Err(format!(
                "invalid teacher '{spec}': write arch:epochs with epochs >= 1"
            ));
        }
    }
    if c.student.contains(':') {
        return Err(format!(
            "invalid student '{}': give an architecture only",
            c.student
        ));
    }
    if !["flex", "ndarray", "wgpu", "tch"].contains(&c.device.as_str()) {
        return Err(format!(
            "unknown device '{}' (expected flex, ndarray, wgpu or tch)",
            c.device
        ));
    }
    if !["cifar100", "cifar10", "fashion-mnist"].contains(&c.dataset.as_str()) {
        return Err(format!(
            "unknown dataset '{}' (expected cifar100, cifar10 or fashion-mnist)",
            c.dataset
        ));
    }
    let weightings = [
        "screened",
        "screened-per-sample",
        "average",
        "confidence",
        "entropy",
        "single-best",
    ];
    if !weightings.contains(&c.weighting.as_str()) {
        return Err(format!(
            "unknown weighting '{}' (expected one of {weightings:?})",
            c.weighting
        ));
    }
    if c.batch_size == 0 || c.width == 0 || c.epochs == 0 || c.student_width == Some(0) {
        return Err("--batch-size, --width and --epochs must be at least 1".into());
    }
    if !(c.temperature.is_finite() && c.temperature > 0.0) {
        return Err(format!(
            "--temperature must be a positive number, got {}",
            c.temperature
        ));
    }
    if !(c.feature_weight.is_finite() && c.feature_weight >= 0.0) {
        return Err(format!(
            "--feature-weight must be a number >= 0, got {}",
            c.feature_weight
        ));
    }
    if !["none", "teacher"].contains(&c.feature_norm.as_str()) {
        return Err(format!(
            "--feature-norm must be none or teacher, got '{}'",
            c.feature_norm
        ));
    }
    screening_rule(&c.screening)?;
    if !(c.tau.is_finite() && c.tau > 0.0) {
        return Err(format!("--tau must be a positive number, got {}", c.tau));
    }
    for (flag, x) in [
        ("--feature-delay", c.feature_delay_epochs),
        ("--feature-ramp", c.feature_ramp_epochs),
    ] {
        if !(x.is_finite() && x >= 0.0) {
            return Err(format!("{flag} must be a number of epochs >= 0, got {x}"));
        }
    }
    if !(c.lr.is_finite() && c.lr > 0.0) {
        return Err(format!("--lr must be a positive number, got {}", c.lr));
    }
    if c.limit_train == Some(0) || c.limit_test == Some(0) || c.valid_from_train == Some(0) {
        return Err("--limit-train, --limit-test and --valid-from-train must be at least 1".into());
    }
    Ok(())
}

/// The library's screening rule for `--screening`.
pub fn screening_rule(text: &str) -> Result<burn_distill::ScreeningRule, String> {
    match text.split_once(':') {
        None if text == "below-mean" => Ok(burn_distill::ScreeningRule::BelowMean),
        Some(("top-k", k)) => match k.parse::<usize>() {
            Ok(k) if k >= 1 => Ok(burn_distill::ScreeningRule::TopK(k)),
            _ => Err(format!("--screening top-k:N needs N >= 1, got '{k}'")),
        },
        _ => Err(format!(
            "--screening must be below-mean or top-k:N, got '{text}'"
        )),
    }
}
