//! The tutorial's command-line options (clap, derive) and their typed values.

use std::path::PathBuf;

use burn::tensor::Device;
use burn_distill::FeatureNorm;

use clap::{Parser, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    about = "Distil two CIFAR teachers into a small VGG8 student with burn-train, and train \
             the same student alone to compare.",
    after_help = "Environment:
  BURN_DISTILL_CIFAR100_URL, BURN_DISTILL_CIFAR100_SIZE, BURN_DISTILL_CIFAR100_MD5
      replace the download's address, size in bytes and MD5 (a mirror); likewise
      BURN_DISTILL_CIFAR10_URL, _SIZE and _MD5 for --dataset cifar10.
  XDG_CACHE_HOME    where the data is cached (default ~/.cache): <cache>/burn-distill/.
  RAYON_NUM_THREADS CPU threads of the flex and ndarray backends.
  CUBECL_WGPU_DEFAULT_DEVICE  the wgpu adapter, e.g. DiscreteGpu(0)."
)]
pub struct Args {
    /// Which CIFAR.
    #[arg(long, value_enum, default_value_t = Dataset::Cifar100)]
    pub dataset: Dataset,
    /// Folder with the official binary files (or burn-dataset's PNG folders). Default: the
    /// cache, ~/.cache/burn-distill/<cifar-100|cifar-10>, downloaded there on first use.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Never download; fail with where to put the files instead.
    #[arg(long)]
    pub no_download: bool,
    /// Devices, comma-separated: flex, ndarray, tch, wgpu, wgpu:N, cuda, cuda:N (each with its
    /// feature). Several devices need --strategy multi or ddp; the first is the main one.
    #[arg(long, alias = "device", default_value = "flex", value_parser = parse_devices)]
    pub devices: DeviceList,
    /// How several devices train: multi (burn-train's MultiDevice, optimizer on the main
    /// device) or ddp (distributed data parallel, gradients all-reduced as a mean; CUDA
    /// devices only: Burn 0.22.1 has the all-reduce for CUDA alone).
    #[arg(long, value_enum, default_value_t = Strategy::Single)]
    pub strategy: Strategy,
    /// How the teachers are weighted per sample.
    #[arg(long, value_enum, default_value_t = WeightingChoice::Screened)]
    pub weighting: WeightingChoice,
    /// Feature distance: none (plain MSE) or teacher (MSE over the teacher map's mean square).
    #[arg(long, default_value = "none", value_parser = |s: &str| s.parse::<FeatureNorm>().map_err(|e| e.to_string()))]
    pub feature_norm: FeatureNorm,
    /// Weight of the feature term (0: logits only).
    #[arg(long, default_value_t = 50.0)]
    pub feature_weight: f64,
    /// Epochs at the start with the feature term off, then the library's ramp (default:
    /// the library's schedule, 100 steps off and a 200-step ramp).
    #[arg(long)]
    pub feature_delay_epochs: Option<usize>,
    #[arg(long, default_value_t = 4)]
    pub teacher_epochs: usize,
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Channels of the first stage (64 = the literature's models).
    #[arg(long, default_value_t = 16)]
    pub width: usize,
    /// Training images used (0: all).
    #[arg(long, default_value_t = 5000)]
    pub limit_train: usize,
    /// Test images used (0: all).
    #[arg(long, default_value_t = 2000)]
    pub limit_test: usize,
    /// Hold out this many training images (stratified by class, seeded) and evaluate on
    /// them, reported as "validation", instead of the test split.
    #[arg(long)]
    pub valid_from_train: Option<usize>,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value = "runs/cifar100")]
    pub out: PathBuf,
    /// Continue the distillation from the last epoch checkpointed in --out; a checkpoint made
    /// with other training options is refused (--epochs may grow, the devices may change).
    #[arg(long)]
    pub resume: bool,
    /// Skip the baseline: the same student (same initial weights, batches and optimizer)
    /// trained alone on the labels, to show what distillation adds.
    #[arg(long)]
    pub no_baseline: bool,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Dataset {
    Cifar100,
    Cifar10,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// One device.
    Single,
    /// burn-train's MultiDevice strategy.
    Multi,
    /// burn-train's distributed data parallel strategy.
    Ddp,
}

/// The devices of `--devices`, main device first.
#[derive(Clone, Debug)]
pub struct DeviceList(pub Vec<Device>);

/// `--devices`: the library's parser, one error naming the bad entry.
fn parse_devices(list: &str) -> Result<DeviceList, String> {
    burn_distill::devices::parse_devices(list)
        .map(DeviceList)
        .map_err(|e| e.to_string())
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum WeightingChoice {
    /// Screened cross-entropy weighting (this library's method).
    Screened,
    /// AVER: every teacher 1/K.
    Average,
    /// CA-MKD's confidence weights.
    Confidence,
    /// EBKD's entropy weights.
    Entropy,
}
