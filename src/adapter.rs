//! Feature adapters: small trainable maps from a student feature to a teacher's, one type
//! per kind ([`MapAdapter`]: 1x1 convolution for maps; [`VectorAdapter`] and
//! [`SequenceAdapter`]: linear), with size alignment.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor, TensorData, activation::relu};

use crate::error::Error;
use crate::model::{Feature, FeatureKind};

/// Configuration of a [`FeatureAdapter`].
///
/// For feature maps the plain adapter is a 1x1 convolution followed by batch norm (as in
/// FitNets' regressor, Romero et al., 2015, and CA-MKD's connector); the deep variant is
/// 1x1 → 3x3 → 1x1 with batch norm and ReLU between (a bottleneck connector, as in Chen et
/// al., 2021, "Distilling Knowledge via Knowledge Review").
///
/// For vectors and sequences it is a linear layer `D_s → D_t` applied to each vector (each
/// position of a sequence), as TinyBERT's and MiniLM's learned projections of student hidden
/// states (Jiao et al., 2020); the deep variant is linear → ReLU → linear.
#[derive(Config, Debug)]
pub struct FeatureAdapterConfig {
    /// `[student_channels, teacher_channels]` (`D` of vectors and sequences, `C` of maps).
    pub channels: [usize; 2],
    /// The kind of the features it maps. Default: [`FeatureKind::Map`].
    #[config(default = "FeatureKind::Map")]
    pub kind: FeatureKind,
    /// Apply a ReLU after the last batch norm. Default: false.
    #[config(default = false)]
    pub relu: bool,
    /// Use the deeper variant (1x1-3x3-1x1 for maps, linear-ReLU-linear otherwise).
    /// Default: false.
    #[config(default = false)]
    pub deep: bool,
}

impl FeatureAdapterConfig {
    /// Builds the adapter on `device`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a channel count is 0.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_distill::FeatureAdapterConfig;
    ///
    /// let device = Device::default();
    /// let adapter = FeatureAdapterConfig::new([16, 32]).init(&device).unwrap();
    /// // An 8x8 student map is pooled to the teacher's 4x4 and mapped to 32 channels.
    /// let out = adapter.forward(Tensor::zeros([2, 16, 8, 8], &device), [4, 4]);
    /// assert_eq!(out.dims(), [2, 32, 4, 4]);
    /// ```
    pub fn init(&self, device: &Device) -> crate::Result<FeatureAdapter> {
        let [student, teacher] = self.channels;
        if student == 0 || teacher == 0 {
            return Err(Error::InvalidConfig {
                field: "channels",
                value: format!("{:?}", self.channels),
                reason: "channel counts must be greater than 0",
            });
        }
        Ok(match self.kind {
            FeatureKind::Vector => FeatureAdapter::Vector(self.linear_stack(device)),
            FeatureKind::Sequence => FeatureAdapter::Sequence(SequenceAdapter {
                linear: self.linear_stack(device),
            }),
            FeatureKind::Map => FeatureAdapter::Map(self.map_adapter(device)),
        })
    }

    fn linear_stack(&self, device: &Device) -> VectorAdapter {
        let [student, teacher] = self.channels;
        let mut linears = vec![LinearConfig::new(student, teacher).init(device)];
        if self.deep {
            linears.push(LinearConfig::new(teacher, teacher).init(device));
        }
        VectorAdapter {
            linears,
            relu: self.relu,
            channels: self.channels,
        }
    }

    fn map_adapter(&self, device: &Device) -> MapAdapter {
        let [student, teacher] = self.channels;
        let layers: Vec<([usize; 2], usize)> = if self.deep {
            vec![
                ([student, teacher], 1),
                ([teacher, teacher], 3),
                ([teacher, teacher], 1),
            ]
        } else {
            vec![([student, teacher], 1)]
        };
        let mut convs = Vec::with_capacity(layers.len());
        let mut norms = Vec::with_capacity(layers.len());
        for (channels, kernel) in layers {
            let pad = kernel / 2;
            convs.push(
                Conv2dConfig::new(channels, [kernel, kernel])
                    .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                    .with_bias(false)
                    .init(device),
            );
            norms.push(BatchNormConfig::new(channels[1]).init(device));
        }
        MapAdapter {
            convs,
            norms,
            relu: self.relu,
            channels: self.channels,
        }
    }
}

