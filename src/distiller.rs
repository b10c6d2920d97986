//! The distiller: teachers, selector, adapters and loss in one training step.

use std::sync::Arc;

use burn::config::Config;
use burn::module::{Module, Param, ParamId};
use burn::tensor::{Device, Int, Tensor};

use crate::adapter::{FeatureAdapter, FeatureAdapterConfig};
use crate::error::Error;
use crate::loss::{DistillationLoss, DistillationLossConfig, DistillationLossOutput};
use crate::model::{DistillInput, Feature, FeatureModel, FeatureSpec, InputShape, ModelOutput};
use crate::selector::{Selection, TeacherSelector, TeacherSelectorConfig};
use crate::teacher::{Teacher, TeacherReplicas};

/// Configuration of a [`Distiller`].
#[derive(Config, Debug)]
pub struct DistillerConfig {
    /// Teacher screening and weighting. Default: [`TeacherSelectorConfig::new`].
    #[config(default = "TeacherSelectorConfig::new()")]
    pub selector: TeacherSelectorConfig,
    /// Loss weights, temperature and soft loss. Default: [`DistillationLossConfig::new`].
    #[config(default = "DistillationLossConfig::new()")]
    pub loss: DistillationLossConfig,
    /// Add a ReLU at the end of every feature adapter. Default: false.
    #[config(default = false)]
    pub adapter_relu: bool,
    /// Use the deeper 1x1-3x3-1x1 adapters. Default: false.
    #[config(default = false)]
    pub adapter_deep: bool,
    /// Run [`Distiller::check_batch`] (labels in range, all outputs finite) in the steps
    /// before the first [`Distiller::advance`] and then every `check_every` optimizer
    /// steps; 0 never checks. Each check reads a few numbers back from the device, so it
    /// is not done on every step. Default: 100.
    #[config(default = 100)]
    pub check_every: usize,
}

impl DistillerConfig {
    /// Checks the student and teachers against each other and builds the distiller, with one
    /// feature adapter per (teacher, feature) pair, on `device` (normally an autodiff
    /// device: `Device::default().autodiff()`). Every model must declare its features
    /// ([`FeatureModel::feature_specs`], [`Teacher::feature_specs`]); otherwise use
    /// [`DistillerConfig::init_with_probe`].
    ///
    /// # Errors
    /// - [`Error::NoTeachers`] for an empty teacher list;
    /// - [`Error::ClassCountMismatch`] / [`Error::StudentClassMismatch`] when class counts
    ///   differ;
    /// - [`Error::FeatureSpecsUnknown`] when a model does not declare its features;
    /// - [`Error::FeatureCountMismatch`] when the student and a teacher expose a different
    ///   number of features, [`Error::FeatureKindMismatch`] when paired features are of
    ///   different kinds;
    /// - [`Error::InvalidConfig`] for invalid selector, loss or adapter settings, and for
    ///   [`crate::FeatureTarget::Mixture`] with teachers whose features differ in kind or
    ///   channel count.
    pub fn init<S: FeatureModel<I>, I: DistillInput>(
        &self,
        student: S,
        teachers: Vec<Arc<dyn Teacher<I>>>,
        device: &Device,
    ) -> crate::Result<Distiller<S, I>> {
        let student_specs = student.feature_specs().ok_or(Error::FeatureSpecsUnknown {
            model: "the student".into(),
        })?;
        let mut teacher_specs = Vec::with_capacity(teachers.len());
        for (index, teacher) in teachers.iter().enumerate() {
            teacher_specs.push(teacher.feature_specs().ok_or_else(|| {
                Error::FeatureSpecsUnknown {
                    model: format!("teacher {index} ({})", teacher.name()),
                }
            })?);
        }
        self.build(student, teachers, student_specs, teacher_specs, device)
    }

