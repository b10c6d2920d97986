//! Teacher screening and weighting by cross-entropy against the true labels.
//!
//! For every batch the selector measures each teacher's cross-entropy against the labels,
//! screens out the weak teachers and weights the rest. See [`TeacherSelector::select`] for
//! the formulas.

use burn::config::Config;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Bool, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, check_non_negative, check_positive};
use crate::loss::cross_entropy_per_sample;

/// Which teachers take part for a sample (or batch).
///
/// Whatever the rule, the best teacher (lowest cross-entropy) is always kept, so every
/// sample has at least one teacher. Ties are kept together: two teachers with the same
/// cross-entropy are both kept or both screened out, so the result does not depend on the
/// order of the teachers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ScreeningRule {
    /// Keep teacher `k` when `l[k] <= mean_j l[j]` (the seed paper's rule). A relative
    /// tolerance of `1e-6` absorbs float rounding of the mean.
    BelowMean,
    /// Keep the `k` teachers with the lowest cross-entropy (more when the `k`-th place is
    /// tied). `k` must be in `1..=K`.
    TopK(usize),
    /// Keep teachers whose cross-entropy is at most this value (in nats).
    MaxCrossEntropy(f64),
    /// Keep teacher `k` when `l[k] <= ratio · min_j l[j]` (`ratio >= 1`): teachers
    /// comparable to the best stay together however many there are, a clearly worse one is
    /// dropped (with `ratio` 1.5: a teacher at 1.4 nats beside a best at 1.0 is kept, one at
    /// 2.0 is not). Unlike [`ScreeningRule::BelowMean`], it does not drop half of a pool of
    /// equals.
    RelativeToBest(f64),
    /// Keep every teacher.
    KeepAll,
}

/// The rule's name on a command line: `below-mean`, `top-k:N`, `max-ce:X`, `relative:R`,
/// `keep-all`, as [`ScreeningRule::from_str`](std::str::FromStr::from_str) reads it.
impl std::fmt::Display for ScreeningRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BelowMean => write!(f, "below-mean"),
            Self::TopK(k) => write!(f, "top-k:{k}"),
            Self::MaxCrossEntropy(x) => write!(f, "max-ce:{x}"),
            Self::RelativeToBest(r) => write!(f, "relative:{r}"),
            Self::KeepAll => write!(f, "keep-all"),
        }
    }
}

impl std::str::FromStr for ScreeningRule {
    type Err = Error;

    /// Reads a rule as [`Display`](std::fmt::Display) writes it, for command lines. The
    /// numbers are checked when the selector is built ([`TeacherSelectorConfig::init`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown name or a number that does not parse.
    ///
    /// # Example
    /// ```
    /// use burn_distill::ScreeningRule;
    ///
    /// assert_eq!("top-k:2".parse::<ScreeningRule>().unwrap(), ScreeningRule::TopK(2));
    /// assert_eq!("relative:1.5".parse::<ScreeningRule>().unwrap(), ScreeningRule::RelativeToBest(1.5));
    /// assert!("top-k:two".parse::<ScreeningRule>().is_err());
    /// assert_eq!(ScreeningRule::BelowMean.to_string(), "below-mean");
    /// ```
    fn from_str(text: &str) -> Result<Self, Error> {
        let parsed = match text.split_once(':') {
            None if text == "below-mean" => Some(Self::BelowMean),
            None if text == "keep-all" => Some(Self::KeepAll),
            Some(("top-k", k)) => k.parse().ok().map(Self::TopK),
            Some(("max-ce", x)) => x.parse().ok().map(Self::MaxCrossEntropy),
            Some(("relative", r)) => r.parse().ok().map(Self::RelativeToBest),
            _ => None,
        };
        parsed.ok_or_else(|| Error::InvalidConfig {
            field: "screening",
            value: text.to_string(),
            reason: "unknown rule (below-mean, top-k:N, max-ce:X, relative:R or keep-all)",
        })
    }
}

