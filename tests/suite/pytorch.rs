//! Loading PyTorch checkpoints in RepDistiller's layout, and weights round trips.
//!
//! The fixtures in `tests/fixtures/pytorch` were made by `make_fixtures.py` there (PyTorch
//! 2.15, CPU): small VGG8 / VGG13 / ResNet8 networks with the module layout of
//! RepDistiller's `vgg.py` / `resnet.py`, saved as `{'model': state_dict}`, and the logits
//! PyTorch computed in eval mode for a fixed input.
use crate::common;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use burn_distill::Error;
use burn_distill::files::{load_weights, load_weights_with_layout, save_weights};
use burn_distill::models::{ResNetConfig, VggConfig};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pytorch")
        .join(name)
}

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap()
}

fn input(expected: &serde_json::Value, device: &Device) -> Tensor<4> {
    let values: Vec<f32> = expected["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    Tensor::from_data(TensorData::new(values, [2, 3, 32, 32]), device)
}

fn check(name: &str, got: Tensor<2>, expected: &serde_json::Value, device: &str) {
    let want: Vec<f64> = expected[name]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let got = common::floats(&got);
    assert_eq!(got.len(), want.len(), "{name}: logit count");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (*g as f64 - w).abs() <= 1e-4,
            "{name} on {device}: logit {i} is {g}, PyTorch gave {w}"
        );
    }
}

#[test]
fn repdistiller_checkpoints_give_pytorchs_logits() {
    let expected = expected();
    for (device_name, device) in common::cpu_devices() {
        let x = input(&expected, &device);
        let vgg8 = load_weights_with_layout(
            VggConfig::vgg8(10).with_width(4).init(&device),
            fixture("vgg8.pt"),
        )
        .unwrap();
        check("vgg8", vgg8.forward(x.clone()), &expected, device_name);
        let vgg13 = load_weights_with_layout(
            VggConfig::vgg13(10).with_width(4).init(&device),
            fixture("vgg13.pt"),
        )
        .unwrap();
        check("vgg13", vgg13.forward(x.clone()), &expected, device_name);
        let resnet8 = load_weights_with_layout(
            ResNetConfig::new(8, 10)
                .with_widths([4, 8, 16, 32])
                .init(&device)
                .unwrap(),
            fixture("resnet8.pt"),
        )
        .unwrap();
        check("resnet8", resnet8.forward(x), &expected, device_name);
    }
}

fn temp(name: &str) -> PathBuf {
    let dir = crate::common::temp_path("pt", name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn burn_record_and_safetensors_round_trip_exactly() {
    let device = Device::default();
    let dir = temp("roundtrip");
    let expected = expected();
    let x = input(&expected, &device);
    let model = load_weights_with_layout(
        VggConfig::vgg8(10).with_width(4).init(&device),
        fixture("vgg8.pt"),
    )
    .unwrap();
    let want = common::floats(&model.forward(x.clone()));
    for file in ["vgg8.bpk", "vgg8.safetensors"] {
        let path = dir.join(file);
        save_weights(model.clone(), &path).unwrap();
        let fresh = VggConfig::vgg8(10).with_width(4).init(&device);
        let loaded = load_weights_with_layout(fresh, &path).unwrap();
        assert_eq!(common::floats(&loaded.forward(x.clone())), want, "{file}");
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn weights_of_another_architecture_or_shape_are_refused() {
    let device = Device::default();
    let dir = temp("refused");
    // A VGG8 checkpoint into a VGG13: the second conv of each stage is missing.
    let err = load_weights_with_layout(
        VggConfig::vgg13(10).with_width(4).init(&device),
        fixture("vgg8.pt"),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Weights { .. }), "{message}");
    assert!(message.contains("layers.1"), "{message}");
    // Same layout, other widths: shape mismatch, naming the parameter.
    let err = load_weights_with_layout(
        VggConfig::vgg8(10).with_width(8).init(&device),
        fixture("vgg8.pt"),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Weights { .. }), "{message}");
    assert!(message.to_lowercase().contains("shape"), "{message}");
    // A ResNet checkpoint into a VGG.
    let err = load_weights_with_layout(
        VggConfig::vgg8(10).with_width(4).init(&device),
        fixture("resnet8.pt"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Weights { .. }), "{err}");
    // Burn records and safetensors of another architecture.
    let resnet = ResNetConfig::new(8, 10)
        .with_widths([4, 8, 16, 32])
        .init(&device)
        .unwrap();
    for file in ["resnet.bpk", "resnet.safetensors"] {
        let path = dir.join(file);
        save_weights(resnet.clone(), &path).unwrap();
        let err = load_weights_with_layout(VggConfig::vgg8(10).with_width(4).init(&device), &path)
            .unwrap_err();
        assert!(matches!(err, Error::Weights { .. }), "{file}: {err}");
    }
    // Not a weights file at all, an unknown extension, a missing file.
    for (file, bytes) in [
        ("junk.pt", b"not a zip".as_slice()),
        (
            "junk.safetensors",
            b"\x08\x00\x00\x00\x00\x00\x00\x00{}".as_slice(),
        ),
        ("junk.bpk", b"garbage".as_slice()),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, bytes).unwrap();
        let err = load_weights_with_layout(VggConfig::vgg8(10).with_width(4).init(&device), &path)
            .unwrap_err();
        assert!(matches!(err, Error::Weights { .. }), "{file}: {err}");
        assert!(err.to_string().contains(file), "{err}");
    }
    let err = load_weights_with_layout(
        VggConfig::vgg8(10).with_width(4).init(&device),
        dir.join("weights.onnx"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown weights format"), "{err}");
    let err = load_weights_with_layout(
        VggConfig::vgg8(10).with_width(4).init(&device),
        dir.join("absent.bpk"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::MissingData { .. }), "{err}");
    let _ = std::fs::remove_dir_all(dir);
    // Loading never changes the number of parameters.
    let model = VggConfig::vgg8(10).with_width(4).init(&device);
    let params = model.num_params();
    let loaded = load_weights_with_layout(model, fixture("vgg8.pt")).unwrap();
    assert_eq!(loaded.num_params(), params);
}

/// `load_weights` takes any Burn module: a user's own model needs no `PytorchLayout` (a
/// plain `Linear` here), in Burn's and SafeTensors' formats; another shape is refused.
#[test]
fn any_module_loads_burn_and_safetensors_records_without_a_layout_trait() {
    use burn::nn::{Linear, LinearConfig};
    let device = Device::default();
    let dir = common::temp_path("any-module", "weights");
    std::fs::create_dir_all(&dir).unwrap();
    let saved = LinearConfig::new(3, 2).init(&device);
    let input = Tensor::<2>::from_floats([[1.0, -2.0, 0.5]], &device);
    let want = common::floats(&saved.forward(input.clone()));
    for name in ["linear.bpk", "linear.safetensors"] {
        let path = dir.join(name);
        save_weights(saved.clone(), &path).unwrap();
        let loaded: Linear = load_weights(LinearConfig::new(3, 2).init(&device), &path).unwrap();
        assert_eq!(
            common::floats(&loaded.forward(input.clone())),
            want,
            "{name}"
        );
        let err = load_weights(LinearConfig::new(4, 2).init(&device), &path).unwrap_err();
        assert!(matches!(err, Error::Weights { .. }), "{name}: {err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
