//! [`evaluate`]: accuracy, cross-entropy and per-class accuracy of any model on labelled
//! batches.

use burn::tensor::{Int, Tensor};

use crate::error::Error;
use crate::loss::cross_entropy_per_sample;
use crate::model::{DistillInput, FeatureModel};
use crate::teacher::{FrozenTeacher, Teacher};

/// Samples and correct predictions of one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassCount {
    /// Samples whose label is this class.
    pub samples: usize,
    /// Of those, how many the model got right.
    pub correct: usize,
}

impl ClassCount {
    /// `correct / samples`, or `None` for a class with no sample.
    pub fn accuracy(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.correct as f64 / self.samples as f64)
    }
}

/// What [`evaluate`] measured of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Fraction of samples whose top logit is the label.
    pub accuracy: f64,
    /// Mean cross-entropy against the labels (nats, at temperature 1).
    pub mean_cross_entropy: f64,
    /// Number of samples evaluated.
    pub samples: usize,
    /// Per class (index = label): samples and correct predictions.
    pub per_class: Vec<ClassCount>,
}

/// Accuracy, mean cross-entropy and per-class counts of any [`FeatureModel`] (a trained
/// student, a teacher before it is frozen) on labelled batches, in inference mode and
/// without autodiff. The sums stay on the device; one read at the end.
///
/// Through burn-train instead: wrap the model in `train::Classifier` (feature `train`), whose
/// `InferenceStep` gives burn-train's `ClassificationOutput`, and evaluate it with
/// `burn::train::EvaluatorBuilder` and burn-train's `AccuracyMetric` / `LossMetric`.
///
/// # Errors
/// [`Error::ShapeMismatch`] when no batch is given or labels do not match a batch;
/// [`Error::LabelOutOfRange`] for labels outside `0..C`; [`Error::NonFinite`] for NaN or
/// infinite logits.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use burn_distill::evaluate;
/// use burn_distill::models::CnnConfig;
///
/// let device = Device::flex();
/// let model = CnnConfig::new(4).with_width(2).init(&device);
/// let images = Tensor::<4>::ones([8, 3, 8, 8], &device);
/// let labels = Tensor::<1, Int>::from_ints([0, 1, 2, 3, 0, 1, 2, 3], &device);
/// let result = evaluate(&model, [(images, labels)]).unwrap();
/// assert_eq!(result.samples, 8);
/// assert_eq!(result.per_class[2].samples, 2);
/// assert!((0.0..=1.0).contains(&result.accuracy));
/// ```
pub fn evaluate<M, I>(
    model: &M,
    batches: impl IntoIterator<Item = (I, Tensor<1, Int>)>,
) -> crate::Result<Evaluation>
where
    M: FeatureModel<I> + Sync + 'static,
    I: DistillInput,
{
    let classes = model.num_classes();
    // FrozenTeacher runs the model as teachers run: inference mode, no autodiff graph.
    let frozen = FrozenTeacher::from_model("the model", model.clone());
    // [CE sum, correct, non-finite flag, per-class samples (C), per-class correct (C)].
    let mut sums = DeviceSums::default();
    let mut samples = 0;
    for (inputs, labels) in batches {
        let labels = labels.without_autodiff();
        let [n] = labels.dims();
        let batch = inputs.batch_size();
        if n != batch {
            return Err(Error::ShapeMismatch {
                context: "evaluation labels".into(),
                expected: vec![batch],
                found: vec![n],
            });
        }
        samples += n;
        let logits = frozen.forward(inputs).logits;
        let bad = logits.clone().is_finite().bool_not().any().float();
        let correct = logits
            .clone()
            .argmax(1)
            .reshape([n])
            .equal(labels.clone())
            .float();
        // Clamped so an out-of-range label cannot index outside the logits; the range is
        // checked at the end.
        let safe = labels.clone().clamp(0, classes as i64 - 1);
        let ce = cross_entropy_per_sample(logits, safe.clone())
            .sum()
            .reshape([1]);
        // [N, C]: row i is the one-hot of label i (a comparison, no host read).
        let class_ids = Tensor::<1, Int>::arange(0..classes as i64, &labels.device());
        let one_hot = safe
            .clone()
            .reshape([n, 1])
            .equal(class_ids.reshape([1, classes]))
            .float();
        let per_class_samples = one_hot.clone().sum_dim(0).reshape([classes]);
        let per_class_correct = (one_hot * correct.clone().reshape([n, 1]))
            .sum_dim(0)
            .reshape([classes]);
        let batch_totals = Tensor::cat(
            vec![
                ce,
                correct.sum().reshape([1]),
                bad,
                per_class_samples,
                per_class_correct,
            ],
            0,
        );
        sums.add(batch_totals, &labels);
    }
    let (totals, _) = sums.finish("evaluation data", classes)?;
    if totals[2] != 0.0 {
        return Err(Error::NonFinite {
            what: "the evaluated model's logits".into(),
        });
    }
    let per_class = (0..classes)
        .map(|c| ClassCount {
            samples: totals[3 + c].round() as usize,
            correct: totals[3 + classes + c].round() as usize,
        })
        .collect();
    Ok(Evaluation {
        accuracy: totals[1] / samples as f64,
        mean_cross_entropy: totals[0] / samples as f64,
        samples,
        per_class,
    })
}

/// Per-batch sums added up on the device, with the labels' smallest and largest value, read
/// back once at the end (what [`evaluate`] and [`crate::prescreen`] measure).
#[derive(Default)]
pub(crate) struct DeviceSums {
    totals: Option<Tensor<1>>,
    label_range: Option<(Tensor<1, Int>, Tensor<1, Int>)>,
}

impl DeviceSums {
    /// Adds one batch's sums and labels.
    pub(crate) fn add(&mut self, batch_totals: Tensor<1>, labels: &Tensor<1, Int>) {
        self.totals = Some(match self.totals.take() {
            Some(t) => t + batch_totals,
            None => batch_totals,
        });
        let (lo, hi) = (labels.clone().min(), labels.clone().max());
        self.label_range = Some(match self.label_range.take() {
            Some((a, b)) => (
                Tensor::cat(vec![a, lo], 0).min(),
                Tensor::cat(vec![b, hi], 0).max(),
            ),
            None => (lo, hi),
        });
    }

    /// The sums on the host, and the device they were on.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] naming `context` when no batch was added;
    /// [`Error::LabelOutOfRange`] when a label is outside `0..classes`.
    pub(crate) fn finish(
        self,
        context: &str,
        classes: usize,
    ) -> crate::Result<(Vec<f64>, burn::tensor::Device)> {
        let (Some(totals), Some((lo, hi))) = (self.totals, self.label_range) else {
            return Err(Error::ShapeMismatch {
                context: format!("{context} (no batch given)"),
                expected: vec![1],
                found: vec![0],
            });
        };
        let range = Tensor::cat(vec![lo, hi], 0)
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .expect("int data");
        if range[0] < 0 || range[1] >= classes as i64 {
            return Err(Error::LabelOutOfRange {
                min: range[0],
                max: range[1],
                classes,
            });
        }
        let device = totals.device();
        let totals = totals
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .expect("float data");
        Ok((totals, device))
    }
}
