//! The `select` stage: the rule for the library's default applied to finished ablations.
//!
//! Reads `ablation.json` from every `--pools` folder (one teacher pool each, the same rows
//! and seeds) and applies the rule written down before the grid was run (docs/RESULTS.md,
//! "Ensemble gain: the selection rule"):
//!
//! - a candidate is eligible only if, on every pool, its mean is at least the means of
//!   single-best KD and single-best FitNets (no tolerance);
//! - among the eligible ones, the default is the one with the best mean rank over the pools
//!   (ranked among the candidates by mean; ties: the simpler configuration);
//! - if none is eligible, the default does not change.
//!
//! It also prints, per pool and candidate, the paired differences against every baseline the
//! issue names (single-best KD and FitNets, AVER and CA-MKD with features, the student alone).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ablation::mean_std;

/// The current default and its variants, with the number of options each changes (the
/// tie-break: fewer is simpler).
const CANDIDATES: [(&str, usize); 5] = [
    ("screened, per batch + features", 0),
    ("screened relative 1.5, per batch + features", 1),
    ("screened, per batch, mixture KD + features", 1),
    ("screened, per batch, standardized + features", 1),
    ("screened relative 1.5, mixture, standardized + features", 3),
];
const KD: &str = "KD, single best teacher";
const FITNETS: &str = "FitNets, single best teacher";
const BASELINES: [(&str, &str); 5] = [
    (KD, "single-best KD"),
    (FITNETS, "single-best FitNets"),
    ("AVER + features", "AVER + features"),
    ("CA-MKD weights + features", "CA-MKD + features"),
    (
        "student alone (distiller, soft 0, feature 0)",
        "student alone",
    ),
];

#[derive(Debug, Deserialize)]
struct Teacher {
    name: String,
    test_accuracy: f64,
}

#[derive(Debug, Deserialize)]
struct Row {
    method: String,
    accuracies: Vec<f64>,
    mean: f64,
    mean_weight: Vec<f64>,
    seconds_per_run: f64,
}

#[derive(Debug, Deserialize)]
struct Ablation {
    seeds: Vec<u64>,
    teachers: Vec<Teacher>,
    methods: Vec<Row>,
    run_seconds: f64,
}

struct Pool {
    dir: PathBuf,
    ablation: Ablation,
}

impl Pool {
    fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join("ablation.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let ablation: Ablation = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not an ablation report: {e}", path.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            ablation,
        })
    }

    fn row(&self, method: &str) -> Result<&Row, String> {
        let row = self
            .ablation
            .methods
            .iter()
            .find(|r| r.method == method)
            .ok_or_else(|| format!("{}: no row '{method}'", self.dir.display()))?;
        if row.accuracies.len() != self.ablation.seeds.len() {
            return Err(format!(
                "{}: row '{method}' has {} of {} seeds",
                self.dir.display(),
                row.accuracies.len(),
                self.ablation.seeds.len()
            ));
        }
        Ok(row)
    }
}

/// `a - b` per seed, in points, as "mean ± std".
fn paired(a: &Row, b: &Row) -> String {
    let d: Vec<f64> = a
        .accuracies
        .iter()
        .zip(&b.accuracies)
        .map(|(x, y)| 100.0 * (x - y))
        .collect();
    let (m, s) = mean_std(&d);
    format!("{m:+.2} ± {s:.2}")
}

/// What the rule decided, for the caller and the tests of the rule.
#[derive(Debug, PartialEq)]
pub struct Decision {
    /// Per candidate: its rank on each pool (1 = best), mean rank, and eligibility.
    pub ranks: Vec<(String, Vec<usize>, f64, bool)>,
    /// The chosen default, or `None`: the default does not change.
    pub chosen: Option<String>,
}

/// The rule on per-pool means: `means[p][c]` of candidate `c`, and the two bars per pool.
pub fn decide(names: &[(&str, usize)], means: &[Vec<f64>], bars: &[(f64, f64)]) -> Decision {
    let ranks: Vec<(String, Vec<usize>, f64, bool)> = names
        .iter()
        .enumerate()
        .map(|(c, (name, _))| {
            let per_pool: Vec<usize> = means
                .iter()
                .map(|pool| 1 + pool.iter().filter(|&&m| m > pool[c]).count())
                .collect();
            let mean_rank = per_pool.iter().sum::<usize>() as f64 / per_pool.len().max(1) as f64;
            let eligible = means
                .iter()
                .zip(bars)
                .all(|(pool, &(kd, fitnets))| pool[c] >= kd && pool[c] >= fitnets);
            (name.to_string(), per_pool, mean_rank, eligible)
        })
        .collect();
    let chosen = ranks
        .iter()
        .zip(names)
        .filter(|((_, _, _, eligible), _)| *eligible)
        .min_by(|((_, _, a, _), (_, ca)), ((_, _, b, _), (_, cb))| a.total_cmp(b).then(ca.cmp(cb)))
        .map(|((name, ..), _)| name.clone());
    Decision { ranks, chosen }
}

