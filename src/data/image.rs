use std::sync::atomic::{AtomicU64, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Tensor, TensorData};

use crate::train::DistillBatch;

/// Training or test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training set.
    Train,
    /// The test set.
    Test,
}

/// Labelled 8-bit images held in memory, channel-first.
///
/// `images` holds `len() * channels * height * width` bytes; image `i`, channel `c`, row
/// `y`, column `x` is at `((i * channels + c) * height + y) * width + x`.
#[derive(Debug, Clone)]
pub struct ImageData {
    /// Channels per image (3 for CIFAR, 1 for Fashion-MNIST).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Number of classes; every label is below it.
    pub num_classes: usize,
    /// Pixel bytes.
    pub images: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
}

/// One image and its label.
#[derive(Debug, Clone)]
pub struct ImageItem {
    /// `channels * height * width` pixel bytes, channel-first.
    pub image: Vec<u8>,
    /// Class label.
    pub label: u8,
}

impl ImageData {
    /// Bytes per image.
    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Keeps the first `n` images (all when `n >= len()`).
    pub fn truncate(&mut self, n: usize) {
        if n < self.labels.len() {
            self.labels.truncate(n);
            self.images.truncate(n * self.image_size());
        }
    }

    /// A stratified, seeded hold-out: `(rest, held_out)` where `held_out` takes
    /// `round(fraction · n_c)` images of every class `c` (at least one of a class with two or
    /// more images), chosen by a seeded shuffle within the class; both keep the original order
    /// of their images. The same data, `fraction` and `seed` always give the same split, and
    /// the two parts are disjoint and together hold every image once. For a validation split
    /// carved out of training data.
    ///
    /// # Panics
    /// When `fraction` is not in `[0, 1]`.
    ///
    /// # Example
    /// ```
    /// use burn_distill::data::ImageData;
    ///
    /// let data = ImageData {
    ///     channels: 1, height: 1, width: 1, num_classes: 2,
    ///     images: (0..10).collect(), labels: vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
    /// };
    /// let (train, valid) = data.stratified_split(0.2, 7);
    /// assert_eq!((train.labels.len(), valid.labels.len()), (8, 2));
    /// assert_eq!(valid.labels.iter().filter(|l| **l == 0).count(), 1);
    /// ```
    pub fn stratified_split(&self, fraction: f64, seed: u64) -> (ImageData, ImageData) {
        assert!(
            (0.0..=1.0).contains(&fraction),
            "stratified_split: fraction {fraction} is not in [0, 1]"
        );
        let mut held = vec![false; self.labels.len()];
        for class in 0..self.num_classes {
            let mut members: Vec<usize> = (0..self.labels.len())
                .filter(|&i| usize::from(self.labels[i]) == class)
                .collect();
            let n = members.len();
            let mut take = (fraction * n as f64).round() as usize;
            if fraction > 0.0 && n >= 2 {
                take = take.max(1);
            }
            // Seeded per class.
            fisher_yates(
                &mut members,
                seed ^ (class as u64 + 1).wrapping_mul(GOLDEN_GAMMA),
            );
            for &i in &members[..take.min(n)] {
                held[i] = true;
            }
        }
        let part = |keep: bool| {
            let size = self.image_size();
            let chosen: Vec<usize> = (0..self.labels.len())
                .filter(|&i| held[i] == keep)
                .collect();
            ImageData {
                channels: self.channels,
                height: self.height,
                width: self.width,
                num_classes: self.num_classes,
                images: chosen
                    .iter()
                    .flat_map(|&i| self.images[i * size..(i + 1) * size].iter().copied())
                    .collect(),
                labels: chosen.iter().map(|&i| self.labels[i]).collect(),
            }
        };
        (part(false), part(true))
    }

    /// [`ImageData::stratified_split`] by a count: about `images` images held out (the
    /// fraction `images / n`, rounded per class), as `(rest, held_out)`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when `images` is not below the number of images.
    ///
    /// # Example
    /// ```
    /// use burn_distill::data::ImageData;
    ///
    /// let data = ImageData {
    ///     channels: 1, height: 1, width: 1, num_classes: 2,
    ///     images: (0..10).collect(), labels: vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
    /// };
    /// let (train, valid) = data.hold_out(4, 7).unwrap();
    /// assert_eq!((train.labels.len(), valid.labels.len()), (6, 4));
    /// let err = data.hold_out(10, 7).unwrap_err();
    /// assert!(err.to_string().contains("held-out images = 10"));
    /// ```
    pub fn hold_out(&self, images: usize, seed: u64) -> crate::Result<(ImageData, ImageData)> {
        let n = self.labels.len();
        if images >= n {
            return Err(crate::Error::InvalidConfig {
                field: "held-out images",
                value: format!("{images} (of {n} images)"),
                reason: "must be fewer than the images there are",
            });
        }
        Ok(self.stratified_split(images as f64 / n as f64, seed))
    }

    /// Appends the images of `other`, which must have the same shape and classes.
    pub(crate) fn append(&mut self, other: ImageData) {
        self.images.extend(other.images);
        self.labels.extend(other.labels);
    }
}

