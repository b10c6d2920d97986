//! A distillation run's burn-train folder: the metrics to register, the last complete
//! checkpoint (for a resume) and the per-epoch history read back from burn-train's logs.

use std::path::Path;

use burn::train::metric::{AccuracyInput, AccuracyMetric, Adaptor, LearningRateMetric, LossMetric};
use burn::train::{InferenceStep, LearnerModel, LearnerSummary, SupervisedTraining, TrainStep};
use serde::{Deserialize, Serialize};

use super::{LossPart, LossPartMetric, LossPartsInput, TeacherStat};

/// Registers the metrics of a plain classifier run ([`crate::train::Classifier`], or any
/// model whose outputs give accuracy and loss): accuracy (train and validation) and the
/// training loss, the first metrics [`DistillMetrics`] registers too.
///
/// ```no_run
/// use burn_distill::train::{Classifier, ClassifierMetrics};
/// # fn run(training: burn::train::SupervisedTraining<Classifier<burn_distill::models::Vgg>>) {
/// let training = training.classifier_metrics();
/// # }
/// ```
pub trait ClassifierMetrics: Sized {
    /// The run with accuracy (train and validation) and the training loss registered.
    fn classifier_metrics(self) -> Self;
}

impl<M> ClassifierMetrics for SupervisedTraining<M>
where
    M: LearnerModel,
    <M as TrainStep>::Output: Adaptor<AccuracyInput> + Adaptor<burn::train::metric::LossInput>,
    <M as InferenceStep>::Output: Adaptor<AccuracyInput>,
{
    fn classifier_metrics(self) -> Self {
        self.metric_train_numeric(AccuracyMetric::new())
            .metric_valid_numeric(AccuracyMetric::new())
            .metric_train_numeric(LossMetric::new())
    }
}

/// Registers the metrics [`read_history`] reads on a burn-train run of a
/// [`crate::Distiller`]: accuracy (train and validation), the loss and the learning rate;
/// each loss part ([`LossPart`]) and the feature term's scheduled weight; each teacher's keep
/// rate and mean weight ([`TeacherStat`]).
///
/// ```no_run
/// use burn_distill::train::DistillMetrics;
/// # fn run(training: burn::train::SupervisedTraining<burn_distill::Distiller<burn_distill::models::Vgg>>) {
/// let training = training.distill_metrics(3); // a distiller with 3 teachers
/// # }
/// ```
pub trait DistillMetrics: Sized {
    /// The run with the distiller's metrics for `teachers` teachers registered.
    fn distill_metrics(self, teachers: usize) -> Self;
}

impl<M> DistillMetrics for SupervisedTraining<M>
where
    M: LearnerModel,
    <M as TrainStep>::Output: Adaptor<LossPartsInput> + Adaptor<AccuracyInput>,
    <M as TrainStep>::Output: Adaptor<burn::train::metric::LossInput>,
    <M as InferenceStep>::Output: Adaptor<AccuracyInput>,
{
    fn distill_metrics(self, teachers: usize) -> Self {
        let mut training = self
            .classifier_metrics()
            .metric_train_numeric(LearningRateMetric::new())
            .metric_train_numeric(LossPartMetric::feature_weight());
        for part in [LossPart::Hard, LossPart::Soft, LossPart::Feature] {
            training = training.metric_train_numeric(LossPartMetric::new(part));
        }
        for k in 0..teachers {
            training = training
                .metric_train_numeric(LossPartMetric::teacher(TeacherStat::KeepRate, k))
                .metric_train_numeric(LossPartMetric::teacher(TeacherStat::MeanWeight, k));
        }
        training
    }
}

/// The last epoch whose model, optimizer and scheduler checkpoints are all in
/// `dir/checkpoint` (burn-train's `with_default_checkpointers` layout: `model-3.bpk`,
/// `optim-3.bpk`, `scheduler-3.bpk`), the epoch to pass to `SupervisedTraining::checkpoint`
/// on a resume. `None` when there is none (or no such folder). An epoch whose files were
/// only partly written, by a run killed while saving, is skipped.
pub fn last_checkpoint(dir: impl AsRef<Path>) -> Option<usize> {
    let dir = dir.as_ref().join("checkpoint");
    let epochs = std::fs::read_dir(&dir).ok()?.filter_map(|entry| {
        let name = entry.ok()?.file_name().into_string().ok()?;
        name.strip_prefix("model-")?
            .strip_suffix(".bpk")?
            .parse::<usize>()
            .ok()
    });
    epochs
        .filter(|e| {
            ["optim", "scheduler"]
                .iter()
                .all(|part| dir.join(format!("{part}-{e}.bpk")).is_file())
        })
        .max()
}

