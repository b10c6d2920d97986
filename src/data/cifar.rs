use std::path::{Path, PathBuf};

use super::image::{ImageData, Split};
use crate::error::Error;

/// Pixels per CIFAR image: 3 channels x 32 x 32, channel-first.
const PIXELS: usize = 3 * 32 * 32;

/// Per-channel mean of the CIFAR-100 training set (as in RepDistiller's data loaders).
pub const CIFAR100_MEAN: [f32; 3] = [0.5071, 0.4865, 0.4409];
/// Per-channel standard deviation of the CIFAR-100 training set.
pub const CIFAR100_STD: [f32; 3] = [0.2673, 0.2564, 0.2762];
/// Per-channel mean of the CIFAR-10 training set.
pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// Per-channel standard deviation of the CIFAR-10 training set.
pub const CIFAR10_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// CIFAR-10 or CIFAR-100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarVariant {
    /// 10 classes; records are 1 label byte + 3072 pixel bytes.
    Cifar10,
    /// 100 fine classes; records are 1 coarse + 1 fine label byte + 3072 pixel bytes.
    Cifar100,
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

    /// Per-channel mean and standard deviation of the training set.
    pub fn normalization(self) -> ([f32; 3], [f32; 3]) {
        match self {
            CifarVariant::Cifar10 => (CIFAR10_MEAN, CIFAR10_STD),
            CifarVariant::Cifar100 => (CIFAR100_MEAN, CIFAR100_STD),
        }
    }

    /// The files of a split in the official binary distribution.
    pub fn files(self, split: Split) -> Vec<&'static str> {
        match (self, split) {
            (CifarVariant::Cifar100, Split::Train) => vec!["train.bin"],
            (CifarVariant::Cifar100, Split::Test) => vec!["test.bin"],
            (CifarVariant::Cifar10, Split::Train) => vec![
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            (CifarVariant::Cifar10, Split::Test) => vec!["test_batch.bin"],
        }
    }

    /// The folder used when none is given: `$XDG_CACHE_HOME/burn-distill/<cifar-10|cifar-100>`
    /// (or `~/.cache/...`).
    pub fn default_dir(self) -> PathBuf {
        super::image_folder::cache_home()
            .join("burn-distill")
            .join(match self {
                CifarVariant::Cifar10 => "cifar-10",
                CifarVariant::Cifar100 => "cifar-100",
            })
    }

    /// The address of the official binary archive (University of Toronto).
    pub fn archive_url(self) -> &'static str {
        match self {
            CifarVariant::Cifar10 => "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            CifarVariant::Cifar100 => "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        }
    }

    pub(super) fn download_hint(self) -> String {
        format!(
            "download {} and extract {} into this folder",
            self.archive_url(),
            self.files(Split::Train)
                .into_iter()
                .chain(self.files(Split::Test))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Parses the records of one CIFAR binary file held in `bytes`; `path` only names the file
/// in errors.
///
/// # Errors
/// [`Error::TruncatedFile`] when the size is not a whole, non-zero number of records, and
/// [`Error::CorruptRecord`] when a label is out of range.
pub fn parse_cifar(variant: CifarVariant, bytes: &[u8], path: &Path) -> crate::Result<ImageData> {
    let size = variant.record_size();
    if bytes.is_empty() || !bytes.len().is_multiple_of(size) {
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
        let corrupt = |reason: String| Error::CorruptRecord {
            path: path.to_path_buf(),
            record,
            reason,
        };
        let (label, pixels) = match variant {
            CifarVariant::Cifar10 => (chunk[0], &chunk[1..]),
            CifarVariant::Cifar100 => {
                if chunk[0] >= 20 {
                    return Err(corrupt(format!(
                        "coarse label {} is not below 20",
                        chunk[0]
                    )));
                }
                (chunk[1], &chunk[2..])
            }
        };
        if usize::from(label) >= variant.num_classes() {
            return Err(corrupt(format!(
                "label {label} is not below {}",
                variant.num_classes()
            )));
        }
        labels.push(label);
        images.extend_from_slice(pixels);
    }
    Ok(ImageData {
        channels: 3,
        height: 32,
        width: 32,
        num_classes: variant.num_classes(),
        images,
        labels,
    })
}

/// Loads a CIFAR split from a folder holding the official binary files (`train.bin` /
/// `test.bin` for CIFAR-100, `data_batch_*.bin` / `test_batch.bin` for CIFAR-10).
///
/// # Errors
/// [`Error::MissingData`] (saying where to get the files) when a file is missing,
/// [`Error::Io`] when one cannot be read, and the errors of [`parse_cifar`].
pub fn load_cifar(dir: &Path, variant: CifarVariant, split: Split) -> crate::Result<ImageData> {
    let mut all: Option<ImageData> = None;
    for file in variant.files(split) {
        let path = dir.join(file);
        if !path.is_file() {
            return Err(Error::MissingData {
                path,
                hint: variant.download_hint(),
            });
        }
        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let part = parse_cifar(variant, &bytes, &path)?;
        match &mut all {
            Some(all) => all.append(part),
            None => all = Some(part),
        }
    }
    all.ok_or_else(|| Error::MissingData {
        path: dir.to_path_buf(),
        hint: variant.download_hint(),
    })
}

/// Loads whichever of a split's official binary files are in `dir`, each plain or gzipped
/// (`data_batch_1.bin` or `data_batch_1.bin.gz`), in the official order: for a partial copy
/// such as two of the five CIFAR-10 training batches. At least one file must be there.
///
/// # Errors
/// [`Error::MissingData`] when none of the split's files is there; [`Error::InvalidFormat`]
/// for a corrupt gzip stream; the errors of [`parse_cifar`] (a truncated file is
/// [`Error::TruncatedFile`]).
///
/// # Example
/// ```
/// use burn_distill::data::{CifarVariant, Split, load_cifar_present};
///
/// let dir = std::env::temp_dir().join(format!("cifar-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let mut record = vec![3u8]; // label 3, then 3,072 pixels
/// record.extend(std::iter::repeat_n(0u8, 3072));
/// std::fs::write(dir.join("data_batch_2.bin"), &record).unwrap();
/// let data = load_cifar_present(&dir, CifarVariant::Cifar10, Split::Train).unwrap();
/// assert_eq!(data.labels, vec![3]);
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
pub fn load_cifar_present(
    dir: &Path,
    variant: CifarVariant,
    split: Split,
) -> crate::Result<ImageData> {
    let mut all: Option<ImageData> = None;
    for file in variant.files(split) {
        let Some((bytes, path)) = super::read_plain_or_gz(dir, file)? else {
            continue;
        };
        let part = parse_cifar(variant, &bytes, &path)?;
        match &mut all {
            Some(all) => all.append(part),
            None => all = Some(part),
        }
    }
    all.ok_or_else(|| Error::MissingData {
        path: dir.join(variant.files(split)[0]),
        hint: format!(
            "none of {} (plain or .gz) is in this folder; {}",
            variant.files(split).join(", "),
            variant.download_hint()
        ),
    })
}
