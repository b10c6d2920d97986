//! The model side of distillation: what students and teachers take ([`DistillInput`]) and
//! give ([`ModelOutput`]: logits and [`Feature`]s), and the [`FeatureModel`] trait a student
//! implements.

use std::fmt;

use burn::module::{Module, ModuleDisplay};
use burn::tensor::kind::Autodiff;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// A batch of model inputs: what teachers and the student take.
///
/// Implemented for every Burn tensor (`Tensor<4>` image batches, `Tensor<2, Int>` token
/// ids, `Tensor<3>` sequences, `Tensor<2>` tabular rows, ...). Implement it for your own
/// batch type (for example token ids with an attention mask) to distil models that take it.
/// The first dimension of every tensor in the batch is the sample.
pub trait DistillInput: Clone + Send + Sync + fmt::Debug + 'static {
    /// Number of samples in the batch.
    fn batch_size(&self) -> usize;
    /// The device the batch lives on (teachers are placed there).
    fn device(&self) -> Device;
    /// The shape of one sample (without the batch dimension), when the batch has one: checked
    /// against each model's [`FeatureModel::input_shape`] before the models run. Read from
    /// the tensor's metadata, never from the device. `None` (the default) skips the check.
    fn sample_shape(&self) -> Option<Vec<usize>> {
        None
    }
    /// Whether the batch holds a NaN or an infinity. Only called on the error path (after a
    /// non-finite output was found, to say whether the inputs were the cause), so it may
    /// read the batch back from the device. The default answers `false`.
    fn has_non_finite(&self) -> bool {
        false
    }
    /// The same batch without autodiff: what teachers receive (they never record a graph).
    #[must_use]
    fn without_autodiff(self) -> Self;
}

impl<const D: usize, K> DistillInput for Tensor<D, K>
where
    K: Autodiff + 'static,
    Tensor<D, K>: Clone + Send + Sync + fmt::Debug,
{
    fn batch_size(&self) -> usize {
        self.dims()[0]
    }

    fn device(&self) -> Device {
        Tensor::device(self)
    }

    fn sample_shape(&self) -> Option<Vec<usize>> {
        Some(self.dims()[1..].to_vec())
    }

    fn has_non_finite(&self) -> bool {
        let data = self.to_data();
        data.dtype().is_float()
            && data
                .convert::<f64>()
                .iter::<f64>()
                .any(|value| !value.is_finite())
    }

    fn without_autodiff(self) -> Self {
        Tensor::without_autodiff(self)
    }
}

/// The kind of a feature a model exposes for distillation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FeatureKind {
    /// One vector per sample, `[N, D]` (an MLP's hidden layer, a pooled embedding).
    Vector,
    /// A sequence per sample, `[N, L, D]` (a transformer's hidden states).
    Sequence,
    /// A feature map per sample, `[N, C, H, W]` (a convolutional stage).
    Map,
}

impl fmt::Display for FeatureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FeatureKind::Vector => "vector [N, D]",
            FeatureKind::Sequence => "sequence [N, L, D]",
            FeatureKind::Map => "map [N, C, H, W]",
        })
    }
}

/// What the distiller must know of a feature before it sees one: its kind and its channel
/// count (`D` of a vector or sequence, `C` of a map). Lengths and spatial sizes may vary
/// from batch to batch; adapters align them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Vector, sequence or map.
    pub kind: FeatureKind,
    /// `D` of a vector or sequence, `C` of a map.
    pub channels: usize,
}

impl FeatureSpec {
    /// A vector feature `[N, dim]`.
    pub fn vector(dim: usize) -> Self {
        Self {
            kind: FeatureKind::Vector,
            channels: dim,
        }
    }

    /// A sequence feature `[N, L, dim]`.
    pub fn sequence(dim: usize) -> Self {
        Self {
            kind: FeatureKind::Sequence,
            channels: dim,
        }
    }

    /// A feature map `[N, channels, H, W]`.
    pub fn map(channels: usize) -> Self {
        Self {
            kind: FeatureKind::Map,
            channels,
        }
    }
}

