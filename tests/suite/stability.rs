//! Numerical stability: logits up to ±1e4, temperatures 0.5 to 20, a 100 %-confident
//! teacher, teachers that are all equally wrong. Losses and gradients stay finite and
//! match f64 references (written out here from the formulas) within 1e-5 relative.
use crate::common;

use crate::common::values;

use burn::tensor::{Int, Tensor, TensorData};
use burn_distill::{
    DistillationLossConfig, ModelOutput, ScreeningRule, TeacherSelectorConfig, Weighting, log1p,
};

use crate::common::losses::{dkd_loss, dkd_loss_per_sample, kd_loss, kd_loss_per_sample};

fn rows(flat: &[f32], c: usize) -> Vec<Vec<f64>> {
    flat.chunks(c)
        .map(|r| r.iter().map(|v| *v as f64).collect())
        .collect()
}

/// `T² KL(p_t ‖ p_s)` per row and its gradient `T (p_s - p_t) / N` for the batch mean.
fn kd64(student: &[Vec<f64>], teacher: &[Vec<f64>], t: f64) -> (f64, Vec<f64>) {
    let n = student.len() as f64;
    let mut loss = 0.0;
    let mut grad = Vec::new();
    for (s, z) in student.iter().zip(teacher) {
        let ls = common::log_softmax64(s, t);
        let lt = common::log_softmax64(z, t);
        let kl: f64 = lt.iter().zip(&ls).map(|(a, b)| a.exp() * (a - b)).sum();
        loss += t * t * kl / n;
        grad.extend(ls.iter().zip(&lt).map(|(a, b)| t * (a.exp() - b.exp()) / n));
    }
    (loss, grad)
}

fn finite(what: &str, values: &[f32]) {
    assert!(
        values.iter().all(|v| v.is_finite()),
        "{what}: not finite: {values:?}"
    );
}

#[test]
fn kd_loss_and_gradient_for_huge_logits_and_all_temperatures() {
    let (n, c) = (4, 10);
    for (name, device) in common::all_devices() {
        let device = device.autodiff();
        for scale in [1.0f32, 1e2, 1e4] {
            let s = values(n * c, 1, scale);
            let z = values(n * c, 2, scale);
            for t in [0.5, 1.0, 2.0, 4.0, 8.0, 20.0] {
                let student = Tensor::<2>::from_data(TensorData::new(s.clone(), [n, c]), &device)
                    .require_grad();
                let teacher = Tensor::<2>::from_data(TensorData::new(z.clone(), [n, c]), &device);
                let loss = kd_loss(student.clone(), teacher, t);
                let grads = loss.backward();
                let grad = common::floats(&student.grad(&grads).unwrap());
                let got = common::floats(&loss);
                let (want, want_grad) = kd64(&rows(&s, c), &rows(&z, c), t);
                let what = format!("KD, logits ×{scale}, T = {t}");
                finite(&what, &got);
                finite(&format!("{what} gradient"), &grad);
                common::assert_close(&what, name, &got, &[want], 1e-5);
                common::assert_close(&format!("{what} gradient"), name, &grad, &want_grad, 1e-5);
            }
        }
        device.sync().unwrap();
    }
}

