//! Property tests (proptest) of the selector and the losses on random inputs, and of the
//! data and config parsers on random and mutated bytes (they must return errors, never
//! panic). Case counts are bounded so the suite stays quick in CI; raise them with
//! `PROPTEST_CASES`.
use crate::common;

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_distill::data::{CifarVariant, parse_cifar, parse_idx_images, parse_idx_labels};
use burn_distill::files::config_from_json;
use burn_distill::{DistillerConfig, Granularity, ScreeningRule, TeacherSelectorConfig, Weighting};

use crate::common::losses::{dkd_loss_per_sample, feature_loss_per_sample, kd_loss_per_sample};
use proptest::prelude::*;

/// `k` teachers' logits `[n, c]` and `n` labels, with logits in `[-8, 8]`.
fn problem() -> impl Strategy<Value = (usize, usize, usize, Vec<f32>, Vec<i64>)> {
    (1usize..6, 1usize..8, 2usize..8).prop_flat_map(|(k, n, c)| {
        (
            Just(k),
            Just(n),
            Just(c),
            prop::collection::vec(-8.0f32..8.0, k * n * c),
            prop::collection::vec(0..c as i64, n),
        )
    })
}

fn weighting() -> impl Strategy<Value = Weighting> {
    prop_oneof![
        Just(Weighting::Softmax),
        Just(Weighting::Average),
        Just(Weighting::Confidence),
        Just(Weighting::Entropy),
    ]
}

/// The screening rule numbered `pick` (any of the four), with its parameter.
fn screening(pick: u8, k: usize, top: usize, max_ce: f64) -> ScreeningRule {
    match pick {
        0 => ScreeningRule::BelowMean,
        1 => ScreeningRule::KeepAll,
        2 => ScreeningRule::TopK(1 + top % k),
        _ => ScreeningRule::MaxCrossEntropy(max_ce),
    }
}

fn logits_of(values: &[f32], k: usize, n: usize, c: usize, device: &Device) -> Vec<Tensor<2>> {
    (0..k)
        .map(|t| {
            let part = values[t * n * c..(t + 1) * n * c].to_vec();
            Tensor::from_data(TensorData::new(part, [n, c]), device)
        })
        .collect()
}