/// How the kept teachers are weighted. Raw weights are computed for all teachers, set to 0
/// for screened-out ones, and renormalised to sum to 1 over the kept teachers. If every
/// kept teacher's raw weight is 0, the kept teachers share equally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Weighting {
    /// `w[k] ∝ exp(-l[k] / tau)`: the seed paper's method; better teachers have more say.
    Softmax,
    /// `w[k] = 1 / K` (AVER, as in You et al., 2017, "Learning from Multiple Teacher
    /// Networks").
    Average,
    /// CA-MKD (Zhang et al., 2022, "Confidence-Aware Multi-Teacher Knowledge
    /// Distillation"): `w[k] = (1 - softmax_k(l)[k]) / (K - 1)`.
    Confidence,
    /// EBKD (Kwon et al., 2020, "Adaptive Knowledge Distillation Based on Entropy"): from
    /// each teacher's prediction entropy `H[k]`, `w[k] = (1 - H[k] / sum_j H[j]) / (K - 1)`,
    /// which sums to 1 over the teachers.
    ///
    /// The EBKD baseline in CA-MKD's reference code (github.com/Rorozhl/CA-MKD) leaves out
    /// the `1 / (K - 1)`: its weights sum to `K - 1`, so at the same nominal soft weight its
    /// soft term is `K - 1` times this one (before that code's division by `K`, see
    /// [`crate::TeacherReduction::DivideByTeachers`]). The relative weights are the same;
    /// to reproduce that scale multiply `soft_weight` by `K - 1`.
    Entropy,
    /// User-given weights, one per teacher, each `>= 0`, not all 0.
    Fixed(Vec<f64>),
}

/// Whether cross-entropies are taken per sample or averaged over the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Granularity {
    /// Every sample gets its own screening and weights.
    PerSample,
    /// One screening and weighting per batch, from `l[k] = mean_i l[k, i]` (and the
    /// batch-mean entropy for [`Weighting::Entropy`]), applied to every sample.
    PerBatch,
}

/// Configuration of a [`TeacherSelector`].
#[derive(Config, Debug)]
pub struct TeacherSelectorConfig {
    /// Which teachers are kept. Default: [`ScreeningRule::BelowMean`].
    #[config(default = "ScreeningRule::BelowMean")]
    pub screening: ScreeningRule,
    /// How kept teachers are weighted. Default: [`Weighting::Softmax`].
    #[config(default = "Weighting::Softmax")]
    pub weighting: Weighting,
    /// Temperature `tau > 0` of [`Weighting::Softmax`]. Default: 1.
    #[config(default = 1.0)]
    pub tau: f64,
    /// Per-sample or per-batch selection. Default: [`Granularity::PerBatch`], chosen on a
    /// CIFAR-10 validation split (README, "Results"): with a strong, a medium and a weak
    /// teacher, screening per batch made a better student than per sample, AVER, CA-MKD,
    /// EBKD and single-best KD. The seed paper screens per sample:
    /// [`TeacherSelectorConfig::seed_paper`].
    #[config(default = "Granularity::PerBatch")]
    pub granularity: Granularity,
}

impl TeacherSelectorConfig {
    /// The peer method with plain weights and no screening: `Average`, `Confidence` or
    /// `Entropy` exactly as in their papers (all teachers kept).
    pub fn unscreened(weighting: Weighting) -> Self {
        Self::new()
            .with_screening(ScreeningRule::KeepAll)
            .with_weighting(weighting)
            .with_granularity(Granularity::PerSample)
    }

    /// The seed paper's rule as it stands: per sample, keep the teachers at or below the
    /// mean cross-entropy ([`ScreeningRule::BelowMean`]) and weight them by
    /// `softmax(-CE / tau)` with `tau = 1`. The default ([`TeacherSelectorConfig::new`])
    /// differs only in screening per batch.
    ///
    /// # Example
    /// ```
    /// use burn_distill::{Granularity, TeacherSelectorConfig};
    ///
    /// let paper = TeacherSelectorConfig::seed_paper();
    /// assert_eq!(paper.granularity, Granularity::PerSample);
    /// assert_eq!(TeacherSelectorConfig::new().granularity, Granularity::PerBatch);
    /// ```
    pub fn seed_paper() -> Self {
        Self::new().with_granularity(Granularity::PerSample)
    }