/// Maps a student feature onto a teacher's: size alignment, then the learned map. One
/// variant per feature kind; build it with [`FeatureAdapterConfig`].
///
/// **Maps** (`[N, C, H, W]`, [`MapAdapter`]): spatial alignment to the teacher map's
/// `[height, width]`: adaptive average pooling when the student map is at least as large in
/// both dimensions, bilinear interpolation (`align_corners = false`, PyTorch's default)
/// otherwise, nothing when the sizes match. Alignment comes first, so convolutions run at
/// the teacher's resolution.
///
/// Bilinear interpolation is computed separably as two small matrix products with
/// interpolation matrices (`A_h · X · A_wᵀ`): this is differentiable on every backend
/// (Burn's ndarray backend has no backward pass for its `interpolate` op).
///
/// **Sequences** (`[N, L, D]`, [`SequenceAdapter`]): length alignment to the teacher's
/// `L_t` along the position axis, by the 1-D versions of the same rules ([`align_length`]):
/// adaptive average pooling when the student sequence is at least as long (output position
/// `j` averages student positions `floor(j·L_s/L_t) .. ceil((j+1)·L_s/L_t)`, as PyTorch's
/// `adaptive_avg_pool1d`), linear interpolation with half-sample centres otherwise
/// (`interpolate(mode="linear", align_corners=False)`); then the linear layer on every
/// position.
///
/// **Vectors** (`[N, D]`, [`VectorAdapter`]): the linear layer.
#[derive(Module, Debug)]
pub enum FeatureAdapter {
    /// For feature maps.
    Map(MapAdapter),
    /// For vectors.
    Vector(VectorAdapter),
    /// For sequences.
    Sequence(SequenceAdapter),
}

/// The adapter of feature maps: 1x1 convolution + batch norm (deep: 1x1-3x3-1x1), after
/// spatial alignment. See [`FeatureAdapter`].
#[derive(Module, Debug)]
pub struct MapAdapter {
    convs: Vec<Conv2d>,
    norms: Vec<BatchNorm>,
    relu: bool,
    channels: [usize; 2],
}

/// The adapter of vectors: linear (deep: linear-ReLU-linear). See [`FeatureAdapter`].
#[derive(Module, Debug)]
pub struct VectorAdapter {
    linears: Vec<Linear>,
    relu: bool,
    channels: [usize; 2],
}

/// The adapter of sequences: length alignment ([`align_length`]), then a
/// [`VectorAdapter`] on every position. See [`FeatureAdapter`].
#[derive(Module, Debug)]
pub struct SequenceAdapter {
    linear: VectorAdapter,
}

impl FeatureAdapter {
    /// `[student_channels, teacher_channels]`.
    pub fn channels(&self) -> [usize; 2] {
        match self {
            FeatureAdapter::Map(a) => a.channels,
            FeatureAdapter::Vector(a) => a.channels,
            FeatureAdapter::Sequence(a) => a.linear.channels,
        }
    }

    /// The kind of features it maps.
    pub fn kind(&self) -> FeatureKind {
        match self {
            FeatureAdapter::Map(_) => FeatureKind::Map,
            FeatureAdapter::Vector(_) => FeatureKind::Vector,
            FeatureAdapter::Sequence(_) => FeatureKind::Sequence,
        }
    }

    /// Adapts a student feature to the shape of `teacher_feature` (same kind, the teacher's
    /// channels, length or spatial size): the general form of [`FeatureAdapter::forward`].
    ///
    /// # Panics
    /// When either feature is not of the adapter's kind, or the student feature does not
    /// have `student_channels` channels; the message names the kinds or shapes.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use burn_distill::{Feature, FeatureAdapterConfig, FeatureKind};
    ///
    /// let device = Device::default();
    /// let adapter = FeatureAdapterConfig::new([16, 32])
    ///     .with_kind(FeatureKind::Sequence)
    ///     .init(&device)
    ///     .unwrap();
    /// // A student sequence of 10 positions, a teacher sequence of 5 with 32 dimensions.
    /// let student = Feature::Sequence(Tensor::zeros([2, 10, 16], &device));
    /// let teacher = Feature::Sequence(Tensor::zeros([2, 5, 32], &device));
    /// assert_eq!(adapter.adapt(student, &teacher).dims(), vec![2, 5, 32]);
    /// ```
    pub fn adapt(&self, student_feature: Feature, teacher_feature: &Feature) -> Feature {
        let kind = self.kind();
        assert!(
            student_feature.kind() == kind && teacher_feature.kind() == kind,
            "FeatureAdapter for {} features got a student {} and a teacher {}",
            kind,
            student_feature.kind(),
            teacher_feature.kind()
        );
        let target = teacher_feature.dims();
        match (self, student_feature) {
            (FeatureAdapter::Map(a), Feature::Map(x)) => {
                Feature::Map(a.forward(x, [target[2], target[3]]))
            }
            (FeatureAdapter::Sequence(a), Feature::Sequence(x)) => {
                Feature::Sequence(a.forward(x, target[1]))
            }
            (FeatureAdapter::Vector(a), Feature::Vector(x)) => Feature::Vector(a.forward(x)),
            _ => unreachable!("kinds checked above"),
        }
    }

