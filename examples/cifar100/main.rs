//! Multi-teacher distillation on CIFAR-100 with burn-train, top to bottom:
//! data → teachers → `DistillerConfig` → `SupervisedTraining` → evaluation → export.
//!
//! ```text
//! cargo run --release --features download,train --example cifar100 -- --help
//! ```
//!
//! The defaults (narrow models, a 5,000-image subset, a few epochs) finish on a laptop CPU;
//! they show the workflow, not the paper's numbers (`cifar100_experiments` has the long
//! runs and the ablation).

use std::sync::Arc;

use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::module::Module;
use burn::optim::AdamConfig;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::tensor::Device;
use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
use burn::train::{ExecutionStrategy, Learner, MultiDeviceOptim, SupervisedTraining};
use burn_distill::data::{
    Augmentation, CifarVariant, EpochLoader, ImageBatcher, ImageData, Split, cifar,
};
use burn_distill::files::save_weights;
use burn_distill::models::{FoldBatchNorm, ResNetConfig, VggConfig, parameter_count};
use burn_distill::train::{
    Classifier, ClassifierMetrics, DistillMetrics, ProgressRenderer, last_checkpoint,
};
use burn_distill::{
    DistillBatch, DistillationLossConfig, DistillerConfig, FeatureModel, FrozenTeacher,
    ScreeningRule, Teacher, TeacherSelectorConfig, Weighting, evaluate, prescreen,
};
use clap::Parser;

mod args;

use args::{Args, Dataset, Strategy, WeightingChoice};

type Loader = Arc<dyn DataLoader<DistillBatch>>;

