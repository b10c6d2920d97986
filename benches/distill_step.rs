//! One distillation step on the CIFAR VGG models (batch 64, 32x32x3, 100 classes), against
//! its parts: (a) the VGG8 student's training step alone (forward, cross-entropy, backward,
//! SGD step), (b) K VGG13 teacher inferences, (c) the full distillation step (screened
//! weighting, feature adapters, backward, SGD step), for K = 1, 3, 5.
//!
//! Criterion measures (a), (b) and (c) one by one; a summary then times them interleaved,
//! side by side in the same run, and prints images per second and the overhead ratio
//! `c / (a + b)`.
//!
//! ```text
//! cargo bench --bench distill_step                        # flex
//! cargo bench --bench distill_step --features ndarray,wgpu
//! BENCH_DEVICES=flex BENCH_TEACHERS=1,3 BENCH_WIDTH=32 cargo bench --bench distill_step
//! ```
//! `BENCH_DEVICES` (comma-separated: flex, ndarray, wgpu), `BENCH_TEACHERS` (the K values),
//! `BENCH_WIDTH` (first-stage width, 64 = the literature's models) and `BENCH_BATCH`
//! select smaller runs.
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Distribution, Int, Tensor};
use burn_distill::models::{Vgg, VggConfig};
use burn_distill::{Distiller, DistillerConfig, FrozenTeacher, Teacher};
use criterion::{Criterion, criterion_group, criterion_main};

const CLASSES: usize = 100;

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn devices() -> Vec<(String, Device)> {
    let mut devices = Vec::new();
    for name in env_list("BENCH_DEVICES", "flex,ndarray,wgpu") {
        match name.as_str() {
            "flex" => devices.push((name, Device::flex())),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            "ndarray" => devices.push((name, Device::ndarray())),
            #[cfg(feature = "wgpu")]
            "wgpu" => devices.push((name, Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))),
            _ => {}
        }
    }
    devices
}

struct Workload {
    device: Device,
    batch: usize,
    width: usize,
    images: Tensor<4>,
    labels: Tensor<1, Int>,
}

impl Workload {
    fn new(device: Device) -> Self {
        let batch = env_usize("BENCH_BATCH", 64);
        let width = env_usize("BENCH_WIDTH", 64);
        device.seed(0);
        let train = device.clone().autodiff();
        Self {
            images: Tensor::random([batch, 3, 32, 32], Distribution::Normal(0.0, 1.0), &train),
            labels: Tensor::random([batch], Distribution::Uniform(0.0, CLASSES as f64), &train),
            device,
            batch,
            width,
        }
    }

    fn student(&self) -> Vgg {
        VggConfig::vgg8(CLASSES)
            .with_width(self.width)
            .init(&self.device.clone().autodiff())
    }

    fn teachers(&self, k: usize) -> Vec<Arc<dyn Teacher>> {
        (0..k)
            .map(|i| {
                let model = VggConfig::vgg13(CLASSES)
                    .with_width(self.width)
                    .init(&self.device);
                Arc::new(FrozenTeacher::from_model(format!("vgg13-{i}"), model)) as Arc<dyn Teacher>
            })
            .collect()
    }
}

/// (a): the student's own training step.
fn student_step(w: &Workload, model: Vgg, optim: &mut ModuleOptimizer) -> Vgg {
    let ce = CrossEntropyLossConfig::new().init(&w.images.device());
    let loss = ce.forward(model.forward(w.images.clone()), w.labels.clone());
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let model = optim.step(0.05, model, grads);
    w.device.sync().unwrap();
    model
}

/// (b): every teacher's inference.
fn teacher_inference(w: &Workload, teachers: &[Arc<dyn Teacher>]) {
    for teacher in teachers {
        let _ = teacher.forward(w.images.clone());
    }
    w.device.sync().unwrap();
}

/// (c): the full distillation step.
fn distill_step(
    w: &Workload,
    distiller: Distiller<Vgg>,
    optim: &mut ModuleOptimizer,
) -> Distiller<Vgg> {
    let out = distiller
        .forward(w.images.clone(), w.labels.clone())
        .unwrap();
    let grads = GradientsParams::from_grads(out.loss.total.backward(), &distiller);
    let distiller = optim.step(0.05, distiller, grads);
    w.device.sync().unwrap();
    distiller
}

/// SGD as in the paper preset: momentum 0.9, no dampening, Nesterov.
fn sgd() -> SgdConfig {
    SgdConfig::new().with_momentum(Some(
        burn::optim::momentum::MomentumConfig::new()
            .with_momentum(0.9)
            .with_dampening(0.0)
            .with_nesterov(true),
    ))
}

fn teacher_counts() -> Vec<usize> {
    env_list("BENCH_TEACHERS", "1,3,5")
        .iter()
        .filter_map(|k| k.parse().ok())
        .collect()
}

fn bench(c: &mut Criterion) {
    for (name, device) in devices() {
        let w = Workload::new(device);
        let mut group = c.benchmark_group(format!("distill_step/{name}/w{}/b{}", w.width, w.batch));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));
        let mut student = Some(w.student());
        let mut optim = sgd().init();
        group.bench_function("a_student_step", |b| {
            b.iter(|| student = Some(student_step(&w, student.take().unwrap(), &mut optim)))
        });
        for k in teacher_counts() {
            let teachers = w.teachers(k);
            group.bench_function(format!("b_teachers_K{k}"), |b| {
                b.iter(|| teacher_inference(&w, &teachers))
            });
            let mut distiller = Some(
                DistillerConfig::new()
                    .init(w.student(), teachers, &w.device.clone().autodiff())
                    .unwrap(),
            );
            let mut optim = sgd().init();
            group.bench_function(format!("c_distill_K{k}"), |b| {
                b.iter(|| distiller = Some(distill_step(&w, distiller.take().unwrap(), &mut optim)))
            });
        }
        group.finish();
        summary(&name, &w);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (a), (b) and (c) timed interleaved, round by round, so machine noise hits all three.
fn summary(name: &str, w: &Workload) {
    let rounds = env_usize("BENCH_ROUNDS", 5);
    println!(
        "\nsummary on {name} (batch {}, width {}, median of {rounds} interleaved rounds):",
        w.batch, w.width
    );
    println!(
        "| K | (a) student step img/s | (b) K teachers img/s | (c) distill step img/s | c / (a + b) |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for k in teacher_counts() {
        let teachers = w.teachers(k);
        let mut student = Some(w.student());
        let mut student_optim = sgd().init();
        let mut distiller = Some(
            DistillerConfig::new()
                .init(w.student(), teachers.clone(), &w.device.clone().autodiff())
                .unwrap(),
        );
        let mut distill_optim = sgd().init();
        // One untimed warm-up round.
        student = Some(student_step(w, student.take().unwrap(), &mut student_optim));
        teacher_inference(w, &teachers);
        distiller = Some(distill_step(
            w,
            distiller.take().unwrap(),
            &mut distill_optim,
        ));
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = Instant::now();
            student = Some(student_step(w, student.take().unwrap(), &mut student_optim));
            a.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            teacher_inference(w, &teachers);
            b.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            distiller = Some(distill_step(
                w,
                distiller.take().unwrap(),
                &mut distill_optim,
            ));
            c.push(t.elapsed().as_secs_f64());
        }
        let (a, b, c) = (median(a), median(b), median(c));
        let rate = |s: f64| w.batch as f64 / s;
        println!(
            "| {k} | {:.1} | {:.1} | {:.1} | {:.3} |",
            rate(a),
            rate(b),
            rate(c),
            c / (a + b)
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
