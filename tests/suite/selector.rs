//! Teacher selector: values against hand computation and an independent f64 reference.

use crate::common::*;
use burn_distill::{Error, Granularity, ScreeningRule, TeacherSelectorConfig, Weighting};

/// Three teachers, two samples, three classes; labels [0, 2].
///
/// Cross-entropies, computed by hand (`ln(sum_c exp z_c) - z_y`):
/// sample 0: t0 0.169846, t1 1.407606, t2 2.407606 (mean 1.328353)
/// sample 1: t0 0.407606, t1 0.169846, t2 2.407606 (mean 0.995019)
fn example() -> (Vec<Vec<Vec<f64>>>, Vec<i64>) {
    let teachers = vec![
        vec![vec![3.0, 1.0, 0.0], vec![0.0, 1.0, 2.0]],
        vec![vec![1.0, 2.0, 0.0], vec![1.0, 0.0, 3.0]],
        vec![vec![0.0, 2.0, 1.0], vec![2.0, 1.0, 0.0]],
    ];
    (teachers, vec![0, 2])
}

const CE: [[f64; 3]; 2] = [
    [0.169_846, 1.407_606, 2.407_606],
    [0.407_606, 0.169_846, 2.407_606],
];

/// Per device: name, cross-entropy, keep mask and weights, all row-major `[N, K]`.
type Outcome = (&'static str, Vec<f32>, Vec<bool>, Vec<f32>);

fn run(
    config: &TeacherSelectorConfig,
    teachers: &[Vec<Vec<f64>>],
    label_values: &[i64],
) -> Vec<Outcome> {
    all_devices()
        .into_iter()
        .map(|(name, device)| {
            let logits: Vec<_> = teachers.iter().map(|t| matrix(t, &device)).collect();
            let selection = config
                .init(teachers.len())
                .unwrap()
                .select(&logits, labels(label_values, &device))
                .unwrap();
            (
                name,
                floats(&selection.cross_entropy),
                bools(&selection.keep),
                floats(&selection.weights),
            )
        })
        .collect()
}

#[test]
fn cross_entropy_matches_hand_computation() {
    let (teachers, y) = example();
    for (device, ce, _, _) in run(&TeacherSelectorConfig::seed_paper(), &teachers, &y) {
        assert_close("cross-entropy", device, &ce, &CE.concat(), 1e-5);
    }
}

#[test]
fn screened_softmax_default() {
    // Sample 0: only t0 is at or below the mean -> weights [1, 0, 0].
    // Sample 1: t0 and t1 kept; w ∝ exp(-CE) -> 1 / (1 + e^(0.407606 - 0.169846))
    // = [0.440838, 0.559162, 0].
    let (teachers, y) = example();
    for (device, _, keep, weights) in run(&TeacherSelectorConfig::seed_paper(), &teachers, &y) {
        assert_eq!(
            keep,
            vec![true, false, false, true, true, false],
            "{device}"
        );
        assert_close(
            "weights",
            device,
            &weights,
            &[1.0, 0.0, 0.0, 0.440_838, 0.559_162, 0.0],
            1e-5,
        );
    }
}

#[test]
fn softmax_tau_scales_the_preference() {
    // tau = 2 on sample 1: w ∝ exp(-CE / 2) -> 1 / (1 + exp(-(0.407606 - 0.169846) / 2))
    // = 0.529685 for t1.
    let (teachers, y) = example();
    let w1 = 1.0 / (1.0 + (-(CE[1][0] - CE[1][1]) / 2.0f64).exp());
    for (device, _, _, weights) in run(
        &TeacherSelectorConfig::seed_paper().with_tau(2.0),
        &teachers,
        &y,
    ) {
        assert_close("weights", device, &weights[3..], &[1.0 - w1, w1, 0.0], 1e-5);
    }
}

#[test]
fn average_unscreened_and_screened() {
    let (teachers, y) = example();
    let third = 1.0 / 3.0;
    for (device, _, keep, weights) in run(
        &TeacherSelectorConfig::unscreened(Weighting::Average),
        &teachers,
        &y,
    ) {
        assert!(keep.iter().all(|k| *k), "{device}");
        assert_close("weights", device, &weights, &[third; 6], 1e-6);
    }
    let screened = TeacherSelectorConfig::seed_paper().with_weighting(Weighting::Average);
    for (device, _, _, weights) in run(&screened, &teachers, &y) {
        assert_close(
            "weights",
            device,
            &weights,
            &[1.0, 0.0, 0.0, 0.5, 0.5, 0.0],
            1e-6,
        );
    }
}

#[test]
fn confidence_matches_ca_mkd_formula() {
    // CA-MKD: w = (1 - softmax(CE)) / (K - 1). Reference, in PyTorch:
    //   ce = torch.tensor([[0.169846, 1.407606, 2.407606]])
    //   w = (1 - torch.softmax(ce, dim=1)) / 2
    // Sample 0 by hand: exp(CE) = [1.185122, 4.086161, 11.107338], sum 16.378622,
    // softmax = [0.072358, 0.249481, 0.678161] -> w = [0.463821, 0.375259, 0.160920].
    let (teachers, y) = example();
    for (device, _, _, weights) in run(
        &TeacherSelectorConfig::unscreened(Weighting::Confidence),
        &teachers,
        &y,
    ) {
        assert_close(
            "weights",
            device,
            &weights[..3],
            &[0.463_821, 0.375_259, 0.160_920],
            1e-5,
        );
        // Sample 1, same computation with CE = [0.407606, 0.169846, 2.407606].
        assert_close(
            "weights",
            device,
            &weights[3..],
            &[0.445_519, 0.457_047, 0.097_434],
            1e-5,
        );
    }
}

#[test]
fn entropy_matches_ebkd_formula() {
    // w = (1 - H / sum H) / (K - 1) with H the teacher's prediction entropy, reference in f64.
    let (teachers, y) = example();
    let mut want = Vec::new();
    for i in 0..2 {
        let h: Vec<f64> = teachers
            .iter()
            .map(|t| {
                let lp = log_softmax64(&t[i], 1.0);
                -lp.iter().map(|l| l.exp() * l).sum::<f64>()
            })
            .collect();
        let total: f64 = h.iter().sum();
        want.extend(h.iter().map(|hk| (1.0 - hk / total) / 2.0));
    }
    for (device, _, _, weights) in run(
        &TeacherSelectorConfig::unscreened(Weighting::Entropy),
        &teachers,
        &y,
    ) {
        assert_close("weights", device, &weights, &want, 1e-5);
    }
}

#[test]
fn fixed_weights_are_masked_and_renormalised() {
    let (teachers, y) = example();
    let fixed = Weighting::Fixed(vec![1.0, 3.0, 4.0]);
    for (device, _, _, weights) in run(
        &TeacherSelectorConfig::unscreened(fixed.clone()),
        &teachers,
        &y,
    ) {
        assert_close(
            "weights",
            device,
            &weights,
            &[0.125, 0.375, 0.5, 0.125, 0.375, 0.5],
            1e-6,
        );
    }
    // Screened: sample 0 keeps t0 only; sample 1 keeps t0, t1 -> 1:3.
    for (device, _, _, weights) in run(
        &TeacherSelectorConfig::seed_paper().with_weighting(fixed),
        &teachers,
        &y,
    ) {
        assert_close(
            "weights",
            device,
            &weights,
            &[1.0, 0.0, 0.0, 0.25, 0.75, 0.0],
            1e-6,
        );
    }
    // A kept teacher set whose fixed weights are all 0 shares equally.
    let zero_best = Weighting::Fixed(vec![0.0, 0.0, 1.0]);
    for (device, _, _, weights) in run(
        &TeacherSelectorConfig::seed_paper().with_weighting(zero_best),
        &teachers,
        &y,
    ) {
        assert_close(
            "weights",
            device,
            &weights,
            &[1.0, 0.0, 0.0, 0.5, 0.5, 0.0],
            1e-6,
        );
    }
}

#[test]
fn screening_rules_and_always_keep_best() {
    let (teachers, y) = example();
    let cases = [
        (
            ScreeningRule::TopK(1),
            vec![true, false, false, false, true, false],
        ),
        (
            ScreeningRule::TopK(2),
            vec![true, true, false, true, true, false],
        ),
        (ScreeningRule::TopK(3), vec![true; 6]),
        (ScreeningRule::KeepAll, vec![true; 6]),
        // 0.3 nats keeps t0 on sample 0 and t1 on sample 1.
        (
            ScreeningRule::MaxCrossEntropy(0.3),
            vec![true, false, false, false, true, false],
        ),
        // 0.01 nats keeps nobody by itself: the best teacher is kept anyway.
        (
            ScreeningRule::MaxCrossEntropy(0.01),
            vec![true, false, false, false, true, false],
        ),
        (ScreeningRule::MaxCrossEntropy(10.0), vec![true; 6]),
    ];
    for (rule, want) in cases {
        let config = TeacherSelectorConfig::seed_paper().with_screening(rule.clone());
        for (device, _, keep, weights) in run(&config, &teachers, &y) {
            assert_eq!(keep, want, "{rule:?} on {device}");
            for (w, k) in weights.iter().zip(&keep) {
                assert!(
                    *k || *w == 0.0,
                    "{rule:?} on {device}: screened teacher has weight {w}"
                );
            }
        }
    }
}

#[test]
fn ties_are_kept_together() {
    // t0 and t1 identical and best, t2 worse: TopK(1) keeps both tied teachers.
    let good = vec![vec![2.0, 0.0, 0.0]];
    let bad = vec![vec![0.0, 2.0, 0.0]];
    let teachers = vec![good.clone(), good, bad];
    for rule in [ScreeningRule::TopK(1), ScreeningRule::BelowMean] {
        let config = TeacherSelectorConfig::seed_paper().with_screening(rule.clone());
        for (device, _, keep, weights) in run(&config, &teachers, &[0]) {
            assert_eq!(keep, vec![true, true, false], "{rule:?} on {device}");
            assert_close("weights", device, &weights, &[0.5, 0.5, 0.0], 1e-6);
        }
    }
}

#[test]
fn all_equal_teachers_get_equal_weights() {
    let t = vec![vec![0.5, -1.0, 2.0, 0.0], vec![1.0, 1.0, 1.0, 1.0]];
    let teachers = vec![t.clone(), t.clone(), t];
    let weightings = [
        Weighting::Softmax,
        Weighting::Average,
        Weighting::Confidence,
        Weighting::Entropy,
    ];
    for weighting in weightings {
        for screening in [
            ScreeningRule::BelowMean,
            ScreeningRule::KeepAll,
            ScreeningRule::TopK(1),
        ] {
            let config = TeacherSelectorConfig::seed_paper()
                .with_weighting(weighting.clone())
                .with_screening(screening.clone());
            for (device, _, keep, weights) in run(&config, &teachers, &[2, 3]) {
                assert!(
                    keep.iter().all(|k| *k),
                    "{weighting:?} {screening:?} on {device}"
                );
                assert_close("weights", device, &weights, &[1.0 / 3.0; 6], 1e-6);
            }
        }
    }
}

#[test]
fn per_batch_granularity_uses_batch_mean() {
    // Batch-mean CE: t0 0.288726, t1 0.788726, t2 2.407606 (mean 1.161686): t0, t1 kept,
    // weights 1 / (1 + e^-0.5) = 0.622459 and 0.377541 on every row.
    let (teachers, y) = example();
    let config = TeacherSelectorConfig::seed_paper().with_granularity(Granularity::PerBatch);
    for (device, ce, keep, weights) in run(&config, &teachers, &y) {
        assert_close(
            "per-sample CE is still reported",
            device,
            &ce,
            &CE.concat(),
            1e-5,
        );
        assert_eq!(keep, vec![true, true, false, true, true, false], "{device}");
        assert_close(
            "weights",
            device,
            &weights,
            &[0.622_459, 0.377_541, 0.0, 0.622_459, 0.377_541, 0.0],
            1e-5,
        );
    }
}

#[test]
fn telemetry_summaries() {
    let (teachers, y) = example();
    for (name, device) in all_devices() {
        let logits: Vec<_> = teachers.iter().map(|t| matrix(t, &device)).collect();
        let selection = TeacherSelectorConfig::seed_paper()
            .init(3)
            .unwrap()
            .select(&logits, labels(&y, &device))
            .unwrap();
        assert_close(
            "keep rate",
            name,
            &floats(&selection.keep_rate()),
            &[1.0, 0.5, 0.0],
            1e-6,
        );
        assert_close(
            "mean weight",
            name,
            &floats(&selection.mean_weight()),
            &[(1.0 + 0.440_838) / 2.0, 0.559_162 / 2.0, 0.0],
            1e-5,
        );
        assert_close(
            "mean CE",
            name,
            &floats(&selection.mean_cross_entropy()),
            &[0.288_726, 0.788_726, 2.407_606],
            1e-5,
        );
    }
}

#[test]
fn invalid_configs_name_the_value() {
    let err = |config: TeacherSelectorConfig, k: usize| config.init(k).unwrap_err().to_string();
    assert!(matches!(
        TeacherSelectorConfig::seed_paper().init(0),
        Err(Error::NoTeachers)
    ));
    assert!(err(TeacherSelectorConfig::seed_paper().with_tau(0.0), 2).contains("tau = 0"));
    assert!(err(TeacherSelectorConfig::seed_paper().with_tau(-1.5), 2).contains("tau = -1.5"));
    assert!(err(TeacherSelectorConfig::seed_paper().with_tau(f64::NAN), 2).contains("tau = NaN"));
    let top = |k| TeacherSelectorConfig::seed_paper().with_screening(ScreeningRule::TopK(k));
    assert!(err(top(0), 3).contains("TopK(0)"));
    assert!(err(top(4), 3).contains("TopK(4)"));
    let max =
        TeacherSelectorConfig::seed_paper().with_screening(ScreeningRule::MaxCrossEntropy(-1.0));
    assert!(err(max, 3).contains("-1"));
    let fixed =
        |w: Vec<f64>| TeacherSelectorConfig::seed_paper().with_weighting(Weighting::Fixed(w));
    assert!(err(fixed(vec![1.0, 2.0]), 3).contains("[1.0, 2.0]"));
    assert!(err(fixed(vec![0.0, 0.0, 0.0]), 3).contains("greater than 0"));
    assert!(err(fixed(vec![1.0, -1.0, 0.0]), 3).contains("-1.0"));
}

#[test]
fn wrong_shapes_are_errors() {
    let (_, device) = cpu_devices().remove(0);
    let selector = TeacherSelectorConfig::seed_paper().init(2).unwrap();
    let a = matrix(&[vec![1.0, 0.0]], &device);
    let b = matrix(&[vec![1.0, 0.0, 0.0]], &device);
    let err = selector
        .select(&[a.clone(), b], labels(&[0], &device))
        .unwrap_err();
    assert!(
        err.to_string().contains("[1, 2]") && err.to_string().contains("[1, 3]"),
        "{err}"
    );
    let err = selector
        .select(std::slice::from_ref(&a), labels(&[0], &device))
        .unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { .. }), "{err}");
    let err = selector
        .select(&[a.clone(), a], labels(&[0, 1], &device))
        .unwrap_err();
    assert!(err.to_string().contains("labels"), "{err}");
}