    /// Like [`DistillerConfig::init`], with every model's feature kinds and channel counts
    /// read from its outputs on `probe`, one batch of inputs (a few samples suffice), as
    /// mdistiller does; declared specs, where a model has them, must agree with what it
    /// returns. The probe runs once, without autodiff.
    ///
    /// # Errors
    /// As [`DistillerConfig::init`] (except [`Error::FeatureSpecsUnknown`]), plus
    /// [`Error::ShapeMismatch`] when a model's declared specs disagree with its outputs on
    /// the probe.
    ///
    /// # Example
    /// ```
    /// use std::sync::Arc;
    /// use burn::module::Module;
    /// use burn::nn::{Linear, LinearConfig};
    /// use burn::tensor::{Device, Tensor};
    /// use burn_distill::{DistillerConfig, FeatureModel, FrozenTeacher, ModelOutput, Teacher};
    ///
    /// // An MLP on tabular rows [N, 8] that exposes its hidden layer; it declares nothing.
    /// #[derive(Module, Debug)]
    /// struct Mlp { hidden: Linear, out: Linear }
    /// impl FeatureModel<Tensor<2>> for Mlp {
    ///     fn forward_features(&self, x: Tensor<2>) -> ModelOutput {
    ///         let h = burn::tensor::activation::relu(self.hidden.forward(x));
    ///         ModelOutput { logits: self.out.forward(h.clone()), features: vec![h.into()] }
    ///     }
    ///     fn num_classes(&self) -> usize { 3 }
    /// }
    /// let device = Device::default().autodiff();
    /// let mlp = |width| Mlp {
    ///     hidden: LinearConfig::new(8, width).init(&device),
    ///     out: LinearConfig::new(width, 3).init(&device),
    /// };
    /// let teachers: Vec<Arc<dyn Teacher<Tensor<2>>>> =
    ///     vec![Arc::new(FrozenTeacher::from_model("wide", mlp(64)))];
    /// let probe = Tensor::<2>::zeros([2, 8], &device);
    /// let distiller = DistillerConfig::new().init_with_probe(mlp(16), teachers, probe, &device).unwrap();
    /// assert_eq!(distiller.adapters[0].channels(), [16, 64]);
    /// # device.sync().unwrap();
    /// ```
    pub fn init_with_probe<S: FeatureModel<I>, I: DistillInput>(
        &self,
        student: S,
        teachers: Vec<Arc<dyn Teacher<I>>>,
        probe: I,
        device: &Device,
    ) -> crate::Result<Distiller<S, I>> {
        if teachers.is_empty() {
            return Err(Error::NoTeachers);
        }
        let probe = probe.without_autodiff();
        let observed = |features: &[Feature]| -> Vec<FeatureSpec> {
            features.iter().map(Feature::spec).collect()
        };
        let check = |model: String,
                     declared: Option<Vec<FeatureSpec>>,
                     found: Vec<FeatureSpec>|
         -> crate::Result<Vec<FeatureSpec>> {
            match declared {
                Some(declared) if declared != found => Err(Error::ShapeMismatch {
                    context: format!(
                        "{model}: declared feature specs {declared:?} vs its outputs on the \
                         probe batch {found:?} (channel counts)"
                    ),
                    expected: declared.iter().map(|s| s.channels).collect(),
                    found: found.iter().map(|s| s.channels).collect(),
                }),
                _ => Ok(found),
            }
        };
        // An inference-mode copy: no graph, and batch norm leaves its running statistics be.
        let student_out = student.clone().valid().forward_features(probe.clone());
        let student_specs = check(
            "the student".into(),
            student.feature_specs(),
            observed(&student_out.features),
        )?;
        let mut teacher_specs = Vec::with_capacity(teachers.len());
        for (index, teacher) in teachers.iter().enumerate() {
            let out = teacher.forward(probe.clone());
            teacher_specs.push(check(
                format!("teacher {index} ({})", teacher.name()),
                teacher.feature_specs(),
                observed(&out.features),
            )?);
        }
        self.build(student, teachers, student_specs, teacher_specs, device)
    }

