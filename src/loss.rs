//! Distillation losses: Hinton KD, decoupled KD, feature MSE, and their weighted sum.

use burn::config::Config;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{check_non_negative, check_positive};
use crate::selector::cross_entropy_per_sample;
use crate::teacher::{Feature, TeacherOutput};

/// Per-sample KD loss, `T² · KL(softmax(z_t/T) ‖ softmax(z_s/T))`, `[N]`.
///
/// Hinton, Vinyals & Dean, 2015, "Distilling the Knowledge in a Neural Network". The `T²`
/// factor keeps gradient magnitudes comparable across temperatures.
///
/// Computed without cancellation, so it is never negative and keeps its relative accuracy
/// when the student is close to its teacher (a KL of `1e-9` comes out right, not as
/// rounding noise of `1e-5`), for logits up to `±1e4` and temperatures `0.5`–`20`, on every
/// device: with `δ = (z_t - z_s) / T` and `d = δ - E_p[δ]`,
/// `KL = log Σ_j p_j e^{-d_j} = log1p(Σ_j p_j g(d_j))`, `g(d) = e^{-d} - 1 + d >= 0`, with
/// `g` from its Taylor series where `|d| <= 1` and [`log1p`] accurate on every backend.
/// Rows whose KL is above about 50 (where the exponentials could overflow and cancellation
/// does not matter) use the direct sum `Σ p (log p - log q)`.
///
/// # Shapes
/// `student_logits`, `teacher_logits`: `[N, C]` → `[N]`.
///
/// # Panics
/// When the two shapes differ; the message names both.
pub fn kd_loss_per_sample(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<2>,
    temperature: f64,
) -> Tensor<1> {
    assert_same_dims("kd_loss", &student_logits.dims(), &teacher_logits.dims());
    let [n, _] = student_logits.dims();
    let delta = (teacher_logits.clone() - student_logits.clone()).div_scalar(temperature);
    let log_student = log_softmax(student_logits.div_scalar(temperature), 1);
    let log_teacher = log_softmax(teacher_logits.div_scalar(temperature), 1);
    let kl = kl_divergence_rows(log_teacher, log_student, delta);
    kl.mul_scalar(temperature * temperature).reshape([n])
}

/// Largest exponent the cancellation-free KL form evaluates; rows that would need more
/// have `KL >= KL_DIRECT_ABOVE` and use the direct sum.
const KL_DIRECT_ABOVE: f64 = 50.0;

/// `KL(p ‖ q)` of each row, `[N, 1]`, from `log p`, `log q` and `δ`, where
/// `δ_j = log p_j - log q_j + c` for any per-row constant `c` (e.g. a difference of scaled
/// logits, which is exact where `log p - log q` is rounded).
///
/// With `d = δ - E_p[δ]` (so `E_p[d] = 0` and `c` cancels), `Σ_j p_j e^{-d_j} = e^{KL}`,
/// hence `KL = log1p(Σ_j p_j g(d_j))` with `g(d) = e^{-d} - 1 + d >= 0`: a sum of
/// non-negative terms, free of the cancellation in `Σ p (log p - log q)`. Rows where some
/// `log p_j - d_j > 50` (then `KL > 50 - log C`) take the direct sum.
///
/// Classes with `log p = -∞`-like values (`-1e30`, masked classes) contribute nothing.
fn kl_divergence_rows(log_p: Tensor<2>, log_q: Tensor<2>, delta: Tensor<2>) -> Tensor<2> {
    let p = log_p.clone().exp();
    let (accurate, usable) = kl_from_log_ratio(log_p.clone(), p.clone(), delta);
    let direct = (p * (log_p - log_q)).sum_dim(1);
    direct.mask_where(usable, accurate)
}

