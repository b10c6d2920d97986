//! The stages' shared pieces: data, models, one burn-train loop (`fit`) for teachers, the
//! student alone and every distillation method, evaluation and the results table.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::module::Module;
use burn::optim::SgdConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::LrSchedulerConfig;
use burn::optim::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::optim::momentum::MomentumConfig;
use burn::tensor::{Device, Int, Tensor};
use burn::train::metric::{AccuracyInput, AccuracyMetric, Adaptor, LossInput, LossMetric};
use burn::train::{InferenceStep, Learner, LearnerSummary, SupervisedTraining, TrainStep};
use burn_distill::data::{
    Augmentation, CifarVariant, EpochLoader, FASHION_MNIST_DIR, FASHION_MNIST_MEAN,
    FASHION_MNIST_STD, ImageBatcher, ImageData, Split, cifar, load_fashion_mnist,
};
use burn_distill::files::{PytorchLayout, load_weights_with_layout, save_weights};
use burn_distill::models::{ResNet, ResNetConfig, Vgg, VggConfig, parameter_count};
use burn_distill::train::{Classifier, LossPart, LossPartMetric, ProgressRenderer, TeacherStat};
use burn_distill::{
    DistillBatch, FeatureModel, FeatureSpec, FrozenTeacher, ModelOutput, Prescreen, ScreeningRule,
    Teacher, evaluate, prescreen,
};
use serde::{Deserialize, Serialize};

use crate::args::{Arch, Cli, DatasetChoice, RunConfig};

pub type Loader = Arc<dyn DataLoader<DistillBatch>>;

/// Everything the stages share.
pub struct Context<'a> {
    pub cli: &'a Cli,
    pub config: &'a RunConfig,
    pub device: Device,
    pub train: Arc<ImageData>,
    pub eval: Arc<ImageData>,
    mean: Vec<f32>,
    std: Vec<f32>,
    augmentation: Augmentation,
}

/// Any of the example's architectures, as one module type. (One value per run: the size
/// difference of the variants does not matter.)
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Net {
    Vgg(Vgg),
    ResNet(ResNet),
}

impl FeatureModel for Net {
    fn forward_features(&self, x: Tensor<4>) -> ModelOutput {
        match self {
            Net::Vgg(m) => m.forward_features(x),
            Net::ResNet(m) => m.forward_features(x),
        }
    }

    fn num_classes(&self) -> usize {
        match self {
            Net::Vgg(m) => m.num_classes(),
            Net::ResNet(m) => m.num_classes(),
        }
    }

    fn feature_specs(&self) -> Option<Vec<FeatureSpec>> {
        match self {
            Net::Vgg(m) => m.feature_specs(),
            Net::ResNet(m) => m.feature_specs(),
        }
    }
}

impl PytorchLayout for Net {
    /// The architecture's own rules, then its variant name in front of every path (an enum
    /// module's paths start with the variant: `Vgg.stages...`).
    fn pytorch_key_remapping(&self) -> Vec<(String, String)> {
        let (mut rules, variant) = match self {
            Net::Vgg(m) => (m.pytorch_key_remapping(), "Vgg"),
            Net::ResNet(m) => (m.pytorch_key_remapping(), "ResNet"),
        };
        rules.push((r"^(.*)$".into(), format!("{variant}.$1")));
        rules
    }
}

