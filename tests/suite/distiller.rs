//! Adapters, the distiller's identity cases, gradients and input checks.

use std::sync::Arc;

use crate::common::*;
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use burn_distill::models::{Cnn, CnnConfig};
use burn_distill::{
    DistillationLossConfig, DistillerConfig, Error, FeatureAdapterConfig, FeatureSpec,
    FrozenTeacher, ModelOutput, ScreeningRule, Teacher, TeacherSelectorConfig, Weighting,
};

use crate::common::losses::kd_loss;

#[test]
fn adapter_output_shapes_for_larger_smaller_and_equal_maps() {
    for (name, device) in all_devices() {
        for deep in [false, true] {
            let adapter = FeatureAdapterConfig::new([6, 10])
                .with_deep(deep)
                .with_relu(true)
                .init(&device)
                .unwrap();
            for (input, target) in [
                ([8, 8], [4, 4]),
                ([2, 2], [4, 4]),
                ([4, 4], [4, 4]),
                ([7, 5], [3, 3]),
            ] {
                let x = Tensor::<4>::ones([2, 6, input[0], input[1]], &device);
                let y = adapter.forward(x, target);
                assert_eq!(
                    y.dims(),
                    [2, 10, target[0], target[1]],
                    "{name} deep={deep} {input:?}"
                );
                assert!(
                    floats(&y).iter().all(|v| v.is_finite() && *v >= 0.0),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn adapter_alignment_values() {
    // Spatial alignment alone, checked through an identity 1x1 conv is not possible (the conv
    // is random), so check the pooled / interpolated map through a 1-channel adapter whose
    // output after batch norm in inference mode is an affine map of its input:
    // y = w * x / sqrt(1 + eps) with bias-free conv and fresh running stats (mean 0, var 1).
    let device = cpu_devices().remove(0).1;
    let adapter = FeatureAdapterConfig::new([1, 1])
        .init(&device)
        .unwrap()
        .valid();
    // The matmul-based bilinear resize agrees with burn's own interpolate (forward).
    let x = Tensor::<4>::random([2, 3, 3, 5], burn::tensor::Distribution::Default, &device);
    let reference = burn::tensor::module::interpolate(
        x.clone(),
        burn::tensor::ops::InterpolateOptions::new(burn::tensor::ops::InterpolateMode::Bilinear)
            .with_align_corners(false)
            .with_output_size([7, 8]),
    );
    let want: Vec<f64> = floats(&reference).iter().map(|v| *v as f64).collect();
    assert_close(
        "bilinear",
        "cpu",
        &floats(&burn_distill::bilinear_resize(x, [7, 8])),
        &want,
        1e-5,
    );
    let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0, 4.0], &device).reshape([1, 1, 2, 2]);
    let one = adapter.forward(Tensor::<4>::ones([1, 1, 1, 1], &device), [1, 1]);
    let scale = floats(&one)[0] as f64;
    // 2x2 -> 1x1 average pooling: mean 2.5.
    let pooled = adapter.forward(x.clone(), [1, 1]);
    assert_close("pooled", "cpu", &floats(&pooled), &[2.5 * scale], 1e-5);
    // 2x2 -> 4x4 bilinear (align_corners = false): corners keep the input values.
    let up = floats(&adapter.forward(x, [4, 4]));
    assert_close(
        "corners",
        "cpu",
        &[up[0], up[3], up[12], up[15]],
        &[scale, 2.0 * scale, 3.0 * scale, 4.0 * scale],
        1e-5,
    );
}

#[test]
fn adapter_rejects_zero_channels_and_wrong_input() {
    let device = cpu_devices().remove(0).1;
    let err = FeatureAdapterConfig::new([0, 4]).init(&device).unwrap_err();
    assert!(err.to_string().contains("[0, 4]"), "{err}");
    let adapter = FeatureAdapterConfig::new([3, 4]).init(&device).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        adapter.forward(Tensor::zeros([1, 5, 2, 2], &device), [2, 2])
    }));
    let message = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(
        message.contains("5 channels") && message.contains("expects 3"),
        "{message}"
    );
}

fn cnn(width: usize, device: &Device) -> Cnn {
    CnnConfig::new(5).with_width(width).init(device)
}

fn batch(device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let images = Tensor::<4>::random(
        [6, 3, 8, 8],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        device,
    );
    (images, labels(&[0, 1, 2, 3, 4, 0], device))
}

