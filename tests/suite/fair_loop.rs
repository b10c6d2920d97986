//! The fairness of the ablation, the feature schedule, the CA-MKD scale and saved teachers.
//!
//! - The ablation trains the student alone as the distiller with soft and feature weight 0.
//!   That is only fair if it is plain cross-entropy training: same losses step by step and
//!   the same weights after training as a loop that never builds a distiller.
//! - The feature schedule (`feature_delay_steps`, `feature_ramp_steps`) against its formula,
//!   at its edges, with bad values, and as the distiller applies it (training steps only).
//! - `TeacherReduction::DivideByTeachers` is the weighted sum over `K`.
//! - A teacher saved and loaded again gives the same logits as the one in memory.
use crate::common;

use std::sync::Arc;

use crate::common::*;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig, decay::WeightDecayConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_distill::files::{load_weights, save_weights};
use burn_distill::models::{Cnn, CnnConfig, VggConfig};
use burn_distill::{
    DistillationLossConfig, DistillerConfig, FeatureModel, FrozenTeacher, Teacher,
    TeacherReduction, TeacherSelectorConfig, Weighting,
};

const CLASSES: usize = 5;

/// The example's optimiser: SGD, Nesterov momentum 0.9, weight decay 5e-4.
fn sgd() -> SgdConfig {
    SgdConfig::new()
        .with_momentum(Some(
            MomentumConfig::new()
                .with_momentum(0.9)
                .with_dampening(0.0)
                .with_nesterov(true),
        ))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
}

/// Batch `step` of a fixed stream: images of values in [-2, 2), labels cycling over classes.
fn batch(step: usize, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let n = 16;
    let images = values(n * 3 * 8 * 8, 100 + step as u64, 2.0);
    let labels: Vec<i64> = (0..n).map(|i| ((i + 3 * step) % CLASSES) as i64).collect();
    (
        Tensor::from_data(TensorData::new(images, [n, 3, 8, 8]), device),
        Tensor::from_data(TensorData::new(labels, [n]), device),
    )
}

fn random_teachers(device: &Device) -> Vec<Arc<dyn Teacher>> {
    (0..3)
        .map(|k| {
            Arc::new(FrozenTeacher::from_model(
                format!("t{k}"),
                CnnConfig::new(CLASSES).with_width(4 + 2 * k).init(device),
            )) as Arc<dyn Teacher>
        })
        .collect()
}

/// What a trained student computes: its inference-mode logits on a fixed batch (every
/// weight and batch-norm statistic takes part).
fn outputs(model: &Cnn) -> Vec<f32> {
    let (images, _) = batch(99, &model.devices()[0]);
    floats(&model.valid().forward(images.without_autodiff()))
}

/// Plain CE training and the distiller with soft 0 / feature 0 (three teachers present,
/// their adapters built, the selector weighting them) from the same initial student:
/// the losses agree at every step and the trained students agree.
#[test]
fn student_alone_equals_the_distiller_with_soft_and_feature_weight_zero() {
    for (name, plain) in cpu_devices() {
        let _seeded = common::seeded(&plain, 5);
        let device = plain.clone().autodiff();
        let student = CnnConfig::new(CLASSES).with_width(4).init(&device);
        let teachers = random_teachers(&plain);
        let steps = 12;
        let lr = 0.05;

        // Path A: the plain loop.
        let ce = CrossEntropyLossConfig::new().init(&device);
        let mut alone = student.clone();
        let mut optim = sgd().init();
        let mut plain_losses = Vec::new();
        for step in 0..steps {
            let (images, labels) = batch(step, &device);
            let loss = ce.forward(alone.forward(images), labels);
            plain_losses.push(loss.clone().into_scalar::<f64>());
            let grads = GradientsParams::from_grads(loss.backward(), &alone);
            alone = optim.step(lr, alone, grads);
        }

        // Path B: the distiller with the soft and feature terms off, and a control with the
        // soft term on (it must differ, or the comparison could not fail).
        let run = |soft: f64| -> (Vec<f64>, Cnn) {
            let loss = DistillationLossConfig::new()
                .with_soft_weight(soft)
                .with_feature_weight(0.0);
            let mut distiller = DistillerConfig::new()
                .with_selector(TeacherSelectorConfig::unscreened(Weighting::Average))
                .with_loss(loss)
                .init(student.clone(), teachers.clone(), &device)
                .unwrap();
            let mut optim = sgd().init();
            let mut losses = Vec::new();
            for step in 0..steps {
                let (images, labels) = batch(step, &device);
                let out = distiller.forward(images, labels).unwrap();
                losses.push(out.loss.total.clone().into_scalar::<f64>());
                let grads = GradientsParams::from_grads(out.loss.total.backward(), &distiller);
                distiller = optim.step(lr, distiller, grads).advance();
            }
            (losses, distiller.into_student())
        };
        let (distilled_losses, distilled) = run(0.0);
        for (step, (a, b)) in plain_losses.iter().zip(&distilled_losses).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * a.abs().max(1.0),
                "{name}: step {step}: plain CE loss {a} vs distiller (soft 0, feature 0) {b}"
            );
        }
        // The loss fell, so the steps did something.
        assert!(
            plain_losses[steps - 1] < plain_losses[0],
            "{name}: {plain_losses:?}"
        );
        let (a, b) = (outputs(&alone), outputs(&distilled));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                "{name}: trained students differ at output {i}: {x} vs {y}"
            );
        }
        let (control, _) = run(1.0);
        assert!(
            (control[0] - plain_losses[0]).abs() > 1e-3,
            "{name}: the soft term changed nothing: {} vs {}",
            control[0],
            plain_losses[0]
        );
    }
}

