//! # burn-distill
//!
//! Multi-teacher knowledge distillation for [Burn](https://burn.dev): several frozen
//! teachers guide one small student. For every batch the library measures each teacher's
//! cross-entropy against the true labels, screens out the weak teachers and gives the better
//! ones more say; the student learns from the teachers' softened predictions and, through
//! small trainable feature adapters, from their intermediate feature maps.
//!
//! ## Crate map
//! - [`FeatureModel`], [`ModelOutput`], [`Feature`], [`FeatureSpec`], [`DistillInput`]
//!   (`model`): what students and teachers take and give. Inputs are any [`DistillInput`]
//!   (image batches by default, token ids, sequences, rows); features are [`Feature`]s:
//!   vectors `[N, D]`, sequences `[N, L, D]` or maps `[N, C, H, W]`.
//! - [`Teacher`], [`FrozenTeacher`] (`teacher`): frozen models (no autodiff, never updated or
//!   saved).
//! - [`TeacherSelectorConfig`] / [`TeacherSelector`] / [`Selection`]: per-teacher
//!   cross-entropy, screening ([`ScreeningRule`]) and weights ([`Weighting`]).
//! - [`FeatureAdapterConfig`] / [`FeatureAdapter`]: student feature → teacher feature, one
//!   type per kind ([`MapAdapter`]: 1x1 convolution; [`VectorAdapter`], [`SequenceAdapter`]:
//!   linear; [`align_length`] and [`bilinear_resize`] align sizes).
//! - [`loss`]: one loss per file — [`HardLabelLoss`], [`KdLoss`], [`DkdLoss`],
//!   [`FeatureLoss`], each a config and a struct with `forward` / `forward_no_reduction` — and
//!   [`DistillationLossConfig`] / [`DistillationLoss`], the weighted sum of named
//!   [`LossTerm`]s (a new method is one new term).
//! - [`DistillerConfig`] / [`Distiller`]: all of the above in one step, a Burn module whose
//!   only parameters are the student's and the adapters'.
//! - [`TeacherCache`]: teacher outputs cached per sample for un-augmented data.
//! - [`prescreen`] / [`Prescreen`]: drop weak teachers once, before training;
//!   [`evaluate`] / [`Evaluation`]: accuracy, cross-entropy and per-class accuracy of any
//!   model; [`SoftTargetAudit`]: what each weighting rule makes of the teachers' soft targets,
//!   before any training.
//! - [`stats`]: mean ± standard deviation and paired 95 % t-intervals, for comparing methods
//!   over seeds; `experiment` (feature `files`): methods as changes to a `DistillerConfig`
//!   (rows of a JSON grid), results per seed, the comparison table against the default, and
//!   a run folder's resume check.
//! - [`train`]: [`DistillBatch`] and (feature `train`) burn-train's `TrainStep` /
//!   `InferenceStep`, metrics (all registered by `DistillMetrics`), a progress renderer, and a
//!   run folder's resume point and per-epoch history.
//! - `charts` (feature `charts`): PNG bar charts (methods over seeds, mean ± sd) and line
//!   charts (accuracy per epoch) for experiment reports.
//! - [`devices`]: devices by name (`flex`, `wgpu:0`, `cuda:1`), for command lines.
//! - [`Error`] / [`Result`].
//!
//! Outside the core, each behind its feature: `models` (feature `vision`: CIFAR VGG8/VGG13,
//! ResNet8x4/ResNet32x4 — also by name, `models::Architecture` — a small CNN, a sequence
//! transformer), `data` (feature `vision`: CIFAR-10/100 and Fashion-MNIST with augmentation,
//! by name through `data::ImageDataset`), `files` (feature `files`: strict config
//! files; weights in Burn, SafeTensors and PyTorch formats), `download` (feature `download`:
//! fetches and verifies the CIFAR archives).
//!
//! ## Feature flags
//! - `vision` (default): the `models` and `data` modules (PNG and gzip decoding, Burn's
//!   datasets).
//! - `files` (default): the `files` module (Burn's PyTorch and SafeTensors readers, JSON).
//! - `flex` (default): Burn's pure-Rust CPU backend, `Device::flex()`.
//! - `ndarray`: the NdArray CPU backend, `Device::ndarray()` (deprecated upstream).
//! - `ndarray-blas`: `ndarray` with OpenBLAS matrix products (needs the system's OpenBLAS).
//! - `cpu-parallel` (default): SIMD kernels and rayon threads in the CPU backends
//!   (`RAYON_NUM_THREADS` sets the thread count). Without it they run on one core.
//! - `wgpu`: GPU through wgpu (Vulkan, Metal, DirectX), `Device::wgpu(..)`.
//! - `cuda`: NVIDIA GPUs through Burn's CUDA backend, `Device::cuda(index)`.
//! - `download` (implies `vision`): the `download` module: verified downloads of the CIFAR archives (ureq with rustls,
//!   MD5, tar); the default build has no HTTP client.
//! - `train`: burn-train integration: `TrainStep` / `InferenceStep` for [`Distiller`] and
//!   metrics for each loss part.
//! - `charts`: the `charts` module (plotters, drawing PNG files with a system TrueType font).
//!
//! ## Example
//! ```
//! use std::sync::Arc;
//! use burn::tensor::{Device, Int, Tensor};
//! use burn_distill::{DistillationLossConfig, DistillerConfig, FrozenTeacher, Teacher};
//! use burn_distill::models::{CnnConfig};
//!
//! let device = Device::default().autodiff();
//! // Two small teachers (in practice: trained models) and a smaller student.
//! let teachers: Vec<Arc<dyn Teacher>> = vec![
//!     Arc::new(FrozenTeacher::from_model("wide", CnnConfig::new(10).with_width(16).init(&device))),
//!     Arc::new(FrozenTeacher::from_model("narrow", CnnConfig::new(10).with_width(8).init(&device))),
//! ];
//! let student = CnnConfig::new(10).with_width(4).init(&device);
//! let distiller = DistillerConfig::new()
//!     .with_loss(DistillationLossConfig::new().with_temperature(4.0))
//!     .init(student, teachers, &device)
//!     .unwrap();
//!
//! let images = Tensor::<4>::zeros([8, 3, 16, 16], &device);
//! let labels = Tensor::<1, Int>::from_ints([0, 1, 2, 3, 4, 5, 6, 7], &device);
//! let out = distiller.forward(images, labels).unwrap();
//! let _grads = out.loss.total.backward(); // feed these to a Burn optimizer
//! println!("teacher keep rate: {}", out.selection.keep_rate());
//! # device.sync().unwrap();
//! ```
#![warn(missing_docs)]

