use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor, activation::relu};

#[cfg(feature = "files")]
use crate::files::PytorchLayout;
use crate::model::{FeatureModel, FeatureSpec, ModelOutput};

use super::fold::{FoldBatchNorm, conv_norm, fold_batch_norm};

/// Configuration of a [`Cnn`].
#[derive(Config, Debug)]
pub struct CnnConfig {
    /// Number of classes.
    pub num_classes: usize,
    /// Input channels (3 for RGB, 1 for grayscale). Default: 3.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Channels of the first stage; the second has twice as many. Default: 16.
    #[config(default = 16)]
    pub width: usize,
}

impl CnnConfig {
    /// Builds the model on `device`.
    pub fn init(&self, device: &Device) -> Cnn {
        let conv = |channels: [usize; 2]| {
            Conv2dConfig::new(channels, [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let w = self.width;
        Cnn {
            folded: false,
            conv1: conv([self.in_channels, w]),
            norm1: BatchNormConfig::new(w).init(device),
            conv2: conv([w, 2 * w]),
            norm2: BatchNormConfig::new(2 * w).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            classifier: LinearConfig::new(2 * w, self.num_classes).init(device),
        }
    }
}

/// A small two-stage CNN for tests, examples and quick experiments:
/// conv3x3-BN-ReLU, 2x2 max-pool, conv3x3-BN-ReLU (the feature map), global average pool,
/// linear.
///
/// # Shapes
/// - input: `[N, in_channels, H, W]` (H, W even)
/// - logits: `[N, num_classes]`; one feature map `[N, 2 * width, H / 2, W / 2]`
#[derive(Module, Debug)]
pub struct Cnn {
    #[module(skip)]
    folded: bool,
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    pool: MaxPool2d,
    classifier: Linear,
}

impl Cnn {
    /// Class logits, `[N, num_classes]`.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
        self.forward_features(input).logits
    }
}

impl FeatureModel for Cnn {
    fn forward_features(&self, input: Tensor<4>) -> ModelOutput {
        let x = relu(conv_norm(&self.conv1, &self.norm1, self.folded, input));
        let x = self.pool.forward(x);
        let feature = relu(conv_norm(&self.conv2, &self.norm2, self.folded, x));
        let [n, c, _, _] = feature.dims();
        let pooled = adaptive_avg_pool2d(feature.clone(), [1, 1]).reshape([n, c]);
        ModelOutput {
            logits: self.classifier.forward(pooled),
            features: vec![feature.into()],
        }
    }

    fn num_classes(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// Images of the configured channel count (`in_channels`, 3 by default), of any size:
    /// `[C, any, any]`.
    fn input_shape(&self) -> Option<crate::InputShape> {
        Some(crate::InputShape::new([
            Some(self.conv1.weight.dims()[1]),
            None,
            None,
        ]))
    }

    fn feature_specs(&self) -> Option<Vec<FeatureSpec>> {
        Some(vec![FeatureSpec::map(self.conv2.weight.dims()[0])])
    }
}

/// The small CNN has no PyTorch counterpart: its state-dict keys are its Burn paths.
#[cfg(feature = "files")]
impl PytorchLayout for Cnn {}

impl FoldBatchNorm for Cnn {
    fn fold_batch_norm(mut self) -> Self {
        if !self.folded {
            self.conv1 = fold_batch_norm(&self.conv1, &self.norm1);
            self.conv2 = fold_batch_norm(&self.conv2, &self.norm2);
            self.folded = true;
        }
        self
    }

    fn is_folded(&self) -> bool {
        self.folded
    }
}
