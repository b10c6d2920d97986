//! What each teacher-weighting rule makes of the teachers, before any training: the soft
//! target a student would learn from under each rule, measured on labelled data.

use burn::tensor::activation::softmax;
use burn::tensor::{Int, Tensor};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::selector::TeacherSelector;

/// One rule's numbers in a [`SoftTargetReport`]. With the rule's weights `w[i, k]` and the
/// soft target `q[i] = Σ_k w[i, k] · softmax(z_k[i] / T)`:
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleReport {
    /// Fraction of samples whose target's top class is the label: `mean_i [argmax q[i] = y[i]]`.
    pub target_accuracy: f64,
    /// The target's mean probability of the label, `mean_i q[i, y[i]]`.
    pub label_mass: f64,
    /// Mean total weight on teachers whose top class is the label.
    pub weight_on_right: f64,
    /// The same, over the samples the strongest teacher gets wrong (0 when it gets none wrong).
    pub weight_on_right_when_best_wrong: f64,
    /// Fraction of the samples the strongest teacher gets wrong whose target's top class is
    /// the label.
    pub target_accuracy_when_best_wrong: f64,
    /// Per teacher: the fraction of samples it was kept for.
    pub keep_rate: Vec<f64>,
    /// Per teacher: its mean weight.
    pub mean_weight: Vec<f64>,
}

/// What [`SoftTargetAudit::finish`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftTargetReport {
    /// Samples seen.
    pub samples: usize,
    /// Each teacher's top-1 accuracy on them.
    pub teacher_accuracy: Vec<f64>,
    /// How many of them the strongest teacher (the `strongest` given to
    /// [`SoftTargetAudit::new`]) gets wrong.
    pub strongest_wrong: usize,
    /// One report per selector, in the order given.
    pub rules: Vec<RuleReport>,
}

impl SoftTargetReport {
    /// The rules as a markdown table, one row per rule in the order given (`rules` names
    /// them, `teachers` heads the per-teacher columns): target accuracy and mass on the
    /// label, weight on right teachers (overall and where the strongest is wrong), target
    /// accuracy where the strongest is wrong, keep rate and mean weight per teacher.
    ///
    /// # Panics
    /// When `rules` has fewer names than the report has rules.
    pub fn markdown(&self, rules: &[&str], teachers: &[&str]) -> String {
        assert!(rules.len() >= self.rules.len(), "one name per rule");
        let mut s = format!(
            "| rule | target top-1 = label | target mass on label | weight on right teachers | where the \
             strongest is wrong: weight on right teachers | … target top-1 = label | keep rate ({}) | mean \
             weight |\n|---|---:|---:|---:|---:|---:|---|---|\n",
            teachers.join(", ")
        );
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        for (name, r) in rules.iter().zip(&self.rules) {
            s += &format!(
                "| {name} | {:.2}% | {:.3} | {:.3} | {:.3} | {:.2}% | {} | {} |\n",
                100.0 * r.target_accuracy,
                r.label_mass,
                r.weight_on_right,
                r.weight_on_right_when_best_wrong,
                100.0 * r.target_accuracy_when_best_wrong,
                list(&r.keep_rate),
                list(&r.mean_weight)
            );
        }
        s
    }
}