    /// Checks the configuration for `num_teachers` teachers and builds the selector.
    ///
    /// # Errors
    /// [`Error::NoTeachers`] when `num_teachers == 0`; [`Error::InvalidConfig`] when
    /// `tau` is not a finite positive number, `TopK(k)` has `k == 0` or `k > K`,
    /// `MaxCrossEntropy` is NaN or negative, or `Fixed` weights have the wrong length, a
    /// negative or non-finite entry, or are all 0.
    ///
    /// # Example
    /// ```
    /// use burn_distill::{ScreeningRule, TeacherSelectorConfig};
    ///
    /// let selector = TeacherSelectorConfig::new().init(3).unwrap();
    /// assert_eq!(selector.num_teachers(), 3);
    /// let err = TeacherSelectorConfig::new()
    ///     .with_screening(ScreeningRule::TopK(4))
    ///     .init(3)
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("TopK(4)"));
    /// ```
    pub fn init(&self, num_teachers: usize) -> crate::Result<TeacherSelector> {
        if num_teachers == 0 {
            return Err(Error::NoTeachers);
        }
        check_positive("tau", self.tau)?;
        match &self.screening {
            ScreeningRule::TopK(k) if *k == 0 || *k > num_teachers => {
                return Err(Error::InvalidConfig {
                    field: "screening",
                    value: format!("TopK({k})"),
                    reason: "k must be between 1 and the number of teachers",
                });
            }
            ScreeningRule::MaxCrossEntropy(x) => check_non_negative("screening", *x)?,
            ScreeningRule::RelativeToBest(ratio) if !(ratio.is_finite() && *ratio >= 1.0) => {
                return Err(Error::InvalidConfig {
                    field: "screening",
                    value: format!("RelativeToBest({ratio})"),
                    reason: "the ratio must be finite and at least 1",
                });
            }
            _ => {}
        }
        if let Weighting::Fixed(weights) = &self.weighting {
            if weights.len() != num_teachers {
                return Err(Error::InvalidConfig {
                    field: "weighting",
                    value: format!("Fixed({weights:?})"),
                    reason: "needs exactly one weight per teacher",
                });
            }
            if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
                return Err(Error::InvalidConfig {
                    field: "weighting",
                    value: format!("Fixed({weights:?})"),
                    reason: "weights must be finite and >= 0",
                });
            }
            if weights.iter().all(|w| *w == 0.0) {
                return Err(Error::InvalidConfig {
                    field: "weighting",
                    value: format!("Fixed({weights:?})"),
                    reason: "at least one weight must be greater than 0",
                });
            }
        }
        Ok(TeacherSelector {
            config: self.clone(),
            num_teachers,
        })
    }
}

/// Screens and weights `K` teachers per sample or per batch. Built by
/// [`TeacherSelectorConfig::init`].
#[derive(Debug, Clone)]
pub struct TeacherSelector {
    config: TeacherSelectorConfig,
    num_teachers: usize,
}

/// The selector's decision for one batch.
///
/// # Shapes
/// - `cross_entropy`: `[N, K]`, `l[i, k] = CE(z_k[i], y[i])` at temperature 1, in nats.
/// - `keep`: `[N, K]`, true where teacher `k` takes part for sample `i`.
/// - `weights`: `[N, K]`, 0 where `keep` is false, each row sums to 1.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Per-sample, per-teacher cross-entropy against the true label.
    pub cross_entropy: Tensor<2>,
    /// Keep mask after screening (the best teacher is always kept).
    pub keep: Tensor<2, Bool>,
    /// Weights of the kept teachers, summing to 1 per sample.
    pub weights: Tensor<2>,
}

impl Selection {
    /// Fraction of samples for which each teacher was kept, `[K]`.
    pub fn keep_rate(&self) -> Tensor<1> {
        let [_, k] = self.keep.dims();
        self.keep.clone().float().mean_dim(0).reshape([k])
    }

    /// Mean weight of each teacher over the batch, `[K]`.
    pub fn mean_weight(&self) -> Tensor<1> {
        let [_, k] = self.weights.dims();
        self.weights.clone().mean_dim(0).reshape([k])
    }

    /// Mean cross-entropy of each teacher over the batch, `[K]`.
    pub fn mean_cross_entropy(&self) -> Tensor<1> {
        let [_, k] = self.cross_entropy.dims();
        self.cross_entropy.clone().mean_dim(0).reshape([k])
    }
}

