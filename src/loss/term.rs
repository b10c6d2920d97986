//! The extension point of the composite loss: one [`LossTerm`] per method.

use std::fmt;

use burn::tensor::{Int, Tensor};

use crate::model::{Feature, ModelOutput};

/// Everything a [`LossTerm`] may look at for one batch.
///
/// # Shapes
/// - `student_logits`: `[N, C]`; `labels`: `[N]`
/// - `teacher_outputs`: `K` outputs with logits `[N, C]` and `F` features each
/// - `adapted_features`: one list of `F` student features per teacher, each already adapted
///   to the matching teacher feature's kind and shape, for the first `n` teachers (`n` the
///   largest [`LossTerm::adapted_teachers`] of the loss's weighted terms: `K` unless every
///   feature term reads fewer); empty when no term of the loss uses features
/// - `weights`: `[N, K]`, the selector's weights (see [`crate::Selection`])
#[derive(Debug, Clone, Copy)]
pub struct TermInput<'a> {
    /// The student's logits, `[N, C]`.
    pub student_logits: &'a Tensor<2>,
    /// The true labels, `[N]`.
    pub labels: &'a Tensor<1, Int>,
    /// One output per teacher, without autodiff.
    pub teacher_outputs: &'a [ModelOutput],
    /// `adapted_features[k][f]`: student feature `f` mapped by the adapter of teacher `k`.
    pub adapted_features: &'a [Vec<Feature>],
    /// The selector's weights, `[N, K]`.
    pub weights: &'a Tensor<2>,
}

impl TermInput<'_> {
    /// Batch size `N`.
    pub fn batch_size(&self) -> usize {
        self.student_logits.dims()[0]
    }

    /// One column `[N, 1]` per teacher, computed by `per_teacher(k, output)` as `[N]`,
    /// joined into `[N, K]`: the usual shape of a [`TermValue::PerTeacher`].
    pub fn per_teacher(
        &self,
        mut per_teacher: impl FnMut(usize, &ModelOutput) -> Tensor<1>,
    ) -> Tensor<2> {
        let n = self.batch_size();
        let columns = self
            .teacher_outputs
            .iter()
            .enumerate()
            .map(|(k, out)| per_teacher(k, out).reshape([n, 1]))
            .collect();
        Tensor::cat(columns, 1)
    }
}

/// What a [`LossTerm`] returns: its unweighted value for every sample, per teacher or not.
#[derive(Debug, Clone)]
pub enum TermValue {
    /// `[N, K]`: one value per sample and teacher. The composite loss reduces it as
    /// `mean_i Σ_k w[i, k] · v[i, k]` (divided by `K` under
    /// [`crate::TeacherReduction::DivideByTeachers`]).
    PerTeacher(Tensor<2>),
    /// `[N]`: one value per sample (a term that does not compare with single teachers: the
    /// hard-label loss, or a term that weights the teachers itself). Reduced by the mean.
    PerSample(Tensor<1>),
}

/// One term of the [`crate::DistillationLoss`]: a method's loss, in burn-nn's shape.
///
/// A new distillation method is a type implementing this trait (its own file in
/// `src/loss/`, or in your crate) added with [`crate::DistillationLoss::with_term`]. The
/// composite loss weights it, reduces it over samples (and teachers, with the selector's
/// weights) and reports it under its name.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use burn_distill::{
///     DistillationLossConfig, LossTerm, ModelOutput, TermInput, TermValue,
/// };
///
/// /// A toy term: the squared distance of the student's logits to each teacher's.
/// #[derive(Debug)]
/// struct LogitMse;
/// impl LossTerm for LogitMse {
///     fn name(&self) -> &str { "logit_mse" }
///     fn forward_no_reduction(&self, input: &TermInput<'_>) -> TermValue {
///         TermValue::PerTeacher(input.per_teacher(|_, teacher| {
///             (input.student_logits.clone() - teacher.logits.clone()).square().mean_dim(1).squeeze_dim(1)
///         }))
///     }
/// }
///
/// let device = Device::default();
/// let loss = DistillationLossConfig::new()
///     .with_soft_weight(0.0)
///     .with_hard_weight(0.0)
///     .with_feature_weight(0.0)
///     .init()
///     .unwrap()
///     .with_term(LogitMse, 2.0);
/// let student = Tensor::<2>::zeros([2, 3], &device);
/// let teacher = ModelOutput { logits: Tensor::ones([2, 3], &device), features: vec![] };
/// let labels = Tensor::<1, Int>::from_ints([0, 1], &device);
/// let weights = Tensor::<2>::ones([2, 1], &device);
/// let out = loss.forward(student, labels, &[teacher], &[], weights);
/// let mse: f32 = out.term("logit_mse").unwrap().into_scalar();
/// assert!((mse - 1.0).abs() < 1e-6);
/// assert!((out.total.into_scalar::<f32>() - 2.0).abs() < 1e-6);
/// ```
pub trait LossTerm: fmt::Debug + Send + Sync {
    /// The name the term is reported under (and looked up by,
    /// [`crate::DistillationLossOutput::term`]).
    fn name(&self) -> &str;
    /// Whether the term reads [`TermInput::adapted_features`] (then the distiller runs the
    /// adapters). Default: false.
    fn uses_features(&self) -> bool {
        false
    }
    /// How many teachers' adapted lists the term reads, the first ones of `teachers`: the
    /// distiller runs only those adapters. Default: all `teachers` when the term
    /// [`uses_features`](LossTerm::uses_features), else 0.
    fn adapted_teachers(&self, teachers: usize) -> usize {
        if self.uses_features() { teachers } else { 0 }
    }
    /// The term's unweighted value for every sample (and teacher).
    fn forward_no_reduction(&self, input: &TermInput<'_>) -> TermValue;
}