    /// Adapts a student feature map to `[N, teacher_channels, target_size[0],
    /// target_size[1]]` ([`MapAdapter::forward`]).
    ///
    /// # Shapes
    /// - `student_feature`: `[N, student_channels, H, W]`
    /// - output: `[N, teacher_channels, target_size[0], target_size[1]]`
    ///
    /// # Panics
    /// When `student_feature` does not have `student_channels` channels, or the adapter is
    /// not for maps; the message names both counts (kinds).
    pub fn forward(&self, student_feature: Tensor<4>, target_size: [usize; 2]) -> Tensor<4> {
        match self {
            FeatureAdapter::Map(a) => a.forward(student_feature, target_size),
            other => panic!(
                "FeatureAdapter::forward takes maps; this adapter is for {} features (use adapt)",
                other.kind()
            ),
        }
    }
}

fn check_channels(expected: usize, channels: usize, dims: &[usize]) {
    assert_eq!(
        channels, expected,
        "FeatureAdapter: student feature has {channels} channels, the adapter expects {expected} \
         (shape {dims:?})"
    );
}

impl VectorAdapter {
    /// `[N, D_s]` → `[N, D_t]` (or every position of a sequence, `[N, L, D_s]` →
    /// `[N, L, D_t]`).
    ///
    /// # Panics
    /// When the last dimension is not `D_s`.
    pub fn forward<const D: usize>(&self, mut x: Tensor<D>) -> Tensor<D> {
        let dims = x.dims();
        check_channels(self.channels[0], dims[D - 1], &dims);
        let last = self.linears.len() - 1;
        for (i, linear) in self.linears.iter().enumerate() {
            x = linear.forward(x);
            if i < last || self.relu {
                x = relu(x);
            }
        }
        x
    }
}

impl SequenceAdapter {
    /// `[N, L_s, D_s]` → `[N, length, D_t]`: [`align_length`], then the linear map.
    ///
    /// # Panics
    /// When the last dimension is not `D_s`.
    pub fn forward(&self, x: Tensor<3>, length: usize) -> Tensor<3> {
        let dims = x.dims();
        check_channels(self.linear.channels[0], dims[2], &dims);
        self.linear.forward(align_length(x, length))
    }
}

impl MapAdapter {
    /// `[N, C_s, H, W]` → `[N, C_t, target_size[0], target_size[1]]`.
    ///
    /// # Panics
    /// When the map does not have `C_s` channels; the message names both counts.
    pub fn forward(&self, student_feature: Tensor<4>, target_size: [usize; 2]) -> Tensor<4> {
        let [_, channels, height, width] = student_feature.dims();
        assert_eq!(
            channels,
            self.channels[0],
            "FeatureAdapter: student feature map has {channels} channels, the adapter expects {} \
             (shape {:?})",
            self.channels[0],
            student_feature.dims()
        );
        let mut x = align_spatial(student_feature, [height, width], target_size);
        let last = self.convs.len() - 1;
        for (i, (conv, norm)) in self.convs.iter().zip(&self.norms).enumerate() {
            x = norm.forward(conv.forward(x));
            if i < last || self.relu {
                x = relu(x);
            }
        }
        x
    }
}