    fn build<S: FeatureModel<I>, I: DistillInput>(
        &self,
        student: S,
        teachers: Vec<Arc<dyn Teacher<I>>>,
        student_specs: Vec<FeatureSpec>,
        teacher_specs: Vec<Vec<FeatureSpec>>,
        device: &Device,
    ) -> crate::Result<Distiller<S, I>> {
        let first = teachers.first().ok_or(Error::NoTeachers)?;
        let classes = first.num_classes();
        for (index, teacher) in teachers.iter().enumerate().skip(1) {
            if teacher.num_classes() != classes {
                return Err(Error::ClassCountMismatch {
                    first: first.name().to_string(),
                    expected: classes,
                    index,
                    name: teacher.name().to_string(),
                    found: teacher.num_classes(),
                });
            }
        }
        if student.num_classes() != classes {
            return Err(Error::StudentClassMismatch {
                student: student.num_classes(),
                teachers: classes,
            });
        }
        let mut adapters = Vec::new();
        for (index, (teacher, specs)) in teachers.iter().zip(&teacher_specs).enumerate() {
            if specs.len() != student_specs.len() {
                return Err(Error::FeatureCountMismatch {
                    student: student_specs.len(),
                    index,
                    name: teacher.name().to_string(),
                    teacher: specs.len(),
                });
            }
            for (feature, (s, t)) in student_specs.iter().zip(specs).enumerate() {
                if s.kind != t.kind {
                    return Err(Error::FeatureKindMismatch {
                        feature,
                        index,
                        name: teacher.name().to_string(),
                        student: s.kind,
                        teacher: t.kind,
                    });
                }
                adapters.push(
                    FeatureAdapterConfig::new([s.channels, t.channels])
                        .with_kind(s.kind)
                        .with_relu(self.adapter_relu)
                        .with_deep(self.adapter_deep)
                        .init(device)?,
                );
            }
        }
        if self.loss.feature_target == crate::FeatureTarget::Mixture
            && self.loss.feature_weight > 0.0
        {
            // One adapter serves every teacher: their features must agree in kind and size.
            for (index, specs) in teacher_specs.iter().enumerate().skip(1) {
                if specs != &teacher_specs[0] {
                    return Err(Error::InvalidConfig {
                        field: "loss.feature_target",
                        value: format!(
                            "Mixture, with teacher 0 ({}) exposing {:?} and teacher {index} \
                             ({}) {:?}",
                            first.name(),
                            teacher_specs[0],
                            teachers[index].name(),
                            specs
                        ),
                        reason: "the feature mixture needs every teacher's features to have \
                                 the same kinds and channel counts",
                    });
                }
            }
        }
        let selector = self.selector.init(teachers.len())?;
        let loss = self.loss.init()?;
        Ok(Distiller {
            student,
            adapters,
            optimizer_steps: Param::initialized(
                ParamId::new(),
                Tensor::<1, Int>::zeros([1], device),
            ),
            parts: DistillerParts {
                selector,
                loss,
                student_specs,
                teacher_specs,
                check_every: self.check_every,
                teachers: TeacherReplicas::new(teachers.into(), Some(device.clone()), true),
                advanced: 0,
            },
        })
    }
}

/// The frozen, non-trainable half of a [`Distiller`]: never visited by optimisers or
/// recorders, so never saved in checkpoints.
#[derive(Clone, Debug)]
struct DistillerParts<I: DistillInput> {
    /// The teachers where the distiller was built, and their replicas for the other
    /// devices batches arrived on, each made once (shared by clones and forks).
    teachers: TeacherReplicas<I>,
    selector: TeacherSelector,
    loss: DistillationLoss,
    student_specs: Vec<FeatureSpec>,
    teacher_specs: Vec<Vec<FeatureSpec>>,
    check_every: usize,
    /// [`Distiller::advance`] calls since this distiller was built (plain host data,
    /// copied with the module to every device replica): paces the batch checks without a
    /// device read. The recorded clock is `Distiller::optimizer_steps`.
    advanced: usize,
}

impl<I: DistillInput> DistillerParts<I> {
    fn loss_classes(&self) -> usize {
        self.teachers.originals()[0].num_classes()
    }
}

