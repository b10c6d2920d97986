//! Cross-entropy against the true labels: the hard-label term of the student, and the score
//! by which the selector and `prescreen` rank the teachers.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use super::term::{LossTerm, TermInput, TermValue};

/// `l[i] = -log softmax(z[i])[y[i]]`, `[N, 1]`.
///
/// # Shapes
/// `logits`: `[N, C]`; `labels`: `[N]` → `[N, 1]`.
pub(crate) fn cross_entropy_per_sample(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<2> {
    let [n] = labels.dims();
    log_softmax(logits, 1)
        .gather(1, labels.reshape([n, 1]))
        .neg()
}

/// The student's cross-entropy against the true labels: the composite loss's `"hard"` term.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use burn_distill::HardLabelLoss;
///
/// let device = Device::default();
/// let logits = Tensor::<2>::zeros([2, 4], &device); // uniform over 4 classes
/// let labels = Tensor::<1, Int>::from_ints([0, 3], &device);
/// let loss: f32 = HardLabelLoss.forward(logits, labels).into_scalar();
/// assert!((loss - 4f32.ln()).abs() < 1e-6);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct HardLabelLoss;

impl HardLabelLoss {
    /// Per-sample cross-entropy, `[N]`.
    ///
    /// # Shapes
    /// `student_logits`: `[N, C]`; `labels`: `[N]` → `[N]`.
    pub fn forward_no_reduction(
        &self,
        student_logits: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> Tensor<1> {
        let [n] = labels.dims();
        cross_entropy_per_sample(student_logits, labels).reshape([n])
    }

    /// Batch-mean cross-entropy, `[1]`.
    pub fn forward(&self, student_logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
        self.forward_no_reduction(student_logits, labels).mean()
    }
}

impl LossTerm for HardLabelLoss {
    fn name(&self) -> &str {
        super::HARD
    }

    fn forward_no_reduction(&self, input: &TermInput<'_>) -> TermValue {
        TermValue::PerSample(
            self.forward_no_reduction(input.student_logits.clone(), input.labels.clone()),
        )
    }
}
