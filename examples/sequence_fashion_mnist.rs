//! Distilling sequence models: Fashion-MNIST read as a sequence of 28 rows of 28 pixels
//! (the "sequential MNIST" setting), three transformer-encoder teachers of different
//! quality, and a small transformer student, distilled with the screened cross-entropy
//! selector through the plain-loop API (`Distiller::forward`).
//!
//! ```text
//! cargo run --example sequence_fashion_mnist -- --help
//! ```
//!
//! The data is Debian's `dataset-fashion-mnist` (or the original `.gz` files in
//! `--data-dir`). Validation is a seeded hold-out of the training split; the official test
//! split is evaluated at the end.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_distill::data::{
    FASHION_MNIST_DIR, FASHION_MNIST_MEAN, FASHION_MNIST_STD, ImageData, Split, load_fashion_mnist,
};
use burn_distill::models::{SequenceInput, SequenceTransformer, SequenceTransformerConfig};
use burn_distill::{
    DistillationLossConfig, DistillerConfig, FeatureModel, FeatureNorm, FrozenTeacher, Teacher,
    TeacherSelectorConfig,
};

const HELP: &str = "\
Distils three transformer teachers into a small transformer student on Fashion-MNIST read
as sequences of 28 rows (28 values each).

Options:
  --data-dir DIR   Fashion-MNIST IDX files (default: /usr/share/datasets/fashion-mnist)
  --train N        training samples (default 10000)
  --valid N        validation samples held out of the training split (default 2000)
  --epochs N       student epochs (default 3)
  --seeds N        student seeds per method (default 3)
  --help           this text
";

const BATCH: usize = 64;

struct Args {
    data_dir: PathBuf,
    train: usize,
    valid: usize,
    epochs: usize,
    seeds: u64,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        data_dir: PathBuf::from(FASHION_MNIST_DIR),
        train: 10_000,
        valid: 2_000,
        epochs: 3,
        seeds: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!(
                    "{flag} takes a positive whole number, got {value:?}"
                ))
        };
        match flag.as_str() {
            "--data-dir" => args.data_dir = PathBuf::from(&value),
            "--train" => args.train = number()?,
            "--valid" => args.valid = number()?,
            "--epochs" => args.epochs = number()?,
            "--seeds" => args.seeds = number()? as u64,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(Some(args))
}

/// Rows of 28 normalised pixels: `[N, 28, 28]` sequences and `[N]` labels, in batches.
fn batches(data: &ImageData, order: &[usize], device: &Device) -> Vec<(Tensor<3>, Tensor<1, Int>)> {
    let size = data.image_size();
    order
        .chunks(BATCH)
        .map(|chunk| {
            let pixels: Vec<f32> = chunk
                .iter()
                .flat_map(|&i| data.images[i * size..(i + 1) * size].iter())
                .map(|&p| (p as f32 / 255.0 - FASHION_MNIST_MEAN[0]) / FASHION_MNIST_STD[0])
                .collect();
            let labels: Vec<i64> = chunk.iter().map(|&i| i64::from(data.labels[i])).collect();
            let n = chunk.len();
            (
                Tensor::from_data(
                    TensorData::new(pixels, [n, data.height, data.width]),
                    device,
                ),
                Tensor::from_data(TensorData::new(labels, [n]), device),
            )
        })
        .collect()
}

/// A seeded permutation of `0..n`.
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    burn_distill::data::shuffle(&mut order, seed);
    order
}

fn transformer(
    d_model: usize,
    layers: usize,
    heads: usize,
    device: &Device,
) -> SequenceTransformer {
    SequenceTransformerConfig::new(10, SequenceInput::Vectors(28))
        .with_d_model(d_model)
        .with_layers(layers)
        .with_heads(heads)
        .with_max_length(28)
        .with_dropout(0.0)
        .init(device)
        .expect("valid transformer settings")
}

fn accuracy(model: &SequenceTransformer, data: &[(Tensor<3>, Tensor<1, Int>)]) -> f64 {
    let result = burn_distill::evaluate(model, data.iter().cloned());
    100.0
        * result
            .expect("the validation batches are well formed")
            .accuracy
}

/// Plain cross-entropy training for `steps` steps (teachers, and the student alone).
fn train_alone(
    mut model: SequenceTransformer,
    train: &ImageData,
    train_order: &[usize],
    steps: usize,
    seed: u64,
    device: &Device,
) -> SequenceTransformer {
    let mut optimizer = AdamConfig::new().init();
    let ce = CrossEntropyLossConfig::new().init(device);
    let mut step = 0;
    for epoch in 0.. {
        let order = shuffled(train_order, seed + epoch);
        for (inputs, labels) in batches(train, &order, device) {
            if step == steps {
                return model;
            }
            let logits = FeatureModel::<Tensor<3>>::forward_features(&model, inputs).logits;
            let grads = ce.forward(logits, labels).backward();
            model = optimizer.step(
                1e-3,
                model.clone(),
                GradientsParams::from_grads(grads, &model),
            );
            step += 1;
        }
    }
    model
}