/// 1.0 when `x` holds a NaN or an infinity, else 0.0, as a `[1]` tensor.
fn non_finite<const D: usize>(x: Tensor<D>) -> Tensor<1> {
    x.is_finite().bool_not().any().float()
}

/// Multi-teacher distillation of a student [`FeatureModel`] on inputs of type `I` (image
/// batches `Tensor<4>` by default; any [`DistillInput`]).
///
/// A Burn [`Module`] whose only parameters are the student's and the feature adapters': an
/// optimiser updates exactly those, and a record (checkpoint) holds exactly those. The
/// teachers, the [`TeacherSelector`] and the [`DistillationLoss`] ride along as constants.
///
/// For each batch [`Distiller::forward`] runs every teacher once (without autodiff), the
/// selector on the teachers' logits, the student, the adapters (one per teacher and
/// feature, index `k * F + f`) and the loss. With the `train` feature it also implements
/// burn-train's `TrainStep` and `InferenceStep`, so `SupervisedTraining` can train it.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::{Device, Int, Tensor};
/// use burn_distill::{DistillerConfig, FeatureModel, FeatureSpec, FrozenTeacher, ModelOutput, Teacher};
///
/// #[derive(Module, Debug)]
/// struct Tiny { linear: Linear }
/// impl FeatureModel for Tiny {
///     fn forward_features(&self, x: Tensor<4>) -> ModelOutput {
///         let features = x.clone(); // the input itself as a feature map, [N, 3, 2, 2]
///         ModelOutput { logits: self.linear.forward(x.flatten(1, 3)), features: vec![features.into()] }
///     }
///     fn num_classes(&self) -> usize { 4 }
///     fn feature_specs(&self) -> Option<Vec<FeatureSpec>> { Some(vec![FeatureSpec::map(3)]) }
/// }
///
/// let device = Device::default().autodiff();
/// let tiny = || Tiny { linear: LinearConfig::new(12, 4).init(&device) };
/// let teachers: Vec<Arc<dyn Teacher>> = vec![
///     Arc::new(FrozenTeacher::from_model("a", tiny())),
///     Arc::new(FrozenTeacher::from_model("b", tiny())),
/// ];
/// let distiller = DistillerConfig::new().init(tiny(), teachers, &device).unwrap();
/// let images = Tensor::<4>::ones([8, 3, 2, 2], &device);
/// let labels = Tensor::<1, Int>::from_ints([0, 1, 2, 3, 0, 1, 2, 3], &device);
/// let out = distiller.forward(images, labels).unwrap();
/// let grads = out.loss.total.backward();
/// assert!(distiller.student.linear.weight.grad(&grads).is_some());
/// # // Finish queued device work before exit (lavapipe can crash at exit otherwise).
/// # device.sync().unwrap();
/// ```
#[derive(Module, Debug)]
pub struct Distiller<S, I: DistillInput = Tensor<4>> {
    /// The student being trained.
    pub student: S,
    /// One adapter per (teacher, feature), index `teacher * F + feature`.
    pub adapters: Vec<FeatureAdapter>,
    /// Optimizer steps taken so far, `[1]`: the clock of the feature schedule. Part of the
    /// record (saved in checkpoints, restored with them), forked with the module onto every
    /// device, never touched by an optimizer; advanced by [`Distiller::advance`] (burn-train
    /// calls it after every optimizer step).
    optimizer_steps: Param<Tensor<1, Int>>,
    #[module(skip)]
    parts: DistillerParts<I>,
}

/// Everything one distillation step produces.
#[derive(Debug, Clone)]
pub struct DistillOutput {
    /// The loss and its parts; call `backward` on `loss.total`.
    pub loss: DistillationLossOutput,
    /// The selector's decision, for telemetry.
    pub selection: Selection,
    /// The student's logits, `[N, C]`, e.g. for accuracy.
    pub student_logits: Tensor<2>,
}

impl<S: FeatureModel<I>, I: DistillInput> Distiller<S, I> {
    /// The frozen teachers.
    pub fn teachers(&self) -> &[Arc<dyn Teacher<I>>] {
        self.parts.teachers.originals()
    }