/// The cancellation-free part of [`kl_divergence_rows`]: `log Σ_j p_j e^{-d_j}` with
/// `d = δ - E_p[δ]`, `[N, 1]`, and the rows where it was evaluated without clamping.
/// `p` is `exp(log_p)`, passed in because the callers have it already.
fn kl_from_log_ratio(
    log_p: Tensor<2>,
    p: Tensor<2>,
    delta: Tensor<2>,
) -> (Tensor<2>, Tensor<2, Bool>) {
    let [n, c] = delta.dims();
    let d = delta.clone() - (p.clone() * delta).sum_dim(1).expand([n, c]);
    // p e^{-d} = exp(log p - d): its largest exponent decides whether the form is usable.
    let exponent = log_p - d.clone();
    let usable = exponent
        .clone()
        .max_dim(1)
        .lower_equal_elem(KL_DIRECT_ABOVE);
    // p g(d) = p e^{-d} - p + p d for |d| > 1 (no cancellation there: g(d) >= e^{-1}),
    // p · Taylor(g)(d) for |d| <= 1.
    let near = d.clone().abs().lower_equal_elem(1.0);
    let far = exponent.clamp_max(KL_DIRECT_ABOVE).exp() - p.clone() + p.clone() * d.clone();
    let close = p * taylor_g(d.clamp(-1.0, 1.0));
    let terms = far.mask_where(near, close);
    (log1p(terms.sum_dim(1)), usable)
}

/// `log(1 + x)`, accurate to a few units in the last place on every device.
///
/// Burn's `Tensor::log1p` is exact on the CPU backends, but on wgpu (cubecl 0.11) it is
/// computed as `ln(1 + x)`, which rounds `1 + x` first and so loses every digit of `x`
/// below float epsilon (`log1p(1e-8)` comes out as 0). This function uses the alternating
/// series `x - x²/2 + x³/3 - …` (9 terms, truncation below `1e-9` relative) where
/// `|x| < 0.1`, and `ln(1 + x)` elsewhere (there the rounding of `1 + x` costs at most
/// `6e-7` relative).
///
/// # Shapes
/// Any; element-wise.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_distill::log1p;
///
/// let device = Device::default();
/// let x = Tensor::<1>::from_floats([1e-9, 0.05, 1.0], &device);
/// let y: Vec<f32> = log1p(x).into_data().to_vec().unwrap();
/// assert!((y[0] - 1e-9).abs() < 1e-15);
/// assert!((y[1] - 0.048790164).abs() < 1e-8);
/// assert!((y[2] - std::f32::consts::LN_2).abs() < 1e-7);
/// ```
pub fn log1p<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const SERIES_BELOW: f64 = 0.1;
    const TERMS: usize = 9;
    let small = x.clone().abs().lower_elem(SERIES_BELOW);
    let u = x.clone().clamp(-SERIES_BELOW, SERIES_BELOW);
    // x (1 - x (1/2 - x (1/3 - … x/9))), by Horner's rule.
    let mut h = u.zeros_like().add_scalar(1.0 / TERMS as f64);
    for k in (1..TERMS).rev() {
        h = h.mul(u.clone()).neg().add_scalar(1.0 / k as f64);
    }
    let series = u * h;
    x.add_scalar(1.0).log().mask_where(small, series)
}

/// `g(d) = e^{-d} - 1 + d = d² Σ_{k>=2} (-d)^{k-2} / k!` for `|d| <= 1`, by Horner's rule
/// up to `k = 13` (truncation below `1e-10` relative).
fn taylor_g(d: Tensor<2>) -> Tensor<2> {
    let y = d.clone().neg();
    let mut factorial = [1.0f64; 14];
    for k in 1..14 {
        factorial[k] = factorial[k - 1] * k as f64;
    }
    let mut h = y.zeros_like().add_scalar(1.0 / factorial[13]);
    for k in (2..13).rev() {
        h = h * y.clone() + 1.0 / factorial[k];
    }
    d.clone() * d * h
}

/// Batch-mean KD loss, `[1]`. See [`kd_loss_per_sample`].
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_distill::kd_loss;
///
/// let device = Device::default();
/// let logits = Tensor::<2>::from_floats([[1.0, 2.0, 3.0]], &device);
/// // A student that already matches its teacher has zero KD loss.
/// let loss = kd_loss(logits.clone(), logits, 4.0).into_scalar::<f32>();
/// assert!(loss.abs() < 1e-6);
/// ```
///
/// # Panics
/// When the two shapes differ.
pub fn kd_loss(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<2>,
    temperature: f64,
) -> Tensor<1> {
    kd_loss_per_sample(student_logits, teacher_logits, temperature).mean()
}