#[test]
fn one_teacher_with_average_is_plain_kd() {
    for (name, plain) in all_devices() {
        let device = plain.clone().autodiff();
        let teachers: Vec<Arc<dyn Teacher>> =
            vec![Arc::new(FrozenTeacher::from_model("t", cnn(8, &device)))];
        let distiller = DistillerConfig::new()
            .with_selector(TeacherSelectorConfig::unscreened(Weighting::Average))
            .with_loss(
                DistillationLossConfig::new()
                    // Plain Hinton KD: the formula these values come from.
                    .with_logit_standardization(false)
                    .with_hard_weight(0.0)
                    .with_feature_weight(0.0),
            )
            .init(cnn(4, &device), teachers, &device)
            .unwrap();
        let (images, y) = batch(&plain);
        let out = distiller.forward(images.clone(), y).unwrap();
        let teacher_logits = distiller.teacher_outputs(images).remove(0).logits;
        let want: Vec<f64> = floats(&kd_loss(
            out.student_logits.clone().without_autodiff(),
            teacher_logits,
            4.0,
        ))
        .iter()
        .map(|v| *v as f64)
        .collect();
        assert_close("soft = kd", name, &floats(&out.loss.soft()), &want, 1e-5);
        assert_close("total = soft", name, &floats(&out.loss.total), &want, 1e-5);
    }
}

#[test]
fn gradients_reach_student_and_adapters_but_never_teachers() {
    for (name, plain) in cpu_devices() {
        let device = plain.autodiff();
        let teacher_model = cnn(8, &device);
        let teacher = Arc::new(FrozenTeacher::from_model("t", teacher_model));
        // The frozen copy lives off the autodiff graph.
        teacher
            .model()
            .visit(&mut ParamsOnAutodiff::default().expect(false, name));
        let teachers: Vec<Arc<dyn Teacher>> = vec![
            teacher.clone(),
            Arc::new(FrozenTeacher::from_model("u", cnn(6, &device))),
        ];
        let distiller = DistillerConfig::new()
            .with_selector(
                TeacherSelectorConfig::seed_paper().with_screening(ScreeningRule::KeepAll),
            )
            .with_loss(loss_from_step_0())
            .init(cnn(4, &device), teachers, &device)
            .unwrap();
        let (images, y) = batch(&device);
        let outputs = distiller.teacher_outputs(images.clone());
        for out in &outputs {
            assert!(
                !out.logits.is_autodiff(),
                "{name}: teacher logits must not be autodiff"
            );
            assert!(
                out.features.iter().all(|f| !f.is_autodiff()),
                "{name}: teacher features"
            );
        }
        let out = distiller
            .forward_with_teacher_outputs(images, y, &outputs)
            .unwrap();
        assert!(out.loss.total.is_autodiff());
        let grads = out.loss.total.backward();
        let grads = burn::optim::GradientsParams::from_grads(grads, &distiller);
        // BatchNorm's running statistics are buffers, not parameters: every visited float
        // parameter of the student and the adapters is trainable and must have a gradient.
        let mut student = GradCheck {
            grads: &grads,
            count: 0,
            missing: vec![],
            present: vec![],
        };
        distiller.student.visit(&mut student);
        distiller.adapters.visit(&mut student);
        assert!(
            student.count >= 6 + 2 * 3,
            "{name}: {} parameters",
            student.count
        );
        assert!(
            student.missing.is_empty(),
            "{name}: no gradient for {:?}",
            student.missing
        );
        let mut frozen = Vec::new();
        teacher.model().visit(&mut CollectIds(&mut frozen));
        assert!(!frozen.is_empty(), "{name}");
        for id in &frozen {
            assert!(
                grads.get::<1>(*id).is_none()
                    && grads.get::<2>(*id).is_none()
                    && grads.get::<4>(*id).is_none(),
                "{name}: teacher parameter {id} got a gradient"
            );
        }
        // Only student and adapter parameters are in the module (and thus in checkpoints).
        assert_eq!(
            distiller.num_params(),
            distiller.student.num_params() + distiller.adapters.num_params()
        );
    }
}

#[derive(Default)]
struct ParamsOnAutodiff {
    expected: bool,
    device: &'static str,
}

impl ParamsOnAutodiff {
    fn expect(mut self, expected: bool, device: &'static str) -> Self {
        self.expected = expected;
        self.device = device;
        self
    }
}

impl burn::module::ModuleVisitor for ParamsOnAutodiff {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        assert_eq!(
            param.val().is_autodiff(),
            self.expected,
            "{}: parameter {}",
            self.device,
            param.id
        );
    }
}

