//! The pieces an experiment harness needs, taken into the library: paired statistics, the
//! soft-target audit of weighting rules, the models and datasets by name, and a burn-train
//! run folder's last complete checkpoint.

use burn::tensor::{Device, Tensor};
use burn_distill::data::{ImageData, ImageDataset};
use burn_distill::models::Architecture;
use burn_distill::stats::{mean_std, paired_t_interval, t_quantile_975};
use burn_distill::train::{last_checkpoint, read_history};
use burn_distill::{
    Error, FeatureModel, Granularity, SoftTargetAudit, TeacherSelectorConfig, Weighting,
};

use crate::common::{cpu_devices, labels, matrix, temp_path};

/// Differences 1..5: mean 3, sample sd √2.5 = 1.5811; t(0.975, 4) = 2.776 (NIST table), so
/// the interval is 3 ± 2.776 · 1.5811 / √5 = 3 ± 1.9630. Identity: equal differences give a
/// zero-width interval at their value; one value gives none.
#[test]
fn paired_interval_matches_the_t_formula() {
    let d = [1.0, 2.0, 3.0, 4.0, 5.0];
    let (mean, sd) = mean_std(&d);
    assert!((mean - 3.0).abs() < 1e-12 && (sd - 2.5f64.sqrt()).abs() < 1e-12);
    let (low, high) = paired_t_interval(&d).unwrap();
    let half = 2.776 * 2.5f64.sqrt() / 5f64.sqrt();
    assert!((low - (3.0 - half)).abs() < 1e-12 && (high - (3.0 + half)).abs() < 1e-12);
    assert!((half - 1.9630).abs() < 1e-4);
    assert_eq!(paired_t_interval(&[0.5, 0.5, 0.5]), Some((0.5, 0.5)));
    assert_eq!(paired_t_interval(&[0.5]), None);
    assert_eq!(paired_t_interval(&[]), None);
    assert_eq!(mean_std(&[]), (0.0, 0.0));
    // The table's ends, and beyond it the 30 degrees' quantile.
    assert_eq!(t_quantile_975(1), 12.706);
    assert_eq!(t_quantile_975(30), 2.042);
    assert_eq!(t_quantile_975(1000), 2.042);
}

#[test]
#[should_panic(expected = "at least one degree of freedom")]
fn t_quantile_needs_a_degree_of_freedom() {
    t_quantile_975(0);
}

