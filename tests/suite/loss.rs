//! Losses against independent f64 formulas, and the composite loss's identity cases.

use crate::common::*;
use burn::tensor::Tensor;
use burn_distill::{DistillationLossConfig, FeatureNorm, ModelOutput, SoftLoss};

use crate::common::losses::{
    dkd_loss_per_sample, feature_loss, feature_loss_normalized_per_sample, feature_loss_per_sample,
    kd_loss, kd_loss_per_sample,
};

fn student() -> Vec<Vec<f64>> {
    vec![
        vec![0.3, -1.2, 2.0, 0.0, 0.7],
        vec![5.0, 1.0, -3.0, 2.5, 0.0],
        vec![-0.5, -0.5, -0.5, 4.0, 1.0],
    ]
}

fn teacher() -> Vec<Vec<f64>> {
    vec![
        vec![1.0, 0.0, 3.0, -1.0, 0.5],
        vec![2.0, 2.0, -1.0, 0.0, 1.0],
        vec![0.0, 1.0, -2.0, 6.0, -1.0],
    ]
}

/// T² · sum_c p_t (log p_t - log p_s), straight from the definition in f64.
fn kd64(s: &[f64], t: &[f64], temperature: f64) -> f64 {
    let ls = log_softmax64(s, temperature);
    let lt = log_softmax64(t, temperature);
    temperature
        * temperature
        * lt.iter()
            .zip(&ls)
            .map(|(a, b)| a.exp() * (a - b))
            .sum::<f64>()
}

/// DKD from its definition: binary target/non-target KL plus KL over non-target classes.
fn dkd64(s: &[f64], t: &[f64], y: usize, alpha: f64, beta: f64, temperature: f64) -> f64 {
    let probs = |z: &[f64]| -> Vec<f64> {
        log_softmax64(z, temperature)
            .iter()
            .map(|l| l.exp())
            .collect()
    };
    let (ps, pt) = (probs(s), probs(t));
    let tckd = pt[y] * (pt[y] / ps[y]).ln() + (1.0 - pt[y]) * ((1.0 - pt[y]) / (1.0 - ps[y])).ln();
    let rest = |p: &[f64]| -> Vec<f64> {
        let total: f64 = p
            .iter()
            .enumerate()
            .filter(|(c, _)| *c != y)
            .map(|(_, v)| v)
            .sum();
        p.iter()
            .enumerate()
            .filter(|(c, _)| *c != y)
            .map(|(_, v)| v / total)
            .collect()
    };
    let (qs, qt) = (rest(&ps), rest(&pt));
    let nckd: f64 = qt.iter().zip(&qs).map(|(a, b)| a * (a / b).ln()).sum();
    temperature * temperature * (alpha * tckd + beta * nckd)
}

#[test]
fn kd_loss_matches_f64_definition() {
    for temperature in [1.0, 4.0, 0.5, 20.0] {
        let want: Vec<f64> = student()
            .iter()
            .zip(teacher())
            .map(|(s, t)| kd64(s, &t, temperature))
            .collect();
        for (name, device) in all_devices() {
            let got = kd_loss_per_sample(
                matrix(&student(), &device),
                matrix(&teacher(), &device),
                temperature,
            );
            // f32 log-softmax differences carry ~1e-7 absolute error, scaled by T²: at T = 20
            // that is ~4e-5, so the tolerance grows with T² beyond T = 4.
            let tol = 1e-5 * (temperature * temperature / 16.0).max(1.0);
            assert_close(
                &format!("kd T={temperature}"),
                name,
                &floats(&got),
                &want,
                tol,
            );
            let mean = kd_loss(
                matrix(&student(), &device),
                matrix(&teacher(), &device),
                temperature,
            );
            assert_close(
                "kd mean",
                name,
                &floats(&mean),
                &[want.iter().sum::<f64>() / 3.0],
                tol,
            );
        }
    }
}

#[test]
fn kd_loss_is_zero_for_identical_logits() {
    for (name, device) in all_devices() {
        let got = kd_loss(
            matrix(&teacher(), &device),
            matrix(&teacher(), &device),
            4.0,
        );
        assert_close("kd(s, s)", name, &floats(&got), &[0.0], 1e-6);
    }
}

#[test]
fn dkd_loss_matches_f64_definition() {
    let y = [2usize, 0, 3];
    let (alpha, beta, temperature) = (1.0, 8.0, 4.0);
    let want: Vec<f64> = (0..3)
        .map(|i| dkd64(&student()[i], &teacher()[i], y[i], alpha, beta, temperature))
        .collect();
    for (name, device) in all_devices() {
        let got = dkd_loss_per_sample(
            matrix(&student(), &device),
            matrix(&teacher(), &device),
            labels(&[2, 0, 3], &device),
            alpha,
            beta,
            temperature,
        );
        assert_close("dkd", name, &floats(&got), &want, 1e-4);
    }
}