impl Context<'_> {
    /// A model of `arch` with first-stage width `width`, initialised from the device's seed.
    pub fn net(&self, arch: Arch, width: usize) -> Result<Net, String> {
        let (classes, channels) = (self.train.num_classes, self.train.channels);
        let device = self.device.clone().autodiff();
        let resnet = |depth| {
            ResNetConfig::new(depth, classes)
                .with_widths([(width / 2).max(1), width, 2 * width, 4 * width])
                .with_in_channels(channels)
                .init(&device)
                .map(Net::ResNet)
                .map_err(|e| e.to_string())
        };
        let vgg = |config: VggConfig| {
            Net::Vgg(
                config
                    .with_width(width)
                    .with_in_channels(channels)
                    .init(&device),
            )
        };
        match arch {
            Arch::Vgg8 => Ok(vgg(VggConfig::vgg8(classes))),
            Arch::Vgg13 => Ok(vgg(VggConfig::vgg13(classes))),
            Arch::Resnet8x4 => resnet(8),
            Arch::Resnet32x4 => resnet(32),
        }
    }

    /// The training loader: augmented, shuffled anew each epoch, resumed after
    /// `epochs_done` epochs (the library's `EpochLoader`: exactly the batches of an
    /// uninterrupted run).
    pub fn train_loader(&self, seed: u64, epochs_done: usize) -> Loader {
        let batcher = self.batcher(Some(self.augmentation), seed);
        let device = self.device.clone().autodiff();
        let loader = EpochLoader::new(
            self.train.clone(),
            batcher,
            self.config.batch_size,
            device,
            seed,
        );
        Arc::new(loader.resume_after(epochs_done))
    }

    /// An un-augmented loader in order, without autodiff.
    pub fn eval_loader(&self, data: &Arc<ImageData>) -> Loader {
        DataLoaderBuilder::new(self.batcher(None, 0))
            .batch_size(256)
            .set_device(self.device.clone())
            .build(data.clone())
    }

    fn batcher(&self, augmentation: Option<Augmentation>, seed: u64) -> ImageBatcher {
        let shape = [self.train.channels, self.train.height, self.train.width];
        ImageBatcher::new(shape, &self.mean, &self.std, augmentation, seed)
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.train.labels.len().div_ceil(self.config.batch_size)
    }

    /// `data` as un-augmented batches in order.
    fn batches(&self, data: &Arc<ImageData>) -> Result<Vec<(Tensor<4>, Tensor<1, Int>)>, String> {
        self.eval_loader(data)
            .iter()
            .map(|b| {
                b.map(|b| (b.inputs, b.labels))
                    .map_err(|e| format!("cannot read a batch: {e}"))
            })
            .collect()
    }

    /// The teachers' accuracy and cross-entropy on `data`, and which are at or below the
    /// mean cross-entropy (the library's `prescreen`).
    pub fn evaluate(
        &self,
        models: &[Arc<dyn Teacher>],
        data: &Arc<ImageData>,
    ) -> Result<Prescreen, String> {
        prescreen(models, self.batches(data)?, &ScreeningRule::BelowMean).map_err(|e| e.to_string())
    }

    /// Accuracy of one model on the evaluation split (the library's `evaluate`).
    pub fn accuracy(&self, model: &Net) -> Result<f64, String> {
        Ok(evaluate(model, self.batches(&self.eval)?)
            .map_err(|e| e.to_string())?
            .accuracy)
    }
}

