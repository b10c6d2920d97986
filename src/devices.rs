//! Devices by name, for command lines and config files: `flex`, `ndarray`, `wgpu`, `wgpu:N`,
//! `cuda`, `cuda:N`, `tch`, each available when its feature is compiled in.

use burn::tensor::Device;

use crate::error::Error;

/// The device called `name`: `flex`, `ndarray`, `tch` (CPU backends), `wgpu` (the default
/// wgpu adapter) or `wgpu:N` (discrete GPU `N`), `cuda` or `cuda:N` (CUDA device `N`).
///
/// # Errors
/// [`Error::InvalidConfig`] naming `name` when it is not one of these or its backend's feature
/// is not compiled in.
///
/// # Example
/// ```
/// use burn_distill::devices::parse_device;
///
/// let flex = parse_device("flex").unwrap();
/// assert_eq!(flex, burn::tensor::Device::flex());
/// let err = parse_device("tpu:0").unwrap_err();
/// assert!(err.to_string().contains("tpu:0"));
/// ```
pub fn parse_device(name: &str) -> crate::Result<Device> {
    let (kind, index) = match name.trim().split_once(':') {
        Some((kind, index)) => (kind, Some(index)),
        None => (name.trim(), None),
    };
    let index = match index.map(str::parse::<usize>) {
        None => None,
        Some(Ok(i)) => Some(i),
        Some(Err(_)) => return Err(bad(name, "the index after ':' must be a whole number")),
    };
    let device = match (kind, index) {
        #[cfg(feature = "flex")]
        ("flex", None) => Device::flex(),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        ("ndarray", None) => Device::ndarray(),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        ("tch", None) => Device::libtorch(),
        #[cfg(feature = "wgpu")]
        ("wgpu", None) => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        #[cfg(feature = "wgpu")]
        ("wgpu", Some(i)) => Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i)),
        #[cfg(feature = "cuda")]
        ("cuda", index) => Device::cuda(index.unwrap_or(0)),
        _ => {
            return Err(bad(
                name,
                "unknown device, or its feature is not compiled in (flex, ndarray, tch, wgpu, \
                 wgpu:N, cuda, cuda:N)",
            ));
        }
    };
    Ok(device)
}

/// A comma-separated list of devices (`flex,ndarray`, `cuda:0,cuda:1`), each as
/// [`parse_device`] reads it.
///
/// # Errors
/// [`Error::InvalidConfig`] naming the first bad entry; an empty list is an error too.
///
/// # Example
/// ```
/// use burn_distill::devices::parse_devices;
///
/// assert_eq!(parse_devices("flex").unwrap().len(), 1);
/// let err = parse_devices("flex,gpu7").unwrap_err();
/// assert!(err.to_string().contains("gpu7"));
/// ```
pub fn parse_devices(list: &str) -> crate::Result<Vec<Device>> {
    let devices = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(parse_device)
        .collect::<crate::Result<Vec<_>>>()?;
    if devices.is_empty() {
        return Err(bad(list, "give at least one device"));
    }
    Ok(devices)
}

fn bad(name: &str, reason: &'static str) -> Error {
    Error::InvalidConfig {
        field: "device",
        value: format!("'{name}'"),
        reason,
    }
}

/// Checks that burn-train's DDP strategy can run on `devices`: Burn 0.22.1 all-reduces
/// gradients only between CUDA devices (its CPU backends refuse collectives, and cubecl's wgpu
/// runtime panics in a worker thread when asked for one), so DDP is refused up front for any
/// other device. The devices must also all be of one kind.
///
/// # Errors
/// [`Error::InvalidConfig`] naming the first device that cannot take part.
///
/// # Example
/// ```
/// use burn_distill::devices::{check_ddp_devices, parse_devices};
///
/// let err = check_ddp_devices(&parse_devices("flex").unwrap()).unwrap_err();
/// assert!(err.to_string().contains("Flex"));
/// ```
pub fn check_ddp_devices(devices: &[Device]) -> crate::Result<()> {
    for device in devices {
        let name = format!("{:?}", device.clone().inner());
        // The CUDA runtime's devices print as `Cube(Cuda(..))`-like names; no public
        // predicate for the runtime exists in Burn 0.22.1.
        if !name.to_ascii_lowercase().contains("cuda") {
            return Err(Error::InvalidConfig {
                field: "devices",
                value: name,
                reason: "DDP needs CUDA devices: Burn 0.22.1 implements the gradient \
                         all-reduce only for CUDA (use the MultiDevice strategy elsewhere)",
            });
        }
    }
    Ok(())
}
