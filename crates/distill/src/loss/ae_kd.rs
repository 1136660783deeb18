//! AE-KD, "Agree to Disagree: Adaptive Ensemble Knowledge Distillation in Gradient Space"
//! (Du, You, Li, Wu, Wang, Qian & Zhang, NeurIPS 2020, §3.2–3.3; reference code
//! AnTuo1998/AE-KD; METHODS.md §2).
//!
//! Per batch, teacher m's KD loss `L_m = mean_b T² H[softmax(z_t,m,b / T), softmax(z_s,b / T)]`
//! has the gradient `∂L_m/∂z_s,b = T (softmax(z_s,b / T) − softmax(z_t,m,b / T)) / B`; summing it
//! over the batch gives `v_m = T mean_b (softmax(z_s,b/T) − softmax(z_t,m,b/T))` (length K,
//! [`teacher_gradients`], computed analytically, not by autodiff). The teacher weights are the
//! min-norm point of the teachers' gradient hull restricted to the capped simplex,
//!
//! `a = argmin ||Σ_m a_m v_m||²  s.t.  Σ_m a_m = 1, 0 ≤ a_m ≤ C`
//!
//! (the paper's one-class ν-SVM with `ν = 1/(C M)`, [`min_norm_capped_simplex`]), and the loss
//! is `(1 − α) CE + α Σ_m sg(a_m) L_m`.

use burn::tensor::activation::softmax;
use burn::tensor::{Int, Tensor, TensorData};
use ensembles::tile;

use super::kd::{soft_cross_entropy_rows, teacher_probs};
use super::{check_alpha_temperature, check_shapes, cross_entropy};
use crate::DistillError;

/// Default cap C on a teacher's weight (the reference code's tolerance: no teacher dominates).
pub const DEFAULT_CAP: f64 = 0.6;

/// The AE-KD loss and the teacher weights it used.
#[derive(Debug, Clone)]
pub struct AeKdOutput {
    /// `(1 − α) CE + α Σ_m sg(a_m) L_m`, one element.
    pub loss: Tensor<1>,
    /// Teacher weights `a` (length M, on the capped simplex).
    pub weights: Vec<f64>,
}

/// Batch-summed gradients of each teacher's KD loss w.r.t. the student logits,
/// `v_m = T mean_b (softmax(z_s,b / T) − softmax(z_t,m,b / T))`, shape `[M, K]`, detached.
///
/// # Panics
/// If `student_logits` `[B, K]` and `teacher_logits` `[M, B, K]` disagree.
pub fn teacher_gradients(student_logits: Tensor<2>, teacher_logits: Tensor<3>, temperature: f64) -> Tensor<2> {
    check_shapes("teacher_gradients", student_logits.dims(), teacher_logits.dims(), 1, None);
    let [m, _, k] = teacher_logits.dims();
    let p_s = softmax(student_logits.detach() / temperature, 1).unsqueeze_dim::<3>(0); // [1, B, K]
    let q = teacher_probs(teacher_logits, temperature); // [M, B, K]
    (p_s - q).mean_dim(1).reshape([m, k]) * temperature
}

/// AE-KD loss with teacher weights capped at `cap` (use [`DEFAULT_CAP`]).
///
/// `student_logits` `[B, K]`, `teacher_logits` `[M, B, K]` (detached), `labels` `[B]`.
///
/// # Errors
/// [`DistillError::Config`] for `alpha` outside `[0, 1]`, a non-positive temperature, or a cap
/// with `C·M < 1` (empty feasible set) or `C ≤ 0`.
///
/// # Panics
/// If the shapes disagree (the message shows them).
pub fn ae_kd(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<3>,
    labels: Tensor<1, Int>,
    alpha: f64,
    temperature: f64,
    cap: f64,
) -> Result<AeKdOutput, DistillError> {
    check_alpha_temperature("ae_kd", alpha, temperature)?;
    check_shapes("ae_kd", student_logits.dims(), teacher_logits.dims(), 1, Some(labels.dims()));
    let [m, b, k] = teacher_logits.dims();
    let device = student_logits.device();

    let v: Vec<f64> = teacher_gradients(student_logits.clone(), teacher_logits.clone(), temperature)
        .into_data()
        .try_into_vec_as::<f64>()
        .expect("teacher gradients as f64");
    let gram: Vec<Vec<f64>> = (0..m)
        .map(|i| (0..m).map(|j| (0..k).map(|c| v[i * k + c] * v[j * k + c]).sum()).collect())
        .collect();
    let weights = min_norm_capped_simplex(&gram, cap)?;

    // L_m for every teacher at once: the student rows tiled M times against [M*B, K] targets.
    let target = teacher_probs(teacher_logits, temperature).reshape([m * b, k]);
    let per_teacher = soft_cross_entropy_rows(tile(student_logits.clone(), m), target, temperature)
        .reshape([m, b])
        .mean_dim(1)
        .reshape([m]); // [M]
    let a = Tensor::<1>::from_data(TensorData::new(weights.iter().map(|&w| w as f32).collect(), [m]), &device);
    let soft = (per_teacher * a).sum();
    let ce = cross_entropy(student_logits, labels);
    Ok(AeKdOutput { loss: ce * (1.0 - alpha) + soft * alpha, weights })
}

