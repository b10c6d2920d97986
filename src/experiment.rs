//! Comparing distillation methods over seeds (feature `files`): a method as the changes it
//! makes to a base [`DistillerConfig`] (a row of a JSON grid) and the teachers it uses; one
//! run's result saved beside its logs, so that a stopped comparison resumes; and the table
//! of every method's accuracy over the seeds, with the paired 95 % t-interval of a reference
//! method (by default the library's default, the row without changes) minus each.
//!
//! # Example
//! ```
//! use burn_distill::experiment::{Method, SeedRun, TeacherChoice, grid_from_json, summarize};
//! use burn_distill::{DistillerConfig, Weighting};
//!
//! let grid = r#"[
//!     {"name": "default"},
//!     {"name": "AVER", "selector": {"screening": "KeepAll", "weighting": "Average"}},
//!     {"name": "KD, best teacher", "teachers": "best", "loss": {"feature_weight": 0}}
//! ]"#;
//! let base = DistillerConfig::new();
//! let methods = grid_from_json(grid, &base).unwrap();
//! assert!(methods[0].is_default());
//! assert_eq!(methods[1].distiller(&base).unwrap().selector.weighting, Weighting::Average);
//! assert_eq!(methods[2].teachers, TeacherChoice::Best);
//!
//! // Accuracy per seed (two seeds), then the table.
//! let run = |accuracy| SeedRun { accuracy, ..SeedRun::default() };
//! let runs = vec![
//!     vec![run(0.72), run(0.74)],
//!     vec![run(0.70), run(0.71)],
//!     vec![run(0.69), run(0.70)],
//! ];
//! let rows = summarize(&methods, &runs, 2);
//! assert!((rows[1].default_minus[0] - 0.02).abs() < 1e-12);
//! let table = burn_distill::experiment::markdown_table(&rows, "validation", &["vgg13", "resnet32x4"]);
//! assert!(table.contains("| AVER | 70.50% ± 0.71 |"));
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::files::config_from_json;
use crate::stats::{mean_std, paired_t_interval};
use crate::{DistillerConfig, Error, Result};

/// A method: a name, the teachers it uses and the fields of the distiller's selector and
/// loss that differ from a base configuration (JSON objects, merged field by field).
///
/// As JSON, `{"name": ..., "teachers": "all" | "best" | "best-first" | "below-mean", "plain": bool,
/// "selector": {...}, "loss": {...}}`; every field but `name` may be left out, and an unknown
/// field is an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Method {
    /// The name, also the method's folder name (see [`Method::slug`]).
    pub name: String,
    /// Which teachers take part. Default: all, in the given order.
    #[serde(default)]
    pub teachers: TeacherChoice,
    /// A reference row: the student trained as a plain classifier on the labels, without
    /// the distiller. Default: false.
    #[serde(default)]
    pub plain: bool,
    /// The [`crate::TeacherSelectorConfig`] fields that differ from the base's.
    #[serde(default = "empty_object")]
    pub selector: serde_json::Value,
    /// The [`crate::DistillationLossConfig`] fields that differ from the base's.
    #[serde(default = "empty_object")]
    pub loss: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// Which teachers a [`Method`] uses, by their mean cross-entropy on held-out data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TeacherChoice {
    /// Every teacher, in the given order.
    #[default]
    All,
    /// The teacher with the lowest cross-entropy alone (single-best baselines).
    Best,
    /// Every teacher, ordered by cross-entropy, the best first (for
    /// [`crate::FeatureTarget::FirstTeacher`]).
    BestFirst,
    /// The teachers at or below the mean cross-entropy over the teachers, in the given
    /// order: pre-screening once before training, as [`crate::prescreen`] with
    /// [`crate::ScreeningRule::BelowMean`] (the same relative tolerance, `1e-6`).
    BelowMean,
}

