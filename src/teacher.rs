//! Teachers: frozen models that give logits and features for a batch of any input type.

use std::fmt;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::model::{DistillInput, Feature, FeatureModel, FeatureSpec, InputShape, ModelOutput};

/// A frozen model that guides the student.
///
/// Implementations must not build an autodiff graph, must not be updated by training, and
/// must return tensors without autodiff. [`FrozenTeacher`] does all of this for any Burn
/// [`Module`]; implement the trait directly only for teachers that are not Burn modules
/// (for example pre-computed logits).
pub trait Teacher<I: DistillInput = Tensor<4>>: Send + Sync + fmt::Debug {
    /// A short name for logs and error messages.
    fn name(&self) -> &str;
    /// Number of classes the teacher predicts.
    fn num_classes(&self) -> usize;
    /// Kind and channel count of each feature returned by [`Teacher::forward`], or `None`
    /// when they are to be read from a probe batch
    /// ([`crate::DistillerConfig::init_with_probe`]).
    fn feature_specs(&self) -> Option<Vec<FeatureSpec>>;
    /// Runs the teacher on a batch. `input` may be on an autodiff device; the teacher
    /// works on a copy without autodiff.
    fn forward(&self, input: I) -> ModelOutput;
    /// The shape of one input sample the teacher takes, when known (see
    /// [`FeatureModel::input_shape`]); `None` (the default) skips the check.
    fn input_shape(&self) -> Option<InputShape> {
        None
    }
    /// A copy of this teacher that runs on `device` (its weights moved there once). The
    /// [`crate::Distiller`] asks for one replica per device its batches arrive on and reuses
    /// it. The default refuses: implement it for teachers that can move.
    ///
    /// # Errors
    /// [`crate::Error::TeacherPlacement`] naming the teacher and the device.
    fn to_device(&self, device: &Device) -> crate::Result<Arc<dyn Teacher<I>>> {
        Err(crate::Error::TeacherPlacement {
            teacher: self.name().to_string(),
            device: format!("{device:?}"),
            reason: "this Teacher type does not implement to_device".into(),
        })
    }
}

type ForwardFn<M, I> = dyn Fn(&M, I) -> ModelOutput + Send + Sync;

/// Turns any Burn [`Module`] into a frozen [`Teacher`].
///
/// The module is put in inference mode with [`Module::valid`] once, when the teacher is
/// made: its parameters leave the autodiff graph, batch norm uses its running statistics,
/// and no forward pass ever records a graph or receives gradients. The teacher is never
/// part of the student's record, so it is never saved in checkpoints.
///
/// # Example
/// ```
/// use burn::module::{Module, ModuleDisplay};
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::{Device, Tensor};
/// use burn_distill::{FrozenTeacher, ModelOutput, Teacher};
///
/// let device = Device::default();
/// let linear = LinearConfig::new(12, 5).init(&device);
/// // A teacher that flattens a [N, 3, 2, 2] image and gives 5 logits and no feature maps.
/// let teacher = FrozenTeacher::new("linear", linear, 5, vec![], |model: &Linear, x: Tensor<4>| {
///     ModelOutput { logits: model.forward(x.flatten(1, 3)), features: vec![] }
/// });
/// let out = teacher.forward(Tensor::zeros([4, 3, 2, 2], &device));
/// assert_eq!(out.logits.dims(), [4, 5]);
/// ```
pub struct FrozenTeacher<M, I = Tensor<4>> {
    name: String,
    model: M,
    num_classes: usize,
    feature_specs: Option<Vec<FeatureSpec>>,
    input_shape: Option<InputShape>,
    forward: Arc<ForwardFn<M, I>>,
}

impl<M: Module + Sync, I: DistillInput> FrozenTeacher<M, I> {
    /// Freezes `model` with a forward function that returns logits and the chosen
    /// features. `num_classes` and `feature_specs` describe what `forward` returns.
    pub fn new<F>(
        name: impl Into<String>,
        model: M,
        num_classes: usize,
        feature_specs: Vec<FeatureSpec>,
        forward: F,
    ) -> Self
    where
        F: Fn(&M, I) -> ModelOutput + Send + Sync + 'static,
    {
        Self::build(name, model, num_classes, Some(feature_specs), forward)
    }

    /// Like [`FrozenTeacher::new`], with the features' kinds and channel counts read from
    /// a probe batch by [`crate::DistillerConfig::init_with_probe`] instead of declared.
    pub fn probed<F>(name: impl Into<String>, model: M, num_classes: usize, forward: F) -> Self
    where
        F: Fn(&M, I) -> ModelOutput + Send + Sync + 'static,
    {
        Self::build(name, model, num_classes, None, forward)
    }

    fn build<F>(
        name: impl Into<String>,
        model: M,
        num_classes: usize,
        feature_specs: Option<Vec<FeatureSpec>>,
        forward: F,
    ) -> Self
    where
        F: Fn(&M, I) -> ModelOutput + Send + Sync + 'static,
    {
        Self {
            name: name.into(),
            model: model.valid(),
            num_classes,
            feature_specs,
            input_shape: None,
            forward: Arc::new(forward),
        }
    }

    /// Declares the shape of one input sample the teacher takes, so a batch of another
    /// shape is an [`crate::Error::InputShape`] naming this teacher.
    #[must_use]
    pub fn with_input_shape(mut self, shape: InputShape) -> Self {
        self.input_shape = Some(shape);
        self
    }

