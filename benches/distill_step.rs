//! One distillation step on the CIFAR VGG models (batch 64, 32x32x3, 100 classes), against
//! its parts: (a) the VGG8 student's training step alone (forward, cross-entropy, backward,
//! SGD step), (b) K VGG13 teacher inferences, (c) the full distillation step (screened
//! weighting, feature adapters, backward, SGD step), for K = 1, 3, 5.
//!
//! Criterion measures (a), (b) and (c) one by one; a summary then times them interleaved,
//! side by side in the same run, and prints images per second, the overhead ratio
//! `c / (a + b)` and the peak heap memory of each (a counting global allocator: host memory,
//! so exact on the CPU devices and only the host side on wgpu). A last table measures the
//! two tricks that cut the teachers' cost: pre-screening ([`burn_distill::prescreen`],
//! dropping 2 of 5 teachers) and the teacher-output cache ([`burn_distill::TeacherCache`],
//! first epoch against the next ones).
//!
//! ```text
//! cargo bench --bench distill_step                        # flex
//! cargo bench --bench distill_step --features ndarray,wgpu
//! BENCH_DEVICES=flex BENCH_TEACHERS=1,3 BENCH_WIDTH=32 cargo bench --bench distill_step
//! ```
//! `BENCH_DEVICES` (comma-separated: flex, ndarray, wgpu), `BENCH_TEACHERS` (the K values),
//! `BENCH_WIDTH` (first-stage width, 64 = the literature's models) and `BENCH_BATCH`
//! select smaller runs.
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Distribution, Int, Tensor};
use burn_distill::models::{FoldBatchNorm, Vgg, VggConfig};
use burn_distill::{
    DistillationLossConfig, Distiller, DistillerConfig, FrozenTeacher, ScreeningRule, Teacher,
    TeacherCache, TeacherSelectorConfig, prescreen,
};
use common::{env_list, env_usize};
use criterion::{Criterion, criterion_group, criterion_main};

const CLASSES: usize = 100;

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = IN_USE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result, its wall time in seconds and the peak heap bytes it
/// added on top of what was in use when it started.
fn measured<T>(f: impl FnOnce() -> T) -> (T, f64, usize) {
    let base = IN_USE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let t = Instant::now();
    let out = f();
    let seconds = t.elapsed().as_secs_f64();
    (
        out,
        seconds,
        PEAK.load(Ordering::Relaxed).saturating_sub(base),
    )
}

const MIB: f64 = 1024.0 * 1024.0;

fn devices() -> Vec<(String, Device)> {
    common::devices("flex,ndarray,wgpu")
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
    let distiller = optim.step(0.05, distiller, grads).advance();
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
                distiller_config()
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
        folding(&name, &w);
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
        "\nsummary on {name} (batch {}, width {}, median of {rounds} interleaved rounds; \
         peak = heap bytes added during the step, largest over the rounds):",
        w.batch, w.width
    );
    println!(
        "| K | (a) student step img/s | (b) K teachers img/s | (c) distill step img/s | c / (a + b) \
         | peak (a) MiB | peak (b) MiB | peak (c) MiB | peak c / (a + b) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for k in teacher_counts() {
        let teachers = w.teachers(k);
        let mut student = Some(w.student());
        let mut student_optim = sgd().init();
        let mut distiller = Some(
            distiller_config()
                .init(w.student(), teachers.clone(), &w.device.clone().autodiff())
                .unwrap(),
        );
        let mut distill_optim = sgd().init();
        // One untimed warm-up round (it also creates the optimizers' momentum buffers, so
        // the peaks below are those of a steady-state step).
        student = Some(student_step(w, student.take().unwrap(), &mut student_optim));
        teacher_inference(w, &teachers);
        distiller = Some(distill_step(
            w,
            distiller.take().unwrap(),
            &mut distill_optim,
        ));
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        let mut peak = [0usize; 3];
        for _ in 0..rounds {
            let (s, t, p) =
                measured(|| student_step(w, student.take().unwrap(), &mut student_optim));
            student = Some(s);
            a.push(t);
            peak[0] = peak[0].max(p);
            let ((), t, p) = measured(|| teacher_inference(w, &teachers));
            b.push(t);
            peak[1] = peak[1].max(p);
            let (d, t, p) =
                measured(|| distill_step(w, distiller.take().unwrap(), &mut distill_optim));
            distiller = Some(d);
            c.push(t);
            peak[2] = peak[2].max(p);
        }
        let (a, b, c) = (median(a), median(b), median(c));
        let rate = |s: f64| w.batch as f64 / s;
        // The counting allocator sees host (Rust heap) memory only: flex and ndarray keep
        // their tensors there; wgpu keeps them on the GPU and tch in libtorch's own allocator.
        let peaks = if matches!(name, "flex" | "ndarray") {
            format!(
                "{:.1} | {:.1} | {:.1} | {:.3}",
                peak[0] as f64 / MIB,
                peak[1] as f64 / MIB,
                peak[2] as f64 / MIB,
                peak[2] as f64 / (peak[0] + peak[1]) as f64,
            )
        } else {
            "– | – | – | – (tensors outside the Rust heap)".to_string()
        };
        println!(
            "| {k} | {:.1} | {:.1} | {:.1} | {:.3} | {peaks} |",
            rate(a),
            rate(b),
            rate(c),
            c / (a + b),
        );
    }
    tricks(name, w);
}