/// Issue 31: the default soft term (on standardized logits) moves the student. From the same
/// student, one SGD step of the distiller with soft weight 1 and one with soft weight 0
/// (hard term on, features off) give students whose outputs differ, with one teacher and
/// with three; and a step of the soft term alone (hard weight 0) changes the student.
#[test]
fn standardized_soft_term_changes_the_step_for_one_and_three_teachers() {
    for (name, plain) in cpu_devices() {
        let _seeded = common::seeded(&plain, 6);
        let device = plain.clone().autodiff();
        let student = CnnConfig::new(CLASSES).with_width(4).init(&device);
        let before = outputs(&student);
        for k in [1, 3] {
            let teachers = random_teachers(&plain)[..k].to_vec();
            let step = |hard: f64, soft: f64| -> Vec<f32> {
                let loss = DistillationLossConfig::new()
                    .with_hard_weight(hard)
                    .with_soft_weight(soft)
                    .with_feature_weight(0.0);
                assert!(loss.logit_standardization, "the default standardizes");
                let distiller = DistillerConfig::new()
                    .with_selector(TeacherSelectorConfig::unscreened(Weighting::Average))
                    .with_loss(loss)
                    .init(student.clone(), teachers.clone(), &device)
                    .unwrap();
                let (images, labels) = batch(0, &device);
                let out = distiller.forward(images, labels).unwrap();
                let grads = GradientsParams::from_grads(out.loss.total.backward(), &distiller);
                let distiller = SgdConfig::new()
                    .init()
                    .step(0.5, distiller, grads)
                    .advance();
                outputs(&distiller.into_student())
            };
            let largest = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0f32, f32::max)
            };
            let (with_soft, without) = (step(1.0, 1.0), step(1.0, 0.0));
            let soft_alone = step(0.0, 1.0);
            let moved = largest(&without, &before);
            assert!(moved > 1e-3, "{name}, K = {k}: the hard term moved nothing");
            let apart = largest(&with_soft, &without);
            assert!(
                apart > 1e-2 * moved,
                "{name}, K = {k}: soft weight 1 and 0 give the same step (outputs {apart} apart, \
                 the step moved them {moved})"
            );
            let soft_moved = largest(&soft_alone, &before);
            assert!(
                soft_moved > 1e-2 * moved,
                "{name}, K = {k}: the soft term alone moved the outputs {soft_moved}"
            );
        }
    }
}

/// `s(t)` written out from the documented formula.
fn schedule(step: usize, delay: usize, ramp: usize, weight: f64) -> f64 {
    if step < delay {
        0.0
    } else if ramp == 0 {
        weight
    } else {
        weight * f64::min(1.0, (step - delay + 1) as f64 / ramp as f64)
    }
}