/// Three teachers with known logits on four samples, against the audit's definitions worked
/// out by hand: equal weights (AVER), the strongest teacher alone, and the per-batch screened
/// rule (weights 1 : 0 : 0 here, as teacher 0's batch cross-entropy is far below the others').
#[test]
fn soft_target_audit_matches_hand_computed_rules() {
    for (name, device) in cpu_devices() {
        // Teacher 0: right on samples 0, 1, 2 (confident); teacher 1: right on 3 only;
        // teacher 2: right on 1 and 3. Labels 0, 1, 0, 1.
        let t0 = matrix(
            &[
                vec![6.0, 0.0],
                vec![0.0, 6.0],
                vec![6.0, 0.0],
                vec![1.0, 0.0],
            ],
            &device,
        );
        let t1 = matrix(
            &[
                vec![0.0, 1.0],
                vec![1.0, 0.0],
                vec![0.0, 1.0],
                vec![0.0, 1.0],
            ],
            &device,
        );
        let t2 = matrix(
            &[
                vec![0.0, 1.0],
                vec![0.0, 1.0],
                vec![0.0, 1.0],
                vec![0.0, 1.0],
            ],
            &device,
        );
        let y = labels(&[0, 1, 0, 1], &device);
        let selectors = [
            TeacherSelectorConfig::unscreened(Weighting::Average),
            TeacherSelectorConfig::unscreened(Weighting::Fixed(vec![1.0, 0.0, 0.0])),
            TeacherSelectorConfig::new().with_granularity(Granularity::PerBatch),
        ]
        .map(|c| c.init(3).unwrap());
        let temperature = 2.0;
        let mut audit = SoftTargetAudit::new(selectors.to_vec(), temperature, 0).unwrap();
        // Two batches: the sums run over both.
        let half = |t: &Tensor<2>, r: std::ops::Range<usize>| t.clone().slice([r, 0..2]);
        for r in [0..2, 2..4] {
            let logits = [
                half(&t0, r.clone()),
                half(&t1, r.clone()),
                half(&t2, r.clone()),
            ];
            audit.update(&logits, y.clone().slice([r])).unwrap();
        }
        let report = audit.finish().unwrap();
        assert_eq!(report.samples, 4, "{name}");
        assert_eq!(report.teacher_accuracy, vec![0.75, 0.25, 0.5], "{name}");
        assert_eq!(report.strongest_wrong, 1, "{name}");
        // softmax([a, b] / 2) mass on the label, per teacher and sample.
        let p = |a: f64, b: f64| 1.0 / (1.0 + ((b - a) / temperature).exp());
        let mass = [
            [p(6.0, 0.0), p(6.0, 0.0), p(6.0, 0.0), p(0.0, 1.0)],
            [p(0.0, 1.0), p(0.0, 1.0), p(0.0, 1.0), p(1.0, 0.0)],
            [p(0.0, 1.0), p(1.0, 0.0), p(0.0, 1.0), p(1.0, 0.0)],
        ];
        let right = [
            [1.0, 1.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
            [0.0, 1.0, 0.0, 1.0],
        ];
        // AVER: the target's label mass is the mean of the teachers'; its top class is the
        // label where that mean is above 1/2.
        let aver_mass: Vec<f64> = (0..4)
            .map(|i| (0..3).map(|k| mass[k][i]).sum::<f64>() / 3.0)
            .collect();
        let aver = &report.rules[0];
        let close = |a: f64, b: f64| (a - b).abs() < 1e-5;
        assert!(
            close(aver.label_mass, aver_mass.iter().sum::<f64>() / 4.0),
            "{name}: {aver:?}"
        );
        let hits = aver_mass.iter().filter(|m| **m > 0.5).count() as f64;
        assert!(close(aver.target_accuracy, hits / 4.0), "{name}: {aver:?}");
        let on_right: f64 = (0..4)
            .map(|i| (0..3).map(|k| right[k][i]).sum::<f64>() / 3.0)
            .sum();
        assert!(
            close(aver.weight_on_right, on_right / 4.0),
            "{name}: {aver:?}"
        );
        // Sample 3 is the strongest teacher's one miss: teachers 1 and 2 are right there.
        assert!(
            close(aver.weight_on_right_when_best_wrong, 2.0 / 3.0),
            "{name}: {aver:?}"
        );
        let sample3_hit = if aver_mass[3] > 0.5 { 1.0 } else { 0.0 };
        assert!(
            close(aver.target_accuracy_when_best_wrong, sample3_hit),
            "{name}"
        );
        assert_eq!(aver.keep_rate, vec![1.0; 3], "{name}");
        // The strongest teacher alone: its own numbers.
        let alone = &report.rules[1];
        assert!(
            close(alone.target_accuracy, 0.75) && close(alone.weight_on_right, 0.75),
            "{name}"
        );
        let own_mass = mass[0].iter().sum::<f64>() / 4.0;
        assert!(close(alone.label_mass, own_mass), "{name}: {alone:?}");
        assert!(close(alone.weight_on_right_when_best_wrong, 0.0), "{name}");
        // Every rule's weights are a distribution over the teachers for every sample.
        for rule in &report.rules {
            let total: f64 = rule.mean_weight.iter().sum();
            assert!(close(total, 1.0), "{name}: {rule:?}");
        }
        // Per batch, teacher 0's mean cross-entropy (0.0025, then 0.66) is below the mean of
        // the three (0.71, 0.76) and the others' (1.31 and 0.81 in both) above it: only
        // teacher 0 is kept, with all the weight.
        let screened = &report.rules[2];
        assert_eq!(screened.keep_rate, vec![1.0, 0.0, 0.0], "{name}");
        assert!(close(screened.label_mass, own_mass), "{name}: {screened:?}");
    }
}

#[test]
fn soft_target_audit_rejects_bad_input() {
    let device = Device::default();
    let two = TeacherSelectorConfig::new().init(2).unwrap();
    let three = TeacherSelectorConfig::new().init(3).unwrap();
    let invalid = |result: burn_distill::Result<SoftTargetAudit>, what: &str| match result {
        Err(Error::InvalidConfig { field, .. }) => assert_eq!(field, what),
        other => panic!("expected an invalid {what}, got {other:?}"),
    };
    invalid(SoftTargetAudit::new(vec![], 1.0, 0), "selectors");
    invalid(
        SoftTargetAudit::new(vec![two.clone(), three], 1.0, 0),
        "selectors",
    );
    invalid(SoftTargetAudit::new(vec![two.clone()], 1.0, 2), "strongest");
    invalid(
        SoftTargetAudit::new(vec![two.clone()], f64::NAN, 0),
        "temperature",
    );
    // Three teachers' logits for a two-teacher audit; then no batch at all.
    let mut audit = SoftTargetAudit::new(vec![two.clone()], 1.0, 0).unwrap();
    let logits = vec![Tensor::<2>::zeros([2, 3], &device); 3];
    let err = audit.update(&logits, labels(&[0, 1], &device)).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    let empty = SoftTargetAudit::new(vec![two], 1.0, 0).unwrap().finish();
    assert!(
        matches!(empty, Err(Error::ShapeMismatch { .. })),
        "{empty:?}"
    );
}

/// Every architecture by name: the name round-trips, the case does not matter, and the model
/// built has the classes and input channels asked for (a forward pass on a 1-channel
/// 28x28 batch gives `[N, classes]` logits).
#[test]
fn architectures_by_name_build_the_models_asked_for() {
    let device = Device::default();
    for arch in Architecture::ALL {
        assert_eq!(arch.to_string().parse::<Architecture>().unwrap(), arch);
        assert_eq!(
            arch.name().to_uppercase().parse::<Architecture>().unwrap(),
            arch
        );
        let model = arch.init(7, 4, 1, &device).unwrap();
        assert_eq!(model.num_classes(), 7, "{arch}");
        let out = model.forward_features(Tensor::<4>::zeros([2, 1, 28, 28], &device));
        assert_eq!(out.logits.dims(), [2, 7], "{arch}");
        assert!(
            model.feature_specs().is_some_and(|s| !s.is_empty()),
            "{arch}"
        );
    }
    let err = "resnet20".parse::<Architecture>().unwrap_err();
    assert!(err.to_string().contains("resnet20"), "{err}");
    for arch in Architecture::ALL {
        for (classes, width, channels) in [(10, 0, 3), (0, 4, 3), (10, 4, 0)] {
            let err = arch.init(classes, width, channels, &device).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { .. }), "{arch}: {err}");
        }
    }
    // The ResNet configuration itself refuses a zero width instead of panicking in a layer.
    let zero = burn_distill::models::ResNetConfig::resnet8x4(10).with_widths([4, 0, 8, 16]);
    assert!(matches!(
        zero.init(&device),
        Err(Error::InvalidConfig { .. })
    ));
}