#[test]
fn feature_loss_is_mean_squared_error() {
    for (name, device) in all_devices() {
        let a = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0], &device)
            .reshape([2, 2, 2, 1]);
        let b = Tensor::<1>::from_floats([1.0, 0.0, 3.0, 0.0, 1.0, 1.0, 1.0, 1.0], &device)
            .reshape([2, 2, 2, 1]);
        // Sample 0: (0 + 4 + 0 + 16) / 4 = 5; sample 1: 4 / 4 = 1.
        assert_close(
            "per sample",
            name,
            &floats(&feature_loss_per_sample(a.clone(), b.clone())),
            &[5.0, 1.0],
            1e-6,
        );
        assert_close(
            "mean",
            name,
            &floats(&feature_loss(a.clone(), b)),
            &[3.0],
            1e-6,
        );
        assert_close(
            "identical",
            name,
            &floats(&feature_loss(a.clone(), a)),
            &[0.0],
            1e-7,
        );
    }
}

#[test]
fn normalized_feature_loss_is_relative_error_and_scale_free() {
    for (name, device) in all_devices() {
        let a = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0], &device)
            .reshape([2, 2, 2, 1]);
        let b = Tensor::<1>::from_floats([1.0, 0.0, 3.0, 0.0, 1.0, 1.0, 1.0, 1.0], &device)
            .reshape([2, 2, 2, 1]);
        // MSE 5 and 1 (see above); teacher mean squares (1 + 9) / 4 = 2.5 and 1.
        let expected = [5.0 / (2.5 + 1e-6), 1.0 / (1.0 + 1e-6)];
        assert_close(
            "per sample",
            name,
            &floats(&feature_loss_normalized_per_sample(a.clone(), b.clone())),
            &expected,
            1e-6,
        );
        // Scaling both maps by 100 leaves it unchanged (up to the 1e-6 floor).
        assert_close(
            "scaled by 100",
            name,
            &floats(&feature_loss_normalized_per_sample(
                a.clone().mul_scalar(100.0),
                b.clone().mul_scalar(100.0),
            )),
            &expected,
            1e-5,
        );
        assert_close(
            "identical",
            name,
            &floats(&feature_loss_normalized_per_sample(b.clone(), b.clone())),
            &[0.0, 0.0],
            1e-7,
        );
        // In the composite loss: one teacher with weight 1, feature weight 2.
        let loss = DistillationLossConfig::new()
            .with_hard_weight(0.0)
            .with_soft_weight(0.0)
            .with_feature_weight(2.0)
            .with_feature_norm(FeatureNorm::TeacherMeanSquare)
            .init()
            .unwrap();
        let outputs = vec![ModelOutput {
            logits: Tensor::zeros([2, 3], &device),
            features: vec![b.into()],
        }];
        let out = loss.forward(
            Tensor::zeros([2, 3], &device),
            labels(&[0, 1], &device),
            &outputs,
            &[vec![a.into()]],
            Tensor::ones([2, 1], &device),
        );
        let mean = (expected[0] + expected[1]) / 2.0;
        assert_close("feature part", name, &floats(&out.feature()), &[mean], 1e-5);
        assert_close("total", name, &floats(&out.total), &[2.0 * mean], 1e-5);
    }
}

#[test]
#[should_panic(expected = "kd_loss: shapes differ: [3, 5] vs [2, 5]")]
fn kd_loss_shape_mismatch_panics_naming_both_shapes() {
    let (_, device) = cpu_devices().remove(0);
    let _ = kd_loss(
        matrix(&student(), &device),
        matrix(&teacher()[..2], &device),
        4.0,
    );
}

#[test]
fn composite_loss_parts_and_weights() {
    // Two teachers with per-sample weights; soft = mean_i sum_k w_ik kd_ik.
    let teacher2: Vec<Vec<f64>> = teacher()
        .iter()
        .map(|r| r.iter().map(|v| -v).collect())
        .collect();
    let w = [[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]];
    let y = [2i64, 0, 3];
    let temperature = 4.0;
    let mut soft = 0.0;
    let mut hard = 0.0;
    for i in 0..3 {
        soft += w[i][0] * kd64(&student()[i], &teacher()[i], temperature)
            + w[i][1] * kd64(&student()[i], &teacher2[i], temperature);
        hard -= log_softmax64(&student()[i], 1.0)[y[i] as usize];
    }
    soft /= 3.0;
    hard /= 3.0;
    let loss = DistillationLossConfig::new()
        // Plain Hinton KD: the formula these values come from.
        .with_logit_standardization(false)
        .with_hard_weight(0.5)
        .with_soft_weight(2.0)
        .with_feature_weight(0.0)
        .init()
        .unwrap();
    for (name, device) in all_devices() {
        let outputs: Vec<ModelOutput> = [teacher(), teacher2.clone()]
            .iter()
            .map(|t| ModelOutput {
                logits: matrix(t, &device),
                features: vec![],
            })
            .collect();
        let weights = matrix(&w.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), &device);
        let out = loss.forward(
            matrix(&student(), &device),
            labels(&y, &device),
            &outputs,
            &[],
            weights,
        );
        assert_close("hard", name, &floats(&out.hard()), &[hard], 1e-5);
        assert_close("soft", name, &floats(&out.soft()), &[soft], 1e-5);
        assert_close("feature (off)", name, &floats(&out.feature()), &[0.0], 0.0);
        assert_close(
            "total",
            name,
            &floats(&out.total),
            &[0.5 * hard + 2.0 * soft],
            1e-5,
        );
    }
}

