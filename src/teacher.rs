//! Teachers: frozen models that give logits and feature maps for a batch.

use std::fmt;
use std::sync::Arc;

use burn::module::{Module, ModuleDisplay};
use burn::tensor::Tensor;

/// What a model gives the distiller for one batch: class logits and chosen feature maps.
///
/// # Shapes
/// - `logits`: `[N, C]`
/// - `features`: each `[N, channels, height, width]`; the list may be empty (logit-only
///   distillation). Teachers and the student must expose the same number of maps; their
///   channel counts and sizes may differ.
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// Class logits, `[N, C]`.
    pub logits: Tensor<2>,
    /// Intermediate feature maps, each `[N, channels, height, width]`.
    pub features: Vec<Tensor<4>>,
}

/// The output of a [`Teacher`] for one batch.
pub type TeacherOutput = ModelOutput;

/// A model that exposes its logits and feature maps: the student, or a model to freeze into
/// a teacher with [`FrozenTeacher::from_model`].
///
/// The models in [`crate::models`] implement it; implement it for your own student.
pub trait FeatureModel: Module + ModuleDisplay {
    /// Runs the model on `input` (`[N, channels, height, width]`) and returns logits and
    /// the feature maps used for distillation.
    fn forward_features(&self, input: Tensor<4>) -> ModelOutput;
    /// Number of classes the model predicts.
    fn num_classes(&self) -> usize;
    /// Channel count of each feature map returned by [`FeatureModel::forward_features`].
    fn feature_channels(&self) -> Vec<usize>;
}

/// A frozen model that guides the student.
///
/// Implementations must not build an autodiff graph, must not be updated by training, and
/// must return tensors without autodiff. [`FrozenTeacher`] does all of this for any Burn
/// [`Module`]; implement the trait directly only for teachers that are not Burn modules
/// (for example pre-computed logits).
pub trait Teacher: Send + Sync + fmt::Debug {
    /// A short name for logs and error messages.
    fn name(&self) -> &str;
    /// Number of classes the teacher predicts.
    fn num_classes(&self) -> usize;
    /// Channel count of each feature map returned by [`Teacher::forward`].
    fn feature_channels(&self) -> Vec<usize>;
    /// Runs the teacher on a batch. `input` may be on an autodiff device; the teacher
    /// works on a copy without autodiff.
    fn forward(&self, input: Tensor<4>) -> TeacherOutput;
}

type ForwardFn<M> = dyn Fn(&M, Tensor<4>) -> ModelOutput + Send + Sync;

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
pub struct FrozenTeacher<M> {
    name: String,
    model: M,
    num_classes: usize,
    feature_channels: Vec<usize>,
    forward: Arc<ForwardFn<M>>,
}

impl<M: Module + Sync> FrozenTeacher<M> {
    /// Freezes `model` with a forward function that returns logits and the chosen feature
    /// maps. `num_classes` and `feature_channels` describe what `forward` returns.
    pub fn new<F>(
        name: impl Into<String>,
        model: M,
        num_classes: usize,
        feature_channels: Vec<usize>,
        forward: F,
    ) -> Self
    where
        F: Fn(&M, Tensor<4>) -> ModelOutput + Send + Sync + 'static,
    {
        Self {
            name: name.into(),
            model: model.valid(),
            num_classes,
            feature_channels,
            forward: Arc::new(forward),
        }
    }

    /// The frozen module, in inference mode.
    pub fn model(&self) -> &M {
        &self.model
    }
}

impl<M: FeatureModel + Sync + 'static> FrozenTeacher<M> {
    /// Freezes a [`FeatureModel`], using its own `forward_features`.
    pub fn from_model(name: impl Into<String>, model: M) -> Self {
        let num_classes = model.num_classes();
        let feature_channels = model.feature_channels();
        Self::new(name, model, num_classes, feature_channels, |m: &M, x| {
            m.forward_features(x)
        })
    }
}

impl<M> fmt::Debug for FrozenTeacher<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrozenTeacher")
            .field("name", &self.name)
            .field("num_classes", &self.num_classes)
            .field("feature_channels", &self.feature_channels)
            .finish_non_exhaustive()
    }
}

impl<M: Module + Sync> Teacher for FrozenTeacher<M> {
    fn name(&self) -> &str {
        &self.name
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn feature_channels(&self) -> Vec<usize> {
        self.feature_channels.clone()
    }

    fn forward(&self, input: Tensor<4>) -> TeacherOutput {
        let out = (self.forward)(&self.model, input.without_autodiff());
        // Guard against a forward function that moved something onto an autodiff device:
        // a teacher's outputs are constants for the student's graph.
        ModelOutput {
            logits: out.logits.without_autodiff(),
            features: out
                .features
                .into_iter()
                .map(Tensor::without_autodiff)
                .collect(),
        }
    }
}
