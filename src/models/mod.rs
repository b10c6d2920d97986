//! Ready-made models that expose logits and features ([`crate::FeatureModel`]), usable
//! as students or teachers: the CIFAR VGG and ResNet models of the distillation literature,
//! a small CNN for tests and quick experiments, and a transformer-encoder classifier over
//! token ids or float sequences; [`Architecture`] and [`ZooModel`] pick the CIFAR models by
//! name at run time.

mod cnn;
mod fold;
mod resnet;
mod transformer;
mod vgg;
mod zoo;

pub use cnn::{Cnn, CnnConfig};
pub use fold::{FoldBatchNorm, fold_batch_norm};
pub use resnet::{BasicBlock, Downsample, ResNet, ResNetConfig, ResNetStage};
pub use transformer::{SequenceInput, SequenceTransformer, SequenceTransformerConfig};
pub use vgg::{ConvBn, Vgg, VggConfig, VggDepth, VggStage};
pub use zoo::{Architecture, ZooModel};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Number of learnable parameters of `module`, counted as PyTorch's
/// `sum(p.numel() for p in model.parameters())` counts them: batch-norm running statistics
/// (which Burn's [`Module::num_params`] includes) are left out. Lazy parameters are not
/// initialised.
///
/// # Example
/// ```
/// use burn::tensor::Device;
/// use burn_distill::models::{VggConfig, parameter_count};
///
/// let vgg8 = VggConfig::vgg8(100).init(&Device::default());
/// assert_eq!(parameter_count(&vgg8), 3_965_028);
/// ```
pub fn parameter_count<M: Module>(module: &M) -> usize {
    let mut counter = ParameterCounter::default();
    module.visit(&mut counter);
    counter.count
}

#[derive(Default)]
struct ParameterCounter {
    path: Vec<String>,
    count: usize,
}

impl ModuleVisitor for ParameterCounter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let buffer = matches!(
            self.path.last().map(String::as_str),
            Some("running_mean" | "running_var")
        );
        if !buffer {
            self.count += param.lazy_shape().num_elements();
        }
    }
}