/// Accumulates, batch by batch, how each of several selectors weights the teachers and what
/// soft target results (see [`RuleReport`]). The selectors run exactly as in training; sums
/// stay on the device and are read once, by [`SoftTargetAudit::finish`]. A rule that cannot
/// make a better target than the strongest teacher alone cannot make a better student
/// through the soft term.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use burn_distill::{SoftTargetAudit, TeacherSelectorConfig, Weighting};
///
/// let device = Device::default();
/// let average = TeacherSelectorConfig::unscreened(Weighting::Average).init(2).unwrap();
/// let mut audit = SoftTargetAudit::new(vec![average], 1.0, 0).unwrap();
/// // Teacher 0 is right on the first sample only, teacher 1 on both.
/// let t0 = Tensor::<2>::from_floats([[5.0, 0.0], [5.0, 0.0]], &device);
/// let t1 = Tensor::<2>::from_floats([[5.0, 0.0], [0.0, 5.0]], &device);
/// audit.update(&[t0, t1], Tensor::<1, Int>::from_ints([0, 1], &device)).unwrap();
/// let report = audit.finish().unwrap();
/// assert_eq!(report.teacher_accuracy, vec![0.5, 1.0]);
/// assert_eq!(report.strongest_wrong, 1);
/// // Equal weights: on the second sample half the weight is on the right teacher.
/// assert!((report.rules[0].weight_on_right - 0.75).abs() < 1e-6);
/// assert!((report.rules[0].weight_on_right_when_best_wrong - 0.5).abs() < 1e-6);
/// ```
#[derive(Debug)]
pub struct SoftTargetAudit {
    selectors: Vec<TeacherSelector>,
    temperature: f64,
    strongest: usize,
    samples: usize,
    /// Per rule: [target hits, label mass, weight on right, the same where the strongest is
    /// wrong, target hits where it is wrong], keep counts and weight sums per teacher.
    sums: Vec<Option<(Tensor<1>, Tensor<1>, Tensor<1>)>>,
    /// Per teacher hits, then (last entry) the strongest teacher's misses.
    hits: Option<Tensor<1>>,
}

impl SoftTargetAudit {
    /// An audit of `selectors` (built for the same number of teachers `K`), soft targets at
    /// `temperature`, "the strongest teacher" being teacher `strongest`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when there is no selector, the selectors differ in `K`,
    /// `strongest` is not below `K`, or the temperature is not finite and positive.
    pub fn new(
        selectors: Vec<TeacherSelector>,
        temperature: f64,
        strongest: usize,
    ) -> crate::Result<Self> {
        crate::error::check_positive("temperature", temperature)?;
        let k = selectors
            .first()
            .map(TeacherSelector::num_teachers)
            .unwrap_or(0);
        let invalid = |field, value: String, reason| Error::InvalidConfig {
            field,
            value,
            reason,
        };
        if selectors.is_empty() || selectors.iter().any(|s| s.num_teachers() != k) {
            let counts: Vec<usize> = selectors
                .iter()
                .map(TeacherSelector::num_teachers)
                .collect();
            return Err(invalid(
                "selectors",
                format!("{counts:?} teachers"),
                "give one or more, for the same teachers",
            ));
        }
        if strongest >= k {
            return Err(invalid(
                "strongest",
                format!("{strongest} (of {k} teachers)"),
                "must be a teacher's index",
            ));
        }
        let sums = vec![None; selectors.len()];
        Ok(Self {
            selectors,
            temperature,
            strongest,
            samples: 0,
            sums,
            hits: None,
        })
    }

