//! The stages: train teachers, distill, evaluate, export.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor};
use burn_distill::data::{
    Augmentation, CifarVariant, FASHION_MNIST_DIR, FASHION_MNIST_MEAN, FASHION_MNIST_STD,
    ImageBatcher, ImageData, Split, find_cifar, load_cifar_any, load_fashion_mnist,
};
use burn_distill::files::{PytorchLayout, load_weights, save_weights};
use burn_distill::models::{ResNetConfig, VggConfig, parameter_count};
use burn_distill::{
    DistillBatch, DistillationLossConfig, DistillerConfig, FeatureModel, FeatureNorm,
    FrozenTeacher, Granularity, Teacher, TeacherSelectorConfig, Weighting,
};
use serde::{Deserialize, Serialize};

use crate::args::{Args, RunConfig};

/// Evaluates `body` with `m` bound to a freshly built model of the architecture `arch` and
/// first-stage width `width` (one arm per architecture, so `body` may be generic).
#[macro_export]
macro_rules! with_arch {
    ($ctx:expr, $arch:expr, $width:expr, |$m:ident| $body:expr) => {{
        let classes = $ctx.train.num_classes;
        let channels = $ctx.train.channels;
        let w: usize = $width;
        let device = $ctx.device.clone().autodiff();
        let resnet = |depth: usize| {
            ResNetConfig::new(depth, classes)
                .with_widths([(w / 2).max(1), w, 2 * w, 4 * w])
                .with_in_channels(channels)
                .init(&device)
                .map_err(|e| e.to_string())
        };
        match $arch {
            "vgg8" => {
                let $m = VggConfig::vgg8(classes)
                    .with_width(w)
                    .with_in_channels(channels)
                    .init(&device);
                $body
            }
            "vgg13" => {
                let $m = VggConfig::vgg13(classes)
                    .with_width(w)
                    .with_in_channels(channels)
                    .init(&device);
                $body
            }
            "resnet8x4" => {
                let $m = resnet(8)?;
                $body
            }
            "resnet32x4" => {
                let $m = resnet(32)?;
                $body
            }
            other => Err(format!("unknown architecture '{other}'")),
        }
    }};
}

/// Everything the stages share.
pub(crate) struct Context<'a> {
    pub(crate) args: &'a Args,
    pub(crate) config: &'a RunConfig,
    pub(crate) device: Device,
    pub(crate) train: Arc<ImageData>,
    pub(crate) test: Arc<ImageData>,
    pub(crate) mean: Vec<f32>,
    pub(crate) std: Vec<f32>,
    pub(crate) augmentation: Augmentation,
}

/// The folder to read CIFAR from: `--data-dir` if given; else the official binary files in
/// `~/.cache/burn-distill/<cifar-100|cifar-10>`, else the PNG folders burn-dataset's
/// `CifarDataset` caches in `~/.cache/burn-dataset/<cifar100|cifar10>`; else an error that
/// says where to put the data.
fn cifar_dir(
    data_dir: Option<&Path>,
    variant: CifarVariant,
    no_download: bool,
) -> Result<PathBuf, String> {
    if let Some(dir) = data_dir {
        return Ok(dir.to_path_buf());
    }
    let binary = variant.default_dir();
    let folders = variant.burn_dataset_dir();
    if let Some(dir) = find_cifar(variant, None) {
        Ok(dir)
    } else if cfg!(feature = "download") && !no_download {
        #[cfg(feature = "download")]
        {
            burn_distill::download::fetch_cifar(variant, &binary, true).map_err(|e| e.to_string())
        }
        #[cfg(not(feature = "download"))]
        unreachable!("guarded by cfg!(feature = \"download\")")
    } else {
        let (name, official, fastai) = match variant {
            CifarVariant::Cifar10 => (
                "CIFAR-10",
                "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz (data_batch_1.bin .. \
                 data_batch_5.bin, test_batch.bin)",
                "https://s3.amazonaws.com/fast-ai-sample/cifar10.tgz",
            ),
            CifarVariant::Cifar100 => (
                "CIFAR-100",
                "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz (train.bin, test.bin)",
                "https://s3.amazonaws.com/fast-ai-imageclas/cifar100.tgz",
            ),
        };
        Err(format!(
            "no {name} data found. Put either\n  - the official binary files from {official} \
             into {},\n  - or the PNG folders burn-dataset's CifarDataset downloads ({fastai}, \
             extracted so that {}/train/<class>/*.png exists),\nor pass --data-dir DIR \
             pointing at either. (Downloads are off: build with --features download and \
             leave out --no-download to fetch the official archive.)",
            binary.display(),
            folders.display()
        ))
    }
}

