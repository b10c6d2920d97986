//! Pre-screening: evaluate the teachers once on labelled data before training and drop the
//! ones the screening rule rejects, so their forward passes are never run again
//! ([`crate::evaluate`] measures one model the same way).

use std::sync::Arc;

use burn::tensor::{Int, Tensor, TensorData};

use crate::error::Error;
use crate::evaluate::DeviceSums;
use crate::loss::cross_entropy_per_sample;
use crate::model::DistillInput;
use crate::selector::ScreeningRule;
use crate::teacher::{Teacher, TeacherReplicas};

/// What [`prescreen`] measured and decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Prescreen {
    /// Each teacher's mean cross-entropy (nats) over the data, in the given order.
    pub mean_cross_entropy: Vec<f64>,
    /// Each teacher's accuracy over the data.
    pub accuracy: Vec<f64>,
    /// Indices of the kept teachers, in the given order. Never empty: the best teacher is
    /// always kept.
    pub kept: Vec<usize>,
    /// Number of samples evaluated.
    pub samples: usize,
}

impl Prescreen {
    /// The kept teachers out of `teachers` (the list given to [`prescreen`]).
    pub fn keep<I: DistillInput>(
        &self,
        teachers: &[Arc<dyn Teacher<I>>],
    ) -> Vec<Arc<dyn Teacher<I>>> {
        self.kept.iter().map(|&i| teachers[i].clone()).collect()
    }

    /// One line per teacher (named by `names`, in the given order): its mean cross-entropy,
    /// its accuracy and whether it was kept.
    ///
    /// ```
    /// use burn_distill::Prescreen;
    ///
    /// let result = Prescreen {
    ///     mean_cross_entropy: vec![0.9, 2.5],
    ///     accuracy: vec![0.75, 0.4],
    ///     kept: vec![0],
    ///     samples: 1000,
    /// };
    /// let lines = result.describe(&["vgg13", "weak"]);
    /// assert_eq!(lines.lines().nth(1).unwrap(), "    teacher weak           cross-entropy 2.500  accuracy  40.0%  dropped");
    /// ```
    ///
    /// # Panics
    /// When `names` has fewer names than there are teachers.
    pub fn describe(&self, names: &[&str]) -> String {
        assert!(names.len() >= self.accuracy.len(), "one name per teacher");
        let line = |(i, name): (usize, &&str)| {
            let verdict = if self.kept.contains(&i) {
                "kept"
            } else {
                "dropped"
            };
            let (ce, accuracy) = (self.mean_cross_entropy[i], 100.0 * self.accuracy[i]);
            format!(
                "    teacher {name:<14} cross-entropy {ce:.3}  accuracy {accuracy:5.1}%  {verdict}\n"
            )
        };
        names
            .iter()
            .take(self.accuracy.len())
            .enumerate()
            .map(line)
            .collect()
    }
}