/// f64 cross-entropy of teacher `t` on sample `i`.
fn ce64(values: &[f32], t: usize, i: usize, n: usize, c: usize, label: i64) -> f64 {
    let row: Vec<f64> = values[(t * n + i) * c..(t * n + i + 1) * c]
        .iter()
        .map(|v| *v as f64)
        .collect();
    -common::log_softmax64(&row, 1.0)[label as usize]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn selector_weights_are_a_distribution_over_kept_teachers(
        (k, n, c, values, labels) in problem(),
        weighting in weighting(),
        per_batch in any::<bool>(),
        pick in 0u8..4,
        top in 0usize..100,
        max_ce in 0.0f64..5.0,
        seed in any::<u64>(),
    ) {
        let device = Device::default();
        let screening = screening(pick, k, top, max_ce);
        let granularity = if per_batch { Granularity::PerBatch } else { Granularity::PerSample };
        let config = TeacherSelectorConfig::seed_paper()
            .with_screening(screening.clone())
            .with_weighting(weighting.clone())
            .with_granularity(granularity);
        let selector = config.init(k).unwrap();
        let logits = logits_of(&values, k, n, c, &device);
        let label_tensor = Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [n]), &device);
        let selection = selector.select(&logits, label_tensor.clone()).unwrap();
        let weights = common::floats(&selection.weights);
        let keep = common::bools(&selection.keep);

        // Per-sample cross-entropies (batch means for per-batch selection), in f64.
        let score = |t: usize, i: usize| -> f64 {
            if per_batch {
                (0..n).map(|j| ce64(&values, t, j, n, c, labels[j])).sum::<f64>() / n as f64
            } else {
                ce64(&values, t, i, n, c, labels[i])
            }
        };
        for i in 0..n {
            let row = &weights[i * k..(i + 1) * k];
            let kept = &keep[i * k..(i + 1) * k];
            let sum: f32 = row.iter().sum();
            prop_assert!((sum - 1.0).abs() < 1e-5, "row {} sums to {}", i, sum);
            for t in 0..k {
                prop_assert!(row[t] >= 0.0);
                if !kept[t] {
                    prop_assert_eq!(row[t], 0.0, "screened-out teacher {} has weight", t);
                }
            }
            // The best teacher is kept (checked where it is clearly best: f32 rounding may
            // order near-ties differently from this f64 reference).
            let scores: Vec<f64> = (0..k).map(|t| score(t, i)).collect();
            let mut order: Vec<usize> = (0..k).collect();
            order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
            let margin = 1e-4 * scores[order[0]].abs().max(1.0);
            if k == 1 || scores[order[1]] - scores[order[0]] > margin {
                prop_assert!(kept[order[0]], "best teacher {} screened out", order[0]);
            }
            prop_assert!(kept.iter().any(|x| *x), "no teacher kept for sample {}", i);
            if weighting == Weighting::Average && screening == ScreeningRule::KeepAll {
                for w in row {
                    prop_assert!((w - 1.0 / k as f32).abs() < 1e-6);
                }
            }
        }

        // Permuting the teachers permutes the weights and the keep mask.
        let permutation: Vec<usize> = (0..k).map(|t| (t + 1 + (seed as usize % k)) % k).collect();
        let permuted: Vec<Tensor<2>> = permutation.iter().map(|&t| logits[t].clone()).collect();
        let again = selector.select(&permuted, label_tensor).unwrap();
        let weights2 = common::floats(&again.weights);
        let keep2 = common::bools(&again.keep);
        for i in 0..n {
            for (slot, &t) in permutation.iter().enumerate() {
                prop_assert!((weights2[i * k + slot] - weights[i * k + t]).abs() < 1e-5);
                prop_assert_eq!(keep2[i * k + slot], keep[i * k + t]);
            }
        }
    }

    #[test]
    fn kd_loss_is_non_negative_and_zero_for_a_matching_student(
        (k, n, c, values, _labels) in problem(),
        temperature in 0.5f64..20.0,
    ) {
        prop_assume!(k >= 2);
        let device = Device::default();
        let logits = logits_of(&values, k, n, c, &device);
        let loss = common::floats(&kd_loss_per_sample(logits[0].clone(), logits[1].clone(), temperature));
        for value in loss {
            prop_assert!(value >= 0.0, "KD {}", value);
        }
        let same = common::floats(&kd_loss_per_sample(logits[0].clone(), logits[0].clone(), temperature));
        for value in same {
            prop_assert!(value.abs() < 1e-5, "KD of identical logits {}", value);
        }
    }

    /// KD and DKD are never negative, in particular for a student within a hair of its
    /// teacher (where the direct sums cancel and once gave values of -2e-5), at any scale.
    #[test]
    fn soft_losses_are_never_negative(
        (n, c) in (1usize..6, 2usize..12),
        scale in prop_oneof![Just(1.0f32), Just(50.0f32), Just(1e4f32)],
        closeness in prop_oneof![Just(0.0f32), Just(1e-6f32), Just(1e-4f32), Just(1e-2f32), Just(1.0f32)],
        temperature in prop_oneof![Just(0.5f64), Just(4.0), Just(20.0), 0.5f64..20.0],
        seed in 1u64..1_000_000,
    ) {
        let device = Device::default();
        let teacher = common::values(n * c, seed, scale);
        let noise = common::values(n * c, seed + 1, scale * closeness);
        let student: Vec<f32> = teacher.iter().zip(&noise).map(|(t, e)| t + e).collect();
        let labels: Vec<i64> = (0..n).map(|i| ((seed as usize + i) % c) as i64).collect();
        let teacher = Tensor::<2>::from_data(TensorData::new(teacher, [n, c]), &device);
        let student = Tensor::<2>::from_data(TensorData::new(student, [n, c]), &device);
        let kd = common::floats(&kd_loss_per_sample(student.clone(), teacher.clone(), temperature));
        let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &device);
        let dkd = common::floats(&dkd_loss_per_sample(student, teacher, labels, 1.0, 8.0, temperature));
        for value in kd.iter().chain(&dkd) {
            prop_assert!(*value >= 0.0 && value.is_finite(), "KD {:?} DKD {:?}", kd, dkd);
        }
    }

    #[test]
    fn feature_loss_is_zero_for_identical_maps(
        values in prop::collection::vec(-100.0f32..100.0, 2 * 3 * 2 * 2),
    ) {
        let device = Device::default();
        let map = Tensor::<4>::from_data(TensorData::new(values, [2, 3, 2, 2]), &device);
        let loss = common::floats(&feature_loss_per_sample(map.clone(), map));
        prop_assert_eq!(loss, vec![0.0, 0.0]);
    }

    #[test]
    fn cifar_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..7000)) {
        let _ = parse_cifar(CifarVariant::Cifar100, &bytes, Path::new("fuzz.bin"));
        let _ = parse_cifar(CifarVariant::Cifar10, &bytes, Path::new("fuzz.bin"));
    }

    #[test]
    fn cifar_parser_on_mutated_records(flips in prop::collection::vec((0usize..6148, any::<u8>()), 0..8), cut in 0usize..6148) {
        let mut bytes = Vec::new();
        for label in [7u8, 42] {
            bytes.extend([label / 5, label]);
            bytes.extend(std::iter::repeat_n(label, 3072));
        }
        for (at, value) in flips {
            bytes[at] = value;
        }
        bytes.truncate(cut.max(1));
        match parse_cifar(CifarVariant::Cifar100, &bytes, Path::new("fuzz.bin")) {
            Ok(data) => {
                prop_assert_eq!(data.labels.len() * 3074, bytes.len());
                prop_assert!(data.labels.iter().all(|l| *l < 100));
            }
            Err(e) => prop_assert!(e.to_string().contains("fuzz.bin")),
        }
    }

    #[test]
    fn idx_parsers_never_panic_or_overallocate(
        header in prop::collection::vec(any::<u8>(), 0..16),
        body in prop::collection::vec(any::<u8>(), 0..64),
        magic in prop_oneof![Just(0x0803u32), Just(0x0801u32), any::<u32>()],
    ) {
        // A valid magic number with random sizes: the header may claim any size.
        let mut bytes = magic.to_be_bytes().to_vec();
        bytes.extend(&header);
        bytes.extend(&body);
        if let Ok((rows, cols, pixels)) = parse_idx_images(&bytes, Path::new("fuzz-idx")) {
            prop_assert_eq!(pixels.len() % (rows * cols), 0);
            prop_assert!(pixels.len() <= bytes.len());
        }
        if let Ok(labels) = parse_idx_labels(&bytes, 10, Path::new("fuzz-idx")) {
            prop_assert!(labels.iter().all(|l| *l < 10));
        }
    }

    #[test]
    fn config_parser_never_panics(text in "\\PC{0,80}", field in "[a-z_]{1,12}", value in prop_oneof![
        Just("1".to_string()), Just("-1.5".to_string()), Just("\"x\"".to_string()),
        Just("null".to_string()), Just("[]".to_string()), Just("{}".to_string()),
    ]) {
        let base = DistillerConfig::new();
        let _ = config_from_json::<DistillerConfig>(&text, None);
        let _ = config_from_json(&text, Some(&base));
        let json = format!("{{\"{field}\": {value}}}");
        if let Ok(config) = config_from_json(&json, Some(&base)) {
            // Only known fields get through.
            prop_assert!(["selector", "loss", "adapter_relu", "adapter_deep", "check_every"].contains(&field.as_str()), "{:?}", config);
        }
    }
}