pub fn run(args: &Args) -> Result<(), String> {
    let config = &args.config;
    let started = Instant::now();
    let device = device(&config.device)?;
    let (dir, mean, std, augmentation) = match config.dataset.as_str() {
        "fashion-mnist" => (
            args.data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(FASHION_MNIST_DIR)),
            FASHION_MNIST_MEAN.to_vec(),
            FASHION_MNIST_STD.to_vec(),
            Augmentation {
                padding: 2,
                flip: true,
            },
        ),
        name => {
            let variant = if name == "cifar10" {
                CifarVariant::Cifar10
            } else {
                CifarVariant::Cifar100
            };
            let (mean, std) = variant.normalization();
            (
                cifar_dir(args.data_dir.as_deref(), variant, args.no_download)?,
                mean.to_vec(),
                std.to_vec(),
                Augmentation {
                    padding: 4,
                    flip: true,
                },
            )
        }
    };
    let load = |split| {
        let data = match config.dataset.as_str() {
            "fashion-mnist" => load_fashion_mnist(&dir, split),
            "cifar10" => load_cifar_any(&dir, CifarVariant::Cifar10, split),
            _ => load_cifar_any(&dir, CifarVariant::Cifar100, split),
        };
        data.map_err(|e| format!("{e}\n(or point --data-dir at the folder holding the files)"))
    };
    let (mut train, mut test) = match config.valid_from_train {
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
        test.truncate(n);
    }
    println!(
        "burn-distill distillation example: preset '{}', device {}, {} ({} train / {} {} images from {})",
        config.preset,
        config.device,
        config.dataset,
        train.labels.len(),
        test.labels.len(),
        config.eval_split(),
        dir.display()
    );
    if config.preset == "quick" {
        println!(
            "quick preset: a {}-image subset, {} teacher / {} student epochs and models {}x narrower \
             than the paper's. Its numbers show the pipeline works; they are not the paper's \
             (use --preset paper on a GPU for those).",
            train.labels.len(),
            config.teacher_epochs,
            config.epochs,
            64 / config.width.max(1)
        );
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create output folder {}: {e}", args.out.display()))?;
    let ctx = Context {
        args,
        config,
        device,
        train: Arc::new(train),
        test: Arc::new(test),
        mean,
        std,
        augmentation,
    };
    let mut report = Report::load(&args.out.join("results.json"));
    report.config = Some(config.clone());
    // Teachers are loaded (or trained) and evaluated once, by the first stage that needs them.
    let mut loaded: Option<Vec<Arc<dyn Teacher>>> = None;
    let mut load_teachers =
        |train: bool, report: &mut Report| -> Result<Vec<Arc<dyn Teacher>>, String> {
            if let Some(teachers) = &loaded {
                return Ok(teachers.clone());
            }
            let (teachers, reports) = teachers(&ctx, train)?;
            report.teachers = reports;
            loaded = Some(teachers.clone());
            Ok(teachers)
        };
    if args.stages.iter().any(|s| s == "train-teachers") {
        load_teachers(true, &mut report)?;
        report.save(&args.out)?;
    }
    if args.stages.iter().any(|s| s == "distill") {
        let mut teachers = load_teachers(false, &mut report)?;
        if args.prescreen {
            teachers = prescreen_teachers(&ctx, teachers)?;
        }
        let plan = Plan::from_config(config, &args.out);
        ctx.device.seed(plan.seed);
        report.history = with_arch!(ctx, config.student.as_str(), config.student_width(), |m| {
            distill_student(&ctx, m, teachers, &plan)
        })?;
        report.save(&args.out)?;
        plot_history(&report.history, &args.out.join("accuracy.png"))?;
    }
    if args.stages.iter().any(|s| s == "ablation") {
        let teachers = load_teachers(true, &mut report)?;
        report.save(&args.out)?;
        crate::ablation::run(&ctx, &teachers, &report.teachers)?;
    }
    if args.stages.iter().any(|s| s == "screening") {
        let teachers = load_teachers(true, &mut report)?;
        report.save(&args.out)?;
        crate::screening::run(&ctx, &teachers, &report.teachers)?;
    }
    if args.stages.iter().any(|s| s == "eval") {
        load_teachers(false, &mut report)?;
        report.student = Some(evaluate_student(&ctx)?);
        report.wall_seconds = started.elapsed().as_secs_f64();
        report.save(&args.out)?;
        report.print();
    }
    Ok(())
}

