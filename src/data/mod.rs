//! Datasets: CIFAR-10 / CIFAR-100 (official binary format, or PNG folders as burn-dataset's
//! `CifarDataset` caches them) and Fashion-MNIST (IDX format, plain or gzipped), held in memory as [`ImageData`], and an [`ImageBatcher`] that
//! normalises and augments them into [`crate::DistillBatch`]es.

mod cifar;
mod fashion_mnist;
mod image;
mod image_folder;

pub use cifar::{
    CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD, CifarVariant, load_cifar, parse_cifar,
};
pub use fashion_mnist::{
    FASHION_MNIST_DIR, FASHION_MNIST_MEAN, FASHION_MNIST_STD, load_fashion_mnist, parse_idx_images,
    parse_idx_labels,
};
pub use image::{Augmentation, ImageBatcher, ImageData, ImageItem, Split};
pub use image_folder::{find_cifar, load_cifar_any, load_cifar_image_folder};