/// Per-sample feature loss, the mean over every non-batch element of
/// `(adapted - teacher)²`, `[N]` (FitNets, Romero et al., 2015): `mean_{c,h,w}` for maps,
/// `mean_{l,d}` for sequences (TinyBERT's hidden-state MSE), `mean_d` for vectors.
///
/// # Shapes
/// `adapted_student`, `teacher_feature`: `[N, ...]` of the same shape (any rank) → `[N]`.
///
/// # Panics
/// When the two shapes differ; the message names both.
pub fn feature_loss_per_sample<const D: usize>(
    adapted_student: Tensor<D>,
    teacher_feature: Tensor<D>,
) -> Tensor<1> {
    assert_same_dims(
        "feature_loss",
        &adapted_student.dims(),
        &teacher_feature.dims(),
    );
    let n = adapted_student.dims()[0];
    (adapted_student - teacher_feature)
        .square()
        .reshape([n as i64, -1])
        .mean_dim(1)
        .reshape([n])
}

/// Per-sample feature MSE divided by the teacher feature's mean square, `[N]`:
/// `mean (a - f)² / (mean f² + 1e-6)` over the non-batch elements — the relative error of
/// the adapted student feature. It does not change when the teacher's features are scaled, so one
/// `feature_weight` means the same for every teacher architecture and depth; a student that
/// outputs zeros scores 1. See [`FeatureNorm::TeacherMeanSquare`].
///
/// # Shapes
/// `adapted_student`, `teacher_feature`: `[N, ...]` of the same shape (any rank) → `[N]`.
///
/// # Panics
/// When the two shapes differ; the message names both.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_distill::feature_loss_normalized_per_sample;
///
/// let device = Device::default();
/// let teacher = Tensor::<4>::ones([1, 2, 2, 2], &device).mul_scalar(10.0);
/// let student = Tensor::<4>::zeros([1, 2, 2, 2], &device);
/// let loss: f32 = feature_loss_normalized_per_sample(student, teacher).into_scalar();
/// assert!((loss - 1.0).abs() < 1e-5); // 100 / (100 + 1e-6)
/// ```
pub fn feature_loss_normalized_per_sample<const D: usize>(
    adapted_student: Tensor<D>,
    teacher_feature: Tensor<D>,
) -> Tensor<1> {
    let n = teacher_feature.dims()[0];
    let scale = teacher_feature
        .clone()
        .square()
        .reshape([n as i64, -1])
        .mean_dim(1)
        .reshape([n])
        .add_scalar(1e-6);
    feature_loss_per_sample(adapted_student, teacher_feature) / scale
}

/// Batch-mean feature MSE, `[1]`. See [`feature_loss_per_sample`].
///
/// # Panics
/// When the two shapes differ.
pub fn feature_loss<const D: usize>(
    adapted_student: Tensor<D>,
    teacher_feature: Tensor<D>,
) -> Tensor<1> {
    feature_loss_per_sample(adapted_student, teacher_feature).mean()
}

