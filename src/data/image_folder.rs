//! CIFAR as PNG folders, the layout burn-dataset's `CifarDataset` downloads into its cache.

use std::path::{Path, PathBuf};

use super::cifar::CifarVariant;
use super::image::{ImageData, Split};
use crate::error::Error;

impl CifarVariant {
    /// The folder burn-dataset's `CifarDataset` downloads this data set into:
    /// `$XDG_CACHE_HOME/burn-dataset/<cifar10|cifar100>` (or `~/.cache/...`), holding
    /// `train/<class>/*.png` and `test/<class>/*.png`.
    pub fn burn_dataset_dir(self) -> PathBuf {
        cache_home().join("burn-dataset").join(match self {
            CifarVariant::Cifar10 => "cifar10",
            CifarVariant::Cifar100 => "cifar100",
        })
    }
}

pub(super) fn cache_home() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Loads a CIFAR split stored as one folder of 32x32 RGB PNG images per class:
/// `dir/train/<class>/*.png` or `dir/test/<class>/*.png` — the layout of burn-dataset's
/// `CifarDataset` cache ([`CifarVariant::burn_dataset_dir`]) and of torchvision-style image
/// folders. As in burn-dataset's `ImageFolderDataset`, class `i` is the `i`-th class folder
/// name in sorted order (for CIFAR this is the official label order); images are read in
/// sorted path order. PNGs may be RGB, RGBA (alpha dropped), grayscale (replicated) or
/// palette images, 8 bits per channel.
///
/// # Errors
/// [`Error::MissingData`] when the split folder is missing or holds no class folder,
/// [`Error::InvalidFormat`] when the number of class folders is not the variant's class
/// count, a file is not a readable PNG, or an image is not 32x32 (the error names the
/// file), and [`Error::Io`] when a folder or file cannot be read.
///
/// # Example
/// ```no_run
/// use burn_distill::data::{CifarVariant, Split, load_cifar_image_folder};
///
/// let dir = CifarVariant::Cifar100.burn_dataset_dir();
/// let test = load_cifar_image_folder(&dir, CifarVariant::Cifar100, Split::Test)?;
/// assert_eq!(test.num_classes, 100);
/// # Ok::<(), burn_distill::Error>(())
/// ```
pub fn load_cifar_image_folder(
    dir: &Path,
    variant: CifarVariant,
    split: Split,
) -> crate::Result<ImageData> {
    let root = dir.join(match split {
        Split::Train => "train",
        Split::Test => "test",
    });
    let missing = || Error::MissingData {
        path: root.clone(),
        hint: format!(
            "expected one folder of PNG images per class (burn-dataset's CifarDataset cache \
             layout, e.g. {}/train/apple/0001.png)",
            dir.display()
        ),
    };
    if !root.is_dir() {
        return Err(missing());
    }
    let classes = sorted_entries(&root, |p| p.is_dir())?;
    if classes.is_empty() {
        return Err(missing());
    }
    if classes.len() != variant.num_classes() {
        return Err(Error::InvalidFormat {
            path: root,
            reason: format!(
                "{} class folders, expected {} for {:?}",
                classes.len(),
                variant.num_classes(),
                variant
            ),
        });
    }
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let files = sorted_entries(class, |p| {
            p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"))
        })?;
        for file in files {
            decode_rgb32(&file, &mut images)?;
            labels.push(label as u8);
        }
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

/// Entries of `dir` that pass `keep`, sorted by path.
fn sorted_entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> crate::Result<Vec<PathBuf>> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if keep(&path) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Decodes a 32x32 PNG and appends its pixels, channel-first RGB, to `out`.
fn decode_rgb32(path: &Path, out: &mut Vec<u8>) -> crate::Result<()> {
    let invalid = |reason: String| Error::InvalidFormat {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    // Palette -> RGB, 16 bit -> 8 bit, low bit depths -> 8 bit.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| invalid(format!("not a readable PNG: {e}")))?;
    let (width, height) = {
        let info = reader.info();
        (info.width, info.height)
    };
    if (width, height) != (32, 32) {
        return Err(invalid(format!(
            "image is {width}x{height}, CIFAR images are 32x32"
        )));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| invalid("image too large".into()))?;
    let mut buffer = vec![0; size];
    let frame = reader
        .next_frame(&mut buffer)
        .map_err(|e| invalid(format!("corrupt PNG data: {e}")))?;
    let pixels = &buffer[..frame.buffer_size()];
    let per_pixel = match frame.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => {
            return Err(invalid("palette image was not expanded".into()));
        }
    };
    if pixels.len() != 32 * 32 * per_pixel {
        return Err(invalid(format!(
            "decoded {} bytes, expected {}",
            pixels.len(),
            32 * 32 * per_pixel
        )));
    }
    for channel in 0..3 {
        // Grayscale (with or without alpha) is replicated into the three channels.
        let source = if per_pixel < 3 { 0 } else { channel };
        out.extend(pixels.chunks_exact(per_pixel).map(|p| p[source]));
    }
    Ok(())
}

/// Where CIFAR data already is, without downloading: `data_dir` when given; else the official
/// binary files in [`CifarVariant::default_dir`]; else burn-dataset's PNG folders in
/// [`CifarVariant::burn_dataset_dir`]; else `None`.
fn find_cifar(variant: CifarVariant, data_dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = data_dir {
        return Some(dir.to_path_buf());
    }
    let binary = variant.default_dir();
    let folders = variant.burn_dataset_dir();
    if binary.join(variant.files(Split::Train)[0]).is_file() {
        Some(binary)
    } else if folders.join("train").is_dir() {
        Some(folders)
    } else {
        None
    }
}

/// A CIFAR split from `dir` in either layout: whichever of the split's official binary
/// files are there, plain or gzipped ([`load_cifar_present`](super::load_cifar_present)),
/// or, when none is and `dir/train` is a folder, PNG folders `dir/<train|test>/<class>/*.png`
/// ([`load_cifar_image_folder`]).
///
/// # Errors
/// As [`load_cifar_present`](super::load_cifar_present) or [`load_cifar_image_folder`].
pub(crate) fn load_cifar_any(
    dir: &Path,
    variant: CifarVariant,
    split: Split,
) -> crate::Result<ImageData> {
    let binary = variant
        .files(split)
        .iter()
        .any(|f| dir.join(f).is_file() || dir.join(format!("{f}.gz")).is_file());
    if !binary && dir.join("train").is_dir() {
        load_cifar_image_folder(dir, variant, split)
    } else {
        super::cifar::load_cifar_present(dir, variant, split)
    }
}

/// CIFAR data, from wherever it is: the one entry point to CIFAR data. Returns the folder it
/// found (or downloaded into), whose splits [`CifarFolder::load`] reads.
///
/// 1. `data_dir` when given, in whichever layout it holds: the official binary files
///    (whichever batches are present, plain or gzipped, see [`super::load_cifar_present`])
///    or PNG folders `train/<class>/*.png` ([`load_cifar_image_folder`]);
/// 2. else the data already in [`CifarVariant::default_dir`] (binary files) or in
///    burn-dataset's cache ([`CifarVariant::burn_dataset_dir`], PNG folders);
/// 3. else, with the `download` feature and `allow_download`, the official archive is
///    downloaded into [`CifarVariant::default_dir`], verified and extracted
///    (`download::fetch_cifar`, with a progress bar);
/// 4. else an [`Error::MissingData`] that says where to put which files.
///
/// # Errors
/// [`Error::MissingData`] as above, and the errors of the download.
///
/// # Example
/// ```
/// use burn_distill::data::{CifarVariant, Split, cifar};
///
/// let dir = std::env::temp_dir().join(format!("cifar-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let mut record = vec![7u8]; // label 7, then 3,072 pixels
/// record.extend(std::iter::repeat_n(0u8, 3072));
/// std::fs::write(dir.join("test_batch.bin"), &record).unwrap();
/// let found = cifar(CifarVariant::Cifar10, Some(&dir), false).unwrap();
/// assert_eq!(found.load(Split::Test).unwrap().labels, vec![7]);
/// // A folder without the split's files is a clear error, not an empty data set.
/// let err = found.load(Split::Train).unwrap_err();
/// assert!(err.to_string().contains("data_batch_1.bin"));
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
pub fn cifar(
    variant: CifarVariant,
    data_dir: Option<&Path>,
    allow_download: bool,
) -> crate::Result<CifarFolder> {
    let dir = match find_cifar(variant, data_dir) {
        Some(dir) => dir,
        None => fetch(variant, allow_download)?,
    };
    Ok(CifarFolder { variant, dir })
}

/// A folder of CIFAR data found by [`cifar`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarFolder {
    variant: CifarVariant,
    dir: PathBuf,
}

