//! burn-train integration (feature `train`), re-exported by [`crate::train`].

use std::marker::PhantomData;
use std::sync::Arc;

use burn::module::Module;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer, MultiGradientsParams};

use burn::tensor::{Int, Tensor, TensorReadError};
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    AccuracyInput, Adaptor, ItemLazy, LossInput, Metric, MetricAttributes, MetricMetadata,
    MetricName, Numeric, NumericAttributes, NumericEntry, SerializedEntry,
};
use burn::train::metric::{MetricDefinition, MetricId};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};

use super::DistillBatch;
use crate::distiller::Distiller;
use crate::loss::DistillationLossOutput;
use crate::loss::cross_entropy_per_sample;
use crate::model::{DistillInput, FeatureModel};
use crate::progress::{Progress, Stream, Unit, plain_number};

/// What one training or validation step reports to burn-train's metrics.
///
/// In validation only the student runs: `loss.total` and `loss.hard` are then the
/// student's cross-entropy, `loss.soft` and `loss.feature` are 0, and there are no teacher
/// statistics.
#[derive(Debug, Clone)]
pub struct DistillStepOutput {
    /// The loss and its parts, as [`Distiller::forward`] returns them.
    pub loss: DistillationLossOutput,
    /// Student logits, `[N, C]`.
    pub logits: Tensor<2>,
    /// Labels, `[N]`.
    pub labels: Tensor<1, Int>,
    /// Fraction of the batch for which each teacher was kept, `[K]` (training steps only).
    pub teacher_keep_rate: Option<Tensor<1>>,
    /// Mean weight of each teacher over the batch, `[K]` (training steps only).
    pub teacher_mean_weight: Option<Tensor<1>>,
    /// The feature term's scheduled weight at this step, `[1]` (training steps only;
    /// [`Distiller::scheduled_feature_weight`]).
    pub feature_weight: Option<Tensor<1>>,
}

impl ItemLazy for DistillStepOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        self.loss.total.device().flush()?;
        Ok(Self {
            loss: self.loss.without_autodiff(),
            logits: self.logits.without_autodiff(),
            labels: self.labels.without_autodiff(),
            teacher_keep_rate: self.teacher_keep_rate.map(Tensor::without_autodiff),
            teacher_mean_weight: self.teacher_mean_weight.map(Tensor::without_autodiff),
            feature_weight: self.feature_weight.map(Tensor::without_autodiff),
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
        LossInput::new(self.loss.total.clone())
    }
}

/// The loss terms and teacher statistics, as the input of [`LossPartMetric`].
#[derive(Debug, Clone)]
pub struct LossPartsInput {
    terms: Vec<(String, Tensor<1>)>,
    keep_rate: Option<Tensor<1>>,
    mean_weight: Option<Tensor<1>>,
    feature_weight: Option<Tensor<1>>,
}