/// Minimiser of `aᵀ G a` over the capped simplex `{Σ a = 1, 0 ≤ a_m ≤ cap}` for a symmetric
/// positive semi-definite Gram matrix `G` (`gram[i][j] = v_i · v_j`).
///
/// Accelerated projected gradient (FISTA with adaptive restart, step `1/L`, `L` a Gershgorin
/// bound on `2 λ_max(G)`) with the exact Euclidean projection onto the capped simplex, started
/// at the uniform weights. It stops when the Frank–Wolfe duality gap `∇f(a)·(a − s)`, with `s`
/// the linear minimiser over the set, an upper bound on `f(a) − f*`, falls below `1e-10 ·
/// trace(G)` (or exactly 0). Nearly rank-deficient `G` (teachers whose gradients almost cancel,
/// met on the spirals) converge sublinearly: after the iteration budget the iterate is still
/// returned when its certified gap is below `1e-7 · trace(G)` (a `tracing` warning says so).
/// When the minimiser is not unique (rank-deficient `G`) any minimiser may be returned.
///
/// # Errors
/// [`DistillError::Config`] if `gram` is not square and finite, if `cap ≤ 0` or
/// `cap · M < 1` (empty set), or if even the relaxed gap criterion is not met within
/// 20 000 iterations.
pub fn min_norm_capped_simplex(gram: &[Vec<f64>], cap: f64) -> Result<Vec<f64>, DistillError> {
    let m = gram.len();
    if m == 0 || gram.iter().any(|r| r.len() != m || r.iter().any(|x| !x.is_finite())) {
        return Err(DistillError::Config(format!("ae_kd: Gram matrix must be a finite non-empty square matrix, got {gram:?}")));
    }
    if !(cap > 0.0) || cap * (m as f64) < 1.0 - 1e-12 {
        return Err(DistillError::Config(format!(
            "ae_kd: cap = {cap} with {m} teachers: need cap > 0 and cap * M >= 1, otherwise no weights are feasible"
        )));
    }
    let cap = cap.min(1.0);
    let f = |a: &[f64]| -> f64 { (0..m).map(|i| a[i] * (0..m).map(|j| gram[i][j] * a[j]).sum::<f64>()).sum() };
    let grad = |a: &[f64]| -> Vec<f64> { (0..m).map(|i| 2.0 * (0..m).map(|j| gram[i][j] * a[j]).sum::<f64>()).collect() };
    let lipschitz = 2.0 * (0..m).map(|i| gram[i].iter().map(|x| x.abs()).sum::<f64>()).fold(0.0, f64::max);
    let trace: f64 = (0..m).map(|i| gram[i][i]).sum();
    let tol = 1e-10 * trace;

    let mut a = project_capped_simplex(&vec![1.0 / m as f64; m], cap);
    if lipschitz == 0.0 {
        return Ok(a); // G = 0: every feasible point is optimal.
    }
    let mut y = a.clone();
    let mut t = 1.0_f64;
    let mut f_a = f(&a);
    for _ in 0..20_000 {
        let g = grad(&a);
        if frank_wolfe_gap(&a, &g, cap) <= tol {
            return Ok(a);
        }
        let gy = grad(&y);
        let step: Vec<f64> = (0..m).map(|i| y[i] - gy[i] / lipschitz).collect();
        let a_new = project_capped_simplex(&step, cap);
        let f_new = f(&a_new);
        let t_new = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
        if f_new > f_a {
            // Adaptive restart (O'Donoghue & Candès 2015): drop the momentum.
            y = a_new.clone();
            t = 1.0;
        } else {
            let beta = (t - 1.0) / t_new;
            y = (0..m).map(|i| a_new[i] + beta * (a_new[i] - a[i])).collect();
            t = t_new;
        }
        a = a_new;
        f_a = f_new;
    }
    let gap = frank_wolfe_gap(&a, &grad(&a), cap);
    if gap <= 1e-7 * trace {
        tracing::warn!(gap, trace, "ae_kd: weight QP stopped at its iteration budget with a small certified gap");
        return Ok(a);
    }
    Err(DistillError::Config(format!("ae_kd: the weight QP did not converge (gap {gap}) for Gram matrix {gram:?}, cap {cap}")))
}