/// Pre-screening 5 teachers down to 3, and the teacher-output cache, against the plain
/// 5-teacher step, in one run.
fn tricks(name: &str, w: &Workload) {
    let k = env_usize("BENCH_TRICKS_TEACHERS", 5);
    if k < 3 {
        return;
    }
    let rounds = env_usize("BENCH_ROUNDS", 5);
    let batches = env_usize("BENCH_DATA_BATCHES", 4);
    let teachers = w.teachers(k);
    // A small "data set": `batches` different batches of images, with their labels.
    let data: Vec<(Tensor<4>, Tensor<1, Int>)> = (0..batches)
        .map(|_| {
            (
                Tensor::random(
                    w.images.dims(),
                    Distribution::Normal(0.0, 1.0),
                    &w.images.device(),
                ),
                Tensor::random(
                    [w.batch],
                    Distribution::Uniform(0.0, CLASSES as f64),
                    &w.images.device(),
                ),
            )
        })
        .collect();
    let keep = k - 2;
    let (screened, screen_seconds, _) =
        measured(|| prescreen(&teachers, data.clone(), &ScreeningRule::TopK(keep)).unwrap());
    let kept = screened.keep(&teachers);
    let train_device = w.device.clone().autodiff();
    let new_distiller = |teachers: Vec<Arc<dyn Teacher>>| {
        distiller_config()
            .init(w.student(), teachers, &train_device)
            .unwrap()
    };
    let mut all = Some(new_distiller(teachers.clone()));
    let mut few = Some(new_distiller(kept));
    let (mut all_optim, mut few_optim) = (sgd().init(), sgd().init());
    all = Some(distill_step(w, all.take().unwrap(), &mut all_optim));
    few = Some(distill_step(w, few.take().unwrap(), &mut few_optim));
    let (mut t_all, mut t_few, mut t_teachers) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        teacher_inference(w, &teachers);
        t_teachers.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        all = Some(distill_step(w, all.take().unwrap(), &mut all_optim));
        t_all.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        few = Some(distill_step(w, few.take().unwrap(), &mut few_optim));
        t_few.push(t.elapsed().as_secs_f64());
    }
    let (t_all, t_few, t_teachers) = (median(t_all), median(t_few), median(t_teachers));

    // The cache: epoch 1 computes and stores the teachers' outputs, epoch 2 reads them.
    let mut cache = TeacherCache::new(usize::MAX);
    let mut cached = Some(new_distiller(teachers.clone()));
    let mut cached_optim = sgd().init();
    let mut epochs = [Vec::new(), Vec::new()];
    for epoch in &mut epochs {
        for (i, (images, labels)) in data.iter().enumerate() {
            let indices: Vec<usize> = (i * w.batch..(i + 1) * w.batch).collect();
            let t = Instant::now();
            let d = cached.take().unwrap();
            let outputs = cache.outputs(&teachers, &indices, images.clone());
            let out = d
                .forward_with_teacher_outputs(images.clone(), labels.clone(), &outputs)
                .unwrap();
            let grads = GradientsParams::from_grads(out.loss.total.backward(), &d);
            cached = Some(cached_optim.step(0.05, d, grads).advance());
            w.device.sync().unwrap();
            epoch.push(t.elapsed().as_secs_f64());
        }
    }
    let [first, second] = epochs.map(median);
    let saving = (t_all - t_few) / t_teachers;
    println!(
        "\ntricks on {name} (K = {k}, batch {}, width {}; medians):",
        w.batch, w.width
    );
    println!("| measurement | value |");
    println!("|---|---:|");
    println!(
        "| pre-screening {batches} batches ({} images), one-off | {screen_seconds:.2} s |",
        batches * w.batch
    );
    println!(
        "| teachers kept (top {keep} by mean cross-entropy) | {:?} |",
        screened.kept
    );
    println!("| (b) {k} teachers' inference | {t_teachers:.3} s |");
    println!("| (c) distill step, all {k} teachers | {t_all:.3} s |");
    println!("| (c) distill step, {keep} kept teachers | {t_few:.3} s |");
    println!(
        "| pre-screening saving / teachers' share | {:.0} % |",
        100.0 * saving
    );
    println!("| cached step, epoch 1 (teachers run, outputs stored) | {first:.3} s |");
    println!("| cached step, epoch 2 (outputs from the cache) | {second:.3} s |");
    println!(
        "| cache speedup from epoch 2 (plain step / cached step) | {:.2}x |",
        t_all / second
    );
    println!(
        "| cache: hits / misses / MiB held | {} / {} / {:.1} |",
        cache.hits(),
        cache.misses(),
        cache.bytes() as f64 / MIB
    );
}