impl Adaptor<LossPartsInput> for DistillStepOutput {
    fn adapt(&self) -> LossPartsInput {
        LossPartsInput {
            terms: self
                .loss
                .terms
                .iter()
                .map(|t| (t.name.clone(), t.value.clone()))
                .collect(),
            keep_rate: self.teacher_keep_rate.clone(),
            mean_weight: self.teacher_mean_weight.clone(),
            feature_weight: self.feature_weight.clone(),
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

/// A per-teacher statistic of the selector, for [`LossPartMetric::teacher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeacherStat {
    /// Fraction of samples for which the teacher was kept by screening.
    KeepRate,
    /// The teacher's mean weight (0 where screened out).
    MeanWeight,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tracked {
    Term(String),
    Teacher(TeacherStat, usize),
    FeatureWeight,
}

/// A burn-train metric reporting one [`LossPart`] (unweighted) or one teacher's
/// [`TeacherStat`], averaged over the epoch.
///
/// Teacher statistics exist in training steps only (validation runs the student alone):
/// register them with `metric_train_numeric`.
#[derive(Clone)]
pub struct LossPartMetric {
    tracked: Tracked,
    name: MetricName,
    state: NumericMetricState,
}

impl LossPartMetric {
    /// The metric for `part`, named "Loss (hard)", "Loss (soft)" or "Loss (feature)".
    pub fn new(part: LossPart) -> Self {
        Self::term(match part {
            LossPart::Hard => crate::loss::HARD,
            LossPart::Soft => crate::loss::SOFT,
            LossPart::Feature => crate::loss::FEATURE,
        })
    }

    /// The metric for the loss term called `name` (one added with
    /// [`crate::DistillationLoss::with_term`], or a built-in one), named "Loss (name)".
    pub fn term(name: &str) -> Self {
        Self::named(Tracked::Term(name.to_string()), format!("Loss ({name})"))
    }

    /// The metric for teacher `index`'s `stat`, named "Keep rate (teacher 0)" or
    /// "Mean weight (teacher 0)".
    pub fn teacher(stat: TeacherStat, index: usize) -> Self {
        let label = match stat {
            TeacherStat::KeepRate => "Keep rate",
            TeacherStat::MeanWeight => "Mean weight",
        };
        Self::named(
            Tracked::Teacher(stat, index),
            format!("{label} (teacher {index})"),
        )
    }

    /// The feature term's scheduled weight (`feature_weight · s(step)`), named "Feature
    /// weight": shown beside the loss parts, it says why the total rises while the feature
    /// term ramps in. Training steps only.
    pub fn feature_weight() -> Self {
        Self::named(Tracked::FeatureWeight, "Feature weight".to_string())
    }

    fn named(tracked: Tracked, name: String) -> Self {
        Self {
            tracked,
            name: Arc::new(name),
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
            higher_is_better: matches!(self.tracked, Tracked::Teacher(..)),
        }
        .into()
    }

    fn update(
        &mut self,
        item: &Self::Input,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let value = match &self.tracked {
            Tracked::Term(name) => item
                .terms
                .iter()
                .find(|(term, _)| term == name)
                .map(|(_, value)| value.clone().mean()),
            &Tracked::Teacher(stat, k) => {
                let values = match stat {
                    TeacherStat::KeepRate => &item.keep_rate,
                    TeacherStat::MeanWeight => &item.mean_weight,
                };
                values
                    .as_ref()
                    .filter(|v| v.dims()[0] > k)
                    .map(|v| v.clone().narrow(0, k, 1))
            }
            Tracked::FeatureWeight => item.feature_weight.clone(),
        };
        if let Some(value) = value {
            self.state.update(value.try_into_scalar::<f64>()?, 1);
        }
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
            loss: out.loss,
            logits: out.student_logits,
            labels: batch.labels,
            teacher_keep_rate: Some(out.selection.keep_rate()),
            teacher_mean_weight: Some(out.selection.mean_weight()),
            feature_weight: Some(self.scheduled_feature_weight()),
        };
        TrainOutput::new(self, grads, item)
    }

    /// The optimizer's update, then one more count on the schedule's clock
    /// ([`Distiller::advance`]): the count follows optimizer steps, the same on every
    /// device (burn-train forks the updated model).
    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr_module: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        optim.step(lr_module, self, grads).advance()
    }

    /// As [`TrainStep::optimize`], for gradients gathered on several devices.
    fn optimize_multi(
        self,
        optim: &mut ModuleOptimizer,
        lr_module: ModuleLearningRate,
        grads: MultiGradientsParams,
    ) -> Self {
        optim.step_multi(lr_module, self, grads).advance()
    }
}

impl<S: FeatureModel<I> + 'static, I: DistillInput> InferenceStep for Distiller<S, I> {
    type Input = DistillBatch<I>;
    type Output = DistillStepOutput;

    fn step(&self, batch: DistillBatch<I>) -> DistillStepOutput {
        let logits = self.student.forward_features(batch.inputs).logits;
        let hard = cross_entropy_per_sample(logits.clone(), batch.labels.clone()).mean();
        DistillStepOutput {
            loss: DistillationLossOutput::student_only(hard),
            logits,
            labels: batch.labels,
            teacher_keep_rate: None,
            teacher_mean_weight: None,
            feature_weight: None,
        }
    }
}