/// Datasets by name: names, normalisation and augmentation per dataset, and a training /
/// evaluation pair from a held-out count (stratified: 2 of each class's 10 for 4 of 20).
#[test]
fn datasets_by_name_and_held_out_pairs() {
    for dataset in ImageDataset::ALL {
        assert_eq!(
            dataset.to_string().parse::<ImageDataset>().unwrap(),
            dataset
        );
        let (mean, std) = dataset.normalization();
        let channels = if dataset == ImageDataset::FashionMnist {
            1
        } else {
            3
        };
        assert_eq!((mean.len(), std.len()), (channels, channels), "{dataset}");
    }
    assert_eq!(ImageDataset::Cifar10.augmentation().padding, 4);
    assert_eq!(ImageDataset::FashionMnist.augmentation().padding, 2);
    let err = "mnist".parse::<ImageDataset>().unwrap_err();
    assert!(err.to_string().contains("mnist") && err.to_string().contains("fashion-mnist"));
    let data = ImageData {
        channels: 1,
        height: 1,
        width: 1,
        num_classes: 2,
        images: (0..20).collect(),
        labels: (0..20).map(|i| (i % 2) as u8).collect(),
    };
    let (train, held) = data.hold_out(4, 3).unwrap();
    assert_eq!((train.labels.len(), held.labels.len()), (16, 4));
    assert_eq!(held.labels.iter().filter(|l| **l == 0).count(), 2);
    // Every image once, in one part or the other.
    let mut all: Vec<u8> = train.images.iter().chain(&held.images).copied().collect();
    all.sort();
    assert_eq!(all, (0..20).collect::<Vec<u8>>());
    for bad in [20, 21] {
        let err = data.hold_out(bad, 3).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("held-out images = {bad}")),
            "{err}"
        );
    }
    // Fashion-MNIST files looked for in a folder of one's own: a clear error naming them.
    let dir = temp_path("toolkit", "no-fashion");
    let files = ImageDataset::FashionMnist.open(Some(&dir), false).unwrap();
    assert_eq!(files.path(), dir.as_path());
    let err = files.train_eval(Some(10), 1).unwrap_err();
    assert!(err.to_string().contains("train-images-idx3-ubyte"), "{err}");
}

