//! Statistics for comparing rows of a results table and uncertainty scores:
//!
//! - [`welch_interval`]: the confidence interval of a difference of two means from each
//!   group's mean, sample standard deviation (n − 1) and size, by Welch's t with the
//!   Welch–Satterthwaite degrees of freedom
//!   `ν = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1))`,
//!   `d ± t_{(1+level)/2, ν} √(s_a²/n_a + s_b²/n_b)` (Welch 1947), the Student-t quantile
//!   from `statrs`;
//! - [`spearman`]: Spearman's rank correlation, the Pearson correlation of the ranks with
//!   ties given their average rank (as `scipy.stats.spearmanr`).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{MetricsError, Result};

/// One group of a comparison: mean, sample standard deviation (n − 1) and size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GroupStats {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (denominator n − 1).
    pub std: f64,
    /// Number of values.
    pub n: usize,
}

/// A confidence interval of `a − b`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// `mean_a − mean_b`.
    pub difference: f64,
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Welch–Satterthwaite degrees of freedom (infinite when both standard deviations are 0).
    pub df: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
}

/// Welch's `level` confidence interval of `a.mean − b.mean` (see the module docs). Needs
/// n ≥ 2 in each group. Two groups without spread give the degenerate interval `[d, d]`.
pub fn welch_interval(a: GroupStats, b: GroupStats, level: f64) -> Result<Interval> {
    for g in [a, b] {
        if g.n < 2 {
            return Err(MetricsError::TooFewValues { what: "Welch's interval (per group)", needed: 2, got: g.n });
        }
        for (what, v) in [("group mean", g.mean), ("group standard deviation", g.std)] {
            if !v.is_finite() {
                return Err(MetricsError::NotFinite { what, value: v });
            }
        }
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(MetricsError::NotFinite { what: "confidence level in (0, 1)", value: level });
    }
    let (va, vb) = (a.std * a.std / a.n as f64, b.std * b.std / b.n as f64);
    let se = (va + vb).sqrt();
    let difference = a.mean - b.mean;
    if se == 0.0 {
        return Ok(Interval { difference, lo: difference, hi: difference, df: f64::INFINITY, level });
    }
    let df = (va + vb).powi(2) / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64);
    let t = StudentsT::new(0.0, 1.0, df).expect("positive finite degrees of freedom").inverse_cdf(0.5 + level / 2.0);
    Ok(Interval { difference, lo: difference - t * se, hi: difference + t * se, df, level })
}

/// Ranks 1..=n, ties sharing their average rank.
fn ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let mut r = vec![0.0; x.len()];
    let mut start = 0;
    while start < idx.len() {
        let mut end = start + 1;
        while end < idx.len() && x[idx[end]] == x[idx[start]] {
            end += 1;
        }
        let avg = (start + end + 1) as f64 / 2.0; // ranks start+1 ..= end
        for &i in &idx[start..end] {
            r[i] = avg;
        }
        start = end;
    }
    r
}

/// Spearman's ρ of two equally long series of finite values (n ≥ 2). A constant series has
/// no ranking: ρ is then NaN, as in scipy.
pub fn spearman(a: &[f64], b: &[f64]) -> Result<f64> {
    if a.len() != b.len() {
        return Err(MetricsError::LengthMismatch { what: "second series", got: b.len(), expected: a.len() });
    }
    if a.len() < 2 {
        return Err(MetricsError::TooFewValues { what: "Spearman's rank correlation", needed: 2, got: a.len() });
    }
    for &v in a.iter().chain(b) {
        if !v.is_finite() {
            return Err(MetricsError::NotFinite { what: "a ranked value", value: v });
        }
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let mean = (n + 1.0) / 2.0;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - mean) * (y - mean);
        saa += (x - mean) * (x - mean);
        sbb += (y - mean) * (y - mean);
    }
    Ok(sab / (saa * sbb).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(xs: &[f64]) -> GroupStats {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let std = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        GroupStats { mean, std, n: xs.len() }
    }

    #[test]
    fn welch_interval_matches_scipy() {
        // Golden values from scipy 1.16 (SciPy's Welch test):
        //   a = [0.201, 0.205, 0.198]; b = [0.270, 0.266, 0.274, 0.269]
        //   r = scipy.stats.ttest_ind(a, b, equal_var=False)
        //   r.df → 4.279491873056493
        //   r.confidence_interval(0.95) → (−0.07549489742773155, −0.06133843590560181)
        // By hand: d = 0.201333 − 0.26975 = −0.068417; s_a²/3 = 4.1111e-6, s_b²/4 = 2.72917e-6;
        // ν = (6.84028e-6)² / ((4.1111e-6)²/2 + (2.72917e-6)²/3) = 4.67894e-11 / 1.09334e-11 = 4.2795.
        let r = welch_interval(g(&[0.201, 0.205, 0.198]), g(&[0.270, 0.266, 0.274, 0.269]), 0.95).unwrap();
        assert!((r.difference + 0.068_416_7).abs() < 1e-6, "{r:?}");
        assert!((r.df - 4.279_491_873_056_493).abs() < 1e-9, "{r:?}");
        assert!((r.lo + 0.075_494_897_427_731_55).abs() < 1e-9 && (r.hi + 0.061_338_435_905_601_81).abs() < 1e-9, "{r:?}");
        // Equal variances and sizes: ν = 2(n − 1); n = 2 → t_{0.975, 2} = 4.302652729749462
        // (scipy.stats.t.ppf(0.975, 2)), se = √(1/2 + 1/2) = 1.
        let r = welch_interval(GroupStats { mean: 1.0, std: 1.0, n: 2 }, GroupStats { mean: 0.0, std: 1.0, n: 2 }, 0.95).unwrap();
        assert!((r.df - 2.0).abs() < 1e-12);
        assert!((r.hi - (1.0 + 4.302_652_729_749_462)).abs() < 1e-9, "{r:?}");
        // No spread: a point; one value: an error naming the statistic.
        let p = GroupStats { mean: 2.0, std: 0.0, n: 3 };
        assert_eq!(welch_interval(p, p, 0.95).unwrap().lo, 0.0);
        let e = welch_interval(GroupStats { n: 1, ..p }, p, 0.95).unwrap_err().to_string();
        assert!(e.contains("Welch"), "{e}");
    }

    #[test]
    fn spearman_matches_scipy() {
        // scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) → 0.8207826816681233
        let r = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap();
        assert!((r - 0.820_782_681_668_123_3).abs() < 1e-12, "{r}");
        assert!((spearman(&[3.0, 1.0, 2.0], &[30.0, 10.0, 20.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).unwrap().is_nan());
        assert!(matches!(spearman(&[1.0], &[1.0, 2.0]), Err(MetricsError::LengthMismatch { .. })));
        assert!(matches!(spearman(&[1.0, f64::NAN], &[1.0, 2.0]), Err(MetricsError::NotFinite { .. })));
    }
}