#[test]
fn soft_and_feature_weight_zero_is_plain_cross_entropy() {
    let y = [2i64, 0, 3];
    let want: f64 = (0..3)
        .map(|i| -log_softmax64(&student()[i], 1.0)[y[i] as usize])
        .sum::<f64>()
        / 3.0;
    let loss = DistillationLossConfig::new()
        .with_soft_weight(0.0)
        .with_feature_weight(0.0)
        .init()
        .unwrap();
    for (name, device) in all_devices() {
        let outputs = vec![ModelOutput {
            logits: matrix(&teacher(), &device),
            features: vec![],
        }];
        let weights = matrix(&[vec![1.0], vec![1.0], vec![1.0]], &device);
        let out = loss.forward(
            matrix(&student(), &device),
            labels(&y, &device),
            &outputs,
            &[],
            weights,
        );
        assert_close("total", name, &floats(&out.total), &[want], 1e-5);
        // burn's own cross-entropy agrees.
        let ce = burn::nn::loss::CrossEntropyLossConfig::new()
            .init(&device)
            .forward(matrix(&student(), &device), labels(&y, &device));
        assert_close("burn CE", name, &floats(&ce), &[want], 1e-5);
    }
}

#[test]
fn dkd_soft_loss_is_used_when_configured() {
    let y = [2i64, 0, 3];
    let want: f64 = (0..3)
        .map(|i| dkd64(&student()[i], &teacher()[i], y[i] as usize, 1.0, 8.0, 4.0))
        .sum::<f64>()
        / 3.0;
    let loss = DistillationLossConfig::new()
        // Plain Hinton KD: the formula these values come from.
        .with_logit_standardization(false)
        .with_hard_weight(0.0)
        .with_feature_weight(0.0)
        .with_soft_loss(SoftLoss::Dkd {
            target_weight: 1.0,
            non_target_weight: 8.0,
        })
        .init()
        .unwrap();
    for (name, device) in cpu_devices() {
        let outputs = vec![ModelOutput {
            logits: matrix(&teacher(), &device),
            features: vec![],
        }];
        let weights = matrix(&[vec![1.0], vec![1.0], vec![1.0]], &device);
        let out = loss.forward(
            matrix(&student(), &device),
            labels(&y, &device),
            &outputs,
            &[],
            weights,
        );
        assert_close("dkd soft", name, &floats(&out.soft()), &[want], 1e-4);
    }
}

#[test]
fn invalid_loss_configs_name_the_value() {
    let err = |c: DistillationLossConfig| c.init().unwrap_err().to_string();
    assert!(err(DistillationLossConfig::new().with_temperature(0.0)).contains("temperature = 0"));
    assert!(err(DistillationLossConfig::new().with_temperature(-2.0)).contains("temperature = -2"));
    assert!(
        err(DistillationLossConfig::new().with_temperature(f64::NAN)).contains("temperature = NaN")
    );
    assert!(err(DistillationLossConfig::new().with_hard_weight(-1.0)).contains("hard_weight = -1"));
    assert!(
        err(DistillationLossConfig::new().with_soft_weight(f64::NAN)).contains("soft_weight = NaN")
    );
    assert!(
        err(DistillationLossConfig::new().with_feature_weight(-0.5))
            .contains("feature_weight = -0.5")
    );
    let dkd = DistillationLossConfig::new().with_soft_loss(SoftLoss::Dkd {
        target_weight: 1.0,
        non_target_weight: -8.0,
    });
    assert!(err(dkd).contains("non_target_weight = -8"));
}

/// The composite loss is a weighted sum of named terms: every term is reported by name, a
/// term added with `with_term` (a toy per-sample term here: the student's mean squared logit)
/// enters the total with its weight, and the built-in terms keep their values.
#[test]
fn composite_loss_reports_every_term_by_name_and_adds_a_new_term() {
    use burn_distill::{LossTerm, TermInput, TermValue};

    #[derive(Debug)]
    struct MeanSquaredLogit;
    impl LossTerm for MeanSquaredLogit {
        fn name(&self) -> &str {
            "mean_squared_logit"
        }
        fn forward_no_reduction(&self, input: &TermInput<'_>) -> TermValue {
            let n = input.batch_size();
            TermValue::PerSample(
                input
                    .student_logits
                    .clone()
                    .square()
                    .mean_dim(1)
                    .reshape([n]),
            )
        }
    }

    for (name, device) in all_devices() {
        let (s, t) = (student(), teacher());
        let n = s.len();
        let logits = |rows: &[Vec<f64>]| matrix(rows, &device);
        let outputs = vec![ModelOutput {
            logits: logits(&t),
            features: vec![],
        }];
        let y = [2usize, 0, 3];
        let base = DistillationLossConfig::new()
            // Plain Hinton KD: the formula these values come from.
            .with_logit_standardization(false)
            .with_hard_weight(0.5)
            .with_soft_weight(2.0)
            .with_feature_weight(0.0)
            .init()
            .unwrap();
        let loss = base.clone().with_term(MeanSquaredLogit, 3.0);
        let run = |loss: &burn_distill::DistillationLoss| {
            loss.forward(
                logits(&s),
                labels(&[2, 0, 3], &device),
                &outputs,
                &[],
                Tensor::ones([n, 1], &device),
            )
        };
        let (out, plain) = (run(&loss), run(&base));
        let names: Vec<&str> = out.terms.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["hard", "soft", "feature", "mean_squared_logit"],
            "{name}"
        );
        // Independent f64 values: CE, KD at T = 4 and the mean squared logit.
        let ce = |row: &[f64], y: usize| -log_softmax64(row, 1.0)[y];
        let hard = (0..n).map(|i| ce(&s[i], y[i])).sum::<f64>() / n as f64;
        let soft = (0..n).map(|i| kd64(&s[i], &t[i], 4.0)).sum::<f64>() / n as f64;
        let square = s
            .iter()
            .map(|r| r.iter().map(|v| v * v).sum::<f64>() / 5.0)
            .sum::<f64>()
            / n as f64;
        let term = out.term("mean_squared_logit").unwrap();
        assert_close("new term", name, &floats(&term), &[square], 1e-5);
        assert_close("hard", name, &floats(&out.hard()), &[hard], 1e-5);
        assert_close("soft", name, &floats(&out.soft()), &[soft], 1e-4);
        let want = 0.5 * hard + 2.0 * soft + 3.0 * square;
        assert_close("total", name, &floats(&out.total), &[want], 1e-4);
        // Without the new term the other terms are unchanged and the total lacks its share.
        assert_close(
            "base total",
            name,
            &floats(&plain.total),
            &[want - 3.0 * square],
            1e-4,
        );
        assert!(out.term("no such term").is_none());
    }
}

