//! Losses: the supervised cross-entropy used by every training loop, and the distillation
//! losses of METHODS.md §2, one module per loss:
//!
//! | module | loss | paper |
//! |---|---|---|
//! | [`kd`] | KD against the ensemble mean | Hinton, Vinyals & Dean 2015 |
//! | [`one_to_one`] | member-to-member DE → BE | Mariet et al. 2021 |
//! | [`ae_kd`] | adaptive teacher weights (min-norm gradient) | Du et al. 2020 |
//! | [`end2`] | Dirichlet negative log-likelihood of the members | Malinin et al. 2019 |
//! | [`proxy_end2`] | KL to a proxy Dirichlet target | Ryabinin et al. 2021 |
//!
//! [`special`] holds the differentiable `lnΓ` and `ψ` the Dirichlet losses need.
//!
//! Conventions: student logits are `[B, K]` (or `[M*B, K]` tiled member-major for a
//! BatchEnsemble student, see [`ensembles::tile`]), teacher logits `[M, B, K]`, labels `[B]`.
//! Every loss returns a scalar (`Tensor<1>` of one element), the mean over the batch,
//! differentiable with respect to the student logits; teacher logits are detached.
//! Hyper-parameters are checked (a [`DistillError::Config`] names the value); mismatched
//! tensor shapes are programming errors and panic with both shapes in the message.

pub mod ae_kd;
pub mod dirichlet;
pub mod end2;
pub mod kd;
pub mod one_to_one;
pub mod proxy_end2;
pub mod special;

pub use dirichlet::DirichletHead;
pub use ae_kd::{AeKdOutput, ae_kd, min_norm_capped_simplex, teacher_gradients};
pub use end2::end2;
pub use kd::kd;
pub use one_to_one::one_to_one;
pub use proxy_end2::{ProxyOffsets, dirichlet_kl, proxy_end2, proxy_target};

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

use crate::DistillError;

/// Mean cross-entropy `-(1/N) Σ_n log softmax(z_n)_{y_n}`; `logits` `[N, K]`, `labels` `[N]`.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = logits.dims();
    log_softmax(logits, 1).gather(1, labels.reshape([n, 1])).mean().neg()
}

/// Checks the KD weight `alpha ∈ [0, 1]` and the temperature `T > 0` (both finite).
pub(crate) fn check_alpha_temperature(loss: &str, alpha: f64, temperature: f64) -> Result<(), DistillError> {
    if !(0.0..=1.0).contains(&alpha) {
        return Err(DistillError::Config(format!("{loss}: alpha = {alpha} (must be in [0, 1])")));
    }
    check_temperature(loss, temperature)
}

/// Checks a temperature `T > 0`, finite.
pub(crate) fn check_temperature(loss: &str, temperature: f64) -> Result<(), DistillError> {
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(DistillError::Config(format!("{loss}: temperature = {temperature} (must be finite and > 0)")));
    }
    Ok(())
}

/// Panics unless teacher logits `[M, B, K]` match `rows = members_in_student * B` student
/// rows of `K` classes (and, if given, `B` labels).
pub(crate) fn check_shapes(
    loss: &str,
    student: [usize; 2],
    teacher: [usize; 3],
    members_in_student: usize,
    labels: Option<[usize; 1]>,
) {
    let [n, k] = student;
    let [_, b, kt] = teacher;
    assert!(
        kt == k && n == members_in_student * b && labels.is_none_or(|[l]| l == b),
        "{loss}: student logits {student:?} (expected [{members_in_student}*B, K]), teacher logits {teacher:?} \
         ([M, B, K]) and labels {labels:?} ([B]) do not agree"
    );
    assert!(teacher[0] > 0 && b > 0 && k > 0, "{loss}: empty teacher logits {teacher:?}");
}
