//! [`DistillBatcher`]: dataset items of any input type into a [`DistillBatch`].

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::kind::Autodiff;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::DistillBatch;

/// One labelled sample, as a dataset gives it to [`DistillBatcher`].
///
/// Implemented for `(Vec<f32>, usize)` (a row of features, or any flat float sample),
/// `(Vec<i64>, usize)` (token ids) and `(TensorData, usize)` (a sample of any shape: an image
/// `[C, H, W]`, a sequence `[L, D]`). Implement it for your own item struct.
pub trait DistillItem: Clone + Send + Sync {
    /// The sample's input, without the batch dimension.
    fn input(&self) -> TensorData;
    /// The sample's class, in `0..C`.
    fn label(&self) -> usize;
}

impl DistillItem for (Vec<f32>, usize) {
    fn input(&self) -> TensorData {
        TensorData::new(self.0.clone(), [self.0.len()])
    }
    fn label(&self) -> usize {
        self.1
    }
}

impl DistillItem for (Vec<i64>, usize) {
    fn input(&self) -> TensorData {
        TensorData::new(self.0.clone(), [self.0.len()])
    }
    fn label(&self) -> usize {
        self.1
    }
}

impl DistillItem for (TensorData, usize) {
    fn input(&self) -> TensorData {
        self.0.clone()
    }
    fn label(&self) -> usize {
        self.1
    }
}

/// A burn-dataset [`Batcher`] that stacks [`DistillItem`]s into a [`DistillBatch`] of
/// `Tensor<D, K>` inputs: rows into `Tensor<2>`, token ids into `Tensor<2, Int>`,
/// sequences into `Tensor<3>`, images into `Tensor<4>`; the batch dimension comes first.
///
/// # Panics
/// When the items' inputs differ in shape or dtype (the message names the first item that
/// differs and both shapes), or when `D` is not one more than the items' rank.
///
/// # Example
/// ```
/// use burn::data::dataloader::batcher::Batcher;
/// use burn::tensor::{Device, Int, Tensor};
/// use burn_distill::train::DistillBatcher;
/// use burn_distill::DistillBatch;
///
/// let device = Device::flex();
/// // Tabular rows.
/// let rows = vec![(vec![0.5f32, 1.0, 2.0], 1usize), (vec![3.0, 4.0, 5.0], 0)];
/// let batch: DistillBatch<Tensor<2>> = DistillBatcher.batch(rows, &device);
/// assert_eq!(batch.inputs.dims(), [2, 3]);
/// let ints = |t: Tensor<2, Int>| t.into_data().convert::<i64>().to_vec::<i64>().unwrap();
/// assert_eq!(ints(batch.labels.unsqueeze()), [1, 0]);
/// // Token ids.
/// let tokens = vec![(vec![101i64, 7, 102], 2usize), (vec![101, 9, 102], 1)];
/// let batch: DistillBatch<Tensor<2, Int>> = DistillBatcher.batch(tokens, &device);
/// assert_eq!(ints(batch.inputs), [101, 7, 102, 101, 9, 102]);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct DistillBatcher;

impl<T, const D: usize, K> Batcher<T, DistillBatch<Tensor<D, K>>> for DistillBatcher
where
    T: DistillItem,
    K: Autodiff + 'static,
{
    fn batch(&self, items: Vec<T>, device: &Device) -> DistillBatch<Tensor<D, K>> {
        let n = items.len();
        let labels: Vec<i64> = items.iter().map(|item| item.label() as i64).collect();
        let mut inputs = items.iter().map(DistillItem::input);
        let first = inputs
            .next()
            .expect("DistillBatcher: a batch needs at least one item");
        let shape: Vec<usize> = first.shape().to_vec();
        assert_eq!(
            shape.len() + 1,
            D,
            "DistillBatcher: items of shape {shape:?} make a batch of rank {}, not {D}",
            shape.len() + 1
        );
        let dtype = first.dtype();
        let mut bytes = first.as_bytes().to_vec();
        bytes.reserve(bytes.len() * n.saturating_sub(1));
        for (i, data) in inputs.enumerate() {
            assert!(
                data.shape().as_slice() == shape.as_slice() && data.dtype() == dtype,
                "DistillBatcher: item {} has shape {:?} ({:?}), item 0 has {shape:?} ({dtype:?})",
                i + 1,
                data.shape().as_slice(),
                data.dtype()
            );
            bytes.extend_from_slice(data.as_bytes());
        }
        let batch_shape: Vec<usize> = std::iter::once(n).chain(shape).collect();
        let data = TensorData::from_bytes_vec(bytes, batch_shape, dtype);
        DistillBatch {
            inputs: Tensor::from_data(data, device),
            labels: Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), device),
        }
    }
}