/// The last epoch with all three checkpoint files; a partly written epoch (a run killed while
/// saving) is skipped; no folder, no checkpoint. A folder without burn-train logs has no
/// history: an error naming it.
#[test]
fn last_checkpoint_skips_partial_epochs_and_history_needs_logs() {
    let dir = temp_path("toolkit", "checkpoints");
    assert_eq!(last_checkpoint(&dir), None);
    let checkpoint = dir.join("checkpoint");
    std::fs::create_dir_all(&checkpoint).unwrap();
    assert_eq!(last_checkpoint(&dir), None);
    for epoch in [1, 2] {
        for part in ["model", "optim", "scheduler"] {
            std::fs::write(checkpoint.join(format!("{part}-{epoch}.bpk")), b"x").unwrap();
        }
    }
    std::fs::write(checkpoint.join("model-3.bpk"), b"x").unwrap();
    std::fs::write(checkpoint.join("optim-3.bpk"), b"x").unwrap();
    assert_eq!(last_checkpoint(&dir), Some(2));
    std::fs::write(checkpoint.join("scheduler-3.bpk"), b"x").unwrap();
    assert_eq!(last_checkpoint(&dir), Some(3));
    let err = read_history(&dir, 2).unwrap_err();
    assert!(matches!(err, Error::MissingData { .. }), "{err}");
    assert!(
        err.to_string().contains(&dir.display().to_string()),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The experiments harness's teachers were saved from an enum module of its own,
/// `enum Net { Vgg(Vgg), ResNet(ResNet) }`; `ZooModel` has the same variant names, so such a
/// file loads into it and gives the same logits.
#[test]
fn zoo_model_loads_the_files_of_the_harness_enum() {
    use burn::module::Module;
    use burn_distill::files::{load_weights, save_weights};
    use burn_distill::models::{ResNet, Vgg, VggConfig};

    #[derive(Module, Debug)]
    #[allow(clippy::large_enum_variant, dead_code)]
    enum Net {
        Vgg(Vgg),
        ResNet(ResNet),
    }
    let device = Device::default();
    let saved = Net::Vgg(VggConfig::vgg8(5).with_width(4).init(&device));
    let path = temp_path("toolkit", "net").with_extension("bpk");
    save_weights(saved.clone(), &path).unwrap();
    let fresh = Architecture::Vgg8.init(5, 4, 3, &device).unwrap();
    let loaded = load_weights(fresh, &path).unwrap();
    let x = Tensor::<4>::ones([2, 3, 32, 32], &device);
    let Net::Vgg(vgg) = &saved else {
        unreachable!()
    };
    let want = vgg.forward_features(x.clone()).logits.into_data();
    let got = loaded.forward_features(x).logits.into_data();
    assert_eq!(want, got);
    let _ = std::fs::remove_file(path);
}

/// Every screening rule and feature distance reads back what it writes; malformed text is a
/// typed error naming the field.
#[test]
fn screening_rules_and_feature_norms_parse_from_text() {
    use burn_distill::{FeatureNorm, ScreeningRule};
    let rules = [
        ("below-mean", ScreeningRule::BelowMean),
        ("top-k:2", ScreeningRule::TopK(2)),
        ("max-ce:0.5", ScreeningRule::MaxCrossEntropy(0.5)),
        ("relative:1.5", ScreeningRule::RelativeToBest(1.5)),
        ("keep-all", ScreeningRule::KeepAll),
    ];
    for (text, rule) in rules {
        assert_eq!(text.parse::<ScreeningRule>().unwrap(), rule);
        assert_eq!(rule.to_string(), text);
    }
    for bad in [
        "",
        "below",
        "top-k",
        "top-k:",
        "top-k:-1",
        "relative:x",
        "keep-all:1",
    ] {
        let err = bad.parse::<ScreeningRule>().unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { field: "screening", value, .. } if value == bad),
            "{bad}: {err}"
        );
    }
    for (text, norm) in [
        ("none", FeatureNorm::None),
        ("teacher", FeatureNorm::TeacherMeanSquare),
    ] {
        assert_eq!(text.parse::<FeatureNorm>().unwrap(), norm);
        assert_eq!(norm.to_string(), text);
    }
    let err = "Teacher".parse::<FeatureNorm>().unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidConfig {
                field: "feature_norm",
                ..
            }
        ),
        "{err}"
    );
}

