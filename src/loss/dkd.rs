//! Decoupled knowledge distillation (DKD): the KD loss split into a target-class and a
//! non-target-class term, each with its own weight.

use burn::config::Config;
use burn::tensor::{Bool, Int, Tensor};

use super::assert_same_dims;
use super::kl::{kl_divergence_rows, kl_from_log_ratio, log_sum_exp};
use super::term::{LossTerm, TermInput, TermValue};
use crate::error::{check_non_negative, check_positive};

/// Configuration of a [`DkdLoss`]. The defaults are the paper's CIFAR-100 values.
#[derive(Config, Debug)]
pub struct DkdLossConfig {
    /// Weight of the target-class term (TCKD), `>= 0`. Paper: 1. Default: 1.
    #[config(default = 1.0)]
    pub target_weight: f64,
    /// Weight of the non-target-class term (NCKD), `>= 0`. Paper: 8 on CIFAR-100. Default: 8.
    #[config(default = 8.0)]
    pub non_target_weight: f64,
    /// Softmax temperature `T > 0`. Default: 4.
    #[config(default = 4.0)]
    pub temperature: f64,
}

impl DkdLossConfig {
    /// Checks the values and builds the loss.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when the temperature is not finite and positive or a
    /// weight is negative or not finite.
    pub fn init(&self) -> crate::Result<DkdLoss> {
        check_positive("temperature", self.temperature)?;
        check_non_negative("soft_loss.target_weight", self.target_weight)?;
        check_non_negative("soft_loss.non_target_weight", self.non_target_weight)?;
        Ok(DkdLoss {
            target_weight: self.target_weight,
            non_target_weight: self.non_target_weight,
            temperature: self.temperature,
        })
    }
}

/// Decoupled KD loss (Zhao et al., 2022, "Decoupled Knowledge
/// Distillation"):
/// `T² · (target_weight · TCKD + non_target_weight · NCKD)`, where TCKD is the KL divergence
/// between teacher and student binary distributions `[p_target, 1 - p_target]` and NCKD the
/// KL divergence between their distributions over the non-target classes, all at
/// temperature `T`. The paper uses `target_weight = 1`, `non_target_weight = 8` on CIFAR-100.
///
/// Both KL terms are computed without cancellation, as in [`crate::KdLoss`]: never
/// negative, and accurate to `1e-5` relative for near-identical student and teacher, logits
/// up to `±1e4` and `T` in `0.5`–`20`. The binary distributions' `log(1 - p_target)` is
/// computed from the non-target classes' sum (not as `1 - p_target`), and the difference of
/// the two models' non-target log-sum-exps from their logit difference.
///
/// # Shapes
/// `student_logits`, `teacher_logits`: `[N, C]` with `C >= 2`; `labels`: `[N]` → `[N]`.
///
/// # Panics
/// When the logits' shapes differ or `labels` is not `[N]`.
/// As a term of the composite loss (`"soft"`) it is computed per teacher.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use burn_distill::DkdLossConfig;
///
/// let device = Device::default();
/// let dkd = DkdLossConfig::new().init().unwrap(); // TCKD 1, NCKD 8, T = 4
/// let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device);
/// let labels = Tensor::<1, Int>::from_ints([2], &device);
/// let loss: f32 = dkd.forward(logits.clone(), logits, labels).into_scalar();
/// assert!(loss.abs() < 1e-6);
/// ```
#[derive(Debug, Clone)]
pub struct DkdLoss {
    target_weight: f64,
    non_target_weight: f64,
    temperature: f64,
}