fn shuffled(order: &[usize], seed: u64) -> Vec<usize> {
    permutation(order.len(), seed)
        .into_iter()
        .map(|i| order[i])
        .collect()
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{HELP}");
            return std::process::ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{HELP}");
            return std::process::ExitCode::from(2);
        }
    };
    let train = match load_fashion_mnist(&args.data_dir, Split::Train) {
        Ok(data) => data,
        Err(err) => {
            eprintln!("error: {err}");
            return std::process::ExitCode::from(1);
        }
    };
    let test = load_fashion_mnist(&args.data_dir, Split::Test).expect("test split beside train");
    if args.train + args.valid > train.labels.len() {
        eprintln!(
            "error: --train {} + --valid {} exceed the {} training images",
            args.train,
            args.valid,
            train.labels.len()
        );
        return std::process::ExitCode::from(2);
    }
    let plain = Device::flex();
    let device = plain.clone().autodiff();
    let order = permutation(train.labels.len(), 2026);
    let (train_order, valid_order) = order.split_at(args.train);
    let valid = batches(&train, &valid_order[..args.valid], &plain);
    let test_order: Vec<usize> = (0..test.labels.len()).collect();
    let test = batches(&test, &test_order, &plain);
    let steps_per_epoch = args.train.div_ceil(BATCH);
    let started = Instant::now();

    // Teachers of different quality: (name, d_model, layers, heads, training steps).
    plain.seed(7);
    let specs = [
        ("strong d64x2", 64, 2, 4, 4 * steps_per_epoch),
        ("medium d32x1", 32, 1, 4, steps_per_epoch),
        ("weak d32x1", 32, 1, 4, steps_per_epoch / 10),
    ];
    let mut teachers: Vec<Arc<dyn Teacher<Tensor<3>>>> = Vec::new();
    for (name, d, layers, heads, steps) in specs {
        let model = train_alone(
            transformer(d, layers, heads, &device),
            &train,
            train_order,
            steps,
            1,
            &device,
        );
        println!(
            "teacher {name}: {steps} steps, validation accuracy {:.2} % ({:.0} s)",
            accuracy(&model, &valid),
            started.elapsed().as_secs_f64()
        );
        teachers.push(Arc::new(FrozenTeacher::<_, Tensor<3>>::from_model(
            name, model,
        )));
    }

    // Student: d_model 16, one layer (about 1/25 of the strong teacher's parameters).
    let methods = [
        "student alone",
        "screened KD (logits)",
        "screened KD + features",
    ];
    let mut results = vec![Vec::new(); methods.len()];
    for seed in 0..args.seeds {
        for (m, method) in methods.iter().enumerate() {
            plain.seed(100 + seed);
            let student = transformer(16, 1, 2, &device);
            let steps = args.epochs * steps_per_epoch;
            let student = if m == 0 {
                train_alone(student, &train, train_order, steps, 10 + seed, &device)
            } else {
                // The settings of the README's results (measured before the library's
                // defaults became per-batch screening and a delayed feature term).
                let loss = DistillationLossConfig::new()
                    .with_feature_weight(if m == 2 { 1.0 } else { 0.0 })
                    .with_feature_norm(FeatureNorm::TeacherMeanSquare)
                    .with_feature_delay_steps(0)
                    .with_feature_ramp_steps(0);
                let mut distiller = DistillerConfig::new()
                    .with_selector(TeacherSelectorConfig::seed_paper())
                    .with_loss(loss)
                    .init(student, teachers.clone(), &device)
                    .expect("student and teachers pair up");
                let mut optimizer = AdamConfig::new().init();
                let mut step = 0;
                'epochs: for epoch in 0.. {
                    let order = shuffled(train_order, 10 + seed + epoch);
                    for (inputs, labels) in batches(&train, &order, &device) {
                        if step == steps {
                            break 'epochs;
                        }
                        let out = distiller.forward(inputs, labels).expect("valid batch");
                        let grads =
                            GradientsParams::from_grads(out.loss.total.backward(), &distiller);
                        distiller = optimizer.step(1e-3, distiller, grads).advance();
                        step += 1;
                    }
                }
                distiller.into_student()
            };
            let (v, t) = (accuracy(&student, &valid), accuracy(&student, &test));
            println!(
                "seed {seed} {method}: validation {v:.2} %, test {t:.2} % ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
            results[m].push((v, t));
        }
    }

    let stats = |values: Vec<f64>| {
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
            / (values.len().max(2) - 1) as f64;
        (mean, var.sqrt())
    };
    println!("\n| method | validation % | test % |\n|---|---:|---:|");
    for (method, runs) in methods.iter().zip(results) {
        let (vm, vs) = stats(runs.iter().map(|r| r.0).collect());
        let (tm, ts) = stats(runs.iter().map(|r| r.1).collect());
        println!("| {method} | {vm:.2} ± {vs:.2} | {tm:.2} ± {ts:.2} |");
    }
    println!(
        "\n{} seeds, {} epochs, {} training / {} validation samples, {:.0} s",
        args.seeds,
        args.epochs,
        args.train,
        args.valid,
        started.elapsed().as_secs_f64()
    );
    std::process::ExitCode::SUCCESS
}