impl TeacherSelector {
    /// Number of teachers this selector was built for.
    pub fn num_teachers(&self) -> usize {
        self.num_teachers
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &TeacherSelectorConfig {
        &self.config
    }

    /// Screens and weights the teachers for one batch.
    ///
    /// With `l[i, k] = -log softmax(z_k[i])[y[i]]` (per-batch granularity replaces every row
    /// by the batch mean `mean_i l[i, k]`):
    /// 1. keep mask from the [`ScreeningRule`], OR-ed with `l[i, k] == min_j l[i, j]`;
    /// 2. raw weights `r[i, k]` from the [`Weighting`];
    /// 3. `w[i, k] = keep[i, k] r[i, k] / sum_j keep[i, j] r[i, j]`.
    ///
    /// Tensor operations only: nothing is copied to the host. Teacher logits are used
    /// without autodiff.
    ///
    /// # Shapes
    /// - `teacher_logits`: `K` tensors `[N, C]`
    /// - `labels`: `[N]`, values in `0..C`
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the number of teachers is not `K`, the teachers' logits
    /// differ in shape, or `labels` is not `[N]`. Label values are not checked here (that
    /// would need a copy to the host); out-of-range labels give undefined cross-entropies.
    ///
    /// # Example
    /// ```
    /// use burn::tensor::{Device, Int, Tensor};
    /// use burn_distill::TeacherSelectorConfig;
    ///
    /// let device = Device::default();
    /// let selector = TeacherSelectorConfig::new().init(2).unwrap();
    /// let good = Tensor::<2>::from_floats([[4.0, 0.0]], &device);
    /// let bad = Tensor::<2>::from_floats([[0.0, 4.0]], &device);
    /// let labels = Tensor::<1, Int>::from_ints([0], &device);
    /// let selection = selector.select(&[good, bad], labels).unwrap();
    /// // The bad teacher is above the mean cross-entropy and is screened out.
    /// let weights = selection.weights.to_data().to_vec::<f32>().unwrap();
    /// assert_eq!(weights, vec![1.0, 0.0]);
    /// ```
    pub fn select(
        &self,
        teacher_logits: &[Tensor<2>],
        labels: Tensor<1, Int>,
    ) -> crate::Result<Selection> {
        let k = self.num_teachers;
        if teacher_logits.len() != k {
            return Err(Error::ShapeMismatch {
                context: "number of teacher logits given to the selector".into(),
                expected: vec![k],
                found: vec![teacher_logits.len()],
            });
        }
        let [n, c] = teacher_logits[0].dims();
        for (index, logits) in teacher_logits.iter().enumerate() {
            if logits.dims() != [n, c] {
                return Err(Error::ShapeMismatch {
                    context: format!("teacher {index} logits"),
                    expected: vec![n, c],
                    found: logits.dims().to_vec(),
                });
            }
        }
        if labels.dims() != [n] {
            return Err(Error::ShapeMismatch {
                context: "labels".into(),
                expected: vec![n],
                found: labels.dims().to_vec(),
            });
        }
        let labels = labels.without_autodiff();
        let logits: Vec<Tensor<2>> = teacher_logits
            .iter()
            .map(|z| z.clone().without_autodiff())
            .collect();

        let cross_entropy = Tensor::cat(
            logits
                .iter()
                .map(|z| cross_entropy_per_sample(z.clone(), labels.clone()))
                .collect(),
            1,
        );
        let per_batch = self.config.granularity == Granularity::PerBatch;
        let score = if per_batch {
            cross_entropy.clone().mean_dim(0).expand([n, k])
        } else {
            cross_entropy.clone()
        };

        let keep = self.screen(score.clone(), n, k);
        let raw = self.raw_weights(&logits, score, n, k);
        let weights = normalise(raw, keep.clone());
        Ok(Selection {
            cross_entropy,
            keep,
            weights,
        })
    }

    /// The keep mask of the screening rule for scores `[N, K]` (lower is better): the one
    /// implementation of the rules, also used by [`crate::prescreen`] on `[1, K]` means.
    pub(crate) fn screen_scores(&self, score: Tensor<2>) -> Tensor<2, Bool> {
        let [n, k] = score.dims();
        self.screen(score, n, k)
    }

    fn screen(&self, score: Tensor<2>, n: usize, k: usize) -> Tensor<2, Bool> {
        let best = score.clone().min_dim(1).expand([n, k]);
        let is_best = score.clone().lower_equal(best.clone());
        let rule = match &self.config.screening {
            ScreeningRule::BelowMean => {
                let mean = score.clone().mean_dim(1);
                let bound = mean.clone() + mean.abs().mul_scalar(1e-6);
                score.lower_equal(bound.expand([n, k]))
            }
            ScreeningRule::TopK(top) if *top >= k => return all_true(&score),
            ScreeningRule::TopK(top) => {
                let kth = score.clone().sort(1).slice([0..n, top - 1..*top]);
                score.lower_equal(kth.expand([n, k]))
            }
            ScreeningRule::MaxCrossEntropy(max) => score.lower_equal_elem(*max),
            ScreeningRule::RelativeToBest(ratio) => {
                // Cross-entropies are >= 0, so the bound is >= the best; the relative
                // tolerance of BelowMean absorbs rounding.
                score.lower_equal(best.clone().mul_scalar(*ratio * (1.0 + 1e-6)))
            }
            ScreeningRule::KeepAll => return all_true(&score),
        };
        rule.bool_or(is_best)
    }

    fn raw_weights(&self, logits: &[Tensor<2>], score: Tensor<2>, n: usize, k: usize) -> Tensor<2> {
        match &self.config.weighting {
            Weighting::Softmax => {
                // Shifted by the best score so the best teacher has raw weight 1.
                let best = score.clone().min_dim(1).expand([n, k]);
                (score - best).div_scalar(-self.config.tau).exp()
            }
            Weighting::Average => score.ones_like(),
            Weighting::Confidence => {
                if k == 1 {
                    return score.ones_like();
                }
                softmax(score, 1)
                    .neg()
                    .add_scalar(1.0)
                    .div_scalar((k - 1) as f64)
            }
            Weighting::Entropy => {
                if k == 1 {
                    return score.ones_like();
                }
                let entropy = Tensor::cat(
                    logits
                        .iter()
                        .map(|z| prediction_entropy(z.clone()))
                        .collect(),
                    1,
                );
                let entropy = if self.config.granularity == Granularity::PerBatch {
                    entropy.mean_dim(0).expand([n, k])
                } else {
                    entropy
                };
                let total = entropy
                    .clone()
                    .sum_dim(1)
                    .clamp_min(f32::MIN_POSITIVE)
                    .expand([n, k]);
                (entropy / total)
                    .neg()
                    .add_scalar(1.0)
                    .div_scalar((k - 1) as f64)
            }
            Weighting::Fixed(weights) => {
                let values: Vec<f32> = weights.iter().map(|w| *w as f32).collect();
                Tensor::<2>::from_data(TensorData::new(values, [1, k]), &score.device())
                    .expand([n, k])
            }
        }
    }
}

/// Prediction entropy `-sum_c p log p` of each row of `logits`, `[N, 1]`.
fn prediction_entropy(logits: Tensor<2>) -> Tensor<2> {
    let log_probs = log_softmax(logits, 1);
    (log_probs.clone().exp() * log_probs).sum_dim(1).neg()
}

fn all_true(like: &Tensor<2>) -> Tensor<2, Bool> {
    like.zeros_like().equal_elem(0.0)
}

/// `keep * raw / sum(keep * raw)` per row; rows whose kept raw weights are all 0 share
/// equally among the kept teachers.
fn normalise(raw: Tensor<2>, keep: Tensor<2, Bool>) -> Tensor<2> {
    let [n, k] = raw.dims();
    let keep = keep.float();
    let masked = raw * keep.clone();
    let total = masked.clone().sum_dim(1);
    let empty = total.clone().lower_equal_elem(0.0).expand([n, k]);
    let uniform = keep.clone() / keep.sum_dim(1).expand([n, k]);
    (masked / total.clamp_min(f32::MIN_POSITIVE).expand([n, k])).mask_where(empty, uniform)
}