/// Evaluates the teachers once on (up to) the first 1,000 training images, without
/// augmentation, and keeps those at or below the mean cross-entropy.
fn prescreen_teachers(
    ctx: &Context,
    teachers: Vec<Arc<dyn Teacher>>,
) -> Result<Vec<Arc<dyn Teacher>>, String> {
    let mut subset = (*ctx.train).clone();
    subset.truncate(1000);
    let images = subset.labels.len();
    let loader = loader(ctx, &Arc::new(subset), false, 0, false);
    let batches = loader
        .iter()
        .map(|b| {
            b.map(|b| (b.inputs, b.labels))
                .map_err(|e| format!("cannot read a training batch: {e}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let result =
        burn_distill::prescreen(&teachers, batches, &burn_distill::ScreeningRule::BelowMean)
            .map_err(|e| e.to_string())?;
    println!("pre-screening on {images} training images:");
    for (i, teacher) in teachers.iter().enumerate() {
        println!(
            "    teacher {:<14} cross-entropy {:.3}  accuracy {:5.1}%  {}",
            teacher.name(),
            result.mean_cross_entropy[i],
            100.0 * result.accuracy[i],
            if result.kept.contains(&i) {
                "kept"
            } else {
                "dropped"
            }
        );
    }
    Ok(result.keep(&teachers))
}

/// Train and test accuracy per epoch of the distilled student, as a PNG.
fn plot_history(history: &[EpochLog], path: &Path) -> Result<(), String> {
    let points = |f: fn(&EpochLog) -> f64| -> Vec<(f64, f64)> {
        history
            .iter()
            .map(|e| (e.epoch as f64, 100.0 * f(e)))
            .collect()
    };
    crate::plot::lines(
        path,
        "distilled student: accuracy per epoch",
        "epoch",
        &[
            ("train (augmented)", points(|e| e.train_accuracy)),
            ("test", points(|e| e.test_accuracy)),
        ],
    )?;
    println!("wrote {}", path.display());
    Ok(())
}

fn device(name: &str) -> Result<Device, String> {
    match name {
        #[cfg(feature = "flex")]
        "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "tch")]
        #[allow(deprecated)] // burn-tch is deprecated in Burn 0.22; PyTorch's CPU kernels
        "tch" => Ok(Device::libtorch()),
        other => Err(format!(
            "this build has no '{other}' device: rebuild with `--features {other}`"
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Data, optimiser, progress

fn loader(
    ctx: &Context,
    data: &Arc<ImageData>,
    train: bool,
    epoch: usize,
    autodiff: bool,
) -> Arc<dyn DataLoader<DistillBatch>> {
    loader_seeded(ctx, data, train, ctx.config.seed, epoch, autodiff)
}

/// The un-augmented, unshuffled loader of `data`, without autodiff.
pub(crate) fn eval_loader(
    ctx: &Context,
    data: &Arc<ImageData>,
) -> Arc<dyn DataLoader<DistillBatch>> {
    loader(ctx, data, false, 0, false)
}

/// A loader whose shuffling and augmentation depend only on `seed` and `epoch`, so a
/// resumed run sees the same batches as an uninterrupted one.
fn loader_seeded(
    ctx: &Context,
    data: &Arc<ImageData>,
    train: bool,
    seed: u64,
    epoch: usize,
    autodiff: bool,
) -> Arc<dyn DataLoader<DistillBatch>> {
    let seed = seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64);
    let shape = [data.channels, data.height, data.width];
    let augmentation = train.then_some(ctx.augmentation);
    let batcher = ImageBatcher::new(shape, &ctx.mean, &ctx.std, augmentation, seed);
    let device = if autodiff {
        ctx.device.clone().autodiff()
    } else {
        ctx.device.clone()
    };
    let mut builder = DataLoaderBuilder::new(batcher)
        .batch_size(ctx.config.batch_size)
        .set_device(device);
    if train {
        builder = builder.shuffle(seed);
    }
    builder.build(data.clone())
}

fn optimizer() -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new()
                .with_momentum(0.9)
                .with_dampening(0.0)
                .with_nesterov(true),
        ))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init()
}

/// Step schedule: `lr * 0.1^(number of decay points passed)`.
fn learning_rate(config: &RunConfig, epoch: usize, epochs: usize) -> f64 {
    let passed = config
        .lr_decay_at
        .iter()
        .filter(|at| epoch as f64 >= (*at * epochs as f64).round())
        .count();
    config.lr * 0.1f64.powi(passed as i32)
}

struct Progress {
    label: String,
    total: usize,
    done: usize,
    images: usize,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(label: String, total: usize) -> Self {
        Self {
            label,
            total,
            done: 0,
            images: 0,
            started: Instant::now(),
            last: Instant::now(),
        }
    }

    fn tick(&mut self, images: usize) {
        self.done += 1;
        self.images += images;
        // Redraw at most once a second, and only on a terminal (logs get the epoch lines).
        let redraw = self.last.elapsed().as_secs_f64() >= 1.0 || self.done == self.total;
        if redraw && std::io::stderr().is_terminal() {
            self.last = Instant::now();
            let elapsed = self.started.elapsed().as_secs_f64();
            let rate = self.images as f64 / elapsed.max(1e-9);
            let eta = elapsed / self.done as f64 * (self.total - self.done) as f64;
            let filled = 24 * self.done / self.total.max(1);
            eprint!(
                "\r{} [{}{}] {}/{} batches, {:.0} img/s, ETA {:>3}:{:02}  ",
                self.label,
                "#".repeat(filled),
                " ".repeat(24 - filled),
                self.done,
                self.total,
                rate,
                (eta as u64) / 60,
                (eta as u64) % 60
            );
            let _ = std::io::stderr().flush();
        }
    }

    fn finish(&self) -> f64 {
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
        self.images as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }
}

fn num_batches(data: &ImageData, batch_size: usize) -> usize {
    data.labels.len().div_ceil(batch_size)
}

/// Test accuracy of any classifier, counted on the device and read once. Fails when any
/// logit is NaN or infinite (a broken teacher checkpoint, a diverged student).
pub(crate) fn accuracy(
    ctx: &Context,
    forward: impl Fn(Tensor<4>) -> Tensor<2>,
) -> Result<f64, String> {
    let loader = loader(ctx, &ctx.test, false, 0, false);
    let mut counts: Option<Tensor<1, Int>> = None;
    for batch in loader.iter() {
        let batch = batch.map_err(|e| format!("cannot read a test batch: {e}"))?;
        let [n] = batch.labels.dims();
        let logits = forward(batch.inputs);
        let bad = logits.clone().is_finite().bool_not().any().int();
        let hits = logits
            .argmax(1)
            .reshape([n])
            .equal(batch.labels)
            .int()
            .sum();
        let both = Tensor::cat(vec![hits, bad], 0);
        counts = Some(match counts {
            Some(c) => c + both,
            None => both,
        });
    }
    let counts = match counts {
        Some(c) => c
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .map_err(|e| format!("{e:?}"))?,
        None => vec![0, 0],
    };
    if counts[1] > 0 {
        return Err(format!(
            "the model gives NaN or infinite logits on {} test batches: its weights are broken \
             (or training diverged)",
            counts[1]
        ));
    }
    Ok(counts[0] as f64 / ctx.test.labels.len() as f64)
}

/// Saves a module atomically (temporary file, then rename), as a Burn record or
/// safetensors by extension.
fn save_atomic<M: Module>(module: M, path: &Path) -> Result<(), String> {
    save_weights(module, path).map_err(|e| e.to_string())
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| format!("cannot move {} into place: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------
// Teachers

/// One row of the results table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ModelReport {
    pub(crate) name: String,
    pub(crate) params: usize,
    pub(crate) bytes: u64,
    pub(crate) test_accuracy: f64,
}

/// A teacher spec is `arch` or `arch:epochs` (a teacher trained for fewer epochs, e.g. a
/// deliberately weak one).
pub fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((arch, epochs)) => (arch, Some(epochs)),
        None => (spec, None),
    }
}

fn teacher_path(ctx: &Context, index: usize, spec: &str) -> PathBuf {
    match ctx.args.teacher_weights.get(index) {
        Some(path) => path.clone(),
        None => ctx
            .args
            .out
            .join("teachers")
            .join(format!("{index}-{}.bpk", spec.replace(':', "-e"))),
    }
}

/// The teachers and their rows of the results table.
type LoadedTeachers = (Vec<Arc<dyn Teacher>>, Vec<ModelReport>);

/// Loads (or, when `train` is set and no weights exist yet, trains) every teacher.
fn teachers(ctx: &Context, train: bool) -> Result<LoadedTeachers, String> {
    let mut teachers = Vec::new();
    let mut reports = Vec::new();
    for (index, spec) in ctx.config.teachers.iter().enumerate() {
        let path = teacher_path(ctx, index, spec);
        let (arch, epochs) = split_spec(spec);
        let epochs = match epochs {
            Some(e) => e
                .parse()
                .map_err(|_| format!("invalid epochs in teacher '{spec}'"))?,
            None => ctx.config.teacher_epochs,
        };
        // Each teacher's initialisation and data order depend on the seed and its index.
        let seed = ctx.config.seed.wrapping_add(1000 * (index as u64 + 1));
        ctx.device.seed(seed);
        let name = format!("{index}-{}", spec.replace(':', "-e"));
        let (teacher, report) = with_arch!(ctx, arch, ctx.config.width, |m| teacher(
            ctx, m, &name, &path, train, epochs, seed
        ))?;
        teachers.push(teacher);
        reports.push(report);
    }
    Ok((teachers, reports))
}

fn teacher<M: FeatureModel + PytorchLayout + Sync + 'static>(
    ctx: &Context,
    model: M,
    name: &str,
    path: &Path,
    train: bool,
    epochs: usize,
    seed: u64,
) -> Result<(Arc<dyn Teacher>, ModelReport), String> {
    let name = name.to_string();
    let model = if path.is_file() {
        load_weights(model, path).map_err(|e| format!("teacher {name}: {e}"))?
    } else if train {
        let model = train_classifier(ctx, model, &format!("teacher {name}"), epochs, seed)?;
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        save_atomic(model.clone(), path)?;
        model
    } else {
        return Err(format!(
            "teacher {name} has no weights at {}: run the train-teachers stage first, or give \
             --teacher-weights",
            path.display()
        ));
    };
    let params = parameter_count(&model);
    let teacher = FrozenTeacher::from_model(name.clone(), model);
    let test_accuracy = accuracy(ctx, |x| teacher.forward(x).logits)?;
    println!(
        "teacher {name}: {params} parameters, {} accuracy {:.2}%",
        ctx.config.eval_split(),
        100.0 * test_accuracy
    );
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok((
        Arc::new(teacher),
        ModelReport {
            name,
            params,
            bytes,
            test_accuracy,
        },
    ))
}

/// Plain cross-entropy training (teachers, and the student-alone baseline).
pub(crate) fn train_classifier<M: FeatureModel>(
    ctx: &Context,
    mut model: M,
    name: &str,
    epochs: usize,
    seed: u64,
) -> Result<M, String> {
    let mut optim = optimizer();
    let loss_fn = CrossEntropyLossConfig::new().init(&ctx.device.clone().autodiff());
    for epoch in 0..epochs {
        let lr = learning_rate(ctx.config, epoch, epochs);
        let mut progress = Progress::new(
            format!("{name} epoch {}/{epochs}", epoch + 1),
            num_batches(&ctx.train, ctx.config.batch_size),
        );
        let mut total: Option<Tensor<1>> = None;
        for batch in loader_seeded(ctx, &ctx.train, true, seed, epoch, true).iter() {
            let batch = batch.map_err(|e| format!("cannot read a training batch: {e}"))?;
            let [n] = batch.labels.dims();
            let loss = loss_fn.forward(model.forward_features(batch.inputs).logits, batch.labels);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            let loss = loss.detach().without_autodiff();
            total = Some(match total {
                Some(t) => t + loss,
                None => loss,
            });
            progress.tick(n);
        }
        let rate = progress.finish();
        let mean =
            total.map(|t| t.into_scalar::<f64>()).unwrap_or(f64::NAN) / progress.done.max(1) as f64;
        if !mean.is_finite() {
            return Err(format!(
                "{name}: loss is {mean} in epoch {}: lower --lr",
                epoch + 1
            ));
        }
        println!(
            "{name} epoch {}/{epochs}: lr {lr:.4}, loss {mean:.4}, {rate:.0} img/s",
            epoch + 1
        );
    }
    Ok(model)
}

// ---------------------------------------------------------------------------------------
// Distillation

/// Per-epoch log of the distillation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EpochLog {
    pub(crate) epoch: usize,
    pub(crate) lr: f64,
    pub(crate) loss: f64,
    pub(crate) hard: f64,
    pub(crate) soft: f64,
    pub(crate) feature: f64,
    pub(crate) train_accuracy: f64,
    pub(crate) test_accuracy: f64,
    /// Per teacher: fraction of samples for which it was kept.
    pub(crate) keep_rate: Vec<f64>,
    /// Per teacher: mean weight.
    pub(crate) mean_weight: Vec<f64>,
    pub(crate) images_per_second: f64,
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointState {
    config: RunConfig,
    plan: Plan,
    teachers: Vec<String>,
    epochs_done: usize,
    history: Vec<EpochLog>,
}

/// One distillation run: the method, its loss weights, its seed and its folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Method name, for logs and tables.
    pub name: String,
    /// screened, average, confidence, entropy or single-best.
    pub weighting: String,
    /// Per-batch (rather than per-sample) selection.
    pub per_batch: bool,
    pub hard_weight: f64,
    pub soft_weight: f64,
    pub feature_weight: f64,
    pub seed: u64,
    /// Checkpoints and the exported student go here.
    pub dir: PathBuf,
}

impl Plan {
    /// The run the command line asks for.
    pub fn from_config(config: &RunConfig, out: &Path) -> Self {
        Self {
            name: config.weighting.clone(),
            weighting: config.weighting.clone(),
            // "screened" follows the library's default (per batch).
            per_batch: config.weighting == "screened",
            hard_weight: config.hard_weight,
            soft_weight: config.soft_weight,
            feature_weight: config.feature_weight,
            seed: config.seed,
            dir: out.to_path_buf(),
        }
    }
}

/// The teacher with the lowest mean cross-entropy on the first training batches.
fn best_teacher(ctx: &Context, teachers: &[Arc<dyn Teacher>]) -> Result<usize, String> {
    let mut ces = vec![0.0f64; teachers.len()];
    for batch in loader(ctx, &ctx.train, false, 0, false).iter().take(4) {
        let batch = batch.map_err(|e| format!("cannot read a training batch: {e}"))?;
        let [n] = batch.labels.dims();
        for (k, t) in teachers.iter().enumerate() {
            ces[k] +=
                burn::tensor::activation::log_softmax(t.forward(batch.inputs.clone()).logits, 1)
                    .gather(1, batch.labels.clone().reshape([n, 1]))
                    .neg()
                    .mean()
                    .into_scalar::<f64>();
        }
    }
    Ok((0..teachers.len())
        .min_by(|a, b| ces[*a].total_cmp(&ces[*b]))
        .unwrap_or(0))
}

fn selector(
    ctx: &Context,
    plan: &Plan,
    teachers: &[Arc<dyn Teacher>],
) -> Result<(TeacherSelectorConfig, Vec<Arc<dyn Teacher>>), String> {
    let granularity = if plan.per_batch {
        Granularity::PerBatch
    } else {
        Granularity::PerSample
    };
    let unscreened = |w| TeacherSelectorConfig::unscreened(w).with_granularity(granularity);
    Ok(match plan.weighting.as_str() {
        "average" => (unscreened(Weighting::Average), teachers.to_vec()),
        "confidence" => (unscreened(Weighting::Confidence), teachers.to_vec()),
        "entropy" => (unscreened(Weighting::Entropy), teachers.to_vec()),
        "single-best" => {
            let best = best_teacher(ctx, teachers)?;
            println!(
                "{}: using the best teacher, {}",
                plan.name,
                teachers[best].name()
            );
            (unscreened(Weighting::Average), vec![teachers[best].clone()])
        }
        _ => (
            TeacherSelectorConfig::new()
                .with_granularity(granularity)
                .with_tau(ctx.config.tau)
                .with_screening(crate::args::screening_rule(&ctx.config.screening)?),
            teachers.to_vec(),
        ),
    })
}

pub(crate) fn distill_student<S: FeatureModel + Sync + 'static>(
    ctx: &Context,
    student: S,
    all_teachers: Vec<Arc<dyn Teacher>>,
    plan: &Plan,
) -> Result<Vec<EpochLog>, String> {
    let config = ctx.config;
    let device = ctx.device.clone().autodiff();
    let (selector, teachers) = selector(ctx, plan, &all_teachers)?;
    let names: Vec<String> = teachers.iter().map(|t| t.name().to_string()).collect();
    // The feature schedule, in steps: CA-MKD keeps the feature term off for the first epoch
    // (--feature-delay 1, the default), optionally followed by a linear ramp.
    let steps_per_epoch = num_batches(&ctx.train, config.batch_size);
    let steps = |epochs: f64| (epochs * steps_per_epoch as f64).round() as usize;
    let loss = DistillationLossConfig::new()
        .with_temperature(config.temperature)
        .with_hard_weight(plan.hard_weight)
        .with_soft_weight(plan.soft_weight)
        .with_feature_weight(plan.feature_weight)
        .with_feature_delay_steps(steps(config.feature_delay_epochs))
        .with_feature_ramp_steps(steps(config.feature_ramp_epochs))
        .with_feature_norm(if config.feature_norm == "teacher" {
            FeatureNorm::TeacherMeanSquare
        } else {
            FeatureNorm::None
        });
    let mut distiller = DistillerConfig::new()
        .with_selector(selector)
        .with_loss(loss)
        .init(student, teachers, &device)
        .map_err(|e| e.to_string())?;
    let mut optim = optimizer();

    let dir = plan.dir.join("checkpoint");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let state_path = dir.join("state.json");
    let mut history = Vec::new();
    let mut start = 0;
    if ctx.args.resume && state_path.is_file() {
        let text = std::fs::read_to_string(&state_path)
            .map_err(|e| format!("cannot read {}: {e}", state_path.display()))?;
        let state: CheckpointState = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a checkpoint state: {e}", state_path.display()))?;
        if state.config != *config || state.plan != *plan || state.teachers != names {
            return Err(format!(
                "the checkpoint in {} was made with another configuration ({:?} with teachers {:?}); \
                 refusing to resume from it with {:?} and teachers {:?}. Use another --out or drop --resume.",
                dir.display(),
                state.config,
                state.teachers,
                config,
                names
            ));
        }
        distiller = distiller
            .try_load_file(dir.join("distiller.bpk"))
            .map_err(|e| format!("cannot load the checkpoint in {}: {e}", dir.display()))?;
        optim = optim
            .load(dir.join("optim.bpk"))
            .map_err(|e| format!("cannot load the optimizer state in {}: {e}", dir.display()))?;
        start = state.epochs_done;
        history = state.history;
        // Records hold parameters, not the step count the feature schedule reads.
        distiller.set_train_steps(start * steps_per_epoch);
        println!("resuming after epoch {start} from {}", dir.display());
    }

    let k = names.len();
    for epoch in start..config.epochs {
        let lr = learning_rate(config, epoch, config.epochs);
        let mut progress = Progress::new(
            format!("distill epoch {}/{}", epoch + 1, config.epochs),
            num_batches(&ctx.train, config.batch_size),
        );
        let mut sums: Option<[Tensor<1>; 6]> = None;
        let mut correct: Option<Tensor<1, Int>> = None;
        for batch in loader_seeded(ctx, &ctx.train, true, plan.seed, epoch, true).iter() {
            let batch = batch.map_err(|e| format!("cannot read a training batch: {e}"))?;
            let [n] = batch.labels.dims();
            let out = distiller
                .forward(batch.inputs, batch.labels.clone())
                .map_err(|e| e.to_string())?;
            let grads = GradientsParams::from_grads(out.loss.total.backward(), &distiller);
            distiller = optim.step(lr, distiller, grads);
            let plain = |t: &Tensor<1>| t.clone().detach().without_autodiff();
            let parts = [
                plain(&out.loss.total),
                plain(&out.loss.hard),
                plain(&out.loss.soft),
                plain(&out.loss.feature),
                out.selection.keep_rate(),
                out.selection.mean_weight(),
            ];
            sums = Some(match sums {
                Some(s) => {
                    let [a, b, c, d, e, f] = s;
                    let [pa, pb, pc, pd, pe, pf] = parts;
                    [a + pa, b + pb, c + pc, d + pd, e + pe, f + pf]
                }
                None => parts,
            });
            let hits = out
                .student_logits
                .detach()
                .without_autodiff()
                .argmax(1)
                .reshape([n])
                .equal(batch.labels.without_autodiff())
                .int()
                .sum();
            correct = Some(match correct {
                Some(c) => c + hits,
                None => hits,
            });
            progress.tick(n);
        }
        let rate = progress.finish();
        let batches = progress.done.max(1) as f64;
        let read = |t: Tensor<1>| -> Vec<f64> {
            t.to_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .unwrap_or_default()
                .into_iter()
                .map(|v| v / batches)
                .collect()
        };
        let [total, hard, soft, feature, keep, weight] = sums.ok_or("the training set is empty")?;
        let student = distiller.student.valid();
        let test_accuracy = accuracy(ctx, |x| student.forward_features(x).logits)?;
        let log = EpochLog {
            epoch: epoch + 1,
            lr,
            loss: read(total)[0],
            hard: read(hard)[0],
            soft: read(soft)[0],
            feature: read(feature)[0],
            train_accuracy: correct.map(|c| c.into_scalar::<i64>()).unwrap_or(0) as f64
                / ctx.train.labels.len() as f64,
            test_accuracy,
            keep_rate: read(keep),
            mean_weight: read(weight),
            images_per_second: rate,
        };
        if !log.loss.is_finite() {
            return Err(format!(
                "distillation loss is {} in epoch {}: lower --lr",
                log.loss,
                epoch + 1
            ));
        }
        println!(
            "epoch {}/{}: lr {:.4}  loss {:.4} (hard {:.4}, soft {:.4}, feature {:.4})  train acc {:.2}%  {} acc {:.2}%  {:.0} img/s",
            log.epoch,
            config.epochs,
            lr,
            log.loss,
            log.hard,
            log.soft,
            log.feature,
            100.0 * log.train_accuracy,
            config.eval_split(),
            100.0 * log.test_accuracy,
            rate
        );
        for (i, name) in names.iter().enumerate().take(k) {
            println!(
                "    teacher {:<14} kept {:5.1}%  mean weight {:.3}",
                name,
                100.0 * log.keep_rate[i],
                log.mean_weight[i]
            );
        }
        history.push(log);
        // Checkpoint: model and optimiser first, the state file (which says the epoch is
        // done) last, each written atomically.
        save_atomic(distiller.clone(), &dir.join("distiller.bpk"))?;
        let tmp = dir.join("optim.tmp");
        optim
            .save(&tmp)
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join("optim.bpk"))
            .map_err(|e| format!("cannot move the optimizer state into place: {e}"))?;
        let state = CheckpointState {
            config: config.clone(),
            plan: plan.clone(),
            teachers: names.clone(),
            epochs_done: epoch + 1,
            history: history.clone(),
        };
        let json = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
        write_atomic(&state_path, &json)?;
    }
    // Export the distilled student, ready to deploy: Burn record and safetensors.
    for file in ["student.bpk", "student.safetensors"] {
        save_atomic(distiller.student.clone(), &plan.dir.join(file))?;
        println!(
            "exported the distilled student to {}",
            plan.dir.join(file).display()
        );
    }
    Ok(history)
}