#[test]
fn feature_schedule_follows_its_formula() {
    for (delay, ramp) in [(0, 0), (0, 1), (3, 0), (2, 4), (0, 5), (10, 3)] {
        let loss = DistillationLossConfig::new()
            .with_feature_weight(8.0)
            .with_feature_delay_steps(delay)
            .with_feature_ramp_steps(ramp)
            .init()
            .unwrap();
        for step in 0..20 {
            let want = schedule(step, delay, ramp, 8.0);
            let got = loss.feature_weight_at(step);
            assert!(
                (got - want).abs() < 1e-12,
                "delay {delay} ramp {ramp} step {step}: {got} vs {want}"
            );
            // at_step freezes the weight and drops the schedule.
            let frozen = loss.at_step(step);
            assert_eq!(frozen.config().feature_weight, got);
            assert_eq!(frozen.feature_weight_at(0), got);
        }
    }
    // The default: off for 100 steps, then up to 50 over 200 steps.
    let default = DistillationLossConfig::new().init().unwrap();
    assert_eq!(default.feature_weight_at(99), 0.0);
    assert_eq!(default.feature_weight_at(100), 0.25);
    assert_eq!(default.feature_weight_at(298), 50.0 * 199.0 / 200.0);
    assert_eq!(default.feature_weight_at(299), 50.0);
    // Edges: no schedule means full weight from step 0; a ramp of 1 is a step at the delay;
    // the full weight is reached exactly at step delay + ramp - 1 and kept.
    let plain = common::loss_from_step_0().init().unwrap();
    assert_eq!(plain.feature_weight_at(0), 50.0);
    let ramp = DistillationLossConfig::new()
        .with_feature_delay_steps(4)
        .with_feature_ramp_steps(4)
        .init()
        .unwrap();
    assert_eq!(ramp.feature_weight_at(3), 0.0);
    assert_eq!(ramp.feature_weight_at(4), 12.5);
    assert_eq!(ramp.feature_weight_at(7), 50.0);
    assert_eq!(ramp.feature_weight_at(usize::MAX), 50.0);
    // Bad values: a delay + ramp beyond usize, and the weight checks still apply.
    let err = DistillationLossConfig::new()
        .with_feature_delay_steps(usize::MAX)
        .with_feature_ramp_steps(1)
        .init()
        .unwrap_err();
    assert!(err.to_string().contains("feature_ramp_steps"), "{err}");
    let err = DistillationLossConfig::new()
        .with_feature_weight(f64::NAN)
        .with_feature_delay_steps(3)
        .init()
        .unwrap_err();
    assert!(err.to_string().contains("feature_weight"), "{err}");
}

