//! The feature term against, for each sample, the one kept teacher the student is closest to.

use super::FEATURE;
use super::feature::{FeatureLoss, FeatureLossConfig, FeatureNorm};
use super::term::{LossTerm, TermInput, TermValue};

/// Feature loss against the closest kept teacher: with `d[i, k]` [`FeatureLoss`]'s distance
/// between the student's features through teacher `k`'s adapters and teacher `k`'s features
/// (`Σ_f mean (A_kf(f_s)[i] - f_kf[i])²`, divided by `mean f_kf[i]² + 1e-6` with
/// [`FeatureNorm::TeacherMeanSquare`]), the loss of sample `i` is
/// `L[i] = min_{k : w[i, k] > 0} d[i, k]`.
///
/// The selector's weights `w` only decide which teachers may be the target (the screened-out
/// ones, weight 0, may not); they do not scale the distance. The gradient reaches the closest
/// teacher's adapters alone. With comparable teachers of different architectures the
/// per-teacher term ([`FeatureLoss`], `Σ_k w[i, k] d[i, k]`) pulls every student map towards
/// several targets at once; this term lets each sample follow the teacher whose maps the
/// student can already match best (docs/RESULTS.md, issue 29: on CIFAR-10, a single teacher
/// of the student's own architecture beat the weighted sum over three).
///
/// Select it with [`crate::DistillationLossConfig::feature_target`] =
/// [`crate::FeatureTarget::Closest`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use burn_distill::{DistillationLossConfig, FeatureTarget, ModelOutput};
///
/// let device = Device::default();
/// let loss = DistillationLossConfig::new()
///     .with_hard_weight(0.0)
///     .with_soft_weight(0.0)
///     .with_feature_weight(1.0)
///     .with_feature_target(FeatureTarget::Closest)
///     .init()
///     .unwrap();
/// // Student features 1; teachers' features 0 (distance 1) and 3 (distance 4).
/// let teacher = |v: f32| ModelOutput {
///     logits: Tensor::zeros([1, 2], &device),
///     features: vec![Tensor::<2>::full([1, 4], v, &device).into()],
/// };
/// let adapted = vec![vec![Tensor::<2>::ones([1, 4], &device).into()]; 2];
/// let out = loss.forward(
///     Tensor::zeros([1, 2], &device),
///     Tensor::<1, Int>::from_ints([0], &device),
///     &[teacher(0.0), teacher(3.0)],
///     &adapted,
///     Tensor::<2>::from_floats([[0.5, 0.5]], &device),
/// );
/// assert!((out.total.into_scalar::<f32>() - 1.0).abs() < 1e-6);
/// ```
#[derive(Debug, Clone)]
pub struct ClosestFeatureLoss {
    distance: FeatureLoss,
}

impl ClosestFeatureLoss {
    /// The term with [`FeatureLoss`]'s distance `norm`.
    pub fn new(norm: FeatureNorm) -> Self {
        Self {
            distance: FeatureLossConfig::new().with_norm(norm).init(),
        }
    }
}

impl LossTerm for ClosestFeatureLoss {
    fn name(&self) -> &str {
        FEATURE
    }

    fn uses_features(&self) -> bool {
        true
    }

    /// `min_{k : w[i, k] > 0} d[i, k]` per sample, `[N]`.
    ///
    /// # Panics
    /// As [`FeatureLoss`]'s, when the adapted features do not pair with the teachers'.
    fn forward_no_reduction(&self, input: &TermInput<'_>) -> TermValue {
        let distances = match LossTerm::forward_no_reduction(&self.distance, input) {
            TermValue::PerTeacher(d) => d,
            TermValue::PerSample(d) => return TermValue::PerSample(d),
        };
        let n = input.batch_size();
        // A screened-out teacher (weight 0) is never the closest; the best teacher is always
        // kept, so every row has a finite minimum.
        let dropped = input.weights.clone().lower_equal_elem(0.0);
        let kept = distances.mask_fill(dropped, f32::MAX);
        TermValue::PerSample(kept.min_dim(1).reshape([n]))
    }
}
