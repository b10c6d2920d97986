//! Every bad input a user can give, and the typed error (or documented panic) it gets. The
//! same cases are listed in the table in the documentation of [`burn_distill::Error`].

use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor};
use burn_distill::data::{CifarVariant, parse_cifar, parse_idx_images, parse_idx_labels};
use burn_distill::files::{load_config, load_config_over, load_weights, save_weights};
use burn_distill::models::{Cnn, CnnConfig, ResNetConfig, VggConfig};
use burn_distill::{
    DistillationLossConfig, Distiller, DistillerConfig, Error, FeatureAdapterConfig, FrozenTeacher,
    ModelOutput, ScreeningRule, SoftLoss, Teacher, TeacherSelectorConfig, Weighting,
};

fn cnn(classes: usize, width: usize, device: &Device) -> Cnn {
    CnnConfig::new(classes).with_width(width).init(device)
}

fn teacher(name: &str, classes: usize, device: &Device) -> Arc<dyn Teacher> {
    Arc::new(FrozenTeacher::from_model(name, cnn(classes, 4, device)))
}

fn distiller(device: &Device) -> Distiller<Cnn> {
    let teachers = vec![teacher("a", 4, device), teacher("b", 4, device)];
    DistillerConfig::new()
        .init(cnn(4, 2, device), teachers, device)
        .unwrap()
}

fn images(n: usize, device: &Device) -> Tensor<4> {
    Tensor::ones([n, 3, 8, 8], device)
}

/// Asserts `result` is an error whose message contains every one of `words`.
fn refused<T: std::fmt::Debug>(
    case: &str,
    result: burn_distill::Result<T>,
    words: &[&str],
) -> Error {
    let err = result.expect_err(case);
    let message = err.to_string();
    for word in words {
        assert!(message.contains(word), "{case}: '{word}' not in: {message}");
    }
    err
}

#[test]
fn teacher_lists_and_model_mismatches() {
    let device = Device::default();
    let err = refused(
        "empty teacher list",
        DistillerConfig::new().init(cnn(4, 2, &device), Vec::new(), &device),
        &["no teachers"],
    );
    assert!(matches!(err, Error::NoTeachers));
    let err = refused(
        "selector for no teachers",
        TeacherSelectorConfig::seed_paper().init(0),
        &["no teachers"],
    );
    assert!(matches!(err, Error::NoTeachers));

    let err = refused(
        "teachers with different class counts",
        DistillerConfig::new().init(
            cnn(4, 2, &device),
            vec![teacher("four", 4, &device), teacher("five", 5, &device)],
            &device,
        ),
        &["four", "five", "4", "5"],
    );
    assert!(matches!(err, Error::ClassCountMismatch { .. }));

    let err = refused(
        "student with another class count",
        DistillerConfig::new().init(cnn(3, 2, &device), vec![teacher("t", 4, &device)], &device),
        &["3", "4"],
    );
    assert!(matches!(
        err,
        Error::StudentClassMismatch {
            student: 3,
            teachers: 4
        }
    ));

    // A teacher that exposes no feature map, for a student that exposes one.
    let logits_only: Arc<dyn Teacher> = Arc::new(FrozenTeacher::new(
        "logits-only",
        cnn(4, 4, &device),
        4,
        Vec::new(),
        |m: &Cnn, x: Tensor<4>| {
            let out = burn_distill::FeatureModel::forward_features(m, x);
            ModelOutput {
                logits: out.logits,
                features: Vec::new(),
            }
        },
    ));
    let err = refused(
        "feature-count mismatch",
        DistillerConfig::new().init(cnn(4, 2, &device), vec![logits_only], &device),
        &["logits-only", "1", "0"],
    );
    assert!(matches!(err, Error::FeatureCountMismatch { .. }));

    // The feature mixture with teachers whose feature maps differ (4 and 8 channels): one
    // adapter cannot serve both. Same-width teachers are accepted.
    let mixture = DistillerConfig::new().with_loss(
        DistillationLossConfig::new().with_feature_target(burn_distill::FeatureTarget::Mixture),
    );
    let wide: Arc<dyn Teacher> = Arc::new(FrozenTeacher::from_model("wide", cnn(4, 8, &device)));
    let err = refused(
        "feature mixture over teachers of different widths",
        mixture.init(
            cnn(4, 2, &device),
            vec![teacher("narrow", 4, &device), wide],
            &device,
        ),
        &[
            "feature_target",
            "narrow",
            "wide",
            "same kinds and channel counts",
        ],
    );
    assert!(matches!(err, Error::InvalidConfig { .. }));
    assert!(
        mixture
            .init(
                cnn(4, 2, &device),
                vec![teacher("a", 4, &device), teacher("b", 4, &device)],
                &device
            )
            .is_ok()
    );
}