#[test]
fn selector_with_a_fully_confident_teacher_and_huge_logits() {
    let (n, c) = (3, 5);
    for (name, device) in common::all_devices() {
        // Teacher 0 is 100 % confident and right, teacher 1 100 % confident and wrong,
        // teacher 2 is random with logits up to 1e4.
        let labels = [0i64, 3, 4];
        let mut right = vec![-1e4f32; n * c];
        let mut wrong = vec![-1e4f32; n * c];
        for (i, y) in labels.iter().enumerate() {
            right[i * c + *y as usize] = 1e4;
            wrong[i * c + (*y as usize + 1) % c] = 1e4;
        }
        let noisy = values(n * c, 3, 1e4);
        let tensors: Vec<Tensor<2>> = [&right, &wrong, &noisy]
            .iter()
            .map(|v| Tensor::from_data(TensorData::new(v.to_vec(), [n, c]), &device))
            .collect();
        let label_tensor = common::labels(&labels, &device);
        for weighting in [
            Weighting::Softmax,
            Weighting::Average,
            Weighting::Confidence,
            Weighting::Entropy,
        ] {
            let selector = TeacherSelectorConfig::seed_paper()
                .with_weighting(weighting.clone())
                .init(3)
                .unwrap();
            let selection = selector.select(&tensors, label_tensor.clone()).unwrap();
            let ce = common::floats(&selection.cross_entropy);
            let weights = common::floats(&selection.weights);
            finite("cross-entropy", &ce);
            finite("weights", &weights);
            // f64 cross-entropies of the same f32 logits.
            let mut want = Vec::new();
            for i in 0..n {
                for logits in [&right, &wrong, &noisy] {
                    let row: Vec<f64> = logits[i * c..(i + 1) * c]
                        .iter()
                        .map(|v| *v as f64)
                        .collect();
                    want.push(-common::log_softmax64(&row, 1.0)[labels[i] as usize]);
                }
            }
            common::assert_close("cross-entropy", name, &ce, &want, 1e-5);
            // The confident, right teacher has CE 0 and is always kept; the wrong one
            // (CE 2e4, far above the mean) never is.
            for i in 0..n {
                assert!(weights[i * 3] > 0.0, "{name} {weighting:?}: {weights:?}");
                assert_eq!(weights[i * 3 + 1], 0.0, "{name} {weighting:?}: {weights:?}");
                let sum: f32 = weights[i * 3..i * 3 + 3].iter().sum();
                assert!(
                    (sum - 1.0).abs() < 1e-6,
                    "{name} {weighting:?}: {weights:?}"
                );
            }
        }
    }
}

#[test]
fn teachers_all_equally_wrong_share_equally_and_losses_stay_finite() {
    let (n, c, k) = (2, 4, 3);
    for (name, device) in common::all_devices() {
        let device = device.autodiff();
        // Every teacher predicts class 1 with certainty; the labels are 0 and 2.
        let mut logits = vec![-1e4f32; n * c];
        for i in 0..n {
            logits[i * c + 1] = 1e4;
        }
        let teacher = || Tensor::<2>::from_data(TensorData::new(logits.clone(), [n, c]), &device);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 2], [n]), &device);
        let student =
            Tensor::<2>::from_data(TensorData::new(values(n * c, 4, 1e4), [n, c]), &device)
                .require_grad();
        for screening in [ScreeningRule::BelowMean, ScreeningRule::TopK(1)] {
            for weighting in [
                Weighting::Softmax,
                Weighting::Confidence,
                Weighting::Entropy,
            ] {
                let selection = TeacherSelectorConfig::seed_paper()
                    .with_screening(screening.clone())
                    .with_weighting(weighting.clone())
                    .init(k)
                    .unwrap()
                    .select(&[teacher(), teacher(), teacher()], labels.clone())
                    .unwrap();
                let weights = common::floats(&selection.weights);
                let third = vec![1.0 / 3.0; n * k];
                common::assert_close(
                    &format!("{screening:?} {weighting:?} weights"),
                    name,
                    &weights,
                    &third,
                    1e-6,
                );
                for temperature in [0.5, 4.0, 20.0] {
                    let loss = DistillationLossConfig::new()
                        .with_temperature(temperature)
                        .with_feature_weight(0.0)
                        .init()
                        .unwrap();
                    let outputs: Vec<ModelOutput> = (0..k)
                        .map(|_| ModelOutput {
                            logits: teacher(),
                            features: Vec::new(),
                        })
                        .collect();
                    let out = loss.forward(
                        student.clone(),
                        labels.clone(),
                        &outputs,
                        &[],
                        selection.weights.clone(),
                    );
                    let grads = out.total.backward();
                    finite("loss", &common::floats(&out.total));
                    finite("gradient", &common::floats(&student.grad(&grads).unwrap()));
                }
            }
        }
        device.sync().unwrap();
    }
}