    /// The teacher selector.
    pub fn selector(&self) -> &TeacherSelector {
        &self.parts.selector
    }

    /// The loss.
    pub fn loss(&self) -> &DistillationLoss {
        &self.parts.loss
    }

    /// Replaces the loss. (To switch the feature term on after a while, prefer the
    /// schedule of [`DistillationLossConfig`]: `feature_delay_steps`, `feature_ramp_steps`.)
    pub fn with_loss(mut self, loss: DistillationLoss) -> Self {
        self.parts.loss = loss;
        self
    }

    /// Replaces the teacher selector (it must be built for the same number of teachers).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `selector` was built for another number of teachers.
    pub fn with_selector(mut self, selector: TeacherSelector) -> crate::Result<Self> {
        if selector.num_teachers() != self.parts.teachers.originals().len() {
            return Err(Error::InvalidConfig {
                field: "selector",
                value: format!("built for {} teachers", selector.num_teachers()),
                reason: "must be built for the distiller's number of teachers",
            });
        }
        self.parts.selector = selector;
        Ok(self)
    }

    /// Consumes the distiller and returns the trained student.
    pub fn into_student(self) -> S {
        self.student
    }

    /// Kind and channel count of each student feature, as checked at every step.
    pub fn student_feature_specs(&self) -> &[FeatureSpec] {
        &self.parts.student_specs
    }

    /// Runs every teacher once on `inputs` (without autodiff), on the inputs' device (as
    /// [`Distiller::teachers_on`]; where they cannot be placed there, the teachers run
    /// where they were built).
    pub fn teacher_outputs(&self, inputs: I) -> Vec<ModelOutput> {
        let teachers = self
            .teachers_on(&inputs.device())
            .unwrap_or_else(|_| self.parts.teachers.originals().clone());
        let inputs = inputs.without_autodiff();
        teachers
            .iter()
            .map(|teacher| teacher.forward(inputs.clone()))
            .collect()
    }

    /// One distillation step: teachers, selector, student, adapters and loss. The loss is
    /// the configured one after [`Distiller::optimizer_steps`] optimizer steps (its feature
    /// schedule applied on the device, see [`DistillationLossConfig`]); the count itself
    /// moves only with [`Distiller::advance`].
    ///
    /// # Shapes
    /// - `inputs`: `N` samples (`[N, channels, height, width]` for images)
    /// - `labels`: `[N]`, values in `0..C`
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the student's or a teacher's outputs do not agree in
    /// batch size, class count, feature count, feature kind or feature channels, or
    /// `labels` is not `[N]`. On checked steps (the first, then every
    /// [`DistillerConfig::check_every`]-th optimizer step): [`Error::LabelOutOfRange`] and
    /// [`Error::NonFinite`] as in
    /// [`Distiller::check_batch`]. [`Error::TeacherPlacement`] when the batch is on a device
    /// a teacher cannot be placed on ([`Distiller::teachers_on`]).
    pub fn forward(&self, inputs: I, labels: Tensor<1, Int>) -> crate::Result<DistillOutput> {
        self.check_input_shape(&inputs)?;
        // The student runs where the batch is; the teachers of that device run beside it.
        let student_out = self.student.forward_features(inputs.clone());
        let teachers = self.teachers_on(&student_out.logits.device())?;
        let plain = inputs.clone().without_autodiff();
        let teacher_outputs: Vec<ModelOutput> = teachers
            .iter()
            .map(|teacher| teacher.forward(plain.clone()))
            .collect();
        self.step(student_out, labels, &teacher_outputs)
            .map_err(|error| blame_inputs(error, &inputs))
    }

