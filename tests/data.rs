//! CIFAR binary parsing, loading errors and the batcher.
mod common;

use std::path::{Path, PathBuf};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn_distill::Error;
use burn_distill::data::{CifarBatcher, CifarImages, CifarSplit, CifarVariant};
use common::*;

/// A CIFAR-100 record: coarse label, fine label, then pixel `i` of channel `c` = (c * 7 + i) % 251.
fn record100(coarse: u8, fine: u8) -> Vec<u8> {
    let mut r = vec![coarse, fine];
    for c in 0..3 {
        r.extend((0..1024).map(|i| ((c * 7 + i) % 251) as u8));
    }
    r
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("burn-distill-data-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn parses_labels_and_channel_first_pixels() {
    let bytes = [record100(3, 42), record100(19, 99), record100(0, 0)].concat();
    let data = CifarImages::parse(CifarVariant::Cifar100, &bytes, Path::new("train.bin")).unwrap();
    assert_eq!(data.labels, vec![42, 99, 0]);
    assert_eq!(data.len(), 3);
    let item = data.get(1).unwrap();
    assert_eq!(item.label, 99);
    // Green channel (c = 1), row 2, column 5 -> index 1024 + 2 * 32 + 5.
    assert_eq!(item.image[1024 + 69], ((7 + 69) % 251) as u8);
    assert!(data.get(3).unwrap_err().to_string().contains("index 3"));

    let mut ten = vec![7u8];
    ten.extend(vec![200u8; 3072]);
    let data =
        CifarImages::parse(CifarVariant::Cifar10, &ten, Path::new("data_batch_1.bin")).unwrap();
    assert_eq!(data.labels, vec![7]);
}

#[test]
fn truncated_and_corrupt_files_name_the_file_and_record() {
    let mut bytes = [record100(1, 1), record100(1, 2)].concat();
    bytes.truncate(bytes.len() - 10);
    let err =
        CifarImages::parse(CifarVariant::Cifar100, &bytes, Path::new("/x/train.bin")).unwrap_err();
    assert!(
        matches!(err, Error::TruncatedFile { record: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("/x/train.bin") && err.to_string().contains("record 1"),
        "{err}"
    );
    let err = CifarImages::parse(CifarVariant::Cifar100, &[], Path::new("empty.bin")).unwrap_err();
    assert!(matches!(err, Error::TruncatedFile { .. }), "{err}");

    let bytes = [record100(1, 1), record100(1, 100)].concat();
    let err =
        CifarImages::parse(CifarVariant::Cifar100, &bytes, Path::new("train.bin")).unwrap_err();
    assert!(
        err.to_string().contains("record 1") && err.to_string().contains("label 100"),
        "{err}"
    );
    let bytes = record100(20, 1);
    let err =
        CifarImages::parse(CifarVariant::Cifar100, &bytes, Path::new("train.bin")).unwrap_err();
    assert!(err.to_string().contains("coarse label 20"), "{err}");
    let mut ten = vec![10u8];
    ten.extend(vec![0u8; 3072]);
    let err =
        CifarImages::parse(CifarVariant::Cifar10, &ten, Path::new("test_batch.bin")).unwrap_err();
    assert!(
        err.to_string().contains("label 10 is not below 10"),
        "{err}"
    );
}

#[test]
fn loading_a_folder_and_missing_files() {
    let dir = temp_dir("load");
    let err = CifarImages::load(&dir, CifarVariant::Cifar100, CifarSplit::Train).unwrap_err();
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
    let mut train = CifarImages::load(&dir, CifarVariant::Cifar100, CifarSplit::Train).unwrap();
    assert_eq!(train.labels, vec![5, 6]);
    train.truncate(1);
    assert_eq!((train.len(), train.images.len()), (1, 3072));
    let test = CifarImages::load(&dir, CifarVariant::Cifar100, CifarSplit::Test).unwrap();
    assert_eq!(test.labels, vec![7]);

    // CIFAR-10 reads all five training batches in order.
    for b in 1..=5u8 {
        let mut rec = vec![b];
        rec.extend(vec![b; 3072]);
        std::fs::write(dir.join(format!("data_batch_{b}.bin")), rec).unwrap();
    }
    let ten = CifarImages::load(&dir, CifarVariant::Cifar10, CifarSplit::Train).unwrap();
    assert_eq!(ten.labels, vec![1, 2, 3, 4, 5]);
    let err = CifarImages::load(&dir, CifarVariant::Cifar10, CifarSplit::Test).unwrap_err();
    assert!(err.to_string().contains("test_batch.bin"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn batcher_normalises_and_augments_deterministically() {
    let device = cpu_devices().remove(0).1;
    let data = CifarImages::parse(
        CifarVariant::Cifar100,
        &[record100(0, 3), record100(0, 4)].concat(),
        Path::new("t"),
    )
    .unwrap();
    let items = vec![data.get(0).unwrap(), data.get(1).unwrap()];

    let plain = CifarBatcher::new(CifarVariant::Cifar100, false, 0).batch(items.clone(), &device);
    assert_eq!(plain.images.dims(), [2, 3, 32, 32]);
    let labels: Vec<i64> = plain
        .labels
        .to_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    assert_eq!(labels, vec![3, 4]);
    let px = floats(&plain.images);
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

    let a = CifarBatcher::new(CifarVariant::Cifar100, true, 9);
    let b = CifarBatcher::new(CifarVariant::Cifar100, true, 9);
    let first = floats(&a.batch(items.clone(), &device).images);
    assert_eq!(
        first,
        floats(&b.batch(items.clone(), &device).images),
        "same seed, same batch"
    );
    let second = floats(&a.batch(items.clone(), &device).images);
    assert_ne!(first, second, "the next batch draws new crops");
    b.set_batch_counter(1);
    assert_eq!(
        second,
        floats(&b.batch(items, &device).images),
        "the counter restores the stream"
    );
}
