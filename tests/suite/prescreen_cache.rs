//! Pre-screening (teachers dropped once, before training) and the teacher-output cache.
use crate::common;

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_distill::models::{Cnn, CnnConfig};
use burn_distill::{
    Error, FrozenTeacher, ModelOutput, ScreeningRule, Teacher, TeacherCache, prescreen,
};

/// A teacher that returns fixed logits for every image (one row, repeated).
fn fixed(name: &str, row: [f32; 3], device: &Device) -> Arc<dyn Teacher> {
    let model: Cnn = CnnConfig::new(3).with_width(2).init(device);
    Arc::new(FrozenTeacher::new(
        name,
        model,
        3,
        Vec::new(),
        move |_: &Cnn, x: Tensor<4>| {
            let [n, ..] = x.dims();
            let logits = Tensor::<2>::from_data(TensorData::new(row.to_vec(), [1, 3]), &x.device())
                .expand([n, 3]);
            ModelOutput {
                logits,
                features: Vec::new(),
            }
        },
    ))
}

fn batch(labels: &[i64], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    (
        Tensor::zeros([labels.len(), 3, 4, 4], device),
        common::labels(labels, device),
    )
}

#[test]
fn prescreen_keeps_teachers_at_or_below_the_mean_cross_entropy() {
    let device = Device::default();
    let teachers = vec![
        fixed("good", [4.0, 0.0, 0.0], &device),
        fixed("bad", [0.0, 4.0, 0.0], &device),
        fixed("uniform", [0.0, 0.0, 0.0], &device),
    ];
    // All labels 0, in two batches.
    let batches = vec![batch(&[0, 0, 0], &device), batch(&[0, 0], &device)];
    let result = prescreen(&teachers, batches.clone(), &ScreeningRule::BelowMean).unwrap();
    // CE by hand: good -ln(e^4/(e^4+2)), bad -ln(1/(e^4+2)), uniform ln 3.
    let e4 = 4f64.exp();
    let want = [-(e4 / (e4 + 2.0)).ln(), (e4 + 2.0).ln(), 3f64.ln()];
    for (got, want) in result.mean_cross_entropy.iter().zip(want) {
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
    // Uniform logits: argmax picks class 0, the label.
    assert_eq!(result.accuracy, vec![1.0, 0.0, 1.0]);
    // Mean CE ≈ (0.036 + 4.036 + 1.099) / 3 = 1.72: "good" and "uniform" kept.
    assert_eq!(result.kept, vec![0, 2]);
    assert_eq!(result.samples, 5);
    let kept: Vec<String> = result
        .keep(&teachers)
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    assert_eq!(kept, vec!["good", "uniform"]);

    let top1 = prescreen(&teachers, batches.clone(), &ScreeningRule::TopK(1)).unwrap();
    assert_eq!(top1.kept, vec![0]);
    let all = prescreen(&teachers, batches.clone(), &ScreeningRule::KeepAll).unwrap();
    assert_eq!(all.kept, vec![0, 1, 2]);
    let strict = prescreen(
        &teachers,
        batches.clone(),
        &ScreeningRule::MaxCrossEntropy(0.0),
    )
    .unwrap();
    assert_eq!(strict.kept, vec![0], "the best teacher is always kept");

    // Bad input.
    assert!(matches!(
        prescreen(&[], batches.clone(), &ScreeningRule::BelowMean),
        Err(Error::NoTeachers)
    ));
    assert!(matches!(
        prescreen(&teachers, batches.clone(), &ScreeningRule::TopK(4)),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        prescreen(&teachers, Vec::new(), &ScreeningRule::BelowMean),
        Err(Error::ShapeMismatch { .. })
    ));
    let err = prescreen(
        &teachers,
        vec![batch(&[0, 3], &device)],
        &ScreeningRule::BelowMean,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::LabelOutOfRange {
                min: 0,
                max: 3,
                classes: 3
            }
        ),
        "{err}"
    );
    let broken = vec![
        teachers[0].clone(),
        fixed("broken", [f32::NAN, 0.0, 0.0], &device),
    ];
    let err = prescreen(&broken, batches, &ScreeningRule::BelowMean).unwrap_err();
    assert!(
        matches!(err, Error::NonFinite { .. }) && err.to_string().contains("broken"),
        "{err}"
    );
}

#[test]
fn cache_serves_identical_outputs_within_its_memory_bound() {
    let device = Device::default();
    let _seeded = common::seeded(&device, 3);
    let teachers: Vec<Arc<dyn Teacher>> = (0..2)
        .map(|i| {
            Arc::new(FrozenTeacher::from_model(
                format!("t{i}"),
                CnnConfig::new(4).with_width(2).init(&device),
            )) as Arc<dyn Teacher>
        })
        .collect();
    let images = |seed: f32| {
        Tensor::<4>::from_data(
            TensorData::new(
                (0..2 * 3 * 8 * 8)
                    .map(|v| (v as f32 * seed).sin())
                    .collect::<Vec<_>>(),
                [2, 3, 8, 8],
            ),
            &device,
        )
    };
    let direct: Vec<_> = teachers.iter().map(|t| t.forward(images(0.1))).collect();
    let mut cache = TeacherCache::new(1 << 20);
    let first = cache.outputs(&teachers, &[4, 7], images(0.1));
    // A cached batch is served even for different pixels: the key is the sample index.
    let second = cache.outputs(&teachers, &[4, 7], images(0.9));
    assert_eq!((cache.hits(), cache.misses(), cache.len()), (1, 1, 2));
    for ((d, a), b) in direct.iter().zip(&first).zip(&second) {
        assert_eq!(common::floats(&d.logits), common::floats(&a.logits));
        assert_eq!(common::floats(&a.logits), common::floats(&b.logits));
        assert_eq!(a.features.len(), b.features.len());
        for (x, y) in a.features.iter().zip(&b.features) {
            assert_eq!(x.dims(), y.dims());
            assert_eq!(
                common::floats(&x.clone().flatten_samples()),
                common::floats(&y.clone().flatten_samples())
            );
        }
    }
    // Batches in another order and composition come from the cache too.
    let swapped = cache.outputs(&teachers, &[7, 4], images(0.1));
    let logits = common::floats(&first[0].logits);
    let swapped_logits = common::floats(&swapped[0].logits);
    assert_eq!(swapped_logits[..4], logits[4..]);
    assert_eq!(cache.hits(), 2);

    // The memory bound: room for exactly two samples, so a third is never stored.
    let per_sample = cache.bytes() / 2;
    let mut small = TeacherCache::new(2 * per_sample);
    small.outputs(&teachers, &[0, 1], images(0.1));
    small.outputs(&teachers, &[2, 3], images(0.2));
    assert_eq!(small.len(), 2);
    assert!(small.bytes() <= 2 * per_sample);
    small.outputs(&teachers, &[2, 3], images(0.2));
    assert_eq!((small.hits(), small.misses()), (0, 3));
}

#[test]
#[should_panic(expected = "3 indices for a batch of 2 inputs")]
fn cache_with_wrong_index_count_panics_naming_both() {
    let device = Device::default();
    let teachers: Vec<Arc<dyn Teacher>> = vec![Arc::new(FrozenTeacher::from_model(
        "t",
        CnnConfig::new(4).with_width(2).init(&device),
    ))];
    TeacherCache::new(1 << 20).outputs(&teachers, &[0, 1, 2], Tensor::zeros([2, 3, 8, 8], &device));
}
