//! `experiment`: methods as changes to a base `DistillerConfig` (grid rows), the teachers a
//! method keeps, one run's saved result, the comparison table over seeds (checked against
//! the t-interval formula by hand), and the resume check of a run folder.

use burn_distill::experiment::{
    Method, MethodSummary, ModelReport, SeedRun, TeacherChoice, grid_from_json, load_grid,
    markdown_table, resume_point, run_grid, select, summarize,
};
use burn_distill::{
    DistillationLossConfig, DistillerConfig, Error, FeatureTarget, Granularity, ScreeningRule,
    SoftLoss, TeacherSelectorConfig, Weighting,
};

use crate::common::temp_path;

fn base() -> DistillerConfig {
    let selector = TeacherSelectorConfig::new().with_tau(2.0);
    let loss = DistillationLossConfig::new()
        .with_temperature(3.0)
        .with_feature_weight(20.0);
    DistillerConfig::new()
        .with_selector(selector)
        .with_loss(loss)
}

/// A row changes only the fields it names; the others keep the base's values (not the
/// library defaults). Enum values replace the base's whatever their form.
#[test]
fn a_method_writes_its_changes_over_the_base() {
    let rows = r#"[
        {"name": "default"},
        {"name": "AVER, logits", "selector": {"screening": "KeepAll", "weighting": "Average",
         "granularity": "PerSample"}, "loss": {"feature_weight": 0, "logit_standardization": false}},
        {"name": "relative", "selector": {"screening": {"RelativeToBest": 1.5}}, "loss": {"soft_loss": "Mixture"}},
        {"name": "first", "teachers": "best-first", "loss": {"feature_target": "FirstTeacher"}},
        {"name": "alone", "plain": true}
    ]"#;
    let grid = grid_from_json(rows, &base()).unwrap();
    let names: Vec<&str> = grid.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["default", "AVER, logits", "relative", "first", "alone"]
    );
    let defaults: Vec<bool> = grid.iter().map(Method::is_default).collect();
    assert_eq!(defaults, [true, false, false, false, false]);

    let default = grid[0].distiller(&base()).unwrap();
    assert_eq!(default.selector.tau, 2.0);
    assert_eq!(default.loss.temperature, 3.0);
    assert_eq!(default.loss.feature_weight, 20.0);
    assert!(default.loss.logit_standardization);

    let aver = grid[1].distiller(&base()).unwrap();
    assert_eq!(aver.selector.screening, ScreeningRule::KeepAll);
    assert_eq!(aver.selector.weighting, Weighting::Average);
    assert_eq!(aver.selector.granularity, Granularity::PerSample);
    assert_eq!(aver.selector.tau, 2.0);
    assert_eq!(aver.loss.feature_weight, 0.0);
    assert!(!aver.loss.logit_standardization);
    assert_eq!(aver.loss.temperature, 3.0);

    let relative = grid[2].distiller(&base()).unwrap();
    assert_eq!(
        relative.selector.screening,
        ScreeningRule::RelativeToBest(1.5)
    );
    assert_eq!(relative.selector.granularity, Granularity::PerBatch);
    assert_eq!(relative.loss.soft_loss, SoftLoss::Mixture);
    // An object-form rule in the base is replaced by a name-form one.
    let relative_base = base().with_selector(relative.selector.clone());
    let keep_all = grid[1].distiller(&relative_base).unwrap();
    assert_eq!(keep_all.selector.screening, ScreeningRule::KeepAll);

    assert_eq!(grid[3].teachers, TeacherChoice::BestFirst);
    assert_eq!(
        grid[3].distiller(&base()).unwrap().loss.feature_target,
        FeatureTarget::FirstTeacher
    );
    assert!(grid[4].plain && grid[4].teachers == TeacherChoice::All);
    assert_eq!(
        Method::new("x"),
        grid_from_json(r#"[{"name": "x"}]"#, &base()).unwrap()[0]
    );
    assert_eq!(grid[1].slug(), "aver--logits");
}

