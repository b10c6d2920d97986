//! Datasets (feature `vision`): CIFAR-10 / CIFAR-100 through one entry point, [`cifar`] (find,
//! else download, else a clear error; official binary format, plain or gzipped, or PNG folders
//! as burn-dataset's `CifarDataset` caches them) and Fashion-MNIST (IDX format, plain or gzipped), held in memory as [`ImageData`], and an [`ImageBatcher`] that
//! normalises and augments them into [`crate::DistillBatch`]es. [`ImageDataset`] names them
//! (files, normalisation, augmentation, a training / evaluation pair).

mod cifar;
mod dataset;
mod fashion_mnist;
mod image;
mod image_folder;
mod loader;

pub use cifar::{
    CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD, CifarVariant, load_cifar,
    load_cifar_present, parse_cifar,
};
pub use dataset::{DatasetFiles, ImageDataset};
pub use fashion_mnist::{
    FASHION_MNIST_DIR, FASHION_MNIST_MEAN, FASHION_MNIST_STD, load_fashion_mnist, parse_idx_images,
    parse_idx_labels,
};
pub use image::{Augmentation, ImageBatcher, ImageData, ImageItem, Split, shuffle};
pub use image_folder::{CifarFolder, cifar, load_cifar_image_folder};
pub use loader::EpochLoader;

/// Reads `dir/name`, or `dir/name.gz` decompressed (at most 256 MiB), or `None` when
/// neither exists.
///
/// # Errors
/// [`crate::Error::Io`] when a file cannot be read, [`crate::Error::InvalidFormat`] for a
/// corrupt or truncated gzip stream.
pub(crate) fn read_plain_or_gz(
    dir: &std::path::Path,
    name: &str,
) -> crate::Result<Option<(Vec<u8>, std::path::PathBuf)>> {
    use std::io::Read;
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| crate::Error::Io { path, source }
    };
    if plain.is_file() {
        return Ok(Some((std::fs::read(&plain).map_err(io(&plain))?, plain)));
    }
    if !gz.is_file() {
        return Ok(None);
    }
    let file = std::fs::File::open(&gz).map_err(io(&gz))?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .take(256 << 20)
        .read_to_end(&mut bytes)
        .map_err(|e| crate::Error::InvalidFormat {
            path: gz.clone(),
            reason: format!("not a valid gzip file: {e}"),
        })?;
    Ok(Some((bytes, gz)))
}
