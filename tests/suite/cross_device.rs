//! Cross-device agreement: the same inputs give the same selection, losses and gradients
//! (within 1e-4) on every compiled device — flex, ndarray and wgpu (lavapipe on machines
//! without a GPU).
use crate::common;

use crate::common::values;

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::ModuleRecord;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_distill::{
    DistillationLossConfig, Feature, FeatureAdapterConfig, Granularity, ModelOutput, SoftLoss,
    TeacherSelectorConfig, Weighting,
};

/// Everything one step computes, read back to the host.
#[derive(Debug)]
struct Step {
    keep: Vec<bool>,
    weights: Vec<f32>,
    losses: Vec<f32>,
    student_grad: Vec<f32>,
    feature_grad: Vec<f32>,
    adapter_grad: Vec<f32>,
}

const N: usize = 6;
const C: usize = 5;
const K: usize = 3;

/// Every float parameter's gradient, flattened in visiting order.
struct GradCollector<'a> {
    grads: &'a burn::tensor::Gradients,
    out: Vec<f32>,
}

impl ModuleVisitor for GradCollector<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = param.val().grad(self.grads) {
            self.out.extend(common::floats(&grad));
        }
    }
}

fn step(
    adapter: &ModuleRecord,
    device: &Device,
    weighting: Weighting,
    granularity: Granularity,
    soft: SoftLoss,
) -> Step {
    let device = device.clone().autodiff();
    let float =
        |v: Vec<f32>, shape: Vec<usize>| Tensor::<2>::from_data(TensorData::new(v, shape), &device);
    let student = float(values(N * C, 1, 3.0), vec![N, C]).require_grad();
    let teachers: Vec<ModelOutput> = (0..K)
        .map(|k| ModelOutput {
            logits: float(values(N * C, 10 + k as u64, 4.0), vec![N, C]),
            features: vec![
                Tensor::<4>::from_data(
                    TensorData::new(values(N * 4 * 2 * 2, 20 + k as u64, 1.0), [N, 4, 2, 2]),
                    &device,
                )
                .into(),
            ],
        })
        .collect();
    let labels = Tensor::<1, Int>::from_data(
        TensorData::new((0..N as i64).map(|i| i % C as i64).collect::<Vec<_>>(), [N]),
        &device,
    );
    let selection = TeacherSelectorConfig::seed_paper()
        .with_weighting(weighting)
        .with_granularity(granularity)
        .init(K)
        .unwrap()
        .select(
            &teachers
                .iter()
                .map(|t| t.logits.clone())
                .collect::<Vec<_>>(),
            labels.clone(),
        )
        .unwrap();
    // A student feature map through a real adapter (same weights on every device).
    let student_map = Tensor::<4>::from_data(
        TensorData::new(values(N * 3 * 4 * 4, 30, 1.0), [N, 3, 4, 4]),
        &device,
    )
    .require_grad();
    let adapter = FeatureAdapterConfig::new([3, 4])
        .init(&device)
        .unwrap()
        .load_record(adapter.clone());
    let adapted: Vec<Vec<Feature>> = (0..K)
        .map(|_| vec![adapter.forward(student_map.clone(), [2, 2]).into()])
        .collect();
    let loss = DistillationLossConfig::new()
        .with_temperature(4.0)
        .with_soft_loss(soft)
        .init()
        .unwrap()
        .forward(
            student.clone(),
            labels,
            &teachers,
            &adapted,
            selection.weights.clone(),
        );
    let grads = loss.total.backward();
    let losses = [loss.total.clone(), loss.hard(), loss.soft(), loss.feature()]
        .iter()
        .flat_map(common::floats)
        .collect();
    let result = Step {
        keep: common::bools(&selection.keep),
        weights: common::floats(&selection.weights),
        losses,
        student_grad: common::floats(&student.grad(&grads).unwrap()),
        feature_grad: common::floats(&student_map.grad(&grads).unwrap()),
        adapter_grad: {
            let mut collector = GradCollector {
                grads: &grads,
                out: Vec::new(),
            };
            adapter.visit(&mut collector);
            assert!(!collector.out.is_empty(), "the adapter has gradients");
            collector.out
        },
    };
    device.sync().unwrap();
    result
}