    /// The batch's sample shape against what the student and each teacher declare
    /// ([`FeatureModel::input_shape`], [`Teacher::input_shape`]); metadata only.
    fn check_input_shape(&self, inputs: &I) -> crate::Result<()> {
        let Some(found) = inputs.sample_shape() else {
            return Ok(());
        };
        // Names are made only for a mismatch: this runs on every step.
        let mismatch = |model: String, expected: InputShape| Error::InputShape {
            model,
            expected,
            found: found.clone(),
        };
        if let Some(expected) = self.student.input_shape()
            && !expected.accepts(&found)
        {
            return Err(mismatch("the student".into(), expected));
        }
        for (k, teacher) in self.parts.teachers.originals().iter().enumerate() {
            if let Some(expected) = teacher.input_shape()
                && !expected.accepts(&found)
            {
                return Err(mismatch(
                    format!("teacher {k} ({})", teacher.name()),
                    expected,
                ));
            }
        }
        Ok(())
    }

    /// The teachers as they run on `device`: the originals on the device the distiller was
    /// built on, elsewhere replicas made once by [`Teacher::to_device`] and reused (the
    /// teachers' weights are never copied per step). burn-train's multi-device strategies
    /// fork the distiller onto each device; the forks share these replicas.
    ///
    /// # Errors
    /// [`Error::TeacherPlacement`] naming the teacher and the device when one cannot be
    /// placed there.
    pub fn teachers_on(&self, device: &Device) -> crate::Result<Arc<[Arc<dyn Teacher<I>>]>> {
        self.parts.teachers.on(device)
    }

    /// Like [`Distiller::forward`], with teacher outputs computed elsewhere (cached or
    /// pre-computed logits). They are used without autodiff.
    ///
    /// # Errors
    /// As [`Distiller::forward`], plus a [`Error::ShapeMismatch`] when the number of
    /// outputs is not the number of teachers.
    pub fn forward_with_teacher_outputs(
        &self,
        inputs: I,
        labels: Tensor<1, Int>,
        teacher_outputs: &[ModelOutput],
    ) -> crate::Result<DistillOutput> {
        self.check_input_shape(&inputs)?;
        let student_out = self.student.forward_features(inputs.clone());
        self.step(student_out, labels, teacher_outputs)
            .map_err(|error| blame_inputs(error, &inputs))
    }

    /// Selector, adapters and loss for a student output and its teachers' outputs.
    fn step(
        &self,
        student_out: ModelOutput,
        labels: Tensor<1, Int>,
        teacher_outputs: &[ModelOutput],
    ) -> crate::Result<DistillOutput> {
        let [n, c] = student_out.logits.dims();
        self.check_outputs(n, c, &student_out.features, teacher_outputs, &labels)?;
        let loss = &self.parts.loss;
        let every = self.parts.check_every;
        if every > 0 && self.parts.advanced.is_multiple_of(every) {
            self.check_batch(&labels, Some(&student_out.logits), teacher_outputs)?;
        }
        let teacher_logits: Vec<Tensor<2>> =
            teacher_outputs.iter().map(|t| t.logits.clone()).collect();
        let selection = self
            .parts
            .selector
            .select(&teacher_logits, labels.clone())?;
        let num_features = self.parts.student_specs.len();
        // Only the adapters some term reads: the first `adapted_teachers` teachers' (none
        // when no weighted term uses features).
        let adapted: Vec<Vec<Feature>> = teacher_outputs
            .iter()
            .take(loss.adapted_teachers(teacher_outputs.len()))
            .enumerate()
            .map(|(k, teacher)| {
                teacher
                    .features
                    .iter()
                    .enumerate()
                    .map(|(f, target)| {
                        self.adapters[k * num_features + f]
                            .adapt(student_out.features[f].clone(), target)
                    })
                    .collect()
            })
            .collect();
        let loss = loss.forward_at_step(
            student_out.logits.clone(),
            labels,
            teacher_outputs,
            &adapted,
            selection.weights.clone(),
            self.optimizer_steps.val(),
        );
        Ok(DistillOutput {
            loss,
            selection,
            student_logits: student_out.logits,
        })
    }

