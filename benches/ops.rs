//! The single operations that make up the CIFAR VGG models, on the VGG13 layer shapes at
//! batch 64: 3x3 convolution forward, convolution backward (input and weight gradients) and
//! training-mode batch norm forward and backward. They locate where the time of a
//! distillation step goes, and — with `benches/reference/torch_ops.py`, run by
//! `benches/reference/compare.sh` — how each op compares with PyTorch on the same CPU.
//!
//! ```text
//! cargo bench --bench ops                      # flex
//! BENCH_DEVICES=flex,ndarray cargo bench --bench ops --features ndarray
//! ```
//! After criterion's measurements, a summary times every op interleaved (median of
//! `BENCH_ROUNDS`, default 7) and prints one line per op: milliseconds and GFLOP/s
//! (convolution: `2 N C_out H W C_in 9` FLOPs forward, twice that backward).
mod common;

use std::time::{Duration, Instant};

use burn::tensor::module::{batch_norm_train, conv2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use common::env_usize;
use criterion::{Criterion, criterion_group, criterion_main};

/// (channels, spatial size) of VGG13's 3x3 convolutions (width 64) after the first.
const LAYERS: [(usize, usize); 5] = [(64, 32), (128, 16), (256, 8), (512, 4), (512, 2)];

fn devices() -> Vec<(String, Device)> {
    common::devices("flex")
}

/// Inputs for one layer, on the autodiff device: activations, 3x3 weights, bias, BN
/// scale and shift.
struct Layer {
    device: Device,
    channels: usize,
    size: usize,
    batch: usize,
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
}

impl Layer {
    fn new(device: &Device, batch: usize, channels: usize, size: usize) -> Self {
        let train = device.clone().autodiff();
        let normal = Distribution::Normal(0.0, 1.0);
        Self {
            device: device.clone(),
            channels,
            size,
            batch,
            x: Tensor::random([batch, channels, size, size], normal, &train),
            weight: Tensor::random([channels, channels, 3, 3], normal, &train),
            bias: Tensor::random([channels], normal, &train),
            gamma: Tensor::ones([channels], &train),
            beta: Tensor::zeros([channels], &train),
        }
    }

    fn conv_flops(&self) -> f64 {
        2.0 * (self.batch * self.channels * self.size * self.size * self.channels * 9) as f64
    }

    fn conv(&self, x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<4> {
        conv2d(
            x,
            weight,
            Some(bias),
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        )
    }

    /// Convolution forward, no autodiff (as in a teacher's inference).
    fn conv_forward(&self) {
        let out = self.conv(
            self.x.clone().without_autodiff(),
            self.weight.clone().without_autodiff(),
            self.bias.clone().without_autodiff(),
        );
        drop(out);
        self.device.sync().unwrap();
    }

    /// Convolution forward on the autodiff device (input, weight and bias tracked).
    fn conv_tracked(&self) -> Tensor<4> {
        self.conv(
            self.x.clone().require_grad(),
            self.weight.clone().require_grad(),
            self.bias.clone().require_grad(),
        )
    }

    /// Convolution forward on the autodiff device, then backward to the input, weight and
    /// bias.
    fn conv_forward_backward(&self) {
        let _grads = self.conv_tracked().sum().backward();
        self.device.sync().unwrap();
    }

    /// Conv forward on the autodiff device only (what `conv_forward_backward` adds the
    /// backward pass to).
    fn conv_forward_tracked(&self) {
        drop(self.conv_tracked());
        self.device.sync().unwrap();
    }

    fn bn_forward(&self) {
        let out = batch_norm_train(
            self.x.clone().require_grad(),
            self.gamma.clone().require_grad(),
            self.beta.clone().require_grad(),
            1e-5,
        );
        drop(out);
        self.device.sync().unwrap();
    }

    fn bn_forward_backward(&self) {
        let out = batch_norm_train(
            self.x.clone().require_grad(),
            self.gamma.clone().require_grad(),
            self.beta.clone().require_grad(),
            1e-5,
        );
        let _grads = out.output.sum().backward();
        self.device.sync().unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let batch = env_usize("BENCH_BATCH", 64);
    for (name, device) in devices() {
        let mut group = c.benchmark_group(format!("ops/{name}/b{batch}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for &(channels, size) in &LAYERS {
            let layer = Layer::new(&device, batch, channels, size);
            let id = format!("c{channels}_s{size}");
            group.bench_function(format!("conv_forward/{id}"), |b| {
                b.iter(|| layer.conv_forward())
            });
            group.bench_function(format!("conv_forward_backward/{id}"), |b| {
                b.iter(|| layer.conv_forward_backward())
            });
            group.bench_function(format!("bn_forward_backward/{id}"), |b| {
                b.iter(|| layer.bn_forward_backward())
            });
        }
        group.finish();
        summary(&name, &device, batch);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Every op of every layer timed interleaved; one line per op and layer:
/// `op=<name> channels=<c> size=<s> ms=<milliseconds> gflops=<GFLOP/s or 0>`.
fn summary(name: &str, device: &Device, batch: usize) {
    let rounds = env_usize("BENCH_ROUNDS", 7);
    println!("\nops on {name} (batch {batch}, median of {rounds} interleaved rounds):");
    for &(channels, size) in &LAYERS {
        let layer = Layer::new(device, batch, channels, size);
        type Op = fn(&Layer);
        let ops: [(&str, Op); 5] = [
            ("conv_forward", Layer::conv_forward),
            ("conv_forward_tracked", Layer::conv_forward_tracked),
            ("conv_forward_backward", Layer::conv_forward_backward),
            ("bn_forward", Layer::bn_forward),
            ("bn_forward_backward", Layer::bn_forward_backward),
        ];
        for (_, op) in &ops {
            op(&layer); // warm-up
        }
        let mut times = vec![Vec::new(); ops.len()];
        for _ in 0..rounds {
            for (i, (_, op)) in ops.iter().enumerate() {
                let t = Instant::now();
                op(&layer);
                times[i].push(t.elapsed().as_secs_f64());
            }
        }
        let t: Vec<f64> = times.into_iter().map(median).collect();
        let flops = layer.conv_flops();
        // Backward alone: the forward+backward time less the tracked forward.
        let lines = [
            ("conv_forward", t[0], flops),
            ("conv_backward", (t[2] - t[1]).max(0.0), 2.0 * flops),
            ("bn_forward", t[3], 0.0),
            ("bn_backward", (t[4] - t[3]).max(0.0), 0.0),
        ];
        for (op, seconds, flops) in lines {
            println!(
                "op={op} channels={channels} size={size} ms={:.3} gflops={:.1}",
                seconds * 1e3,
                flops / seconds.max(1e-12) / 1e9
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
