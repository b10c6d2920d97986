use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor, activation::relu};

#[cfg(feature = "files")]
use crate::files::PytorchLayout;
use crate::model::{FeatureModel, FeatureSpec, ModelOutput};

use super::fold::{FoldBatchNorm, conv_norm, fold_batch_norm};

/// Configuration of a CIFAR [`ResNet`] with basic blocks, as defined in RepDistiller's
/// `resnet.py` (Tian et al., 2020): a 3x3 stem and three stages of `(depth - 2) / 6` basic
/// blocks at strides 1, 2, 2.
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Depth `6n + 2`: 8, 14, 20, 32, 56, 110.
    pub depth: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Channels of the stem and the three stages. Default: `[32, 64, 128, 256]` (the "x4"
    /// models of the distillation literature).
    #[config(default = "[32, 64, 128, 256]")]
    pub widths: [usize; 4],
    /// Input channels. Default: 3.
    #[config(default = 3)]
    pub in_channels: usize,
}

impl ResNetConfig {
    /// ResNet8x4: 1,233,540 parameters for 100 classes.
    pub fn resnet8x4(num_classes: usize) -> Self {
        Self::new(8, num_classes)
    }

    /// ResNet32x4: 7,433,860 parameters for 100 classes.
    pub fn resnet32x4(num_classes: usize) -> Self {
        Self::new(32, num_classes)
    }

    /// Builds the model on `device`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when `depth` is not `6n + 2` with `n >= 1`, or a
    /// width or the input channels are 0.
    pub fn init(&self, device: &Device) -> crate::Result<ResNet> {
        if self.depth < 8 || !(self.depth - 2).is_multiple_of(6) {
            return Err(crate::Error::InvalidConfig {
                field: "depth",
                value: self.depth.to_string(),
                reason: "must be 6n + 2 with n >= 1 (8, 14, 20, 32, 56, 110)",
            });
        }
        if self.widths.contains(&0) || self.in_channels == 0 {
            return Err(crate::Error::InvalidConfig {
                field: "widths",
                value: format!("{:?} (input channels {})", self.widths, self.in_channels),
                reason: "every width and the input channels must be at least 1",
            });
        }
        let blocks = (self.depth - 2) / 6;
        let conv3 = |channels: [usize; 2], stride: usize| {
            Conv2dConfig::new(channels, [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(false)
                .init(device)
        };
        let [stem, w1, w2, w3] = self.widths;
        let mut in_planes = stem;
        let mut stages = Vec::with_capacity(3);
        for (planes, stride) in [(w1, 1), (w2, 2), (w3, 2)] {
            let mut stage = Vec::with_capacity(blocks);
            for b in 0..blocks {
                let stride = if b == 0 { stride } else { 1 };
                let downsample = (stride != 1 || in_planes != planes).then(|| Downsample {
                    conv: Conv2dConfig::new([in_planes, planes], [1, 1])
                        .with_stride([stride, stride])
                        .with_bias(false)
                        .init(device),
                    norm: BatchNormConfig::new(planes).init(device),
                });
                stage.push(BasicBlock {
                    conv1: conv3([in_planes, planes], stride),
                    bn1: BatchNormConfig::new(planes).init(device),
                    conv2: conv3([planes, planes], 1),
                    bn2: BatchNormConfig::new(planes).init(device),
                    downsample,
                });
                in_planes = planes;
            }
            stages.push(ResNetStage { blocks: stage });
        }
        Ok(ResNet {
            folded: false,
            conv1: conv3([self.in_channels, stem], 1),
            bn1: BatchNormConfig::new(stem).init(device),
            stages,
            fc: LinearConfig::new(w3, self.num_classes).init(device),
        })
    }
}

/// 1x1 strided convolution + batch norm on the shortcut.
#[derive(Module, Debug)]
pub struct Downsample {
    conv: Conv2d,
    norm: BatchNorm,
}

/// `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    downsample: Option<Downsample>,
}

impl BasicBlock {
    fn forward(&self, x: Tensor<4>, folded: bool) -> Tensor<4> {
        let out = relu(conv_norm(&self.conv1, &self.bn1, folded, x.clone()));
        let out = conv_norm(&self.conv2, &self.bn2, folded, out);
        let shortcut = match &self.downsample {
            Some(d) => conv_norm(&d.conv, &d.norm, folded, x),
            None => x,
        };
        relu(out + shortcut)
    }

    fn fold(&mut self) {
        self.conv1 = fold_batch_norm(&self.conv1, &self.bn1);
        self.conv2 = fold_batch_norm(&self.conv2, &self.bn2);
        if let Some(d) = &mut self.downsample {
            d.conv = fold_batch_norm(&d.conv, &d.norm);
        }
    }
}

/// A stage of basic blocks.
#[derive(Module, Debug)]
pub struct ResNetStage {
    blocks: Vec<BasicBlock>,
}

/// A CIFAR ResNet with basic blocks; feature map for distillation: the last stage's output,
/// `[N, widths[3], H/4, W/4]` (256x8x8 for CIFAR ResNet32x4).
#[derive(Module, Debug)]
pub struct ResNet {
    #[module(skip)]
    folded: bool,
    conv1: Conv2d,
    bn1: BatchNorm,
    stages: Vec<ResNetStage>,
    fc: Linear,
}

impl ResNet {
    /// Class logits, `[N, num_classes]`.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<2> {
        self.forward_features(input).logits
    }
}

impl FeatureModel for ResNet {
    fn forward_features(&self, input: Tensor<4>) -> ModelOutput {
        let mut x = relu(conv_norm(&self.conv1, &self.bn1, self.folded, input));
        for stage in &self.stages {
            for block in &stage.blocks {
                x = block.forward(x, self.folded);
            }
        }
        let [n, c, _, _] = x.dims();
        let logits = self
            .fc
            .forward(adaptive_avg_pool2d(x.clone(), [1, 1]).reshape([n, c]));
        ModelOutput {
            logits,
            features: vec![x.into()],
        }
    }

    fn num_classes(&self) -> usize {
        self.fc.weight.dims()[1]
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
        Some(vec![FeatureSpec::map(self.fc.weight.dims()[0])])
    }
}

/// Parameter names of RepDistiller's `resnet.py`: `conv1`, `bn1`, `layer{1,2,3}.{i}` with
/// `conv1`/`bn1`/`conv2`/`bn2` and `downsample.0` (conv) / `downsample.1` (BN), and `fc`.
#[cfg(feature = "files")]
impl PytorchLayout for ResNet {
    fn pytorch_key_remapping(&self) -> Vec<(String, String)> {
        let mut rules: Vec<(String, String)> = (0..self.stages.len())
            .map(|s| (format!(r"^layer{}\.", s + 1), format!("stages.{s}.blocks.")))
            .collect();
        rules.push((r"\.downsample\.0\.".into(), ".downsample.conv.".into()));
        rules.push((r"\.downsample\.1\.".into(), ".downsample.norm.".into()));
        rules
    }
}

impl FoldBatchNorm for ResNet {
    fn fold_batch_norm(mut self) -> Self {
        if !self.folded {
            self.conv1 = fold_batch_norm(&self.conv1, &self.bn1);
            for stage in &mut self.stages {
                for block in &mut stage.blocks {
                    block.fold();
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
