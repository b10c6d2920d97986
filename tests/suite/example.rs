//! The CIFAR examples end to end, on small generated datasets in the official binary format.
//! `cifar100_experiments`: train teachers, distill, evaluate, export and reload; resume after
//! a killed run; clear errors for missing data, bad arguments and a checkpoint of another
//! configuration. `cifar100` (the tutorial): download, cache, train, export and resume.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The experiments example binary, built by `cargo test` next to the test binaries.
fn example() -> PathBuf {
    example_binary("cifar100_experiments")
}

/// An example binary built by `cargo test` next to the test binaries.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "example binary not found at {}",
        path.display()
    );
    path
}

/// Ten colour-coded classes of CIFAR-100 (fine labels 0..10) with pixel noise: learnable.
fn write_dataset(dir: &Path, train: usize, test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut state = 1u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut records = |n: usize| {
        let mut bytes = Vec::with_capacity(n * 3074);
        for i in 0..n {
            let label = (i % 10) as u8;
            bytes.push(label / 5);
            bytes.push(label);
            let colour = [
                label as u32 * 37 % 256,
                label as u32 * 91 % 256,
                label as u32 * 53 % 256,
            ];
            for c in colour {
                for _ in 0..1024 {
                    let v = c as i32 + (next() % 81) as i32 - 40;
                    bytes.push(v.clamp(0, 255) as u8);
                }
            }
        }
        bytes
    };
    std::fs::write(dir.join("train.bin"), records(train)).unwrap();
    std::fs::write(dir.join("test.bin"), records(test)).unwrap();
}

fn temp(name: &str) -> PathBuf {
    crate::common::temp_path("example", name)
}

const SMALL: [&str; 13] = [
    "--teachers",
    "vgg8,resnet8x4",
    "--width",
    "4",
    "--teacher-epochs",
    "1",
    "--batch-size",
    "32",
    "--limit-test",
    "100",
    "--seed",
    "7",
    "--lr",
];