impl fmt::Display for FeatureSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dim = match self.kind {
            FeatureKind::Map => "C",
            _ => "D",
        };
        write!(f, "{} with {dim} = {}", self.kind, self.channels)
    }
}

/// One intermediate feature of a model, of one of the three kinds used in practice.
///
/// `From` conversions make a feature from a tensor of rank 2, 3 or 4:
/// `Feature::from(map)` or `map.into()`.
///
/// # Shapes
/// - [`Feature::Vector`]: `[N, D]`
/// - [`Feature::Sequence`]: `[N, L, D]`
/// - [`Feature::Map`]: `[N, C, H, W]`
#[derive(Debug, Clone)]
pub enum Feature {
    /// `[N, D]`.
    Vector(Tensor<2>),
    /// `[N, L, D]`.
    Sequence(Tensor<3>),
    /// `[N, C, H, W]`.
    Map(Tensor<4>),
}

impl Feature {
    /// Vector, sequence or map.
    pub fn kind(&self) -> FeatureKind {
        match self {
            Feature::Vector(_) => FeatureKind::Vector,
            Feature::Sequence(_) => FeatureKind::Sequence,
            Feature::Map(_) => FeatureKind::Map,
        }
    }

    /// The full shape.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Feature::Vector(x) => x.dims().to_vec(),
            Feature::Sequence(x) => x.dims().to_vec(),
            Feature::Map(x) => x.dims().to_vec(),
        }
    }

    /// Kind and channel count (`D` of a vector or sequence, `C` of a map).
    pub fn spec(&self) -> FeatureSpec {
        let dims = self.dims();
        let channels = match self {
            Feature::Map(_) => dims[1],
            _ => dims[dims.len() - 1],
        };
        FeatureSpec {
            kind: self.kind(),
            channels,
        }
    }

    /// Number of samples (the first dimension).
    pub fn batch_size(&self) -> usize {
        self.dims()[0]
    }

    /// Whether the feature's tensor is on an autodiff device.
    pub fn is_autodiff(&self) -> bool {
        self.device().is_autodiff()
    }

    /// The same feature without autodiff.
    #[must_use]
    pub fn without_autodiff(self) -> Self {
        match self {
            Feature::Vector(x) => Feature::Vector(x.without_autodiff()),
            Feature::Sequence(x) => Feature::Sequence(x.without_autodiff()),
            Feature::Map(x) => Feature::Map(x.without_autodiff()),
        }
    }

    /// Every sample's values in one row: `[N, M]` with `M` the product of the other
    /// dimensions (what the feature losses compare).
    pub fn flatten_samples(self) -> Tensor<2> {
        match self {
            Feature::Vector(x) => x,
            Feature::Sequence(x) => x.flatten(1, 2),
            Feature::Map(x) => x.flatten(1, 3),
        }
    }

    /// The tensor of a [`Feature::Map`], or `None`.
    pub fn into_map(self) -> Option<Tensor<4>> {
        match self {
            Feature::Map(x) => Some(x),
            _ => None,
        }
    }

    /// The tensor of a [`Feature::Sequence`], or `None`.
    pub fn into_sequence(self) -> Option<Tensor<3>> {
        match self {
            Feature::Sequence(x) => Some(x),
            _ => None,
        }
    }

    /// The tensor of a [`Feature::Vector`], or `None`.
    pub fn into_vector(self) -> Option<Tensor<2>> {
        match self {
            Feature::Vector(x) => Some(x),
            _ => None,
        }
    }

    /// Rebuilds a feature of `kind` from flat values and its full shape (used by
    /// [`crate::TeacherCache`]).
    ///
    /// # Panics
    /// When `shape` does not have the rank of `kind` (2, 3 or 4).
    pub fn from_data(kind: FeatureKind, data: TensorData, device: &Device) -> Self {
        match kind {
            FeatureKind::Vector => Feature::Vector(Tensor::from_data(data, device)),
            FeatureKind::Sequence => Feature::Sequence(Tensor::from_data(data, device)),
            FeatureKind::Map => Feature::Map(Tensor::from_data(data, device)),
        }
    }

    /// The feature's device.
    pub fn device(&self) -> Device {
        match self {
            Feature::Vector(x) => x.device(),
            Feature::Sequence(x) => x.device(),
            Feature::Map(x) => x.device(),
        }
    }

    /// The values as host data (for caching).
    pub fn into_data(self) -> TensorData {
        match self {
            Feature::Vector(x) => x.into_data(),
            Feature::Sequence(x) => x.into_data(),
            Feature::Map(x) => x.into_data(),
        }
    }
}

