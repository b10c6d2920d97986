//! The distiller: teachers, selector, adapters and loss in one training step.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};

use crate::adapter::{FeatureAdapter, FeatureAdapterConfig};
use crate::error::Error;
use crate::loss::{DistillationLoss, DistillationLossConfig, DistillationLossOutput};
use crate::selector::{Selection, TeacherSelector, TeacherSelectorConfig};
use crate::teacher::{FeatureModel, Teacher, TeacherOutput};

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
    /// Run [`Distiller::check_batch`] (labels in range, all outputs finite) on the first
    /// step and then every `check_every` steps; 0 never checks. Each check reads a few
    /// numbers back from the device, so it is not done on every step. Default: 100.
    #[config(default = 100)]
    pub check_every: usize,
}

impl DistillerConfig {
    /// Checks the student and teachers against each other and builds the distiller, with one
    /// feature adapter per (teacher, feature map) pair, on `device` (normally an autodiff
    /// device: `Device::default().autodiff()`).
    ///
    /// # Errors
    /// - [`Error::NoTeachers`] for an empty teacher list;
    /// - [`Error::ClassCountMismatch`] / [`Error::StudentClassMismatch`] when class counts
    ///   differ;
    /// - [`Error::FeatureCountMismatch`] when the student and a teacher expose a different
    ///   number of feature maps;
    /// - [`Error::InvalidConfig`] for invalid selector, loss or adapter settings.
    pub fn init<S: FeatureModel>(
        &self,
        student: S,
        teachers: Vec<Arc<dyn Teacher>>,
        device: &Device,
    ) -> crate::Result<Distiller<S>> {
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
        let student_channels = student.feature_channels();
        let mut adapters = Vec::new();
        for (index, teacher) in teachers.iter().enumerate() {
            let teacher_channels = teacher.feature_channels();
            if teacher_channels.len() != student_channels.len() {
                return Err(Error::FeatureCountMismatch {
                    student: student_channels.len(),
                    index,
                    name: teacher.name().to_string(),
                    teacher: teacher_channels.len(),
                });
            }
            for (s, t) in student_channels.iter().zip(&teacher_channels) {
                adapters.push(
                    FeatureAdapterConfig::new([*s, *t])
                        .with_relu(self.adapter_relu)
                        .with_deep(self.adapter_deep)
                        .init(device)?,
                );
            }
        }
        let selector = self.selector.init(teachers.len())?;
        let loss = self.loss.init()?;
        Ok(Distiller {
            student,
            adapters,
            parts: DistillerParts {
                teachers: teachers.into(),
                selector,
                loss,
                student_channels,
                check_every: self.check_every,
                steps: Arc::new(AtomicUsize::new(0)),
            },
        })
    }
}

/// The frozen, non-trainable half of a [`Distiller`]: never visited by optimisers or
/// recorders, so never saved in checkpoints.
#[derive(Clone, Debug)]
struct DistillerParts {
    teachers: Arc<[Arc<dyn Teacher>]>,
    selector: TeacherSelector,
    loss: DistillationLoss,
    student_channels: Vec<usize>,
    check_every: usize,
    /// Steps run so far (shared by clones, so the count survives optimizer updates).
    steps: Arc<AtomicUsize>,
}

impl DistillerParts {
    fn loss_classes(&self) -> usize {
        self.teachers[0].num_classes()
    }
}

/// 1.0 when `x` holds a NaN or an infinity, else 0.0, as a `[1]` tensor.
fn non_finite<const D: usize>(x: Tensor<D>) -> Tensor<1> {
    x.is_finite().bool_not().any().float()
}

