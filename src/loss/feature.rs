//! FitNets' feature loss: the mean squared error between adapted student features and the
//! teacher's, optionally relative to the teacher feature's size.

use burn::config::Config;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::assert_same_dims;
use super::term::{LossTerm, TermInput, TermValue};

/// How the feature term measures the distance between an adapted student feature and a
/// teacher feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureNorm {
    /// Plain MSE (CA-MKD, FitNets). Its size follows the teacher features' scale, which
    /// differs between architectures and layers.
    None,
    /// MSE divided by the teacher feature's mean square, `mean (a - f)² / (mean f² + 1e-6)`:
    /// a relative error, 1 for a zero student feature. It does not change when the teacher's
    /// features are scaled, so one `feature_weight` means the same for every teacher
    /// architecture and depth.
    TeacherMeanSquare,
}

/// The distance's name on a command line: `none` or `teacher`.
impl std::fmt::Display for FeatureNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::TeacherMeanSquare => "teacher",
        })
    }
}

impl std::str::FromStr for FeatureNorm {
    type Err = crate::Error;

    /// Reads `none` or `teacher` (as [`Display`](std::fmt::Display) writes them).
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for any other text.
    ///
    /// # Example
    /// ```
    /// use burn_distill::FeatureNorm;
    ///
    /// assert_eq!("teacher".parse::<FeatureNorm>().unwrap(), FeatureNorm::TeacherMeanSquare);
    /// assert!("mse".parse::<FeatureNorm>().is_err());
    /// ```
    fn from_str(text: &str) -> crate::Result<Self> {
        [Self::None, Self::TeacherMeanSquare]
            .into_iter()
            .find(|n| n.to_string() == text)
            .ok_or_else(|| crate::Error::InvalidConfig {
                field: "feature_norm",
                value: text.to_string(),
                reason: "unknown feature distance (none or teacher)",
            })
    }
}

/// Configuration of a [`FeatureLoss`].
#[derive(Config, Debug)]
pub struct FeatureLossConfig {
    /// The distance. Default: [`FeatureNorm::None`] (plain MSE).
    #[config(default = "FeatureNorm::None")]
    pub norm: FeatureNorm,
}

impl FeatureLossConfig {
    /// Builds the loss.
    pub fn init(&self) -> FeatureLoss {
        FeatureLoss { norm: self.norm }
    }
}

/// Feature loss (FitNets, Romero et al., 2015): the mean over every non-batch element of
/// `(adapted - teacher)²` — `mean_{c,h,w}` for maps, `mean_{l,d}` for sequences (TinyBERT's
/// hidden-state MSE), `mean_d` for vectors — divided by `mean teacher² + 1e-6` with
/// [`FeatureNorm::TeacherMeanSquare`].
///
/// As a term of the composite loss (`"feature"`) it sums this over the features each
/// teacher exposes, per teacher.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_distill::{FeatureLossConfig, FeatureNorm};
///
/// let device = Device::default();
/// let relative = FeatureLossConfig::new().with_norm(FeatureNorm::TeacherMeanSquare).init();
/// let teacher = Tensor::<4>::ones([1, 2, 2, 2], &device).mul_scalar(10.0);
/// let student = Tensor::<4>::zeros([1, 2, 2, 2], &device);
/// let loss: f32 = relative.forward_no_reduction(student, teacher).into_scalar();
/// assert!((loss - 1.0).abs() < 1e-5); // 100 / (100 + 1e-6)
/// ```
#[derive(Debug, Clone)]
pub struct FeatureLoss {
    norm: FeatureNorm,
}

impl FeatureLoss {
    /// The distance it uses.
    pub fn norm(&self) -> FeatureNorm {
        self.norm
    }

    /// Per-sample feature loss, `[N]`.
    ///
    /// # Shapes
    /// `adapted_student`, `teacher_feature`: `[N, ...]` of the same shape (any rank) → `[N]`.
    ///
    /// # Panics
    /// When the two shapes differ; the message names both.
    pub fn forward_no_reduction<const D: usize>(
        &self,
        adapted_student: Tensor<D>,
        teacher_feature: Tensor<D>,
    ) -> Tensor<1> {
        assert_same_dims(
            "feature_loss",
            &adapted_student.dims(),
            &teacher_feature.dims(),
        );
        let n = adapted_student.dims()[0];
        let per_element_mean = |x: Tensor<D>| x.reshape([n as i64, -1]).mean_dim(1).reshape([n]);
        let mse = per_element_mean((adapted_student - teacher_feature.clone()).square());
        match self.norm {
            FeatureNorm::None => mse,
            FeatureNorm::TeacherMeanSquare => {
                mse / per_element_mean(teacher_feature.square()).add_scalar(1e-6)
            }
        }
    }

    /// Batch-mean feature loss, `[1]`.
    ///
    /// # Panics
    /// When the two shapes differ.
    pub fn forward<const D: usize>(
        &self,
        adapted_student: Tensor<D>,
        teacher_feature: Tensor<D>,
    ) -> Tensor<1> {
        self.forward_no_reduction(adapted_student, teacher_feature)
            .mean()
    }
}

impl LossTerm for FeatureLoss {
    fn name(&self) -> &str {
        super::FEATURE
    }

    fn uses_features(&self) -> bool {
        true
    }

    /// `Σ_f loss(A_kf(f_s), f_kf)` per sample and teacher, `[N, K]` (zeros for teachers
    /// that expose no feature).
    ///
    /// # Panics
    /// When the adapted features do not pair with the teachers' (count or kind).
    fn forward_no_reduction(&self, input: &TermInput<'_>) -> TermValue {
        let k = input.teacher_outputs.len();
        let adapted_features = input.adapted_features;
        assert_eq!(
            adapted_features.len(),
            k,
            "DistillationLoss: {} adapted feature lists for {k} teachers",
            adapted_features.len()
        );
        let n = input.batch_size();
        TermValue::PerTeacher(input.per_teacher(|index, teacher| {
            let adapted = &adapted_features[index];
            assert_eq!(
                adapted.len(),
                teacher.features.len(),
                "DistillationLoss: {} adapted maps for {} teacher maps",
                adapted.len(),
                teacher.features.len()
            );
            let mut total: Option<Tensor<1>> = None;
            for (a, f) in adapted.iter().zip(&teacher.features) {
                assert_eq!(
                    a.kind(),
                    f.kind(),
                    "DistillationLoss: an adapted {} feature for a teacher {} feature",
                    a.kind(),
                    f.kind()
                );
                let loss = self
                    .forward_no_reduction(a.clone().flatten_samples(), f.clone().flatten_samples());
                total = Some(match total {
                    Some(acc) => acc + loss,
                    None => loss,
                });
            }
            total.unwrap_or_else(|| {
                input
                    .student_logits
                    .zeros_like()
                    .slice([0..n, 0..1])
                    .reshape([n])
            })
        }))
    }
}