/// Aligns a sequence `[N, L, D]` to `length` positions along its second axis: unchanged
/// when the lengths match, adaptive average pooling when `L >= length` (output position `j`
/// averages positions `floor(j·L/length) .. ceil((j+1)·L/length)`), linear interpolation
/// with half-sample centres otherwise (input coordinate `(j + 0.5)·L/length - 0.5`, clamped,
/// as PyTorch's `interpolate(mode="linear", align_corners=False)`). Both are one matrix
/// product, differentiable on every backend.
///
/// # Shapes
/// `x`: `[N, L, D]` → `[N, length, D]`.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_distill::align_length;
///
/// let device = Device::default();
/// let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, 5.0], &device).reshape([1, 5, 1]);
/// let pooled: Vec<f32> = align_length(x.clone(), 2).into_data().to_vec().unwrap();
/// assert_eq!(pooled, vec![2.0, 4.0]); // positions 0..3 and 2..5
/// let stretched: Vec<f32> = align_length(x.slice([0..1, 0..2]), 4).into_data().to_vec().unwrap();
/// assert_eq!(stretched, vec![1.0, 1.25, 1.75, 2.0]);
/// ```
pub fn align_length(x: Tensor<3>, length: usize) -> Tensor<3> {
    let [n, l, d] = x.dims();
    if l == length {
        return x;
    }
    let device = x.device();
    let matrix = if l >= length {
        pooling_matrix(l, length, &device)
    } else {
        interpolation_matrix(l, length, &device)
    };
    x.swap_dims(1, 2)
        .reshape([n * d, l])
        .matmul(matrix)
        .reshape([n, d, length])
        .swap_dims(1, 2)
}

/// `[input, output]` matrix of adaptive average pooling weights: output `o` averages inputs
/// `floor(o·input/output) .. ceil((o+1)·input/output)`.
fn pooling_matrix(input: usize, output: usize, device: &Device) -> Tensor<2> {
    let mut weights = vec![0f32; input * output];
    for o in 0..output {
        let start = o * input / output;
        let end = ((o + 1) * input).div_ceil(output);
        for i in start..end {
            weights[i * output + o] = 1.0 / (end - start) as f32;
        }
    }
    Tensor::from_data(TensorData::new(weights, [input, output]), device)
}

fn align_spatial(x: Tensor<4>, size: [usize; 2], target: [usize; 2]) -> Tensor<4> {
    if size == target {
        x
    } else if size[0] >= target[0] && size[1] >= target[1] {
        adaptive_avg_pool2d(x, target)
    } else {
        bilinear_resize(x, target)
    }
}

/// Bilinear resize with half-pixel centres (`align_corners = false`, PyTorch's default),
/// computed as `A_h · X · A_wᵀ` with 2-D matrix products, so it is differentiable on every
/// backend.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → `[N, C, target[0], target[1]]`.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_distill::bilinear_resize;
///
/// let device = Device::default();
/// let x = Tensor::<1>::from_floats([1.0, 2.0], &device).reshape([1, 1, 1, 2]);
/// let y = bilinear_resize(x, [1, 4]).to_data().to_vec::<f32>().unwrap();
/// assert_eq!(y, vec![1.0, 1.25, 1.75, 2.0]);
/// ```
pub fn bilinear_resize(x: Tensor<4>, target: [usize; 2]) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let [th, tw] = target;
    let device = x.device();
    let a_w = interpolation_matrix(w, tw, &device); // [w, tw]
    let a_h = interpolation_matrix(h, th, &device); // [h, th]
    let rows = x.reshape([n * c * h, w]).matmul(a_w); // [n c h, tw]
    let cols = rows
        .reshape([n * c, h, tw])
        .swap_dims(1, 2)
        .reshape([n * c * tw, h])
        .matmul(a_h); // [n c tw, th]
    cols.reshape([n * c, tw, th])
        .swap_dims(1, 2)
        .reshape([n, c, th, tw])
}

/// `[input, output]` matrix of 1-D linear-interpolation weights with half-pixel centres:
/// output `o` samples input coordinate `(o + 0.5) · input / output - 0.5`, clamped to the
/// valid range (as PyTorch's `interpolate(mode="bilinear", align_corners=False)`).
fn interpolation_matrix(input: usize, output: usize, device: &Device) -> Tensor<2> {
    let mut weights = vec![0f32; input * output];
    let scale = input as f64 / output as f64;
    for o in 0..output {
        let src = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(input - 1);
        let i1 = (i0 + 1).min(input - 1);
        let frac = (src - i0 as f64) as f32;
        weights[i0 * output + o] += 1.0 - frac;
        weights[i1 * output + o] += frac;
    }
    Tensor::from_data(TensorData::new(weights, [input, output]), device)
}