#[test]
fn shapes_that_disagree_within_a_batch() {
    let device = Device::default();
    let distiller = distiller(&device);
    let outputs = distiller.teacher_outputs(images(4, &device));
    let labels = Tensor::<1, Int>::from_ints([0, 1, 2, 3], &device);

    // Labels for another batch size.
    let short = Tensor::<1, Int>::from_ints([0, 1, 2], &device);
    let err = refused(
        "labels of another batch size",
        distiller.forward(images(4, &device), short),
        &["labels", "[4]", "[3]"],
    );
    assert!(matches!(err, Error::ShapeMismatch { .. }));

    // Teacher outputs for a batch of 2, student batch of 4.
    let other = distiller.teacher_outputs(images(2, &device));
    refused(
        "teacher outputs of another batch size",
        distiller.forward_with_teacher_outputs(images(4, &device), labels.clone(), &other),
        &["teacher 0 (a) logits", "[4, 4]", "[2, 4]"],
    );

    // One teacher output missing.
    refused(
        "too few teacher outputs",
        distiller.forward_with_teacher_outputs(images(4, &device), labels.clone(), &outputs[..1]),
        &["number of teacher outputs", "[2]", "[1]"],
    );

    // A teacher feature map with the wrong channel count for its adapter.
    let mut wrong = outputs.clone();
    wrong[1].features[0] = Tensor::<4>::zeros([4, 7, 2, 2], &device).into();
    refused(
        "teacher feature map with other channels",
        distiller.forward_with_teacher_outputs(images(4, &device), labels.clone(), &wrong),
        &["teacher 1 (b) feature 0", "[4, 7]"],
    );

    // The selector alone: logits of different shapes, wrong teacher count, labels.
    let selector = TeacherSelectorConfig::seed_paper().init(2).unwrap();
    let a = Tensor::<2>::zeros([4, 4], &device);
    let b = Tensor::<2>::zeros([4, 5], &device);
    refused(
        "selector: logits of different shapes",
        selector.select(&[a.clone(), b], labels.clone()),
        &["teacher 1 logits", "[4, 4]", "[4, 5]"],
    );
    refused(
        "selector: wrong number of teachers",
        selector.select(std::slice::from_ref(&a), labels.clone()),
        &["number of teacher logits", "[2]", "[1]"],
    );
    refused(
        "selector: labels of another batch size",
        selector.select(&[a.clone(), a], Tensor::<1, Int>::from_ints([0], &device)),
        &["labels", "[4]", "[1]"],
    );
}

#[test]
#[should_panic(expected = "student feature map has 5 channels, the adapter expects 3")]
fn adapter_given_a_map_with_other_channels_panics_naming_both() {
    let device = Device::default();
    let adapter = FeatureAdapterConfig::new([3, 8]).init(&device).unwrap();
    adapter.forward(Tensor::zeros([2, 5, 4, 4], &device), [4, 4]);
}

