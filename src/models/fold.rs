use burn::module::Param;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

/// Folds an inference-mode batch norm into the convolution before it: one convolution
/// whose output equals `norm(conv(x))` with the running statistics,
/// `w' = w · γ / √(σ² + ε)` per output channel and `b' = (b - μ) · γ / √(σ² + ε) + β`
/// (`b = 0` for a convolution without bias). The standard inference-time fusion (as in
/// PyTorch's `torch.nn.utils.fusion.fuse_conv_bn_eval`): a frozen teacher then skips batch
/// norm entirely.
///
/// Only for frozen models: the folded convolution is not equivalent in training mode
/// (batch statistics) and no longer separates the two layers' parameters.
///
/// # Example
/// ```
/// use burn::nn::BatchNormConfig;
/// use burn::nn::conv::Conv2dConfig;
/// use burn::tensor::{Device, Distribution, Tensor};
/// use burn_distill::models::fold_batch_norm;
///
/// let device = Device::default();
/// let conv = Conv2dConfig::new([3, 8], [3, 3]).init(&device);
/// let norm = BatchNormConfig::new(8).init(&device);
/// let x = Tensor::<4>::random([2, 3, 6, 6], Distribution::Default, &device);
/// let folded = fold_batch_norm(&conv, &norm);
/// let diff = (folded.forward(x.clone()) - norm.forward(conv.forward(x))).abs().max();
/// assert!(diff.into_scalar::<f32>() < 1e-5);
/// ```
pub fn fold_batch_norm(conv: &Conv2d, norm: &BatchNorm) -> Conv2d {
    // Constants of a frozen model: computed without autodiff, so the folded parameters are
    // leaves (and a model on an autodiff device can be folded too).
    let weight = conv.weight.val().without_autodiff();
    let [out, ..] = weight.dims();
    let variance = norm.running_var.value().without_autodiff();
    let scale = norm.gamma.val().without_autodiff() / variance.add_scalar(norm.epsilon).sqrt();
    let bias = match &conv.bias {
        Some(bias) => bias.val().without_autodiff(),
        None => Tensor::zeros([out], &weight.device()),
    };
    let bias = (bias - norm.running_mean.value().without_autodiff()) * scale.clone()
        + norm.beta.val().without_autodiff();
    let mut folded = conv.clone();
    folded.weight = Param::from_tensor(weight * scale.reshape([out, 1, 1, 1]));
    folded.bias = Some(Param::from_tensor(bias));
    folded
}

/// Models whose batch norms can be folded into their convolutions for inference: the
/// models of [`crate::models`] implement it. Fold a model before freezing it as a teacher
/// (`FrozenTeacher::from_model(name, model.fold_batch_norm())`): its forward pass then runs
/// no batch norm, with the same outputs (to float rounding).
///
/// A folded model is for inference only: do not train it, and save the unfolded model
/// (the folded one's record holds the folded convolution weights beside the unused batch
/// norms).
pub trait FoldBatchNorm: Sized {
    /// The model with every batch norm folded into the convolution before it.
    fn fold_batch_norm(self) -> Self;
    /// Whether the batch norms are folded.
    fn is_folded(&self) -> bool;
}

/// `norm(conv(x))`, or `conv(x)` alone when `conv` holds the folded batch norm.
pub(crate) fn conv_norm(conv: &Conv2d, norm: &BatchNorm, folded: bool, x: Tensor<4>) -> Tensor<4> {
    let y = conv.forward(x);
    if folded { y } else { norm.forward(y) }
}