/// Multi-teacher distillation of a student [`FeatureModel`].
///
/// A Burn [`Module`] whose only parameters are the student's and the feature adapters': an
/// optimiser updates exactly those, and a record (checkpoint) holds exactly those. The
/// teachers, the [`TeacherSelector`] and the [`DistillationLoss`] ride along as constants.
///
/// For each batch [`Distiller::forward`] runs every teacher once (without autodiff), the
/// selector on the teachers' logits, the student, the adapters (one per teacher and feature
/// map, index `k * F + f`) and the loss. With the `train` feature it also implements
/// burn-train's `TrainStep` and `InferenceStep`, so `SupervisedTraining` can train it.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::{Device, Int, Tensor};
/// use burn_distill::{DistillerConfig, FeatureModel, FrozenTeacher, ModelOutput, Teacher};
///
/// #[derive(Module, Debug)]
/// struct Tiny { linear: Linear }
/// impl FeatureModel for Tiny {
///     fn forward_features(&self, x: Tensor<4>) -> ModelOutput {
///         let features = x.clone(); // the input itself as a feature map, [N, 3, 2, 2]
///         ModelOutput { logits: self.linear.forward(x.flatten(1, 3)), features: vec![features] }
///     }
///     fn num_classes(&self) -> usize { 4 }
///     fn feature_channels(&self) -> Vec<usize> { vec![3] }
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
pub struct Distiller<S> {
    /// The student being trained.
    pub student: S,
    /// One adapter per (teacher, feature map), index `teacher * F + feature`.
    pub adapters: Vec<FeatureAdapter>,
    #[module(skip)]
    parts: DistillerParts,
}

/// A labelled image batch.
///
/// # Shapes
/// - `images`: `[N, channels, height, width]`
/// - `labels`: `[N]`
#[derive(Debug, Clone)]
pub struct DistillBatch {
    /// Input images.
    pub images: Tensor<4>,
    /// Class labels.
    pub labels: Tensor<1, Int>,
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

impl<S: FeatureModel> Distiller<S> {
    /// The frozen teachers.
    pub fn teachers(&self) -> &[Arc<dyn Teacher>] {
        &self.parts.teachers
    }

    /// The teacher selector.
    pub fn selector(&self) -> &TeacherSelector {
        &self.parts.selector
    }

    /// The loss.
    pub fn loss(&self) -> &DistillationLoss {
        &self.parts.loss
    }

    /// Replaces the loss, e.g. to switch the feature term on after the first epoch.
    pub fn with_loss(mut self, loss: DistillationLoss) -> Self {
        self.parts.loss = loss;
        self
    }

