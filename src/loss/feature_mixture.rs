//! The feature term against the teachers' weighted mixture of features, through one adapter.

use burn::tensor::Tensor;

use super::FEATURE;
use super::assert_same_dims;
use super::feature::{FeatureLoss, FeatureNorm};
use super::term::{LossTerm, TermInput, TermValue};

/// Feature loss against the weighted mixture of the teachers' features: for every sample
/// `i` and feature `f`, the target is `m_f[i] = Σ_k w[i, k] · f_kf[i]` and the loss is
/// [`FeatureLoss`]'s distance between `A_f(f_s)[i]`, the student feature through **one**
/// adapter (the first teacher's), and `m_f[i]`, summed over the features:
/// `L[i] = Σ_f mean (A_f(f_s)[i] - m_f[i])²` (divided by `mean m_f[i]² + 1e-6` with
/// [`FeatureNorm::TeacherMeanSquare`]).
///
/// Today's feature term ([`FeatureLoss`]) instead pulls the student towards every teacher
/// through an adapter of its own and weights the distances, `Σ_k w[i, k] · ‖A_kf(f_s) -
/// f_kf‖²`; when teachers disagree, the student then chases their weighted mean in each
/// adapter's space separately. Here the teachers agree first and the student follows one
/// target. It needs every teacher's feature `f` to have the same shape (the
/// [`crate::Distiller`] checks the channel counts when it is built); the adapters of the
/// other teachers take no part and receive no gradient.
///
/// Select it with [`crate::DistillationLossConfig::feature_target`] =
/// [`crate::FeatureTarget::Mixture`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_distill::FeatureNorm;
/// use burn_distill::loss::MixtureFeatureLoss;
///
/// let device = Device::default();
/// let loss = MixtureFeatureLoss::new(FeatureNorm::None);
/// // Two teachers with features 0 and 2 and equal weights: the target is 1.
/// let teachers = [Tensor::<2>::zeros([1, 4], &device), Tensor::<2>::full([1, 4], 2.0, &device)];
/// let weights = Tensor::<2>::from_floats([[0.5, 0.5]], &device);
/// let student = Tensor::<2>::ones([1, 4], &device);
/// let value: f32 = loss.forward_no_reduction(student, &teachers, weights).into_scalar();
/// assert!(value.abs() < 1e-6);
/// ```
#[derive(Debug, Clone)]
pub struct MixtureFeatureLoss {
    distance: FeatureLoss,
}

impl MixtureFeatureLoss {
    /// The loss with this distance.
    pub fn new(norm: FeatureNorm) -> Self {
        Self {
            distance: super::FeatureLossConfig::new().with_norm(norm).init(),
        }
    }

    /// The distance it uses.
    pub fn norm(&self) -> FeatureNorm {
        self.distance.norm()
    }

    /// The weighted mixture `Σ_k w[i, k] · f_k[i]` of flattened teacher features `[N, E]`.
    ///
    /// # Panics
    /// When no feature is given, the features' shapes differ or `weights` is not `[N, K]`.
    pub fn mixture(teacher_features: &[Tensor<2>], weights: Tensor<2>) -> Tensor<2> {
        let first = teacher_features
            .first()
            .expect("MixtureFeatureLoss: no teacher features");
        let [n, _] = first.dims();
        let k = teacher_features.len();
        assert_same_dims("MixtureFeatureLoss weights", &[n, k], &weights.dims());
        teacher_features
            .iter()
            .enumerate()
            .map(|(j, f)| {
                assert_same_dims(
                    &format!("MixtureFeatureLoss: teacher {j}'s feature vs teacher 0's"),
                    &f.dims(),
                    &first.dims(),
                );
                f.clone() * weights.clone().slice([0..n, j..j + 1])
            })
            .reduce(|a, b| a + b)
            .expect("at least one teacher")
    }

    /// Per-sample loss `[N]` of one feature: the adapted student feature `[N, E]` against
    /// the weighted mixture of the teachers' features (each `[N, E]`).
    ///
    /// # Panics
    /// As [`MixtureFeatureLoss::mixture`], and when the student's shape differs.
    pub fn forward_no_reduction(
        &self,
        adapted_student: Tensor<2>,
        teacher_features: &[Tensor<2>],
        weights: Tensor<2>,
    ) -> Tensor<1> {
        let target = Self::mixture(teacher_features, weights);
        self.distance.forward_no_reduction(adapted_student, target)
    }
}

impl LossTerm for MixtureFeatureLoss {
    fn name(&self) -> &str {
        FEATURE
    }

    fn uses_features(&self) -> bool {
        true
    }

    /// One: the mixture goes through the first teacher's adapters only.
    fn adapted_teachers(&self, teachers: usize) -> usize {
        teachers.min(1)
    }

    /// `Σ_f loss(A_0f(f_s), Σ_k w_k f_kf)` per sample, `[N]` (zeros when the models expose
    /// no feature).
    ///
    /// # Panics
    /// When there are no adapted features for the first teacher, or a feature's shape
    /// differs between teachers.
    fn forward_no_reduction(&self, input: &TermInput<'_>) -> TermValue {
        let n = input.batch_size();
        let teachers = input.teacher_outputs;
        let adapted = input
            .adapted_features
            .first()
            .expect("MixtureFeatureLoss: no adapted features");
        let mut total: Option<Tensor<1>> = None;
        for (f, student) in adapted.iter().enumerate() {
            let features: Vec<Tensor<2>> = teachers
                .iter()
                .map(|t| t.features[f].clone().flatten_samples())
                .collect();
            let loss = self.forward_no_reduction(
                student.clone().flatten_samples(),
                &features,
                input.weights.clone(),
            );
            total = Some(match total {
                Some(acc) => acc + loss,
                None => loss,
            });
        }
        TermValue::PerSample(total.unwrap_or_else(|| {
            input
                .student_logits
                .zeros_like()
                .slice([0..n, 0..1])
                .reshape([n])
        }))
    }
}