/// Per-sample decoupled KD loss, `[N]` (Zhao et al., 2022, "Decoupled Knowledge
/// Distillation"):
/// `T² · (target_weight · TCKD + non_target_weight · NCKD)`, where TCKD is the KL divergence
/// between teacher and student binary distributions `[p_target, 1 - p_target]` and NCKD the
/// KL divergence between their distributions over the non-target classes, all at
/// temperature `T`. The paper uses `target_weight = 1`, `non_target_weight = 8` on CIFAR-100.
///
/// Both KL terms are computed without cancellation, as in [`kd_loss_per_sample`]: never
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
pub fn dkd_loss_per_sample(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<2>,
    labels: Tensor<1, Int>,
    target_weight: f64,
    non_target_weight: f64,
    temperature: f64,
) -> Tensor<1> {
    assert_same_dims("dkd_loss", &student_logits.dims(), &teacher_logits.dims());
    let [n, c] = student_logits.dims();
    assert_same_dims("dkd_loss labels", &[n], &labels.dims());
    let target = labels.one_hot::<2>(c).equal_elem(1);
    let target_float = target.clone().float();
    let delta = (teacher_logits.clone() - student_logits.clone()).div_scalar(temperature);
    let teacher = DkdParts::new(teacher_logits.div_scalar(temperature), target.clone());
    let student = DkdParts::new(student_logits.div_scalar(temperature), target.clone());

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

    (tckd.mul_scalar(target_weight) + nckd.mul_scalar(non_target_weight))
        .mul_scalar(temperature * temperature)
        .reshape([n])
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

/// Batch-mean decoupled KD loss, `[1]`. See [`dkd_loss_per_sample`].
///
/// # Panics
/// When the shapes do not match.
pub fn dkd_loss(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<2>,
    labels: Tensor<1, Int>,
    target_weight: f64,
    non_target_weight: f64,
    temperature: f64,
) -> Tensor<1> {
    dkd_loss_per_sample(
        student_logits,
        teacher_logits,
        labels,
        target_weight,
        non_target_weight,
        temperature,
    )
    .mean()
}

fn log_sum_exp(x: Tensor<2>) -> Tensor<2> {
    let [n, c] = x.dims();
    let max = x.clone().max_dim(1);
    (x - max.clone().expand([n, c])).exp().sum_dim(1).log() + max
}

fn assert_same_dims(what: &str, a: &[usize], b: &[usize]) {
    assert!(a == b, "{what}: shapes differ: {a:?} vs {b:?}");
}

/// Which soft-label loss the [`DistillationLoss`] uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SoftLoss {
    /// Hinton KD: [`kd_loss_per_sample`].
    Kd,
    /// Decoupled KD: [`dkd_loss_per_sample`] with these weights.
    Dkd {
        /// Weight of the target-class term (TCKD). Paper: 1.
        target_weight: f64,
        /// Weight of the non-target-class term (NCKD). Paper: 8 on CIFAR-100.
        non_target_weight: f64,
    },
}

/// How the feature term measures the distance between an adapted student map and a teacher
/// map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureNorm {
    /// Plain MSE, [`feature_loss_per_sample`] (CA-MKD, FitNets). Its size follows the
    /// teacher maps' scale, which differs between architectures and layers.
    None,
    /// MSE divided by the teacher map's mean square,
    /// [`feature_loss_normalized_per_sample`]: a relative error, 1 for a zero student map.
    TeacherMeanSquare,
}

/// How the per-teacher soft and feature terms of a sample are combined with the selector's
/// weights `w[i, k]` (which sum to 1 over the teachers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TeacherReduction {
    /// `Σ_k w[i, k] · loss_k[i]`: a weighted mean over the teachers, so the terms keep
    /// their size whatever the number of teachers `K`.
    WeightedSum,
    /// `Σ_k w[i, k] · loss_k[i] / K`, the scale of CA-MKD's reference code (Zhang et al.,
    /// 2022, github.com/Rorozhl/CA-MKD, `helper/loops.py`), which sums the weighted
    /// per-sample terms over samples and teachers and divides by `B · K`. At the same
    /// nominal weights its soft and feature terms are `K` times weaker than with
    /// [`TeacherReduction::WeightedSum`].
    DivideByTeachers,
}

