//! The composite loss: weighted terms, the teacher reduction and the feature schedule.

use std::sync::Arc;

use burn::config::Config;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use super::assert_same_dims;
use super::cross_entropy::HardLabelLoss;
use super::dkd::DkdLossConfig;
use super::feature::{FeatureLossConfig, FeatureNorm};
use super::feature_closest::ClosestFeatureLoss;
use super::feature_first::FirstTeacherFeatureLoss;
use super::feature_mixture::MixtureFeatureLoss;
use super::kd::KdLossConfig;
use super::mixture::MixtureKdLossConfig;
use super::standardize::Standardized;
use super::term::{LossTerm, TermInput, TermValue};
use crate::error::{check_non_negative, check_positive};
use crate::model::{Feature, ModelOutput};

/// Which soft-label loss the [`DistillationLoss`] uses (its `"soft"` term).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SoftLoss {
    /// Hinton KD: [`crate::KdLoss`].
    Kd,
    /// Decoupled KD: [`crate::DkdLoss`] with these weights.
    Dkd {
        /// Weight of the target-class term (TCKD). Paper: 1.
        target_weight: f64,
        /// Weight of the non-target-class term (NCKD). Paper: 8 on CIFAR-100.
        non_target_weight: f64,
    },
    /// KD to the weighted mixture of the teachers' softened predictions, one KL per sample:
    /// [`crate::loss::MixtureKdLoss`].
    Mixture,
}

impl SoftLoss {
    /// The term this choice stands for, at `temperature`: the one place where a built-in
    /// soft loss is registered.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a bad temperature or weight.
    pub fn term(&self, temperature: f64) -> crate::Result<Arc<dyn LossTerm>> {
        Ok(match *self {
            SoftLoss::Kd => Arc::new(KdLossConfig::new().with_temperature(temperature).init()?),
            SoftLoss::Dkd {
                target_weight,
                non_target_weight,
            } => Arc::new(
                DkdLossConfig::new()
                    .with_target_weight(target_weight)
                    .with_non_target_weight(non_target_weight)
                    .with_temperature(temperature)
                    .init()?,
            ),
            SoftLoss::Mixture => Arc::new(
                MixtureKdLossConfig::new()
                    .with_temperature(temperature)
                    .init()?,
            ),
        })
    }
}