impl CifarFolder {
    /// Where the data is.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// CIFAR-10 or CIFAR-100.
    pub fn variant(&self) -> CifarVariant {
        self.variant
    }

    /// Reads one split, in whichever layout the folder holds.
    ///
    /// # Errors
    /// [`Error::MissingData`] when none of the split's files is there; the readers' errors
    /// ([`Error::TruncatedFile`], [`Error::CorruptRecord`], [`Error::InvalidFormat`],
    /// [`Error::Io`]) for bad files.
    pub fn load(&self, split: Split) -> crate::Result<ImageData> {
        load_cifar_any(&self.dir, self.variant, split)
    }
}

#[cfg(feature = "download")]
fn fetch(variant: CifarVariant, allow_download: bool) -> crate::Result<PathBuf> {
    if allow_download {
        crate::download::fetch_cifar(variant, &variant.default_dir(), true)
    } else {
        Err(not_found(variant, "downloads are off"))
    }
}

#[cfg(not(feature = "download"))]
fn fetch(variant: CifarVariant, _allow_download: bool) -> crate::Result<PathBuf> {
    Err(not_found(
        variant,
        "this build cannot download (enable burn-distill's `download` feature)",
    ))
}

fn not_found(variant: CifarVariant, why: &str) -> Error {
    let binary = variant.default_dir();
    let (name, png_archive) = match variant {
        CifarVariant::Cifar10 => (
            "CIFAR-10",
            "https://s3.amazonaws.com/fast-ai-sample/cifar10.tgz",
        ),
        CifarVariant::Cifar100 => (
            "CIFAR-100",
            "https://s3.amazonaws.com/fast-ai-imageclas/cifar100.tgz",
        ),
    };
    Error::MissingData {
        path: binary.join(variant.files(Split::Train)[0]),
        hint: format!(
            "no {name} data found ({why}). Put either\n  - the official binary files ({}) into \
             {},\n  - or the PNG folders burn-dataset's CifarDataset downloads ({png_archive}, \
             extracted so that {}/train/<class>/*.png exists),\nor pass the folder holding either",
            variant.download_hint(),
            binary.display(),
            variant.burn_dataset_dir().display()
        ),
    }
}