    /// The frozen module, in inference mode.
    pub fn model(&self) -> &M {
        &self.model
    }
}

impl<M: FeatureModel<I> + Sync + 'static, I: DistillInput> FrozenTeacher<M, I> {
    /// Freezes a [`FeatureModel`], using its own `forward_features` (and its
    /// `feature_specs`, when it declares them).
    pub fn from_model(name: impl Into<String>, model: M) -> Self {
        let num_classes = model.num_classes();
        let feature_specs = model.feature_specs();
        let input_shape = model.input_shape();
        let mut teacher = Self::build(name, model, num_classes, feature_specs, |m: &M, x: I| {
            m.forward_features(x)
        });
        teacher.input_shape = input_shape;
        teacher
    }
}

impl<M, I> fmt::Debug for FrozenTeacher<M, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrozenTeacher")
            .field("name", &self.name)
            .field("num_classes", &self.num_classes)
            .field("feature_specs", &self.feature_specs)
            .finish_non_exhaustive()
    }
}

impl<M: Module + Sync + 'static, I: DistillInput> Teacher<I> for FrozenTeacher<M, I> {
    fn name(&self) -> &str {
        &self.name
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn feature_specs(&self) -> Option<Vec<FeatureSpec>> {
        self.feature_specs.clone()
    }

    fn input_shape(&self) -> Option<InputShape> {
        self.input_shape.clone()
    }

    /// Moves the frozen module to `device` once (`Module::to_device`); a device that cannot
    /// hold it is an error naming the device, not a panic.
    fn to_device(&self, device: &Device) -> crate::Result<Arc<dyn Teacher<I>>> {
        let model = self.model.clone();
        let target = device.clone();
        let moved = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            model.to_device(&target)
        }))
        .map_err(|panic| crate::Error::TeacherPlacement {
            teacher: self.name.clone(),
            device: format!("{device:?}"),
            reason: panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "moving the weights failed".into()),
        })?;
        Ok(Arc::new(Self {
            name: self.name.clone(),
            model: moved,
            num_classes: self.num_classes,
            feature_specs: self.feature_specs.clone(),
            input_shape: self.input_shape.clone(),
            forward: self.forward.clone(),
        }))
    }

    fn forward(&self, input: I) -> ModelOutput {
        let out = (self.forward)(&self.model, input.without_autodiff());
        // Guard against a forward function that moved something onto an autodiff device:
        // a teacher's outputs are constants for the student's graph.
        ModelOutput {
            logits: out.logits.without_autodiff(),
            features: out
                .features
                .into_iter()
                .map(Feature::without_autodiff)
                .collect(),
        }
    }
}

/// A set of teachers, shared.
pub(crate) type TeacherSet<I> = Arc<[Arc<dyn Teacher<I>>]>;

/// Replicas made so far, one set per device.
type Placed<I> = Arc<std::sync::Mutex<Vec<(Device, TeacherSet<I>)>>>;

/// A teacher set as it runs on each device: the originals where they were built and one
/// replica per other device, made once by [`Teacher::to_device`] and reused. Clones share
/// the replicas (constants, never training state).
#[derive(Clone, Debug)]
pub(crate) struct TeacherReplicas<I: DistillInput> {
    originals: Arc<[Arc<dyn Teacher<I>>]>,
    /// The device the originals run on, when known.
    home: Option<Device>,
    /// Whether a teacher that cannot move is an error (else it runs where it is).
    strict: bool,
    placed: Placed<I>,
}

impl<I: DistillInput> TeacherReplicas<I> {
    /// Replicas of `originals` (which run on `home`, when known). With `strict`, a teacher
    /// that cannot be placed on a device is an error; without, it runs where it is.
    pub(crate) fn new(
        originals: Arc<[Arc<dyn Teacher<I>>]>,
        home: Option<Device>,
        strict: bool,
    ) -> Self {
        Self {
            originals,
            home,
            strict,
            placed: Arc::default(),
        }
    }

    /// The teachers as given.
    pub(crate) fn originals(&self) -> &Arc<[Arc<dyn Teacher<I>>]> {
        &self.originals
    }

    /// Whether `teachers` are these replicas' originals (the same objects, in order).
    pub(crate) fn holds(&self, teachers: &[Arc<dyn Teacher<I>>]) -> bool {
        self.originals.len() == teachers.len()
            && self
                .originals
                .iter()
                .zip(teachers)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }

    /// The teachers placed on `device`, made on the first call for that device.
    ///
    /// # Errors
    /// [`crate::Error::TeacherPlacement`] naming the teacher and the device (strict
    /// replicas only; the others never fail).
    pub(crate) fn on(&self, device: &Device) -> crate::Result<TeacherSet<I>> {
        if self.home.as_ref() == Some(device) {
            return Ok(self.originals.clone());
        }
        let mut placed = self
            .placed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, set)) = placed.iter().find(|(d, _)| d == device) {
            return Ok(set.clone());
        }
        let set: Arc<[Arc<dyn Teacher<I>>]> = self
            .originals
            .iter()
            .map(|teacher| match teacher.to_device(device) {
                Ok(moved) => Ok(moved),
                Err(_) if !self.strict => Ok(teacher.clone()),
                Err(error) => Err(error),
            })
            .collect::<crate::Result<Vec<_>>>()?
            .into();
        placed.push((device.clone(), set.clone()));
        Ok(set)
    }
}