/// Configuration of a [`DistillationLoss`].
///
/// The weights default to CA-MKD's nominal values (Zhang et al., 2022: T = 4, hard 1,
/// soft 1, feature 50) with [`TeacherReduction::WeightedSum`]: the soft and feature terms are then
/// `K` times as strong as in CA-MKD's reference code at the same numbers. For CA-MKD's own
/// scale set `teacher_reduction` to [`TeacherReduction::DivideByTeachers`] (or use
/// [`DistillationLossConfig::ca_mkd`]).
///
/// **Feature-term schedule.** With `t` the number of training steps taken so far (counted
/// by the [`crate::Distiller`]), delay `D = feature_delay_steps` and ramp
/// `R = feature_ramp_steps`, the feature term's weight at step `t` is
/// `feature_weight · s(t)`, where `s(t) = 0` for `t < D`, `s(t) = min(1, (t - D + 1) / R)`
/// for `t >= D` when `R > 0`, and `s(t) = 1` for `t >= D` when `R = 0`. CA-MKD's code
/// switches its feature term off for the first epoch (a delay of one epoch of steps, no
/// ramp); DKD's reference code (mdistiller, `DKD.py`) ramps its loss in linearly as
/// `min(epoch / warmup, 1)`, which the ramp follows per step.
///
/// The default schedule, off for 100 steps and then ramped over 200, was chosen on the
/// CIFAR-10 validation runs in the README ("Results": 94 steps per epoch, so about one epoch
/// off and two of ramp): switching the weight-50 feature term on at once after one epoch
/// cost AVER, CA-MKD and EBKD 3–4 points and FitNets 6 against the ramp. In a long run it
/// is a short warm-up; set both to 0 for the feature term from the first step.
///
/// # Example
/// ```
/// use burn_distill::DistillationLossConfig;
///
/// // Feature term off for 100 steps, then linearly up to full weight over 200 steps.
/// let loss = DistillationLossConfig::new()
///     .with_feature_weight(10.0)
///     .with_feature_delay_steps(100)
///     .with_feature_ramp_steps(200)
///     .init()
///     .unwrap();
/// assert_eq!(loss.feature_weight_at(99), 0.0);
/// assert_eq!(loss.feature_weight_at(100), 10.0 / 200.0);
/// assert_eq!(loss.feature_weight_at(299), 10.0);
/// ```
#[derive(Config, Debug)]
pub struct DistillationLossConfig {
    /// Softmax temperature `T > 0` of the soft term. Default: 4.
    #[config(default = 4.0)]
    pub temperature: f64,
    /// Weight of the hard-label cross-entropy, `>= 0`. Default: 1.
    #[config(default = 1.0)]
    pub hard_weight: f64,
    /// Weight of the soft-label term, `>= 0`. Default: 1.
    #[config(default = 1.0)]
    pub soft_weight: f64,
    /// Weight of the feature term, `>= 0`. Default: 50.
    #[config(default = 50.0)]
    pub feature_weight: f64,
    /// Soft-label loss. Default: [`SoftLoss::Kd`].
    #[config(default = "SoftLoss::Kd")]
    pub soft_loss: SoftLoss,
    /// Distance of the feature term. Default: [`FeatureNorm::None`] (plain MSE, as in
    /// CA-MKD).
    #[config(default = "FeatureNorm::None")]
    pub feature_norm: FeatureNorm,
    /// Training steps at the start during which the feature term is off (see the
    /// schedule above). Default: 100.
    #[config(default = 100)]
    pub feature_delay_steps: usize,
    /// Training steps over which the feature weight then rises linearly to
    /// `feature_weight`; 0 switches it on at full weight. Default: 200.
    #[config(default = 200)]
    pub feature_ramp_steps: usize,
    /// How the per-teacher terms are combined. Default: [`TeacherReduction::WeightedSum`].
    #[config(default = "TeacherReduction::WeightedSum")]
    pub teacher_reduction: TeacherReduction,
}

impl DistillationLossConfig {
    /// Checks the values and builds the loss.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when the temperature is not finite and positive, or
    /// a weight is negative or not finite.
    ///
    /// # Example
    /// ```
    /// use burn_distill::DistillationLossConfig;
    ///
    /// assert!(DistillationLossConfig::new().init().is_ok());
    /// let err = DistillationLossConfig::new().with_temperature(0.0).init().unwrap_err();
    /// assert!(err.to_string().contains("temperature = 0"));
    /// ```
    pub fn init(&self) -> crate::Result<DistillationLoss> {
        check_positive("temperature", self.temperature)?;
        self.feature_delay_steps
            .checked_add(self.feature_ramp_steps)
            .ok_or_else(|| crate::Error::InvalidConfig {
                field: "feature_ramp_steps",
                value: format!(
                    "{} (after a delay of {})",
                    self.feature_ramp_steps, self.feature_delay_steps
                ),
                reason: "delay + ramp must fit in a usize",
            })?;
        check_non_negative("hard_weight", self.hard_weight)?;
        check_non_negative("soft_weight", self.soft_weight)?;
        check_non_negative("feature_weight", self.feature_weight)?;
        if let SoftLoss::Dkd {
            target_weight,
            non_target_weight,
        } = self.soft_loss
        {
            check_non_negative("soft_loss.target_weight", target_weight)?;
            check_non_negative("soft_loss.non_target_weight", non_target_weight)?;
        }
        Ok(DistillationLoss {
            config: self.clone(),
        })
    }
}

