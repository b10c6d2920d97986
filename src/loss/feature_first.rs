//! The feature term against the first teacher alone, while the soft term uses every teacher.

use super::FEATURE;
use super::feature::{FeatureLoss, FeatureLossConfig, FeatureNorm};
use super::term::{LossTerm, TermInput, TermValue};

/// Feature loss against teacher 0 alone, at full weight: with `d[i, 0]` [`FeatureLoss`]'s
/// distance between the student's features through teacher 0's adapters and teacher 0's
/// features (`Σ_f mean (A_0f(f_s)[i] - f_0f[i])²`, divided by `mean f_0f[i]² + 1e-6` with
/// [`FeatureNorm::TeacherMeanSquare`]), the loss of sample `i` is `L[i] = d[i, 0]`.
///
/// The selector's weights do not scale it (a screened-out teacher 0 still guides the
/// features), and only teacher 0's adapters exist and run. Put the teacher whose maps the
/// student should follow first, for example the one with the lowest validation
/// cross-entropy ([`crate::prescreen`] with [`crate::ScreeningRule::TopK`]`(1)` finds it).
/// The soft term still learns from the weighted ensemble. It separates the two parts of the
/// default: on CIFAR-10 with three comparable teachers, the single best teacher's KD +
/// FitNets beat the ensemble's per-teacher feature term (docs/RESULTS.md, issue 29).
///
/// Select it with [`crate::DistillationLossConfig::feature_target`] =
/// [`crate::FeatureTarget::FirstTeacher`].
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
///     .with_feature_delay_steps(0)
///     .with_feature_target(FeatureTarget::FirstTeacher)
///     .init()
///     .unwrap();
/// // Student features 1; teachers' features 3 (distance 4) and 1 (distance 0).
/// let teacher = |v: f32| ModelOutput {
///     logits: Tensor::zeros([1, 2], &device),
///     features: vec![Tensor::<2>::full([1, 4], v, &device).into()],
/// };
/// // Only the first teacher's adapted features are needed.
/// let adapted = vec![vec![Tensor::<2>::ones([1, 4], &device).into()]];
/// let out = loss.forward(
///     Tensor::zeros([1, 2], &device),
///     Tensor::<1, Int>::from_ints([0], &device),
///     &[teacher(3.0), teacher(1.0)],
///     &adapted,
///     Tensor::<2>::from_floats([[0.0, 1.0]], &device),
/// );
/// assert!((out.total.into_scalar::<f32>() - 4.0).abs() < 1e-6);
/// ```
#[derive(Debug, Clone)]
pub struct FirstTeacherFeatureLoss {
    distance: FeatureLoss,
}

impl FirstTeacherFeatureLoss {
    /// The term with [`FeatureLoss`]'s distance `norm`.
    pub fn new(norm: FeatureNorm) -> Self {
        Self {
            distance: FeatureLossConfig::new().with_norm(norm).init(),
        }
    }
}

impl LossTerm for FirstTeacherFeatureLoss {
    fn name(&self) -> &str {
        FEATURE
    }

    fn uses_features(&self) -> bool {
        true
    }

    /// Teacher 0's adapters only.
    fn adapted_teachers(&self, teachers: usize) -> usize {
        teachers.min(1)
    }

    /// `d[i, 0]` per sample, `[N]`.
    ///
    /// # Panics
    /// When no teacher or no adapted feature list is given, or as [`FeatureLoss`]'s when the
    /// adapted features do not pair with teacher 0's.
    fn forward_no_reduction(&self, input: &TermInput<'_>) -> TermValue {
        assert!(
            !input.teacher_outputs.is_empty() && !input.adapted_features.is_empty(),
            "FirstTeacherFeatureLoss: {} teachers and {} adapted feature lists (needs one each)",
            input.teacher_outputs.len(),
            input.adapted_features.len()
        );
        let first = TermInput {
            teacher_outputs: &input.teacher_outputs[..1],
            adapted_features: &input.adapted_features[..1],
            ..*input
        };
        match LossTerm::forward_no_reduction(&self.distance, &first) {
            TermValue::PerTeacher(d) => TermValue::PerSample(d.reshape([input.batch_size()])),
            per_sample => per_sample,
        }
    }
}