/// Each row z-scored in f64: `(z - mean) / std` (population standard deviation).
fn zscore64(row: &[f64]) -> Vec<f64> {
    let n = row.len() as f64;
    let mean = row.iter().sum::<f64>() / n;
    let std = (row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    row.iter().map(|v| (v - mean) / std).collect()
}

/// Logit standardization (Sun et al., CVPR 2024) for KD, DKD and the mixture: the soft term
/// equals the plain one on z-scored rows (f64 reference), and logits that differ only by a
/// per-row scale and offset give the same loss.
#[test]
fn logit_standardization_is_the_soft_term_on_z_scored_rows() {
    let teacher2: Vec<Vec<f64>> = teacher()
        .iter()
        .map(|r| r.iter().rev().copied().collect())
        .collect();
    let w = [[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]];
    let y = [2i64, 0, 3];
    let temperature = 2.0;
    let z = |rows: &[Vec<f64>]| -> Vec<Vec<f64>> { rows.iter().map(|r| zscore64(r)).collect() };
    let (zs, zt, zt2) = (z(&student()), z(&teacher()), z(&teacher2));
    let kd: f64 = (0..3)
        .map(|i| {
            w[i][0] * kd64(&zs[i], &zt[i], temperature)
                + w[i][1] * kd64(&zs[i], &zt2[i], temperature)
        })
        .sum::<f64>()
        / 3.0;
    let dkd: f64 = (0..3)
        .map(|i| {
            let y = y[i] as usize;
            w[i][0] * dkd64(&zs[i], &zt[i], y, 1.0, 8.0, temperature)
                + w[i][1] * dkd64(&zs[i], &zt2[i], y, 1.0, 8.0, temperature)
        })
        .sum::<f64>()
        / 3.0;
    for (name, device) in all_devices() {
        let outputs = |scale: f64, offset: f64| -> Vec<ModelOutput> {
            [teacher(), teacher2.clone()]
                .iter()
                .map(|t| {
                    let moved: Vec<Vec<f64>> = t
                        .iter()
                        .map(|r| r.iter().map(|v| scale * v + offset).collect())
                        .collect();
                    ModelOutput {
                        logits: matrix(&moved, &device),
                        features: vec![],
                    }
                })
                .collect()
        };
        let weights = || matrix(&w.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), &device);
        for (soft_loss, expected) in [
            (SoftLoss::Kd, kd),
            (
                SoftLoss::Dkd {
                    target_weight: 1.0,
                    non_target_weight: 8.0,
                },
                dkd,
            ),
        ] {
            let loss = DistillationLossConfig::new()
                .with_temperature(temperature)
                .with_feature_weight(0.0)
                .with_soft_loss(soft_loss.clone())
                .with_logit_standardization(true)
                .init()
                .unwrap();
            for (scale, offset) in [(1.0, 0.0), (3.0, -7.0)] {
                let out = loss.forward(
                    matrix(&student(), &device),
                    labels(&y, &device),
                    &outputs(scale, offset),
                    &[],
                    weights(),
                );
                assert_close(
                    &format!("standardized {soft_loss:?}, teachers x{scale} {offset:+}"),
                    name,
                    &floats(&out.soft()),
                    &[expected],
                    1e-4,
                );
            }
        }
    }
}

