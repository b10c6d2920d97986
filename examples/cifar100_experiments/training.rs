//! The stages' shared pieces: data, models, one burn-train loop (`fit`) for teachers, the
//! student alone and every distillation method, the teachers and the results table.

use std::path::Path;
use std::sync::Arc;

use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::tensor::{Device, Int, Tensor};
use burn::train::{InferenceStep, Learner, LearnerModel, SupervisedTraining, TrainStep};
use burn_distill::data::{EpochLoader, ImageData};
use burn_distill::experiment::ModelReport;
use burn_distill::files::{load_weights_with_layout, save_weights};
use burn_distill::models::{Architecture, ZooModel, parameter_count};
use burn_distill::train::{
    Classifier, ClassifierMetrics, ProgressRenderer, SgdRecipeConfig, last_checkpoint,
};
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

/// One burn-train run of `model` for `epochs` epochs, resumed after epoch `resume`: the
/// library's SGD recipe (CRD / CA-MKD's: momentum 0.9, weight decay 5e-4, the learning rate
/// x0.1 at the configured fractions of the run); the training batches augmented, shuffled
/// per epoch from `seed` (`EpochLoader`: a resumed run sees exactly the batches of an
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
    let (config, train) = (ctx.config, ctx.train.clone());
    let recipe = SgdRecipeConfig::new()
        .with_lr(config.lr)
        .with_decay_at(config.lr_decay_at.clone());
    let schedule = recipe.schedule(epochs, train.labels.len().div_ceil(config.batch_size))?;
    let batcher = config.dataset.batcher(&train, true, seed);
    let loader = EpochLoader::new(
        train,
        batcher,
        config.batch_size,
        ctx.device.clone().autodiff(),
        seed,
    );
    let (train, valid) = (
        Arc::new(loader.resume_after(resume)),
        ctx.eval_loader(&ctx.eval),
    );
    let mut training = SupervisedTraining::new(dir, train, valid)
        .with_default_checkpointers()
        .renderer(Box::new(ProgressRenderer::new()))
        .num_epochs(epochs);
    if resume > 0 {
        training = training.checkpoint(resume);
    }
    let learner = Learner::new(model, recipe.optimizer().init(), schedule.init()?);
    match metrics(training).launch(learner) {
        result if result.error.is_none() => Ok(result.model),
        result => Err(format!("training stopped: {:?}", result.error).into()),
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
    let resume = last_checkpoint(dir).filter(|_| ctx.cli.resume);
    let run = fit(
        ctx,
        Classifier::new(model),
        dir,
        (epochs, seed, resume.unwrap_or(0).min(epochs)),
        |t| t.classifier_metrics(),
    );
    Ok(run?.model)
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
            let dir = out.join("teacher-runs").join(&name);
            let trained = train_classifier(ctx, model, &dir, epochs, seed)?;
            save_weights(trained.clone(), &path)?;
            trained
        } else {
            let (hint, at) = (
                "run the train-teachers stage first, or give --teacher-weights",
                path.display(),
            );
            return Err(format!("teacher {name} has no weights at {at}: {hint}").into());
        };
        reports.push(ModelReport::new(&name, parameter_count(&model), &path, 0.0));
        teachers.push(Arc::new(FrozenTeacher::from_model(name, model)));
    }
    let scores = ctx.evaluate(&teachers, &ctx.eval)?;
    for (report, accuracy) in reports.iter_mut().zip(scores.accuracy) {
        report.accuracy = accuracy;
    }
    let table = ModelReport::markdown(&reports, None, ctx.config.eval_split());
    println!("{table}");
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
}
