//! Distillation losses, one per file in burn-nn's shape (a `Config` and a struct with
//! `forward` and `forward_no_reduction`), and the composite loss built from them.
//!
//! - `kl`: the cancellation-free KL divergence behind KD and DKD, and [`log1p`];
//! - [`HardLabelLoss`] (cross-entropy), [`KdLoss`], [`DkdLoss`], [`FeatureLoss`]: the terms;
//! - [`MixtureKdLoss`]: KD to the teachers' weighted mixture; [`MixtureFeatureLoss`]: the
//!   feature term against the teachers' weighted mixture of features; [`ClosestFeatureLoss`] and
//!   [`FirstTeacherFeatureLoss`]: against each sample's closest teacher, or the first teacher
//!   alone; [`Standardized`]: any logit
//!   term on z-scored logits (logit standardization);
//! - [`LossTerm`]: the trait a term implements; a new method is one new file;
//! - [`DistillationLoss`]: the weighted sum of terms, the teacher reduction and the feature
//!   schedule.

mod composite;
mod cross_entropy;
mod dkd;
mod feature;
mod feature_closest;
mod feature_first;
mod feature_mixture;
mod kd;
mod kl;
mod mixture;
mod standardize;
mod term;

pub use composite::{
    DistillationLoss, DistillationLossConfig, DistillationLossOutput, FeatureTarget, SoftLoss,
    TeacherReduction, TermOutput,
};
pub use cross_entropy::HardLabelLoss;
pub(crate) use cross_entropy::cross_entropy_per_sample;
pub use dkd::{DkdLoss, DkdLossConfig};
pub use feature::{FeatureLoss, FeatureLossConfig, FeatureNorm};
pub use feature_closest::ClosestFeatureLoss;
pub use feature_first::FirstTeacherFeatureLoss;
pub use feature_mixture::MixtureFeatureLoss;
pub use kd::{KdLoss, KdLossConfig};
pub use kl::log1p;
pub use mixture::{MixtureKdLoss, MixtureKdLossConfig};
pub use standardize::{Standardized, standardize_logits};
pub use term::{LossTerm, TermInput, TermValue};

/// Name of the hard-label term.
pub const HARD: &str = "hard";
/// Name of the soft-label term.
pub const SOFT: &str = "soft";
/// Name of the feature term.
pub const FEATURE: &str = "feature";

pub(crate) fn assert_same_dims(what: &str, a: &[usize], b: &[usize]) {
    assert!(a == b, "{what}: shapes differ: {a:?} vs {b:?}");
}