/// Frank–Wolfe gap `g·a − min_{s in set} g·s`; the minimiser fills the smallest `g_i` up to
/// `cap` each until the mass 1 is spent.
fn frank_wolfe_gap(a: &[f64], g: &[f64], cap: f64) -> f64 {
    let mut order: Vec<usize> = (0..g.len()).collect();
    order.sort_by(|&i, &j| g[i].total_cmp(&g[j]));
    let (mut mass, mut lin) = (1.0_f64, 0.0);
    for i in order {
        let s = mass.min(cap);
        lin += s * g[i];
        mass -= s;
        if mass <= 0.0 {
            break;
        }
    }
    a.iter().zip(g).map(|(x, y)| x * y).sum::<f64>() - lin
}

/// Exact Euclidean projection onto `{Σ a = 1, 0 ≤ a ≤ cap}` (requires `cap · M ≥ 1`):
/// `a_i = clamp(y_i − τ, 0, cap)` with τ found exactly on the piecewise-linear, non-increasing
/// `g(τ) = Σ_i clamp(y_i − τ, 0, cap)` between its sorted breakpoints `{y_i − cap, y_i}`.
pub(crate) fn project_capped_simplex(y: &[f64], cap: f64) -> Vec<f64> {
    let g = |tau: f64| -> f64 { y.iter().map(|&v| (v - tau).clamp(0.0, cap)).sum() };
    let mut breaks: Vec<f64> = y.iter().flat_map(|&v| [v - cap, v]).collect();
    breaks.sort_by(f64::total_cmp);
    // g(breaks[0]) = M·cap ≥ 1 and g(breaks[last]) = 0: find the segment where g crosses 1.
    let mut tau = breaks[0];
    for w in breaks.windows(2) {
        let (g0, g1) = (g(w[0]), g(w[1]));
        if g0 >= 1.0 && g1 <= 1.0 {
            tau = if g0 == g1 { w[0] } else { w[0] + (g0 - 1.0) * (w[1] - w[0]) / (g0 - g1) };
            break;
        }
    }
    y.iter().map(|&v| (v - tau).clamp(0.0, cap)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_hand_values() {
        // Already feasible points are fixed.
        assert_eq!(project_capped_simplex(&[0.5, 0.3, 0.2], 0.6), vec![0.5, 0.3, 0.2]);
        // (1, 0): unconstrained simplex projection (1, 0) → capped at 0.6: τ = 0.4 → (0.6, 0.4).
        let p = project_capped_simplex(&[1.0, 0.0], 0.6);
        assert!((p[0] - 0.6).abs() < 1e-15 && (p[1] - 0.4).abs() < 1e-15, "{p:?}");
        // (2, 1, 0) on the plain simplex (cap 1): τ = 1 → (1, 0, 0).
        let p = project_capped_simplex(&[2.0, 1.0, 0.0], 1.0);
        assert!((p[0] - 1.0).abs() < 1e-15 && p[1].abs() < 1e-15 && p[2].abs() < 1e-15, "{p:?}");
        // (0.5, 0.5, -1) with cap 1: τ = 0 → (0.5, 0.5, 0).
        let p = project_capped_simplex(&[0.5, 0.5, -1.0], 1.0);
        assert!((p[0] - 0.5).abs() < 1e-15 && (p[1] - 0.5).abs() < 1e-15 && p[2] == 0.0, "{p:?}");
        // cap·M = 1: the only feasible point is uniform.
        let p = project_capped_simplex(&[3.0, -2.0, 0.1, 7.0], 0.25);
        assert!(p.iter().all(|x| (x - 0.25).abs() < 1e-15), "{p:?}");
    }

    #[test]
    fn projection_is_the_closest_feasible_point_among_random_feasible_points() {
        // Brute-force check of optimality: no feasible point (random, on a grid) is closer.
        let y = [0.9, -0.3, 0.7, 0.2];
        let cap = 0.4;
        let p = project_capped_simplex(&y, cap);
        let d = |a: &[f64]| a.iter().zip(&y).map(|(x, v)| (x - v) * (x - v)).sum::<f64>();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12 && p.iter().all(|&x| (0.0..=cap + 1e-12).contains(&x)));
        let n = 40;
        for i in 0..=n {
            for j in 0..=n - i {
                for k in 0..=n - i - j {
                    let a = [i, j, k, n - i - j - k].map(|c| c as f64 / n as f64);
                    if a.iter().all(|&x| x <= cap + 1e-12) {
                        assert!(d(&p) <= d(&a) + 1e-12, "{a:?} closer to {y:?} than {p:?}");
                    }
                }
            }
        }
    }
}
