//! KD against the teachers' weighted mixture: one KL divergence per sample, to
//! `Σ_k w[i, k] · softmax(z_k[i] / T)`, instead of a weighted sum of one KL per teacher.

use burn::config::Config;
use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;

use super::term::{LossTerm, TermInput, TermValue};
use crate::error::check_positive;

/// Weights below this are treated as this (their log stays finite; their share is nil).
const WEIGHT_FLOOR: f64 = 1e-30;

/// Configuration of a [`MixtureKdLoss`].
#[derive(Config, Debug)]
pub struct MixtureKdLossConfig {
    /// Softmax temperature `T > 0`. Default: 4.
    #[config(default = 4.0)]
    pub temperature: f64,
}

impl MixtureKdLossConfig {
    /// Checks the temperature and builds the loss.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when the temperature is not finite and positive.
    pub fn init(&self) -> crate::Result<MixtureKdLoss> {
        check_positive("temperature", self.temperature)?;
        Ok(MixtureKdLoss {
            temperature: self.temperature,
        })
    }
}

/// KD to the teachers' mixture:
/// `T² · KL(Σ_k w[i, k] softmax(z_k[i]/T) ‖ softmax(z_s[i]/T))` per sample.
///
/// The weighted sum of per-teacher KLs that [`crate::KdLoss`] gives in the composite loss
/// pulls the student towards every kept teacher at once (by convexity it is at least this
/// value); the mixture is one target in which teachers that agree reinforce each other and
/// teachers that disagree spread the probability over their classes, as an ensemble's
/// averaged prediction does (the target of Hinton et al.'s ensemble distillation).
/// `log Σ_k w_k p_k` is computed as a log-sum-exp over the teachers; weights of screened-out
/// teachers (0) contribute nothing.
///
/// As a term of the composite loss (`"soft"`, [`crate::SoftLoss::Mixture`]) it is one value
/// per sample: the selector's weights are already inside.
///
/// # Shapes
/// `student_logits`: `[N, C]`; `teacher_logits`: `K` tensors `[N, C]`; `weights`: `[N, K]`
/// → `[N]`.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_distill::loss::MixtureKdLossConfig;
///
/// let device = Device::flex();
/// let loss = MixtureKdLossConfig::new().init().unwrap();
/// let student = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device);
/// // One teacher with all the weight, equal to the student: no loss.
/// let weights = Tensor::<2>::from_floats([[1.0, 0.0]], &device);
/// let other = Tensor::<2>::from_floats([[5.0, 0.0, 0.0]], &device);
/// let value: f32 = loss
///     .forward(student.clone(), &[student, other], weights)
///     .into_scalar();
/// assert!(value.abs() < 1e-5);
/// ```
#[derive(Debug, Clone)]
pub struct MixtureKdLoss {
    temperature: f64,
}

impl MixtureKdLoss {
    /// The temperature `T`.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// Per-sample loss, `[N]`.
    ///
    /// # Panics
    /// When no teacher is given or the shapes do not match (`weights` must be `[N, K]`).
    pub fn forward_no_reduction(
        &self,
        student_logits: Tensor<2>,
        teacher_logits: &[Tensor<2>],
        weights: Tensor<2>,
    ) -> Tensor<1> {
        let [n, c] = student_logits.dims();
        let k = teacher_logits.len();
        assert!(k > 0, "MixtureKdLoss: no teacher logits");
        assert_eq!(
            weights.dims(),
            [n, k],
            "MixtureKdLoss: weights must be [N, K] = [{n}, {k}]"
        );
        let t = self.temperature;
        // [N, K, C]: each teacher's log-probabilities plus its log-weight.
        let log_weighted: Vec<Tensor<3>> = teacher_logits
            .iter()
            .enumerate()
            .map(|(j, z)| {
                assert_eq!(z.dims(), [n, c], "MixtureKdLoss: teacher {j} logits");
                let log_w = weights
                    .clone()
                    .slice([0..n, j..j + 1])
                    .clamp_min(WEIGHT_FLOOR)
                    .log();
                (log_softmax(z.clone().div_scalar(t), 1) + log_w).reshape([n, 1, c])
            })
            .collect();
        let stacked = Tensor::cat(log_weighted, 1);
        // log Σ_k exp(.) over the teachers, shifted by the maximum.
        let max = stacked.clone().max_dim(1);
        let log_mixture = ((stacked - max.clone()).exp().sum_dim(1).log() + max).reshape([n, c]);
        let log_student = log_softmax(student_logits.div_scalar(t), 1);
        let mixture = log_mixture.clone().exp();
        (mixture * (log_mixture - log_student))
            .sum_dim(1)
            .clamp_min(0.0)
            .mul_scalar(t * t)
            .reshape([n])
    }

    /// Batch-mean loss, `[1]`.
    ///
    /// # Panics
    /// As [`MixtureKdLoss::forward_no_reduction`].
    pub fn forward(
        &self,
        student_logits: Tensor<2>,
        teacher_logits: &[Tensor<2>],
        weights: Tensor<2>,
    ) -> Tensor<1> {
        self.forward_no_reduction(student_logits, teacher_logits, weights)
            .mean()
    }
}

impl LossTerm for MixtureKdLoss {
    fn name(&self) -> &str {
        super::SOFT
    }

    fn forward_no_reduction(&self, input: &TermInput<'_>) -> TermValue {
        let teachers: Vec<Tensor<2>> = input
            .teacher_outputs
            .iter()
            .map(|out| out.logits.clone())
            .collect();
        TermValue::PerSample(self.forward_no_reduction(
            input.student_logits.clone(),
            &teachers,
            input.weights.clone(),
        ))
    }
}
