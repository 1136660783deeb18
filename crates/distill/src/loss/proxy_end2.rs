//! Proxy-EnD² (Ryabinin, Malinin & Gales, NeurIPS 2021, "Scaling Ensemble Distribution
//! Distillation to Many Classes with Proxy Targets", §4; METHODS.md §2).
//!
//! The ensemble is summarised by a proxy Dirichlet target: mean `p̄ = (1/M) Σ_m p_m`,
//! `MKL = (1/M) Σ_m KL(p_m || p̄)`, precision `(K − 1) / (2 MKL)`, `α_t = p̄ · precision + 1`
//! ([`proxy_target`]). The student's concentrations are `α_s = exp(z) + 1`, and the loss is the
//! closed-form KL divergence ([`dirichlet_kl`])
//!
//! `KL(Dir(a) || Dir(b)) = lnΓ(a_0) − Σ_k lnΓ(a_k) − lnΓ(b_0) + Σ_k lnΓ(b_k)
//!                         + Σ_k (a_k − b_k)(ψ(a_k) − ψ(a_0))`,
//!
//! with `a = α_t` (a detached constant) and `b = α_s`, averaged over the batch.

use burn::tensor::{FloatDType, Tensor};
use burn::tensor::activation::{log_softmax, softmax};

use super::check_shapes;
use super::special::{digamma, lgamma};

/// Floor on MKL (f32 machine epsilon): members that agree exactly would give an infinite
/// precision; the floor caps it at `(K − 1) / (2 · 1.19e-7)`.
pub const MKL_FLOOR: f64 = f32::EPSILON as f64;

/// Proxy target concentrations `α_t = p̄ (K − 1) / (2 max(MKL, MKL_FLOOR)) + 1`, `[B, K]`,
/// from teacher logits `[M, B, K]` (detached).
pub fn proxy_target(teacher_logits: Tensor<3>) -> Tensor<2> {
    let [_, b, k] = teacher_logits.dims();
    let z = teacher_logits.detach();
    let log_p = log_softmax(z.clone(), 2); // [M, B, K]
    let p = softmax(z, 2);
    let p_mean = p.clone().mean_dim(0); // [1, B, K]
    // Floor p̄ before the log: p̄_k ≥ p_m,k / M, so this only matters where every p_m,k underflows.
    let log_p_mean = p_mean.clone().clamp_min(1e-30).log();
    let mkl = (p * (log_p - log_p_mean)).sum_dim(2).mean_dim(0).reshape([b, 1]); // [B, 1]
    let precision = mkl.clamp_min(MKL_FLOOR).recip().mul_scalar((k as f64 - 1.0) / 2.0);
    (p_mean.reshape([b, k]) * precision).add_scalar(1.0)
}

/// Per-row `KL(Dir(target) || Dir(student))`, `[B]`, for concentrations `[B, K]`; the target
/// is detached (its lnΓ and ψ are constants), the student part is differentiable.
///
/// # Panics
/// If the two shapes differ.
pub fn dirichlet_kl(target: Tensor<2>, student: Tensor<2>) -> Tensor<1> {
    let (dt, ds) = (target.dims(), student.dims());
    assert_eq!(dt, ds, "dirichlet_kl: target concentrations {dt:?} and student concentrations {ds:?} differ");
    let [b, _] = dt;
    let a = target.detach();
    let a0 = a.clone().sum_dim(1); // [B, 1]
    let b0 = student.clone().sum_dim(1);
    let target_part = lgamma(a0.clone()) - lgamma(a.clone()).sum_dim(1); // constant
    let psi_diff = digamma(a.clone()) - digamma(a0); // constant, [B, K]
    let kl = target_part - lgamma(b0) + lgamma(student.clone()).sum_dim(1) + ((a - student) * psi_diff).sum_dim(1);
    kl.reshape([b])
}

/// Proxy-EnD² loss `mean_b KL(Dir(α_t) || Dir(exp(z_s) + 1))`, one element.
///
/// `student_logits` `[B, K]`, `teacher_logits` `[M, B, K]` (detached).
///
/// # Panics
/// If the shapes disagree (the message shows them).
pub fn proxy_end2(student_logits: Tensor<2>, teacher_logits: Tensor<3>) -> Tensor<1> {
    check_shapes("proxy_end2", student_logits.dims(), teacher_logits.dims(), 1, None);
    // In float64, as the reference (`get_dirichlet_parameters(..., dtype=torch.double)`): the
    // target precision reaches (K − 1) / (2 · MKL_FLOOR) ≈ 4e6 (K − 1), where lnΓ terms of size
    // ~1e8 cancel, beyond float32's resolution.
    let (student, teacher) = (student_logits.cast(FloatDType::F64), teacher_logits.cast(FloatDType::F64));
    let target = proxy_target(teacher);
    dirichlet_kl(target, student.exp().add_scalar(1.0)).mean().cast(FloatDType::F32)
}
