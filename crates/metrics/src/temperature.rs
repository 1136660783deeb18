//! Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017,
//! §4.2; METHODS §4, "Temperature scaling").
//!
//! Logits are recovered from probabilities as z_k = ln(p_k + 1e-8) and rescaled by one scalar
//! T > 0: q = softmax(z / T). T is fitted on the validation split by minimising
//!
//! L(T) = (1/N) Σ_i −ln(q_{i,y_i}(T) + 1e-8),
//!
//! i.e. exactly the NLL of [`crate::classification::nll`] applied to the rescaled
//! probabilities. As a function of β = 1/T the NLL of softmax(β z) is convex (log-sum-exp is
//! convex, −β z_y is linear); the extra 1e-8 inside the logarithm perturbs this negligibly.
//! Convexity in β means L is unimodal in ln T, so the minimiser is: a 49-point grid over
//! ln T ∈ [ln 0.05, ln 20] (robustness against the ε-perturbation and flat regions), then
//! golden-section search on ln T inside the bracket around the best grid point down to a
//! bracket width of 1e-10. The objective is evaluated in `f64` throughout. An optimum beyond
//! the search range is clamped to [`T_MIN`] or [`T_MAX`].

use crate::classification::NLL_EPS;
use crate::error::{MetricsError, Result};
use crate::predictions::Predictions;

/// Smallest temperature considered by [`fit_temperature`].
pub const T_MIN: f64 = 0.05;
/// Largest temperature considered by [`fit_temperature`].
pub const T_MAX: f64 = 20.0;

const GRID_POINTS: usize = 49;
const LN_T_TOL: f64 = 1e-10;

/// ln(p + 1e-8) of every entry, in `f64`: the logits z, independent of T.
fn logits(probs: &Predictions) -> Vec<f64> {
    probs.iter_rows().flatten().map(|&p| (f64::from(p) + NLL_EPS).ln()).collect()
}

/// Writes softmax(z / t) of one row of logits into `out` (in `f64`).
fn scaled_row(z: &[f64], t: f64, out: &mut [f64]) {
    let mut max = f64::NEG_INFINITY;
    for (o, &z) in out.iter_mut().zip(z) {
        *o = z / t;
        max = max.max(*o);
    }
    let mut sum = 0.0;
    for o in out.iter_mut() {
        *o = (*o - max).exp();
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

fn check_temperature(t: f64) -> Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(MetricsError::InvalidTemperature { value: t })
    }
}

/// NLL of the temperature-scaled probabilities softmax(ln(p + 1e-8) / t), computed in `f64`.
pub fn temperature_nll(probs: &Predictions, labels: &[u32], t: f64) -> Result<f64> {
    check_temperature(t)?;
    probs.check_labels(labels)?;
    Ok(objective(&logits(probs), probs.classes(), labels, t))
}

/// L(T) from the logits `z` (rows of `classes` values, see [`logits`]).
fn objective(z: &[f64], classes: usize, labels: &[u32], t: f64) -> f64 {
    let mut q = vec![0.0f64; classes];
    let mut total = 0.0f64;
    for (row, &y) in z.chunks_exact(classes).zip(labels) {
        scaled_row(row, t, &mut q);
        total -= (q[y as usize] + NLL_EPS).ln();
    }
    total / labels.len() as f64
}

/// Fits the temperature T ∈ [[`T_MIN`], [`T_MAX`]] minimising [`temperature_nll`] on
/// (`val`, `labels`); see the module docs for the algorithm.
pub fn fit_temperature(val: &Predictions, labels: &[u32]) -> Result<f64> {
    val.check_labels(labels)?;
    // The logits do not depend on T: computed once, not at each of the ~95 evaluations.
    let z = logits(val);
    let f = |ln_t: f64| objective(&z, val.classes(), labels, ln_t.exp());
    let (lo, hi) = (T_MIN.ln(), T_MAX.ln());
    let step = (hi - lo) / (GRID_POINTS - 1) as f64;
    let grid: Vec<f64> = (0..GRID_POINTS).map(|i| lo + step * i as f64).collect();
    let values: Vec<f64> = grid.iter().map(|&x| f(x)).collect();
    let best = values
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let mut a = grid[best.saturating_sub(1)];
    let mut b = grid[(best + 1).min(GRID_POINTS - 1)];
    // Golden-section search on [a, b].
    let inv_phi = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - inv_phi * (b - a);
    let mut d = a + inv_phi * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    while b - a > LN_T_TOL {
        if fc <= fd {
            b = d;
            d = c;
            fd = fc;
            c = b - inv_phi * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + inv_phi * (b - a);
            fd = f(d);
        }
    }
    // Keep the best of the final bracket and the grid point (guards against a minimum at
    // the range boundary, where the bracket collapses onto the edge).
    let mut x = 0.5 * (a + b);
    if values[best] < f(x) {
        x = grid[best];
    }
    Ok(x.exp().clamp(T_MIN, T_MAX))
}