// ---------------------------------------------------------------------------------------
// Evaluation and results

fn evaluate_student(ctx: &Context) -> Result<ModelReport, String> {
    let path = ctx.args.out.join("student.bpk");
    if !path.is_file() {
        return Err(format!(
            "no exported student at {}: run the distill stage first",
            path.display()
        ));
    }
    let arch = ctx.config.student.as_str();
    with_arch!(ctx, arch, ctx.config.student_width(), |m| {
        let student = load_weights(m.clone(), &path)
            .map_err(|e| e.to_string())?
            .valid();
        let test_accuracy = accuracy(ctx, |x| student.forward_features(x).logits)?;
        // The safetensors export holds the same weights: same accuracy.
        let safetensors = path.with_extension("safetensors");
        if safetensors.is_file() {
            let copy = load_weights(m, &safetensors)
                .map_err(|e| e.to_string())?
                .valid();
            let again = accuracy(ctx, |x| copy.forward_features(x).logits)?;
            if again != test_accuracy {
                return Err(format!(
                    "{} gives {again} but {} gives {test_accuracy}",
                    safetensors.display(),
                    path.display()
                ));
            }
            println!("{} reloads with the same accuracy", safetensors.display());
        }
        Ok(ModelReport {
            name: format!("student-{arch}"),
            params: parameter_count(&student),
            bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
            test_accuracy,
        })
    })
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Report {
    config: Option<RunConfig>,
    teachers: Vec<ModelReport>,
    student: Option<ModelReport>,
    history: Vec<EpochLog>,
    wall_seconds: f64,
}

impl Report {
    fn load(path: &Path) -> Self {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn save(&self, out: &Path) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        write_atomic(&out.join("results.json"), &json)
    }

    fn print(&self) {
        println!();
        println!("| model | parameters | size on disk | test accuracy |");
        println!("|---|---:|---:|---:|");
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
