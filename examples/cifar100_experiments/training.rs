//! The stages' shared pieces: data, models, one burn-train loop (`fit`) for teachers, the
//! student alone and every distillation method, the teachers and the results table.

use std::path::Path;
use std::sync::Arc;

use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::optim::SgdConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::lr_scheduler::LrSchedulerConfig;
use burn::optim::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::optim::momentum::MomentumConfig;
use burn::tensor::{Device, Int, Tensor};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{InferenceStep, Learner, LearnerModel, SupervisedTraining, TrainStep};
use burn_distill::data::{EpochLoader, ImageData};
use burn_distill::files::{load_weights_with_layout, save_weights};
use burn_distill::models::{Architecture, ZooModel, parameter_count};
use burn_distill::train::{Classifier, ProgressRenderer, last_checkpoint};
use burn_distill::{DistillBatch, FrozenTeacher, Prescreen, ScreeningRule, Teacher, prescreen};
use serde::{Deserialize, Serialize};

use crate::Res;
use crate::args::{Cli, RunConfig};

pub type Teachers = Vec<Arc<dyn Teacher>>;

/// Everything the stages share.
pub struct Context<'a> {
    pub cli: &'a Cli,
    pub config: &'a RunConfig,
    pub device: Device,
    pub train: Arc<ImageData>,
    pub eval: Arc<ImageData>,
}

impl Context<'_> {
    /// A model of `arch` with first-stage width `width`, initialised from the device's seed.
    pub fn net(&self, arch: Architecture, width: usize) -> Res<ZooModel> {
        let (classes, channels, device) = (
            self.train.num_classes,
            self.train.channels,
            self.device.clone(),
        );
        Ok(arch.init(classes, width, channels, &device.autodiff())?)
    }

    /// The student, initialised from `seed`.
    pub fn student(&self, seed: u64) -> Res<ZooModel> {
        self.device.seed(seed);
        self.net(self.config.student, self.config.student_width())
    }

    /// An un-augmented loader of `data` in order.
    pub fn eval_loader(&self, data: &Arc<ImageData>) -> Arc<dyn DataLoader<DistillBatch>> {
        let loader =
            DataLoaderBuilder::new(self.config.dataset.batcher(data, false, 0)).batch_size(256);
        loader.set_device(self.device.clone()).build(data.clone())
    }

    /// `data` as un-augmented batches in order.
    pub fn batches(&self, data: &Arc<ImageData>) -> Res<Vec<(Tensor<4>, Tensor<1, Int>)>> {
        let loader = self.eval_loader(data);
        let batches = loader.iter().map(|b| b.map(|b| (b.inputs, b.labels)));
        Ok(batches.collect::<Result<_, _>>()?)
    }

    /// The teachers' accuracy and cross-entropy on `data`, and which are at or below the
    /// mean cross-entropy (the library's `prescreen`).
    pub fn evaluate(&self, models: &[Arc<dyn Teacher>], data: &Arc<ImageData>) -> Res<Prescreen> {
        Ok(prescreen(
            models,
            self.batches(data)?,
            &ScreeningRule::BelowMean,
        )?)
    }

    /// The first `n` training images (an un-augmented sample of the training split).
    pub fn train_head(&self, n: usize) -> Arc<ImageData> {
        let mut subset = (*self.train).clone();
        subset.truncate(n);
        Arc::new(subset)
    }
}

/// Loads the data the options ask for; the second value says where it was found.
pub fn context<'a>(cli: &'a Cli, config: &'a RunConfig) -> Res<(Context<'a>, String)> {
    let device = burn_distill::devices::parse_device(&config.device)?;
    let files = config
        .dataset
        .open(cli.data_dir.as_deref(), !cli.no_download)?;
    let hint = "\n(or point --data-dir at the folder holding the files)";
    let split = files.train_eval(config.valid_from_train, config.seed);
    let (mut train, mut eval) = split.map_err(|e| format!("{e}{hint}"))?;
    let all = |limit: usize| if limit == 0 { usize::MAX } else { limit };
    train.truncate(all(config.limit_train));
    eval.truncate(all(config.limit_test));
    let (train, eval) = (Arc::new(train), Arc::new(eval));
    let context = Context {
        cli,
        config,
        device,
        train,
        eval,
    };
    Ok((context, files.path().display().to_string()))
}

/// One burn-train run of `model` for `epochs` epochs, resumed after epoch `resume`: SGD with
/// momentum 0.9 and weight decay 5e-4 (CRD / CA-MKD's recipe), the learning rate x0.1 at the
/// configured fractions of the run; the training batches augmented, shuffled per epoch from
/// `seed` (the library's `EpochLoader`: a resumed run sees exactly the batches of an
/// uninterrupted one); checkpoints in `dir/checkpoint`; `metrics` registers the metrics.
pub fn fit<M>(
    ctx: &Context,
    model: M,
    dir: &Path,
    (epochs, seed, resume): (usize, u64, usize),
    metrics: impl FnOnce(SupervisedTraining<M>) -> SupervisedTraining<M>,
) -> Res<M>
where
    M: LearnerModel + TrainStep<Input = DistillBatch> + InferenceStep<Input = DistillBatch>,
{
    let config = ctx.config;
    let steps = ctx.train.labels.len().div_ceil(config.batch_size);
    let at = |f: &f64| (f * epochs as f64).round() as usize;
    let mut decays: Vec<usize> = config
        .lr_decay_at
        .iter()
        .map(at)
        .filter(|&e| e > 0 && e < epochs)
        .collect();
    decays.dedup();
    let lr = |i: usize| LrSchedulerConfig::Constant(config.lr * 0.1f64.powi(i as i32));
    let milestones = decays.iter().map(|e| e * steps).collect();
    let schedule =
        SequentialLrSchedulerConfig::new((0..=decays.len()).map(lr).collect(), milestones);
    let (batcher, device) = (
        config.dataset.batcher(&ctx.train, true, seed),
        ctx.device.clone().autodiff(),
    );
    let loader = EpochLoader::new(ctx.train.clone(), batcher, config.batch_size, device, seed);
    let mut training = SupervisedTraining::new(
        dir,
        Arc::new(loader.resume_after(resume)),
        ctx.eval_loader(&ctx.eval),
    )
    .with_default_checkpointers()
    .renderer(Box::new(ProgressRenderer::new()))
    .num_epochs(epochs);
    if resume > 0 {
        training = training.checkpoint(resume);
    }
    let momentum = Some(MomentumConfig::new().with_momentum(0.9));
    let sgd = SgdConfig::new()
        .with_momentum(momentum)
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)));
    let result = metrics(training).launch(Learner::new(model, sgd.init(), schedule.init()?));
    match result.error {
        Some(error) => Err(format!("training stopped: {error:?}").into()),
        None => Ok(result.model),
    }
}