impl DistillationLossConfig {
    /// CA-MKD's loss as its reference code computes it (Zhang et al., 2022,
    /// github.com/Rorozhl/CA-MKD): T = 4, hard 1, soft 1, feature 50, plain feature MSE,
    /// terms divided by the number of teachers ([`TeacherReduction::DivideByTeachers`]) and
    /// the feature term off for the first epoch (`feature_delay_steps = steps_per_epoch`).
    /// Pair it with [`crate::Weighting::Confidence`] and no screening for the full method.
    ///
    /// # Example
    /// ```
    /// use burn_distill::{DistillationLossConfig, TeacherReduction};
    ///
    /// let config = DistillationLossConfig::ca_mkd(782); // 50,000 images, batches of 64
    /// assert_eq!(config.teacher_reduction, TeacherReduction::DivideByTeachers);
    /// assert_eq!(config.feature_delay_steps, 782);
    /// ```
    pub fn ca_mkd(steps_per_epoch: usize) -> Self {
        Self::new()
            .with_teacher_reduction(TeacherReduction::DivideByTeachers)
            .with_feature_delay_steps(steps_per_epoch)
            .with_feature_ramp_steps(0)
    }
}

/// The composite distillation loss:
/// `L = hard_weight · CE(z_s, y) + soft_weight · L_soft + feature_weight · L_feat`, with
/// - `L_soft = mean_i sum_k w[i, k] · soft(z_s[i], z_k[i])` (soft = KD or DKD, both
///   including `T²`),
/// - `L_feat = mean_i sum_k w[i, k] · sum_f mean (A_kf(f_s)[i] - f_kf[i])²`, summed
///   over the features `f` the models expose, the inner mean over each feature's elements
///   (channels and positions; each term divided by `mean f_kf[i]² + 1e-6` with
///   [`FeatureNorm::TeacherMeanSquare`]).
///
/// Both sums over `k` are divided by `K` with [`TeacherReduction::DivideByTeachers`].
/// [`DistillationLoss::forward`] uses the full `feature_weight`; the [`crate::Distiller`]
/// applies the feature schedule through [`DistillationLoss::at_step`].
///
/// A term whose weight is 0 is not computed at all (and reported as 0).
#[derive(Debug, Clone)]
pub struct DistillationLoss {
    config: DistillationLossConfig,
}

/// Every part of the distillation loss for one batch, each `[1]`.
///
/// `hard`, `soft` and `feature` are the unweighted terms; `total` is their weighted sum, the
/// value to call `backward` on.
#[derive(Debug, Clone)]
pub struct DistillationLossOutput {
    /// Weighted sum of the parts.
    pub total: Tensor<1>,
    /// Hard-label cross-entropy of the student.
    pub hard: Tensor<1>,
    /// Teacher-weighted soft-label loss.
    pub soft: Tensor<1>,
    /// Teacher-weighted feature loss.
    pub feature: Tensor<1>,
}

impl DistillationLoss {
    /// The configuration it was built from.
    pub fn config(&self) -> &DistillationLossConfig {
        &self.config
    }

    /// The feature term's weight after `step` training steps: `feature_weight · s(step)`
    /// with the schedule `s` of [`DistillationLossConfig`].
    pub fn feature_weight_at(&self, step: usize) -> f64 {
        let c = &self.config;
        let delay = c.feature_delay_steps;
        if step < delay {
            0.0
        } else if c.feature_ramp_steps == 0 {
            c.feature_weight
        } else {
            let ramp = c.feature_ramp_steps as f64;
            c.feature_weight * (((step - delay) as f64 + 1.0) / ramp).min(1.0)
        }
    }

    /// This loss as it stands after `step` training steps: the scheduled feature weight
    /// ([`DistillationLoss::feature_weight_at`]) as a constant, no schedule left.
    pub fn at_step(&self, step: usize) -> DistillationLoss {
        let config = DistillationLossConfig {
            feature_weight: self.feature_weight_at(step),
            feature_delay_steps: 0,
            feature_ramp_steps: 0,
            ..self.config.clone()
        };
        DistillationLoss { config }
    }

