//! Environment settings and the device list shared by the benches.
#![allow(dead_code)] // each bench uses its own subset

use burn::tensor::Device;

/// A comma-separated list from the environment variable `name`, or `default`.
pub fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A number from the environment variable `name`, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The devices named in `BENCH_DEVICES` (or `default`) whose features are enabled.
pub fn devices(default: &str) -> Vec<(String, Device)> {
    let mut devices = Vec::new();
    for name in env_list("BENCH_DEVICES", default) {
        match name.as_str() {
            "flex" => devices.push((name, Device::flex())),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            "ndarray" => devices.push((name, Device::ndarray())),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            // burn-tch is deprecated in Burn 0.22 (see BENCHMARKS.md)
            "tch" => devices.push((name, Device::libtorch())),
            #[cfg(feature = "wgpu")]
            "wgpu" => devices.push((name, Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))),
            #[cfg(feature = "cuda")]
            "cuda" => devices.push((name, Device::cuda(0))),
            _ => {}
        }
    }
    devices
}
