//! Verified downloads (feature `download`) against an HTTP server the test starts on
//! 127.0.0.1, serving a generated archive in the official CIFAR-100 layout. The real URL is
//! never contacted.
#![cfg(feature = "download")]

use crate::common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::common::http::{Reply, Server};

use burn_distill::Error;
use burn_distill::data::{CifarVariant, Split, load_cifar};
use burn_distill::download::{RemoteArchive, download, fetch_cifar, fetch_cifar_from};

/// A CIFAR-100 binary archive like the official one: `cifar-100-binary/` with `train.bin`
/// (3 records), `test.bin` (2 records) and the label-name files.
fn archive_bytes() -> Vec<u8> {
    let record = |label: u8| {
        let mut r = vec![label / 5, label];
        r.extend(std::iter::repeat_n(label.wrapping_mul(17), 3072));
        r
    };
    let train: Vec<u8> = [3u8, 42, 99].iter().flat_map(|l| record(*l)).collect();
    let test: Vec<u8> = [0u8, 7].iter().flat_map(|l| record(*l)).collect();
    common::http::tar_gz(&[
        ("cifar-100-binary/train.bin", train),
        ("cifar-100-binary/test.bin", test),
        ("cifar-100-binary/fine_label_names.txt", b"apple\n".to_vec()),
    ])
}

fn temp(name: &str) -> PathBuf {
    crate::common::temp_path("download", name)
}

fn archive_for(server: &Server, bytes: &[u8]) -> RemoteArchive {
    RemoteArchive {
        url: server.url.clone(),
        size: bytes.len() as u64,
        md5: common::http::md5_hex(bytes),
    }
}

