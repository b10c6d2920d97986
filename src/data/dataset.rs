//! The image datasets by name: where their files are, their normalisation and training
//! augmentation, and a training / evaluation pair (the official test split, or a stratified
//! hold-out of the training images).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{
    Augmentation, CifarFolder, CifarVariant, FASHION_MNIST_DIR, FASHION_MNIST_MEAN,
    FASHION_MNIST_STD, ImageBatcher, ImageData, Split, cifar, load_fashion_mnist,
};

/// An image dataset the crate reads: `cifar100`, `cifar10` or `fashion-mnist`.
///
/// # Example
/// ```
/// use burn_distill::data::{ImageDataset, Split};
///
/// let dataset: ImageDataset = "fashion-mnist".parse().unwrap();
/// assert_eq!(dataset.augmentation().padding, 2);
/// assert_eq!(ImageDataset::Cifar100.to_string(), "cifar100");
/// // Files in a folder of one's own (or, for CIFAR, found in the caches or downloaded).
/// let dir = std::env::temp_dir().join(format!("no-data-{}", std::process::id()));
/// let err = dataset.open(Some(&dir), false).unwrap().load(Split::Train).unwrap_err();
/// assert!(err.to_string().contains("train-images-idx3-ubyte"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImageDataset {
    /// CIFAR-100 (100 classes, 32x32 colour).
    Cifar100,
    /// CIFAR-10 (10 classes, 32x32 colour).
    Cifar10,
    /// Fashion-MNIST (10 classes, 28x28 grayscale).
    FashionMnist,
}

impl ImageDataset {
    /// Every dataset, in the order of the names above.
    pub const ALL: [ImageDataset; 3] = [
        ImageDataset::Cifar100,
        ImageDataset::Cifar10,
        ImageDataset::FashionMnist,
    ];

    /// The lower-case name, as [`FromStr`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            ImageDataset::Cifar100 => "cifar100",
            ImageDataset::Cifar10 => "cifar10",
            ImageDataset::FashionMnist => "fashion-mnist",
        }
    }

    /// Per-channel mean and standard deviation of the training images.
    pub fn normalization(self) -> (Vec<f32>, Vec<f32>) {
        match self.cifar() {
            Some(variant) => {
                let (mean, std) = variant.normalization();
                (mean.to_vec(), std.to_vec())
            }
            None => (FASHION_MNIST_MEAN.to_vec(), FASHION_MNIST_STD.to_vec()),
        }
    }

    /// The training augmentation: CIFAR's standard recipe (4 pixels of padding, a random
    /// crop, random flips), and 2 pixels for Fashion-MNIST's 28x28 images.
    pub fn augmentation(self) -> Augmentation {
        let padding = if self.cifar().is_some() { 4 } else { 2 };
        Augmentation {
            padding,
            flip: true,
        }
    }

    /// A batcher for `data` (of this dataset) with its normalisation, augmented with
    /// [`ImageDataset::augmentation`] when `augment` is set, seeded by `seed`.
    pub fn batcher(self, data: &ImageData, augment: bool, seed: u64) -> ImageBatcher {
        let (mean, std) = self.normalization();
        let shape = [data.channels, data.height, data.width];
        ImageBatcher::new(
            shape,
            &mean,
            &std,
            augment.then(|| self.augmentation()),
            seed,
        )
    }

    /// Finds the files: in `data_dir` when given; otherwise CIFAR in its caches (downloaded
    /// there when `allow_download` is set and the `download` feature is on, see
    /// [`cifar`]) and Fashion-MNIST in [`FASHION_MNIST_DIR`] (Debian's
    /// `dataset-fashion-mnist`).
    ///
    /// # Errors
    /// For CIFAR, [`cifar`]'s: [`crate::Error::MissingData`] naming where to put the files,
    /// or a download error. Fashion-MNIST's files are looked for only when loaded.
    pub fn open(
        self,
        data_dir: Option<&Path>,
        allow_download: bool,
    ) -> crate::Result<DatasetFiles> {
        let files = match self.cifar() {
            Some(variant) => Files::Cifar(cifar(variant, data_dir, allow_download)?),
            None => Files::Idx(
                data_dir.map_or_else(|| PathBuf::from(FASHION_MNIST_DIR), Path::to_path_buf),
            ),
        };
        Ok(DatasetFiles { files })
    }

    fn cifar(self) -> Option<CifarVariant> {
        match self {
            ImageDataset::Cifar100 => Some(CifarVariant::Cifar100),
            ImageDataset::Cifar10 => Some(CifarVariant::Cifar10),
            ImageDataset::FashionMnist => None,
        }
    }
}

impl fmt::Display for ImageDataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ImageDataset {
    type Err = crate::Error;

    /// The name, case-insensitive.
    ///
    /// # Errors
    /// [`crate::Error::InvalidConfig`] naming the text and the known names.
    fn from_str(text: &str) -> crate::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| crate::Error::InvalidConfig {
                field: "dataset",
                value: text.to_string(),
                reason: "unknown dataset (cifar100, cifar10, fashion-mnist)",
            })
    }
}

#[derive(Debug, Clone)]
enum Files {
    Cifar(CifarFolder),
    Idx(PathBuf),
}

/// A dataset's files, found by [`ImageDataset::open`].
#[derive(Debug, Clone)]
pub struct DatasetFiles {
    files: Files,
}

impl DatasetFiles {
    /// The folder the files are in.
    pub fn path(&self) -> &Path {
        match &self.files {
            Files::Cifar(folder) => folder.path(),
            Files::Idx(dir) => dir,
        }
    }

    /// Reads one split.
    ///
    /// # Errors
    /// The readers' errors: [`crate::Error::MissingData`], [`crate::Error::TruncatedFile`],
    /// [`crate::Error::CorruptRecord`], [`crate::Error::InvalidFormat`],
    /// [`crate::Error::Io`].
    pub fn load(&self, split: Split) -> crate::Result<ImageData> {
        match &self.files {
            Files::Cifar(folder) => folder.load(split),
            Files::Idx(dir) => load_fashion_mnist(dir, split),
        }
    }

    /// The training images and the images to evaluate on: the official test split, or with
    /// `held_out = Some(n)` about `n` training images held out ([`ImageData::hold_out`],
    /// stratified and seeded by `seed`) and the rest for training. Every choice of
    /// hyper-parameters should be made on such a validation split, never on the test split.
    ///
    /// # Errors
    /// As [`DatasetFiles::load`], and [`ImageData::hold_out`]'s for `n` too large.
    pub fn train_eval(
        &self,
        held_out: Option<usize>,
        seed: u64,
    ) -> crate::Result<(ImageData, ImageData)> {
        match held_out {
            None => Ok((self.load(Split::Train)?, self.load(Split::Test)?)),
            Some(n) => self.load(Split::Train)?.hold_out(n, seed),
        }
    }
}