struct CollectIds<'a>(&'a mut Vec<burn::module::ParamId>);

impl burn::module::ModuleVisitor for CollectIds<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        self.0.push(param.id);
    }
}

struct GradCheck<'a> {
    grads: &'a burn::optim::GradientsParams,
    count: usize,
    missing: Vec<burn::module::ParamId>,
    present: Vec<burn::module::ParamId>,
}

impl burn::module::ModuleVisitor for GradCheck<'_> {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        // BatchNorm running statistics are visited too, but are buffers without gradients.
        if !param.val().is_require_grad() {
            return;
        }
        self.count += 1;
        match self.grads.get::<D>(param.id) {
            Some(_) => self.present.push(param.id),
            None => self.missing.push(param.id),
        }
    }
}

#[derive(Debug)]
struct Fake {
    classes: usize,
    channels: Vec<usize>,
}

impl Teacher for Fake {
    fn name(&self) -> &str {
        "fake"
    }
    fn num_classes(&self) -> usize {
        self.classes
    }
    fn feature_specs(&self) -> Option<Vec<FeatureSpec>> {
        Some(self.channels.iter().map(|c| FeatureSpec::map(*c)).collect())
    }
    fn forward(&self, input: Tensor<4>) -> ModelOutput {
        let [n, _, _, _] = input.dims();
        ModelOutput {
            logits: Tensor::zeros([n, self.classes], &input.device()),
            features: self
                .channels
                .iter()
                .map(|c| Tensor::<4>::zeros([n, *c, 4, 4], &input.device()).into())
                .collect(),
        }
    }
}