/// KD to the weighted mixture against its definition in f64,
/// `T² Σ_c p̄ (log p̄ - log q)` with `p̄ = Σ_k w_k softmax(z_k/T)`; with all the weight on
/// one teacher it is that teacher's KD; it never exceeds the weighted sum of per-teacher KDs
/// (convexity of the KL).
#[test]
fn mixture_kd_matches_its_definition() {
    use burn_distill::loss::MixtureKdLossConfig;
    let teacher2: Vec<Vec<f64>> = teacher()
        .iter()
        .map(|r| r.iter().map(|v| 0.5 * v - 1.0).rev().collect())
        .collect();
    let w = [[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]];
    let temperature = 4.0;
    let mut expected = Vec::new();
    for i in 0..3 {
        let p1: Vec<f64> = log_softmax64(&teacher()[i], temperature)
            .iter()
            .map(|l| l.exp())
            .collect();
        let p2: Vec<f64> = log_softmax64(&teacher2[i], temperature)
            .iter()
            .map(|l| l.exp())
            .collect();
        let q = log_softmax64(&student()[i], temperature);
        let kl: f64 = (0..5)
            .map(|c| {
                let mix = w[i][0] * p1[c] + w[i][1] * p2[c];
                mix * (mix.ln() - q[c])
            })
            .sum();
        let mixed = temperature * temperature * kl;
        let summed = w[i][0] * kd64(&student()[i], &teacher()[i], temperature)
            + w[i][1] * kd64(&student()[i], &teacher2[i], temperature);
        assert!(mixed <= summed + 1e-12, "convexity: {mixed} > {summed}");
        if w[i][1] == 0.0 {
            let single = kd64(&student()[i], &teacher()[i], temperature);
            assert!((mixed - single).abs() < 1e-12);
        }
        expected.push(mixed);
    }
    let loss = MixtureKdLossConfig::new()
        .with_temperature(temperature)
        .init()
        .unwrap();
    for (name, device) in all_devices() {
        let teachers = [matrix(&teacher(), &device), matrix(&teacher2, &device)];
        let weights = matrix(&w.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), &device);
        let per_sample =
            loss.forward_no_reduction(matrix(&student(), &device), &teachers, weights.clone());
        assert_close("mixture KD", name, &floats(&per_sample), &expected, 1e-5);
        // The same through the composite loss (SoftLoss::Mixture), reduced by the mean.
        let composite = DistillationLossConfig::new()
            // Plain Hinton KD: the formula these values come from.
            .with_logit_standardization(false)
            .with_feature_weight(0.0)
            .with_soft_loss(SoftLoss::Mixture)
            .init()
            .unwrap();
        let outputs: Vec<ModelOutput> = teachers
            .iter()
            .map(|t| ModelOutput {
                logits: t.clone(),
                features: vec![],
            })
            .collect();
        let out = composite.forward(
            matrix(&student(), &device),
            labels(&[2, 0, 3], &device),
            &outputs,
            &[],
            weights,
        );
        let mean = expected.iter().sum::<f64>() / 3.0;
        assert_close(
            "mixture KD (composite)",
            name,
            &floats(&out.soft()),
            &[mean],
            1e-5,
        );
    }
    assert!(
        MixtureKdLossConfig::new()
            .with_temperature(0.0)
            .init()
            .is_err()
    );
}

/// The feature term against the teachers' weighted mixture, against its definition in f64:
/// per sample `mean_e (a[i, e] - Σ_k w[i, k] f_k[i, e])²` (divided by `mean m² + 1e-6` when
/// normalized). Through the composite loss (`FeatureTarget::Mixture`) it reads only the
/// first teacher's adapted feature; with all the weight on one teacher it is FitNets' loss
/// to that teacher; and it is never more than the weighted sum of the per-teacher losses
/// (the squared distance is convex).
#[test]
fn mixture_feature_loss_matches_its_definition() {
    use burn_distill::loss::MixtureFeatureLoss;
    use burn_distill::{Feature, FeatureTarget};
    let (n, e) = (3usize, 8usize);
    let grid = |seed: u64, scale: f32| -> Vec<Vec<f64>> {
        values(n * e, seed, scale)
            .chunks(e)
            .map(|r| r.iter().map(|v| *v as f64).collect())
            .collect()
    };
    let (a, f1, f2) = (grid(1, 1.0), grid(2, 2.0), grid(3, 0.5));
    let w = [[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]];
    let mut plain = Vec::new();
    let mut relative = Vec::new();
    for i in 0..n {
        let m: Vec<f64> = (0..e)
            .map(|j| w[i][0] * f1[i][j] + w[i][1] * f2[i][j])
            .collect();
        let mse = |t: &[f64]| (0..e).map(|j| (a[i][j] - t[j]).powi(2)).sum::<f64>() / e as f64;
        let mixed = mse(&m);
        let summed = w[i][0] * mse(&f1[i]) + w[i][1] * mse(&f2[i]);
        assert!(mixed <= summed + 1e-12, "convexity: {mixed} > {summed}");
        if w[i][1] == 0.0 {
            assert!((mixed - mse(&f1[i])).abs() < 1e-12);
        }
        plain.push(mixed);
        let mean_square = m.iter().map(|v| v * v).sum::<f64>() / e as f64;
        relative.push(mixed / (mean_square + 1e-6));
    }
    for (name, device) in all_devices() {
        let teachers = [matrix(&f1, &device), matrix(&f2, &device)];
        let weights = matrix(&w.iter().map(|r| r.to_vec()).collect::<Vec<_>>(), &device);
        let got = MixtureFeatureLoss::new(FeatureNorm::None).forward_no_reduction(
            matrix(&a, &device),
            &teachers,
            weights.clone(),
        );
        assert_close("mixture feature", name, &floats(&got), &plain, 1e-5);
        let got = MixtureFeatureLoss::new(FeatureNorm::TeacherMeanSquare).forward_no_reduction(
            matrix(&a, &device),
            &teachers,
            weights.clone(),
        );
        assert_close(
            "mixture feature, relative",
            name,
            &floats(&got),
            &relative,
            1e-4,
        );
        // Composite: maps [N, 2, 2, 2]; the second teacher's adapted feature is garbage
        // (all 100) and must not count.
        let map = |rows: &[Vec<f64>]| Feature::Map(matrix(rows, &device).reshape([n, 2, 2, 2]));
        let outputs: Vec<ModelOutput> = [&f1, &f2]
            .iter()
            .map(|f| ModelOutput {
                logits: matrix(&teacher(), &device),
                features: vec![map(f)],
            })
            .collect();
        let garbage = Feature::Map(Tensor::<4>::full([n, 2, 2, 2], 100.0, &device));
        let adapted = vec![vec![map(&a)], vec![garbage]];
        let composite = loss_from_step_0()
            .with_feature_target(FeatureTarget::Mixture)
            .init()
            .unwrap();
        let out = composite.forward(
            matrix(&student(), &device),
            labels(&[2, 0, 3], &device),
            &outputs,
            &adapted,
            weights,
        );
        let mean = plain.iter().sum::<f64>() / n as f64;
        assert_close(
            "mixture feature (composite)",
            name,
            &floats(&out.feature()),
            &[mean],
            1e-5,
        );
        // ...so the distiller runs only the first teacher's adapters; per teacher it runs
        // all K, and none when no weighted term reads features.
        assert_eq!(composite.adapted_teachers(3), 1, "{name}");
        let per_teacher = loss_from_step_0().init().unwrap();
        assert_eq!(per_teacher.adapted_teachers(3), 3, "{name}");
        let no_features = loss_from_step_0().with_feature_weight(0.0).init().unwrap();
        assert_eq!(no_features.adapted_teachers(3), 0, "{name}");
    }
}