fn command(data: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(example());
    cmd.args([
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .args(SMALL)
    .arg("0.02")
    .args(extra)
    .env("NODEVICE_SELECT", "1");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "example failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn results(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
}

#[test]
fn pipeline_trains_distills_exports_and_reloads() {
    let data = temp("data-a");
    let out = temp("out-a");
    write_dataset(&data, 256, 100);
    let first = run(&mut command(&data, &out, &["--epochs", "2"]));
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains("| model | parameters | size on disk | test accuracy |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("kept") && stdout.contains("mean weight"),
        "telemetry missing:\n{stdout}"
    );
    assert!(out.join("student.bpk").is_file() && out.join("teachers/0-vgg8.bpk").is_file());
    assert!(out.join("student.safetensors").is_file());
    // The accuracy plot is a PNG.
    let png = std::fs::read(out.join("accuracy.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        stdout.contains("reloads with the same accuracy"),
        "{stdout}"
    );
    let report = results(&out);
    assert_eq!(report["teachers"].as_array().unwrap().len(), 2);
    assert_eq!(report["history"].as_array().unwrap().len(), 2);
    // This two-epoch run of width-4 models only checks the pipeline; learning itself is
    // asserted in tests/training.rs and tests/real_data.rs.
    let accuracy = report["student"]["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy), "accuracy {accuracy}");

    // Reload the exported student in a fresh process: the same test accuracy.
    run(&mut command(&data, &out, &["eval", "--epochs", "2"]));
    assert_eq!(
        results(&out)["student"]["accuracy"].as_f64().unwrap(),
        accuracy
    );
    let _ = std::fs::remove_dir_all(data);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn a_killed_run_resumes_from_its_last_checkpoint() {
    let data = temp("data-b");
    let out = temp("out-b");
    write_dataset(&data, 512, 100);
    run(&mut command(
        &data,
        &out,
        &["train-teachers", "--epochs", "3"],
    ));
    let fresh = temp("out-b-fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    copy_dir(&out.join("teachers"), &fresh.join("teachers"));

    // Kill the distillation once its first epoch is checkpointed.
    let mut child = command(&data, &out, &["distill", "--epochs", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = out.join("checkpoint/scheduler-1.bpk");
    let started = Instant::now();
    while !state.is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "no checkpoint after 10 minutes"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the second epoch start, then kill the process mid-epoch (SIGKILL: no cleanup).
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let teacher_files = |dir: &Path| -> Vec<Vec<u8>> {
        let mut files: Vec<_> = std::fs::read_dir(dir.join("teachers"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    };
    let teachers_before = teacher_files(&out);

    let resumed = run(&mut command(
        &data,
        &out,
        &["distill", "--epochs", "3", "--resume"],
    ));
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(stdout.contains("resuming after epoch"), "{stdout}");
    let history = results(&out)["history"].clone();
    let epochs: Vec<u64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, vec![1, 2, 3]);

    // An uninterrupted run with the same seed logs exactly the same losses, accuracies
    // and selection telemetry, and ends with bit-identical student weights.
    run(&mut command(&data, &fresh, &["distill", "--epochs", "3"]));
    let uninterrupted = results(&fresh)["history"].clone();
    for (a, b) in history
        .as_array()
        .unwrap()
        .iter()
        .zip(uninterrupted.as_array().unwrap())
    {
        for key in [
            "loss",
            "hard",
            "soft",
            "feature",
            "train_accuracy",
            "valid_accuracy",
            "keep_rate",
            "mean_weight",
        ] {
            assert_eq!(a[key], b[key], "epoch {}: {key}", a["epoch"]);
        }
    }
    let resumed_weights = safetensors_tensors(&out.join("student.safetensors"));
    assert!(!resumed_weights.is_empty());
    assert!(
        resumed_weights == safetensors_tensors(&fresh.join("student.safetensors")),
        "the resumed student's weights differ from the uninterrupted run's"
    );
    // The teachers were only read.
    assert_eq!(teacher_files(&out), teachers_before);

    // Resuming with another configuration is refused, naming the problem.
    let refused = command(
        &data,
        &out,
        &["distill", "--epochs", "3", "--resume", "--seed", "8"],
    )
    .output()
    .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("another configuration"), "{stderr}");
    for dir in [data, out, fresh] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The tensors of a safetensors file: name → (dtype, shape, raw bytes). The header's
/// metadata (whose key order may vary between runs) is left out.
fn safetensors_tensors(
    path: &Path,
) -> std::collections::BTreeMap<String, (serde_json::Value, serde_json::Value, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let data = &bytes[8 + header_len..];
    header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .map(|(name, info)| {
            let offsets = info["data_offsets"].as_array().unwrap();
            let (start, end) = (
                offsets[0].as_u64().unwrap() as usize,
                offsets[1].as_u64().unwrap() as usize,
            );
            let entry = (
                info["dtype"].clone(),
                info["shape"].clone(),
                data[start..end].to_vec(),
            );
            (name, entry)
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The colour-coded classes of `write_dataset`, as burn-dataset's `CifarDataset` caches
/// CIFAR-100: `<cache>/burn-dataset/cifar100/{train,test}/<class>/*.png`, 100 class
/// folders (sorted names), images in the first ten.
fn write_png_folders(cache: &Path, train: usize, test: usize) {
    let root = cache.join("burn-dataset").join("cifar100");
    for (split, n) in [("train", train), ("test", test)] {
        for class in 0..100 {
            std::fs::create_dir_all(root.join(split).join(format!("class{class:03}"))).unwrap();
        }
        for i in 0..n {
            let label = (i % 10) as u32;
            let colour = [label * 37 % 256, label * 91 % 256, label * 53 % 256];
            let pixels: Vec<u8> = (0..1024u32)
                .flat_map(|p| colour.map(|c| (c + p % 41).min(255) as u8 ^ (p % 7) as u8))
                .collect();
            let path = root
                .join(split)
                .join(format!("class{label:03}"))
                .join(format!("{i:05}.png"));
            let file = std::fs::File::create(path).unwrap();
            let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), 32, 32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().unwrap();
            writer.write_image_data(&pixels).unwrap();
        }
    }
}

#[test]
fn without_data_dir_it_reads_the_burn_dataset_cache_folders() {
    let cache = temp("cache");
    let out = temp("out-cache");
    let example_cmd = |extra: &[&str]| {
        let mut cmd = Command::new(example());
        cmd.args(["--out", out.to_str().unwrap()])
            .args(SMALL)
            .arg("0.02")
            .args(extra)
            .env("XDG_CACHE_HOME", &cache)
            .env("NODEVICE_SELECT", "1");
        cmd
    };
    // Nothing in the cache: a message naming both places and the files to put there.
    std::fs::create_dir_all(&cache).unwrap();
    let failed = example_cmd(&["--epochs", "1", "--no-download"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    for needle in [
        "no CIFAR-100 data found",
        "train.bin",
        "burn-dataset",
        "cifar100.tgz",
    ] {
        assert!(stderr.contains(needle), "missing '{needle}' in:\n{stderr}");
    }

    write_png_folders(&cache, 128, 40);
    let done = run(&mut example_cmd(&["--epochs", "1"]));
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        stdout.contains("128 train / 40 test images from")
            && stdout.contains("burn-dataset/cifar100"),
        "{stdout}"
    );
    let report = results(&out);
    let accuracy = report["student"]["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy), "accuracy {accuracy}");
    let _ = std::fs::remove_dir_all(cache);
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn missing_data_and_bad_arguments_give_clear_errors() {
    let empty = temp("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = command(&empty, &temp("out-empty"), &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("train.bin") && stderr.contains("cifar-100-binary"),
        "{stderr}"
    );

    for (args, needle) in [
        (vec!["--device", "tpu"], "invalid value 'tpu' for '--device"),
        (vec!["--teachers", "vgg99"], "unknown architecture 'vgg99'"),
        (
            vec!["--epochs", "many"],
            "invalid value 'many' for '--epochs",
        ),
        (vec!["--frobnicate"], "unexpected argument '--frobnicate'"),
        (
            vec!["--method", "best"],
            "invalid value 'best' for '--method",
        ),
        (vec!["--epochs", "0"], "--epochs must be at least 1"),
    ] {
        let out = Command::new(example()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let help = Command::new(example()).arg("--help").output().unwrap();
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("USAGE"));
    let _ = std::fs::remove_dir_all(empty);
}

#[test]
fn ablation_writes_its_table_json_and_chart_and_prescreen_drops_a_teacher() {
    let data = temp("data-c");
    let out = temp("out-c");
    write_dataset(&data, 128, 60);
    let output = run(&mut command(
        &data,
        &out,
        &["ablation", "--epochs", "1", "--seeds", "2"],
    ));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("| method |"), "{stdout}");
    let ablation: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("ablation.json")).unwrap()).unwrap();
    let methods = ablation["methods"].as_array().unwrap();
    assert!(methods.len() >= 8, "{methods:?}");
    for method in methods {
        assert_eq!(method["accuracies"].as_array().unwrap().len(), 2);
    }
    // The default against every row: per-seed differences, and in the table the paired 95 %
    // t-interval, mean ± t(0.975, 1) · sd / √2 with t = 12.706 for two seeds.
    let floats = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let row = |name: &str| {
        methods
            .iter()
            .find(|m| m["method"] == name)
            .unwrap_or_else(|| panic!("no row {name}"))
    };
    let default = floats(&row("screened, per batch, standardized + features")["accuracies"]);
    let aver = row("AVER, standardized + features");
    let d: Vec<f64> = default
        .iter()
        .zip(floats(&aver["accuracies"]))
        .map(|(a, b)| a - b)
        .collect();
    let stored = floats(&aver["default_minus"]);
    assert!((stored[0] - d[0]).abs() < 1e-12 && (stored[1] - d[1]).abs() < 1e-12);
    let mean = (d[0] + d[1]) / 2.0;
    let sd = (d[0] - d[1]).abs() / 2f64.sqrt();
    let half = 12.706 * sd / 2f64.sqrt();
    let cell = format!(
        "[{:+.2}, {:+.2}]",
        100.0 * (mean - half),
        100.0 * (mean + half)
    );
    let table = std::fs::read_to_string(out.join("ablation.md")).unwrap();
    let line = table
        .lines()
        .find(|l| l.starts_with("| AVER, standardized + features |"))
        .unwrap();
    assert!(line.contains(&cell), "{cell} not in {line}");
    let png = std::fs::read(out.join("ablation.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(out.join("ablation.md").is_file());

    // Pre-screening reports every teacher's cross-entropy and keeps at least one.
    let output = run(&mut command(
        &data,
        &out,
        &[
            "distill",
            "--epochs",
            "1",
            "--method",
            "pre-screened once (below-mean teachers)",
        ],
    ));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("pre-screening on 128 training images"),
        "{stdout}"
    );
    assert!(stdout.contains("kept"), "{stdout}");
    let _ = std::fs::remove_dir_all(data);
    let _ = std::fs::remove_dir_all(out);
}

/// The ablation on a validation hold-out with `--only`, then `--resume` reusing every
/// finished run, and the `screening` stage: one row per rule, each rule's mean weights
/// summing to 1 (weights are a distribution over the teachers for every sample).
#[test]
fn ablation_on_a_validation_split_resumes_and_screening_reports_every_rule() {
    let data = temp("data-s");
    let out = temp("out-s");
    write_dataset(&data, 128, 60);
    let args = [
        "ablation",
        "screening",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "--valid-from-train",
        "32",
        "--only",
        "student alone|AVER, logits",
    ];
    let first = run(&mut command(&data, &out, &args));
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("validation accuracy"), "{stdout}");
    let read_json = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(name)).unwrap()).unwrap()
    };
    let ablation = read_json("ablation.json");
    let names: Vec<&str> = ablation["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "student alone (distiller, soft 0, feature 0)",
            "student alone (plain CE loop)",
            "AVER, logits"
        ]
    );
    assert_eq!(ablation["eval_split"], "validation");
    // Labels are i % 10 for 128 images: classes of 13 and 12 images; the hold-out takes
    // round(32 / 128 * n) of each class.
    let held: usize = (0..10)
        .map(|c| {
            let n = (0..128).filter(|i| i % 10 == c).count();
            (n as f64 * 32.0 / 128.0).round() as usize
        })
        .sum();
    assert_eq!(ablation["eval_images"], held);
    assert_eq!(ablation["train_images"], 128 - held);
    let accuracies: Vec<f64> = ablation["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mean"].as_f64().unwrap())
        .collect();

    let screening = read_json("screening.json");
    let rules = screening.as_array().unwrap();
    assert_eq!(rules.len(), 12);
    for rule in rules {
        let weights: f64 = rule["mean_weight"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_f64().unwrap())
            .sum();
        assert!((weights - 1.0).abs() < 1e-4, "{rule}");
        let accuracy = rule["target_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy), "{rule}");
    }
    assert!(out.join("screening.md").is_file());

    // Again with --resume: nothing is trained, the table is the same.
    let second = run(&mut command(
        &data,
        &out,
        &[&args[..], &["--resume"]].concat(),
    ));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert_eq!(
        stdout.matches("finished earlier, reusing").count(),
        3,
        "{stdout}"
    );
    let again: Vec<f64> = read_json("ablation.json")["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mean"].as_f64().unwrap())
        .collect();
    assert_eq!(again, accuracies);
    // A filter that matches nothing is an error, not an empty table.
    let none = command(&data, &out, &["ablation", "--only", "no such method"])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("matches no ablation row"));
    let none = command(
        &data,
        &out,
        &["ablation", "--only", "AVER", "--skip", "AVER"],
    )
    .output()
    .unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("leaves no ablation row"));
    // The rows come from a grid file: a grid of one's own runs just its rows; a broken grid
    // (duplicate names, an unknown field, no file) is an error naming the problem.
    let grid = out.join("grid.json");
    let row = r#"{"name": "my AVER", "selector": {"screening": "KeepAll", "weighting": "Average"}, "loss": {"feature_weight": 0}}"#;
    std::fs::write(&grid, format!("[{row}]")).unwrap();
    let grid_arg = grid.to_str().unwrap();
    run(&mut command(
        &data,
        &out,
        &[
            "ablation",
            "--epochs",
            "1",
            "--seeds",
            "1",
            "--valid-from-train",
            "32",
            "--grid",
            grid_arg,
        ],
    ));
    let names: Vec<String> = read_json("ablation.json")["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["my AVER"]);
    for (text, message) in [
        (format!("[{row}, {row}]"), "two rows named 'my AVER'"),
        (
            r#"[{"name": "x", "sfot": 1}]"#.to_string(),
            "unknown field `sfot`",
        ),
    ] {
        std::fs::write(&grid, text).unwrap();
        let bad = command(&data, &out, &["ablation", "--grid", grid_arg])
            .output()
            .unwrap();
        assert_eq!(bad.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(
            stderr.contains(message) && stderr.contains(grid_arg),
            "{stderr}"
        );
    }
    let missing = out.join("no-such-grid.json");
    let bad = command(
        &data,
        &out,
        &["ablation", "--grid", missing.to_str().unwrap()],
    )
    .output()
    .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot read the grid"));
    let _ = std::fs::remove_dir_all(data);
    let _ = std::fs::remove_dir_all(out);
}

/// The README's first command (the `cifar100` tutorial) on a machine with no data: the
/// official archive is fetched (from a server on 127.0.0.1 standing in for the real one,
/// through the URL, size and MD5 variables), verified and extracted into the cache, then the
/// run trains the teachers, distils, evaluates and exports. A second run finds the cache and
/// makes no request, and resumes from burn-train's checkpoint.
#[cfg(feature = "download")]
#[test]
fn first_run_downloads_the_data_and_later_runs_use_the_cache() {
    use crate::common::http::{Reply, Server, md5_hex, tar_gz};

    let data = temp("data-download");
    write_dataset(&data, 256, 100);
    let read = |name: &str| std::fs::read(data.join(name)).unwrap();
    let archive = tar_gz(&[
        ("cifar-100-binary/train.bin", read("train.bin")),
        ("cifar-100-binary/test.bin", read("test.bin")),
    ]);
    let server = Server::start(vec![Reply::Body(archive.clone())]);
    let cache = temp("cache-download");
    let out = temp("out-download");
    let tutorial = |url: &str, epochs: &str| {
        let mut cmd = Command::new(example_binary("cifar100"));
        cmd.args(["--out", out.to_str().unwrap()])
            .args(["--width", "4", "--teacher-epochs", "1", "--epochs", epochs])
            .args(["--batch-size", "32", "--limit-test", "100"])
            .env("XDG_CACHE_HOME", &cache)
            .env("BURN_DISTILL_CIFAR100_URL", url)
            .env("BURN_DISTILL_CIFAR100_SIZE", archive.len().to_string())
            .env("BURN_DISTILL_CIFAR100_MD5", md5_hex(&archive))
            .env("NODEVICE_SELECT", "1");
        cmd
    };
    let first = run(&mut tutorial(&server.url, "1"));
    let stderr = String::from_utf8_lossy(&first.stderr);
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stderr.contains("downloading"), "{stderr}");
    let cached = cache.join("burn-distill/cifar-100");
    assert_eq!(
        std::fs::read(cached.join("train.bin")).unwrap(),
        read("train.bin")
    );
    for line in ["best single teacher", "student vgg8", "exported"] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    for file in [
        "student.bpk",
        "student.safetensors",
        "teachers/vgg13.bpk",
        "teachers/resnet8x4.bpk",
    ] {
        assert!(out.join(file).is_file(), "{file} not written");
    }
    let accuracy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert!(accuracy["student_test_accuracy"].is_number());
    assert_eq!(server.requests(), 1);

    // The server "stopped": an address where nobody listens. The cache and the saved
    // teachers are used, and the distillation resumes from epoch 1 to epoch 2.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let second =
        run(tutorial(&format!("http://127.0.0.1:{port}/gone.tar.gz"), "2").arg("--resume"));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("teacher vgg13: loading"), "{stdout}");
    assert!(
        out.join("distill/checkpoint/model-2.bpk").is_file(),
        "epoch 2 checkpointed"
    );
    assert_eq!(server.requests(), 1);
    // Resuming with other options is refused, naming the problem; the checkpoint stays.
    let refused = tutorial(&format!("http://127.0.0.1:{port}/gone.tar.gz"), "3")
        .args(["--resume", "--seed", "9"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("another configuration"), "{stderr}");
    assert!(out.join("distill/checkpoint/model-2.bpk").is_file());

    // A bad checksum on a fresh cache: one clear line, exit code 1, nothing left behind.
    let _ = std::fs::remove_dir_all(&cache);
    let failed = tutorial(&server.url, "1")
        .env("BURN_DISTILL_CIFAR100_MD5", "0".repeat(32))
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    let error: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error.len(), 1, "{stderr}");
    assert!(
        error[0].contains("MD5") && error[0].contains(&server.url),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&cached).unwrap().collect();
    assert!(left.is_empty(), "left in the cache: {left:?}");

    // A bad option: clap's usage error, exit code 2.
    let bad = tutorial(&server.url, "1")
        .args(["--weighting", "loudest"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("loudest"));
    // A device list with one bad entry: exit code 2, the entry named.
    let bad = tutorial(&server.url, "1")
        .args(["--devices", "flex,gpu7"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'gpu7'"));
    for dir in [data, cache, out] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The tutorial on two CPU devices (flex and ndarray) with burn-train's MultiDevice strategy:
/// it trains, evaluates and exports; with several devices and no strategy it says what to add;
/// DDP on CPU devices is refused up front with a message naming the device.
#[cfg(feature = "ndarray")]
#[test]
fn tutorial_trains_on_two_devices_with_the_multi_strategy() {
    let data = temp("data-multi");
    let out = temp("out-multi");
    write_dataset(&data, 128, 40);
    let tutorial = |extra: &[&str]| {
        let mut cmd = Command::new(example_binary("cifar100"));
        cmd.args([
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(["--width", "4", "--teacher-epochs", "1", "--epochs", "1"])
        .args(["--batch-size", "32", "--devices", "flex,ndarray"])
        .args(extra)
        .env("NODEVICE_SELECT", "1");
        cmd
    };
    let refused = tutorial(&[]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--strategy multi or ddp"));
    // DDP on CPU devices: refused before any work, naming the device (Burn 0.22.1
    // all-reduces only on CUDA).
    let ddp = tutorial(&["--strategy", "ddp"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&ddp.stderr);
    assert_eq!(ddp.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("DDP needs CUDA") && stderr.contains("Flex"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let done = run(&mut tutorial(&["--strategy", "multi"]));
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(stdout.contains("student vgg8"), "{stdout}");
    assert!(out.join("student.safetensors").is_file());
    let _ = std::fs::remove_dir_all(data);
    let _ = std::fs::remove_dir_all(out);
}
