//! burn-train integration (feature `train`): [`Distiller`] as a `TrainStep` /
//! `InferenceStep`, its batch and output types, and metrics for each loss part.
//!
//! ```no_run
//! # // Compiled, not run: a full training loop is exercised in `tests/training.rs`.
//! use burn::optim::SgdConfig;
//! use burn::optim::lr_scheduler::constant::ConstantLr;
//! use burn::train::metric::{AccuracyMetric, LossMetric};
//! use burn::train::{Learner, SupervisedTraining};
//! use burn_distill::Distiller;
//! use burn_distill::models::Cnn;
//! use burn_distill::train::{LossPart, LossPartMetric};
//! # fn run(distiller: Distiller<Cnn>,
//! #        train: std::sync::Arc<dyn burn::data::dataloader::DataLoader<burn_distill::DistillBatch>>,
//! #        valid: std::sync::Arc<dyn burn::data::dataloader::DataLoader<burn_distill::DistillBatch>>) {
//! let learner = Learner::new(distiller, SgdConfig::new().init(), ConstantLr::new(0.05));
//! let result = SupervisedTraining::new("/tmp/run", train, valid)
//!     .metric_train_numeric(AccuracyMetric::new())
//!     .metric_valid_numeric(AccuracyMetric::new())
//!     .metric_train_numeric(LossMetric::new())
//!     .metric_train_numeric(LossPartMetric::new(LossPart::Soft))
//!     .metric_train_numeric(LossPartMetric::new(LossPart::Feature))
//!     .num_epochs(10)
//!     .launch(learner);
//! let student = result.model.into_student();
//! # }
//! ```

use std::sync::Arc;

use burn::tensor::{Int, Tensor, TensorReadError};
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    AccuracyInput, Adaptor, ItemLazy, LossInput, Metric, MetricAttributes, MetricMetadata,
    MetricName, Numeric, NumericAttributes, NumericEntry, SerializedEntry,
};
use burn::train::{InferenceStep, TrainOutput, TrainStep};

use crate::distiller::{DistillBatch, Distiller};
use crate::selector::cross_entropy_per_sample;
use crate::teacher::{DistillInput, FeatureModel};

/// What one training or validation step reports to burn-train's metrics.
///
/// In validation only the student runs: `total` and `hard` are then the student's
/// cross-entropy, and `soft` and `feature` are 0.
#[derive(Debug, Clone)]
pub struct DistillStepOutput {
    /// Total loss, `[1]`.
    pub total: Tensor<1>,
    /// Hard-label cross-entropy, `[1]`.
    pub hard: Tensor<1>,
    /// Weighted soft-label loss, `[1]`.
    pub soft: Tensor<1>,
    /// Weighted feature loss, `[1]`.
    pub feature: Tensor<1>,
    /// Student logits, `[N, C]`.
    pub logits: Tensor<2>,
    /// Labels, `[N]`.
    pub labels: Tensor<1, Int>,
}

impl ItemLazy for DistillStepOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        self.total.device().flush()?;
        Ok(Self {
            total: self.total.without_autodiff(),
            hard: self.hard.without_autodiff(),
            soft: self.soft.without_autodiff(),
            feature: self.feature.without_autodiff(),
            logits: self.logits.without_autodiff(),
            labels: self.labels.without_autodiff(),
        })
    }
}

impl Adaptor<AccuracyInput> for DistillStepOutput {
    fn adapt(&self) -> AccuracyInput {
        AccuracyInput::new(self.logits.clone(), self.labels.clone())
    }
}

impl Adaptor<LossInput> for DistillStepOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.total.clone())
    }
}

/// The loss parts, as the input of [`LossPartMetric`].
#[derive(Debug, Clone)]
pub struct LossPartsInput {
    hard: Tensor<1>,
    soft: Tensor<1>,
    feature: Tensor<1>,
}

impl Adaptor<LossPartsInput> for DistillStepOutput {
    fn adapt(&self) -> LossPartsInput {
        LossPartsInput {
            hard: self.hard.clone(),
            soft: self.soft.clone(),
            feature: self.feature.clone(),
        }
    }
}

/// One part of the distillation loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossPart {
    /// Hard-label cross-entropy.
    Hard,
    /// Teacher-weighted soft-label loss.
    Soft,
    /// Teacher-weighted feature loss.
    Feature,
}

/// A burn-train metric reporting one [`LossPart`] (unweighted), averaged over the epoch.
#[derive(Clone)]
pub struct LossPartMetric {
    part: LossPart,
    name: MetricName,
    state: NumericMetricState,
}

impl LossPartMetric {
    /// The metric for `part`, named "Loss (hard)", "Loss (soft)" or "Loss (feature)".
    pub fn new(part: LossPart) -> Self {
        let label = match part {
            LossPart::Hard => "hard",
            LossPart::Soft => "soft",
            LossPart::Feature => "feature",
        };
        Self {
            part,
            name: Arc::new(format!("Loss ({label})")),
            state: NumericMetricState::default(),
        }
    }
}

impl Metric for LossPartMetric {
    type Input = LossPartsInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: false,
        }
        .into()
    }

    fn update(
        &mut self,
        item: &Self::Input,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let tensor = match self.part {
            LossPart::Hard => &item.hard,
            LossPart::Soft => &item.soft,
            LossPart::Feature => &item.feature,
        };
        let value = tensor.clone().mean().try_into_scalar::<f64>()?;
        self.state.update(value, 1);
        Ok(self
            .state
            .compute_update(FormatOptions::new(self.name()).precision(4)))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self
            .state
            .compute_final(FormatOptions::new(self.name()).precision(4)))
    }

    fn clear(&mut self) {
        self.state.reset();
    }
}

impl Numeric for LossPartMetric {
    fn value(&self) -> Option<NumericEntry> {
        Some(self.state.current_value())
    }

    fn running_value(&self) -> Option<NumericEntry> {
        Some(self.state.running_value())
    }

    fn final_value(&self) -> NumericEntry {
        self.state.final_value()
    }
}

impl<S: FeatureModel<I> + 'static, I: DistillInput> TrainStep for Distiller<S, I> {
    type Input = DistillBatch<I>;
    type Output = DistillStepOutput;

    /// # Panics
    /// When the batch does not fit the student and teachers (see
    /// [`Distiller::forward`]'s errors); the message is the error's.
    fn step(&self, batch: DistillBatch<I>) -> TrainOutput<DistillStepOutput> {
        let out = self
            .forward(batch.inputs, batch.labels.clone())
            .unwrap_or_else(|err| panic!("distillation step failed: {err}"));
        let grads = out.loss.total.backward();
        let item = DistillStepOutput {
            total: out.loss.total,
            hard: out.loss.hard,
            soft: out.loss.soft,
            feature: out.loss.feature,
            logits: out.student_logits,
            labels: batch.labels,
        };
        TrainOutput::new(self, grads, item)
    }
}

impl<S: FeatureModel<I> + 'static, I: DistillInput> InferenceStep for Distiller<S, I> {
    type Input = DistillBatch<I>;
    type Output = DistillStepOutput;

    fn step(&self, batch: DistillBatch<I>) -> DistillStepOutput {
        let logits = self.student.forward_features(batch.inputs).logits;
        let hard = cross_entropy_per_sample(logits.clone(), batch.labels.clone()).mean();
        let zero = hard.zeros_like();
        DistillStepOutput {
            total: hard.clone(),
            hard,
            soft: zero.clone(),
            feature: zero,
            logits,
            labels: batch.labels,
        }
    }
}