/// Charts are PNG files of the documented size (bars: 170 px per bar, at least 600; lines:
/// 900 × 540, read from the IHDR chunk); a NaN value, no bars or an unwritable path is a
/// typed error naming the file, and no file is left for a refused chart.
#[cfg(feature = "charts")]
#[test]
fn charts_are_pngs_of_their_size_and_refuse_bad_values() {
    use burn_distill::charts::{Bar, Series, bar_chart, line_chart};
    let dir = temp_path("toolkit", "charts");
    std::fs::create_dir_all(&dir).unwrap();
    let size = |path: &std::path::Path| {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        (be(16), be(20))
    };
    let bars: Vec<Bar> = (0..5)
        .map(|i| Bar::new(format!("method number {i}"), 60.0 + i as f64, 0.5))
        .collect();
    bar_chart(dir.join("five.png"), "five", &bars).unwrap();
    assert_eq!(size(&dir.join("five.png")), (850, 560));
    bar_chart(dir.join("two.png"), "two", &bars[..2]).unwrap();
    assert_eq!(size(&dir.join("two.png")), (600, 560));
    let line = Series::new("valid", vec![(1.0, 10.0), (2.0, 30.0)]);
    line_chart(dir.join("line.png"), "line", "epoch", &[line]).unwrap();
    assert_eq!(size(&dir.join("line.png")), (900, 540));

    let nan = [Bar::new("nan", f64::NAN, 0.0)];
    for (result, file) in [
        (bar_chart(dir.join("nan.png"), "t", &nan), "nan.png"),
        (bar_chart(dir.join("none.png"), "t", &[]), "none.png"),
        (
            line_chart(
                dir.join("inf.png"),
                "t",
                "x",
                &[Series::new("s", vec![(1.0, f64::INFINITY)])],
            ),
            "inf.png",
        ),
        (
            bar_chart(dir.join("no/such/dir.png"), "t", &bars),
            "dir.png",
        ),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::Chart { path, .. } if path.ends_with(file)),
            "{err}"
        );
        assert!(!dir.join(file).exists());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// The audit's markdown table: one row per named rule with the report's numbers, formatted