/// The standardized soft term's loss and gradient on the student's raw logits in f64, for
/// `L = mean_i Σ_k w[i, k] T² KL(softmax(ẑ_k[i] / T) ‖ softmax(ẑ_s[i] / T))` with ẑ the
/// z-scored rows. The gradient is the chain rule written out: `∂L/∂ẑ_s = Σ_k w_k T (q - p_k) / N`
/// (q, p_k the softened student and teacher), then through the z-score
/// `ẑ_m = c_m / (σ + ε)`, `c = s - mean(s)`, `σ² = mean(c²)`:
/// `∂ẑ_m/∂s_j = (δ_mj - 1/C) / (σ + ε) - c_m c_j / (C σ (σ + ε)²)`.
fn standardized_kd64(
    student: &[Vec<f64>],
    teachers: &[Vec<Vec<f64>>],
    weights: &[Vec<f64>],
    temperature: f64,
) -> (f64, Vec<f64>) {
    const EPS: f64 = 1e-7;
    let n = student.len() as f64;
    let (mut loss, mut grad) = (0.0, Vec::new());
    for (i, s) in student.iter().enumerate() {
        let c = s.len();
        let mean = s.iter().sum::<f64>() / c as f64;
        let centred: Vec<f64> = s.iter().map(|v| v - mean).collect();
        let sigma = (centred.iter().map(|v| v * v).sum::<f64>() / c as f64).sqrt();
        let zs: Vec<f64> = centred.iter().map(|v| v / (sigma + EPS)).collect();
        let q: Vec<f64> = log_softmax64(&zs, temperature)
            .iter()
            .map(|l| l.exp())
            .collect();
        let mut dz = vec![0.0; c];
        for (k, teacher) in teachers.iter().enumerate() {
            let t = &teacher[i];
            let tm = t.iter().sum::<f64>() / c as f64;
            let ts = (t.iter().map(|v| (v - tm).powi(2)).sum::<f64>() / c as f64).sqrt();
            let zt: Vec<f64> = t.iter().map(|v| (v - tm) / (ts + EPS)).collect();
            let w = weights[i][k];
            loss += w * kd64(&zs, &zt, temperature) / n;
            let p = log_softmax64(&zt, temperature);
            for m in 0..c {
                dz[m] += w * temperature * (q[m] - p[m].exp()) / n;
            }
        }
        for j in 0..c {
            let ds: f64 = (0..c)
                .map(|m| {
                    let delta = if m == j { 1.0 } else { 0.0 };
                    let jac = (delta - 1.0 / c as f64) / (sigma + EPS)
                        - centred[m] * centred[j] / (c as f64 * sigma * (sigma + EPS).powi(2));
                    dz[m] * jac
                })
                .sum();
            grad.push(ds);
        }
    }
    (loss, grad)
}

