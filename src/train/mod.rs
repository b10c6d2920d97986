//! Training glue: the [`DistillBatch`] every training loop feeds the distiller,
//! `DistillBatcher` (features `vision` or `train`) that makes one from dataset items of any
//! input type, and, with the
//! `train` feature, burn-train integration: [`crate::Distiller`] as a `TrainStep` /
//! `InferenceStep`, its output type, metrics for each loss term and each teacher's keep rate
//! and mean weight (all registered at once by `DistillMetrics`), `Classifier` for plain
//! training of teachers and baselines in the same loop, and a run folder's last complete
//! checkpoint (`last_checkpoint`) and per-epoch history (`read_history`).
//!
//! With the `train` feature, a burn-train run:
#![cfg_attr(
    feature = "train",
    doc = r#"```no_run
# // Compiled, not run: a full training loop is exercised in `tests/suite/training.rs`.
use burn::optim::SgdConfig;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Learner, SupervisedTraining};
use burn_distill::Distiller;
use burn_distill::models::Cnn;
use burn_distill::train::{LossPart, LossPartMetric, ProgressRenderer};
# fn run(distiller: Distiller<Cnn>,
#        train: std::sync::Arc<dyn burn::data::dataloader::DataLoader<burn_distill::DistillBatch>>,
#        valid: std::sync::Arc<dyn burn::data::dataloader::DataLoader<burn_distill::DistillBatch>>) {
let learner = Learner::new(distiller, SgdConfig::new().init(), ConstantLr::new(0.05));
let result = SupervisedTraining::new("/tmp/run", train, valid)
    .metric_train_numeric(AccuracyMetric::new())
    .metric_valid_numeric(AccuracyMetric::new())
    .metric_train_numeric(LossMetric::new())
    .metric_train_numeric(LossPartMetric::new(LossPart::Soft))
    .metric_train_numeric(LossPartMetric::new(LossPart::Feature))
    // The feature term's scheduled weight: why the total rises while it ramps in.
    .metric_train_numeric(LossPartMetric::feature_weight())
    // One line per epoch and split in a log (a redrawn bar on a terminal), not a debug
    // dump per batch.
    .renderer(Box::new(ProgressRenderer::new()))
    .num_epochs(10)
    .launch(learner);
let student = result.model.into_student();
# }
```
"#
)]

use burn::tensor::{Int, Tensor};

#[cfg(any(feature = "vision", feature = "train"))]
mod batcher;
#[cfg(any(feature = "vision", feature = "train"))]
pub use batcher::{DistillBatcher, DistillItem};
#[cfg(feature = "train")]
mod history;
#[cfg(feature = "train")]
mod learner;
#[cfg(feature = "train")]
pub use history::{ClassifierMetrics, DistillMetrics, EpochRecord, last_checkpoint, read_history};
#[cfg(feature = "train")]
mod recipe;
#[cfg(feature = "train")]
pub use learner::*;
#[cfg(feature = "train")]
pub use recipe::SgdRecipeConfig;

/// A labelled batch of inputs (images by default).
///
/// # Shapes
/// - `inputs`: `N` samples (`[N, channels, height, width]` for images)
/// - `labels`: `[N]`
#[derive(Debug, Clone)]
pub struct DistillBatch<I = Tensor<4>> {
    /// The inputs.
    pub inputs: I,
    /// Class labels.
    pub labels: Tensor<1, Int>,
}

impl<I> DistillBatch<I> {
    /// A batch of `inputs` with their `labels`.
    pub fn new(inputs: I, labels: Tensor<1, Int>) -> Self {
        Self { inputs, labels }
    }
}