pub fn run(pools: &[PathBuf], out: &Path) -> Result<(), String> {
    if pools.is_empty() {
        return Err("select needs --pools DIR,DIR: the --out folders of finished ablations".into());
    }
    let pools: Vec<Pool> = pools
        .iter()
        .map(|d| Pool::load(d))
        .collect::<Result<_, _>>()?;
    let mut s = String::from(
        "Selection of the default (rule: docs/RESULTS.md, \"the selection rule, written before \
         the grid\").\n\n",
    );
    let mut means = Vec::new();
    let mut bars = Vec::new();
    for pool in &pools {
        let a = &pool.ablation;
        s += &format!(
            "**Pool `{}`** (seeds {:?}; teachers: {}; student runs {:.0} min in all)\n\n",
            pool.dir.display(),
            a.seeds,
            a.teachers
                .iter()
                .map(|t| format!("{} {:.2} %", t.name, 100.0 * t.test_accuracy))
                .collect::<Vec<_>>()
                .join(", "),
            a.run_seconds / 60.0
        );
        s += "| candidate | mean | ";
        s += &BASELINES
            .iter()
            .map(|(_, label)| format!("Δ vs {label} (paired)"))
            .collect::<Vec<_>>()
            .join(" | ");
        s += " | mean weight per teacher | time per run |\n|---|---:|";
        s += &"---:|".repeat(BASELINES.len());
        s += "---|---:|\n";
        let baselines: Vec<&Row> = BASELINES
            .iter()
            .map(|(name, _)| pool.row(name))
            .collect::<Result<_, _>>()?;
        for (name, label) in BASELINES {
            s += &format!("| *{label}* | {:.2} % |", 100.0 * pool.row(name)?.mean);
            s += &" |".repeat(BASELINES.len() + 2);
            s += "\n";
        }
        let mut pool_means = Vec::new();
        for (name, _) in CANDIDATES {
            let row = pool.row(name)?;
            pool_means.push(row.mean);
            s += &format!("| {name} | {:.2} % | ", 100.0 * row.mean);
            s += &baselines
                .iter()
                .map(|b| paired(row, b))
                .collect::<Vec<_>>()
                .join(" | ");
            s += &format!(
                " | {} | {:.0} s |\n",
                row.mean_weight
                    .iter()
                    .map(|w| format!("{w:.2}"))
                    .collect::<Vec<_>>()
                    .join(" / "),
                row.seconds_per_run
            );
        }
        s += "\n";
        means.push(pool_means);
        bars.push((pool.row(KD)?.mean, pool.row(FITNETS)?.mean));
    }
    let decision = decide(&CANDIDATES, &means, &bars);
    s += "| candidate | rank per pool | mean rank | ≥ single-best KD and FitNets on every pool |\n|---|---|---:|---|\n";
    for ((name, ranks, mean_rank, eligible), pool_index) in decision.ranks.iter().zip(0..) {
        let shortfall: Vec<String> = means
            .iter()
            .zip(&bars)
            .zip(&pools)
            .filter_map(|((m, &(kd, fit)), pool)| {
                let worst = kd.max(fit);
                (m[pool_index] < worst).then(|| {
                    format!(
                        "{:.2} points short on {}",
                        100.0 * (worst - m[pool_index]),
                        pool.dir.display()
                    )
                })
            })
            .collect();
        s += &format!(
            "| {name} | {} | {mean_rank:.2} | {} |\n",
            ranks
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(" / "),
            if *eligible {
                "yes".to_string()
            } else {
                format!("no: {}", shortfall.join("; "))
            }
        );
    }
    s += &match &decision.chosen {
        Some(name) => format!("\nChosen by the rule: **{name}**.\n"),
        None => "\nNo candidate is eligible: by the rule the default does not change.\n".into(),
    };
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let path = out.join("selection.md");
    std::fs::write(&path, &s).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("{s}\nwrote {}", path.display());
    Ok(())
}