/// as documented (percent with two decimals, fractions with three, per-teacher lists).
#[test]
fn soft_target_report_renders_one_row_per_rule() {
    use burn_distill::{RuleReport, SoftTargetReport};
    let rule = RuleReport {
        target_accuracy: 0.8125,
        label_mass: 0.5,
        weight_on_right: 0.75,
        weight_on_right_when_best_wrong: 0.25,
        target_accuracy_when_best_wrong: 0.1,
        keep_rate: vec![1.0, 0.5],
        mean_weight: vec![0.7, 0.3],
    };
    let report = SoftTargetReport {
        samples: 16,
        teacher_accuracy: vec![0.8, 0.6],
        strongest_wrong: 3,
        rules: vec![rule],
    };
    let table = report.markdown(&["AVER"], &["a", "b"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("| rule |") && lines[0].contains("keep rate (a, b)"));
    assert_eq!(
        lines[2],
        "| AVER | 81.25% | 0.500 | 0.750 | 0.250 | 10.00% | 1.00 / 0.50 | 0.70 / 0.30 |"
    );
}

/// The SGD recipe's schedule is PyTorch's MultiStepLR by step: the rate at optimizer step s
/// (from 0) is lr · gamma^(number of milestones <= s). By hand for 10 epochs of 3 steps,
/// decays after 50 % and 80 % (epochs 5 and 8: steps 15 and 24): 0.1 for steps 0..15, 0.01
/// for 15..24, 0.001 for 24..30. Fractions that round to epoch 0 or to the end, and repeats,
/// are dropped; bad values are errors naming the field.
#[test]
fn sgd_recipe_decays_at_the_fractions_given() {
    use burn_distill::train::SgdRecipeConfig;

    let recipe = SgdRecipeConfig::new()
        .with_lr(0.1)
        .with_decay_at(vec![0.8, 0.5]);
    assert_eq!(recipe.decay_steps(10, 3).unwrap(), [15, 24]);
    let mut schedule = recipe.schedule(10, 3).unwrap().init().unwrap();
    for step in 0..30 {
        let want = match step {
            0..15 => 0.1,
            15..24 => 0.01,
            _ => 0.001,
        };
        let got = schedule.step().base();
        assert!((got - want).abs() < 1e-12, "step {step}: {got} != {want}");
    }
    // The defaults: CRD's 240 epochs decay after epochs 150, 180 and 210.
    let crd = SgdRecipeConfig::new();
    assert_eq!(
        (crd.lr, crd.momentum, crd.weight_decay, crd.gamma),
        (0.05, 0.9, 5e-4, 0.1)
    );
    assert_eq!(crd.decay_steps(240, 1).unwrap(), [150, 180, 210]);
    // 0 and 1 fall on the run's ends; 0.74 and 0.75 both round to epoch 3 of 4.
    let edges = SgdRecipeConfig::new().with_decay_at(vec![0.0, 1.0, 0.74, 0.75]);
    assert_eq!(edges.decay_steps(4, 10).unwrap(), [30]);
    assert_eq!(
        SgdRecipeConfig::new()
            .with_decay_at(vec![])
            .decay_steps(4, 10)
            .unwrap(),
        Vec::<usize>::new()
    );
    for (recipe, field) in [
        (SgdRecipeConfig::new().with_lr(0.0), "lr"),
        (SgdRecipeConfig::new().with_lr(f64::NAN), "lr"),
        (SgdRecipeConfig::new().with_gamma(-0.1), "gamma"),
        (SgdRecipeConfig::new().with_momentum(-0.5), "momentum"),
        (
            SgdRecipeConfig::new().with_weight_decay(f64::INFINITY),
            "weight_decay",
        ),
        (SgdRecipeConfig::new().with_decay_at(vec![1.5]), "decay_at"),
        (
            SgdRecipeConfig::new().with_decay_at(vec![f64::NAN]),
            "decay_at",
        ),
    ] {
        let err = recipe.schedule(10, 3).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { field: f, .. } if *f == field),
            "{field}: {err}"
        );
    }
}

/// A run on some of the teachers, reordered, reports its telemetry in the given order; the
/// per-teacher lines name each teacher with its keep rate (percent) and mean weight.
#[test]
fn epoch_records_follow_the_given_order_and_describe_teachers() {
    let mut record: burn_distill::train::EpochRecord = serde_json::from_value(serde_json::json!({
        "epoch": 1, "learning_rate": 0.1, "loss": 1.0, "hard": 1.0, "soft": 1.0,
        "feature": 0.0, "train_accuracy": 0.5, "valid_accuracy": 0.5,
        "keep_rate": [1.0, 0.5, 0.25], "mean_weight": [0.6, 0.3, 0.1]
    }))
    .unwrap();
    let lines = record.describe_teachers(&["vgg13", "vgg8", "resnet8x4"]);
    assert_eq!(
        lines,
        "    teacher vgg13          kept 100.0%  mean weight 0.600\n\
         \x20   teacher vgg8           kept  50.0%  mean weight 0.300\n\
         \x20   teacher resnet8x4      kept  25.0%  mean weight 0.100\n"
    );
    // The run's teachers were given teachers 3, 0 and 1 (best first): the lists follow the
    // given indices 0, 1, 3.
    record.in_given_order(&[3, 0, 1]);
    assert_eq!(record.keep_rate, [0.5, 0.25, 1.0]);
    assert_eq!(record.mean_weight, [0.3, 0.1, 0.6]);
    // The identity, and a list of another length, are left as they are.
    record.in_given_order(&[0, 1, 2]);
    assert_eq!(record.keep_rate, [0.5, 0.25, 1.0]);
    record.mean_weight.clear();
    record.in_given_order(&[2, 1, 0]);
    assert_eq!(
        (record.keep_rate.as_slice(), record.mean_weight.len()),
        (&[1.0, 0.25, 0.5][..], 0)
    );
}