/// Loads the data the options ask for, with the normalisation and augmentation it needs.
pub fn context<'a>(cli: &'a Cli, config: &'a RunConfig) -> Result<(Context<'a>, String), String> {
    let name = format!("{:?}", config.device).to_lowercase();
    let device = burn_distill::devices::parse_device(&name).map_err(|e| e.to_string())?;
    let split_note = "\n(or point --data-dir at the folder holding the files)";
    type Load = Box<dyn Fn(Split) -> burn_distill::Result<ImageData>>;
    let (load, source, mean, std, augmentation): (Load, String, Vec<f32>, Vec<f32>, Augmentation) =
        match config.dataset {
            DatasetChoice::FashionMnist => {
                let dir = cli
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(FASHION_MNIST_DIR));
                let source = dir.display().to_string();
                let load = Box::new(move |split| load_fashion_mnist(&dir, split));
                (
                    load,
                    source,
                    FASHION_MNIST_MEAN.to_vec(),
                    FASHION_MNIST_STD.to_vec(),
                    Augmentation {
                        padding: 2,
                        flip: true,
                    },
                )
            }
            dataset => {
                let variant = if dataset == DatasetChoice::Cifar10 {
                    CifarVariant::Cifar10
                } else {
                    CifarVariant::Cifar100
                };
                let found = cifar(variant, cli.data_dir.as_deref(), !cli.no_download)
                    .map_err(|e| e.to_string())?;
                let source = found.path().display().to_string();
                let (mean, std) = variant.normalization();
                let load = Box::new(move |split| found.load(split));
                (
                    load,
                    source,
                    mean.to_vec(),
                    std.to_vec(),
                    Augmentation {
                        padding: 4,
                        flip: true,
                    },
                )
            }
        };
    let load = |split| load(split).map_err(|e| format!("{e}{split_note}"));
    let (mut train, mut eval) = match config.valid_from_train {
        None => (load(Split::Train)?, load(Split::Test)?),
        Some(n) => {
            // A stratified, seeded hold-out of the training images, used as "validation".
            let all = load(Split::Train)?;
            let fraction = n as f64 / all.labels.len() as f64;
            if fraction >= 1.0 {
                return Err(format!(
                    "--valid-from-train {n}: there are only {} training images",
                    all.labels.len()
                ));
            }
            all.stratified_split(fraction, config.seed)
        }
    };
    if let Some(n) = config.limit_train {
        train.truncate(n);
    }
    if let Some(n) = config.limit_test {
        eval.truncate(n);
    }
    let ctx = Context {
        cli,
        config,
        device,
        train: Arc::new(train),
        eval: Arc::new(eval),
        mean,
        std,
        augmentation,
    };
    Ok((ctx, source))
}

/// SGD with momentum 0.9 and weight decay 5e-4 (CRD / CA-MKD's recipe).
fn optimizer() -> burn::optim::ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init()
}

/// The learning rate in `epoch` (0-based): `lr · 0.1^(decay points passed)`.
pub fn learning_rate(config: &RunConfig, epoch: usize, epochs: usize) -> f64 {
    config.lr
        * 0.1f64.powi(
            decay_epochs(config, epochs)
                .iter()
                .filter(|&&at| epoch >= at)
                .count() as i32,
        )
}

/// The epochs (1..epochs) after which the learning rate drops.
fn decay_epochs(config: &RunConfig, epochs: usize) -> Vec<usize> {
    let mut at: Vec<usize> = config
        .lr_decay_at
        .iter()
        .map(|f| (f * epochs as f64).round() as usize)
        .filter(|&e| e > 0 && e < epochs)
        .collect();
    at.dedup();
    at
}

/// One burn-train run of `model`: SGD, the step schedule, accuracy and loss metrics (plus
/// `metrics`), checkpoints in `dir/checkpoint`, resumed from epoch `resume_from` when given.
pub fn fit<M>(
    ctx: &Context,
    model: M,
    dir: &Path,
    epochs: usize,
    seed: u64,
    resume_from: usize,
    metrics: impl FnOnce(SupervisedTraining<M>) -> SupervisedTraining<M>,
) -> Result<M, String>
where
    M: burn::train::LearnerModel
        + TrainStep<Input = DistillBatch>
        + InferenceStep<Input = DistillBatch>,
    <M as TrainStep>::Output: Adaptor<AccuracyInput> + Adaptor<LossInput>,
    <M as InferenceStep>::Output: Adaptor<AccuracyInput> + Adaptor<LossInput>,
{
    let steps = ctx.steps_per_epoch();
    let decays = decay_epochs(ctx.config, epochs);
    let schedulers = (0..=decays.len())
        .map(|i| LrSchedulerConfig::Constant(ctx.config.lr * 0.1f64.powi(i as i32)))
        .collect();
    let milestones = decays.iter().map(|e| e * steps).collect();
    let schedule = SequentialLrSchedulerConfig::new(schedulers, milestones).init()?;
    let valid = ctx.eval_loader(&ctx.eval);
    let mut training = SupervisedTraining::new(dir, ctx.train_loader(seed, resume_from), valid)
        .metric_train_numeric(AccuracyMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        .metric_train_numeric(LossMetric::new())
        .with_default_checkpointers()
        .renderer(Box::new(ProgressRenderer::new()))
        .num_epochs(epochs);
    if resume_from > 0 {
        training = training.checkpoint(resume_from);
    }
    let result = metrics(training).launch(Learner::new(model, optimizer(), schedule));
    match result.error {
        Some(error) => Err(format!("training stopped: {error:?}")),
        None => Ok(result.model),
    }
}

/// The last epoch whose model, optimizer and scheduler checkpoints are all in `dir`.
pub fn last_checkpoint(dir: &Path) -> Option<usize> {
    let epochs = std::fs::read_dir(dir.join("checkpoint"))
        .ok()?
        .filter_map(|entry| {
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
                .all(|p| dir.join(format!("checkpoint/{p}-{e}.bpk")).is_file())
        })
        .max()
}

/// Per-epoch log of a distillation, read back from burn-train's metric logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub lr: f64,
    pub loss: f64,
    pub hard: f64,
    pub soft: f64,
    pub feature: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    /// Per teacher: fraction of samples for which it was kept.
    pub keep_rate: Vec<f64>,
    /// Per teacher: mean weight.
    pub mean_weight: Vec<f64>,
}