impl TeacherChoice {
    /// The indices of the teachers this choice keeps, in the order it puts them, given
    /// each teacher's mean cross-entropy. Ties keep the given order; the best teacher is
    /// always kept.
    ///
    /// ```
    /// use burn_distill::experiment::TeacherChoice;
    ///
    /// let ce = [1.2, 0.8, 2.0];
    /// assert_eq!(TeacherChoice::BestFirst.order(&ce), [1, 0, 2]);
    /// assert_eq!(TeacherChoice::BelowMean.order(&ce), [0, 1]); // the mean is 1.33
    /// ```
    pub fn order(self, cross_entropy: &[f64]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..cross_entropy.len()).collect();
        let mean = cross_entropy.iter().sum::<f64>() / cross_entropy.len().max(1) as f64;
        match self {
            Self::All => {}
            Self::Best | Self::BestFirst => {
                order.sort_by(|a, b| cross_entropy[*a].total_cmp(&cross_entropy[*b]));
                order.truncate(if self == Self::Best { 1 } else { order.len() });
            }
            Self::BelowMean => order.retain(|&k| cross_entropy[k] <= mean + mean.abs() * 1e-6),
        }
        order
    }

    /// The teachers this choice keeps ([`TeacherChoice::order`]), given each one's mean
    /// cross-entropy (same order).
    ///
    /// # Panics
    /// When the two slices differ in length.
    pub fn arrange<T: Clone>(self, teachers: &[T], cross_entropy: &[f64]) -> Vec<T> {
        assert_eq!(
            teachers.len(),
            cross_entropy.len(),
            "one cross-entropy per teacher"
        );
        let order = self.order(cross_entropy);
        order.into_iter().map(|k| teachers[k].clone()).collect()
    }
}

impl Method {
    /// The library's default method under `name`: all teachers, no field changed.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        let (selector, loss) = (empty_object(), empty_object());
        let (teachers, plain) = (TeacherChoice::All, false);
        Self {
            name,
            teachers,
            plain,
            selector,
            loss,
        }
    }

    /// Whether this is the base configuration itself: all teachers, no field changed, not
    /// plain.
    pub fn is_default(&self) -> bool {
        let unchanged = self.selector == empty_object() && self.loss == empty_object();
        unchanged && self.teachers == TeacherChoice::All && !self.plain
    }

    /// `base` with this method's selector and loss fields written over it.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (field `method`) naming the method and the problem: an
    /// unknown field (e.g. `loss.temprature`) or a value of the wrong type.
    pub fn distiller(&self, base: &DistillerConfig) -> Result<DistillerConfig> {
        let changes = serde_json::json!({"selector": self.selector, "loss": self.loss});
        config_from_json(&changes.to_string(), Some(base)).map_err(|reason| Error::InvalidConfig {
            field: "method",
            value: format!("'{}' ({reason})", self.name),
            reason: "not a change of the distiller's configuration",
        })
    }

    /// The name as a folder name: ASCII letters and digits lower-cased, anything else `-`.
    pub fn slug(&self) -> String {
        let dash = |c: char| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        };
        self.name.chars().map(dash).collect()
    }
}

/// Reads a grid: a JSON list of [`Method`]s. Every row's distiller is built over `base`
/// here, so that a bad row fails before anything trains.
///
/// # Errors
/// The reason, naming the row: not a list of methods, an unknown field, two rows with the
/// same name or folder name ([`Method::slug`]), or a change that does not fit the
/// configuration.
pub fn grid_from_json(
    text: &str,
    base: &DistillerConfig,
) -> std::result::Result<Vec<Method>, String> {
    let methods: Vec<Method> =
        serde_json::from_str(text).map_err(|e| format!("not a grid of methods: {e}"))?;
    let mut slugs = std::collections::HashSet::new();
    for method in &methods {
        if !slugs.insert(method.slug()) {
            let name = &method.name;
            return Err(format!(
                "two rows named '{name}' (or with the same folder name)"
            ));
        }
        method.distiller(base).map_err(|e| e.to_string())?;
    }
    Ok(methods)
}

/// Reads a grid file (see [`grid_from_json`]).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::ConfigFile`] naming the file and
/// the reason from [`grid_from_json`].
pub fn load_grid(path: impl AsRef<Path>, base: &DistillerConfig) -> Result<Vec<Method>> {
    let path = path.as_ref().to_path_buf();
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    grid_from_json(&text, base).map_err(|reason| Error::ConfigFile { path, reason })
}