impl DkdLoss {
    /// Per-sample DKD loss, `[N]`.
    ///
    /// # Shapes
    /// `student_logits`, `teacher_logits`: `[N, C]` with `C >= 2`; `labels`: `[N]` → `[N]`.
    ///
    /// # Panics
    /// When the logits' shapes differ or `labels` is not `[N]`.
    pub fn forward_no_reduction(
        &self,
        student_logits: Tensor<2>,
        teacher_logits: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> Tensor<1> {
        assert_same_dims("dkd_loss", &student_logits.dims(), &teacher_logits.dims());
        let [n, c] = student_logits.dims();
        assert_same_dims("dkd_loss labels", &[n], &labels.dims());
        let target = labels.one_hot::<2>(c).equal_elem(1);
        let target_float = target.clone().float();
        let delta = (teacher_logits.clone() - student_logits.clone()).div_scalar(self.temperature);
        let teacher = DkdParts::new(teacher_logits.div_scalar(self.temperature), target.clone());
        let student = DkdParts::new(student_logits.div_scalar(self.temperature), target.clone());

        // NCKD: KL over the non-target classes (the target class has log p = -1e30: no share).
        let nckd = kl_divergence_rows(
            teacher.log_non_target.clone(),
            student.log_non_target.clone(),
            delta.clone().mask_fill(target.clone(), 0.0),
        );

        // TCKD: KL of [p_target, 1 - p_target]. Its log ratio, up to a per-row constant, is
        // [δ_target, LSE_nt(z_t/T) - LSE_nt(z_s/T)]; the second is E_q̂[δ] + log Σ q̂ e^{δ - E_q̂[δ]}
        // over the student's non-target distribution q̂, computed like a KL (d = E_q̂[δ] - δ).
        let delta_target = (delta.clone() * target_float).sum_dim(1);
        let student_non_target = student.log_non_target.clone().exp();
        let mean_delta = (student_non_target.clone() * delta.clone()).sum_dim(1);
        let (log_moment, usable) = kl_from_log_ratio(
            student.log_non_target.clone(),
            student_non_target,
            delta.neg().mask_fill(target, 0.0),
        );
        let direct_rest = teacher.log_sum_exp_non_target.clone() - student.log_sum_exp_non_target;
        let delta_rest = direct_rest.mask_where(usable, mean_delta + log_moment);
        let tckd = kl_divergence_rows(
            Tensor::cat(vec![teacher.log_target, teacher.log_rest], 1),
            Tensor::cat(vec![student.log_target, student.log_rest], 1),
            Tensor::cat(vec![delta_target, delta_rest], 1),
        );

        (tckd.mul_scalar(self.target_weight) + nckd.mul_scalar(self.non_target_weight))
            .mul_scalar(self.temperature * self.temperature)
            .reshape([n])
    }

    /// Batch-mean DKD loss, `[1]`.
    ///
    /// # Panics
    /// When the shapes do not match.
    pub fn forward(
        &self,
        student_logits: Tensor<2>,
        teacher_logits: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> Tensor<1> {
        self.forward_no_reduction(student_logits, teacher_logits, labels)
            .mean()
    }
}

impl LossTerm for DkdLoss {
    fn name(&self) -> &str {
        super::SOFT
    }

    fn forward_no_reduction(&self, input: &TermInput<'_>) -> TermValue {
        TermValue::PerTeacher(input.per_teacher(|_, teacher| {
            self.forward_no_reduction(
                input.student_logits.clone(),
                teacher.logits.clone(),
                input.labels.clone(),
            )
        }))
    }
}

/// What DKD needs of one model's scaled logits `x = z / T`, every log-probability computed
/// relative to the row maximum (no difference of large log-sum-exps).
struct DkdParts {
    /// `log p_target`, `[N, 1]`.
    log_target: Tensor<2>,
    /// `log (1 - p_target) = LSE_{j≠y}(x_j - M) - log Σ_j e^{x_j - M}`, `[N, 1]`.
    log_rest: Tensor<2>,
    /// Log-softmax over the non-target classes, `-1e30` at the target, `[N, C]`.
    log_non_target: Tensor<2>,
    /// `LSE_{j≠y} x_j`, `[N, 1]` (fallback for rows with a large KL).
    log_sum_exp_non_target: Tensor<2>,
}

impl DkdParts {
    fn new(scaled: Tensor<2>, target: Tensor<2, Bool>) -> Self {
        let [n, c] = scaled.dims();
        let max = scaled.clone().max_dim(1);
        let shifted = scaled.clone() - max.clone().expand([n, c]);
        let log_sum_all = shifted.clone().exp().sum_dim(1).log();
        // log Σ_{j≠y} e^{x_j - M} by its own log-sum-exp: finite even when every non-target
        // share underflows (a confident model), and exact to rounding near 0.
        let shifted_non_target = shifted.clone().mask_fill(target.clone(), -1e30);
        let log_sum_non_target = log_sum_exp(shifted_non_target.clone());
        let log_all = shifted - log_sum_all.clone().expand([n, c]);
        let log_target = (log_all * target.float()).sum_dim(1);
        Self {
            log_target,
            log_rest: log_sum_non_target.clone() - log_sum_all,
            // log-softmax over the non-target classes and their log-sum-exp, from the same
            // shifted sum (the shift by M cancels in the first, is added back in the second).
            log_non_target: shifted_non_target - log_sum_non_target.clone().expand([n, c]),
            log_sum_exp_non_target: max + log_sum_non_target,
        }
    }
}
