//! The Kullback-Leibler divergence of two distributions given as log-probabilities, computed
//! without cancellation, and the [`log1p`] it needs: the one KL behind KD and both DKD terms.

use burn::tensor::{Bool, Tensor};

/// Largest exponent the cancellation-free KL form evaluates; rows that would need more
/// have `KL >= KL_DIRECT_ABOVE` and use the direct sum.
const KL_DIRECT_ABOVE: f64 = 50.0;

/// `KL(p ‖ q)` of each row, `[N, 1]`, from `log p`, `log q` and `δ`, where
/// `δ_j = log p_j - log q_j + c` for any per-row constant `c` (e.g. a difference of scaled
/// logits, which is exact where `log p - log q` is rounded).
///
/// With `d = δ - E_p[δ]` (so `E_p[d] = 0` and `c` cancels), `Σ_j p_j e^{-d_j} = e^{KL}`,
/// hence `KL = log1p(Σ_j p_j g(d_j))` with `g(d) = e^{-d} - 1 + d >= 0`: a sum of
/// non-negative terms, free of the cancellation in `Σ p (log p - log q)`. Rows where some
/// `log p_j - d_j > 50` (then `KL > 50 - log C`) take the direct sum.
///
/// Classes with `log p = -∞`-like values (`-1e30`, masked classes) contribute nothing.
pub(crate) fn kl_divergence_rows(
    log_p: Tensor<2>,
    log_q: Tensor<2>,
    delta: Tensor<2>,
) -> Tensor<2> {
    let p = log_p.clone().exp();
    let (accurate, usable) = kl_from_log_ratio(log_p.clone(), p.clone(), delta);
    let direct = (p * (log_p - log_q)).sum_dim(1);
    direct.mask_where(usable, accurate)
}

/// The cancellation-free part of [`kl_divergence_rows`]: `log Σ_j p_j e^{-d_j}` with
/// `d = δ - E_p[δ]`, `[N, 1]`, and the rows where it was evaluated without clamping.
/// `p` is `exp(log_p)`, passed in because the callers have it already.
pub(crate) fn kl_from_log_ratio(
    log_p: Tensor<2>,
    p: Tensor<2>,
    delta: Tensor<2>,
) -> (Tensor<2>, Tensor<2, Bool>) {
    let [n, c] = delta.dims();
    let d = delta.clone() - (p.clone() * delta).sum_dim(1).expand([n, c]);
    // p e^{-d} = exp(log p - d): its largest exponent decides whether the form is usable.
    let exponent = log_p - d.clone();
    let usable = exponent
        .clone()
        .max_dim(1)
        .lower_equal_elem(KL_DIRECT_ABOVE);
    // p g(d) = p e^{-d} - p + p d for |d| > 1 (no cancellation there: g(d) >= e^{-1}),
    // p · Taylor(g)(d) for |d| <= 1.
    let near = d.clone().abs().lower_equal_elem(1.0);
    let far = exponent.clamp_max(KL_DIRECT_ABOVE).exp() - p.clone() + p.clone() * d.clone();
    let close = p * taylor_g(d.clamp(-1.0, 1.0));
    let terms = far.mask_where(near, close);
    (log1p(terms.sum_dim(1)), usable)
}

/// `log(1 + x)`, accurate to a few units in the last place on every device.
///
/// Burn's `Tensor::log1p` is exact on the CPU backends, but on wgpu (cubecl 0.11) it is
/// computed as `ln(1 + x)`, which rounds `1 + x` first and so loses every digit of `x`
/// below float epsilon (`log1p(1e-8)` comes out as 0). This function uses the alternating
/// series `x - x²/2 + x³/3 - …` (9 terms, truncation below `1e-9` relative) where
/// `|x| < 0.1`, and `ln(1 + x)` elsewhere (there the rounding of `1 + x` costs at most
/// `6e-7` relative).
///
/// # Shapes
/// Any; element-wise.
///
/// # Example
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn_distill::log1p;
///
/// let device = Device::default();
/// let x = Tensor::<1>::from_floats([1e-9, 0.05, 1.0], &device);
/// let y: Vec<f32> = log1p(x).into_data().to_vec().unwrap();
/// assert!((y[0] - 1e-9).abs() < 1e-15);
/// assert!((y[1] - 0.048790164).abs() < 1e-8);
/// assert!((y[2] - std::f32::consts::LN_2).abs() < 1e-7);
/// ```
pub fn log1p<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    const SERIES_BELOW: f64 = 0.1;
    const TERMS: usize = 9;
    let small = x.clone().abs().lower_elem(SERIES_BELOW);
    let u = x.clone().clamp(-SERIES_BELOW, SERIES_BELOW);
    // x (1 - x (1/2 - x (1/3 - … x/9))), by Horner's rule.
    let mut h = u.zeros_like().add_scalar(1.0 / TERMS as f64);
    for k in (1..TERMS).rev() {
        h = h.mul(u.clone()).neg().add_scalar(1.0 / k as f64);
    }
    let series = u * h;
    x.add_scalar(1.0).log().mask_where(small, series)
}

/// `g(d) = e^{-d} - 1 + d = d² Σ_{k>=2} (-d)^{k-2} / k!` for `|d| <= 1`, by Horner's rule
/// up to `k = 13` (truncation below `1e-10` relative).
fn taylor_g(d: Tensor<2>) -> Tensor<2> {
    let y = d.clone().neg();
    let mut factorial = [1.0f64; 14];
    for k in 1..14 {
        factorial[k] = factorial[k - 1] * k as f64;
    }
    let mut h = y.zeros_like().add_scalar(1.0 / factorial[13]);
    for k in (2..13).rev() {
        h = h * y.clone() + 1.0 / factorial[k];
    }
    d.clone() * d * h
}

/// `log Σ_j e^{x_j}` of each row, `[N, 1]`, shifted by the row maximum.
pub(crate) fn log_sum_exp(x: Tensor<2>) -> Tensor<2> {
    let [n, c] = x.dims();
    let max = x.clone().max_dim(1);
    (x - max.clone().expand([n, c])).exp().sum_dim(1).log() + max
}
