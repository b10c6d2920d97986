use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor, activation::relu};
use serde::{Deserialize, Serialize};

#[cfg(feature = "files")]
use crate::files::PytorchLayout;
use crate::model::{FeatureModel, FeatureSpec, ModelOutput};

use super::fold::{FoldBatchNorm, conv_norm, fold_batch_norm};

/// Which CIFAR VGG: the number of 3x3 convolutions in each of the five stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VggDepth {
    /// VGG8: one convolution per stage.
    Vgg8,
    /// VGG11: 1, 1, 2, 2, 2.
    Vgg11,
    /// VGG13: two convolutions per stage.
    Vgg13,
}

impl VggDepth {
    fn layers(self) -> [usize; 5] {
        match self {
            VggDepth::Vgg8 => [1, 1, 1, 1, 1],
            VggDepth::Vgg11 => [1, 1, 2, 2, 2],
            VggDepth::Vgg13 => [2, 2, 2, 2, 2],
        }
    }
}

/// Configuration of a CIFAR [`Vgg`], as defined in RepDistiller's `vgg.py` (Tian et al.,
/// 2020, "Contrastive Representation Distillation"), used throughout the distillation
/// literature.
#[derive(Config, Debug)]
pub struct VggConfig {
    /// Depth (layers per stage).
    pub depth: VggDepth,
    /// Number of classes.
    pub num_classes: usize,
    /// Input channels. Default: 3.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Channels of the first stage; stages have `[w, 2w, 4w, 8w, 8w]`. Default: 64 (the
    /// literature's models); smaller values give narrower models for quick runs.
    #[config(default = 64)]
    pub width: usize,
}

impl VggConfig {
    /// VGG8 for `num_classes` classes: 3,965,028 parameters for 100 classes.
    pub fn vgg8(num_classes: usize) -> Self {
        Self::new(VggDepth::Vgg8, num_classes)
    }

    /// VGG13 for `num_classes` classes: 9,462,180 parameters for 100 classes.
    pub fn vgg13(num_classes: usize) -> Self {
        Self::new(VggDepth::Vgg13, num_classes)
    }

    /// Builds the model on `device`.
    pub fn init(&self, device: &Device) -> Vgg {
        let w = self.width;
        let widths = [w, 2 * w, 4 * w, 8 * w, 8 * w];
        let mut in_channels = self.in_channels;
        let mut stages = Vec::with_capacity(5);
        for (count, out) in self.depth.layers().into_iter().zip(widths) {
            let mut layers = Vec::with_capacity(count);
            for _ in 0..count {
                layers.push(ConvBn {
                    conv: Conv2dConfig::new([in_channels, out], [3, 3])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(device),
                    norm: BatchNormConfig::new(out).init(device),
                });
                in_channels = out;
            }
            stages.push(VggStage { layers });
        }
        Vgg {
            folded: false,
            stages,
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            classifier: LinearConfig::new(8 * w, self.num_classes).init(device),
        }
    }
}

/// 3x3 convolution (with bias) followed by batch norm.
#[derive(Module, Debug)]
pub struct ConvBn {
    conv: Conv2d,
    norm: BatchNorm,
}

/// One VGG stage: its conv-BN layers, each followed by a ReLU.
#[derive(Module, Debug)]
pub struct VggStage {
    layers: Vec<ConvBn>,
}

/// A CIFAR VGG: five stages of 3x3 conv + BN + ReLU, 2x2 max-pooling after the first three
/// stages (and after the fourth for inputs of 64 pixels or more, as in RepDistiller), global
/// average pooling and a linear classifier.
///
/// Feature maps for distillation: the output of the last stage (after its ReLU), `[N, 8w,
/// H/8, W/8]`, e.g. `512x4x4` for CIFAR.
#[derive(Module, Debug)]
pub struct Vgg {
    #[module(skip)]
    folded: bool,
    stages: Vec<VggStage>,
    pool: MaxPool2d,
    classifier: Linear,
}

impl Vgg {
    /// Class logits, `[N, num_classes]`.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
        self.forward_features(input).logits
    }

    /// Every stage's output (after ReLU) and the logits.
    pub fn forward_stages(&self, input: Tensor<4>) -> (Vec<Tensor<4>>, Tensor<2>) {
        let [_, _, height, _] = input.dims();
        let mut x = input;
        let mut stages = Vec::with_capacity(self.stages.len());
        for (i, stage) in self.stages.iter().enumerate() {
            for layer in &stage.layers {
                x = relu(conv_norm(&layer.conv, &layer.norm, self.folded, x));
            }
            stages.push(x.clone());
            if i < 3 || (i == 3 && height >= 64) {
                x = self.pool.forward(x);
            }
        }
        let [n, c, _, _] = x.dims();
        let logits = self
            .classifier
            .forward(adaptive_avg_pool2d(x, [1, 1]).reshape([n, c]));
        (stages, logits)
    }
}

impl FeatureModel for Vgg {
    fn forward_features(&self, input: Tensor<4>) -> ModelOutput {
        let (mut stages, logits) = self.forward_stages(input);
        let last: Vec<Tensor<4>> = stages.pop().into_iter().collect();
        ModelOutput {
            logits,
            features: last.into_iter().map(Into::into).collect(),
        }
    }

    fn num_classes(&self) -> usize {
        self.classifier.weight.dims()[1]
    }

    /// Images of the configured channel count (`in_channels`, 3 by default), of any size:
    /// `[C, any, any]`.
    fn input_shape(&self) -> Option<crate::InputShape> {
        Some(crate::InputShape::new([
            Some(self.stages[0].layers[0].conv.weight.dims()[1]),
            None,
            None,
        ]))
    }

    fn feature_specs(&self) -> Option<Vec<FeatureSpec>> {
        Some(vec![FeatureSpec::map(self.classifier.weight.dims()[0])])
    }
}

/// Parameter names of RepDistiller's `vgg.py`: stage `s` is `block{s}`, an
/// `nn.Sequential` of (conv, BN, ReLU) triples without the last ReLU, so layer `j` of a
/// stage has its conv at index `3j` and its BN at `3j + 1`; the classifier is `classifier`.
#[cfg(feature = "files")]
impl PytorchLayout for Vgg {
    fn pytorch_key_remapping(&self) -> Vec<(String, String)> {
        let layers = self
            .stages
            .iter()
            .map(|s| s.layers.len())
            .max()
            .unwrap_or(0);
        let mut rules = Vec::new();
        for j in 0..layers {
            rules.push((
                format!(r"^block(\d+)\.{}\.", 3 * j),
                format!("stages.$1.layers.{j}.conv."),
            ));
            rules.push((
                format!(r"^block(\d+)\.{}\.", 3 * j + 1),
                format!("stages.$1.layers.{j}.norm."),
            ));
        }
        rules
    }
}

impl FoldBatchNorm for Vgg {
    fn fold_batch_norm(mut self) -> Self {
        if !self.folded {
            for stage in &mut self.stages {
                for layer in &mut stage.layers {
                    layer.conv = fold_batch_norm(&layer.conv, &layer.norm);
                }
            }
            self.folded = true;
        }
        self
    }

    fn is_folded(&self) -> bool {
        self.folded
    }
}
