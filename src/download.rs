//! Verified downloads of the CIFAR archives (feature `download`): fetch once into the cache,
//! check size and MD5, extract, and never touch the network again.
//!
//! ```no_run
//! # // Not run: it downloads 168 MB.
//! use burn_distill::data::CifarVariant;
//! use burn_distill::download::fetch_cifar;
//!
//! // Downloads and extracts on the first call; later calls find the files and return at once.
//! let dir = fetch_cifar(CifarVariant::Cifar100, &CifarVariant::Cifar100.default_dir(), true).unwrap();
//! let train = burn_distill::data::load_cifar(&dir, CifarVariant::Cifar100, burn_distill::data::Split::Train);
//! ```

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use crate::data::{CifarVariant, Split};
use crate::error::Error;
use crate::progress::{Progress, Stream, Unit, format_seconds};

/// A file on a server, with the size and MD5 it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteArchive {
    /// Where to get it.
    pub url: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its MD5 digest, 32 lowercase hex digits.
    pub md5: String,
}

impl RemoteArchive {
    /// The official binary archive of `variant` (University of Toronto), with the
    /// environment variables `BURN_DISTILL_CIFAR100_URL`, `_SIZE` and `_MD5` (or
    /// `BURN_DISTILL_CIFAR10_...`) replacing its address, size and digest (mirrors, tests).
    ///
    /// | variant | URL | bytes | MD5 |
    /// |---|---|---:|---|
    /// | CIFAR-100 | `https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz` | 168,513,733 | `03b5dce01913d631647c71ecec9e9cb8` |
    /// | CIFAR-10 | `https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz` | 170,052,171 | `c32a1d4ab5d03f1284b67883e8d87530` |
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `_SIZE` is not a whole number or `_MD5` not 32 hex
    /// digits.
    pub fn cifar(variant: CifarVariant) -> crate::Result<Self> {
        let (prefix, url, size, md5) = match variant {
            CifarVariant::Cifar100 => (
                "BURN_DISTILL_CIFAR100",
                variant.archive_url(),
                168_513_733,
                "03b5dce01913d631647c71ecec9e9cb8",
            ),
            CifarVariant::Cifar10 => (
                "BURN_DISTILL_CIFAR10",
                variant.archive_url(),
                170_052_171,
                "c32a1d4ab5d03f1284b67883e8d87530",
            ),
        };
        let var = |suffix: &str| std::env::var(format!("{prefix}_{suffix}")).ok();
        let size = match var("SIZE") {
            Some(text) => text.trim().parse().map_err(|_| Error::InvalidConfig {
                field: "download size (environment)",
                value: format!("{prefix}_SIZE={text}"),
                reason: "must be a whole number of bytes",
            })?,
            None => size,
        };
        let md5 = match var("MD5") {
            Some(text) => {
                let text = text.trim().to_ascii_lowercase();
                if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(Error::InvalidConfig {
                        field: "download MD5 (environment)",
                        value: format!("{prefix}_MD5={text}"),
                        reason: "must be 32 hexadecimal digits",
                    });
                }
                text
            }
            None => md5.to_string(),
        };
        Ok(Self {
            url: var("URL").unwrap_or_else(|| url.to_string()),
            size,
            md5,
        })
    }
}

/// Downloads `archive` to `dest`, unless a file with its size and MD5 is already there.
///
/// The bytes go to `dest` + `.part` first; only a transfer of exactly `size` bytes with the
/// right MD5 is renamed to `dest`, so an interrupted or corrupt download never looks like
/// data (a rerun starts it again). Progress goes to standard error: a bar with bytes, rate
/// and time left on a terminal, a line every 10 % otherwise.
///
/// # Errors
/// [`Error::Download`] naming the URL and the cause (no connection, an HTTP error status,
/// a short or long transfer, a wrong MD5) and where to put the file by hand; [`Error::Io`]
/// when the cache folder cannot be written.
pub fn download(archive: &RemoteArchive, dest: &Path) -> crate::Result<()> {
    if dest.is_file() && verify(dest, archive).is_ok() {
        return Ok(());
    }
    let fail = |cause: String| Error::Download {
        url: archive.url.clone(),
        cause,
        dest: dest.to_path_buf(),
    };
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::Io {
            path: parent.to_path_buf(),
            source: e,
        })?;
    }
    let partial = part_path(dest);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .get(&archive.url)
        .call()
        .map_err(|e| fail(format!("could not connect: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(fail(format!("the server answered HTTP {status}")));
    }
    let mut body = response.into_body().into_reader();
    let mut file = File::create(&partial).map_err(|e| Error::Io {
        path: partial.clone(),
        source: e,
    })?;
    let mut digest = Md5::new();
    let mut received: u64 = 0;
    let name = dest.file_name().map_or_else(
        || "download".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut progress = Progress::new(name, archive.size, Unit::Bytes, Stream::Stderr);
    let mut buffer = vec![0u8; 1 << 16];
    let result = loop {
        let n = match body.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                break Err(format!(
                    "the transfer broke off after {received} bytes: {e}"
                ));
            }
        };
        received += n as u64;
        if received > archive.size {
            break Err(format!(
                "the server sent more than the expected {} bytes",
                archive.size
            ));
        }
        digest.update(&buffer[..n]);
        if let Err(e) = file.write_all(&buffer[..n]) {
            break Err(format!("could not write {}: {e}", partial.display()));
        }
        progress.update(received);
    };
    progress.finish();
    eprintln!(
        "received {:.1} MB in {}",
        received as f64 / 1e6,
        format_seconds(progress.elapsed())
    );
    let result = result.and_then(|()| {
        file.sync_all()
            .map_err(|e| format!("could not write {}: {e}", partial.display()))?;
        if received != archive.size {
            return Err(format!(
                "the transfer ended after {received} of {} bytes",
                archive.size
            ));
        }
        let md5 = hex(&digest.finalize());
        if md5 != archive.md5 {
            return Err(format!(
                "MD5 {md5} does not match the expected {} (corrupt or different file)",
                archive.md5
            ));
        }
        Ok(())
    });
    drop(file);
    match result {
        Ok(()) => fs::rename(&partial, dest).map_err(|e| Error::Io {
            path: dest.to_path_buf(),
            source: e,
        }),
        Err(cause) => {
            let _ = fs::remove_file(&partial);
            Err(fail(cause))
        }
    }
}