/// Relative and absolute tolerance of the soft losses against their f64 definitions
/// (issue 14): `1e-5` relative, `1e-7` absolute near 0.
const SOFT_RELATIVE: f64 = 1e-5;
const SOFT_ABSOLUTE: f64 = 1e-7;

/// Teacher logits in `[-scale, scale]` and a student that differs from them by at most
/// `step` per logit (`step` above the f32 spacing of the logits, so the two really differ).
fn near_identical(n: usize, c: usize, scale: f32, step: f32, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let teacher = values(n * c, seed, scale);
    let noise = values(n * c, seed + 100, step);
    let student = teacher.iter().zip(&noise).map(|(t, e)| t + e).collect();
    (student, teacher)
}

#[test]
fn kd_and_dkd_of_near_identical_logits_match_f64_on_every_device() {
    let (n, c) = (6, 10);
    let labels: Vec<i64> = (0..n as i64).map(|i| (i * 3) % c as i64).collect();
    for (name, device) in common::all_devices() {
        let device = device.autodiff();
        for (scale, steps) in [(50.0f32, [1e-4f32, 1e-3, 1e-1]), (1e4, [4e-3, 5e-2, 1.0])] {
            for step in steps {
                let (s, z) = near_identical(n, c, scale, step, 7);
                let (s64, z64) = (rows(&s, c), rows(&z, c));
                for t in [0.5, 4.0, 20.0] {
                    let what = format!("logits ±{scale}, student within {step}, T = {t}");
                    let student =
                        Tensor::<2>::from_data(TensorData::new(s.clone(), [n, c]), &device)
                            .require_grad();
                    let teacher =
                        Tensor::<2>::from_data(TensorData::new(z.clone(), [n, c]), &device);
                    let label_tensor = common::labels(&labels, &device);

                    let kd = kd_loss_per_sample(student.clone(), teacher.clone(), t);
                    let want: Vec<f64> = (0..n)
                        .map(|i| common::kd_row64(&s64[i], &z64[i], t))
                        .collect();
                    let got = common::floats(&kd);
                    assert!(
                        got.iter().all(|v| *v >= 0.0),
                        "KD {what} on {name}: negative {got:?}"
                    );
                    common::assert_close_rel(
                        &format!("KD, {what}"),
                        name,
                        &got,
                        &want,
                        SOFT_RELATIVE,
                        SOFT_ABSOLUTE,
                    );
                    let grads = kd.mean().backward();
                    let grad = common::floats(&student.grad(&grads).unwrap());
                    let (_, want_grad) = kd64(&s64, &z64, t);
                    common::assert_close(
                        &format!("KD gradient, {what}"),
                        name,
                        &grad,
                        &want_grad,
                        1e-5,
                    );

                    let dkd = dkd_loss_per_sample(
                        student.clone(),
                        teacher.clone(),
                        label_tensor.clone(),
                        1.0,
                        8.0,
                        t,
                    );
                    let want: Vec<f64> = (0..n)
                        .map(|i| {
                            common::dkd_row64(&s64[i], &z64[i], labels[i] as usize, 1.0, 8.0, t)
                        })
                        .collect();
                    let got = common::floats(&dkd);
                    assert!(
                        got.iter().all(|v| *v >= 0.0),
                        "DKD {what} on {name}: negative {got:?}"
                    );
                    common::assert_close_rel(
                        &format!("DKD, {what}"),
                        name,
                        &got,
                        &want,
                        SOFT_RELATIVE,
                        SOFT_ABSOLUTE,
                    );
                    let grads = dkd.mean().backward();
                    let grad = common::floats(&student.grad(&grads).unwrap());
                    finite(&format!("DKD gradient, {what}"), &grad);
                }
            }
        }
        device.sync().unwrap();
    }
}

