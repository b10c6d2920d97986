//! Distillation losses: Hinton KD, decoupled KD, feature MSE, and their weighted sum.

use burn::config::Config;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{check_non_negative, check_positive};
use crate::selector::cross_entropy_per_sample;
use crate::teacher::TeacherOutput;

/// Per-sample KD loss, `T² · KL(softmax(z_t/T) ‖ softmax(z_s/T))`, `[N]`.
///
/// Hinton, Vinyals & Dean, 2015, "Distilling the Knowledge in a Neural Network". The `T²`
/// factor keeps gradient magnitudes comparable across temperatures. Computed from
/// log-softmax, so it stays finite for large logits.
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
    let [n, c] = student_logits.dims();
    let delta = (teacher_logits.clone() - student_logits.clone()).div_scalar(temperature);
    let log_student = log_softmax(student_logits.div_scalar(temperature), 1);
    let log_teacher = log_softmax(teacher_logits.div_scalar(temperature), 1);
    let p = log_teacher.clone().exp();
    let direct = (p.clone() * (log_teacher - log_student)).sum_dim(1);

    // Near-identical distributions (high temperature, a student close to its teacher) make
    // the direct sum a difference of O(1) terms with an O(1e-4) result: f32 keeps only 3
    // or 4 digits. There KL is computed without cancellation: with d = δ - E_p[δ] and
    // δ = (z_t - z_s) / T, KL = log Σ p e^{-d} = log1p(Σ p g(d)), g(d) = e^{-d} - 1 + d >= 0
    // (E_p[d] = 0), g from its Taylor series. Used where every |d| <= 1.
    let centred = delta.clone() - (p.clone() * delta).sum_dim(1).expand([n, c]);
    let small = centred.clone().abs().max_dim(1).lower_equal_elem(1.0);
    let d = centred.clamp(-1.0, 1.0);
    let accurate = (p * taylor_g(d)).sum_dim(1).log1p();
    let kl = direct.mask_where(small, accurate);
    kl.mul_scalar(temperature * temperature).reshape([n])
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

/// Per-sample feature loss, `mean_{c,h,w} (adapted - teacher)²`, `[N]` (FitNets, Romero
/// et al., 2015).
///
/// # Shapes
/// `adapted_student`, `teacher_feature`: `[N, C, H, W]` → `[N]`.
///
/// # Panics
/// When the two shapes differ; the message names both.
pub fn feature_loss_per_sample(
    adapted_student: Tensor<4>,
    teacher_feature: Tensor<4>,
) -> Tensor<1> {
    assert_same_dims(
        "feature_loss",
        &adapted_student.dims(),
        &teacher_feature.dims(),
    );
    let [n, _, _, _] = adapted_student.dims();
    (adapted_student - teacher_feature)
        .square()
        .reshape([n as i64, -1])
        .mean_dim(1)
        .reshape([n])
}