    /// Computes every part of the loss.
    ///
    /// # Shapes
    /// - `student_logits`: `[N, C]`; `labels`: `[N]`
    /// - `teacher_outputs`: `K` outputs with logits `[N, C]` and `F` features each
    /// - `adapted_features`: `K` lists of `F` student features already adapted to the
    ///   matching teacher feature's kind and shape (ignored when `feature_weight` is 0)
    /// - `weights`: `[N, K]` (a [`crate::Selection`]'s weights)
    ///
    /// # Panics
    /// When shapes do not match; the message names both shapes.
    pub fn forward(
        &self,
        student_logits: Tensor<2>,
        labels: Tensor<1, Int>,
        teacher_outputs: &[TeacherOutput],
        adapted_features: &[Vec<Feature>],
        weights: Tensor<2>,
    ) -> DistillationLossOutput {
        let [n, _] = student_logits.dims();
        let k = teacher_outputs.len();
        assert_same_dims("DistillationLoss weights", &[n, k], &weights.dims());
        let zero = || student_logits.zeros_like().sum().mul_scalar(0.0);
        let c = &self.config;

        let hard = if c.hard_weight > 0.0 {
            cross_entropy_per_sample(student_logits.clone(), labels.clone()).mean()
        } else {
            zero()
        };
        let soft = if c.soft_weight > 0.0 {
            let per_teacher: Vec<Tensor<2>> = teacher_outputs
                .iter()
                .map(|t| {
                    let teacher_logits = t.logits.clone();
                    let loss = match c.soft_loss {
                        SoftLoss::Kd => kd_loss_per_sample(
                            student_logits.clone(),
                            teacher_logits,
                            c.temperature,
                        ),
                        SoftLoss::Dkd {
                            target_weight,
                            non_target_weight,
                        } => dkd_loss_per_sample(
                            student_logits.clone(),
                            teacher_logits,
                            labels.clone(),
                            target_weight,
                            non_target_weight,
                            c.temperature,
                        ),
                    };
                    loss.reshape([n, 1])
                })
                .collect();
            weighted_mean(per_teacher, weights.clone(), c.teacher_reduction)
        } else {
            zero()
        };
        let feature = if c.feature_weight > 0.0 {
            assert_eq!(
                adapted_features.len(),
                k,
                "DistillationLoss: {} adapted feature lists for {k} teachers",
                adapted_features.len()
            );
            let per_teacher: Vec<Tensor<2>> = teacher_outputs
                .iter()
                .zip(adapted_features)
                .map(|(t, adapted)| {
                    assert_eq!(
                        adapted.len(),
                        t.features.len(),
                        "DistillationLoss: {} adapted maps for {} teacher maps",
                        adapted.len(),
                        t.features.len()
                    );
                    let mut total: Option<Tensor<1>> = None;
                    for (a, f) in adapted.iter().zip(&t.features) {
                        assert_eq!(
                            a.kind(),
                            f.kind(),
                            "DistillationLoss: an adapted {} feature for a teacher {} feature",
                            a.kind(),
                            f.kind()
                        );
                        let (a, f) = (a.clone().flatten_samples(), f.clone().flatten_samples());
                        let loss = match c.feature_norm {
                            FeatureNorm::None => feature_loss_per_sample(a, f),
                            FeatureNorm::TeacherMeanSquare => {
                                feature_loss_normalized_per_sample(a, f)
                            }
                        };
                        total = Some(match total {
                            Some(acc) => acc + loss,
                            None => loss,
                        });
                    }
                    match total {
                        Some(loss) => loss.reshape([n, 1]),
                        None => student_logits.zeros_like().slice([0..n, 0..1]),
                    }
                })
                .collect();
            weighted_mean(per_teacher, weights, c.teacher_reduction)
        } else {
            zero()
        };
        let total = hard.clone().mul_scalar(c.hard_weight)
            + soft.clone().mul_scalar(c.soft_weight)
            + feature.clone().mul_scalar(c.feature_weight);
        DistillationLossOutput {
            total,
            hard,
            soft,
            feature,
        }
    }
}

/// `mean_i sum_k w[i, k] · loss_k[i]` from `K` columns `[N, 1]`, divided by `K` for
/// [`TeacherReduction::DivideByTeachers`].
fn weighted_mean(
    per_teacher: Vec<Tensor<2>>,
    weights: Tensor<2>,
    reduction: TeacherReduction,
) -> Tensor<1> {
    let k = per_teacher.len();
    let mean = (Tensor::cat(per_teacher, 1) * weights).sum_dim(1).mean();
    match reduction {
        TeacherReduction::WeightedSum => mean,
        TeacherReduction::DivideByTeachers => mean.div_scalar(k as f64),
    }
}