/// The rows of `grid` whose name contains one of `only` (all rows when `only` is empty),
/// less those whose name contains one of `skip`: a part of a grid to run.
///
/// # Errors
/// [`Error::InvalidConfig`] (field `only` or `skip`) when no row is left, naming the
/// patterns and the rows.
///
/// # Example
/// ```
/// use burn_distill::experiment::{Method, select};
///
/// let grid = [Method::new("KD"), Method::new("KD, best"), Method::new("AVER")];
/// let part = select(&grid, &["KD".into()], &["best".into()]).unwrap();
/// assert_eq!(part, vec![Method::new("KD")]);
/// assert!(select(&grid, &["CRD".into()], &[]).is_err());
/// ```
pub fn select(grid: &[Method], only: &[String], skip: &[String]) -> Result<Vec<Method>> {
    let named = |list: &[String], m: &Method| list.iter().any(|o| m.name.contains(o.as_str()));
    let all: Vec<&str> = grid.iter().map(|m| m.name.as_str()).collect();
    let none = |field, list: &[String], reason| Error::InvalidConfig {
        field,
        value: format!("{list:?} (the rows: {all:?})"),
        reason,
    };
    let rows: Vec<&Method> = (grid.iter())
        .filter(|m| only.is_empty() || named(only, m))
        .collect();
    if rows.is_empty() {
        return Err(none("only", only, "matches no ablation row"));
    }
    let rows: Vec<Method> = rows
        .into_iter()
        .filter(|m| !named(skip, m))
        .cloned()
        .collect();
    match rows.is_empty() {
        true => Err(none("skip", skip, "leaves no ablation row")),
        false => Ok(rows),
    }
}

/// Runs every method of `methods` on every seed of `seeds`, method by method, each (method,
/// seed) cell in its own folder `dir/<slug>-seed<seed>` ([`Method::slug`], created here),
/// and returns the results as `runs[method][seed]`.
///
/// `cell(method, seed, folder)` trains one cell and returns its result; its `seconds` is
/// set here to the cell's wall time, and the result is saved in the folder
/// ([`SeedRun::save`]). With `resume`, a cell whose folder holds a saved result is not run
/// again: the result is loaded. After each method, `after` gets the results so far, so that
/// a long comparison that stops still leaves its table. One line is printed per cell.
///
/// # Errors
/// The first error of `cell` or `after`, or of making a folder or saving a result
/// ([`Error::Io`]); the cells finished before it keep their saved results.
///
/// # Example
/// ```
/// use std::path::Path;
/// use burn_distill::experiment::{Method, SeedRun, run_grid};
///
/// let dir = std::env::temp_dir().join(format!("run-grid-doc-{}", std::process::id()));
/// let methods = [Method::new("default"), Method::new("other")];
/// let train = |m: &Method, seed: u64, _: &Path| -> burn_distill::Result<SeedRun> {
///     let accuracy = if m.name == "default" { 0.7 } else { 0.6 } + seed as f64 / 100.0;
///     Ok(SeedRun { accuracy, ..SeedRun::default() })
/// };
/// let runs = run_grid(&methods, &[1, 2], &dir, false, train, |_| Ok(())).unwrap();
/// assert_eq!(runs[1][0].accuracy, 0.61);
/// // Resumed: every cell's result is loaded, none trains again.
/// let never = |_: &Method, _: u64, _: &Path| -> burn_distill::Result<SeedRun> { unreachable!() };
/// assert_eq!(run_grid(&methods, &[1, 2], &dir, true, never, |_| Ok(())).unwrap(), runs);
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
pub fn run_grid<E: From<Error>>(
    methods: &[Method],
    seeds: &[u64],
    dir: impl AsRef<Path>,
    resume: bool,
    mut cell: impl FnMut(&Method, u64, &Path) -> std::result::Result<SeedRun, E>,
    mut after: impl FnMut(&[Vec<SeedRun>]) -> std::result::Result<(), E>,
) -> std::result::Result<Vec<Vec<SeedRun>>, E> {
    let mut runs: Vec<Vec<SeedRun>> = Vec::with_capacity(methods.len());
    for method in methods {
        let mut per_seed = Vec::with_capacity(seeds.len());
        for &seed in seeds {
            let name = &method.name;
            let folder = dir.as_ref().join(format!("{}-seed{seed}", method.slug()));
            if let Some(result) = SeedRun::load(&folder).filter(|_| resume) {
                let file = folder.join("result.json");
                println!(
                    "{name} (seed {seed}): finished earlier, reusing {}",
                    file.display()
                );
                per_seed.push(result);
                continue;
            }
            println!("\n== {name} (seed {seed}) ==");
            std::fs::create_dir_all(&folder).map_err(|source| Error::Io {
                path: folder.clone(),
                source,
            })?;
            let started = std::time::Instant::now();
            let mut result = cell(method, seed, &folder)?;
            result.seconds = started.elapsed().as_secs_f64();
            result.save(&folder)?;
            per_seed.push(result);
        }
        runs.push(per_seed);
        after(&runs)?;
    }
    Ok(runs)
}