impl Dataset<ImageItem> for ImageData {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        let label = *self.labels.get(index).ok_or_else(|| {
            DatasetError::new(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "index {index} is out of range for {} images",
                    self.labels.len()
                ),
            ))
        })?;
        let size = self.image_size();
        Ok(ImageItem {
            image: self.images[index * size..(index + 1) * size].to_vec(),
            label,
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// Training-time augmentation: a random crop of the original size from the image
/// zero-padded by `padding` pixels on each side, and a horizontal flip with probability 1/2
/// when `flip` is set (the standard CIFAR recipe is `padding = 4`, `flip = true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augmentation {
    /// Zero padding before the random crop, in pixels.
    pub padding: usize,
    /// Random horizontal flips.
    pub flip: bool,
}

/// Turns [`ImageItem`]s into normalised [`DistillBatch`]es: `(pixel / 255 - mean[c]) /
/// std[c]`, with an optional [`Augmentation`].
///
/// Augmentation is deterministic: the random numbers come from `seed` and a counter of the
/// batches made so far, so the same seed and batch order give the same images.
#[derive(Debug)]
pub struct ImageBatcher {
    shape: [usize; 3],
    mean: Vec<f32>,
    std: Vec<f32>,
    augmentation: Option<Augmentation>,
    seed: u64,
    batches: AtomicU64,
}

impl ImageBatcher {
    /// A batcher for images of `[channels, height, width]` with per-channel `mean` and
    /// `std` (each of length `channels`).
    ///
    /// # Panics
    /// When `mean` or `std` do not have one entry per channel, or a `std` entry is not
    /// positive.
    pub fn new(
        shape: [usize; 3],
        mean: &[f32],
        std: &[f32],
        augmentation: Option<Augmentation>,
        seed: u64,
    ) -> Self {
        assert!(
            mean.len() == shape[0] && std.len() == shape[0],
            "ImageBatcher: {} channels but {} means and {} standard deviations",
            shape[0],
            mean.len(),
            std.len()
        );
        assert!(
            std.iter().all(|s| *s > 0.0),
            "ImageBatcher: std must be positive, got {std:?}"
        );
        Self {
            shape,
            mean: mean.to_vec(),
            std: std.to_vec(),
            augmentation,
            seed,
            batches: AtomicU64::new(0),
        }
    }

    /// Sets the batch counter, e.g. to resume a stream of augmented batches.
    pub fn set_batch_counter(&self, batches: u64) {
        self.batches.store(batches, Ordering::SeqCst);
    }
}

/// SplitMix64: a small, well-mixed generator for augmentation decisions.
/// `2^64 / φ`, the odd constant of Fibonacci hashing (and SplitMix64's increment).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Shuffles `items` in place with a seeded Fisher-Yates shuffle (xorshift64 steps): the same
/// seed gives the same order on every machine. The project's one shuffler of indices
/// ([`ImageData::stratified_split`] uses it per class).
///
/// # Example
/// ```
/// use burn_distill::data::shuffle;
///
/// let mut order: Vec<usize> = (0..10).collect();
/// shuffle(&mut order, 7);
/// let mut again: Vec<usize> = (0..10).collect();
/// shuffle(&mut again, 7);
/// assert_eq!(order, again);
/// order.sort();
/// assert_eq!(order, (0..10).collect::<Vec<_>>());
/// ```
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    fisher_yates(items, seed.wrapping_mul(GOLDEN_GAMMA));
}

fn fisher_yates<T>(items: &mut [T], state: u64) {
    let mut state = state | 1;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN_GAMMA);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Batcher<ImageItem, DistillBatch> for ImageBatcher {
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> DistillBatch {
        let [channels, height, width] = self.shape;
        let n = items.len();
        let batch_index = self.batches.fetch_add(1, Ordering::SeqCst);
        let mut rng = self.seed ^ batch_index.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut pixels = Vec::with_capacity(n * channels * height * width);
        let mut labels = Vec::with_capacity(n);
        for item in &items {
            let (dy, dx, flip) = match self.augmentation {
                Some(aug) => {
                    let r = splitmix(&mut rng);
                    let span = (2 * aug.padding + 1) as u64;
                    let pad = aug.padding as isize;
                    (
                        (r % span) as isize - pad,
                        ((r >> 16) % span) as isize - pad,
                        aug.flip && (r >> 32) & 1 == 1,
                    )
                }
                None => (0, 0, false),
            };
            let (h, w) = (height as isize, width as isize);
            for c in 0..channels {
                for y in 0..h {
                    for x in 0..w {
                        let sx = if flip { w - 1 - x } else { x } + dx;
                        let sy = y + dy;
                        let value = if (0..w).contains(&sx) && (0..h).contains(&sy) {
                            f32::from(item.image[(c * height + sy as usize) * width + sx as usize])
                                / 255.0
                        } else {
                            // Zero padding comes before normalisation, as in torchvision.
                            0.0
                        };
                        pixels.push((value - self.mean[c]) / self.std[c]);
                    }
                }
            }
            labels.push(i64::from(item.label));
        }
        DistillBatch {
            inputs: Tensor::from_data(
                TensorData::new(pixels, [n, channels, height, width]),
                device,
            ),
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}