fn close(what: &str, a: &[f32], b: &[f32], devices: (&str, &str)) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * x.abs().max(1.0),
            "{what}, element {i}: {} gives {x}, {} gives {y}",
            devices.0,
            devices.1
        );
    }
}

#[test]
fn selection_losses_and_gradients_agree_across_devices() {
    let devices = common::all_devices();
    // One adapter's weights, used on every device.
    let adapter = FeatureAdapterConfig::new([3, 4])
        .init(&Device::default())
        .unwrap()
        .into_record();
    for weighting in [
        Weighting::Softmax,
        Weighting::Average,
        Weighting::Confidence,
        Weighting::Entropy,
    ] {
        for granularity in [Granularity::PerSample, Granularity::PerBatch] {
            for soft in [
                SoftLoss::Kd,
                SoftLoss::Dkd {
                    target_weight: 1.0,
                    non_target_weight: 8.0,
                },
            ] {
                let steps: Vec<(&str, Step)> = devices
                    .iter()
                    .map(|(name, device)| {
                        (
                            *name,
                            step(
                                &adapter,
                                device,
                                weighting.clone(),
                                granularity,
                                soft.clone(),
                            ),
                        )
                    })
                    .collect();
                let (first, reference) = &steps[0];
                for (name, other) in &steps[1..] {
                    let pair = (*first, *name);
                    let case = format!("{weighting:?} {granularity:?} {soft:?}");
                    assert_eq!(reference.keep, other.keep, "{case}: keep, {pair:?}");
                    close(
                        &format!("{case}: weights"),
                        &reference.weights,
                        &other.weights,
                        pair,
                    );
                    close(
                        &format!("{case}: losses"),
                        &reference.losses,
                        &other.losses,
                        pair,
                    );
                    close(
                        &format!("{case}: student gradient"),
                        &reference.student_grad,
                        &other.student_grad,
                        pair,
                    );
                    close(
                        &format!("{case}: feature gradient"),
                        &reference.feature_grad,
                        &other.feature_grad,
                        pair,
                    );
                    close(
                        &format!("{case}: adapter gradient"),
                        &reference.adapter_grad,
                        &other.adapter_grad,
                        pair,
                    );
                }
            }
        }
    }
}

/// A student within a hair of its teacher at T = 4 and 20: KD and DKD per sample agree
/// across devices to 2e-5 relative (2e-7 absolute): each is within 1e-5 of f64, as
/// `tests/suite/stability.rs` checks on every device. Before the device-independent `log1p`, wgpu gave
/// 400·2⁻²³ or exactly 0 here.
#[test]
fn near_identical_soft_losses_agree_across_devices() {
    use crate::common::losses::{dkd_loss_per_sample, kd_loss_per_sample};
    let (n, c) = (4, 10);
    let teacher = values(n * c, 31, 50.0);
    let noise = values(n * c, 32, 1e-3);
    let student: Vec<f32> = teacher.iter().zip(&noise).map(|(t, e)| t + e).collect();
    for temperature in [4.0, 20.0] {
        let per_device: Vec<(&str, Vec<f32>)> = common::all_devices()
            .into_iter()
            .map(|(name, device)| {
                let tensor = |v: &[f32]| {
                    Tensor::<2>::from_data(TensorData::new(v.to_vec(), [n, c]), &device)
                };
                let labels =
                    Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 3, 6, 9], [n]), &device);
                let mut out = common::floats(&kd_loss_per_sample(
                    tensor(&student),
                    tensor(&teacher),
                    temperature,
                ));
                out.extend(common::floats(&dkd_loss_per_sample(
                    tensor(&student),
                    tensor(&teacher),
                    labels,
                    1.0,
                    8.0,
                    temperature,
                )));
                (name, out)
            })
            .collect();
        let (first, reference) = &per_device[0];
        assert!(reference.iter().all(|v| *v > 0.0), "{first}: {reference:?}");
        for (name, other) in &per_device[1..] {
            let want: Vec<f64> = reference.iter().map(|v| *v as f64).collect();
            common::assert_close_rel(
                &format!("T = {temperature}, {first} vs"),
                name,
                other,
                &want,
                2e-5,
                2e-7,
            );
        }
    }
}
