//! CIFAR binary parsing, CIFAR PNG folders, loading errors and the batcher.

use std::path::{Path, PathBuf};

use crate::common::*;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn_distill::Error;
use burn_distill::data::{
    Augmentation, CIFAR100_MEAN, CIFAR100_STD, CifarVariant, ImageBatcher, Split, load_cifar,
    load_cifar_image_folder, load_fashion_mnist, parse_cifar, parse_idx_images, parse_idx_labels,
};

/// A CIFAR-100 record: coarse label, fine label, then pixel `i` of channel `c` = (c * 7 + i) % 251.
fn record100(coarse: u8, fine: u8) -> Vec<u8> {
    let mut r = vec![coarse, fine];
    for c in 0..3 {
        r.extend((0..1024).map(|i| ((c * 7 + i) % 251) as u8));
    }
    r
}

const AUG: Augmentation = Augmentation {
    padding: 4,
    flip: true,
};

fn temp_dir(name: &str) -> PathBuf {
    let dir = crate::common::temp_path("data", name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn parses_labels_and_channel_first_pixels() {
    let bytes = [record100(3, 42), record100(19, 99), record100(0, 0)].concat();
    let data = parse_cifar(CifarVariant::Cifar100, &bytes, Path::new("train.bin")).unwrap();
    assert_eq!(data.labels, vec![42, 99, 0]);
    assert_eq!(data.len(), 3);
    let item = data.get(1).unwrap();
    assert_eq!(item.label, 99);
    // Green channel (c = 1), row 2, column 5 -> index 1024 + 2 * 32 + 5.
    assert_eq!(item.image[1024 + 69], 7 + 69);
    assert!(data.get(3).unwrap_err().to_string().contains("index 3"));

    let mut ten = vec![7u8];
    ten.extend(vec![200u8; 3072]);
    let data = parse_cifar(CifarVariant::Cifar10, &ten, Path::new("data_batch_1.bin")).unwrap();
    assert_eq!(data.labels, vec![7]);
}

#[test]
fn truncated_and_corrupt_files_name_the_file_and_record() {
    let mut bytes = [record100(1, 1), record100(1, 2)].concat();
    bytes.truncate(bytes.len() - 10);
    let err = parse_cifar(CifarVariant::Cifar100, &bytes, Path::new("/x/train.bin")).unwrap_err();
    assert!(
        matches!(err, Error::TruncatedFile { record: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("/x/train.bin") && err.to_string().contains("record 1"),
        "{err}"
    );
    let err = parse_cifar(CifarVariant::Cifar100, &[], Path::new("empty.bin")).unwrap_err();
    assert!(matches!(err, Error::TruncatedFile { .. }), "{err}");

    let bytes = [record100(1, 1), record100(1, 100)].concat();
    let err = parse_cifar(CifarVariant::Cifar100, &bytes, Path::new("train.bin")).unwrap_err();
    assert!(
        err.to_string().contains("record 1") && err.to_string().contains("label 100"),
        "{err}"
    );
    let bytes = record100(20, 1);
    let err = parse_cifar(CifarVariant::Cifar100, &bytes, Path::new("train.bin")).unwrap_err();
    assert!(err.to_string().contains("coarse label 20"), "{err}");
    let mut ten = vec![10u8];
    ten.extend(vec![0u8; 3072]);
    let err = parse_cifar(CifarVariant::Cifar10, &ten, Path::new("test_batch.bin")).unwrap_err();
    assert!(
        err.to_string().contains("label 10 is not below 10"),
        "{err}"
    );
}

/// Writes a PNG of `width x height` pixels of `color` type with 8-bit samples `data`.
fn write_png(path: &Path, width: u32, height: u32, color: png::ColorType, data: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .unwrap()
        .write_image_data(data)
        .unwrap();
}

/// Interleaved RGB pixels where pixel `i` is `(i % 256, 100, 255 - i % 256)`.
fn rgb_pixels() -> Vec<u8> {
    (0..1024usize)
        .flat_map(|i| [(i % 256) as u8, 100, 255 - (i % 256) as u8])
        .collect()
}

#[test]
fn cifar_png_folders_in_burn_dataset_layout() {
    let dir = temp_dir("png");
    // CIFAR-10 class folders in the official (alphabetical) order; created out of order.
    let classes = [
        "truck",
        "airplane",
        "ship",
        "automobile",
        "horse",
        "bird",
        "frog",
        "cat",
        "dog",
        "deer",
    ];
    for class in classes {
        std::fs::create_dir_all(dir.join("train").join(class)).unwrap();
    }
    write_png(
        &dir.join("train/bird/b.png"),
        32,
        32,
        png::ColorType::Rgb,
        &rgb_pixels(),
    );
    write_png(
        &dir.join("train/bird/a.png"),
        32,
        32,
        png::ColorType::Grayscale,
        &[7; 1024],
    );
    let rgba: Vec<u8> = rgb_pixels()
        .chunks(3)
        .flat_map(|p| [p[0], p[1], p[2], 9])
        .collect();
    write_png(
        &dir.join("train/truck/x.PNG"),
        32,
        32,
        png::ColorType::Rgba,
        &rgba,
    );
    std::fs::write(dir.join("train/truck/notes.txt"), "not an image").unwrap();

    let data = load_cifar_image_folder(&dir, CifarVariant::Cifar10, Split::Train).unwrap();
    // bird is class 2, truck class 9; a.png before b.png; the .txt file is skipped.
    assert_eq!(data.labels, vec![2, 2, 9]);
    assert_eq!(
        (data.channels, data.height, data.width, data.num_classes),
        (3, 32, 32, 10)
    );
    // Grayscale replicated into three channels.
    assert!(data.images[..3072].iter().all(|&v| v == 7));
    // Channel-first: the red plane, then green, then blue; alpha dropped.
    for image in [&data.images[3072..6144], &data.images[6144..]] {
        assert_eq!(&image[..4], &[0, 1, 2, 3]);
        assert_eq!(image[300], 44); // 300 % 256
        assert!(image[1024..2048].iter().all(|&v| v == 100));
        assert_eq!(&image[2048..2051], &[255, 254, 253]);
    }

    // Errors: missing split folder, wrong class count, corrupt file, wrong size.
    let err = load_cifar_image_folder(&dir, CifarVariant::Cifar10, Split::Test).unwrap_err();
    assert!(matches!(err, Error::MissingData { .. }), "{err}");
    assert!(err.to_string().contains("test"), "{err}");
    let err = load_cifar_image_folder(&dir, CifarVariant::Cifar100, Split::Train).unwrap_err();
    assert!(
        err.to_string().contains("10 class folders, expected 100"),
        "{err}"
    );
    std::fs::write(dir.join("train/cat/broken.png"), b"\x89PNG\r\n\x1a\nshort").unwrap();
    let err = load_cifar_image_folder(&dir, CifarVariant::Cifar10, Split::Train).unwrap_err();
    assert!(matches!(err, Error::InvalidFormat { .. }), "{err}");
    assert!(err.to_string().contains("broken.png"), "{err}");
    std::fs::remove_file(dir.join("train/cat/broken.png")).unwrap();
    write_png(
        &dir.join("train/cat/big.png"),
        64,
        32,
        png::ColorType::Grayscale,
        &[0; 2048],
    );
    let err = load_cifar_image_folder(&dir, CifarVariant::Cifar10, Split::Train).unwrap_err();
    assert!(
        err.to_string().contains("big.png") && err.to_string().contains("64x32"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn loading_a_folder_and_missing_files() {
    let dir = temp_dir("load");
    let err = load_cifar(&dir, CifarVariant::Cifar100, Split::Train).unwrap_err();
    assert!(matches!(err, Error::MissingData { .. }), "{err}");
    assert!(
        err.to_string().contains("train.bin") && err.to_string().contains("cifar-100-binary"),
        "{err}"
    );

    std::fs::write(
        dir.join("train.bin"),
        [record100(0, 5), record100(0, 6)].concat(),
    )
    .unwrap();
    std::fs::write(dir.join("test.bin"), record100(0, 7)).unwrap();
    let mut train = load_cifar(&dir, CifarVariant::Cifar100, Split::Train).unwrap();
    assert_eq!(train.labels, vec![5, 6]);
    train.truncate(1);
    assert_eq!((train.len(), train.images.len()), (1, 3072));
    let test = load_cifar(&dir, CifarVariant::Cifar100, Split::Test).unwrap();
    assert_eq!(test.labels, vec![7]);

    // CIFAR-10 reads all five training batches in order.
    for b in 1..=5u8 {
        let mut rec = vec![b];
        rec.extend(vec![b; 3072]);
        std::fs::write(dir.join(format!("data_batch_{b}.bin")), rec).unwrap();
    }
    let ten = load_cifar(&dir, CifarVariant::Cifar10, Split::Train).unwrap();
    assert_eq!(ten.labels, vec![1, 2, 3, 4, 5]);
    let err = load_cifar(&dir, CifarVariant::Cifar10, Split::Test).unwrap_err();
    assert!(err.to_string().contains("test_batch.bin"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn batcher_normalises_and_augments_deterministically() {
    let device = cpu_devices().remove(0).1;
    let data = parse_cifar(
        CifarVariant::Cifar100,
        &[record100(0, 3), record100(0, 4)].concat(),
        Path::new("t"),
    )
    .unwrap();
    let items = vec![data.get(0).unwrap(), data.get(1).unwrap()];

    let plain = ImageBatcher::new([3, 32, 32], &CIFAR100_MEAN, &CIFAR100_STD, None, 0)
        .batch(items.clone(), &device);
    assert_eq!(plain.inputs.dims(), [2, 3, 32, 32]);
    let labels: Vec<i64> = plain
        .labels
        .to_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    assert_eq!(labels, vec![3, 4]);
    let px = floats(&plain.inputs);
    // Red channel, pixel 0: byte 0 -> (0 / 255 - 0.5071) / 0.2673.
    assert_close("pixel", "cpu", &px[..1], &[(0.0 - 0.5071) / 0.2673], 1e-5);
    // Blue channel, pixel 10: byte (14 + 10) % 251 = 24.
    assert_close(
        "pixel",
        "cpu",
        &px[2048 + 10..2048 + 11],
        &[(24.0 / 255.0 - 0.4409) / 0.2762],
        1e-5,
    );

    let a = ImageBatcher::new([3, 32, 32], &CIFAR100_MEAN, &CIFAR100_STD, Some(AUG), 9);
    let b = ImageBatcher::new([3, 32, 32], &CIFAR100_MEAN, &CIFAR100_STD, Some(AUG), 9);
    let first = floats(&a.batch(items.clone(), &device).inputs);
    assert_eq!(
        first,
        floats(&b.batch(items.clone(), &device).inputs),
        "same seed, same batch"
    );
    let second = floats(&a.batch(items.clone(), &device).inputs);
    assert_ne!(first, second, "the next batch draws new crops");
    b.set_batch_counter(1);
    assert_eq!(
        second,
        floats(&b.batch(items, &device).inputs),
        "the counter restores the stream"
    );
}

fn idx_images(n: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for word in [0x0803u32, n, rows, cols] {
        bytes.extend(word.to_be_bytes());
    }
    bytes.extend_from_slice(pixels);
    bytes
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for word in [0x0801u32, labels.len() as u32] {
        bytes.extend(word.to_be_bytes());
    }
    bytes.extend_from_slice(labels);
    bytes
}

#[test]
fn idx_parsing_and_its_errors() {
    let pixels: Vec<u8> = (0..2 * 3 * 2).map(|v| v as u8).collect();
    let (rows, cols, parsed) =
        parse_idx_images(&idx_images(2, 3, 2, &pixels), Path::new("i")).unwrap();
    assert_eq!((rows, cols, parsed), (3, 2, pixels.clone()));
    assert_eq!(
        parse_idx_labels(&idx_labels(&[3, 9]), 10, Path::new("l")).unwrap(),
        vec![3, 9]
    );

    let err = |e: Error| e.to_string();
    let mut wrong_magic = idx_images(2, 3, 2, &pixels);
    wrong_magic[3] = 0x01;
    assert!(
        err(parse_idx_images(&wrong_magic, Path::new("x.idx")).unwrap_err())
            .contains("magic number 0x00000801")
    );
    let truncated = &idx_images(2, 3, 2, &pixels)[..20];
    let e = err(parse_idx_images(truncated, Path::new("x.idx")).unwrap_err());
    assert!(e.contains("x.idx") && e.contains("truncated"), "{e}");
    assert!(err(parse_idx_images(&[0, 0], Path::new("x")).unwrap_err()).contains("too short"));
    // A header claiming billions of images is rejected before anything is allocated.
    let e = err(parse_idx_images(&idx_images(u32::MAX, 28, 28, &[]), Path::new("x")).unwrap_err());
    assert!(e.contains("implausible"), "{e}");
    let e = err(parse_idx_labels(&idx_labels(&[1, 10]), 10, Path::new("l")).unwrap_err());
    assert!(e.contains("record 1") && e.contains("label 10"), "{e}");
    let mut short = idx_labels(&[1, 2, 3]);
    short.pop();
    assert!(err(parse_idx_labels(&short, 10, Path::new("l")).unwrap_err()).contains("3 labels"));
}

#[test]
fn fashion_mnist_folder_plain_and_gzip() {
    use std::io::Write;
    let dir = temp_dir("fmnist");
    let err = load_fashion_mnist(&dir, Split::Test).unwrap_err();
    assert!(
        matches!(err, Error::MissingData { .. })
            && err.to_string().contains("dataset-fashion-mnist"),
        "{err}"
    );

    let pixels = vec![7u8; 2 * 28 * 28];
    std::fs::write(
        dir.join("t10k-images-idx3-ubyte"),
        idx_images(2, 28, 28, &pixels),
    )
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&idx_labels(&[4, 5])).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), gz.finish().unwrap()).unwrap();
    let data = load_fashion_mnist(&dir, Split::Test).unwrap();
    assert_eq!(
        (data.channels, data.height, data.width, data.num_classes),
        (1, 28, 28, 10)
    );
    assert_eq!(data.labels, vec![4, 5]);

    // A corrupt gzip file is an error naming it.
    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), b"not gzip at all").unwrap();
    let err = load_fashion_mnist(&dir, Split::Test).unwrap_err();
    assert!(
        err.to_string().contains("t10k-labels-idx1-ubyte.gz"),
        "{err}"
    );
    // Image and label counts that differ.
    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx_labels(&[1])).unwrap();
    let err = load_fashion_mnist(&dir, Split::Test).unwrap_err();
    assert!(err.to_string().contains("1 labels for 2 images"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The real data from Debian's `dataset-fashion-mnist`, when installed (CI installs it).
#[test]
fn debian_fashion_mnist_loads_when_installed() {
    let dir = Path::new(burn_distill::data::FASHION_MNIST_DIR);
    if !dir.join("t10k-labels-idx1-ubyte.gz").is_file() {
        eprintln!("skipped: {} not installed", dir.display());
        return;
    }
    let test = load_fashion_mnist(dir, Split::Test).unwrap();
    assert_eq!(test.labels.len(), 10_000);
    // Fashion-MNIST's test set is balanced: 1,000 images per class.
    let mut counts = [0usize; 10];
    for l in &test.labels {
        counts[*l as usize] += 1;
    }
    assert_eq!(counts, [1000; 10]);
    let train = load_fashion_mnist(dir, Split::Train).unwrap();
    assert_eq!(
        (train.labels.len(), train.images.len()),
        (60_000, 60_000 * 784)
    );
}

/// `n` CIFAR-10 records with labels `first, first+1, …` (mod 10) and pixels equal to the
/// record's index.
fn cifar10_records(first: u8, n: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..n {
        bytes.push((first as usize + i) as u8 % 10);
        bytes.extend(std::iter::repeat_n(i as u8, 3072));
    }
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn present_cifar_batches_load_plain_or_gzipped_in_order() {
    use burn_distill::data::{CifarVariant, Split, load_cifar_present};
    let dir = crate::common::temp_path("data", "present");
    std::fs::create_dir_all(&dir).unwrap();
    // Batches 4 (plain) and 2 (gzip) of five: read in the official order, 2 then 4.
    std::fs::write(dir.join("data_batch_4.bin"), cifar10_records(7, 2)).unwrap();
    std::fs::write(
        dir.join("data_batch_2.bin.gz"),
        gzip(&cifar10_records(0, 3)),
    )
    .unwrap();
    let data = load_cifar_present(&dir, CifarVariant::Cifar10, Split::Train).unwrap();
    assert_eq!(data.labels, vec![0, 1, 2, 7, 8]);
    assert_eq!(data.images.len(), 5 * 3072);
    assert_eq!(
        data.images[3 * 3072],
        0,
        "the plain batch's first image follows the gzip batch"
    );

    // No test batch at all: a missing-data error naming the file.
    let err = load_cifar_present(&dir, CifarVariant::Cifar10, Split::Test).unwrap_err();
    assert!(err.to_string().contains("test_batch.bin"), "{err}");

    // A gzip file whose content is truncated mid-record, and a cut-off gzip stream.
    std::fs::write(
        dir.join("data_batch_1.bin.gz"),
        gzip(&cifar10_records(0, 2)[..5000]),
    )
    .unwrap();
    let err = load_cifar_present(&dir, CifarVariant::Cifar10, Split::Train).unwrap_err();
    assert!(
        matches!(err, burn_distill::Error::TruncatedFile { .. }),
        "{err}"
    );
    let whole = gzip(&cifar10_records(0, 2));
    std::fs::write(dir.join("data_batch_1.bin.gz"), &whole[..whole.len() / 2]).unwrap();
    let err = load_cifar_present(&dir, CifarVariant::Cifar10, Split::Train).unwrap_err();
    assert!(err.to_string().contains("gzip"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn stratified_split_is_per_class_disjoint_complete_and_seeded() {
    use burn_distill::data::ImageData;
    // 3 classes of 10, 20 and 1 images; image i is the single byte i.
    let labels: Vec<u8> = (0..31u8)
        .map(|i| {
            if i < 10 {
                0
            } else if i < 30 {
                1
            } else {
                2
            }
        })
        .collect();
    let data = ImageData {
        channels: 1,
        height: 1,
        width: 1,
        num_classes: 3,
        images: (0..31u8).collect(),
        labels,
    };
    let (rest, held) = data.stratified_split(0.25, 5);
    let count = |d: &ImageData, c: u8| d.labels.iter().filter(|l| **l == c).count();
    // round(0.25 · 10) = 3 (2.5 rounds away from zero), round(0.25 · 20) = 5, a class of one stays.
    assert_eq!(
        (count(&held, 0), count(&held, 1), count(&held, 2)),
        (3, 5, 0)
    );
    let mut all: Vec<u8> = rest.images.iter().chain(&held.images).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..31u8).collect::<Vec<_>>(), "disjoint and complete");
    for part in [&rest, &held] {
        // Labels still belong to their images, and the original order is kept.
        for (image, label) in part.images.iter().zip(&part.labels) {
            assert_eq!(*label, data.labels[*image as usize]);
        }
        assert!(part.images.windows(2).all(|w| w[0] < w[1]));
    }
    let (_, again) = data.stratified_split(0.25, 5);
    assert_eq!(again.images, held.images, "same seed, same split");
    let (_, other) = data.stratified_split(0.25, 6);
    assert_ne!(other.images, held.images, "another seed, another split");
    let (rest, none) = data.stratified_split(0.0, 5);
    assert_eq!((rest.labels.len(), none.labels.len()), (31, 0));
}

/// The shared real images (`../shared/data/cifar10-jpeg`, two gzipped CIFAR-10 training
/// batches): 20,000 images, every class present, and a 10 % validation split of them.
#[test]
fn shared_cifar10_batches_load_and_split() {
    use burn_distill::data::{CifarVariant, Split, load_cifar_present};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cifar10-jpeg");
    if !dir.join("data_batch_1.bin.gz").is_file() {
        eprintln!("skipped: {} is not here", dir.display());
        return;
    }
    let data = load_cifar_present(&dir, CifarVariant::Cifar10, Split::Train).unwrap();
    assert_eq!(data.labels.len(), 20_000);
    let per_class: Vec<usize> = (0..10u8)
        .map(|c| data.labels.iter().filter(|l| **l == c).count())
        .collect();
    assert!(
        per_class.iter().all(|n| (1_800..=2_200).contains(n)),
        "{per_class:?}"
    );
    let (train, valid) = data.stratified_split(0.1, 2026);
    assert_eq!(train.labels.len() + valid.labels.len(), 20_000);
    for c in 0..10u8 {
        let held = valid.labels.iter().filter(|l| **l == c).count();
        assert_eq!(held, (per_class[c as usize] as f64 * 0.1).round() as usize);
    }
}