/// What one (method, seed) run produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedRun {
    /// The student's accuracy on the evaluation split.
    pub accuracy: f64,
    /// Each teacher's keep rate in the last epoch (empty for rows without all teachers).
    pub keep_rate: Vec<f64>,
    /// Each teacher's mean weight in the last epoch (likewise).
    pub mean_weight: Vec<f64>,
    /// The run's wall time in seconds.
    pub seconds: f64,
}

impl SeedRun {
    /// The result saved in `dir/result.json` by [`SeedRun::save`]; `None` when there is none
    /// or it cannot be read (the run then trains again).
    pub fn load(dir: impl AsRef<Path>) -> Option<Self> {
        let text = std::fs::read_to_string(dir.as_ref().join("result.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Saves the result in `dir/result.json` (`dir` must exist), written under a temporary
    /// name and renamed (a stop never leaves half a result).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let path = dir.as_ref().join("result.json");
        let temp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).expect("a result serialises");
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        std::fs::write(&temp, text).map_err(io)?;
        std::fs::rename(&temp, &path).map_err(io)
    }
}

/// One method's results over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodSummary {
    /// The method's name.
    pub method: String,
    /// Whether the method is the reference the others are compared with.
    pub reference: bool,
    /// Accuracy per seed.
    pub accuracies: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation.
    pub std: f64,
    /// Per seed: the reference's accuracy minus this method's (empty before the reference
    /// has run).
    pub default_minus: Vec<f64>,
    /// The paired 95 % t-interval of `default_minus` (from two seeds on); above 0 when the
    /// reference is ahead.
    pub interval: Option<(f64, f64)>,
    /// Each teacher's keep rate, the mean over the seeds that report all teachers.
    pub keep_rate: Vec<f64>,
    /// Each teacher's mean weight, likewise.
    pub mean_weight: Vec<f64>,
    /// The mean wall time of one run, in seconds.
    pub seconds_per_run: f64,
}

