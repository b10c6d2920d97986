//! Feature adapters: small trainable maps from a student feature map to a teacher's.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor, TensorData, activation::relu};

use crate::error::Error;

/// Configuration of a [`FeatureAdapter`].
///
/// The plain adapter is a 1x1 convolution followed by batch norm (as in FitNets' regressor,
/// Romero et al., 2015, and CA-MKD's connector); the deep variant is 1x1 → 3x3 → 1x1 with
/// batch norm and ReLU between (a bottleneck connector, as in Chen et al., 2021, "Distilling
/// Knowledge via Knowledge Review").
#[derive(Config, Debug)]
pub struct FeatureAdapterConfig {
    /// `[student_channels, teacher_channels]`.
    pub channels: [usize; 2],
    /// Apply a ReLU after the last batch norm. Default: false.
    #[config(default = false)]
    pub relu: bool,
    /// Use the deeper 1x1-3x3-1x1 variant. Default: false.
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
            convs.push(
                Conv2dConfig::new(channels, [kernel, kernel])
                    .with_padding(PaddingConfig2d::Explicit(
                        kernel / 2,
                        kernel / 2,
                        kernel / 2,
                        kernel / 2,
                    ))
                    .with_bias(false)
                    .init(device),
            );
            norms.push(BatchNormConfig::new(channels[1]).init(device));
        }
        Ok(FeatureAdapter {
            convs,
            norms,
            relu: self.relu,
            channels: self.channels,
        })
    }
}

/// Maps a student feature map onto a teacher's: spatial alignment, then conv + batch norm.
///
/// Spatial alignment to the teacher map's `[height, width]`: adaptive average pooling when
/// the student map is at least as large in both dimensions, bilinear interpolation
/// (`align_corners = false`, PyTorch's default) otherwise, nothing when the sizes match.
/// Alignment comes first, so convolutions run at the teacher's resolution.
///
/// Bilinear interpolation is computed separably as two small matrix products with
/// interpolation matrices (`A_h · X · A_wᵀ`): this is differentiable on every backend
/// (Burn's ndarray backend has no backward pass for its `interpolate` op).
#[derive(Module, Debug)]
pub struct FeatureAdapter {
    convs: Vec<Conv2d>,
    norms: Vec<BatchNorm>,
    relu: bool,
    channels: [usize; 2],
}

impl FeatureAdapter {
    /// `[student_channels, teacher_channels]`.
    pub fn channels(&self) -> [usize; 2] {
        self.channels
    }

    /// Adapts `student_feature` to `[N, teacher_channels, target_size[0], target_size[1]]`.
    ///
    /// # Shapes
    /// - `student_feature`: `[N, student_channels, H, W]`
    /// - output: `[N, teacher_channels, target_size[0], target_size[1]]`
    ///
    /// # Panics
    /// When `student_feature` does not have `student_channels` channels; the message names
    /// both counts.
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
