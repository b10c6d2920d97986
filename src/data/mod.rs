//! Datasets: CIFAR-10 / CIFAR-100 in the official binary format, and a batcher with the
//! standard CIFAR augmentation.

mod cifar;

pub use cifar::{CifarBatcher, CifarImages, CifarItem, CifarSplit, CifarVariant};