#[test]
fn labels_out_of_range_and_non_finite_outputs() {
    let device = Device::default();
    for (labels, min, max) in [(vec![0, 1, 2, 4], 0, 4), (vec![-1, 0, 1, 2], -1, 2)] {
        let distiller = distiller(&device); // fresh: its first step is checked
        let labels = Tensor::<1, Int>::from_ints(labels.as_slice(), &device);
        let err = refused(
            "labels out of range",
            distiller.forward(images(4, &device), labels),
            &["labels out of range", "0..4"],
        );
        assert!(
            matches!(err, Error::LabelOutOfRange { min: a, max: b, classes: 4 } if a == min && b == max),
            "{err:?}"
        );
    }

    let labels = Tensor::<1, Int>::from_ints([0, 1, 2, 3], &device);
    let poison = |outputs: &mut Vec<ModelOutput>, value: f32, teacher: usize, feature: bool| {
        if feature {
            let map = outputs[teacher].features[0].clone().into_map().unwrap();
            outputs[teacher].features[0] = map.slice_fill([0..1, 0..1, 0..1, 0..1], value).into();
        } else {
            let logits = outputs[teacher].logits.clone();
            outputs[teacher].logits = logits.slice_fill([1..2, 2..3], value);
        }
    };
    for (value, teacher, feature, what) in [
        (f32::NAN, 0, false, "teacher 0 (a) logits"),
        (f32::INFINITY, 1, false, "teacher 1 (b) logits"),
        (f32::NEG_INFINITY, 1, true, "teacher 1 (b) feature 0"),
        (f32::NAN, 0, true, "teacher 0 (a) feature 0"),
    ] {
        let distiller = distiller(&device);
        let mut outputs = distiller.teacher_outputs(images(4, &device));
        poison(&mut outputs, value, teacher, feature);
        let err = refused(
            what,
            distiller.forward_with_teacher_outputs(images(4, &device), labels.clone(), &outputs),
            &["non-finite", what],
        );
        assert!(matches!(err, Error::NonFinite { .. }));
    }

    // Checks run before the first optimizer step and then every `check_every` optimizer
    // steps, not on the others; the pace is the distiller's own (copied with it), so a
    // clone taken before an `advance` keeps the old pace.
    let teachers = vec![teacher("a", 4, &device)];
    let distiller = DistillerConfig::new()
        .with_check_every(3)
        .init(cnn(4, 2, &device), teachers, &device)
        .unwrap();
    let good = distiller.teacher_outputs(images(4, &device));
    let mut bad = good.clone();
    poison(&mut bad, f32::NAN, 0, false);
    let run = |distiller: &Distiller<_>, outputs: &[ModelOutput]| {
        distiller.forward_with_teacher_outputs(images(4, &device), labels.clone(), outputs)
    };
    assert!(run(&distiller, &good).is_ok()); // step 0: checked, fine
    assert!(matches!(
        run(&distiller, &bad),
        Err(Error::NonFinite { .. })
    )); // still step 0
    let at_step_0 = distiller.clone();
    let distiller = distiller.advance();
    assert!(run(&distiller, &bad).is_ok()); // steps 1 and 2: not checked
    let distiller = distiller.advance();
    assert!(run(&distiller, &bad).is_ok());
    let distiller = distiller.advance();
    assert!(matches!(
        run(&distiller, &bad),
        Err(Error::NonFinite { .. })
    )); // step 3: checked
    assert_eq!(distiller.optimizer_steps(), 3);
    assert!(matches!(
        run(&at_step_0, &bad),
        Err(Error::NonFinite { .. })
    ));
}