fn main() {
    let args = Args::parse();
    if let Err(message) = run(&args) {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let started = std::time::Instant::now();
    let device = args.devices.0[0].clone();
    if args.devices.0.len() > 1 && args.strategy == Strategy::Single {
        return Err(format!(
            "{} devices given: choose --strategy multi or ddp",
            args.devices.0.len()
        ));
    }
    if args.strategy == Strategy::Ddp {
        burn_distill::devices::check_ddp_devices(&args.devices.0).map_err(|e| e.to_string())?;
    }
    device.seed(args.seed);
    let train_device = device.clone().autodiff();

    // 1. Data: the official binary files, downloaded into the cache on first use.
    let variant = match args.dataset {
        Dataset::Cifar100 => CifarVariant::Cifar100,
        Dataset::Cifar10 => CifarVariant::Cifar10,
    };
    let found =
        cifar(variant, args.data_dir.as_deref(), !args.no_download).map_err(|e| e.to_string())?;
    let dir = found.path().to_path_buf();
    let load = |split, limit: usize| -> Result<ImageData, String> {
        let mut data = found.load(split).map_err(|e| e.to_string())?;
        if limit > 0 {
            data.truncate(limit);
        }
        Ok(data)
    };
    // Evaluation on the official test split, or on a stratified hold-out of the training
    // images (--valid-from-train N), reported as "validation".
    let (train, test, split_name) = match args.valid_from_train {
        None => (
            load(Split::Train, args.limit_train)?,
            load(Split::Test, args.limit_test)?,
            "test",
        ),
        Some(n) => {
            let (mut train, valid) = load(Split::Train, 0)?
                .hold_out(n, args.seed)
                .map_err(|e| format!("--valid-from-train: {e}"))?;
            if args.limit_train > 0 {
                train.truncate(args.limit_train);
            }
            (train, valid, "validation")
        }
    };
    println!(
        "data: {} training and {} {split_name} images from {}",
        train.labels.len(),
        test.labels.len(),
        dir.display()
    );
    let (mean, std) = variant.normalization();
    let batcher = |augment: bool| {
        let augmentation = augment.then_some(Augmentation {
            padding: 4,
            flip: true,
        });
        ImageBatcher::new([3, 32, 32], &mean, &std, augmentation, args.seed)
    };
    // Training batches in an order seeded per epoch: a resumed run sees exactly the batches
    // of an uninterrupted one.
    let train = Arc::new(train);
    let train_loader = |epochs_done: usize| -> Loader {
        let loader = EpochLoader::new(
            train.clone(),
            batcher(true),
            args.batch_size,
            train_device.clone(),
            args.seed,
        );
        Arc::new(loader.resume_after(epochs_done))
    };
    let test_loader: Loader = DataLoaderBuilder::new(batcher(false))
        .batch_size(256)
        .set_device(train_device.clone())
        .build(Arc::new(test.clone()));

    // 2. Teachers: trained with burn-train (or loaded from --out), then frozen with their
    //    batch norms folded into the convolutions (inference only needs the folded form).
    let classes = variant.num_classes();
    let vgg13 = VggConfig::vgg13(classes)
        .with_width(args.width)
        .init(&train_device);
    let resnet = ResNetConfig::resnet8x4(classes)
        .with_widths([args.width, args.width, 2 * args.width, 4 * args.width])
        .init(&train_device)
        .map_err(|e| e.to_string())?;
    let vgg13_frozen =
        teacher(args, "vgg13", vgg13, &train_loader(0), &test_loader)?.fold_batch_norm();
    let resnet_frozen =
        teacher(args, "resnet8x4", resnet, &train_loader(0), &test_loader)?.fold_batch_norm();
    let teachers: Vec<Arc<dyn Teacher>> = vec![
        Arc::new(FrozenTeacher::from_model("vgg13", vgg13_frozen.clone())),
        Arc::new(FrozenTeacher::from_model(
            "resnet8x4",
            resnet_frozen.clone(),
        )),
    ];

    // The best single teacher on the test subset (for reference), by one screening pass.
    let batches: Vec<_> = test_loader
        .iter()
        .map(|b| b.map(|b| (b.inputs, b.labels)))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("reading the test data: {e:?}"))?;
    let screened =
        prescreen(&teachers, batches, &ScreeningRule::TopK(1)).map_err(|e| e.to_string())?;
    let teacher_parameters = [
        parameter_count(&vgg13_frozen),
        parameter_count(&resnet_frozen),
    ];
    for (k, teacher) in teachers.iter().enumerate() {
        println!(
            "teacher {k} {}: {} parameters, {split_name} accuracy {:.2} %, cross-entropy {:.3}",
            teacher.name(),
            teacher_parameters[k],
            100.0 * screened.accuracy[k],
            screened.mean_cross_entropy[k]
        );
    }
    let best = screened.kept[0];
    println!(
        "best single teacher: {} (lowest {split_name} cross-entropy, the measure the \
         screening uses)",
        teachers[best].name()
    );

    // 3. The distiller: the student, the teachers, the selector and the loss.
    let weighting = match args.weighting {
        WeightingChoice::Screened => Weighting::Softmax,
        WeightingChoice::Average => Weighting::Average,
        WeightingChoice::Confidence => Weighting::Confidence,
        WeightingChoice::Entropy => Weighting::Entropy,
    };
    let selector = match args.weighting {
        WeightingChoice::Screened => TeacherSelectorConfig::new(),
        _ => TeacherSelectorConfig::unscreened(weighting),
    };
    let steps_per_epoch = train.labels.len().div_ceil(args.batch_size);
    let mut loss = DistillationLossConfig::new().with_feature_weight(args.feature_weight);
    if let Some(epochs) = args.feature_delay_epochs {
        loss = loss.with_feature_delay_steps(epochs * steps_per_epoch);
    }
    let loss = loss.with_feature_norm(args.feature_norm);
    let student = VggConfig::vgg8(classes)
        .with_width(args.width / 2)
        .init(&train_device);
    // The baseline starts from the very same weights.
    let student_start = student.clone();
    let distiller = DistillerConfig::new()
        .with_selector(selector.clone())
        .with_loss(loss)
        .init(student, teachers.clone(), &train_device)
        .map_err(|e| e.to_string())?;

    // 4. burn-train does the loop: metrics, progress, checkpoints (for --resume).
    let run_dir = args.out.join("distill");
    // What the checkpoint depends on (all but the epoch count, which a resume may raise):
    // the library refuses to resume a run with other options, naming both.
    let identity = serde_json::json!({
        "dataset": format!("{:?}", args.dataset), "weighting": format!("{:?}", args.weighting),
        "feature_norm": args.feature_norm, "feature_weight": args.feature_weight,
        "feature_delay_epochs": args.feature_delay_epochs, "teacher_epochs": args.teacher_epochs,
        "batch_size": args.batch_size, "width": args.width, "limit_train": args.limit_train,
        "limit_test": args.limit_test, "valid_from_train": args.valid_from_train, "lr": args.lr,
        "seed": args.seed,
    });
    burn_distill::experiment::resume_point(&run_dir, &identity, args.resume)
        .map_err(|e| e.to_string())?;
    let resume_epoch = if args.resume {
        match last_checkpoint(&run_dir) {
            Some(epoch) if epoch >= args.epochs => {
                return Err(format!(
                    "{} already holds all {epoch} epochs",
                    run_dir.display()
                ));
            }
            Some(epoch) => epoch,
            None => {
                return Err(format!(
                    "--resume: no checkpoint in {}",
                    run_dir.join("checkpoint").display()
                ));
            }
        }
    } else {
        0
    };
    // Accuracy, the loss and each of its parts, the learning rate, the feature term's
    // scheduled weight, and each teacher's keep rate and mean weight.
    let mut training =
        SupervisedTraining::new(&run_dir, train_loader(resume_epoch), test_loader.clone())
            .distill_metrics(teachers.len())
            .with_default_checkpointers()
            .renderer(Box::new(ProgressRenderer::new()))
            .num_epochs(args.epochs);
    if resume_epoch > 0 {
        // The checkpoint restores the weights and the schedule's step count alike.
        training = training.checkpoint(resume_epoch);
    }
    // Several devices: each gets a fork of the distiller (student, adapters, the step count)
    // and runs its own replicas of the teachers, made once.
    let devices: Vec<Device> = args
        .devices
        .0
        .iter()
        .map(|d| d.clone().autodiff())
        .collect();
    match args.strategy {
        Strategy::Single => {}
        Strategy::Multi => {
            let strategy = ExecutionStrategy::multi(devices, MultiDeviceOptim::OptimMainDevice);
            training = training.with_training_strategy(strategy.into());
        }
        Strategy::Ddp => {
            let config = DistributedConfig {
                all_reduce_op: ReduceOperation::Mean,
            };
            training =
                training.with_training_strategy(ExecutionStrategy::ddp(devices, config).into());
        }
    }
    let learner = Learner::new(
        distiller,
        AdamConfig::new().init(),
        ConstantLr::new(args.lr),
    );
    let result = training.launch(learner);
    if let Some(error) = result.error {
        return Err(format!("training stopped: {error:?}"));
    }
    let student = result.model.into_student().valid();

    // 5. Evaluation on the test subset; the same student trained alone, for comparison.
    let batches = || -> Result<Vec<_>, String> {
        test_loader
            .iter()
            .map(|b| b.map(|b| (b.inputs, b.labels)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("reading the test data: {e:?}"))
    };
    let accuracy = evaluate(&student, batches()?)
        .map_err(|e| e.to_string())?
        .accuracy;
    let alone = if args.no_baseline {
        None
    } else {
        // The distiller with soft and feature weight 0 is the student on the labels alone,
        // in the same loop, on the same batches.
        println!("baseline: the same student trained alone (--no-baseline skips it)");
        let labels_only = DistillationLossConfig::new()
            .with_soft_weight(0.0)
            .with_feature_weight(0.0);
        let baseline = DistillerConfig::new()
            .with_selector(selector)
            .with_loss(labels_only)
            .init(student_start, teachers.clone(), &train_device)
            .map_err(|e| e.to_string())?;
        let result =
            SupervisedTraining::new(args.out.join("alone"), train_loader(0), test_loader.clone())
                .classifier_metrics()
                .renderer(Box::new(ProgressRenderer::new()))
                .num_epochs(args.epochs)
                .launch(Learner::new(
                    baseline,
                    AdamConfig::new().init(),
                    ConstantLr::new(args.lr),
                ));
        if let Some(error) = result.error {
            return Err(format!("training the baseline stopped: {error:?}"));
        }
        let alone = result.model.into_student().valid();
        Some(
            evaluate(&alone, batches()?)
                .map_err(|e| e.to_string())?
                .accuracy,
        )
    };

    // 6. What it comes to: size and accuracy against the teachers, then the export.
    let student_parameters = parameter_count(&student);
    let best_accuracy = screened.accuracy[best];
    let compression = teacher_parameters[best] as f64 / student_parameters as f64;
    let kept = accuracy / best_accuracy;
    println!(
        "student vgg8 (width {}): {student_parameters} parameters, {split_name} accuracy {:.2} %",
        args.width / 2,
        100.0 * accuracy
    );
    if let Some(alone) = alone {
        println!(
            "student trained alone: {split_name} accuracy {:.2} % (distillation: {:+.2} points)",
            100.0 * alone,
            100.0 * (accuracy - alone)
        );
    }
    println!(
        "against the best teacher ({}): {compression:.1}x fewer parameters, {:.1} % of its \
         accuracy kept",
        teachers[best].name(),
        100.0 * kept
    );
    let wall = started.elapsed().as_secs_f64();
    println!(
        "wall time: {}",
        burn_distill::progress::format_seconds(wall)
    );
    for name in ["student.bpk", "student.safetensors"] {
        save_weights(student.clone(), args.out.join(name)).map_err(|e| e.to_string())?;
    }
    let teachers_json: Vec<serde_json::Value> = teachers
        .iter()
        .enumerate()
        .map(|(k, t)| {
            serde_json::json!({
                "name": t.name(),
                "parameters": teacher_parameters[k],
                "accuracy": screened.accuracy[k],
                "cross_entropy": screened.mean_cross_entropy[k],
            })
        })
        .collect();
    let mut results = serde_json::json!({
        "split": split_name,
        "teachers": teachers_json,
        "best_teacher": teachers[best].name(),
        "best_teacher_measure": "lowest mean cross-entropy",
        "student": { "name": "vgg8", "parameters": student_parameters, "accuracy": accuracy },
        "student_alone_accuracy": alone,
        "distillation_gain": alone.map(|a| accuracy - a),
        "compression_ratio": compression,
        "accuracy_kept": kept,
        "wall_seconds": wall,
    });
    results[format!("student_{split_name}_accuracy")] = accuracy.into();
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&results).map_err(|e| e.to_string())? + "\n",
    )
    .map_err(|e| format!("{}: {e}", args.out.display()))?;
    println!(
        "exported {} and student.safetensors; results in results.json",
        args.out.join("student.bpk").display()
    );
    Ok(())
}

/// A teacher from `out/teachers/<name>.bpk`, or trained with burn-train and saved there.
fn teacher<M>(args: &Args, name: &str, model: M, train: &Loader, test: &Loader) -> Result<M, String>
where
    M: FeatureModel + 'static,
{
    let path = args.out.join("teachers").join(format!("{name}.bpk"));
    if path.is_file() {
        println!("teacher {name}: loading {}", path.display());
        return burn_distill::files::load_weights(model, &path).map_err(|e| e.to_string());
    }
    println!(
        "teacher {name}: training for {} epochs",
        args.teacher_epochs
    );
    let trained = SupervisedTraining::new(
        args.out.join("teachers").join(name),
        train.clone(),
        test.clone(),
    )
    .classifier_metrics()
    .renderer(Box::new(ProgressRenderer::new()))
    .num_epochs(args.teacher_epochs)
    .launch(Learner::new(
        Classifier::new(model),
        AdamConfig::new().init(),
        ConstantLr::new(args.lr),
    ));
    if let Some(error) = trained.error {
        return Err(format!("training teacher {name} stopped: {error:?}"));
    }
    let model = trained.model.model;
    save_weights(model.clone(), &path).map_err(|e| e.to_string())?;
    Ok(model)
}