#[test]
fn construction_errors_name_the_problem() {
    let device = cpu_devices().remove(0).1.autodiff();
    let fake =
        |classes, channels: Vec<usize>| Arc::new(Fake { classes, channels }) as Arc<dyn Teacher>;
    let init = |teachers: Vec<Arc<dyn Teacher>>| {
        DistillerConfig::new().init(cnn(4, &device), teachers, &device)
    };

    assert!(matches!(init(vec![]), Err(Error::NoTeachers)));
    let err = init(vec![fake(5, vec![16]), fake(7, vec![16])]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ClassCountMismatch {
                expected: 5,
                found: 7,
                index: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("has 7"), "{err}");
    let err = init(vec![fake(10, vec![16])]).unwrap_err();
    assert!(
        err.to_string()
            .contains("student has 5 classes but the teachers have 10"),
        "{err}"
    );
    let err = init(vec![fake(5, vec![16, 32])]).unwrap_err();
    assert!(
        err.to_string()
            .contains("student gives 1 feature but teacher 0 (fake) gives 2 features"),
        "{err}"
    );
    let err = DistillerConfig::new()
        .with_loss(DistillationLossConfig::new().with_temperature(-1.0))
        .init(cnn(4, &device), vec![fake(5, vec![16])], &device)
        .unwrap_err();
    assert!(err.to_string().contains("temperature = -1"), "{err}");
}

#[test]
fn forward_errors_on_mismatched_batches() {
    let device = cpu_devices().remove(0).1.autodiff();
    let distiller = DistillerConfig::new()
        .init(
            cnn(4, &device),
            vec![Arc::new(Fake {
                classes: 5,
                channels: vec![16],
            }) as Arc<dyn Teacher>],
            &device,
        )
        .unwrap();
    let (images, _) = batch(&device);
    let err = distiller
        .forward(images.clone(), labels(&[0, 1], &device))
        .unwrap_err();
    assert!(
        err.to_string().contains("labels")
            && err.to_string().contains("[6]")
            && err.to_string().contains("[2]"),
        "{err}"
    );
    // Teacher outputs for another batch size.
    let (other, _) = (Tensor::<4>::zeros([3, 3, 8, 8], &device), ());
    let outputs = distiller.teacher_outputs(other);
    let err = distiller
        .forward_with_teacher_outputs(images, labels(&[0, 1, 2, 3, 4, 0], &device), &outputs)
        .unwrap_err();
    assert!(
        err.to_string().contains("[6, 5]") && err.to_string().contains("[3, 5]"),
        "{err}"
    );
}

#[test]
fn teachers_of_different_architectures_work_together() {
    // A CNN teacher with 16-channel 4x4 maps and a closure teacher with 3-channel 8x8 maps.
    for (name, plain) in all_devices() {
        let device = plain.autodiff();
        let linear = burn::nn::LinearConfig::new(3 * 8 * 8, 5).init(&device);
        let closure = FrozenTeacher::new(
            "linear",
            linear,
            5,
            vec![FeatureSpec::map(3)],
            |m: &burn::nn::Linear, x: Tensor<4>| ModelOutput {
                logits: m.forward(x.clone().flatten(1, 3)),
                features: vec![x.into()],
            },
        );
        let teachers: Vec<Arc<dyn Teacher>> = vec![
            Arc::new(FrozenTeacher::from_model("cnn", cnn(8, &device))),
            Arc::new(closure),
        ];
        let distiller = DistillerConfig::new()
            .with_loss(loss_from_step_0())
            .init(cnn(2, &device), teachers, &device)
            .unwrap();
        assert_eq!(distiller.adapters.len(), 2);
        assert_eq!(distiller.adapters[0].channels(), [4, 16]);
        assert_eq!(distiller.adapters[1].channels(), [4, 3]);
        let (images, y) = batch(&device);
        let out = distiller.forward(images, y).unwrap();
        let total = floats(&out.loss.total)[0];
        assert!(
            total.is_finite() && floats(&out.loss.feature())[0] > 0.0,
            "{name}: {total}"
        );
        let sums = floats(&out.selection.weights.clone().sum_dim(1));
        assert_close("weights sum", name, &sums, &[1.0; 6], 1e-5);
        let grads = out.loss.total.backward();
        assert!(
            distiller
                .student
                .forward(Tensor::zeros([1, 3, 8, 8], &device))
                .dims()
                == [1, 5]
        );
        drop(grads);
        // Finish all queued device work before the test ends (see common::all_devices).
        device.sync().unwrap();
    }
}

/// `FeatureTarget::Mixture` in the distiller: the feature term is the distance from the
/// first teacher's adapter output to the selector-weighted mixture of the teachers' maps
/// (computed here from the parts), and only that adapter (and the student) gets gradients.
#[test]
fn the_feature_mixture_trains_one_adapter_against_the_weighted_teacher_maps() {
    use burn_distill::FeatureTarget;
    use burn_distill::loss::MixtureFeatureLoss;
    for (name, plain) in cpu_devices() {
        let device = plain.autodiff();
        let teachers: Vec<Arc<dyn Teacher>> = vec![
            Arc::new(FrozenTeacher::from_model("t", cnn(6, &device))),
            Arc::new(FrozenTeacher::from_model("u", cnn(6, &device))),
        ];
        let distiller = DistillerConfig::new()
            .with_selector(
                TeacherSelectorConfig::seed_paper().with_screening(ScreeningRule::KeepAll),
            )
            .with_loss(loss_from_step_0().with_feature_target(FeatureTarget::Mixture))
            .init(cnn(4, &device), teachers, &device)
            .unwrap();
        let (images, y) = batch(&device);
        let outputs = distiller.teacher_outputs(images.clone());
        let out = distiller
            .forward_with_teacher_outputs(images.clone(), y, &outputs)
            .unwrap();
        // The same value from the parts: adapter 0 on the student's map, the selection's
        // weights on the teachers' maps.
        let student_map = burn_distill::FeatureModel::forward_features(&distiller.student, images)
            .features
            .remove(0);
        let adapted = distiller.adapters[0]
            .adapt(student_map, &outputs[0].features[0])
            .flatten_samples();
        let maps: Vec<Tensor<2>> = outputs
            .iter()
            .map(|o| o.features[0].clone().flatten_samples())
            .collect();
        let expected = MixtureFeatureLoss::new(burn_distill::FeatureNorm::None)
            .forward_no_reduction(adapted, &maps, out.selection.weights.clone())
            .mean();
        assert_close(
            "feature mixture",
            name,
            &floats(&out.loss.feature()),
            &floats(&expected)
                .iter()
                .map(|v| *v as f64)
                .collect::<Vec<_>>(),
            1e-5,
        );
        let grads = out.loss.total.backward();
        let grads = burn::optim::GradientsParams::from_grads(grads, &distiller);
        let check = |module: &dyn Fn(&mut GradCheck)| {
            let mut c = GradCheck {
                grads: &grads,
                count: 0,
                missing: vec![],
                present: vec![],
            };
            module(&mut c);
            c
        };
        let first = check(&|c| distiller.adapters[0].visit(c));
        let second = check(&|c| distiller.adapters[1].visit(c));
        assert!(
            first.count > 0 && first.missing.is_empty(),
            "{name}: adapter 0"
        );
        assert!(
            second.count > 0 && second.present.is_empty(),
            "{name}: adapter 1 takes no part"
        );
        device.sync().unwrap();
    }
}