/// What the feature term pulls the student's adapted features towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureTarget {
    /// Every teacher's feature, through an adapter per teacher, the distances weighted by
    /// the selector ([`crate::FeatureLoss`]; FitNets, CA-MKD).
    PerTeacher,
    /// The selector's weighted mixture of the teachers' features, through one adapter
    /// ([`crate::loss::MixtureFeatureLoss`]). Every teacher's feature must have the same
    /// shape.
    Mixture,
    /// Per sample, the one kept teacher whose feature the student is closest to through that
    /// teacher's adapters ([`crate::loss::ClosestFeatureLoss`]): `min_k` of the per-teacher
    /// distances instead of their weighted sum.
    Closest,
    /// Teacher 0 alone, at full weight, through its adapters
    /// ([`crate::loss::FirstTeacherFeatureLoss`]); the soft term still uses every teacher.
    FirstTeacher,
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
/// **Feature-term schedule.** With `t` the number of optimizer steps taken so far (counted
/// by the [`crate::Distiller`] in its record, [`crate::Distiller::optimizer_steps`]), delay
/// `D = feature_delay_steps` and ramp `R = feature_ramp_steps`, the feature term's weight at step `t` is
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
    /// Z-score every logit vector before the soft term's temperature softmax (Sun et al.,
    /// CVPR 2024; [`crate::loss::Standardized`]), for KD, DKD and the mixture alike.
    /// Default: true, chosen on the CIFAR-10 validation runs of `docs/RESULTS.md`
    /// ("Ensemble gain") by the rule written there before the grid; `false` gives plain
    /// Hinton KD (the seed paper's and CA-MKD's soft term).
    #[config(default = true)]
    pub logit_standardization: bool,
    /// What the feature term compares with. Default: [`FeatureTarget::PerTeacher`].
    #[config(default = "FeatureTarget::PerTeacher")]
    pub feature_target: FeatureTarget,
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
        let mut soft = self.soft_loss.term(self.temperature)?;
        if self.logit_standardization {
            soft = Arc::new(Standardized::new(soft));
        }
        let feature: Arc<dyn LossTerm> = match self.feature_target {
            FeatureTarget::PerTeacher => {
                Arc::new(FeatureLossConfig::new().with_norm(self.feature_norm).init())
            }
            FeatureTarget::Mixture => Arc::new(MixtureFeatureLoss::new(self.feature_norm)),
            FeatureTarget::Closest => Arc::new(ClosestFeatureLoss::new(self.feature_norm)),
            FeatureTarget::FirstTeacher => {
                Arc::new(FirstTeacherFeatureLoss::new(self.feature_norm))
            }
        };
        Ok(DistillationLoss {
            config: self.clone(),
            terms: vec![
                WeightedTerm::new(Arc::new(HardLabelLoss), self.hard_weight, false),
                WeightedTerm::new(soft, self.soft_weight, false),
                WeightedTerm::new(feature, self.feature_weight, true),
            ],
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

/// The composite distillation loss: a weighted sum of named [`LossTerm`]s,
/// `L = Σ_terms weight · reduce(term)`. Built from a [`DistillationLossConfig`] it has
/// three terms:
/// - `"hard"`: the student's cross-entropy, `mean_i CE(z_s[i], y[i])`, weight `hard_weight`;
/// - `"soft"`: `L_soft = mean_i Σ_k w[i, k] · soft(z_s[i], z_k[i])` (soft = KD or DKD, both
///   including `T²`; by default on z-scored logits, `logit_standardization`), weight
///   `soft_weight`;
/// - `"feature"`: `L_feat = mean_i Σ_k w[i, k] · Σ_f mean (A_kf(f_s)[i] - f_kf[i])²`, summed
///   over the features `f` the models expose, the inner mean over each feature's elements
///   (channels and positions; each term divided by `mean f_kf[i]² + 1e-6` with
///   [`FeatureNorm::TeacherMeanSquare`]), weight `feature_weight` times the schedule.
///
/// Per-teacher terms are reduced with the selector's weights `w` and divided by `K` with
/// [`TeacherReduction::DivideByTeachers`]. [`DistillationLoss::with_term`] adds a term of
/// your own (a new method). [`DistillationLoss::forward`] uses the full weights; the
/// [`crate::Distiller`] applies the feature schedule through [`DistillationLoss::at_step`].
///
/// A term whose weight is 0 is not computed at all (and reported as 0).
#[derive(Debug, Clone)]
pub struct DistillationLoss {
    config: DistillationLossConfig,
    terms: Vec<WeightedTerm>,
}

/// A term of the composite loss with its weight.
#[derive(Debug, Clone)]
struct WeightedTerm {
    term: Arc<dyn LossTerm>,
    weight: f64,
    /// Follows the feature schedule of [`DistillationLossConfig`].
    scheduled: bool,
}

impl WeightedTerm {
    fn new(term: Arc<dyn LossTerm>, weight: f64, scheduled: bool) -> Self {
        Self {
            term,
            weight,
            scheduled,
        }
    }
}

/// One term's part of a [`DistillationLossOutput`].
#[derive(Debug, Clone)]
pub struct TermOutput {
    /// The term's name ([`LossTerm::name`]).
    pub name: String,
    /// Its weight in the total (for the scheduled feature term: before the schedule's
    /// factor, which [`DistillationLoss::forward_at_step`] applies on the device).
    pub weight: f64,
    /// Its unweighted, reduced value, `[1]`.
    pub value: Tensor<1>,
}

/// Every term of the distillation loss for one batch, each `[1]`.
///
/// `terms` holds the unweighted value of every term by name (`"hard"`, `"soft"`,
/// `"feature"` first, then any added with [`DistillationLoss::with_term`]); `total` is their
/// weighted sum, the value to call `backward` on.
#[derive(Debug, Clone)]
pub struct DistillationLossOutput {
    /// Weighted sum of the terms.
    pub total: Tensor<1>,
    /// Every term, in the loss's order.
    pub terms: Vec<TermOutput>,
}

impl DistillationLossOutput {
    /// The unweighted value of the term called `name`, `[1]`, if the loss has one.
    pub fn term(&self, name: &str) -> Option<Tensor<1>> {
        self.terms
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.value.clone())
    }

    /// The same values off the autodiff graph (for metrics and logs).
    #[must_use]
    pub fn without_autodiff(self) -> Self {
        Self {
            total: self.total.without_autodiff(),
            terms: self
                .terms
                .into_iter()
                .map(|t| TermOutput {
                    value: t.value.without_autodiff(),
                    ..t
                })
                .collect(),
        }
    }

    /// The output of a step that ran the student alone: `total` and `"hard"` are its
    /// cross-entropy, `"soft"` and `"feature"` are 0.
    #[cfg(feature = "train")]
    pub(crate) fn student_only(hard: Tensor<1>) -> Self {
        let zero = hard.zeros_like();
        let term = |name: &str, weight: f64, value: Tensor<1>| TermOutput {
            name: name.to_string(),
            weight,
            value,
        };
        Self {
            total: hard.clone(),
            terms: vec![
                term(super::HARD, 1.0, hard),
                term(super::SOFT, 0.0, zero.clone()),
                term(super::FEATURE, 0.0, zero),
            ],
        }
    }

    fn built_in(&self, index: usize) -> Tensor<1> {
        self.terms[index].value.clone()
    }

    /// Hard-label cross-entropy of the student (the `"hard"` term).
    pub fn hard(&self) -> Tensor<1> {
        self.built_in(0)
    }

    /// Teacher-weighted soft-label loss (the `"soft"` term).
    pub fn soft(&self) -> Tensor<1> {
        self.built_in(1)
    }

    /// Teacher-weighted feature loss (the `"feature"` term).
    pub fn feature(&self) -> Tensor<1> {
        self.built_in(2)
    }
}

impl DistillationLoss {
    /// The configuration it was built from.
    pub fn config(&self) -> &DistillationLossConfig {
        &self.config
    }

    /// Adds a term of your own with `weight` (a new method; see [`LossTerm`]). It is
    /// reported under its [`LossTerm::name`] after the built-in ones.
    #[must_use]
    pub fn with_term(mut self, term: impl LossTerm + 'static, weight: f64) -> Self {
        self.terms
            .push(WeightedTerm::new(Arc::new(term), weight, false));
        self
    }

    /// Whether any term with a non-zero weight reads adapted features (else the distiller
    /// skips the adapters).
    pub fn uses_features(&self) -> bool {
        self.terms
            .iter()
            .any(|t| t.weight > 0.0 && t.term.uses_features())
    }

    /// How many of `teachers` teachers' adapters the weighted terms read (the first ones):
    /// the largest [`LossTerm::adapted_teachers`] over the terms with a non-zero weight.
    pub fn adapted_teachers(&self, teachers: usize) -> usize {
        self.terms
            .iter()
            .filter(|t| t.weight > 0.0)
            .map(|t| t.term.adapted_teachers(teachers).min(teachers))
            .max()
            .unwrap_or(0)
    }

    /// The schedule factor `s(step)` in `[0, 1]` of [`DistillationLossConfig`].
    pub fn schedule_at(&self, step: usize) -> f64 {
        let c = &self.config;
        let delay = c.feature_delay_steps;
        if step < delay {
            0.0
        } else if c.feature_ramp_steps == 0 {
            1.0
        } else {
            let ramp = c.feature_ramp_steps as f64;
            (((step - delay) as f64 + 1.0) / ramp).min(1.0)
        }
    }

    /// The schedule factor `s(step)` computed on the device from a step count `[1]` (no host
    /// read): what [`DistillationLoss::forward_at_step`] scales the scheduled terms by.
    /// Equal to [`DistillationLoss::schedule_at`] up to `f32` rounding.
    pub fn schedule_tensor(&self, step: Tensor<1, Int>) -> Tensor<1> {
        let c = &self.config;
        let t = step.float();
        let delay = c.feature_delay_steps as f64;
        if c.feature_ramp_steps == 0 {
            t.greater_equal_elem(delay).float()
        } else {
            t.sub_scalar(delay - 1.0)
                .div_scalar(c.feature_ramp_steps as f64)
                .clamp(0.0, 1.0)
        }
    }

    /// The feature term's weight after `step` training steps: `feature_weight · s(step)`
    /// with the schedule `s` of [`DistillationLossConfig`].
    pub fn feature_weight_at(&self, step: usize) -> f64 {
        self.config.feature_weight * self.schedule_at(step)
    }

    /// This loss as it stands after `step` training steps: the scheduled feature weight
    /// ([`DistillationLoss::feature_weight_at`]) as a constant, no schedule left.
    pub fn at_step(&self, step: usize) -> DistillationLoss {
        let feature_weight = self.feature_weight_at(step);
        let config = DistillationLossConfig {
            feature_weight,
            feature_delay_steps: 0,
            feature_ramp_steps: 0,
            ..self.config.clone()
        };
        let terms = self
            .terms
            .iter()
            .map(|t| WeightedTerm {
                weight: if t.scheduled {
                    feature_weight
                } else {
                    t.weight
                },
                scheduled: false,
                term: t.term.clone(),
            })
            .collect();
        DistillationLoss { config, terms }
    }

    /// Computes every term of the loss.
    ///
    /// # Shapes
    /// - `student_logits`: `[N, C]`; `labels`: `[N]`
    /// - `teacher_outputs`: `K` outputs with logits `[N, C]` and `F` features each
    /// - `adapted_features`: lists of `F` student features already adapted to the matching
    ///   teacher feature's kind and shape, one per teacher for at least the first
    ///   [`DistillationLoss::adapted_teachers`]`(K)` teachers (ignored when no term uses
    ///   features)
    /// - `weights`: `[N, K]` (a [`crate::Selection`]'s weights)
    ///
    /// # Panics
    /// When shapes do not match; the message names both shapes.
    pub fn forward(
        &self,
        student_logits: Tensor<2>,
        labels: Tensor<1, Int>,
        teacher_outputs: &[ModelOutput],
        adapted_features: &[Vec<Feature>],
        weights: Tensor<2>,
    ) -> DistillationLossOutput {
        let input = (
            student_logits,
            labels,
            teacher_outputs,
            adapted_features,
            weights,
        );
        self.forward_scaled(input, None)
    }

    /// [`DistillationLoss::forward`] after `step` optimizer steps (a count `[1]` on the
    /// device, as the [`crate::Distiller`] keeps it): the scheduled (feature) term enters
    /// the total with `feature_weight · s(step)`, computed on the device
    /// ([`DistillationLoss::schedule_tensor`]). Its reported value is the unweighted term,
    /// computed whenever `feature_weight > 0`, also while `s(step) = 0`.
    ///
    /// # Panics
    /// As [`DistillationLoss::forward`].
    pub fn forward_at_step(
        &self,
        student_logits: Tensor<2>,
        labels: Tensor<1, Int>,
        teacher_outputs: &[ModelOutput],
        adapted_features: &[Vec<Feature>],
        weights: Tensor<2>,
        step: Tensor<1, Int>,
    ) -> DistillationLossOutput {
        let schedule = self.schedule_tensor(step);
        let input = (
            student_logits,
            labels,
            teacher_outputs,
            adapted_features,
            weights,
        );
        self.forward_scaled(input, Some(schedule))
    }

    fn forward_scaled(
        &self,
        (student_logits, labels, teacher_outputs, adapted_features, weights): ForwardInput<'_>,
        schedule: Option<Tensor<1>>,
    ) -> DistillationLossOutput {
        let [n, _] = student_logits.dims();
        let k = teacher_outputs.len();
        assert_same_dims("DistillationLoss weights", &[n, k], &weights.dims());
        let input = TermInput {
            student_logits: &student_logits,
            labels: &labels,
            teacher_outputs,
            adapted_features,
            weights: &weights,
        };
        let reduction = self.config.teacher_reduction;
        let mut total: Option<Tensor<1>> = None;
        let mut terms = Vec::with_capacity(self.terms.len());
        for t in &self.terms {
            let value = if t.weight > 0.0 {
                match t.term.forward_no_reduction(&input) {
                    TermValue::PerSample(per_sample) => per_sample.mean(),
                    TermValue::PerTeacher(per_teacher) => {
                        weighted_mean(per_teacher, weights.clone(), reduction)
                    }
                }
            } else {
                student_logits.zeros_like().sum().mul_scalar(0.0)
            };
            let mut weighted = value.clone().mul_scalar(t.weight);
            if let (true, Some(s)) = (t.scheduled, &schedule) {
                // Switched off means 0, also for a term that is not finite yet.
                let off = s.clone().equal_elem(0.0);
                weighted = (weighted * s.clone()).mask_fill(off, 0.0);
            }
            total = Some(match total {
                Some(acc) => acc + weighted,
                None => weighted,
            });
            terms.push(TermOutput {
                name: t.term.name().to_string(),
                weight: t.weight,
                value,
            });
        }
        DistillationLossOutput {
            total: total.unwrap_or_else(|| student_logits.zeros_like().sum().mul_scalar(0.0)),
            terms,
        }
    }
}

/// The arguments of [`DistillationLoss::forward`], in order.
type ForwardInput<'a> = (
    Tensor<2>,
    Tensor<1, Int>,
    &'a [ModelOutput],
    &'a [Vec<Feature>],
    Tensor<2>,
);

/// `mean_i sum_k w[i, k] · loss[i, k]` from `[N, K]` values, divided by `K` for
/// [`TeacherReduction::DivideByTeachers`].
fn weighted_mean(
    per_teacher: Tensor<2>,
    weights: Tensor<2>,
    reduction: TeacherReduction,
) -> Tensor<1> {
    let k = per_teacher.dims()[1];
    let mean = (per_teacher * weights).sum_dim(1).mean();
    match reduction {
        TeacherReduction::WeightedSum => mean,
        TeacherReduction::DivideByTeachers => mean.div_scalar(k as f64),
    }
}