impl From<Tensor<2>> for Feature {
    fn from(x: Tensor<2>) -> Self {
        Feature::Vector(x)
    }
}

impl From<Tensor<3>> for Feature {
    fn from(x: Tensor<3>) -> Self {
        Feature::Sequence(x)
    }
}

impl From<Tensor<4>> for Feature {
    fn from(x: Tensor<4>) -> Self {
        Feature::Map(x)
    }
}

/// What a model gives the distiller for one batch: class logits and chosen features.
///
/// # Shapes
/// - `logits`: `[N, C]`
/// - `features`: each a [`Feature`] (vector, sequence or map); the list may be empty
///   (logit-only distillation). Teachers and the student must expose the same number of
///   features, pairwise of the same kind; their channel counts and sizes may differ.
#[derive(Debug, Clone)]
pub struct ModelOutput {
    /// Class logits, `[N, C]`.
    pub logits: Tensor<2>,
    /// Intermediate features.
    pub features: Vec<Feature>,
}

/// A model that exposes its logits and features: the student, or a model to freeze into a
/// teacher with [`crate::FrozenTeacher::from_model`].
///
/// `I` is the input batch type: `Tensor<4>` images by default, any [`DistillInput`]
/// (token ids `Tensor<2, Int>`, sequences `Tensor<3>`, your own batch struct) otherwise.
/// The models in [`crate::models`] implement it for images; implement it for your own
/// student.
pub trait FeatureModel<I: DistillInput = Tensor<4>>: Module + ModuleDisplay {
    /// Runs the model on `input` and returns logits and the features used for distillation.
    fn forward_features(&self, input: I) -> ModelOutput;
    /// Number of classes the model predicts.
    fn num_classes(&self) -> usize;
    /// Kind and channel count of each feature returned by
    /// [`FeatureModel::forward_features`], or `None` (the default) to have them read from
    /// one probe batch by [`crate::DistillerConfig::init_with_probe`].
    fn feature_specs(&self) -> Option<Vec<FeatureSpec>> {
        None
    }
    /// The shape of one input sample the model takes, when it is known without running it
    /// (`InputShape::new([Some(3), None, None])` for images of any size, `[Some(19)]` for rows
    /// of 19 features). The distiller checks every batch against it before the models run,
    /// so a wrong width is an [`crate::Error::InputShape`] naming the model, not a panic
    /// inside Burn. `None` (the default) skips the check.
    fn input_shape(&self) -> Option<InputShape> {
        None
    }
}

/// The shape of one input sample (no batch dimension) a model takes: per axis a size, or
/// `None` for any size.
///
/// # Example
/// ```
/// use burn_distill::InputShape;
///
/// let images = InputShape::new([Some(3), None, None]);
/// assert!(images.accepts(&[3, 32, 32]));
/// assert!(!images.accepts(&[1, 32, 32]));
/// assert_eq!(images.to_string(), "[3, any, any]");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputShape(pub Vec<Option<usize>>);

impl InputShape {
    /// A shape from per-axis sizes (`None`: any size).
    pub fn new(axes: impl IntoIterator<Item = Option<usize>>) -> Self {
        Self(axes.into_iter().collect())
    }

    /// Whether a sample of shape `sample` fits: the same rank, every fixed axis equal.
    pub fn accepts(&self, sample: &[usize]) -> bool {
        self.0.len() == sample.len()
            && self
                .0
                .iter()
                .zip(sample)
                .all(|(axis, size)| axis.is_none_or(|a| a == *size))
    }
}

impl fmt::Display for InputShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let axes: Vec<String> = self
            .0
            .iter()
            .map(|axis| axis.map_or_else(|| "any".to_string(), |a| a.to_string()))
            .collect();
        write!(f, "[{}]", axes.join(", "))
    }
}