    /// The feature term's weight at the current step (`feature_weight · s(step)`), `[1]`,
    /// computed on the device from the step count (no host read): what a log shows beside
    /// the loss parts, so a total that rises as the feature term ramps in reads as such.
    pub fn scheduled_feature_weight(&self) -> Tensor<1> {
        let loss = &self.parts.loss;
        loss.schedule_tensor(self.optimizer_steps.val().without_autodiff())
            .mul_scalar(loss.config().feature_weight)
    }

    /// Optimizer steps counted so far (one small host read: for logs and tests, not the
    /// training step).
    pub fn optimizer_steps(&self) -> usize {
        let data = self.optimizer_steps.val().into_data().convert::<i64>();
        data.try_to_vec::<i64>().map_or(0, |v| v[0].max(0) as usize)
    }

    /// The distiller after one more optimizer step: the feature schedule's clock advanced
    /// by one. burn-train calls it after every optimizer update (`TrainStep::optimize`);
    /// a hand-written loop calls it after its own `optim.step(..)`. The count is part of
    /// the record, so a checkpoint restores it with the weights.
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use burn::tensor::Device;
    /// # use burn_distill::{DistillerConfig, FrozenTeacher, Teacher};
    /// # use burn_distill::models::CnnConfig;
    /// let device = Device::default().autodiff();
    /// let model = || CnnConfig::new(4).with_width(2).init(&device);
    /// let teachers: Vec<Arc<dyn Teacher>> = vec![Arc::new(FrozenTeacher::from_model("t", model()))];
    /// let distiller = DistillerConfig::new().init(model(), teachers, &device).unwrap();
    /// assert_eq!(distiller.optimizer_steps(), 0);
    /// let distiller = distiller.advance().advance();
    /// assert_eq!(distiller.optimizer_steps(), 2);
    /// ```
    #[must_use]
    pub fn advance(mut self) -> Self {
        self.optimizer_steps = self.optimizer_steps.map(|t| t.add_scalar(1));
        self.parts.advanced += 1;
        self
    }

    /// Checks one batch's values: every label in `0..C`, and no NaN or infinity in the
    /// teachers' logits and feature maps or in `student_logits` (when given; non-finite
    /// student logits mean training has diverged). All checks are reduced on the device
    /// and read back together: one small host copy.
    ///
    /// [`Distiller::forward`] calls this on every batch before the first
    /// [`Distiller::advance`] and then on the batches of every
    /// [`DistillerConfig::check_every`]-th optimizer step (counted since the distiller was
    /// built: a distiller loaded from a checkpoint checks its first step again); call it
    /// yourself to check every batch.
    ///
    /// # Errors
    /// [`Error::LabelOutOfRange`] naming the smallest and largest label;
    /// [`Error::NonFinite`] naming the first tensor with a NaN or infinity.
    ///
    /// # Example
    /// ```
    /// # use std::sync::Arc;
    /// # use burn::tensor::{Device, Int, Tensor};
    /// # use burn_distill::{DistillerConfig, Error, FrozenTeacher, Teacher};
    /// # use burn_distill::models::CnnConfig;
    /// let device = Device::default();
    /// let model = || CnnConfig::new(4).with_width(2).init(&device);
    /// let teachers: Vec<Arc<dyn Teacher>> = vec![Arc::new(FrozenTeacher::from_model("t", model()))];
    /// let distiller = DistillerConfig::new().init(model(), teachers, &device).unwrap();
    /// let images = Tensor::<4>::zeros([2, 3, 8, 8], &device);
    /// let outputs = distiller.teacher_outputs(images);
    /// let labels = Tensor::<1, Int>::from_ints([0, 4], &device); // 4 is not in 0..4
    /// let err = distiller.check_batch(&labels, None, &outputs).unwrap_err();
    /// assert!(matches!(err, Error::LabelOutOfRange { min: 0, max: 4, classes: 4 }));
    /// ```
    pub fn check_batch(
        &self,
        labels: &Tensor<1, Int>,
        student_logits: Option<&Tensor<2>>,
        teacher_outputs: &[ModelOutput],
    ) -> crate::Result<()> {
        let classes = self.parts.loss_classes();
        let labels = labels.clone().without_autodiff();
        let mut names = Vec::new();
        let mut flags = Vec::new();
        if let Some(logits) = student_logits {
            names
                .push("the student's logits (training diverged: try a lower learning rate)".into());
            flags.push(non_finite(logits.clone().without_autodiff()));
        }
        for (k, (out, teacher)) in teacher_outputs
            .iter()
            .zip(self.parts.teachers.originals().iter())
            .enumerate()
        {
            let name = teacher.name();
            names.push(format!("teacher {k} ({name}) logits"));
            flags.push(non_finite(out.logits.clone().without_autodiff()));
            for (f, feature) in out.features.iter().enumerate() {
                names.push(format!("teacher {k} ({name}) feature {f}"));
                flags.push(non_finite(
                    feature.clone().without_autodiff().flatten_samples(),
                ));
            }
        }
        let mut parts = vec![labels.clone().min().float(), labels.max().float()];
        parts.extend(flags);
        let values = Tensor::cat(parts, 0)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("float data");
        let (min, max) = (values[0] as i64, values[1] as i64);
        if min < 0 || max >= classes as i64 {
            return Err(Error::LabelOutOfRange { min, max, classes });
        }
        match values[2..].iter().position(|flag| *flag != 0.0) {
            Some(i) => Err(Error::NonFinite {
                what: names.swap_remove(i),
            }),
            None => Ok(()),
        }
    }