/// Summarises `runs[i][s]` (method `i`, seed `s`; methods without runs yet may be left
/// out at the end) against the reference, the first [`Method::is_default`] row of
/// `methods` once it has run, over `teachers` teachers.
///
/// # Panics
/// When there are more run lists than methods.
pub fn summarize(methods: &[Method], runs: &[Vec<SeedRun>], teachers: usize) -> Vec<MethodSummary> {
    assert!(runs.len() <= methods.len(), "more run lists than methods");
    let accuracies = |i: usize| -> Vec<f64> { runs[i].iter().map(|r| r.accuracy).collect() };
    let reference = methods[..runs.len()].iter().position(Method::is_default);
    let reference_accuracy = reference.map(accuracies);
    let average = |per_seed: &[SeedRun], get: fn(&SeedRun) -> &Vec<f64>| -> Vec<f64> {
        let with: Vec<&Vec<f64>> = per_seed
            .iter()
            .map(get)
            .filter(|v| v.len() == teachers)
            .collect();
        let n = with.len().max(1) as f64;
        (0..teachers)
            .map(|t| with.iter().map(|v| v[t]).sum::<f64>() / n)
            .collect()
    };
    let summary = |(i, per_seed): (usize, &Vec<SeedRun>)| {
        let acc = accuracies(i);
        let (mean, std) = mean_std(&acc);
        let minus = reference_accuracy
            .iter()
            .flat_map(|r| r.iter().zip(&acc).map(|(x, y)| x - y));
        let default_minus: Vec<f64> = minus.collect();
        let is_reference = reference == Some(i);
        let seconds = per_seed.iter().map(|r| r.seconds).sum::<f64>();
        MethodSummary {
            method: methods[i].name.clone(),
            reference: is_reference,
            interval: paired_t_interval(&default_minus).filter(|_| !is_reference),
            default_minus,
            accuracies: acc,
            mean,
            std,
            keep_rate: average(per_seed, |r| &r.keep_rate),
            mean_weight: average(per_seed, |r| &r.mean_weight),
            seconds_per_run: seconds / per_seed.len().max(1) as f64,
        }
    };
    runs.iter().enumerate().map(summary).collect()
}

/// The rows as a markdown table: accuracy (percent) as mean ± std and per seed, the
/// reference minus the row as a paired 95 % interval in points, each teacher's keep rate and
/// mean weight (named by `teachers`; `–` where the row does not use every teacher) and the
/// time per run. `split` names the evaluation split in the header.
pub fn markdown_table(rows: &[MethodSummary], split: &str, teachers: &[&str]) -> String {
    let mut s = format!(
        "| method | {split} accuracy (mean ± std) | per seed | default − this (paired 95 % t-interval) | \
         keep rate per teacher ({}) | mean weight per teacher | time per run |\n\
         |---|---:|---|---:|---|---|---:|\n",
        teachers.join(", ")
    );
    let list = |v: &[f64], scale: f64, sep: &str| {
        let cells: Vec<String> = v.iter().map(|x| format!("{:.2}", scale * x)).collect();
        cells.join(sep)
    };
    let telemetry = |v: &[f64]| match v.iter().all(|x| *x == 0.0) {
        true => "–".to_string(),
        false => list(v, 1.0, " / "),
    };
    for m in rows {
        let interval = m.interval.map_or("–".to_string(), |(lo, hi)| {
            format!("[{:+.2}, {:+.2}]", 100.0 * lo, 100.0 * hi)
        });
        let (mean, std, seconds) = (100.0 * m.mean, 100.0 * m.std, m.seconds_per_run);
        let (per_seed, keep, weight) = (
            list(&m.accuracies, 100.0, ", "),
            telemetry(&m.keep_rate),
            telemetry(&m.mean_weight),
        );
        s += &format!(
            "| {} | {mean:.2}% ± {std:.2} | {per_seed} | {interval} | {keep} | {weight} | {seconds:.0} s |\n",
            m.method
        );
    }
    s
}