mod adapter;
mod audit;
mod cache;
#[cfg(feature = "charts")]
pub mod charts;
#[cfg(feature = "vision")]
pub mod data;
pub mod devices;
mod distiller;
#[cfg(feature = "download")]
pub mod download;
mod error;
mod evaluate;
#[cfg(feature = "files")]
pub mod experiment;
#[cfg(feature = "files")]
pub mod files;
pub mod loss;
mod model;
#[cfg(feature = "vision")]
pub mod models;
mod prescreen;
pub mod progress;
mod selector;
pub mod stats;
mod teacher;
pub mod train;

pub use adapter::{
    FeatureAdapter, FeatureAdapterConfig, MapAdapter, SequenceAdapter, VectorAdapter, align_length,
    bilinear_resize,
};
pub use audit::{RuleReport, SoftTargetAudit, SoftTargetReport};
pub use cache::TeacherCache;
pub use distiller::{DistillOutput, Distiller, DistillerConfig};
pub use error::{Error, Result};
pub use evaluate::{ClassCount, Evaluation, evaluate};
pub use loss::{
    DistillationLoss, DistillationLossConfig, DistillationLossOutput, DkdLoss, DkdLossConfig,
    FeatureLoss, FeatureLossConfig, FeatureNorm, FeatureTarget, HardLabelLoss, KdLoss,
    KdLossConfig, LossTerm, SoftLoss, TeacherReduction, TermInput, TermOutput, TermValue, log1p,
};
pub use model::{
    DistillInput, Feature, FeatureKind, FeatureModel, FeatureSpec, InputShape, ModelOutput,
};
pub use prescreen::{Prescreen, prescreen};
pub use selector::{
    Granularity, ScreeningRule, Selection, TeacherSelector, TeacherSelectorConfig, Weighting,
};
pub use teacher::{FrozenTeacher, Teacher};
pub use train::DistillBatch;

/// The README's usage example, compiled and run as a doctest.
#[cfg(all(doctest, feature = "vision"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