/// Plain supervised training of a [`FeatureModel`] with burn-train: cross-entropy on its
/// logits, nothing else. For training teachers, or the student alone as a baseline, with the
/// same `SupervisedTraining` loop, data and metrics as the [`Distiller`].
///
/// ```no_run
/// # // Compiled, not run: see the cifar100 example for a full run.
/// use burn::optim::AdamConfig;
/// use burn::optim::lr_scheduler::constant::ConstantLr;
/// use burn::train::metric::AccuracyMetric;
/// use burn::train::{Learner, SupervisedTraining};
/// use burn_distill::models::Vgg;
/// use burn_distill::train::Classifier;
/// # fn run(vgg: Vgg,
/// #        train: std::sync::Arc<dyn burn::data::dataloader::DataLoader<burn_distill::DistillBatch>>,
/// #        valid: std::sync::Arc<dyn burn::data::dataloader::DataLoader<burn_distill::DistillBatch>>) {
/// let learner = Learner::new(Classifier::new(vgg), AdamConfig::new().init(), ConstantLr::new(1e-3));
/// let trained: Vgg = SupervisedTraining::new("/tmp/teacher", train, valid)
///     .metric_valid_numeric(AccuracyMetric::new())
///     .num_epochs(10)
///     .launch(learner)
///     .model
///     .model;
/// # }
/// ```
#[derive(Module, Debug)]
pub struct Classifier<M, I: DistillInput = Tensor<4>> {
    /// The model being trained.
    pub model: M,
    #[module(skip)]
    input: PhantomData<I>,
}

impl<M, I: DistillInput> Classifier<M, I> {
    /// Wraps `model` for training.
    pub fn new(model: M) -> Self {
        Self {
            model,
            input: PhantomData,
        }
    }
}

impl<M: FeatureModel<I>, I: DistillInput> Classifier<M, I> {
    fn classify(&self, batch: DistillBatch<I>) -> ClassificationOutput {
        let logits = self.model.forward_features(batch.inputs).logits;
        let loss = cross_entropy_per_sample(logits.clone(), batch.labels.clone()).mean();
        ClassificationOutput::new(loss, logits, batch.labels)
    }
}

impl<M: FeatureModel<I> + 'static, I: DistillInput> TrainStep for Classifier<M, I> {
    type Input = DistillBatch<I>;
    type Output = ClassificationOutput;

    fn step(&self, batch: DistillBatch<I>) -> TrainOutput<ClassificationOutput> {
        let output = self.classify(batch);
        let grads = output.loss.backward();
        TrainOutput::new(self, grads, output)
    }
}

impl<M: FeatureModel<I> + 'static, I: DistillInput> InferenceStep for Classifier<M, I> {
    type Input = DistillBatch<I>;
    type Output = ClassificationOutput;

    fn step(&self, batch: DistillBatch<I>) -> ClassificationOutput {
        self.classify(batch)
    }
}

/// A compact progress display for `SupervisedTraining` (pass it to `.renderer(...)`): on a
/// terminal one redrawn line per split (`epoch 2/3 train [#####               ]  25.6 %
/// 1280/5000 items 152 items/s, 0m24s left`, the crate's [`crate::progress::Progress`]), in
/// a log one line at 50 % of a split; at the end of each split one line with every
/// metric's epoch value in plain decimals (`epoch 2/3 valid done in 1 s | Accuracy 20.35 %`).
/// burn-train's own fallback renderer (without its `tui` feature) prints a debug dump per
/// batch.
///
/// ```no_run
/// # fn run(training: burn::train::SupervisedTraining<burn_distill::Distiller<burn_distill::models::Vgg>>) {
/// let training = training.renderer(Box::new(burn_distill::train::ProgressRenderer::new()));
/// # }
/// ```
pub struct ProgressRenderer {
    epoch: usize,
    epochs: usize,
    split: String,
    progress: Option<Progress>,
    names: Vec<(MetricId, String)>,
    latest: std::collections::HashMap<MetricId, String>,
}