/// Issue 31: the standardized soft term (the default) must reach the student. Its loss and
/// its gradient on the student's raw logits match the f64 chain rule above for one teacher
/// and for three with uneven weights, at T = 4 (the default) and T = 1; the reference's
/// gradient is itself checked by central differences of its loss.
#[test]
fn standardized_soft_term_gradient_matches_f64_for_one_and_three_teachers() {
    let teacher2: Vec<Vec<f64>> = teacher()
        .iter()
        .map(|r| r.iter().rev().copied().collect())
        .collect();
    let teacher3: Vec<Vec<f64>> = student()
        .iter()
        .map(|r| r.iter().map(|v| 2.0 * v - 1.0).collect())
        .collect();
    // (teachers' logits, the selector's weights [N, K])
    type Case = (Vec<Vec<Vec<f64>>>, Vec<Vec<f64>>);
    let cases: Vec<Case> = vec![
        (vec![teacher()], vec![vec![1.0]; 3]),
        (
            vec![teacher(), teacher2, teacher3],
            vec![
                vec![0.2, 0.5, 0.3],
                vec![1.0, 0.0, 0.0],
                vec![0.0, 0.25, 0.75],
            ],
        ),
    ];
    for (name, plain) in all_devices() {
        let device = plain.clone().autodiff();
        for (teachers, w) in &cases {
            for temperature in [4.0, 1.0] {
                let what = format!("standardized KD, K = {}, T = {temperature}", teachers.len());
                let (want, want_grad) = standardized_kd64(&student(), teachers, w, temperature);
                // The reference's own gradient against central differences of its loss.
                for j in 0..15 {
                    let h = 1e-6;
                    let moved = |d: f64| {
                        let mut s = student();
                        s[j / 5][j % 5] += d;
                        standardized_kd64(&s, teachers, w, temperature).0
                    };
                    let numeric = (moved(h) - moved(-h)) / (2.0 * h);
                    assert!(
                        (numeric - want_grad[j]).abs() < 1e-6,
                        "{what}: reference gradient {j}: {} vs central difference {numeric}",
                        want_grad[j]
                    );
                }
                assert!(
                    want_grad.iter().any(|g| g.abs() > 1e-3),
                    "{what}: {want_grad:?}"
                );
                let loss = DistillationLossConfig::new()
                    .with_temperature(temperature)
                    .with_hard_weight(0.0)
                    .with_feature_weight(0.0)
                    .with_logit_standardization(true)
                    .init()
                    .unwrap();
                let s = matrix(&student(), &device).require_grad();
                let outputs: Vec<ModelOutput> = teachers
                    .iter()
                    .map(|t| ModelOutput {
                        logits: matrix(t, &plain),
                        features: vec![],
                    })
                    .collect();
                let out = loss.forward(
                    s.clone(),
                    labels(&[2, 0, 3], &device),
                    &outputs,
                    &[],
                    matrix(w, &device),
                );
                assert_close(&what, name, &floats(&out.soft()), &[want], 1e-5);
                let grads = out.total.backward();
                let grad = floats(&s.grad(&grads).expect("the student's logits get a gradient"));
                assert_close(&format!("{what}: gradient"), name, &grad, &want_grad, 1e-4);
            }
        }
    }
}