#[test]
fn dkd_matches_f64_for_huge_logits_and_all_temperatures() {
    let (n, c) = (4, 10);
    let labels = [0i64, 9, 4, 4];
    for (name, device) in common::all_devices() {
        let device = device.autodiff();
        for scale in [1.0f32, 8.0, 50.0, 1e4] {
            let s = values(n * c, 11, scale);
            let z = values(n * c, 12, scale);
            let (s64, z64) = (rows(&s, c), rows(&z, c));
            for t in [0.5, 1.0, 4.0, 8.0, 20.0] {
                let what = format!("DKD, logits ±{scale}, T = {t}");
                let student = Tensor::<2>::from_data(TensorData::new(s.clone(), [n, c]), &device)
                    .require_grad();
                let teacher = Tensor::<2>::from_data(TensorData::new(z.clone(), [n, c]), &device);
                let loss = dkd_loss_per_sample(
                    student.clone(),
                    teacher,
                    common::labels(&labels, &device),
                    1.0,
                    8.0,
                    t,
                );
                let want: Vec<f64> = (0..n)
                    .map(|i| common::dkd_row64(&s64[i], &z64[i], labels[i] as usize, 1.0, 8.0, t))
                    .collect();
                let got = common::floats(&loss);
                finite(&what, &got);
                common::assert_close_rel(&what, name, &got, &want, SOFT_RELATIVE, SOFT_ABSOLUTE);
                let grads = dkd_loss(
                    student.clone(),
                    Tensor::<2>::from_data(TensorData::new(z.clone(), [n, c]), &device),
                    common::labels(&labels, &device),
                    1.0,
                    8.0,
                    t,
                )
                .backward();
                finite(
                    &format!("{what} gradient"),
                    &common::floats(&student.grad(&grads).unwrap()),
                );
            }
        }
        device.sync().unwrap();
    }
}

#[test]
fn identical_logits_give_exactly_zero_soft_loss() {
    let (n, c) = (3, 7);
    for (name, device) in common::all_devices() {
        for scale in [1.0f32, 50.0, 1e4] {
            let z =
                Tensor::<2>::from_data(TensorData::new(values(n * c, 5, scale), [n, c]), &device);
            for t in [0.5, 4.0, 20.0] {
                let kd = common::floats(&kd_loss_per_sample(z.clone(), z.clone(), t));
                let labels = common::labels(&[0, 3, 6], &device);
                let dkd = common::floats(&dkd_loss_per_sample(
                    z.clone(),
                    z.clone(),
                    labels,
                    1.0,
                    8.0,
                    t,
                ));
                for v in kd.iter().chain(&dkd) {
                    assert!(
                        v.abs() <= 1e-12,
                        "{name}, ±{scale}, T = {t}: {kd:?} {dkd:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn log1p_is_accurate_on_every_device() {
    let xs: Vec<f64> = vec![
        0.0, 1e-30, 1e-12, 3e-9, 1e-7, 2.5e-5, 3e-4, 0.01, 0.05, 0.0999, 0.1, 0.1001, 0.5, 1.0,
        10.0, 1e4, -1e-9, -3e-4, -0.05, -0.0999, -0.1, -0.5, -0.9,
    ];
    let x32: Vec<f32> = xs.iter().map(|x| *x as f32).collect();
    // The reference is f64's log1p of the f32 inputs.
    let want: Vec<f64> = x32.iter().map(|x| (*x as f64).ln_1p()).collect();
    for (name, device) in common::all_devices() {
        let got = common::floats(&log1p(Tensor::<1>::from_data(
            TensorData::new(x32.clone(), [x32.len()]),
            &device,
        )));
        common::assert_close_rel("log1p", name, &got, &want, 1e-6, 0.0);
    }
}