    /// Replaces the teacher selector (it must be built for the same number of teachers).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `selector` was built for another number of teachers.
    pub fn with_selector(mut self, selector: TeacherSelector) -> crate::Result<Self> {
        if selector.num_teachers() != self.parts.teachers.len() {
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

    /// Runs every teacher once on `images` (without autodiff).
    pub fn teacher_outputs(&self, images: Tensor<4>) -> Vec<TeacherOutput> {
        let images = images.without_autodiff();
        self.parts
            .teachers
            .iter()
            .map(|teacher| teacher.forward(images.clone()))
            .collect()
    }

    /// One distillation step: teachers, selector, student, adapters and loss.
    ///
    /// # Shapes
    /// - `images`: `[N, channels, height, width]`
    /// - `labels`: `[N]`, values in `0..C`
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the student's or a teacher's outputs do not agree in
    /// batch size, class count, feature-map count or feature channels, or `labels` is not
    /// `[N]`. On checked steps (the first, then every [`DistillerConfig::check_every`]):
    /// [`Error::LabelOutOfRange`] and [`Error::NonFinite`] as in
    /// [`Distiller::check_batch`].
    pub fn forward(
        &self,
        images: Tensor<4>,
        labels: Tensor<1, Int>,
    ) -> crate::Result<DistillOutput> {
        let teacher_outputs = self.teacher_outputs(images.clone());
        self.forward_with_teacher_outputs(images, labels, &teacher_outputs)
    }

    /// Like [`Distiller::forward`], with teacher outputs computed elsewhere (cached or
    /// pre-computed logits). They are used without autodiff.
    ///
    /// # Errors
    /// As [`Distiller::forward`], plus a [`Error::ShapeMismatch`] when the number of
    /// outputs is not the number of teachers.
    pub fn forward_with_teacher_outputs(
        &self,
        images: Tensor<4>,
        labels: Tensor<1, Int>,
        teacher_outputs: &[TeacherOutput],
    ) -> crate::Result<DistillOutput> {
        let student_out = self.student.forward_features(images);
        let [n, c] = student_out.logits.dims();
        self.check_outputs(n, c, &student_out.features, teacher_outputs, &labels)?;
        let step = self.parts.steps.fetch_add(1, Ordering::Relaxed);
        let every = self.parts.check_every;
        if every > 0 && step.is_multiple_of(every) {
            self.check_batch(&labels, Some(&student_out.logits), teacher_outputs)?;
        }
        let teacher_logits: Vec<Tensor<2>> =
            teacher_outputs.iter().map(|t| t.logits.clone()).collect();
        let selection = self
            .parts
            .selector
            .select(&teacher_logits, labels.clone())?;
        let num_features = self.parts.student_channels.len();
        let adapted: Vec<Vec<Tensor<4>>> = if self.parts.loss.config().feature_weight > 0.0 {
            teacher_outputs
                .iter()
                .enumerate()
                .map(|(k, teacher)| {
                    teacher
                        .features
                        .iter()
                        .enumerate()
                        .map(|(f, target)| {
                            let [_, _, h, w] = target.dims();
                            self.adapters[k * num_features + f]
                                .forward(student_out.features[f].clone(), [h, w])
                        })
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        let loss = self.parts.loss.forward(
            student_out.logits.clone(),
            labels,
            teacher_outputs,
            &adapted,
            selection.weights.clone(),
        );
        Ok(DistillOutput {
            loss,
            selection,
            student_logits: student_out.logits,
        })
    }

    /// Number of steps ([`Distiller::forward`] calls) run so far.
    pub fn steps(&self) -> usize {
        self.parts.steps.load(Ordering::Relaxed)
    }

    /// Checks one batch's values: every label in `0..C`, and no NaN or infinity in the
    /// teachers' logits and feature maps or in `student_logits` (when given; non-finite
    /// student logits mean training has diverged). All checks are reduced on the device
    /// and read back together: one small host copy.
    ///
    /// [`Distiller::forward`] calls this on the first step and every
    /// [`DistillerConfig::check_every`] steps; call it yourself to check every batch.
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
        teacher_outputs: &[TeacherOutput],
    ) -> crate::Result<()> {
        let classes = self.parts.loss_classes();
        let labels = labels.clone().without_autodiff();
        let mut names = Vec::new();
        let mut flags = Vec::new();
        if let Some(logits) = student_logits {
            names.push("student logits (training diverged: try a lower learning rate)".into());
            flags.push(non_finite(logits.clone().without_autodiff()));
        }
        for (k, (out, teacher)) in teacher_outputs
            .iter()
            .zip(self.parts.teachers.iter())
            .enumerate()
        {
            let name = teacher.name();
            names.push(format!("teacher {k} ({name}) logits"));
            flags.push(non_finite(out.logits.clone().without_autodiff()));
            for (f, map) in out.features.iter().enumerate() {
                names.push(format!("teacher {k} ({name}) feature map {f}"));
                flags.push(non_finite(map.clone().without_autodiff()));
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
        student_features: &[Tensor<4>],
        teacher_outputs: &[TeacherOutput],
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
        if teacher_outputs.len() != self.parts.teachers.len() {
            return mismatch(
                "number of teacher outputs".into(),
                vec![self.parts.teachers.len()],
                vec![teacher_outputs.len()],
            );
        }
        let channels = &self.parts.student_channels;
        if student_features.len() != channels.len() {
            return mismatch(
                "number of student feature maps".into(),
                vec![channels.len()],
                vec![student_features.len()],
            );
        }
        for (f, (map, expected)) in student_features.iter().zip(channels).enumerate() {
            let dims = map.dims();
            if dims[0] != n || dims[1] != *expected {
                return mismatch(
                    format!("student feature map {f} [N, channels, ..]"),
                    vec![n, *expected],
                    dims[..2].to_vec(),
                );
            }
        }
        for (k, (out, teacher)) in teacher_outputs
            .iter()
            .zip(self.parts.teachers.iter())
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
            if out.features.len() != channels.len() {
                return mismatch(
                    format!("number of feature maps of teacher {k} ({name})"),
                    vec![channels.len()],
                    vec![out.features.len()],
                );
            }
            for (f, map) in out.features.iter().enumerate() {
                let dims = map.dims();
                let expected = self.adapters[k * channels.len() + f].channels()[1];
                if dims[0] != n || dims[1] != expected {
                    return mismatch(
                        format!("teacher {k} ({name}) feature map {f} [N, channels, ..]"),
                        vec![n, expected],
                        dims[..2].to_vec(),
                    );
                }
            }
        }
        Ok(())
    }
}