/// `FeatureTarget::Closest` (issue 29): per sample, the smallest per-teacher feature distance
/// among the kept teachers (weight > 0), against the f64 definition with plain MSE; a
/// screened-out teacher is never the target even when it is the closest, the weights do not
/// scale the distance, and the gradient reaches only the closest teacher's adapted feature.
#[test]
fn closest_feature_target_is_the_minimum_over_kept_teachers() {
    use burn_distill::{FeatureTarget, TeacherReduction};
    let adapted: Vec<Vec<Vec<f64>>> = vec![
        vec![vec![1.0, 2.0, 0.0], vec![0.5, -1.0, 2.0]],
        vec![vec![0.0, 2.5, 1.0], vec![3.0, -1.0, 0.0]],
        vec![vec![1.1, 2.0, 0.1], vec![0.0, 0.0, 0.0]],
    ];
    let targets: Vec<Vec<Vec<f64>>> = vec![
        vec![vec![1.0, 1.0, 1.0], vec![0.0, -1.0, 2.0]],
        vec![vec![0.0, 2.0, 1.0], vec![1.0, 1.0, 1.0]],
        vec![vec![1.0, 2.0, 0.0], vec![5.0, 5.0, 5.0]],
    ];
    // Sample 0: teacher 2 is the closest but screened out (weight 0).
    let w = vec![vec![0.7, 0.3, 0.0], vec![0.2, 0.3, 0.5]];
    let mse = |a: &[f64], b: &[f64]| {
        a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64
    };
    let want: Vec<f64> = (0..2)
        .map(|i| {
            (0..3)
                .filter(|k| w[i][*k] > 0.0)
                .map(|k| mse(&adapted[k][i], &targets[k][i]))
                .fold(f64::INFINITY, f64::min)
        })
        .collect();
    // The closest kept teacher: sample 0 → teacher 1 (0.0833 < 0.667), sample 1 → teacher 0.
    assert!((want[0] - mse(&adapted[1][0], &targets[1][0])).abs() < 1e-12);
    assert!((want[1] - mse(&adapted[0][1], &targets[0][1])).abs() < 1e-12);
    for (name, plain) in all_devices() {
        let device = plain.clone().autodiff();
        let student_features: Vec<Tensor<2>> = adapted
            .iter()
            .map(|rows| matrix(rows, &device).require_grad())
            .collect();
        let outputs: Vec<ModelOutput> = targets
            .iter()
            .map(|rows| ModelOutput {
                logits: Tensor::zeros([2, 3], &device),
                features: vec![matrix(rows, &device).into()],
            })
            .collect();
        let adapted_lists: Vec<Vec<burn_distill::Feature>> = student_features
            .iter()
            .map(|f| vec![f.clone().into()])
            .collect();
        for reduction in [
            TeacherReduction::WeightedSum,
            TeacherReduction::DivideByTeachers,
        ] {
            let loss = DistillationLossConfig::new()
                .with_hard_weight(0.0)
                .with_soft_weight(0.0)
                .with_feature_weight(2.0)
                .with_teacher_reduction(reduction)
                .with_feature_target(FeatureTarget::Closest)
                .init()
                .unwrap();
            let out = loss.forward(
                Tensor::zeros([2, 3], &device),
                labels(&[0, 1], &device),
                &outputs,
                &adapted_lists,
                matrix(&w, &device),
            );
            let mean = (want[0] + want[1]) / 2.0;
            let what = format!("closest features, {reduction:?}");
            assert_close(
                &what,
                name,
                &floats(&out.term("feature").unwrap()),
                &[mean],
                1e-6,
            );
            assert_close(&what, name, &floats(&out.total), &[2.0 * mean], 1e-6);
            let grads = out.total.backward();
            // d/da of 2 · mean_i mse: 2 · 2 (a - t) / (3 · 2) on the closest teacher's row.
            for (k, feature) in student_features.iter().enumerate() {
                let grad = floats(
                    &feature
                        .grad(&grads)
                        .unwrap_or_else(|| feature.zeros_like().without_autodiff()),
                );
                let expected: Vec<f64> = (0..2)
                    .flat_map(|i| {
                        let closest = if i == 0 { 1 } else { 0 };
                        (0..3)
                            .map(|j| {
                                if k == closest {
                                    2.0 * 2.0 * (adapted[k][i][j] - targets[k][i][j]) / 6.0
                                } else {
                                    0.0
                                }
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect();
                assert_close(
                    &format!("{what}: gradient of teacher {k}'s adapter"),
                    name,
                    &grad,
                    &expected,
                    1e-5,
                );
            }
        }
    }
}

/// `FeatureTarget::FirstTeacher`: the feature term is teacher 0's distance at full weight,
/// whatever the selector's weights (teacher 0 screened out for sample 0 still counts), with
/// plain and teacher-normalized MSE, against the f64 formula; the gradient reaches teacher
/// 0's adapted features only, and one adapted list (teacher 0's) is all the term needs.
#[test]
fn first_teacher_feature_target_is_teacher_zeros_distance_at_full_weight() {
    use burn_distill::{FeatureTarget, TeacherReduction};
    let adapted: Vec<Vec<f64>> = vec![vec![1.0, 2.0, 0.0], vec![0.5, -1.0, 2.0]];
    let targets: Vec<Vec<Vec<f64>>> = vec![
        vec![vec![1.0, 1.0, 1.0], vec![0.0, -1.0, 2.0]],
        vec![vec![1.0, 2.0, 0.0], vec![0.5, -1.0, 2.0]],
    ];
    let w = vec![vec![0.0, 1.0], vec![0.9, 0.1]];
    let mse = |a: &[f64], b: &[f64]| {
        a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64
    };
    let mean_square = |b: &[f64]| b.iter().map(|x| x * x).sum::<f64>() / b.len() as f64;
    for (name, plain) in all_devices() {
        let device = plain.clone().autodiff();
        for norm in [FeatureNorm::None, FeatureNorm::TeacherMeanSquare] {
            // d[i, 0], divided by mean t² + 1e-6 when normalized.
            let d: Vec<f64> = (0..2)
                .map(|i| {
                    let raw = mse(&adapted[i], &targets[0][i]);
                    match norm {
                        FeatureNorm::None => raw,
                        _ => raw / (mean_square(&targets[0][i]) + 1e-6),
                    }
                })
                .collect();
            let mean = (d[0] + d[1]) / 2.0;
            assert!(mean > 0.1, "the reference must not be trivially 0");
            for reduction in [
                TeacherReduction::WeightedSum,
                TeacherReduction::DivideByTeachers,
            ] {
                let student = matrix(&adapted, &device).require_grad();
                let outputs: Vec<ModelOutput> = targets
                    .iter()
                    .map(|rows| ModelOutput {
                        logits: Tensor::zeros([2, 3], &device),
                        features: vec![matrix(rows, &device).into()],
                    })
                    .collect();
                let loss = DistillationLossConfig::new()
                    .with_hard_weight(0.0)
                    .with_soft_weight(0.0)
                    .with_feature_weight(2.0)
                    .with_feature_norm(norm)
                    .with_teacher_reduction(reduction)
                    .with_feature_target(FeatureTarget::FirstTeacher)
                    .init()
                    .unwrap();
                assert_eq!(loss.adapted_teachers(2), 1);
                let out = loss.forward(
                    Tensor::zeros([2, 3], &device),
                    labels(&[0, 1], &device),
                    &outputs,
                    &[vec![student.clone().into()]],
                    matrix(&w, &device),
                );
                let what = format!("first-teacher features, {norm:?}, {reduction:?}");
                let feature = floats(&out.term("feature").unwrap());
                assert_close(&what, name, &feature, &[mean], 1e-5);
                assert_close(&what, name, &floats(&out.total), &[2.0 * mean], 1e-5);
                // d/da of 2 · mean_i d[i, 0] = 2 · 2 (a - t) / (3 · 2 · s_i), s_i the norm.
                let grad = floats(&student.grad(&out.total.backward()).unwrap());
                let expected: Vec<f64> = (0..2)
                    .flat_map(|i| {
                        let scale = match norm {
                            FeatureNorm::None => 1.0,
                            _ => mean_square(&targets[0][i]) + 1e-6,
                        };
                        (0..3)
                            .map(|j| 2.0 * 2.0 * (adapted[i][j] - targets[0][i][j]) / (6.0 * scale))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                assert_close(&format!("{what}: gradient"), name, &grad, &expected, 1e-5);
            }
        }
    }
}
