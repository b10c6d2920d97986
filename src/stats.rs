//! Summaries for comparing methods over seeds: mean and sample standard deviation, and the
//! paired 95 % t-interval of per-seed differences.
//!
//! # Example
//! ```
//! use burn_distill::stats::{mean_std, paired_t_interval};
//!
//! // Accuracy of two methods on the same three seeds.
//! let a = [0.70, 0.72, 0.71];
//! let b = [0.68, 0.69, 0.70];
//! let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
//! let (mean, sd) = mean_std(&d);
//! assert!((mean - 0.02).abs() < 1e-12 && (sd - 0.01).abs() < 1e-12);
//! // mean ± t(0.975, 2) · sd / √3 = 0.02 ± 4.303 · 0.01 / √3
//! let (low, high) = paired_t_interval(&d).unwrap();
//! assert!((low - (0.02 - 0.04303 / 3f64.sqrt())).abs() < 1e-12);
//! assert!(low < 0.0 && high > 0.0); // three seeds cannot tell them apart
//! ```

/// Two-sided 95 % quantiles `t(0.975, ν)` of Student's t for `ν = 1..=30` degrees of
/// freedom (the standard table: NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.6.7.2).
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// `t(0.975, degrees)`, the two-sided 95 % quantile of Student's t, from the table above;
/// beyond 30 degrees of freedom the 30's (2.042, slightly wide: the normal's is 1.960).
///
/// # Panics
/// When `degrees` is 0.
pub fn t_quantile_975(degrees: usize) -> f64 {
    assert!(
        degrees > 0,
        "Student's t needs at least one degree of freedom"
    );
    T95[(degrees - 1).min(T95.len() - 1)]
}

/// The mean and the sample standard deviation (divided by `n − 1`; 0 for one value) of
/// `values`. An empty slice gives `(0, 0)`.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, var.sqrt())
}

/// The paired 95 % t-interval of the mean of per-seed differences `d`:
/// `mean ± t(0.975, n − 1) · sd / √n`. `None` with fewer than two values. An interval
/// above 0 says the first method is ahead at the 95 % level.
pub fn paired_t_interval(d: &[f64]) -> Option<(f64, f64)> {
    if d.len() < 2 {
        return None;
    }
    let (mean, sd) = mean_std(d);
    let half = t_quantile_975(d.len() - 1) * sd / (d.len() as f64).sqrt();
    Some((mean - half, mean + half))
}