/// CIFAR in its official binary layout in `dir` (`train.bin`, `test.bin` for CIFAR-100;
/// `data_batch_1.bin` .. `data_batch_5.bin`, `test_batch.bin` for CIFAR-10): returned at
/// once when every file is there (no network). Otherwise, with `allow_download`, the
/// archive ([`RemoteArchive::cifar`]) is downloaded into `dir` ([`download`]), extracted
/// there and deleted; without it, an [`Error::MissingData`] says where to put the files.
///
/// Extraction writes each file under a temporary name and renames it when complete; a
/// corrupt archive is deleted and reported, never used.
///
/// # Errors
/// [`Error::MissingData`], [`Error::Download`], [`Error::InvalidConfig`] (bad environment
/// overrides), [`Error::InvalidFormat`] (an archive that is not a gzip tar or lacks a file),
/// [`Error::Io`].
pub fn fetch_cifar(
    variant: CifarVariant,
    dir: &Path,
    allow_download: bool,
) -> crate::Result<PathBuf> {
    if all_files(variant).iter().all(|f| dir.join(f).is_file()) {
        return Ok(dir.to_path_buf());
    }
    fetch_cifar_from(
        variant,
        &RemoteArchive::cifar(variant)?,
        dir,
        allow_download,
    )
}

/// [`fetch_cifar`] from a given archive (a mirror, a test server) instead of
/// [`RemoteArchive::cifar`].
///
/// # Errors
/// As [`fetch_cifar`].
pub fn fetch_cifar_from(
    variant: CifarVariant,
    archive: &RemoteArchive,
    dir: &Path,
    allow_download: bool,
) -> crate::Result<PathBuf> {
    let files = all_files(variant);
    if files.iter().all(|f| dir.join(f).is_file()) {
        return Ok(dir.to_path_buf());
    }
    if !allow_download {
        return Err(Error::MissingData {
            path: dir.join(files[0]),
            hint: format!(
                "downloads are off; get {} ({} bytes, MD5 {}) and extract {} into {}",
                archive.url,
                archive.size,
                archive.md5,
                files.join(", "),
                dir.display()
            ),
        });
    }
    let name = archive
        .url
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("cifar.tar.gz");
    let tarball = dir.join(name);
    eprintln!(
        "downloading {} ({:.0} MB) into {}",
        archive.url,
        archive.size as f64 / 1e6,
        dir.display()
    );
    download(archive, &tarball)?;
    let extracted = extract(&tarball, dir, &files);
    if extracted.is_err() {
        // A verified archive that does not extract is useless: do not keep it around.
        let _ = fs::remove_file(&tarball);
    }
    extracted?;
    let _ = fs::remove_file(&tarball);
    Ok(dir.to_path_buf())
}

/// Every file of both splits in the official binary layout.
fn all_files(variant: CifarVariant) -> Vec<&'static str> {
    variant
        .files(Split::Train)
        .into_iter()
        .chain(variant.files(Split::Test))
        .collect()
}

/// Extracts the entries of the gzip tar `tarball` whose file names are in `wanted` into
/// `dir` (flattening the archive's top folder), each through a temporary name.
fn extract(tarball: &Path, dir: &Path, wanted: &[&str]) -> crate::Result<()> {
    let invalid = |reason: String| Error::InvalidFormat {
        path: tarball.to_path_buf(),
        reason,
    };
    let file = File::open(tarball).map_err(|e| Error::Io {
        path: tarball.to_path_buf(),
        source: e,
    })?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut found = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| invalid(format!("not a gzip tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(format!("corrupt archive: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| invalid(format!("corrupt entry name: {e}")))?
            .into_owned();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if !entry.header().entry_type().is_file() || !wanted.contains(&name.as_str()) {
            continue;
        }
        let target = dir.join(&name);
        let temporary = part_path(&target);
        let written = File::create(&temporary)
            .and_then(|mut out| io::copy(&mut entry, &mut out).and_then(|_| out.sync_all()));
        if let Err(e) = written {
            let _ = fs::remove_file(&temporary);
            return Err(invalid(format!("could not extract {name}: {e}")));
        }
        fs::rename(&temporary, &target).map_err(|e| Error::Io {
            path: target.clone(),
            source: e,
        })?;
        found.push(name);
    }
    let missing: Vec<&&str> = wanted
        .iter()
        .filter(|w| !found.iter().any(|f| f == *w))
        .collect();
    if !missing.is_empty() {
        return Err(invalid(format!("the archive lacks {missing:?}")));
    }
    Ok(())
}

fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

/// Checks a file's size and MD5 against `archive`.
fn verify(path: &Path, archive: &RemoteArchive) -> Result<(), String> {
    let size = fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size != archive.size {
        return Err(format!("{size} bytes, expected {}", archive.size));
    }
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let mut digest = Md5::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        digest.update(&buffer[..n]);
    }
    let md5 = hex(&digest.finalize());
    if md5 == archive.md5 {
        Ok(())
    } else {
        Err(format!("MD5 {md5}, expected {}", archive.md5))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