    /// Adds one batch: the teachers' logits (`K` tensors `[N, C]`) and the labels `[N]`.
    ///
    /// # Errors
    /// As [`TeacherSelector::select`]: [`Error::ShapeMismatch`] when the number of
    /// teachers or a shape does not fit.
    pub fn update(
        &mut self,
        teacher_logits: &[Tensor<2>],
        labels: Tensor<1, Int>,
    ) -> crate::Result<()> {
        let selections = self
            .selectors
            .iter()
            .map(|s| s.select(teacher_logits, labels.clone()))
            .collect::<crate::Result<Vec<_>>>()?;
        let [n] = labels.dims();
        let k = teacher_logits.len();
        self.samples += n;
        let label_column = labels.reshape([n, 1]);
        let right = |z: Tensor<2>| z.argmax(1).equal(label_column.clone()).float();
        let logits: Vec<Tensor<2>> = teacher_logits
            .iter()
            .map(|z| z.clone().without_autodiff())
            .collect();
        let right_matrix = Tensor::cat(logits.iter().cloned().map(right).collect(), 1); // [N, K]
        let s = self.strongest;
        let best_wrong = right_matrix
            .clone()
            .slice([0..n, s..s + 1])
            .neg()
            .add_scalar(1.0); // [N, 1]
        let hits = Tensor::cat(
            vec![
                right_matrix.clone().sum_dim(0).reshape([k]),
                best_wrong.clone().sum().reshape([1]),
            ],
            0,
        );
        self.hits = Some(self.hits.take().map_or(hits.clone(), |h| h + hits));
        let probs: Vec<Tensor<2>> = logits
            .iter()
            .map(|z| softmax(z.clone().div_scalar(self.temperature), 1))
            .collect();
        for (sums, selection) in self.sums.iter_mut().zip(selections) {
            let w = selection.weights.clone();
            let target = probs
                .iter()
                .enumerate()
                .map(|(j, p)| p.clone() * w.clone().slice([0..n, j..j + 1]))
                .reduce(|a, b| a + b)
                .expect("one teacher at least");
            let target_right = right(target.clone());
            let on_right = (w * right_matrix.clone()).sum_dim(1); // [N, 1]
            let scalars = Tensor::cat(
                vec![
                    target_right.clone().sum().reshape([1]),
                    target.gather(1, label_column.clone()).sum().reshape([1]),
                    on_right.clone().sum().reshape([1]),
                    (on_right * best_wrong.clone()).sum().reshape([1]),
                    (target_right * best_wrong.clone()).sum().reshape([1]),
                ],
                0,
            );
            let keep = selection.keep_rate().mul_scalar(n as f64);
            let weight = selection.mean_weight().mul_scalar(n as f64);
            *sums = Some(match sums.take() {
                Some((a, b, c)) => (a + scalars, b + keep, c + weight),
                None => (scalars, keep, weight),
            });
        }
        Ok(())
    }

    /// Runs `teachers` (inference only, in the selectors' order) on every batch of
    /// `batches` (inputs of `N` samples, labels `[N]`), [`SoftTargetAudit::update`]s with
    /// their logits, and returns the report ([`SoftTargetAudit::finish`]).
    ///
    /// # Errors
    /// As [`SoftTargetAudit::update`] and [`SoftTargetAudit::finish`].
    pub fn run<I: crate::DistillInput>(
        mut self,
        teachers: &[std::sync::Arc<dyn crate::Teacher<I>>],
        batches: impl IntoIterator<Item = (I, Tensor<1, Int>)>,
    ) -> crate::Result<SoftTargetReport> {
        for (inputs, labels) in batches {
            let logits: Vec<Tensor<2>> = (teachers.iter())
                .map(|t| t.forward(inputs.clone()).logits)
                .collect();
            self.update(&logits, labels)?;
        }
        self.finish()
    }

    /// The report over every batch given.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when no batch (or only empty ones) was given.
    pub fn finish(self) -> crate::Result<SoftTargetReport> {
        let read = |t: Tensor<1>| -> Vec<f64> {
            t.into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .unwrap_or_default()
        };
        let (Some(hits), true) = (self.hits, self.samples > 0) else {
            return Err(Error::ShapeMismatch {
                context: "audit: samples given".into(),
                expected: vec![1],
                found: vec![0],
            });
        };
        let n = self.samples as f64;
        let mut hits = read(hits);
        let strongest_wrong = hits.pop().unwrap_or(0.0);
        let wrong = strongest_wrong.max(1.0);
        let rules = self
            .sums
            .into_iter()
            .flatten()
            .map(|(scalars, keep, weight)| {
                let s = read(scalars);
                RuleReport {
                    target_accuracy: s[0] / n,
                    label_mass: s[1] / n,
                    weight_on_right: s[2] / n,
                    weight_on_right_when_best_wrong: s[3] / wrong,
                    target_accuracy_when_best_wrong: s[4] / wrong,
                    keep_rate: read(keep).into_iter().map(|x| x / n).collect(),
                    mean_weight: read(weight).into_iter().map(|x| x / n).collect(),
                }
            });
        Ok(SoftTargetReport {
            samples: self.samples,
            teacher_accuracy: hits.into_iter().map(|h| h / n).collect(),
            strongest_wrong: strongest_wrong.round() as usize,
            rules: rules.collect(),
        })
    }
}
