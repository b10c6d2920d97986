//! Shared helpers: the devices every test runs on, and small conversions.
#![allow(dead_code)]

use burn::tensor::{Device, Int, Tensor};

pub mod http;
pub mod losses;

/// Seeds `device`'s random generator and holds a process-wide lock until the returned guard
/// is dropped. All tests run in one binary, in parallel: the training tests that seed a
/// device take this lock so that no other seeded test reseeds it under them (and so that
/// they do not compete for the two cores).
pub fn seeded(device: &Device, seed: u64) -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A test that failed while holding the lock poisons it; the others still run.
    let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    guard
}

/// The CPU devices compiled in (`flex`, `ndarray`, and `tch`: Burn's LibTorch backend on
/// the CPU, with the `tch` feature, which CI does not build).
#[allow(clippy::vec_init_then_push)] // the pushes depend on features
pub fn cpu_devices() -> Vec<(&'static str, Device)> {
    let mut devices = Vec::new();
    #[cfg(feature = "flex")]
    devices.push(("flex", Device::flex()));
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    devices.push(("ndarray", Device::ndarray()));
    #[cfg(feature = "tch")]
    #[allow(deprecated)] // burn-tch is deprecated in Burn 0.22
    devices.push(("tch", Device::libtorch()));
    assert!(
        !devices.is_empty(),
        "enable the flex or ndarray feature to run the tests"
    );
    devices
}

/// Every device compiled in: the CPU devices, with the `wgpu` feature the default wgpu
/// adapter (llvmpipe through Mesa's lavapipe on machines without a GPU), and with the `cuda`
/// feature CUDA device 0.
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
    #[cfg(feature = "cuda")]
    devices.push(("cuda", Device::cuda(0)));
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

/// f64 log-sum-exp of `values` scaled by `1 / temperature`.
pub fn log_sum_exp64(values: &[f64], temperature: f64) -> f64 {
    let max = values
        .iter()
        .map(|z| z / temperature)
        .fold(f64::NEG_INFINITY, f64::max);
    max + values
        .iter()
        .map(|z| (z / temperature - max).exp())
        .sum::<f64>()
        .ln()
}

/// `T² KL(softmax(t/T) ‖ softmax(s/T))` of one row in f64, the direct sum
/// `Σ p_t (log p_t - log p_s)` with both log-probabilities from f64 log-softmax.
pub fn kd_row64(student: &[f64], teacher: &[f64], temperature: f64) -> f64 {
    let ls = log_softmax64(student, temperature);
    let lt = log_softmax64(teacher, temperature);
    let kl: f64 = lt.iter().zip(&ls).map(|(a, b)| a.exp() * (a - b)).sum();
    temperature * temperature * kl
}

/// Decoupled KD of one row in f64, straight from its definition (Zhao et al., 2022) in log
/// space: `T² (target_weight · TCKD + non_target_weight · NCKD)` with TCKD the KL of the
/// binary `[p_y, 1 - p_y]` (`log(1 - p_y) = LSE_{j≠y} - LSE`) and NCKD the KL of the
/// distributions renormalised over the classes `j ≠ y`.
pub fn dkd_row64(
    student: &[f64],
    teacher: &[f64],
    label: usize,
    target_weight: f64,
    non_target_weight: f64,
    temperature: f64,
) -> f64 {
    let non_target = |z: &[f64]| -> Vec<f64> {
        z.iter()
            .enumerate()
            .filter(|(j, _)| *j != label)
            .map(|(_, v)| *v)
            .collect()
    };
    let binary = |z: &[f64]| -> (f64, f64) {
        let all = log_sum_exp64(z, temperature);
        (
            z[label] / temperature - all,
            log_sum_exp64(&non_target(z), temperature) - all,
        )
    };
    let (s_target, s_rest) = binary(student);
    let (t_target, t_rest) = binary(teacher);
    let tckd = t_target.exp() * (t_target - s_target) + t_rest.exp() * (t_rest - s_rest);
    let ls = log_softmax64(&non_target(student), temperature);
    let lt = log_softmax64(&non_target(teacher), temperature);
    let nckd: f64 = lt.iter().zip(&ls).map(|(a, b)| a.exp() * (a - b)).sum();
    temperature * temperature * (target_weight * tckd + non_target_weight * nckd)
}

/// Asserts `|a - b| <= relative * |b| + absolute` elementwise, naming the device and index.
pub fn assert_close_rel(
    what: &str,
    device: &str,
    got: &[f32],
    want: &[f64],
    relative: f64,
    absolute: f64,
) {
    assert_eq!(got.len(), want.len(), "{what} on {device}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let g = *g as f64;
        assert!(
            (g - w).abs() <= relative * w.abs() + absolute,
            "{what} on {device}: element {i}: got {g:e}, want {w:e} (relative {relative:e}, \
             absolute {absolute:e})\n got {got:?}\nwant {want:?}"
        );
    }
}

/// The default loss with the feature term on from the first step (no delay, no ramp), for
/// tests that check the feature term within a few steps.
pub fn loss_from_step_0() -> burn_distill::DistillationLossConfig {
    burn_distill::DistillationLossConfig::new()
        .with_feature_delay_steps(0)
        .with_feature_ramp_steps(0)
}

/// A fresh, empty path under the system's temporary folder for one test's files (not created;
/// anything left there by an earlier run is removed). Tests run as threads of one process, so
/// the name carries a process-wide counter besides `prefix`, `name` and the process id: two
/// tests asking for the same name still get different folders. (Two example tests once shared
/// one, and one removed it while the other was writing a checkpoint into it.)
pub fn temp_path(prefix: &str, name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "burn-distill-{prefix}-{name}-{}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
