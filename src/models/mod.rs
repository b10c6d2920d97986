//! Ready-made models that expose logits and feature maps ([`crate::FeatureModel`]), usable
//! as students or teachers.

mod cnn;

pub use cnn::{Cnn, CnnConfig};