/// Every malformed grid is refused before anything trains, with the reason and the row.
#[test]
fn bad_grids_name_the_problem() {
    for (text, needle) in [
        (r#"{"name": "x"}"#, "not a grid of methods"),
        (r#"[{"weighting": "Average"}]"#, "unknown field `weighting`"),
        (r#"[{"name": "x", "sfot": 1}]"#, "unknown field `sfot`"),
        (
            r#"[{"name": "a b"}, {"name": "a-b"}]"#,
            "two rows named 'a-b'",
        ),
        (
            r#"[{"name": "x", "loss": {"temprature": 4}}]"#,
            "loss.temprature",
        ),
        (r#"[{"name": "x", "selector": {"tau": "high"}}]"#, "'x'"),
        (
            r#"[{"name": "x", "teachers": "worst"}]"#,
            "unknown variant `worst`",
        ),
    ] {
        let err = grid_from_json(text, &base()).unwrap_err();
        assert!(err.contains(needle), "{text}: {err}");
    }
    let dir = temp_path("experiment", "grids");
    std::fs::create_dir_all(&dir).unwrap();
    let missing = load_grid(dir.join("none.json"), &base()).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
    std::fs::write(
        dir.join("bad.json"),
        r#"[{"name": "x", "loss": {"tmp": 1}}]"#,
    )
    .unwrap();
    let bad = load_grid(dir.join("bad.json"), &base()).unwrap_err();
    assert!(
        matches!(&bad, Error::ConfigFile { path, reason } if path.ends_with("bad.json") && reason.contains("loss.tmp")),
        "{bad}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Best and best-first order by cross-entropy, ties in the given order; all keeps the order.
#[test]
fn teacher_choices_keep_the_teachers_asked_for() {
    let teachers = ["a", "b", "c", "d"];
    let ce = [0.9, 0.4, 0.9, 0.2];
    assert_eq!(TeacherChoice::All.arrange(&teachers, &ce), teachers);
    assert_eq!(TeacherChoice::Best.arrange(&teachers, &ce), ["d"]);
    assert_eq!(
        TeacherChoice::BestFirst.arrange(&teachers, &ce),
        ["d", "b", "a", "c"]
    );
}

/// Three methods over three seeds, the default second. By hand: default − AVER per seed is
/// (0.02, 0.03, 0.01): mean 0.02, sd 0.01, so the interval is 0.02 ± 4.303 · 0.01 / √3 =
/// 0.02 ± 0.024843 (t(0.975, 2) = 4.303, NIST table). Telemetry is averaged over the seeds
/// that report every teacher.
#[test]
fn the_comparison_pairs_every_method_with_the_default() {
    let grid = r#"[{"name": "AVER", "selector": {"weighting": "Average"}}, {"name": "default"},
                   {"name": "KD", "teachers": "best"}]"#;
    let methods = grid_from_json(grid, &base()).unwrap();
    let run = |accuracy: f64, keep: &[f64]| SeedRun {
        accuracy,
        keep_rate: keep.to_vec(),
        mean_weight: keep.iter().map(|k| k * 0.4).collect(),
        seconds: 10.0 * accuracy,
    };
    let runs = vec![
        vec![
            run(0.70, &[1.0, 0.5]),
            run(0.70, &[0.5, 1.0]),
            run(0.73, &[]),
        ],
        vec![
            run(0.72, &[1.0, 1.0]),
            run(0.73, &[1.0, 1.0]),
            run(0.74, &[1.0, 1.0]),
        ],
        vec![run(0.60, &[1.0]), run(0.61, &[1.0]), run(0.62, &[1.0])],
    ];
    // Before the default has run, nothing is paired.
    let early = summarize(&methods, &runs[..1], 2);
    assert!(early[0].default_minus.is_empty() && early[0].interval.is_none());

    let rows = summarize(&methods, &runs, 2);
    let aver = &rows[0];
    assert_eq!(aver.accuracies, [0.70, 0.70, 0.73]);
    assert!((aver.mean - 0.71).abs() < 1e-12);
    assert!((aver.std - 0.0003f64.sqrt()).abs() < 1e-12);
    let expected = [0.02, 0.03, 0.01];
    for (d, e) in aver.default_minus.iter().zip(expected) {
        assert!((d - e).abs() < 1e-12, "{:?}", aver.default_minus);
    }
    let (lo, hi) = aver.interval.unwrap();
    let half = 4.303 * 0.01 / 3f64.sqrt();
    assert!((lo - (0.02 - half)).abs() < 1e-9 && (hi - (0.02 + half)).abs() < 1e-9);
    assert_eq!(aver.keep_rate, [0.75, 0.75]);
    assert!(
        aver.mean_weight.iter().all(|w| (w - 0.3).abs() < 1e-12),
        "{:?}",
        aver.mean_weight
    );
    assert!((aver.seconds_per_run - 7.1).abs() < 1e-9);
    assert!(rows[1].reference && rows[1].interval.is_none());
    assert_eq!(rows[1].default_minus, [0.0, 0.0, 0.0]);
    assert!(!rows[2].reference && rows[2].interval.unwrap().0 > 0.0);
    // Rows without every teacher report no telemetry (zeros, shown as –).
    assert_eq!(rows[2].keep_rate, [0.0, 0.0]);

    let table = markdown_table(&rows, "validation", &["t1", "t2"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].contains("validation accuracy") && lines[0].contains("(t1, t2)"));
    let cell = format!(
        "[{:+.2}, {:+.2}]",
        100.0 * (0.02 - half),
        100.0 * (0.02 + half)
    );
    assert_eq!(
        lines[2],
        format!(
            "| AVER | 71.00% ± 1.73 | 70.00, 70.00, 73.00 | {cell} | 0.75 / 0.75 | 0.30 / 0.30 | 7 s |"
        )
    );
    assert!(lines[3].starts_with("| default | 73.00% ± 1.00 |") && lines[3].contains("| – |"));
    assert!(lines[4].contains("| – | – | 6 s |"), "{}", lines[4]);
    let json = serde_json::to_value(&rows[0]).unwrap();
    let back: MethodSummary = serde_json::from_value(json).unwrap();
    assert_eq!(back, rows[0]);
}

/// A result reads back as saved (its folder made when missing); a missing or corrupt file
/// reads as none (the run trains again); an unwritable folder is an error naming the file.
#[test]
fn seed_runs_save_and_load() {
    let dir = temp_path("experiment", "seed-run");
    assert_eq!(SeedRun::load(&dir), None);
    std::fs::create_dir_all(&dir).unwrap();
    let run = SeedRun {
        accuracy: 0.5,
        keep_rate: vec![1.0, 0.25],
        mean_weight: vec![0.8, 0.2],
        seconds: 3.5,
    };
    run.save(&dir).unwrap();
    assert_eq!(SeedRun::load(&dir), Some(run.clone()));
    std::fs::write(dir.join("result.json"), "{\"accuracy\": 0.5, \"keep_r").unwrap();
    assert_eq!(SeedRun::load(&dir), None);
    let err = run.save(dir.join("missing")).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path.ends_with("missing/result.json")),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// No checkpoint: start at 0 (and remember the identity). A complete checkpoint resumes
/// after its epoch only with the same identity and `resume` set; another identity is
/// refused, naming both, and leaves the saved one as it was.
#[test]
fn resume_point_refuses_another_configuration() {
    let dir = temp_path("experiment", "resume");
    let id = |seed: u64| ("vgg8".to_string(), seed);
    assert_eq!(resume_point(&dir, &id(42), true).unwrap(), 0);
    let checkpoint = dir.join("checkpoint");
    std::fs::create_dir_all(&checkpoint).unwrap();
    for part in ["model", "optim", "scheduler"] {
        std::fs::write(checkpoint.join(format!("{part}-2.bpk")), b"x").unwrap();
    }
    assert_eq!(resume_point(&dir, &id(42), true).unwrap(), 2);
    let err = resume_point(&dir, &id(7), true).unwrap_err();
    assert!(
        matches!(&err, Error::ResumeMismatch { saved, given, .. } if saved.contains("42") && given.contains('7')),
        "{err}"
    );
    assert!(err.to_string().contains("another configuration"), "{err}");
    let saved = std::fs::read_to_string(dir.join("run.json")).unwrap();
    assert!(saved.contains("42"), "{saved}");
    // Without --resume the run starts afresh and its identity replaces the old one.
    assert_eq!(resume_point(&dir, &id(7), false).unwrap(), 0);
    assert_eq!(resume_point(&dir, &id(7), true).unwrap(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Below-mean keeps the teachers at or below the mean cross-entropy, in the given order. By
/// hand: (0.9 + 0.4 + 0.9 + 0.2) / 4 = 0.6, so b and d. A teacher exactly at the mean is kept
/// (all equal: all kept), and one teacher is always its own mean.
#[test]
fn below_mean_keeps_the_teachers_at_or_below_the_mean() {
    let teachers = ["a", "b", "c", "d"];
    assert_eq!(
        TeacherChoice::BelowMean.arrange(&teachers, &[0.9, 0.4, 0.9, 0.2]),
        ["b", "d"]
    );
    assert_eq!(
        TeacherChoice::BelowMean.order(&[0.9, 0.4, 0.9, 0.2]),
        [1, 3]
    );
    assert_eq!(TeacherChoice::BelowMean.order(&[0.5, 0.5, 0.5]), [0, 1, 2]);
    assert_eq!(TeacherChoice::BelowMean.order(&[3.0]), [0]);
    // 1.0 and 2.0 around a mean of 1.5: the tolerance (1e-6 relative) does not keep 2.0.
    assert_eq!(TeacherChoice::BelowMean.order(&[1.0, 2.0]), [0]);
    // The order of best-first, and the indices behind best.
    assert_eq!(
        TeacherChoice::BestFirst.order(&[0.9, 0.4, 0.9, 0.2]),
        [3, 1, 0, 2]
    );
    assert_eq!(TeacherChoice::Best.order(&[0.9, 0.4, 0.9, 0.2]), [3]);
    // In a grid row.
    let grid = grid_from_json(r#"[{"name": "p", "teachers": "below-mean"}]"#, &base()).unwrap();
    assert_eq!(grid[0].teachers, TeacherChoice::BelowMean);
}

/// `--only` keeps the rows containing one of its patterns, `--skip` then drops those
/// containing one of its own, the grid's order kept; a selection that leaves nothing is an
/// error naming the patterns.
#[test]
fn select_keeps_the_rows_asked_for() {
    let grid: Vec<Method> = ["KD", "KD, best", "AVER", "AVER + features"]
        .into_iter()
        .map(Method::new)
        .collect();
    let names = |rows: Vec<Method>| rows.into_iter().map(|m| m.name).collect::<Vec<_>>();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(names(select(&grid, &[], &[]).unwrap()), names(grid.clone()));
    assert_eq!(
        names(select(&grid, &s(&["AVER", "best"]), &[]).unwrap()),
        ["KD, best", "AVER", "AVER + features"]
    );
    assert_eq!(
        names(select(&grid, &[], &s(&["features", "KD"])).unwrap()),
        ["AVER"]
    );
    let err = select(&grid, &s(&["CRD"]), &[]).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { field: "only", value, .. } if value.contains("CRD")),
        "{err}"
    );
    assert!(err.to_string().contains("matches no ablation row"), "{err}");
    let err = select(&grid, &s(&["AVER"]), &s(&["AVER"])).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { field: "skip", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("leaves no ablation row"), "{err}");
}

/// Every (method, seed) cell runs once, method by method, in its own folder (made for it),
/// with its time recorded and its result saved; `after` sees the results so far after each
/// method. Resumed, saved cells are loaded and only the missing one runs. An error in a cell
/// stops the grid and keeps the results saved before it.
#[test]
fn run_grid_runs_each_cell_once_and_resumes() {
    let dir = temp_path("experiment", "run-grid");
    let methods = [Method::new("default"), Method::new("AVER, logits")];
    let mut calls = Vec::new();
    let mut seen = Vec::new();
    let runs = run_grid(
        &methods,
        &[7, 8],
        &dir,
        false,
        |m: &Method, seed: u64, folder: &std::path::Path| -> burn_distill::Result<SeedRun> {
            assert!(folder.is_dir(), "{}", folder.display());
            calls.push((m.name.clone(), seed, folder.to_path_buf()));
            Ok(SeedRun {
                accuracy: seed as f64 / 10.0 + if m.name == "default" { 0.0 } else { 0.05 },
                seconds: -1.0,
                ..SeedRun::default()
            })
        },
        |so_far: &[Vec<SeedRun>]| -> burn_distill::Result<()> {
            seen.push(so_far.len());
            Ok(())
        },
    )
    .unwrap();
    let expected_folders = [
        "default-seed7",
        "default-seed8",
        "aver--logits-seed7",
        "aver--logits-seed8",
    ];
    assert_eq!(calls.len(), 4);
    for ((_, _, folder), name) in calls.iter().zip(expected_folders) {
        assert_eq!(folder, &dir.join(name));
        assert!(folder.join("result.json").is_file());
    }
    assert_eq!(
        calls
            .iter()
            .map(|(m, s, _)| (m.as_str(), *s))
            .collect::<Vec<_>>(),
        [
            ("default", 7),
            ("default", 8),
            ("AVER, logits", 7),
            ("AVER, logits", 8)
        ]
    );
    assert_eq!(seen, [1, 2]);
    assert_eq!(runs[1][1].accuracy, 0.8 + 0.05);
    // The time is measured here, whatever the cell said.
    assert!(runs.iter().flatten().all(|r| r.seconds >= 0.0));

    // Resumed after losing one result: only that cell runs again.
    std::fs::remove_file(dir.join("aver--logits-seed8/result.json")).unwrap();
    let mut again = Vec::new();
    let resumed = run_grid(
        &methods,
        &[7, 8],
        &dir,
        true,
        |m: &Method, seed: u64, _: &std::path::Path| -> burn_distill::Result<SeedRun> {
            again.push((m.name.clone(), seed));
            Ok(runs[1][1].clone())
        },
        |_: &[Vec<SeedRun>]| -> burn_distill::Result<()> { Ok(()) },
    )
    .unwrap();
    assert_eq!(again, [("AVER, logits".to_string(), 8)]);
    assert_eq!(resumed[0], runs[0]);
    assert_eq!(resumed[1][0], runs[1][0]);

    // Without resume every cell runs; the first error stops the grid.
    let failed = run_grid(
        &methods,
        &[7, 8],
        &dir,
        false,
        |m: &Method, seed: u64, _: &std::path::Path| -> burn_distill::Result<SeedRun> {
            match (m.name == "default", seed) {
                (false, 8) => Err(Error::NonFinite {
                    what: "the loss".into(),
                }),
                _ => Ok(SeedRun::default()),
            }
        },
        |_: &[Vec<SeedRun>]| -> burn_distill::Result<()> { Ok(()) },
    );
    assert!(matches!(failed, Err(Error::NonFinite { .. })));
    // The cells before the error saved their new results; the failed cell's folder keeps
    // the result saved by the earlier run.
    let saved = |name: &str| SeedRun::load(dir.join(name)).unwrap().accuracy;
    assert_eq!(saved("aver--logits-seed7"), 0.0);
    assert_eq!(saved("aver--logits-seed8"), 0.8 + 0.05);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The size table: one row per model (MB = 10^6 bytes, accuracy in percent), and the
/// compression line only with a student: largest teacher's parameters / the student's.
#[test]
fn model_reports_tabulate_size_accuracy_and_compression() {
    let dir = temp_path("experiment", "model-report");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("t.bpk"), vec![0u8; 2_500_000]).unwrap();
    let teacher = ModelReport::new("vgg13", 9_400_000, dir.join("t.bpk"), 0.7512);
    assert_eq!(teacher.bytes, 2_500_000);
    let other = ModelReport::new("resnet8x4", 1_200_000, dir.join("missing.bpk"), 0.7);
    assert_eq!(other.bytes, 0);
    let student = ModelReport::new("vgg8", 4_700_000, dir.join("missing.bpk"), 0.7);
    let table = ModelReport::markdown(&[teacher.clone(), other.clone()], None, "validation");
    assert_eq!(
        table,
        "| model | parameters | size on disk | validation accuracy |\n|---|---:|---:|---:|\n\
         | vgg13 | 9400000 | 2.50 MB | 75.12% |\n| resnet8x4 | 1200000 | 0.00 MB | 70.00% |\n"
    );
    let with = ModelReport::markdown(&[teacher, other], Some(&student), "test");
    assert!(
        with.contains("| vgg8 | 4700000 | 0.00 MB | 70.00% |"),
        "{with}"
    );
    assert!(
        with.ends_with("student has 2.00x fewer parameters than the largest teacher (vgg13)\n"),
        "{with}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