/// Teacher inference with batch norm folded into the convolutions
/// ([`burn_distill::models::FoldBatchNorm`]) against the plain frozen model, interleaved.
fn folding(name: &str, w: &Workload) {
    let rounds = env_usize("BENCH_ROUNDS", 5);
    let model = VggConfig::vgg13(CLASSES)
        .with_width(w.width)
        .init(&w.device);
    let plain: Vec<Arc<dyn Teacher>> =
        vec![Arc::new(FrozenTeacher::from_model("vgg13", model.clone()))];
    let folded: Vec<Arc<dyn Teacher>> = vec![Arc::new(FrozenTeacher::from_model(
        "vgg13-folded",
        model.fold_batch_norm(),
    ))];
    teacher_inference(w, &plain);
    teacher_inference(w, &folded);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        a.push(measured(|| teacher_inference(w, &plain)).1);
        b.push(measured(|| teacher_inference(w, &folded)).1);
    }
    let (a, b) = (median(a), median(b));
    println!(
        "\nteacher folding on {name} (one VGG13, batch {}, median of {rounds} interleaved rounds):",
        w.batch
    );
    println!("| teacher | img/s |\n|---|---:|");
    println!("| plain (conv + batch norm) | {:.1} |", w.batch as f64 / a);
    println!("| folded (conv only) | {:.1} |", w.batch as f64 / b);
    println!("| speedup | {:.2}x |", a / b);
}

criterion_group!(benches, bench);
criterion_main!(benches);

/// The distiller the tables in BENCHMARKS.md measure: the seed paper's per-sample screening
/// and the feature term (adapters included) from the first step. The library's defaults
/// (per-batch screening, feature term off for 100 steps) would leave the adapters out of a
/// short benchmark.
fn distiller_config() -> DistillerConfig {
    DistillerConfig::new()
        .with_selector(TeacherSelectorConfig::seed_paper())
        .with_loss(
            DistillationLossConfig::new()
                .with_feature_delay_steps(0)
                .with_feature_ramp_steps(0),
        )
}