/// Files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn downloads_verifies_extracts_then_uses_the_cache_without_a_server() {
    let bytes = archive_bytes();
    let server = Server::start(vec![Reply::Body(bytes.clone())]);
    let archive = archive_for(&server, &bytes);
    let dir = temp("success");
    let got = fetch_cifar_from(CifarVariant::Cifar100, &archive, &dir, true).unwrap();
    assert_eq!(got, dir);
    // Extracted, archive deleted, no temporary file left.
    assert_eq!(listing(&dir), vec!["test.bin", "train.bin"]);
    let train = load_cifar(&dir, CifarVariant::Cifar100, Split::Train).unwrap();
    assert_eq!(train.labels, vec![3, 42, 99]);
    assert_eq!(server.requests(), 1);

    // Second run: the files are there; an unreachable URL proves no request is made.
    let offline = RemoteArchive {
        url: "http://127.0.0.1:9/never".into(),
        ..archive.clone()
    };
    fetch_cifar_from(CifarVariant::Cifar100, &offline, &dir, true).unwrap();
    assert_eq!(server.requests(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_verified_file_is_not_downloaded_again() {
    let bytes = archive_bytes();
    let server = Server::start(vec![Reply::Body(bytes.clone())]);
    let archive = archive_for(&server, &bytes);
    let dir = temp("cached-file");
    let dest = dir.join("a.tar.gz");
    download(&archive, &dest).unwrap();
    download(&archive, &dest).unwrap();
    assert_eq!(server.requests(), 1);
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs a failing fetch and checks the error names the URL and `cause`, and that nothing
/// that could pass for data (no `.bin`, no archive, no `.part`) is left in the folder.
fn assert_clean_failure(archive: &RemoteArchive, dir: &Path, cause: &str) {
    let err = fetch_cifar_from(CifarVariant::Cifar100, archive, dir, true).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Download { .. }), "{text}");
    assert!(text.contains(&archive.url), "{text}");
    assert!(text.contains(cause), "expected {cause:?} in: {text}");
    assert!(text.contains("by hand"), "{text}");
    assert!(!text.contains('\n'), "one line: {text}");
    assert_eq!(
        listing(dir),
        Vec::<String>::new(),
        "left in {}",
        dir.display()
    );
}

#[test]
fn a_wrong_checksum_is_refused_and_deleted() {
    let bytes = archive_bytes();
    let server = Server::start(vec![Reply::Body(bytes.clone())]);
    let mut archive = archive_for(&server, &bytes);
    archive.md5 = "0".repeat(32);
    let dir = temp("bad-md5");
    assert_clean_failure(&archive, &dir, "does not match the expected 00000000");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_truncated_transfer_is_refused() {
    let bytes = archive_bytes();
    let server = Server::start(vec![Reply::Truncated(bytes.clone(), bytes.len() / 2)]);
    let archive = archive_for(&server, &bytes);
    let dir = temp("truncated");
    // Either the client notices the early close ("broke off after N bytes") or the body
    // just ends ("ended after N of M bytes").
    assert_clean_failure(&archive, &dir, " after ");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_larger_file_than_announced_is_refused() {
    let bytes = archive_bytes();
    let server = Server::start(vec![Reply::Body(bytes.clone())]);
    let mut archive = archive_for(&server, &bytes);
    archive.size -= 10;
    let dir = temp("too-long");
    assert_clean_failure(&archive, &dir, "more than the expected");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn http_errors_and_refused_connections_are_named() {
    let bytes = archive_bytes();
    let server = Server::start(vec![Reply::Status(404)]);
    let archive = archive_for(&server, &bytes);
    let dir = temp("404");
    assert_clean_failure(&archive, &dir, "HTTP 404");

    // A port with nobody listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = RemoteArchive {
        url: format!("http://127.0.0.1:{port}/cifar-100-binary.tar.gz"),
        ..archive
    };
    assert_clean_failure(&refused, &dir, "could not connect");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_interrupted_download_succeeds_on_the_rerun() {
    let bytes = archive_bytes();
    let server = Server::start(vec![
        Reply::Truncated(bytes.clone(), bytes.len() / 3),
        Reply::Body(bytes.clone()),
    ]);
    let archive = archive_for(&server, &bytes);
    let dir = temp("interrupted");
    assert!(fetch_cifar_from(CifarVariant::Cifar100, &archive, &dir, true).is_err());
    assert_eq!(listing(&dir), Vec::<String>::new());
    fetch_cifar_from(CifarVariant::Cifar100, &archive, &dir, true).unwrap();
    assert_eq!(listing(&dir), vec!["test.bin", "train.bin"]);
    assert_eq!(server.requests(), 2);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_verified_archive_that_is_not_a_tar_is_deleted() {
    let bytes = b"this is not a gzip tar archive at all".to_vec();
    let server = Server::start(vec![Reply::Body(bytes.clone())]);
    let archive = archive_for(&server, &bytes);
    let dir = temp("not-tar");
    let err = fetch_cifar_from(CifarVariant::Cifar100, &archive, &dir, true).unwrap_err();
    assert!(matches!(err, Error::InvalidFormat { .. }), "{err}");
    assert_eq!(listing(&dir), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn downloads_off_says_where_to_put_the_files() {
    let dir = temp("off");
    // CIFAR-100: the environment test below changes only the CIFAR-10 variables.
    let err = fetch_cifar(CifarVariant::Cifar100, &dir, false).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::MissingData { .. }), "{text}");
    assert!(text.contains("cifar-100-binary.tar.gz"), "{text}");
    assert!(text.contains("03b5dce01913d631647c71ecec9e9cb8"), "{text}");
    assert!(text.contains("train.bin, test.bin"), "{text}");
}

/// The only test that sets the environment (tests share it): the variables replace URL,
/// size and MD5; bad values are typed errors.
#[test]
fn environment_variables_replace_the_archive() {
    let official = RemoteArchive::cifar(CifarVariant::Cifar100).unwrap();
    assert_eq!(official.size, 168_513_733);
    assert_eq!(official.md5, "03b5dce01913d631647c71ecec9e9cb8");
    // SAFETY: no other test in this binary reads or writes these variables.
    unsafe {
        std::env::set_var("BURN_DISTILL_CIFAR10_URL", "http://127.0.0.1:1/x.tar.gz");
        std::env::set_var("BURN_DISTILL_CIFAR10_SIZE", "123");
        std::env::set_var(
            "BURN_DISTILL_CIFAR10_MD5",
            "ABCDEF0123456789abcdef0123456789",
        );
    }
    let archive = RemoteArchive::cifar(CifarVariant::Cifar10).unwrap();
    assert_eq!(
        archive,
        RemoteArchive {
            url: "http://127.0.0.1:1/x.tar.gz".into(),
            size: 123,
            md5: "abcdef0123456789abcdef0123456789".into(),
        }
    );
    unsafe { std::env::set_var("BURN_DISTILL_CIFAR10_SIZE", "12 MB") };
    let err = RemoteArchive::cifar(CifarVariant::Cifar10).unwrap_err();
    assert!(
        err.to_string().contains("BURN_DISTILL_CIFAR10_SIZE=12 MB"),
        "{err}"
    );
    unsafe {
        std::env::set_var("BURN_DISTILL_CIFAR10_SIZE", "123");
        std::env::set_var("BURN_DISTILL_CIFAR10_MD5", "xyz");
    }
    let err = RemoteArchive::cifar(CifarVariant::Cifar10).unwrap_err();
    assert!(err.to_string().contains("32 hexadecimal digits"), "{err}");
    unsafe {
        std::env::remove_var("BURN_DISTILL_CIFAR10_URL");
        std::env::remove_var("BURN_DISTILL_CIFAR10_SIZE");
        std::env::remove_var("BURN_DISTILL_CIFAR10_MD5");
    }
}
