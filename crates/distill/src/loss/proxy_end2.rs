//! Proxy-EnD² (Ryabinin, Malinin & Gales, NeurIPS 2021, "Scaling Ensemble Distribution
//! Distillation to Many Classes with Proxy Targets", §4; METHODS.md §2).
//!
//! The ensemble is summarised by a proxy Dirichlet target: mean `p̄ = (1/M) Σ_m p_m`,
//! `MKL = (1/M) Σ_m KL(p_m || p̄)`, precision `(K − 1) / (2 MKL)`, `α_t = p̄ · precision + c_t`
//! ([`proxy_target`]). The student's concentrations are `α_s = exp(z) + c_s`, and the loss is
//! the closed-form KL divergence ([`dirichlet_kl`])
//!
//! `KL(Dir(a) || Dir(b)) = lnΓ(a_0) − Σ_k lnΓ(a_k) − lnΓ(b_0) + Σ_k lnΓ(b_k)
//!                         + Σ_k (a_k − b_k)(ψ(a_k) − ψ(a_0))`,
//!
//! with `a = α_t` (a detached constant) and `b = α_s`, averaged over the batch.
//!
//! The offsets `c_s`, `c_t` ([`ProxyOffsets`]) are the reference code's `--model_offset` and
//! `--target_offset` (yandex-research/proxy-dirichlet-distillation, `imagenet/losses.py`;
//! its README trains with 1 and 1, which is METHODS.md's `+ 1`, the default here).
//!
//! **The model offset 1 has a trap at small K** (docs/methods/proxy-end2.md). The gradient
//! is `∂L/∂z_k = e^{z_k} (ψ(b_k) − ψ(b_0) − ψ(a_k) + ψ(a_0))`. With `c_s = 1`, `ψ(b_k)` stays
//! bounded as `z_k → −∞`, so at initialisation (`b_0 ≈ 2K` far below the target precision)
//! every non-dominant class is pushed down much harder than the dominant one is pushed up,
//! a network lowers all its logits together, and once they are all very negative every
//! gradient carries the factor `e^{z}` and vanishes: the student ends as the flat
//! `Dir(1, …, 1)`. With `c_s = 0`, `ψ(e^{z}) ≈ −e^{−z}` cancels that factor and the pull
//! back up stays of order one. Measured: spirals (K = 3) and CIFAR-10 (K = 10) students
//! collapse with `c_s = 1` and train with `c_s = 0` (the experiment files say which they use).
//! At ImageNet's K = 1000 (the paper) the initial `b_0 ≈ 2000` is close to the target
//! precision, which is why the reference trains with 1.

use burn::config::Config;
use burn::tensor::{FloatDType, Tensor};
use burn::tensor::activation::{log_softmax, softmax};

use super::check_shapes;
use crate::DistillError;
use super::special::{digamma, lgamma};

/// Added to the denominator `2 MKL` of the precision (f32 machine epsilon, as the reference's
/// `(K − 1) / (2 MKL + EPS)`): members that agree exactly would give an infinite precision;
/// this caps it at `(K − 1) / 1.19e-7`.
pub const PRECISION_EPS: f64 = f32::EPSILON as f64;

/// The constants added to the concentrations: `α_s = exp(z) + model`, `α_t = p̄ · precision +
/// target`. METHODS.md: 1 and 1.
#[derive(Config, Debug, PartialEq)]
pub struct ProxyOffsets {
    /// `c_s` in `α_s = exp(z) + c_s` (reference `--model_offset`); ≥ 0.
    #[config(default = 1.0)]
    pub model: f64,
    /// `c_t` in `α_t = p̄ · precision + c_t` (reference `--target_offset`); ≥ 0.
    #[config(default = 1.0)]
    pub target: f64,
}

impl ProxyOffsets {
    /// Both offsets finite and ≥ 0 (a negative one can make a concentration ≤ 0).
    pub fn validate(&self) -> Result<(), DistillError> {
        for (name, v) in [("model_offset", self.model), ("target_offset", self.target)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(DistillError::Config(format!("proxy_end2: {name} = {v} (must be finite and >= 0)")));
            }
        }
        Ok(())
    }
}

/// Proxy target concentrations `α_t = p̄ (K − 1) / (2 MKL + PRECISION_EPS) + target_offset`,
/// `[B, K]`, from teacher logits `[M, B, K]` (detached). Compute it in float64 for large
/// precisions (float32 rounding alone gives MKL ~1e-8 for agreeing members).
pub fn proxy_target(teacher_logits: Tensor<3>, target_offset: f64) -> Tensor<2> {
    let [_, b, k] = teacher_logits.dims();
    let z = teacher_logits.detach();
    let log_p = log_softmax(z.clone(), 2); // [M, B, K]
    let p = softmax(z, 2);
    let p_mean = p.clone().mean_dim(0); // [1, B, K]
    // Floor p̄ before the log: p̄_k ≥ p_m,k / M, so this only matters where every p_m,k underflows.
    let log_p_mean = p_mean.clone().clamp_min(1e-30).log();
    let mkl = (p * (log_p - log_p_mean)).sum_dim(2).mean_dim(0).reshape([b, 1]); // [B, 1]
    let precision = mkl.mul_scalar(2.0).add_scalar(PRECISION_EPS).recip().mul_scalar(k as f64 - 1.0);
    (p_mean.reshape([b, k]) * precision).add_scalar(target_offset)
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

/// Proxy-EnD² loss `mean_b KL(Dir(α_t) || Dir(exp(z_s) + c_s))`, one element.
///
/// `student_logits` `[B, K]`, `teacher_logits` `[M, B, K]` (detached).
///
/// # Errors
/// [`DistillError::Config`] for a negative or non-finite offset.
///
/// # Panics
/// If the shapes disagree (the message shows them).
pub fn proxy_end2(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<3>,
    offsets: &ProxyOffsets,
) -> Result<Tensor<1>, DistillError> {
    offsets.validate()?;
    check_shapes("proxy_end2", student_logits.dims(), teacher_logits.dims(), 1, None);
    // In float64, as the reference (`get_dirichlet_parameters(..., dtype=torch.double)`): the
    // target precision reaches (K − 1) / PRECISION_EPS ≈ 8e6 (K − 1), where lnΓ terms of size
    // ~1e8 cancel, beyond float32's resolution.
    let (student, teacher) = (student_logits.cast(FloatDType::F64), teacher_logits.cast(FloatDType::F64));
    let target = proxy_target(teacher, offsets.target);
    Ok(dirichlet_kl(target, student.exp().add_scalar(offsets.model)).mean().cast(FloatDType::F32))
}