/// Runs every teacher on `batches` (inputs of `N` samples, labels `[N]`), measures
/// each one's mean cross-entropy and accuracy, and applies `rule` to the teachers as a
/// whole: [`ScreeningRule::BelowMean`] keeps teachers whose mean cross-entropy is at most
/// the mean over teachers (relative tolerance `1e-6`), [`ScreeningRule::TopK`] the `k`
/// best, [`ScreeningRule::MaxCrossEntropy`] those at most the bound,
/// [`ScreeningRule::KeepAll`] all. The best teacher is always kept.
///
/// The teachers run on the batches' device: each is placed there once
/// ([`Teacher::to_device`]; one that cannot move runs where it is). Statistics are summed on
/// the device and read back once at the end. This is also where
/// broken teachers are caught cheaply: a NaN or infinite logit fails the call.
///
/// # Errors
/// [`Error::NoTeachers`] for an empty list; [`Error::InvalidConfig`] for `TopK(0)`,
/// `TopK(k > K)`, or a NaN or negative `MaxCrossEntropy`; [`Error::ShapeMismatch`] when
/// no batch is given or the labels do not match a batch; [`Error::LabelOutOfRange`] for
/// labels outside `0..C`; [`Error::NonFinite`] naming a teacher whose logits hold NaN or
/// infinity.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use burn::tensor::{Device, Int, Tensor};
/// use burn_distill::models::CnnConfig;
/// use burn_distill::{FrozenTeacher, ScreeningRule, Teacher, prescreen};
///
/// let device = Device::default();
/// let teachers: Vec<Arc<dyn Teacher>> = (0..3)
///     .map(|i| {
///         let model = CnnConfig::new(4).with_width(2).init(&device);
///         Arc::new(FrozenTeacher::from_model(format!("t{i}"), model)) as Arc<dyn Teacher>
///     })
///     .collect();
/// let images = Tensor::<4>::ones([8, 3, 8, 8], &device);
/// let labels = Tensor::<1, Int>::from_ints([0, 1, 2, 3, 0, 1, 2, 3], &device);
/// let result = prescreen(&teachers, [(images, labels)], &ScreeningRule::TopK(2)).unwrap();
/// assert_eq!(result.kept.len(), 2);
/// let kept = result.keep(&teachers);
/// ```
pub fn prescreen<I: DistillInput>(
    teachers: &[Arc<dyn Teacher<I>>],
    batches: impl IntoIterator<Item = (I, Tensor<1, Int>)>,
    rule: &ScreeningRule,
) -> crate::Result<Prescreen> {
    let k = teachers.len();
    if k == 0 {
        return Err(Error::NoTeachers);
    }
    // Validates the rule for K teachers (TopK range, MaxCrossEntropy sign); its screening
    // is applied to the teachers' mean cross-entropies at the end.
    let selector = crate::selector::TeacherSelectorConfig::new()
        .with_screening(rule.clone())
        .init(k)?;
    let classes = teachers[0].num_classes();
    // Per teacher: [sum of CE, correct count, non-finite flag]; plus label min and max.
    let mut sums = DeviceSums::default();
    let mut samples = 0;
    // The teachers as they run on the batches' device (placed once, at the first batch); a
    // teacher that cannot move runs where it is.
    let replicas = TeacherReplicas::new(teachers.into(), None, false);
    let mut placed: Option<Arc<[Arc<dyn Teacher<I>>]>> = None;
    for (inputs, labels) in batches {
        let inputs = inputs.without_autodiff();
        let labels = labels.without_autodiff();
        let teachers = match &placed {
            Some(set) => set.clone(),
            None => {
                let set = replicas.on(&inputs.device().inner())?;
                placed = Some(set.clone());
                set
            }
        };
        let [n] = labels.dims();
        let batch = inputs.batch_size();
        if n != batch {
            return Err(Error::ShapeMismatch {
                context: "pre-screening labels".into(),
                expected: vec![batch],
                found: vec![n],
            });
        }
        samples += n;
        let mut parts = Vec::with_capacity(3 * k);
        for teacher in teachers.iter() {
            let logits = teacher.forward(inputs.clone()).logits;
            let bad = logits.clone().is_finite().bool_not().any().float();
            let hits = logits
                .clone()
                .argmax(1)
                .reshape([n])
                .equal(labels.clone())
                .float()
                .sum();
            // Clamp the labels so that an out-of-range label cannot index outside the
            // logits; the range itself is checked at the end.
            let safe = labels.clone().clamp(0, classes as i64 - 1);
            let ce = cross_entropy_per_sample(logits, safe).sum().reshape([1]);
            parts.extend([ce, hits, bad]);
        }
        sums.add(Tensor::cat(parts, 0), &labels);
    }
    let (totals, device) = sums.finish("pre-screening data", classes)?;
    let mut mean_cross_entropy = Vec::with_capacity(k);
    let mut accuracy = Vec::with_capacity(k);
    for (i, teacher) in teachers.iter().enumerate() {
        if totals[3 * i + 2] != 0.0 {
            return Err(Error::NonFinite {
                what: format!(
                    "teacher {i} ({}) logits during pre-screening",
                    teacher.name()
                ),
            });
        }
        mean_cross_entropy.push(totals[3 * i] / samples as f64);
        accuracy.push(totals[3 * i + 1] / samples as f64);
    }
    let scores = Tensor::<1>::from_data(
        TensorData::new(mean_cross_entropy.iter().map(|v| *v as f32).collect(), [k]),
        &device,
    )
    .reshape([1, k]);
    let keep = selector
        .screen_scores(scores)
        .int()
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("int data");
    let kept = (0..k).filter(|&i| keep[i] != 0).collect();
    Ok(Prescreen {
        mean_cross_entropy,
        accuracy,
        kept,
        samples,
    })
}