/// Plain cross-entropy training of `model` in the same loop (teachers, the student alone).
pub fn train_classifier(
    ctx: &Context,
    model: ZooModel,
    dir: &Path,
    epochs: usize,
    seed: u64,
) -> Res<ZooModel> {
    let resume = if ctx.cli.resume {
        last_checkpoint(dir).unwrap_or(0).min(epochs)
    } else {
        0
    };
    let metrics = |training: SupervisedTraining<_>| {
        let training = training.metric_train_numeric(AccuracyMetric::new());
        training
            .metric_valid_numeric(AccuracyMetric::new())
            .metric_train_numeric(LossMetric::new())
    };
    Ok(fit(
        ctx,
        Classifier::new(model),
        dir,
        (epochs, seed, resume),
        metrics,
    )?
    .model)
}

/// One row of the results table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelReport {
    pub name: String,
    pub params: usize,
    pub bytes: u64,
    pub test_accuracy: f64,
}

/// Loads (or, when `train` is set and no weights exist yet, trains) every teacher, and
/// reports each one's parameters, file size and accuracy.
pub fn teachers(ctx: &Context, train: bool) -> Res<(Teachers, Vec<ModelReport>)> {
    let (out, mut teachers, mut reports) = (&ctx.cli.out, Teachers::new(), Vec::new());
    for (index, spec) in ctx.config.teachers.iter().enumerate() {
        let name = format!("{index}-{}", spec.slug());
        let path = ctx.cli.teacher_weights.get(index).cloned();
        let path = path.unwrap_or(out.join("teachers").join(format!("{name}.bpk")));
        // Each teacher's initialisation and data order depend on the seed and its index.
        let seed = ctx.config.seed.wrapping_add(1000 * (index as u64 + 1));
        ctx.device.seed(seed);
        let model = ctx.net(spec.arch, ctx.config.width)?;
        let model = if path.is_file() {
            load_weights_with_layout(model, &path).map_err(|e| format!("teacher {name}: {e}"))?
        } else if train {
            let epochs = spec.epochs.unwrap_or(ctx.config.teacher_epochs);
            println!("teacher {name}: training for {epochs} epochs");
            // burn-train's logs and checkpoints, beside (not in) the weights folder.
            let trained = train_classifier(
                ctx,
                model,
                &out.join("teacher-runs").join(&name),
                epochs,
                seed,
            )?;
            save_weights(trained.clone(), &path)?;
            trained
        } else {
            let hint = "run the train-teachers stage first, or give --teacher-weights";
            return Err(format!(
                "teacher {name} has no weights at {}: {hint}",
                path.display()
            )
            .into());
        };
        let (params, bytes) = (
            parameter_count(&model),
            std::fs::metadata(&path).map_or(0, |m| m.len()),
        );
        reports.push(ModelReport {
            name: name.clone(),
            params,
            bytes,
            test_accuracy: 0.0,
        });
        teachers.push(Arc::new(FrozenTeacher::from_model(name, model)));
    }
    let scores = ctx.evaluate(&teachers, &ctx.eval)?;
    for (report, accuracy) in reports.iter_mut().zip(scores.accuracy) {
        report.test_accuracy = accuracy;
        let (name, params, split) = (&report.name, report.params, ctx.config.eval_split());
        println!(
            "teacher {name}: {params} parameters, {split} accuracy {:.2}%",
            100.0 * accuracy
        );
    }
    Ok((teachers, reports))
}

/// The results of the pipeline stages, in `results.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub config: Option<RunConfig>,
    pub teachers: Vec<ModelReport>,
    pub student: Option<ModelReport>,
    pub history: Vec<burn_distill::train::EpochRecord>,
    pub wall_seconds: f64,
}

impl Report {
    pub fn load(path: &Path) -> Self {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default()).unwrap_or_default()
    }

    pub fn print(&self) {
        println!("\n| model | parameters | size on disk | test accuracy |\n|---|---:|---:|---:|");
        for m in self.teachers.iter().chain(&self.student) {
            let (name, params, mb, accuracy) = (
                &m.name,
                m.params,
                m.bytes as f64 / 1e6,
                100.0 * m.test_accuracy,
            );
            println!("| {name} | {params} | {mb:.2} MB | {accuracy:.2}% |");
        }
        if let (Some(student), Some(largest)) =
            (&self.student, self.teachers.iter().max_by_key(|t| t.params))
        {
            let (ratio, name) = (
                largest.params as f64 / student.params.max(1) as f64,
                &largest.name,
            );
            println!(
                "\ncompression: the student has {ratio:.2}x fewer parameters than the largest teacher ({name})"
            );
        }
    }
}