impl Default for ProgressRenderer {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressRenderer {
    /// A renderer writing to standard output.
    pub fn new() -> Self {
        Self {
            epoch: 0,
            epochs: 0,
            split: String::new(),
            progress: None,
            names: Vec::new(),
            latest: std::collections::HashMap::new(),
        }
    }

    fn record(&mut self, state: MetricState) {
        let (MetricState::Generic(entry) | MetricState::Numeric(entry, _)) = state;
        self.latest
            .insert(entry.metric_id, entry.serialized_entry.formatted);
    }
}

impl MetricsRendererTraining for ProgressRenderer {
    fn update_train(&mut self, state: MetricState) {
        self.record(state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.record(state);
    }
}

impl MetricsRendererEvaluation for ProgressRenderer {
    fn update_test(&mut self, _name: EvaluationName, state: MetricState) {
        self.record(state);
    }
}

impl TrainingProgressLogger for ProgressRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _total_items: Option<usize>,
        label: Option<&str>,
    ) {
        self.epochs = total_epochs;
        self.epoch = starting_epoch;
        let what = label.unwrap_or("training");
        if starting_epoch > 1 {
            println!("{what}: resuming at epoch {starting_epoch} of {total_epochs}");
        } else {
            println!(
                "{what}: {total_epochs} epoch{}",
                if total_epochs == 1 { "" } else { "s" }
            );
        }
    }

    fn update_epoch(&mut self, epoch: usize) {
        self.epoch = epoch + 1;
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.epoch = self.epoch.max(1);
        self.split = split.to_string();
        let label = format!("epoch {}/{} {split}", self.epoch, self.epochs);
        self.progress = Some(
            Progress::new(label, total_items as u64, Unit::Items, Stream::Stdout).with_log_lines(1),
        );
        self.latest.clear();
    }

    fn update_split(&mut self, items_processed: usize) {
        if let Some(progress) = &mut self.progress {
            progress.update(items_processed as u64);
        }
    }

    fn end_split(&mut self) {
        let metrics: Vec<String> = self
            .names
            .iter()
            .filter_map(|(id, name)| {
                let value = self.latest.get(id)?;
                // burn-train formats "<name>: epoch <value> - batch <value>": keep the epoch.
                let value = value.split(" - batch").next().unwrap_or(value);
                let value = value.strip_prefix(name.as_str()).unwrap_or(value);
                let value = value.trim_start_matches(':').trim();
                let value = value.strip_prefix("epoch ").unwrap_or(value);
                Some(format!("{name} {}", plain_metric(value)))
            })
            .collect();
        let seconds = self.progress.as_ref().map_or(0.0, Progress::elapsed);
        if let Some(progress) = &mut self.progress {
            progress.finish();
        }
        println!(
            "epoch {}/{} {} done in {:.0} s | {}",
            self.epoch,
            self.epochs,
            self.split,
            seconds,
            metrics.join(" | ")
        );
    }

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for ProgressRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}

    fn start_test(&mut self, name: &str, total_items: usize) {
        self.start_split(name, total_items);
    }

    fn update_test_progress(&mut self, items_processed: usize) {
        self.update_split(items_processed);
    }

    fn end_test(&mut self) {
        self.end_split();
    }

    fn end_global_progress(&mut self) {}

    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for ProgressRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names
            .push((definition.metric_id, definition.name.to_string()));
    }
}

/// burn-train's formatted value (`0.0000e0`, `20.350 %`) as plain decimals with its unit.
fn plain_metric(value: &str) -> String {
    let mut parts = value.splitn(2, ' ');
    let number = parts.next().unwrap_or_default();
    let unit = parts.next().map(str::trim).unwrap_or_default();
    match number.parse::<f64>() {
        Ok(v) if unit.is_empty() => plain_number(v),
        Ok(v) => format!("{} {unit}", plain_number(v)),
        Err(_) => value.to_string(),
    }
}
