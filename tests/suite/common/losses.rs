//! The per-call forms the loss tests were written against, built on the library's loss
//! structs (`KdLoss`, `DkdLoss`, `FeatureLoss`): each builds the struct from its config and
//! calls `forward` / `forward_no_reduction`, so the tests' assertions stay as they were.

use burn::tensor::{Int, Tensor};
use burn_distill::{DkdLossConfig, FeatureLossConfig, FeatureNorm, KdLossConfig};

pub fn kd_loss_per_sample(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<1> {
    KdLossConfig::new()
        .with_temperature(temperature)
        .init()
        .unwrap()
        .forward_no_reduction(student, teacher)
}

pub fn kd_loss(student: Tensor<2>, teacher: Tensor<2>, temperature: f64) -> Tensor<1> {
    KdLossConfig::new()
        .with_temperature(temperature)
        .init()
        .unwrap()
        .forward(student, teacher)
}

fn dkd(target_weight: f64, non_target_weight: f64, temperature: f64) -> burn_distill::DkdLoss {
    DkdLossConfig::new()
        .with_target_weight(target_weight)
        .with_non_target_weight(non_target_weight)
        .with_temperature(temperature)
        .init()
        .unwrap()
}

pub fn dkd_loss_per_sample(
    student: Tensor<2>,
    teacher: Tensor<2>,
    labels: Tensor<1, Int>,
    target_weight: f64,
    non_target_weight: f64,
    temperature: f64,
) -> Tensor<1> {
    dkd(target_weight, non_target_weight, temperature)
        .forward_no_reduction(student, teacher, labels)
}

pub fn dkd_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    labels: Tensor<1, Int>,
    target_weight: f64,
    non_target_weight: f64,
    temperature: f64,
) -> Tensor<1> {
    dkd(target_weight, non_target_weight, temperature).forward(student, teacher, labels)
}

pub fn feature_loss_per_sample<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<1> {
    FeatureLossConfig::new().init().forward_no_reduction(a, b)
}

pub fn feature_loss<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<1> {
    FeatureLossConfig::new().init().forward(a, b)
}

pub fn feature_loss_normalized_per_sample<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<1> {
    FeatureLossConfig::new()
        .with_norm(FeatureNorm::TeacherMeanSquare)
        .init()
        .forward_no_reduction(a, b)
}
