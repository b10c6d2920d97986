//! The helpers a user would otherwise write: `DistillBatcher` (rows, token ids, any shape),
//! `evaluate` (against a hand count), and the messages that name the culprit (a wrong input
//! width names the teacher or the student; NaN inputs are reported as such).

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_distill::models::CnnConfig;
use burn_distill::train::DistillBatcher;
use burn_distill::{
    DistillBatch, DistillerConfig, Error, FeatureModel, FeatureSpec, FrozenTeacher, InputShape,
    ModelOutput, Teacher, evaluate,
};

use crate::common;

fn ints<const D: usize>(tensor: &Tensor<D, Int>) -> Vec<i64> {
    tensor
        .to_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap()
}

#[test]
fn the_batcher_stacks_rows_token_ids_and_samples_of_any_shape() {
    let device = Device::flex();
    let rows = vec![(vec![1.0f32, 2.0, 3.0], 2usize), (vec![4.0, 5.0, 6.0], 0)];
    let batch: DistillBatch<Tensor<2>> = DistillBatcher.batch(rows, &device);
    assert_eq!(batch.inputs.dims(), [2, 3]);
    assert_eq!(
        common::floats(&batch.inputs),
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    assert_eq!(ints(&batch.labels), [2, 0]);

    let tokens = vec![(vec![5i64, 6], 1usize), (vec![7, 8], 3), (vec![9, 10], 0)];
    let batch: DistillBatch<Tensor<2, Int>> = DistillBatcher.batch(tokens, &device);
    assert_eq!(batch.inputs.dims(), [3, 2]);
    assert_eq!(ints(&batch.inputs), [5, 6, 7, 8, 9, 10]);
    assert_eq!(ints(&batch.labels), [1, 3, 0]);

    // Samples of shape [2, 2] (a tiny single-channel image, a short sequence).
    let samples = vec![
        (TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]), 1usize),
        (TensorData::new(vec![5.0f32, 6.0, 7.0, 8.0], [2, 2]), 0),
    ];
    let batch: DistillBatch<Tensor<3>> = DistillBatcher.batch(samples, &device);
    assert_eq!(batch.inputs.dims(), [2, 2, 2]);
    assert_eq!(
        common::floats(&batch.inputs),
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    );
}

#[test]
#[should_panic(expected = "item 1 has shape [2]")]
fn the_batcher_names_the_first_item_of_another_shape() {
    let rows = vec![(vec![1.0f32, 2.0, 3.0], 0usize), (vec![4.0, 5.0], 1)];
    let _: DistillBatch<Tensor<2>> = DistillBatcher.batch(rows, &Device::flex());
}

#[test]
#[should_panic(expected = "make a batch of rank 2, not 3")]
fn the_batcher_names_a_wrong_batch_rank() {
    let rows = vec![(vec![1.0f32, 2.0], 0usize)];
    let _: DistillBatch<Tensor<3>> = DistillBatcher.batch(rows, &Device::flex());
}

/// A model whose logits are its input rows (a bias-free linear layer with the identity as its
/// weight), so the logits are known exactly; it declares rows of `classes` values.
#[derive(Module, Debug)]
struct Passthrough {
    linear: Linear,
}

impl Passthrough {
    fn new(classes: usize, device: &Device) -> Self {
        let mut linear = LinearConfig::new(classes, classes)
            .with_bias(false)
            .init(device);
        linear.weight = Param::from_tensor(Tensor::eye(classes, device));
        Self { linear }
    }
}

impl FeatureModel<Tensor<2>> for Passthrough {
    fn forward_features(&self, rows: Tensor<2>) -> ModelOutput {
        let logits = self.linear.forward(rows);
        ModelOutput {
            features: vec![logits.clone().into()],
            logits,
        }
    }
    fn num_classes(&self) -> usize {
        self.linear.weight.dims()[1]
    }
    fn feature_specs(&self) -> Option<Vec<FeatureSpec>> {
        Some(vec![FeatureSpec::vector(self.num_classes())])
    }
    fn input_shape(&self) -> Option<InputShape> {
        Some(InputShape::new([Some(self.num_classes())]))
    }
}