/// The history of the run in `dir` with `teachers` teachers.
pub fn history(
    ctx: &Context,
    dir: &Path,
    epochs: usize,
    teachers: usize,
) -> Result<Vec<EpochLog>, String> {
    let mut names: Vec<String> = [
        "Accuracy",
        "Loss",
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
    let summary = LearnerSummary::new(dir, &names)?;
    let series = |split: &[burn::train::MetricSummary], name: &str| -> Vec<f64> {
        split
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.entries.iter().map(|e| e.value).collect())
            .unwrap_or_default()
    };
    let (train, valid) = (&summary.metrics.train, &summary.metrics.valid);
    let at = |values: &[f64], e: usize| values.get(e).copied().unwrap_or(f64::NAN);
    let (accuracy, loss) = (series(train, "Accuracy"), series(train, "Loss"));
    let (hard, soft, feature) = (
        series(train, "Loss (hard)"),
        series(train, "Loss (soft)"),
        series(train, "Loss (feature)"),
    );
    let test = series(valid, "Accuracy");
    let per_teacher = |stat: &str, e: usize| -> Vec<f64> {
        (0..teachers)
            .map(|k| at(&series(train, &format!("{stat} (teacher {k})")), e))
            .collect()
    };
    Ok((0..summary.epochs.min(epochs))
        .map(|e| EpochLog {
            epoch: e + 1,
            lr: learning_rate(ctx.config, e, epochs),
            loss: at(&loss, e),
            hard: at(&hard, e),
            soft: at(&soft, e),
            feature: at(&feature, e),
            train_accuracy: at(&accuracy, e) / 100.0,
            test_accuracy: at(&test, e) / 100.0,
            keep_rate: per_teacher("Keep rate", e),
            mean_weight: per_teacher("Mean weight", e),
        })
        .collect())
}

