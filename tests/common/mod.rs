//! Shared helpers: the devices every test runs on, and small conversions.
#![allow(dead_code)]

use burn::tensor::{Device, Int, Tensor};

/// The CPU devices compiled in (`flex`, `ndarray`).
#[allow(clippy::vec_init_then_push)] // the pushes depend on features
pub fn cpu_devices() -> Vec<(&'static str, Device)> {
    let mut devices = Vec::new();
    #[cfg(feature = "flex")]
    devices.push(("flex", Device::flex()));
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    devices.push(("ndarray", Device::ndarray()));
    assert!(
        !devices.is_empty(),
        "enable the flex or ndarray feature to run the tests"
    );
    devices
}

/// Every device compiled in: the CPU devices and, with the `wgpu` feature, the default wgpu
/// adapter (llvmpipe through Mesa's lavapipe on machines without a GPU).
///
/// Tests that queue a backward pass on these devices end with `device.sync()`: a process
/// that exits while lavapipe still runs queued work was once seen to crash at exit.
pub fn all_devices() -> Vec<(&'static str, Device)> {
    #[allow(unused_mut)]
    let mut devices = cpu_devices();
    #[cfg(feature = "wgpu")]
    devices.push((
        "wgpu",
        Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
    ));
    devices
}

pub fn floats<const D: usize>(tensor: &Tensor<D>) -> Vec<f32> {
    tensor
        .to_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

pub fn bools<const D: usize>(tensor: &Tensor<D, burn::tensor::Bool>) -> Vec<bool> {
    tensor
        .clone()
        .int()
        .to_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap()
        .into_iter()
        .map(|v| v != 0)
        .collect()
}

pub fn matrix(rows: &[Vec<f64>], device: &Device) -> Tensor<2> {
    let n = rows.len();
    let c = rows[0].len();
    let flat: Vec<f32> = rows.iter().flatten().map(|v| *v as f32).collect();
    Tensor::from_data(burn::tensor::TensorData::new(flat, [n, c]), device)
}

pub fn labels(values: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(
        burn::tensor::TensorData::new(values.to_vec(), [values.len()]),
        device,
    )
}

/// Asserts `|a - b| <= tol * max(1, |b|)` elementwise, naming the device and the index.
pub fn assert_close(what: &str, device: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what} on {device}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let g = *g as f64;
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what} on {device}: element {i}: got {g}, want {w} (tol {tol})\n got {got:?}\nwant {want:?}"
        );
    }
}

/// f64 log-softmax of one row.
pub fn log_softmax64(row: &[f64], temperature: f64) -> Vec<f64> {
    let scaled: Vec<f64> = row.iter().map(|z| z / temperature).collect();
    let max = scaled.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + scaled.iter().map(|z| (z - max).exp()).sum::<f64>().ln();
    scaled.iter().map(|z| z - lse).collect()
}

/// Deterministic pseudo-random values in `[-scale, scale]` (xorshift64).
pub fn values(count: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 * scale
        })
        .collect()
}