/// `RelativeToBest(r)` keeps teacher k where `l[k] <= r · min_j l[j]`, computed here from the
/// f64 cross-entropies `CE` of the example; a ratio below 1 or NaN is refused.
#[test]
fn relative_to_best_keeps_teachers_within_a_ratio_of_the_best() {
    let (teachers, y) = example();
    for ratio in [1.0, 3.0, 10.0, 20.0] {
        let want: Vec<bool> = CE
            .iter()
            .flat_map(|row| {
                let best = row.iter().cloned().fold(f64::INFINITY, f64::min);
                row.iter().map(move |l| *l <= ratio * best)
            })
            .collect();
        let rule = ScreeningRule::RelativeToBest(ratio);
        let config = TeacherSelectorConfig::seed_paper().with_screening(rule.clone());
        for (device, _, keep, weights) in run(&config, &teachers, &y) {
            assert_eq!(keep, want, "{rule:?} on {device}");
            for (w, k) in weights.iter().zip(&keep) {
                assert!(*k || *w == 0.0, "{rule:?} on {device}: weight {w}");
            }
        }
    }
    for bad in [0.5, f64::NAN, f64::INFINITY] {
        let config =
            TeacherSelectorConfig::seed_paper().with_screening(ScreeningRule::RelativeToBest(bad));
        let err = config.init(3).unwrap_err().to_string();
        assert!(err.contains("RelativeToBest"), "{err}");
    }
}