#[test]
fn evaluate_matches_a_hand_count_per_class() {
    let device = Device::flex();
    let model = Passthrough::new(3, &device);
    // Two batches; the predictions are each row's largest value.
    let rows: [[f64; 3]; 5] = [
        [2.0, 0.0, 0.0], // label 0: right
        [0.0, 1.0, 3.0], // label 1: wrong (predicts 2)
        [0.0, 0.0, 1.0], // label 2: right
        [1.0, 4.0, 0.0], // label 1: right
        [0.5, 0.0, 0.0], // label 2: wrong (predicts 0)
    ];
    let labels = [0i64, 1, 2, 1, 2];
    let batch = |range: std::ops::Range<usize>| {
        let values: Vec<f32> = rows[range.clone()]
            .iter()
            .flatten()
            .map(|v| *v as f32)
            .collect();
        let inputs = Tensor::<2>::from_data(TensorData::new(values, [range.len(), 3]), &device);
        (inputs, common::labels(&labels[range], &device))
    };
    let result = evaluate(&model, [batch(0..2), batch(2..5)]).unwrap();
    assert_eq!(result.samples, 5);
    assert!((result.accuracy - 3.0 / 5.0).abs() < 1e-12);
    let counts: Vec<(usize, usize)> = result
        .per_class
        .iter()
        .map(|c| (c.samples, c.correct))
        .collect();
    assert_eq!(counts, [(1, 1), (2, 1), (2, 1)]);
    assert_eq!(result.per_class[1].accuracy(), Some(0.5));
    // Cross-entropy by hand, in f64: log-sum-exp of the row minus the label's logit.
    let expected: f64 = rows
        .iter()
        .zip(labels)
        .map(|(row, y)| {
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            lse - row[y as usize]
        })
        .sum::<f64>()
        / 5.0;
    assert!(
        (result.mean_cross_entropy - expected).abs() < 1e-5,
        "{} vs {expected}",
        result.mean_cross_entropy
    );
    // A label out of range and an empty evaluation are typed errors.
    let (inputs, _) = batch(0..2);
    let err = evaluate(&model, [(inputs, common::labels(&[0, 3], &device))]).unwrap_err();
    assert!(
        matches!(err, Error::LabelOutOfRange { max: 3, .. }),
        "{err}"
    );
    let none: Vec<(Tensor<2>, Tensor<1, Int>)> = Vec::new();
    assert!(matches!(
        evaluate(&model, none),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn a_batch_of_the_wrong_width_names_the_teacher_or_the_student() {
    let device = Device::flex().autodiff();
    // A teacher on rows of 4 values; another that declares nothing.
    let teachers: Vec<Arc<dyn Teacher<Tensor<2>>>> = vec![
        Arc::new(FrozenTeacher::from_model(
            "rows-of-4",
            Passthrough::new(4, &device),
        )),
        Arc::new(FrozenTeacher::<_, Tensor<2>>::new(
            "undeclared",
            Passthrough::new(4, &device),
            4,
            vec![FeatureSpec::vector(4)],
            |m: &Passthrough, x: Tensor<2>| m.forward_features(x),
        )),
    ];
    let student = Passthrough::new(4, &device);
    let distiller = DistillerConfig::new()
        .init(student, teachers.clone(), &device)
        .unwrap();
    let labels = common::labels(&[0, 1], &device);
    let rows = |width: usize| Tensor::<2>::zeros([2, width], &device);
    // The student declares rows of 4 too: it is named first.
    let err = distiller.forward(rows(5), labels.clone()).unwrap_err();
    assert!(
        matches!(&err, Error::InputShape { model, found, .. } if model == "the student" && found == &[5]),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "the student takes samples of shape [4], but the batch's samples are [5]"
    );
    assert!(distiller.forward(rows(4), labels.clone()).is_ok());

    // A student that takes any width (no declaration): the teacher is named.
    #[derive(Module, Debug)]
    struct AnyWidth {
        inner: Passthrough,
    }
    impl FeatureModel<Tensor<2>> for AnyWidth {
        fn forward_features(&self, rows: Tensor<2>) -> ModelOutput {
            let rows = rows.slice([0..2, 0..4]);
            self.inner.forward_features(rows)
        }
        fn num_classes(&self) -> usize {
            4
        }
        fn feature_specs(&self) -> Option<Vec<FeatureSpec>> {
            self.inner.feature_specs()
        }
    }
    let distiller = DistillerConfig::new()
        .init(
            AnyWidth {
                inner: Passthrough::new(4, &device),
            },
            teachers,
            &device,
        )
        .unwrap();
    let err = distiller.forward(rows(6), labels).unwrap_err();
    assert_eq!(
        err.to_string(),
        "teacher 0 (rows-of-4) takes samples of shape [4], but the batch's samples are [6]"
    );

    // The zoo's image models declare [3, any, any].
    let cnn = || CnnConfig::new(4).with_width(2).init(&device);
    let teachers: Vec<Arc<dyn Teacher>> = vec![Arc::new(FrozenTeacher::from_model("cnn", cnn()))];
    let distiller = DistillerConfig::new()
        .init(cnn(), teachers, &device)
        .unwrap();
    let grey = Tensor::<4>::zeros([2, 1, 8, 8], &device);
    let err = distiller
        .forward(grey, common::labels(&[0, 1], &device))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the student takes samples of shape [3, any, any], but the batch's samples are [1, 8, 8]"),
        "{err}"
    );
}

#[test]
fn nan_inputs_are_reported_as_bad_inputs_not_as_divergence() {
    let device = Device::flex().autodiff();
    let cnn = || CnnConfig::new(4).with_width(2).init(&device);
    let teachers: Vec<Arc<dyn Teacher>> = vec![Arc::new(FrozenTeacher::from_model("cnn", cnn()))];
    let distiller = DistillerConfig::new()
        .init(cnn(), teachers, &device)
        .unwrap();
    let mut pixels = vec![0.5f32; 2 * 3 * 8 * 8];
    pixels[17] = f32::NAN;
    let images = Tensor::<4>::from_data(TensorData::new(pixels, [2, 3, 8, 8]), &device);
    let err = distiller
        .forward(images, common::labels(&[0, 1], &device))
        .unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("the input batch"), "{message}");
    assert!(!message.contains("diverged"), "{message}");
}