/// Where a run in `dir` starts, for `--resume`: after its last complete checkpoint
/// ([`crate::train::last_checkpoint`]) when `resume` is set and `identity` (everything the
/// run's result depends on) equals the one saved in `dir/run.json` by the run that wrote the
/// checkpoint; otherwise 0. Then saves `identity` there for the next resume (creating `dir`).
///
/// # Errors
/// [`Error::ResumeMismatch`] when a checkpoint exists but was made with another identity (or
/// none was saved), both written as JSON: resuming would mix two configurations in one model. [`Error::Io`] when
/// `dir/run.json` cannot be written.
///
/// # Example
/// ```
/// use burn_distill::experiment::resume_point;
///
/// let dir = std::env::temp_dir().join(format!("resume-point-doc-{}", std::process::id()));
/// // No checkpoint yet: start at epoch 0, and remember what this run is.
/// assert_eq!(resume_point(&dir, &("vgg8".to_string(), 42), true).unwrap(), 0);
/// assert!(dir.join("run.json").is_file());
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
#[cfg(feature = "train")]
pub fn resume_point<T>(dir: impl AsRef<Path>, identity: &T, resume: bool) -> Result<usize>
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq,
{
    let dir = dir.as_ref();
    let path = dir.join("run.json");
    let epoch = crate::train::last_checkpoint(dir).filter(|_| resume);
    if epoch.is_some() {
        let saved = std::fs::read_to_string(&path).ok();
        let saved: Option<T> = saved.and_then(|text| serde_json::from_str(&text).ok());
        if saved.as_ref() != Some(identity) {
            return Err(Error::ResumeMismatch {
                dir: dir.to_path_buf(),
                saved: saved.map_or("nothing".into(), |s| {
                    serde_json::to_string(&s).unwrap_or_default()
                }),
                given: serde_json::to_string(identity).unwrap_or_default(),
            });
        }
    }
    let io = |source| Error::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let text = serde_json::to_string_pretty(identity).expect("an identity serialises");
    let temp = path.with_extension("json.tmp");
    std::fs::write(&temp, text).map_err(io)?;
    std::fs::rename(&temp, &path).map_err(io)?;
    Ok(epoch.unwrap_or(0))
}

/// A trained model's size and accuracy: a row of the table that compares a student with its
/// teachers ([`ModelReport::markdown`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelReport {
    /// The model's name.
    pub name: String,
    /// Its parameters, counted as PyTorch does (`models::parameter_count` for the
    /// model zoo).
    pub params: usize,
    /// The size of its weights file in bytes (0 when there is none).
    pub bytes: u64,
    /// Its accuracy on the evaluation split, in `[0, 1]`.
    pub accuracy: f64,
}

impl ModelReport {
    /// The row of a model with `params` parameters whose weights are in the file `weights`
    /// (its size is read here; 0 when it cannot be).
    pub fn new(
        name: impl Into<String>,
        params: usize,
        weights: impl AsRef<Path>,
        accuracy: f64,
    ) -> Self {
        let bytes = std::fs::metadata(weights).map_or(0, |m| m.len());
        let name = name.into();
        Self {
            name,
            params,
            bytes,
            accuracy,
        }
    }

    /// The rows as a markdown table (parameters, size on disk in MB, accuracy on `split` in
    /// percent) and, when `student` is given, a line with how many times fewer parameters it
    /// has than the largest of the other rows.
    ///
    /// ```
    /// use burn_distill::experiment::ModelReport;
    ///
    /// let teacher = ModelReport { name: "vgg13".into(), params: 9_000_000, bytes: 36_000_000, accuracy: 0.75 };
    /// let student = ModelReport { name: "vgg8".into(), params: 4_000_000, bytes: 16_000_000, accuracy: 0.72 };
    /// let table = ModelReport::markdown(&[teacher], Some(&student), "test");
    /// assert!(table.contains("| vgg8 | 4000000 | 16.00 MB | 72.00% |"));
    /// assert!(table.ends_with("the student has 2.25x fewer parameters than the largest teacher (vgg13)\n"));
    /// ```
    pub fn markdown(
        teachers: &[ModelReport],
        student: Option<&ModelReport>,
        split: &str,
    ) -> String {
        let mut s = format!(
            "| model | parameters | size on disk | {split} accuracy |\n|---|---:|---:|---:|\n"
        );
        for m in teachers.iter().chain(student) {
            let (mb, accuracy) = (m.bytes as f64 / 1e6, 100.0 * m.accuracy);
            s += &format!(
                "| {} | {} | {mb:.2} MB | {accuracy:.2}% |\n",
                m.name, m.params
            );
        }
        if let (Some(student), Some(largest)) = (student, teachers.iter().max_by_key(|t| t.params))
        {
            let (ratio, name) = (
                largest.params as f64 / student.params.max(1) as f64,
                &largest.name,
            );
            s += &format!(
                "\ncompression: the student has {ratio:.2}x fewer parameters than the largest teacher ({name})\n"
            );
        }
        s
    }
}