/// Per-sample feature MSE divided by the teacher map's mean square, `[N]`:
/// `mean_{c,h,w} (a - f)² / (mean_{c,h,w} f² + 1e-6)` — the relative error of the adapted
/// student map. It does not change when the teacher's features are scaled, so one
/// `feature_weight` means the same for every teacher architecture and depth; a student that
/// outputs zeros scores 1. See [`FeatureNorm::TeacherMeanSquare`].
///
/// # Shapes
/// `adapted_student`, `teacher_feature`: `[N, C, H, W]` → `[N]`.
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
pub fn feature_loss_normalized_per_sample(
    adapted_student: Tensor<4>,
    teacher_feature: Tensor<4>,
) -> Tensor<1> {
    let [n, _, _, _] = teacher_feature.dims();
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
pub fn feature_loss(adapted_student: Tensor<4>, teacher_feature: Tensor<4>) -> Tensor<1> {
    feature_loss_per_sample(adapted_student, teacher_feature).mean()
}

/// Per-sample decoupled KD loss, `[N]` (Zhao et al., 2022, "Decoupled Knowledge
/// Distillation"):
/// `T² · (target_weight · TCKD + non_target_weight · NCKD)`, where TCKD is the KL divergence
/// between teacher and student binary distributions `[p_target, 1 - p_target]` and NCKD the
/// KL divergence between their distributions over the non-target classes, all at
/// temperature `T`. The paper uses `target_weight = 1`, `non_target_weight = 8` on CIFAR-100.
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
    let target_mask = labels.one_hot::<2>(c).equal_elem(1);
    let parts = |logits: Tensor<2>| {
        let scaled = logits.div_scalar(temperature);
        let log_all = log_softmax(scaled.clone(), 1);
        // Non-target classes only: the target logit is pushed to a huge negative value.
        let log_non_target = log_softmax(scaled.clone().mask_fill(target_mask.clone(), -1e30), 1);
        let log_target = (log_all.clone() * target_mask.clone().float()).sum_dim(1);
        // log(1 - p_target) = logsumexp(non-target) - logsumexp(all).
        let log_rest =
            log_sum_exp(scaled.clone().mask_fill(target_mask.clone(), -1e30)) - log_sum_exp(scaled);
        (log_target, log_rest, log_non_target)
    };
    let (s_target, s_rest, s_non_target) = parts(student_logits);
    let (t_target, t_rest, t_non_target) = parts(teacher_logits);
    let tckd =
        t_target.clone().exp() * (t_target - s_target) + t_rest.clone().exp() * (t_rest - s_rest);
    let nckd = (t_non_target.clone().exp() * (t_non_target - s_non_target))
        .mask_fill(target_mask, 0.0)
        .sum_dim(1);
    (tckd.mul_scalar(target_weight) + nckd.mul_scalar(non_target_weight))
        .mul_scalar(temperature * temperature)
        .reshape([n])
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

/// Configuration of a [`DistillationLoss`]. Defaults follow the CA-MKD reference code
/// (Zhang et al., 2022): T = 4, hard 1, soft 1, feature 50.
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

/// The composite distillation loss:
/// `L = hard_weight · CE(z_s, y) + soft_weight · L_soft + feature_weight · L_feat`, with
/// - `L_soft = mean_i sum_k w[i, k] · soft(z_s[i], z_k[i])` (soft = KD or DKD, both
///   including `T²`),
/// - `L_feat = mean_i sum_k w[i, k] · sum_f mean_{c,h,w} (A_kf(f_s)[i] - f_kf[i])²`, summed
///   over the feature maps `f` the models expose (each term divided by
///   `mean_{c,h,w} f_kf[i]² + 1e-6` with [`FeatureNorm::TeacherMeanSquare`]).
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

    /// Computes every part of the loss.
    ///
    /// # Shapes
    /// - `student_logits`: `[N, C]`; `labels`: `[N]`
    /// - `teacher_outputs`: `K` outputs with logits `[N, C]` and `F` feature maps each
    /// - `adapted_features`: `K` lists of `F` student maps already adapted to the matching
    ///   teacher map's shape (ignored when `feature_weight` is 0)
    /// - `weights`: `[N, K]` (a [`crate::Selection`]'s weights)
    ///
    /// # Panics
    /// When shapes do not match; the message names both shapes.
    pub fn forward(
        &self,
        student_logits: Tensor<2>,
        labels: Tensor<1, Int>,
        teacher_outputs: &[TeacherOutput],
        adapted_features: &[Vec<Tensor<4>>],
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
            weighted_mean(per_teacher, weights.clone())
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
                        let loss = match c.feature_norm {
                            FeatureNorm::None => feature_loss_per_sample(a.clone(), f.clone()),
                            FeatureNorm::TeacherMeanSquare => {
                                feature_loss_normalized_per_sample(a.clone(), f.clone())
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
            weighted_mean(per_teacher, weights)
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

/// `mean_i sum_k w[i, k] · loss_k[i]` from `K` columns `[N, 1]`.
fn weighted_mean(per_teacher: Vec<Tensor<2>>, weights: Tensor<2>) -> Tensor<1> {
    (Tensor::cat(per_teacher, 1) * weights).sum_dim(1).mean()
}
