//! `experiment`: methods as changes to a base `DistillerConfig` (grid rows), the teachers a
//! method keeps, one run's saved result, the comparison table over seeds (checked against
//! the t-interval formula by hand), and the resume check of a run folder.

use burn_distill::experiment::{
    Method, MethodSummary, SeedRun, TeacherChoice, grid_from_json, load_grid, markdown_table,
    resume_point, summarize,
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