/// The temperature-scaled predictions softmax(ln(p + 1e-8) / t), rounded to `f32`.
pub fn apply_temperature(probs: &Predictions, t: f64) -> Result<Predictions> {
    check_temperature(t)?;
    let k = probs.classes();
    let mut q = vec![0.0f64; k];
    let mut data = Vec::with_capacity(probs.rows() * k);
    for row in logits(probs).chunks_exact(k) {
        scaled_row(row, t, &mut q);
        data.extend(q.iter().map(|&v| v as f32));
    }
    Predictions::new(data, probs.rows(), k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classification::nll;

    fn three_class() -> (Predictions, Vec<u32>) {
        let p = Predictions::new(
            vec![
                0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.05, 0.05, 0.9, 0.6, 0.3, 0.1, 0.3, 0.3, 0.4, 0.9,
                0.05, 0.05, 0.2, 0.5, 0.3,
            ],
            7,
            3,
        )
        .unwrap();
        (p, vec![0, 1, 2, 1, 0, 0, 2])
    }

    /// Golden values from scipy 1.17.1 / numpy 2.4.6:
    /// ```python
    /// import numpy as np
    /// from scipy.optimize import minimize_scalar
    /// from scipy.special import log_softmax
    /// p = np.array([[0.7,0.2,0.1],[0.1,0.8,0.1],[0.05,0.05,0.9],[0.6,0.3,0.1],[0.3,0.3,0.4],
    ///               [0.9,0.05,0.05],[0.2,0.5,0.3]], dtype=np.float32).astype(np.float64)
    /// y = np.array([0,1,2,1,0,0,2]); z = np.log(p + 1e-8)
    /// def nll(T):
    ///     q = np.exp(log_softmax(z / T, axis=1))
    ///     return -np.mean(np.log(q[np.arange(len(y)), y] + 1e-8))
    /// r = minimize_scalar(lambda lt: nll(np.exp(lt)), bounds=(np.log(0.05), np.log(20)),
    ///                     method='bounded', options={'xatol':1e-12})
    /// T = np.exp(r.x); print(T, nll(T), nll(1.0), nll(2.0))
    /// # 0.7404856626548368 0.6098170590641089 0.6289225474479103 0.762020672298398
    /// ```
    #[test]
    fn matches_scipy_on_three_class_example() {
        let (p, y) = three_class();
        assert!((temperature_nll(&p, &y, 1.0).unwrap() - 0.6289225474479103).abs() < 1e-13);
        assert!((temperature_nll(&p, &y, 2.0).unwrap() - 0.762020672298398).abs() < 1e-13);
        let t = fit_temperature(&p, &y).unwrap();
        assert!((t - 0.7404856626548368).abs() < 1e-6, "T = {t}");
        let best = temperature_nll(&p, &y, t).unwrap();
        assert!((best - 0.6098170590641089).abs() < 1e-12);
    }

    /// Binary closed form: if every validation row is p = (0.9, 0.1) and a fraction f of the
    /// labels is 0, then with d = ln(0.9+1e-8) − ln(0.1+1e-8) the scaled probability of
    /// class 0 is σ(d/T) and the NLL (ignoring the 1e-8 inside the outer log) is
    /// −f ln σ(d/T) − (1−f) ln σ(−d/T), minimised at σ(d/T) = f, i.e. T = d / ln(f/(1−f)).
    /// For f = 0.7: T ≈ ln 9 / ln(7/3) = 2.1972246 / 0.8472979 ≈ 2.593214.
    #[test]
    fn matches_binary_closed_form() {
        let n = 10;
        let p = Predictions::new([0.9f32, 0.1].repeat(n), n, 2).unwrap();
        let y: Vec<u32> = (0..n).map(|i| u32::from(i >= 7)).collect();
        let d = (f64::from(0.9f32) + 1e-8).ln() - (f64::from(0.1f32) + 1e-8).ln();
        let expect = d / (0.7f64 / 0.3).ln();
        let t = fit_temperature(&p, &y).unwrap();
        assert!(
            (t - expect).abs() < 1e-6 * expect,
            "T = {t}, expected {expect}"
        );
        assert!((expect - 2.593214).abs() < 1e-6);
        // The rescaled predictions put probability 0.7 on class 0.
        let q = apply_temperature(&p, t).unwrap();
        assert!((f64::from(q.row(0)[0]) - 0.7).abs() < 1e-6);
    }

    #[test]
    fn unit_temperature_is_nearly_identity_and_cnll_consistent() {
        let (p, y) = three_class();
        let q = apply_temperature(&p, 1.0).unwrap();
        for (a, b) in p.as_slice().iter().zip(q.as_slice()) {
            assert!((a - b).abs() < 1e-6);
        }
        // NLL of the f32-rounded rescaled predictions ≈ the f64 objective.
        let t = 0.8;
        let direct = temperature_nll(&p, &y, t).unwrap();
        let via = nll(&apply_temperature(&p, t).unwrap(), &y).unwrap();
        assert!((direct - via).abs() < 1e-6);
    }

    #[test]
    fn overconfident_wrong_predictions_clamp_to_t_max() {
        // Every prediction is (0.5, 0.5): all temperatures give the same NLL, the fit must
        // still return a value inside the range.
        let p = Predictions::new([0.5f32, 0.5].repeat(4), 4, 2).unwrap();
        let t = fit_temperature(&p, &[0, 1, 0, 1]).unwrap();
        assert!((T_MIN..=T_MAX).contains(&t));
        // Confidently wrong half the time: the best T is as large as allowed.
        let p = Predictions::new([0.99f32, 0.01].repeat(4), 4, 2).unwrap();
        let t = fit_temperature(&p, &[0, 1, 0, 1]).unwrap();
        assert!((t - T_MAX).abs() < 1e-6, "T = {t}");
    }

    #[test]
    fn rejects_invalid_temperature() {
        let (p, y) = three_class();
        assert_eq!(
            temperature_nll(&p, &y, 0.0),
            Err(MetricsError::InvalidTemperature { value: 0.0 })
        );
        assert!(apply_temperature(&p, f64::NAN).is_err());
    }
}
