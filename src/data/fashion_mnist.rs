use std::path::Path;

use super::image::{ImageData, Split};
use crate::error::Error;

/// Where Debian's `dataset-fashion-mnist` package installs the data.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// Mean pixel value of the Fashion-MNIST training set (scaled to [0, 1]).
pub const FASHION_MNIST_MEAN: [f32; 1] = [0.2860];
/// Standard deviation of the Fashion-MNIST training-set pixels.
pub const FASHION_MNIST_STD: [f32; 1] = [0.3530];

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
/// More images than any IDX file of this kind holds; guards allocations against corrupt
/// headers.
const MAX_ITEMS: usize = 10_000_000;

fn invalid(path: &Path, reason: String) -> Error {
    Error::InvalidFormat {
        path: path.to_path_buf(),
        reason,
    }
}

fn header(bytes: &[u8], words: usize, path: &Path) -> crate::Result<Vec<u32>> {
    if bytes.len() < 4 * words {
        return Err(invalid(
            path,
            format!(
                "{} bytes is too short for the {}-byte IDX header",
                bytes.len(),
                4 * words
            ),
        ));
    }
    Ok(bytes[..4 * words]
        .chunks_exact(4)
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .collect())
}

/// Parses an IDX image file (magic `0x00000803`, unsigned bytes, `[N, rows, cols]`).
///
/// # Errors
/// [`Error::InvalidFormat`] for a wrong magic number, a header larger than any real file or
/// a payload whose size does not match the header.
pub fn parse_idx_images(bytes: &[u8], path: &Path) -> crate::Result<(usize, usize, Vec<u8>)> {
    let h = header(bytes, 4, path)?;
    if h[0] != IMAGES_MAGIC {
        return Err(invalid(
            path,
            format!(
                "magic number {:#010x} is not {IMAGES_MAGIC:#010x} (IDX unsigned-byte images)",
                h[0]
            ),
        ));
    }
    let (n, rows, cols) = (h[1] as usize, h[2] as usize, h[3] as usize);
    if n > MAX_ITEMS || rows == 0 || cols == 0 || rows > 4096 || cols > 4096 {
        return Err(invalid(
            path,
            format!("implausible header: {n} images of {rows}x{cols}"),
        ));
    }
    let expected = n * rows * cols;
    let payload = &bytes[16..];
    if payload.len() != expected {
        return Err(invalid(
            path,
            format!(
                "header says {n} images of {rows}x{cols} ({expected} bytes) but the file holds {} bytes of pixels (truncated?)",
                payload.len()
            ),
        ));
    }
    Ok((rows, cols, payload.to_vec()))
}

/// Parses an IDX label file (magic `0x00000801`), checking every label is below
/// `num_classes`.
///
/// # Errors
/// [`Error::InvalidFormat`] for a wrong magic number or size, [`Error::CorruptRecord`] for
/// an out-of-range label.
pub fn parse_idx_labels(bytes: &[u8], num_classes: usize, path: &Path) -> crate::Result<Vec<u8>> {
    let h = header(bytes, 2, path)?;
    if h[0] != LABELS_MAGIC {
        return Err(invalid(
            path,
            format!(
                "magic number {:#010x} is not {LABELS_MAGIC:#010x} (IDX unsigned-byte labels)",
                h[0]
            ),
        ));
    }
    let n = h[1] as usize;
    let payload = &bytes[8..];
    if payload.len() != n {
        return Err(invalid(
            path,
            format!(
                "header says {n} labels but the file holds {} (truncated?)",
                payload.len()
            ),
        ));
    }
    if let Some((record, label)) = payload
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= num_classes)
    {
        return Err(Error::CorruptRecord {
            path: path.to_path_buf(),
            record,
            reason: format!("label {label} is not below {num_classes}"),
        });
    }
    Ok(payload.to_vec())
}

/// Reads `name` or `name.gz` from `dir`, or says where to get the Fashion-MNIST files.
fn read_maybe_gz(dir: &Path, name: &str) -> crate::Result<(Vec<u8>, std::path::PathBuf)> {
    super::read_plain_or_gz(dir, name)?.ok_or_else(|| Error::MissingData {
        path: dir.join(format!("{name}.gz")),
        hint: format!(
            "install Debian's dataset-fashion-mnist package (files in {FASHION_MNIST_DIR}) or put \
             the original {name}.gz files from https://github.com/zalandoresearch/fashion-mnist in this folder"
        ),
    })
}

/// Loads a Fashion-MNIST split (28x28 grayscale, 10 classes) from `dir`, which holds
/// `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
/// `t10k-labels-idx1-ubyte`, plain or with `.gz` (as Debian's `dataset-fashion-mnist`
/// ships them in [`FASHION_MNIST_DIR`]).
///
/// # Errors
/// [`Error::MissingData`], [`Error::Io`], [`Error::InvalidFormat`] (wrong magic number,
/// truncated file, corrupt gzip) and [`Error::CorruptRecord`] (label out of range, or
/// image and label counts that differ).
pub fn load_fashion_mnist(dir: &Path, split: Split) -> crate::Result<ImageData> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let (image_bytes, image_path) = read_maybe_gz(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let (label_bytes, label_path) = read_maybe_gz(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (height, width, images) = parse_idx_images(&image_bytes, &image_path)?;
    let labels = parse_idx_labels(&label_bytes, 10, &label_path)?;
    if labels.len() * height * width != images.len() {
        return Err(invalid(
            &label_path,
            format!(
                "{} labels for {} images in {}",
                labels.len(),
                images.len() / (height * width),
                image_path.display()
            ),
        ));
    }
    Ok(ImageData {
        channels: 1,
        height,
        width,
        num_classes: 10,
        images,
        labels,
    })
}
