//! The selector and the loss alone, for K ∈ {2, 5, 10} teachers, batch ∈ {64, 256}, 100
//! classes, every weighting: to show they cost little next to a forward pass. The
//! screened rows also run with plain KD (`plain-kd/...`, logit standardization off) beside
//! the default (standardized): the ratio is what the z-scoring adds.
//!
//! `cargo bench --bench selector_loss` (add `--features ndarray` for that device too;
//! `BENCH_DEVICES` picks devices).
mod common;

use std::time::Duration;

use burn::tensor::{Device, Distribution, Int, Tensor};
use burn_distill::{DistillationLossConfig, ModelOutput, TeacherSelectorConfig, Weighting};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const CLASSES: usize = 100;

fn devices() -> Vec<(String, Device)> {
    common::devices("flex,ndarray")
}

fn bench(c: &mut Criterion) {
    for (device_name, device) in devices() {
        let mut group = c.benchmark_group(format!("selector_loss/{device_name}"));
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(500));
        for k in [2usize, 5, 10] {
            for n in [64usize, 256] {
                let teachers: Vec<Tensor<2>> = (0..k)
                    .map(|_| Tensor::random([n, CLASSES], Distribution::Normal(0.0, 3.0), &device))
                    .collect();
                let outputs: Vec<ModelOutput> = teachers
                    .iter()
                    .map(|logits| ModelOutput {
                        logits: logits.clone(),
                        features: Vec::new(),
                    })
                    .collect();
                let student =
                    Tensor::<2>::random([n, CLASSES], Distribution::Normal(0.0, 3.0), &device);
                let labels = Tensor::<1, Int>::random(
                    [n],
                    Distribution::Uniform(0.0, CLASSES as f64),
                    &device,
                );
                let default_loss = DistillationLossConfig::new()
                    .with_feature_weight(0.0)
                    .init()
                    .unwrap();
                let plain_kd = DistillationLossConfig::new()
                    .with_feature_weight(0.0)
                    .with_logit_standardization(false)
                    .init()
                    .unwrap();
                for (name, weighting, loss) in [
                    ("screened", Weighting::Softmax, &default_loss),
                    ("plain-kd", Weighting::Softmax, &plain_kd),
                    ("average", Weighting::Average, &default_loss),
                    ("confidence", Weighting::Confidence, &default_loss),
                    ("entropy", Weighting::Entropy, &default_loss),
                ] {
                    let selector = TeacherSelectorConfig::seed_paper()
                        .with_weighting(weighting)
                        .init(k)
                        .unwrap();
                    group.bench_function(BenchmarkId::new(name, format!("K{k}/N{n}")), |b| {
                        b.iter(|| {
                            let selection = selector.select(&teachers, labels.clone()).unwrap();
                            let out = loss.forward(
                                student.clone(),
                                labels.clone(),
                                &outputs,
                                &[],
                                selection.weights,
                            );
                            // Wait for the device: read the result back.
                            out.total.into_scalar::<f32>()
                        })
                    });
                }
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
