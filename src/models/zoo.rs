//! The CIFAR models by name: [`Architecture`] picks one, [`ZooModel`] holds any of them as
//! one module type (for command lines, configs and grids that choose the model at run time).

use std::fmt;
use std::str::FromStr;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{ResNet, ResNetConfig, Vgg, VggConfig};
use crate::model::{FeatureModel, FeatureSpec, ModelOutput};

/// A CIFAR architecture of the distillation literature (Tian et al., 2020, CRD's model
/// zoo), by name: `vgg8`, `vgg13`, `resnet8x4`, `resnet32x4`.
///
/// # Example
/// ```
/// use burn::tensor::Device;
/// use burn_distill::FeatureModel;
/// use burn_distill::models::Architecture;
///
/// let arch: Architecture = "resnet8x4".parse().unwrap();
/// assert_eq!(arch, Architecture::ResNet8x4);
/// assert_eq!(arch.to_string(), "resnet8x4");
/// let model = arch.init(10, 8, 3, &Device::default()).unwrap();
/// assert_eq!(model.num_classes(), 10);
/// let err = "vgg99".parse::<Architecture>().unwrap_err();
/// assert!(err.to_string().contains("architecture = vgg99: unknown architecture"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Architecture {
    /// VGG8 ([`VggConfig::vgg8`]).
    Vgg8,
    /// VGG13 ([`VggConfig::vgg13`]).
    Vgg13,
    /// ResNet8x4: depth 8 ([`ResNetConfig::new`]`(8, ..)`).
    #[serde(rename = "Resnet8x4")]
    ResNet8x4,
    /// ResNet32x4: depth 32.
    #[serde(rename = "Resnet32x4")]
    ResNet32x4,
}

impl Architecture {
    /// Every architecture, in the order of the names above.
    pub const ALL: [Architecture; 4] = [
        Architecture::Vgg8,
        Architecture::Vgg13,
        Architecture::ResNet8x4,
        Architecture::ResNet32x4,
    ];

    /// The lower-case name (`resnet8x4`), as [`FromStr`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Vgg8 => "vgg8",
            Architecture::Vgg13 => "vgg13",
            Architecture::ResNet8x4 => "resnet8x4",
            Architecture::ResNet32x4 => "resnet32x4",
        }
    }

    /// A fresh model for `classes` classes on images with `in_channels` channels, its first
    /// stage `width` channels wide (64 in the papers). A VGG's stages are `width` · (1, 2, 4,
    /// 8, 8); a ResNet's `width / 2`, `width`, `2 width`, `4 width` (the "x4" ResNets of CRD
    /// at width 64).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when `classes`, `width` or `in_channels` is 0.
    pub fn init(
        self,
        classes: usize,
        width: usize,
        in_channels: usize,
        device: &Device,
    ) -> crate::Result<ZooModel> {
        if classes == 0 || width == 0 || in_channels == 0 {
            return Err(crate::Error::InvalidConfig {
                field: "architecture",
                value: format!(
                    "{self} with {classes} classes, width {width}, {in_channels} input channels"
                ),
                reason: "classes, width and input channels must be at least 1",
            });
        }
        let vgg = |config: VggConfig| {
            ZooModel::Vgg(
                config
                    .with_width(width)
                    .with_in_channels(in_channels)
                    .init(device),
            )
        };
        let resnet = |depth| {
            ResNetConfig::new(depth, classes)
                .with_widths([(width / 2).max(1), width, 2 * width, 4 * width])
                .with_in_channels(in_channels)
                .init(device)
                .map(ZooModel::ResNet)
        };
        match self {
            Architecture::Vgg8 => Ok(vgg(VggConfig::vgg8(classes))),
            Architecture::Vgg13 => Ok(vgg(VggConfig::vgg13(classes))),
            Architecture::ResNet8x4 => resnet(8),
            Architecture::ResNet32x4 => resnet(32),
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Architecture {
    type Err = crate::Error;

    /// The name, case-insensitive.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the text and the known names.
    fn from_str(text: &str) -> crate::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| crate::Error::InvalidConfig {
                field: "architecture",
                value: text.to_string(),
                reason: "unknown architecture (vgg8, vgg13, resnet8x4, resnet32x4)",
            })
    }
}

/// Any model of [`Architecture`] as one module type. Its record is the variant's name over
/// the model's own (`Vgg.stages...`), and its PyTorch layout the model's with that prefix.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum ZooModel {
    /// A VGG.
    Vgg(Vgg),
    /// A ResNet.
    ResNet(ResNet),
}

impl FeatureModel for ZooModel {
    fn forward_features(&self, x: Tensor<4>) -> ModelOutput {
        match self {
            ZooModel::Vgg(m) => m.forward_features(x),
            ZooModel::ResNet(m) => m.forward_features(x),
        }
    }

    fn num_classes(&self) -> usize {
        match self {
            ZooModel::Vgg(m) => m.num_classes(),
            ZooModel::ResNet(m) => m.num_classes(),
        }
    }

    fn feature_specs(&self) -> Option<Vec<FeatureSpec>> {
        match self {
            ZooModel::Vgg(m) => m.feature_specs(),
            ZooModel::ResNet(m) => m.feature_specs(),
        }
    }
}

#[cfg(feature = "files")]
impl crate::files::PytorchLayout for ZooModel {
    /// The architecture's own rules, then its variant name in front of every path (an enum
    /// module's paths start with the variant: `Vgg.stages...`).
    fn pytorch_key_remapping(&self) -> Vec<(String, String)> {
        let (mut rules, variant) = match self {
            ZooModel::Vgg(m) => (m.pytorch_key_remapping(), "Vgg"),
            ZooModel::ResNet(m) => (m.pytorch_key_remapping(), "ResNet"),
        };
        rules.push((r"^(.*)$".into(), format!("{variant}.$1")));
        rules
    }
}