/// The distiller applies the schedule on its count of optimizer steps, kept in its record:
/// the total is hard + soft + w(t) · feature with w from the schedule's formula (before the
/// delay the feature term is reported but has no weight); forward calls, inference copies and
/// clones do not advance the count, `advance` does; a saved and reloaded distiller resumes the
/// count.
#[test]
fn distiller_applies_the_feature_schedule_on_optimizer_steps() {
    let (name, plain) = ("flex", Device::default());
    let _seeded = common::seeded(&plain, 9);
    let device = plain.clone().autodiff();
    let (delay, ramp, weight) = (2, 3, 4.0);
    let build = || {
        DistillerConfig::new()
            .with_loss(
                DistillationLossConfig::new()
                    .with_feature_weight(weight)
                    .with_feature_delay_steps(delay)
                    .with_feature_ramp_steps(ramp),
            )
            .init(
                CnnConfig::new(CLASSES).with_width(4).init(&device),
                random_teachers(&plain),
                &device,
            )
            .unwrap()
    };
    let mut distiller = build();
    let read = |t: &Tensor<1>| t.clone().into_scalar::<f64>();
    for step in 0..7 {
        assert_eq!(distiller.optimizer_steps(), step);
        // An inference copy sees the weight of the current step.
        let (images, labels) = batch(step, &plain);
        let inference = distiller.valid().forward(images, labels).unwrap();
        let (images, labels) = batch(step, &device);
        let out = distiller.forward(images, labels).unwrap();
        assert_eq!(
            distiller.optimizer_steps(),
            step,
            "a forward call does not count"
        );
        let w = schedule(step, delay, ramp, weight);
        for (what, out) in [("training", &out), ("inference", &inference)] {
            let (total, hard, soft, feature) = (
                read(&out.loss.total),
                read(&out.loss.hard()),
                read(&out.loss.soft()),
                read(&out.loss.feature()),
            );
            let want = hard + soft + w * feature;
            assert!(
                (total - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{name} {what} step {step}: total {total} vs hard {hard} + soft {soft} + {w} x feature {feature}"
            );
            assert!(
                feature > 0.0,
                "{name} {what} step {step}: feature term {feature}"
            );
        }
        distiller = distiller.advance();
    }
    // The count is in the record: a reloaded distiller continues at step 7 (full weight).
    let dir = common::temp_path("schedule", "record");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("distiller.bpk");
    distiller.clone().save_file(&path).unwrap();
    let fresh = build();
    assert_eq!(fresh.optimizer_steps(), 0);
    let reloaded = fresh.try_load_file(&path).unwrap();
    assert_eq!(reloaded.optimizer_steps(), 7);
    let (images, labels) = batch(0, &device);
    let out = reloaded.forward(images, labels).unwrap().loss;
    let want = read(&out.hard()) + read(&out.soft()) + weight * read(&out.feature());
    assert!((read(&out.total) - want).abs() <= 1e-5 * want.abs().max(1.0));
    let _ = std::fs::remove_dir_all(dir);
}

/// `DivideByTeachers` divides the soft and feature terms by `K` and nothing else.
#[test]
fn divide_by_teachers_is_the_weighted_sum_over_k() {
    let plain = Device::default();
    let _seeded = common::seeded(&plain, 13);
    let teachers = random_teachers(&plain);
    let student = CnnConfig::new(CLASSES).with_width(4).init(&plain);
    // One distiller (one set of adapter weights), its loss swapped.
    let distiller = DistillerConfig::new()
        .with_selector(TeacherSelectorConfig::unscreened(Weighting::Confidence))
        .init(student, teachers.clone(), &plain)
        .unwrap();
    let parts = |reduction: TeacherReduction| -> [f64; 4] {
        let loss = common::loss_from_step_0()
            .with_teacher_reduction(reduction)
            .init()
            .unwrap();
        let distiller = distiller.clone().with_loss(loss);
        let (images, labels) = batch(3, &plain);
        let out = distiller.forward(images, labels).unwrap().loss;
        [out.total.clone(), out.hard(), out.soft(), out.feature()].map(|t| t.into_scalar::<f64>())
    };
    let sum = parts(TeacherReduction::WeightedSum);
    let divided = parts(TeacherReduction::DivideByTeachers);
    let k = teachers.len() as f64;
    assert!(
        (divided[1] - sum[1]).abs() < 1e-7,
        "hard: {divided:?} vs {sum:?}"
    );
    for (i, what) in [(2, "soft"), (3, "feature")] {
        assert!(sum[i] > 0.0, "{what}: {sum:?}");
        assert!(
            (divided[i] - sum[i] / k).abs() <= 1e-6 * sum[i],
            "{what}: {} vs {} / {k}",
            divided[i],
            sum[i]
        );
    }
    let total = divided[1] + divided[2] + 50.0 * divided[3];
    assert!((divided[0] - total).abs() <= 1e-5 * total, "{divided:?}");
    // CA-MKD's preset is that reduction with the first epoch's feature delay.
    let preset = DistillationLossConfig::ca_mkd(10);
    assert_eq!(preset.teacher_reduction, TeacherReduction::DivideByTeachers);
    assert_eq!(
        (preset.feature_delay_steps, preset.feature_ramp_steps),
        (10, 0)
    );
    assert_eq!(
        (
            preset.temperature,
            preset.soft_weight,
            preset.feature_weight
        ),
        (4.0, 1.0, 50.0)
    );
}

/// A trained VGG (batch norm statistics moved away from their initial values) saved as .bpk
/// and .safetensors and loaded again gives bit-identical teacher logits. Burn keeps a batch
/// norm's last running-statistics update aside until the module is synced (`valid()`);
/// `save_weights` syncs first, so the file holds the statistics the model in memory uses.
#[test]
fn a_saved_and_reloaded_teacher_gives_the_same_logits() {
    let plain = Device::default();
    let _seeded = common::seeded(&plain, 17);
    let device = plain.clone().autodiff();
    let config = VggConfig::vgg8(CLASSES).with_width(4);
    let mut model = config.init(&device);
    let ce = CrossEntropyLossConfig::new().init(&device);
    let mut optim = sgd().init();
    for step in 0..5 {
        let (images, labels) = batch(step, &device);
        let images = images.repeat_dim(2, 4).repeat_dim(3, 4); // 32x32, as VGG expects
        let loss = ce.forward(model.forward_features(images).logits, labels);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.05, model, grads);
    }
    // Saved first, then frozen in memory: the order of the experiments example, in which
    // the reloaded teachers once scored 2-5 images of 2,000 off the in-memory ones.
    let dir = crate::common::temp_path("fair-loop", "reload");
    std::fs::create_dir_all(&dir).unwrap();
    let files = ["teacher.bpk", "teacher.safetensors"];
    for file in files {
        save_weights(model.clone(), dir.join(file)).unwrap();
    }
    let in_memory = FrozenTeacher::from_model("trained", model);
    let (images, _) = batch(7, &plain);
    let images = images.repeat_dim(2, 4).repeat_dim(3, 4);
    let want = floats(&in_memory.forward(images.clone()).logits);
    for file in files {
        let path = dir.join(file);
        let loaded = load_weights(config.init(&plain), &path).unwrap();
        let got = floats(
            &FrozenTeacher::from_model("loaded", loaded)
                .forward(images.clone())
                .logits,
        );
        assert_eq!(got, want, "{file}: reloaded logits differ");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
