//! # burn-distill
//!
//! Multi-teacher knowledge distillation for [Burn](https://burn.dev): several frozen
//! teachers guide one small student. For every batch the library measures each teacher's
//! cross-entropy against the true labels, screens out the weak teachers and gives the better
//! ones more say; the student learns from the teachers' softened predictions and, through
//! small trainable feature adapters, from their intermediate feature maps.
//!
//! ## Crate map
//! - [`Teacher`], [`FrozenTeacher`], [`FeatureModel`], [`ModelOutput`]: models that give
//!   logits and features; teachers are frozen (no autodiff, never updated or saved). Inputs
//!   are any [`DistillInput`] (image batches by default, token ids, sequences, rows);
//!   features are [`Feature`]s: vectors `[N, D]`, sequences `[N, L, D]` or maps
//!   `[N, C, H, W]`, described by a [`FeatureSpec`].
//! - [`TeacherSelectorConfig`] / [`TeacherSelector`] / [`Selection`]: per-teacher
//!   cross-entropy, screening ([`ScreeningRule`]) and weights ([`Weighting`]).
//! - [`FeatureAdapterConfig`] / [`FeatureAdapter`]: student feature → teacher feature
//!   (1x1 convolution for maps, linear for vectors and sequences; [`align_length`] and
//!   [`bilinear_resize`] align sizes).
//! - [`kd_loss`], [`dkd_loss`], [`feature_loss`], [`log1p`], [`DistillationLossConfig`] /
//!   [`DistillationLoss`]: the losses.
//! - [`DistillerConfig`] / [`Distiller`]: all of the above in one step, a Burn module whose
//!   only parameters are the student's and the adapters'.
//! - [`TeacherCache`]: teacher outputs cached per sample for un-augmented data.
//! - [`prescreen`] / [`Prescreen`]: drop weak teachers once, before training.
//! - [`models`]: CIFAR VGG8/VGG13, ResNet8x4/ResNet32x4 and a small CNN.
//! - [`data`]: CIFAR-10/100 in the official binary format, with augmentation;
//!   `download` (feature `download`) fetches and verifies the archives.
//! - [`files`]: strict config files; weights in Burn, SafeTensors and PyTorch formats.
//! - [`Error`] / [`Result`].
//!
//! ## Feature flags
//! - `flex` (default): Burn's pure-Rust CPU backend, `Device::flex()`.
//! - `ndarray`: the NdArray CPU backend, `Device::ndarray()` (deprecated upstream).
//! - `ndarray-blas`: `ndarray` with OpenBLAS matrix products (needs the system's OpenBLAS).
//! - `cpu-parallel` (default): SIMD kernels and rayon threads in the CPU backends
//!   (`RAYON_NUM_THREADS` sets the thread count). Without it they run on one core.
//! - `wgpu`: GPU through wgpu (Vulkan, Metal, DirectX), `Device::wgpu(..)`.
//! - `download`: the `download` module: verified downloads of the CIFAR archives (ureq with rustls,
//!   MD5, tar); the default build has no HTTP client.
//! - `train`: burn-train integration: `TrainStep` / `InferenceStep` for [`Distiller`] and
//!   metrics for each loss part.
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
mod cache;
pub mod data;
mod distiller;
#[cfg(feature = "download")]
pub mod download;
mod error;
pub mod files;
mod loss;
pub mod models;
mod prescreen;
mod selector;
mod teacher;
#[cfg(feature = "train")]
pub mod train;

pub use adapter::{FeatureAdapter, FeatureAdapterConfig, align_length, bilinear_resize};
pub use cache::TeacherCache;
pub use distiller::{DistillBatch, DistillOutput, Distiller, DistillerConfig};
pub use error::{Error, Result};
pub use loss::{
    DistillationLoss, DistillationLossConfig, DistillationLossOutput, FeatureNorm, SoftLoss,
    TeacherReduction, dkd_loss, dkd_loss_per_sample, feature_loss,
    feature_loss_normalized_per_sample, feature_loss_per_sample, kd_loss, kd_loss_per_sample,
    log1p,
};
pub use prescreen::{Prescreen, prescreen};
pub use selector::{
    Granularity, ScreeningRule, Selection, TeacherSelector, TeacherSelectorConfig, Weighting,
};
pub use teacher::{
    DistillInput, Feature, FeatureKind, FeatureModel, FeatureSpec, FrozenTeacher, ModelOutput,
    Teacher, TeacherOutput,
};

/// The README's usage example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