/// The distiller's metrics: every loss term and each teacher's keep rate and mean weight.
pub fn distill_metrics<M>(
    teachers: usize,
) -> impl FnOnce(SupervisedTraining<M>) -> SupervisedTraining<M>
where
    M: burn::train::LearnerModel,
    <M as TrainStep>::Output: Adaptor<burn_distill::train::LossPartsInput>,
{
    move |mut training| {
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

/// Plain cross-entropy training of `model` with the same loop (teachers, the student alone).
pub fn train_classifier(
    ctx: &Context,
    model: Net,
    dir: &Path,
    epochs: usize,
    seed: u64,
) -> Result<Net, String> {
    let resume = if ctx.cli.resume {
        last_checkpoint(dir).unwrap_or(0).min(epochs)
    } else {
        0
    };
    let trained = fit(
        ctx,
        Classifier::new(model),
        dir,
        epochs,
        seed,
        resume,
        |t| t,
    )?;
    Ok(trained.model)
}

/// One row of the results table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelReport {
    pub name: String,
    pub params: usize,
    pub bytes: u64,
    pub test_accuracy: f64,
}

/// The frozen teachers and their rows of the results table.
pub type LoadedTeachers = (Vec<Arc<dyn Teacher>>, Vec<ModelReport>);

/// Loads (or, when `train` is set and no weights exist yet, trains) every teacher, and
/// reports each one's parameters, file size and accuracy.
pub fn teachers(ctx: &Context, train: bool) -> Result<LoadedTeachers, String> {
    let out = &ctx.cli.out;
    let mut teachers: Vec<Arc<dyn Teacher>> = Vec::new();
    let mut sizes = Vec::new();
    for (index, spec) in ctx.config.teachers.iter().enumerate() {
        let name = format!("{index}-{}", spec.slug());
        let path = ctx
            .cli
            .teacher_weights
            .get(index)
            .cloned()
            .unwrap_or_else(|| out.join("teachers").join(format!("{name}.bpk")));
        // Each teacher's initialisation and data order depend on the seed and its index.
        let seed = ctx.config.seed.wrapping_add(1000 * (index as u64 + 1));
        ctx.device.seed(seed);
        let model = ctx.net(spec.arch, ctx.config.width)?;
        let model = if path.is_file() {
            load_weights_with_layout(model, &path).map_err(|e| format!("teacher {name}: {e}"))?
        } else if train {
            let epochs = spec.epochs.unwrap_or(ctx.config.teacher_epochs);
            println!("teacher {name}: training for {epochs} epochs");
            // burn-train logs and checkpoints of the teacher, beside (not in) the weights folder.
            let run_dir = out.join("teacher-runs").join(&name);
            let trained = train_classifier(ctx, model, &run_dir, epochs, seed)?;
            std::fs::create_dir_all(out.join("teachers"))
                .map_err(|e| format!("cannot create {}: {e}", out.join("teachers").display()))?;
            save_weights(trained.clone(), &path).map_err(|e| e.to_string())?;
            trained
        } else {
            return Err(format!(
                "teacher {name} has no weights at {}: run the train-teachers stage first, or give --teacher-weights",
                path.display()
            ));
        };
        sizes.push((
            parameter_count(&model),
            std::fs::metadata(&path).map_or(0, |m| m.len()),
        ));
        teachers.push(Arc::new(FrozenTeacher::from_model(name, model)));
    }
    let scores = ctx.evaluate(&teachers, &ctx.eval)?;
    let reports = teachers
        .iter()
        .zip(sizes)
        .zip(&scores.accuracy)
        .map(|((teacher, (params, bytes)), &test_accuracy)| {
            println!(
                "teacher {}: {params} parameters, {} accuracy {:.2}%",
                teacher.name(),
                ctx.config.eval_split(),
                100.0 * test_accuracy
            );
            ModelReport {
                name: teacher.name().to_string(),
                params,
                bytes,
                test_accuracy,
            }
        })
        .collect();
    Ok((teachers, reports))
}

/// The results of the pipeline stages, in `results.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub config: Option<RunConfig>,
    pub teachers: Vec<ModelReport>,
    pub student: Option<ModelReport>,
    pub history: Vec<EpochLog>,
    pub wall_seconds: f64,
}

impl Report {
    pub fn load(path: &Path) -> Self {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, out: &Path) -> Result<(), String> {
        write_json(&out.join("results.json"), self)
    }

    pub fn print(&self) {
        println!("\n| model | parameters | size on disk | test accuracy |\n|---|---:|---:|---:|");
        for m in self.teachers.iter().chain(&self.student) {
            println!(
                "| {} | {} | {:.2} MB | {:.2}% |",
                m.name,
                m.params,
                m.bytes as f64 / 1e6,
                100.0 * m.test_accuracy
            );
        }
        if let (Some(student), Some(largest)) =
            (&self.student, self.teachers.iter().max_by_key(|t| t.params))
        {
            println!(
                "\ncompression: the student has {:.2}x fewer parameters than the largest teacher ({})",
                largest.params as f64 / student.params.max(1) as f64,
                largest.name
            );
        }
    }
}

/// Writes `value` as JSON under a temporary name, then renames it into place.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| format!("cannot move {} into place: {e}", path.display()))
}