#[test]
fn invalid_configuration_values() {
    let cases: Vec<(&str, burn_distill::Result<()>, &[&str])> = vec![
        (
            "temperature 0",
            DistillationLossConfig::new()
                .with_temperature(0.0)
                .init()
                .map(drop),
            &["temperature = 0"],
        ),
        (
            "negative temperature",
            DistillationLossConfig::new()
                .with_temperature(-2.0)
                .init()
                .map(drop),
            &["temperature = -2"],
        ),
        (
            "NaN temperature",
            DistillationLossConfig::new()
                .with_temperature(f64::NAN)
                .init()
                .map(drop),
            &["temperature = NaN"],
        ),
        (
            "negative hard weight",
            DistillationLossConfig::new()
                .with_hard_weight(-1.0)
                .init()
                .map(drop),
            &["hard_weight = -1"],
        ),
        (
            "NaN soft weight",
            DistillationLossConfig::new()
                .with_soft_weight(f64::NAN)
                .init()
                .map(drop),
            &["soft_weight = NaN"],
        ),
        (
            "infinite feature weight",
            DistillationLossConfig::new()
                .with_feature_weight(f64::INFINITY)
                .init()
                .map(drop),
            &["feature_weight = inf"],
        ),
        (
            "negative DKD weight",
            DistillationLossConfig::new()
                .with_soft_loss(SoftLoss::Dkd {
                    target_weight: 1.0,
                    non_target_weight: -8.0,
                })
                .init()
                .map(drop),
            &["non_target_weight = -8"],
        ),
        (
            "selector tau 0",
            TeacherSelectorConfig::seed_paper()
                .with_tau(0.0)
                .init(2)
                .map(drop),
            &["tau = 0"],
        ),
        (
            "TopK(0)",
            TeacherSelectorConfig::seed_paper()
                .with_screening(ScreeningRule::TopK(0))
                .init(3)
                .map(drop),
            &["TopK(0)"],
        ),
        (
            "TopK(k > K)",
            TeacherSelectorConfig::seed_paper()
                .with_screening(ScreeningRule::TopK(4))
                .init(3)
                .map(drop),
            &["TopK(4)"],
        ),
        (
            "NaN MaxCrossEntropy",
            TeacherSelectorConfig::seed_paper()
                .with_screening(ScreeningRule::MaxCrossEntropy(f64::NAN))
                .init(3)
                .map(drop),
            &["NaN"],
        ),
        (
            "Fixed weights of the wrong length",
            TeacherSelectorConfig::seed_paper()
                .with_weighting(Weighting::Fixed(vec![1.0, 2.0]))
                .init(3)
                .map(drop),
            &["Fixed([1.0, 2.0])", "one weight per teacher"],
        ),
        (
            "Fixed weights all zero",
            TeacherSelectorConfig::seed_paper()
                .with_weighting(Weighting::Fixed(vec![0.0, 0.0, 0.0]))
                .init(3)
                .map(drop),
            &["greater than 0"],
        ),
        (
            "negative Fixed weight",
            TeacherSelectorConfig::seed_paper()
                .with_weighting(Weighting::Fixed(vec![1.0, -1.0, 0.0]))
                .init(3)
                .map(drop),
            &["-1.0", ">= 0"],
        ),
        (
            "adapter with 0 channels",
            FeatureAdapterConfig::new([0, 8])
                .init(&Device::default())
                .map(drop),
            &["0"],
        ),
        (
            "ResNet depth not 6n + 2",
            ResNetConfig::new(10, 10).init(&Device::default()).map(drop),
            &["depth = 10", "6n + 2"],
        ),
    ];
    for (case, result, words) in cases {
        let err = refused(case, result, words);
        assert!(
            matches!(err, Error::InvalidConfig { .. }),
            "{case}: {err:?}"
        );
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = crate::common::temp_path("bad", name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn config_files_with_unknown_fields_or_wrong_types() {
    let dir = temp("config");
    let path = dir.join("distiller.json");
    let cases: [(&str, &str, &[&str]); 5] = [
        (
            "unknown top-level field",
            r#"{"check_evry": 10}"#,
            &["unknown field check_evry"],
        ),
        (
            "unknown nested field",
            r#"{"selector": {"tua": 2.0}}"#,
            &["selector.tua"],
        ),
        (
            "wrong type",
            r#"{"loss": {"temperature": "four"}}"#,
            &["does not match", "string"],
        ),
        (
            "unknown enum variant",
            r#"{"selector": {"weighting": "Best"}}"#,
            &["Best"],
        ),
        ("not JSON", "temperature = 4", &["not valid JSON"]),
    ];
    for (case, text, words) in cases {
        std::fs::write(&path, text).unwrap();
        let err = refused(
            case,
            load_config_over(&path, &DistillerConfig::new()),
            words,
        );
        assert!(matches!(err, Error::ConfigFile { .. }), "{case}: {err:?}");
        assert!(err.to_string().contains("distiller.json"), "{err}");
    }
    // A valid file loads, and its values are checked when the distiller is built.
    std::fs::write(&path, r#"{"loss": {"temperature": -1.0}}"#).unwrap();
    let config = load_config_over(&path, &DistillerConfig::new()).unwrap();
    // Without a base, every field is required.
    refused(
        "partial file without a base",
        load_config::<DistillerConfig>(&path),
        &["missing field"],
    );
    let device = Device::default();
    refused(
        "negative temperature from a file",
        config.init(cnn(4, 2, &device), vec![teacher("t", 4, &device)], &device),
        &["temperature = -1"],
    );
    let err = refused(
        "missing file",
        load_config::<DistillerConfig>(dir.join("absent.json")),
        &["absent.json"],
    );
    assert!(matches!(err, Error::Io { .. }));
    let _ = std::fs::remove_dir_all(dir);
}

fn record(label: u8) -> Vec<u8> {
    let mut bytes = vec![label / 5, label];
    bytes.extend(std::iter::repeat_n(0u8, 3072));
    bytes
}

#[test]
fn corrupt_data_files() {
    let path = Path::new("train.bin");
    let mut bytes = record(3);
    bytes.extend(record(4));
    bytes.truncate(bytes.len() - 10);
    let err = refused(
        "truncated CIFAR file",
        parse_cifar(CifarVariant::Cifar100, &bytes, path),
        &["train.bin", "truncated", "record 1"],
    );
    assert!(matches!(err, Error::TruncatedFile { record: 1, .. }));
    let err = refused(
        "empty CIFAR file",
        parse_cifar(CifarVariant::Cifar100, &[], path),
        &["train.bin"],
    );
    assert!(matches!(err, Error::TruncatedFile { .. }));
    let mut bytes = record(3);
    bytes.extend(record(4));
    bytes[3074 + 1] = 100;
    let err = refused(
        "CIFAR label out of range",
        parse_cifar(CifarVariant::Cifar100, &bytes, path),
        &["record 1", "label 100"],
    );
    assert!(matches!(err, Error::CorruptRecord { record: 1, .. }));
    // CIFAR-10 records (3073 bytes) read as CIFAR-100 (3074): the size does not divide.
    let cifar10 = vec![1u8; 3073 * 2];
    refused(
        "CIFAR-10 file read as CIFAR-100",
        parse_cifar(CifarVariant::Cifar100, &cifar10, path),
        &["3074-byte records"],
    );

    let idx_path = Path::new("train-images-idx3-ubyte");
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28];
    images.extend(vec![0u8; 2 * 28 * 28]);
    assert!(parse_idx_images(&images, idx_path).is_ok());
    let mut wrong_magic = images.clone();
    wrong_magic[3] = 1;
    let err = refused(
        "IDX wrong magic",
        parse_idx_images(&wrong_magic, idx_path),
        &["magic number", "idx3"],
    );
    assert!(matches!(err, Error::InvalidFormat { .. }));
    let truncated = &images[..images.len() - 1];
    refused(
        "IDX truncated",
        parse_idx_images(truncated, idx_path),
        &["truncated"],
    );
    refused(
        "IDX header only",
        parse_idx_images(&images[..10], idx_path),
        &["idx3"],
    );
    let labels_path = Path::new("train-labels-idx1-ubyte");
    let labels = [0, 0, 8, 1, 0, 0, 0, 3, 1, 12, 2];
    let err = refused(
        "IDX label out of range",
        parse_idx_labels(&labels, 10, labels_path),
        &["record 1", "label 12"],
    );
    assert!(matches!(err, Error::CorruptRecord { record: 1, .. }));
    let extra = [0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3];
    refused(
        "IDX wrong size",
        parse_idx_labels(&extra, 10, labels_path),
        &["2 labels", "3"],
    );
}

#[test]
fn weights_files_that_do_not_fit_and_unwritable_outputs() {
    let device = Device::default();
    let dir = temp("weights");
    // A checkpoint of another architecture.
    let vgg13 = dir.join("vgg13.bpk");
    save_weights(VggConfig::vgg13(10).with_width(2).init(&device), &vgg13).unwrap();
    let err = refused(
        "checkpoint of another architecture",
        load_weights(VggConfig::vgg8(10).with_width(2).init(&device), &vgg13),
        &["vgg13.bpk", "Vgg"],
    );
    assert!(matches!(err, Error::Weights { .. }));
    // Wrong shapes: same architecture, other width.
    let err = refused(
        "weights with wrong shapes",
        load_weights(VggConfig::vgg13(10).with_width(4).init(&device), &vgg13),
        &["vgg13.bpk"],
    );
    assert!(matches!(err, Error::Weights { .. }));
    // Missing keys: a VGG8 file (one conv per stage) for a VGG13 (two per stage).
    let partial = dir.join("vgg8.safetensors");
    save_weights(VggConfig::vgg8(10).with_width(2).init(&device), &partial).unwrap();
    let err = refused(
        "weights file missing keys",
        load_weights(VggConfig::vgg13(10).with_width(2).init(&device), &partial),
        &["missing", "layers.1"],
    );
    assert!(matches!(err, Error::Weights { .. }));
    // Wrong shapes in a safetensors file name the parameter and both shapes.
    let small = dir.join("small.safetensors");
    save_weights(cnn(4, 2, &device), &small).unwrap();
    refused(
        "safetensors with wrong shapes",
        load_weights(cnn(4, 3, &device), &small),
        &["ShapeMismatch"],
    );
    // An output folder that cannot be written: its parent is a file.
    let blocker = dir.join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let target = blocker.join("student.bpk");
    let err = refused(
        "unwritable output",
        save_weights(cnn(4, 2, &device), &target),
        &["not-a-folder"],
    );
    assert!(matches!(err, Error::Io { .. }));
    assert_eq!(
        std::fs::read(&blocker).unwrap(),
        b"x",
        "nothing saved was lost"
    );
    let _ = std::fs::remove_dir_all(dir);
}
