use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Tensor, TensorData};

use crate::distiller::DistillBatch;
use crate::error::Error;

/// Pixels per CIFAR image: 3 channels x 32 x 32, channel-first.
pub const PIXELS: usize = 3 * 32 * 32;

/// CIFAR-10 or CIFAR-100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarVariant {
    /// 10 classes; records are 1 label byte + 3072 pixel bytes.
    Cifar10,
    /// 100 fine classes; records are 1 coarse + 1 fine label byte + 3072 pixel bytes.
    Cifar100,
}

/// Training or test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarSplit {
    /// 50,000 training images.
    Train,
    /// 10,000 test images.
    Test,
}

impl CifarVariant {
    /// Number of classes.
    pub fn num_classes(self) -> usize {
        match self {
            CifarVariant::Cifar10 => 10,
            CifarVariant::Cifar100 => 100,
        }
    }

    /// Bytes per record.
    pub fn record_size(self) -> usize {
        match self {
            CifarVariant::Cifar10 => 1 + PIXELS,
            CifarVariant::Cifar100 => 2 + PIXELS,
        }
    }

    /// The files of a split in the official binary distribution.
    pub fn files(self, split: CifarSplit) -> Vec<&'static str> {
        match (self, split) {
            (CifarVariant::Cifar100, CifarSplit::Train) => vec!["train.bin"],
            (CifarVariant::Cifar100, CifarSplit::Test) => vec!["test.bin"],
            (CifarVariant::Cifar10, CifarSplit::Train) => vec![
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            (CifarVariant::Cifar10, CifarSplit::Test) => vec!["test_batch.bin"],
        }
    }

    fn download_hint(self) -> &'static str {
        match self {
            CifarVariant::Cifar10 => {
                "download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz and extract \
                 data_batch_1.bin .. data_batch_5.bin and test_batch.bin into this folder"
            }
            CifarVariant::Cifar100 => {
                "download https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz and extract \
                 train.bin and test.bin into this folder"
            }
        }
    }
}

/// CIFAR images and labels held in memory, as in the binary files.
///
/// `images` holds `len() * 3072` bytes, each image channel-first (1024 red, 1024 green,
/// 1024 blue bytes, rows top to bottom).
#[derive(Debug, Clone)]
pub struct CifarImages {
    /// Which CIFAR.
    pub variant: CifarVariant,
    /// Pixel bytes, `[N, 3, 32, 32]` row-major.
    pub images: Vec<u8>,
    /// Labels (fine labels for CIFAR-100), each `< num_classes`.
    pub labels: Vec<u8>,
}

/// One CIFAR image.
#[derive(Debug, Clone)]
pub struct CifarItem {
    /// 3072 pixel bytes, channel-first.
    pub image: Vec<u8>,
    /// Class label.
    pub label: u8,
}

impl CifarImages {
    /// Parses the records of one binary file held in `bytes`; `path` only names the file in
    /// errors.
    ///
    /// # Errors
    /// [`Error::TruncatedFile`] when the size is not a whole number of records (or 0), and
    /// [`Error::CorruptRecord`] when a label is out of range.
    pub fn parse(variant: CifarVariant, bytes: &[u8], path: &Path) -> crate::Result<Self> {
        let size = variant.record_size();
        if bytes.is_empty() || bytes.len() % size != 0 {
            return Err(Error::TruncatedFile {
                path: path.to_path_buf(),
                bytes: bytes.len(),
                record_size: size,
                record: bytes.len() / size,
            });
        }
        let n = bytes.len() / size;
        let mut images = Vec::with_capacity(n * PIXELS);
        let mut labels = Vec::with_capacity(n);
        for (record, chunk) in bytes.chunks_exact(size).enumerate() {
            let (label, pixels) = match variant {
                CifarVariant::Cifar10 => (chunk[0], &chunk[1..]),
                CifarVariant::Cifar100 => {
                    if chunk[0] >= 20 {
                        return Err(Error::CorruptRecord {
                            path: path.to_path_buf(),
                            record,
                            reason: format!("coarse label {} is not below 20", chunk[0]),
                        });
                    }
                    (chunk[1], &chunk[2..])
                }
            };
            if usize::from(label) >= variant.num_classes() {
                return Err(Error::CorruptRecord {
                    path: path.to_path_buf(),
                    record,
                    reason: format!("label {label} is not below {}", variant.num_classes()),
                });
            }
            labels.push(label);
            images.extend_from_slice(pixels);
        }
        Ok(Self {
            variant,
            images,
            labels,
        })
    }

