//! A training loader that a resumed run replays exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::Device;

use super::image::{ImageBatcher, ImageData, shuffle};
use crate::train::DistillBatch;

/// A data loader for training whose order in epoch `e` is [`shuffle`] of the indices with
/// seed `seed + e`, and whose augmentation continues the [`ImageBatcher`]'s counter: a run
/// resumed after epoch `e` ([`EpochLoader::resume_after`]) sees exactly the batches an
/// uninterrupted run sees, so with burn-train's checkpoints it ends with the same weights.
///
/// Burn's `DataLoaderBuilder::shuffle` draws each epoch's order from one generator, which
/// burn-train forks when it moves the loader to its device: a resumed run cannot replay it.
/// The copies burn-train makes (`to_device`, `slice`) share this loader's epoch count.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use burn::data::dataloader::DataLoader;
/// use burn::tensor::Device;
/// use burn_distill::data::{EpochLoader, ImageBatcher, ImageData};
///
/// let data = Arc::new(ImageData {
///     channels: 1, height: 2, width: 2, num_classes: 2,
///     images: (0..24).collect(), labels: vec![0, 1, 0, 1, 0, 1],
/// });
/// let batcher = || ImageBatcher::new([1, 2, 2], &[0.5], &[0.25], None, 7);
/// let labels = |loader: &EpochLoader| -> Vec<i64> {
///     loader.iter().flat_map(|b| b.unwrap().labels.into_data().convert::<i64>().to_vec::<i64>().unwrap()).collect()
/// };
/// let device = Device::default();
/// let run = EpochLoader::new(data.clone(), batcher(), 4, device.clone(), 3);
/// let (first, second) = (labels(&run), labels(&run));
/// // A loader resumed after one epoch serves the second epoch's batches.
/// let resumed = EpochLoader::new(data, batcher(), 4, device, 3).resume_after(1);
/// assert_eq!(labels(&resumed), second);
/// assert_eq!(first.len(), 6);
/// ```
pub struct EpochLoader {
    data: Arc<ImageData>,
    batcher: Arc<ImageBatcher>,
    batch_size: usize,
    device: Device,
    seed: u64,
    /// Passes started so far, shared by the copies.
    epoch: Arc<AtomicU64>,
    /// The part of each epoch's order this copy serves (`slice`).
    range: Option<(usize, usize)>,
}

impl EpochLoader {
    /// Batches of `batch_size` images of `data` made by `batcher` on `device`, in an order
    /// seeded by `seed` and the epoch.
    ///
    /// # Panics
    /// When `batch_size` is 0.
    pub fn new(
        data: Arc<ImageData>,
        batcher: ImageBatcher,
        batch_size: usize,
        device: Device,
        seed: u64,
    ) -> Self {
        assert!(batch_size > 0, "EpochLoader: batch_size must be at least 1");
        Self {
            data,
            batcher: Arc::new(batcher),
            batch_size,
            device,
            seed,
            epoch: Arc::new(AtomicU64::new(0)),
            range: None,
        }
    }

    /// The loader as it stands after `epochs_done` epochs: the next pass is epoch
    /// `epochs_done`, and the batcher's augmentation continues after that many epochs'
    /// batches.
    #[must_use]
    pub fn resume_after(self, epochs_done: usize) -> Self {
        let batches = self.data.labels.len().div_ceil(self.batch_size);
        self.batcher
            .set_batch_counter((epochs_done * batches) as u64);
        self.epoch.store(epochs_done as u64, Ordering::SeqCst);
        self
    }

    fn copy(
        &self,
        device: Device,
        range: Option<(usize, usize)>,
    ) -> Arc<dyn DataLoader<DistillBatch>> {
        Arc::new(Self {
            data: self.data.clone(),
            batcher: self.batcher.clone(),
            batch_size: self.batch_size,
            device,
            seed: self.seed,
            epoch: self.epoch.clone(),
            range,
        })
    }
}

impl DataLoader<DistillBatch> for EpochLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<DistillBatch> + 'a> {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst);
        let mut order: Vec<usize> = (0..self.data.labels.len()).collect();
        shuffle(&mut order, self.seed.wrapping_add(epoch));
        if let Some((start, end)) = self.range {
            order = order[start..end].to_vec();
        }
        Box::new(EpochIter {
            loader: self,
            order,
            done: 0,
        })
    }

    fn num_items(&self) -> usize {
        self.range
            .map_or(self.data.labels.len(), |(start, end)| end - start)
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<DistillBatch>> {
        self.copy(device.clone(), self.range)
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<DistillBatch>> {
        let offset = self.range.map_or(0, |(s, _)| s);
        self.copy(self.device.clone(), Some((offset + start, offset + end)))
    }
}

/// One pass of an [`EpochLoader`] in its epoch's order.
struct EpochIter<'a> {
    loader: &'a EpochLoader,
    order: Vec<usize>,
    done: usize,
}

impl Iterator for EpochIter<'_> {
    type Item = Result<DistillBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let end = (self.done + self.loader.batch_size).min(self.order.len());
        if self.done >= end {
            return None;
        }
        let items: Result<Vec<_>, DatasetError> = self.order[self.done..end]
            .iter()
            .map(|&i| self.loader.data.get(i))
            .collect();
        self.done = end;
        Some(items.map(|items| self.loader.batcher.batch(items, &self.loader.device)))
    }
}

impl DataLoaderIterator<DistillBatch> for EpochIter<'_> {
    fn progress(&self) -> Progress {
        Progress::new(self.done, self.order.len(), Some("items".into()))
    }
}