    fn check_outputs(
        &self,
        n: usize,
        c: usize,
        student_features: &[Feature],
        teacher_outputs: &[ModelOutput],
        labels: &Tensor<1, Int>,
    ) -> crate::Result<()> {
        let mismatch = |context: String, expected: Vec<usize>, found: Vec<usize>| {
            Err(Error::ShapeMismatch {
                context,
                expected,
                found,
            })
        };
        if labels.dims() != [n] {
            return mismatch("labels".into(), vec![n], labels.dims().to_vec());
        }
        if teacher_outputs.len() != self.parts.teachers.originals().len() {
            return mismatch(
                "number of teacher outputs".into(),
                vec![self.parts.teachers.originals().len()],
                vec![teacher_outputs.len()],
            );
        }
        let check_features = |who: String,
                              features: &[Feature],
                              specs: &[FeatureSpec]|
         -> crate::Result<()> {
            if features.len() != specs.len() {
                return mismatch(
                    format!("number of features of {who}"),
                    vec![specs.len()],
                    vec![features.len()],
                );
            }
            for (f, (feature, spec)) in features.iter().zip(specs).enumerate() {
                let found = feature.spec();
                if feature.batch_size() != n || found != *spec {
                    return mismatch(
                        format!(
                            "{who} feature {f}: expected a {spec} for {n} samples, got a {found} \
                             of shape {:?} ([N, channels])",
                            feature.dims()
                        ),
                        vec![n, spec.channels],
                        vec![feature.batch_size(), found.channels],
                    );
                }
            }
            Ok(())
        };
        check_features(
            "the student".into(),
            student_features,
            &self.parts.student_specs,
        )?;
        for (k, ((out, teacher), specs)) in teacher_outputs
            .iter()
            .zip(self.parts.teachers.originals().iter())
            .zip(&self.parts.teacher_specs)
            .enumerate()
        {
            let name = teacher.name();
            if out.logits.dims() != [n, c] {
                return mismatch(
                    format!("teacher {k} ({name}) logits vs student logits"),
                    vec![n, c],
                    out.logits.dims().to_vec(),
                );
            }
            check_features(format!("teacher {k} ({name})"), &out.features, specs)?;
        }
        Ok(())
    }
}

/// A non-finite output whose cause is the input batch itself is reported as such (the
/// inputs are read back only on this error path).
fn blame_inputs<I: DistillInput>(error: Error, inputs: &I) -> Error {
    match error {
        Error::NonFinite { .. } if inputs.has_non_finite() => Error::NonFinite {
            what: "the input batch (it holds NaN or infinite values before any model runs)".into(),
        },
        other => other,
    }
}