    /// Loads a split from a folder holding the official binary files (`train.bin` /
    /// `test.bin` for CIFAR-100, `data_batch_*.bin` / `test_batch.bin` for CIFAR-10).
    ///
    /// # Errors
    /// [`Error::MissingData`] (saying where to get the files) when a file is missing,
    /// [`Error::Io`] when one cannot be read, and the errors of [`CifarImages::parse`].
    pub fn load(dir: &Path, variant: CifarVariant, split: CifarSplit) -> crate::Result<Self> {
        let mut all = Self {
            variant,
            images: Vec::new(),
            labels: Vec::new(),
        };
        for file in variant.files(split) {
            let path = dir.join(file);
            if !path.is_file() {
                return Err(Error::MissingData {
                    path,
                    hint: variant.download_hint().to_string(),
                });
            }
            let bytes = std::fs::read(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            let part = Self::parse(variant, &bytes, &path)?;
            all.images.extend(part.images);
            all.labels.extend(part.labels);
        }
        Ok(all)
    }

    /// Keeps the first `n` images (all when `n >= len()`).
    pub fn truncate(&mut self, n: usize) {
        if n < self.labels.len() {
            self.labels.truncate(n);
            self.images.truncate(n * PIXELS);
        }
    }

    /// The folder a user is expected to keep CIFAR files in when none is given:
    /// `$XDG_CACHE_HOME/burn-distill/<cifar-10|cifar-100>` (or `~/.cache/...`).
    pub fn default_dir(variant: CifarVariant) -> PathBuf {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("burn-distill").join(match variant {
            CifarVariant::Cifar10 => "cifar-10",
            CifarVariant::Cifar100 => "cifar-100",
        })
    }
}

impl Dataset<CifarItem> for CifarImages {
    fn get(&self, index: usize) -> Result<CifarItem, DatasetError> {
        let label = *self.labels.get(index).ok_or_else(|| {
            DatasetError::new(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "index {index} is out of range for {} images",
                    self.labels.len()
                ),
            ))
        })?;
        Ok(CifarItem {
            image: self.images[index * PIXELS..(index + 1) * PIXELS].to_vec(),
            label,
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// Per-channel mean and standard deviation of the CIFAR-100 training set (as used by
/// RepDistiller's data loaders).
pub const CIFAR100_MEAN: [f32; 3] = [0.5071, 0.4865, 0.4409];
/// See [`CIFAR100_MEAN`].
pub const CIFAR100_STD: [f32; 3] = [0.2673, 0.2564, 0.2762];
/// Per-channel mean and standard deviation of the CIFAR-10 training set.
pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// See [`CIFAR10_MEAN`].
pub const CIFAR10_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// Turns CIFAR items into normalised [`DistillBatch`]es, with the standard training
/// augmentation when enabled: random crop of 32 from the image zero-padded by 4, and a
/// horizontal flip with probability 1/2.
///
/// Augmentation is deterministic: the random numbers come from `seed` and a counter of
/// batches made so far, so the same seed and batch order give the same images.
#[derive(Debug)]
pub struct CifarBatcher {
    variant: CifarVariant,
    augment: bool,
    seed: u64,
    batches: AtomicU64,
}

impl CifarBatcher {
    /// A batcher for `variant`, augmenting when `augment` is true.
    pub fn new(variant: CifarVariant, augment: bool, seed: u64) -> Self {
        Self {
            variant,
            augment,
            seed,
            batches: AtomicU64::new(0),
        }
    }

    /// Sets the batch counter, e.g. to `epoch * batches_per_epoch` when resuming.
    pub fn set_batch_counter(&self, batches: u64) {
        self.batches.store(batches, Ordering::SeqCst);
    }
}

/// SplitMix64: a small, well-mixed generator for augmentation decisions.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Batcher<CifarItem, DistillBatch> for CifarBatcher {
    fn batch(&self, items: Vec<CifarItem>, device: &Device) -> DistillBatch {
        let (mean, std) = match self.variant {
            CifarVariant::Cifar10 => (CIFAR10_MEAN, CIFAR10_STD),
            CifarVariant::Cifar100 => (CIFAR100_MEAN, CIFAR100_STD),
        };
        let n = items.len();
        let batch_index = self.batches.fetch_add(1, Ordering::SeqCst);
        let mut rng = self.seed ^ batch_index.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut pixels = Vec::with_capacity(n * PIXELS);
        let mut labels = Vec::with_capacity(n);
        for item in &items {
            let (dy, dx, flip) = if self.augment {
                let r = splitmix(&mut rng);
                (
                    (r % 9) as isize - 4,
                    ((r >> 8) % 9) as isize - 4,
                    (r >> 16) & 1 == 1,
                )
            } else {
                (0, 0, false)
            };
            for c in 0..3 {
                for y in 0..32isize {
                    for x in 0..32isize {
                        let sx = if flip { 31 - x } else { x } + dx;
                        let sy = y + dy;
                        let value = if (0..32).contains(&sx) && (0..32).contains(&sy) {
                            f32::from(item.image[c * 1024 + (sy * 32 + sx) as usize]) / 255.0
                        } else {
                            0.0
                        };
                        // Zero padding is applied before normalisation, as torchvision does.
                        pixels.push((value - mean[c]) / std[c]);
                    }
                }
            }
            labels.push(i64::from(item.label));
        }
        DistillBatch {
            images: Tensor::from_data(TensorData::new(pixels, [n, 3, 32, 32]), device),
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }
}