/// One epoch of a distillation run, as burn-train logged it (the epoch means of the metrics
/// [`DistillMetrics`] registers). A metric that was not logged reads as NaN (and its
/// teacher lists stay empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The epoch, from 1.
    pub epoch: usize,
    /// The learning rate (the epoch's mean over steps).
    pub learning_rate: f64,
    /// The total loss.
    pub loss: f64,
    /// The unweighted hard-label term.
    pub hard: f64,
    /// The unweighted soft term.
    pub soft: f64,
    /// The unweighted feature term.
    pub feature: f64,
    /// Accuracy on the (augmented) training batches, in `[0, 1]`.
    pub train_accuracy: f64,
    /// Accuracy on the loader given to burn-train for validation (a test split or a
    /// held-out one), in `[0, 1]`.
    pub valid_accuracy: f64,
    /// Per teacher: the fraction of samples it was kept for.
    pub keep_rate: Vec<f64>,
    /// Per teacher: its mean weight.
    pub mean_weight: Vec<f64>,
}

impl EpochRecord {
    /// Puts the per-teacher lists in the order the teachers were first given, for a run on
    /// some of them or on them reordered: `order[i]` is the given index of the run's teacher
    /// `i` (as `experiment::TeacherChoice::order` returns). The lists then follow
    /// increasing given index. A list whose length is not `order`'s is left as it is.
    ///
    /// ```
    /// # let mut record: burn_distill::train::EpochRecord = serde_json::from_str(r#"{"epoch": 1,
    /// #     "learning_rate": 0.1, "loss": 1, "hard": 1, "soft": 1, "feature": 0, "train_accuracy": 0.5,
    /// #     "valid_accuracy": 0.5, "keep_rate": [], "mean_weight": []}"#).unwrap();
    /// // A run on given teachers 2 and 0, in that order (the best first).
    /// record.keep_rate = vec![1.0, 0.25];
    /// record.in_given_order(&[2, 0]);
    /// assert_eq!(record.keep_rate, [0.25, 1.0]); // teacher 0, then teacher 2
    /// ```
    pub fn in_given_order(&mut self, order: &[usize]) {
        let mut by_given: Vec<usize> = (0..order.len()).collect();
        by_given.sort_by_key(|&i| order[i]);
        for list in [&mut self.keep_rate, &mut self.mean_weight] {
            if list.len() == order.len() {
                *list = by_given.iter().map(|&i| list[i]).collect();
            }
        }
    }

    /// One line per teacher (named by `names`, in the lists' order): its keep rate and mean
    /// weight in this epoch.
    ///
    /// # Panics
    /// When `names` has fewer names than the lists have teachers.
    pub fn describe_teachers(&self, names: &[&str]) -> String {
        let line = |(k, (kept, weight)): (usize, (&f64, &f64))| {
            let name = names[k];
            format!(
                "    teacher {name:<14} kept {:5.1}%  mean weight {weight:.3}\n",
                100.0 * kept
            )
        };
        (self.keep_rate.iter().zip(&self.mean_weight))
            .enumerate()
            .map(line)
            .collect()
    }
}

/// The per-epoch history of the burn-train run in `dir` of a distiller with `teachers`
/// teachers (its metrics registered with [`DistillMetrics`]).
///
/// # Errors
/// [`crate::Error::MissingData`] when `dir` holds no burn-train logs.
pub fn read_history(dir: impl AsRef<Path>, teachers: usize) -> crate::Result<Vec<EpochRecord>> {
    let dir = dir.as_ref();
    let mut names: Vec<String> = [
        "Accuracy",
        "Loss",
        "Learning Rate",
        "Loss (hard)",
        "Loss (soft)",
        "Loss (feature)",
    ]
    .map(String::from)
    .to_vec();
    for k in 0..teachers {
        names.push(format!("Keep rate (teacher {k})"));
        names.push(format!("Mean weight (teacher {k})"));
    }
    let summary = LearnerSummary::new(dir, &names).map_err(|reason| crate::Error::MissingData {
        path: dir.to_path_buf(),
        hint: format!("no burn-train logs to read: {reason}"),
    })?;
    let series = |split: &[burn::train::MetricSummary], name: &str| -> Vec<f64> {
        split
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.entries.iter().map(|e| e.value).collect())
            .unwrap_or_default()
    };
    let (train, valid) = (&summary.metrics.train, &summary.metrics.valid);
    let at = |name: &str, e: usize| series(train, name).get(e).copied().unwrap_or(f64::NAN);
    let valid_accuracy = series(valid, "Accuracy");
    Ok((0..summary.epochs)
        .map(|e| EpochRecord {
            epoch: e + 1,
            learning_rate: at("Learning Rate", e),
            loss: at("Loss", e),
            hard: at("Loss (hard)", e),
            soft: at("Loss (soft)", e),
            feature: at("Loss (feature)", e),
            train_accuracy: at("Accuracy", e) / 100.0,
            valid_accuracy: valid_accuracy.get(e).copied().unwrap_or(f64::NAN) / 100.0,
            keep_rate: (0..teachers)
                .map(|k| at(&format!("Keep rate (teacher {k})"), e))
                .collect(),
            mean_weight: (0..teachers)
                .map(|k| at(&format!("Mean weight (teacher {k})"), e))
                .collect(),
        })
        .collect())
}