/// Pre-screening's lines: each teacher's cross-entropy (3 decimals), accuracy (percent, 1
/// decimal) and verdict.
#[test]
fn prescreen_describes_every_teacher() {
    let result = burn_distill::Prescreen {
        mean_cross_entropy: vec![0.8125, 2.5],
        accuracy: vec![0.755, 0.125],
        kept: vec![0],
        samples: 200,
    };
    assert_eq!(
        result.describe(&["vgg13", "weak"]),
        "    teacher vgg13          cross-entropy 0.812  accuracy  75.5%  kept\n\
         \x20   teacher weak           cross-entropy 2.500  accuracy  12.5%  dropped\n"
    );
}

/// A teacher that returns its input, times a factor, as logits.
#[derive(Debug)]
struct Scaled(f64);

impl burn_distill::Teacher<Tensor<2>> for Scaled {
    fn name(&self) -> &str {
        "scaled"
    }
    fn num_classes(&self) -> usize {
        3
    }
    fn feature_specs(&self) -> Option<Vec<burn_distill::FeatureSpec>> {
        None
    }
    fn forward(&self, input: Tensor<2>) -> burn_distill::ModelOutput {
        burn_distill::ModelOutput {
            logits: input.mul_scalar(self.0),
            features: Vec::new(),
        }
    }
}

/// Running the audit on teachers and batches gives the report of updating it by hand with
/// the teachers' logits, batch by batch.
#[test]
fn soft_target_audit_runs_teachers_over_batches() {
    use std::sync::Arc;
    let (_, device) = cpu_devices().remove(0);
    let teachers: Vec<Arc<dyn burn_distill::Teacher<Tensor<2>>>> = vec![
        Arc::new(Scaled(1.0)),
        Arc::new(Scaled(-1.0)),
        Arc::new(Scaled(0.5)),
    ];
    let batches = [
        (
            matrix(&[vec![2.0, 0.0, 1.0], vec![0.0, 3.0, 0.5]], &device),
            labels(&[0, 1], &device),
        ),
        (
            matrix(&[vec![0.1, 0.2, 0.3], vec![1.0, -1.0, 0.0]], &device),
            labels(&[2, 1], &device),
        ),
    ];
    let selectors = || {
        [
            TeacherSelectorConfig::unscreened(Weighting::Average),
            TeacherSelectorConfig::new().with_granularity(Granularity::PerSample),
        ]
        .map(|c| c.init(3).unwrap())
        .to_vec()
    };
    let mut by_hand = SoftTargetAudit::new(selectors(), 2.0, 0).unwrap();
    for (x, y) in batches.clone() {
        let logits: Vec<Tensor<2>> = teachers
            .iter()
            .map(|t| t.forward(x.clone()).logits)
            .collect();
        by_hand.update(&logits, y).unwrap();
    }
    let run = SoftTargetAudit::new(selectors(), 2.0, 0)
        .unwrap()
        .run(&teachers, batches)
        .unwrap();
    assert_eq!(run, by_hand.finish().unwrap());
    assert_eq!(run.samples, 4);
    // No batches: the same error as finishing an empty audit.
    let empty = SoftTargetAudit::new(selectors(), 2.0, 0)
        .unwrap()
        .run(&teachers, []);
    assert!(
        matches!(empty, Err(Error::ShapeMismatch { .. })),
        "{empty:?}"
    );
}
