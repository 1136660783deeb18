//! TDiv-SDiv perturbation (Nam, Yoon, Lee, Kim & Lee 2022, "Improving Ensemble Distillation
//! With Weight Averaging and Diversifying Perturbation", §3.3; METHODS.md §3), following the
//! authors' JAX code:
//!
//! - draw ONE ordered pair `(i, j)`, `i != j`, per step, shared by the teachers and the student
//!   members;
//! - `div(P)(x) = mean_b H[sg(p_j(x_b)), p_i(x_b)] = -mean_b Σ_k sg(p_j,k) log p_i,k` at T = 1;
//! - `L(x) = div(teachers)(x) - div(student members)(x)`, every network in evaluation mode,
//!   the student an UNMERGED BatchEnsemble;
//! - one ascent step per example: `x'_b = clip(x_b + η √D g_b / ||g_b||₂, 0, 1)` with
//!   `g = ∇_x L`, `η = 1/255` (so the step norm is `√D / 255`).
//!
//! Random draws: `i = random_range(0..M)`, then `j' = random_range(0..M-1)`,
//! `j = j' + (j' >= i)` — uniform over the `M(M-1)` ordered pairs.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_softmax, softmax};
use rand::Rng;

use crate::ensemble::{EvalMembers, check_pair_members};
use crate::error::PerturbError;
use crate::ods::check_input;
use crate::step::{input_gradient, input_leaf};

/// Draw an ordered pair `(i, j)` of distinct members out of `members >= 2`.
pub fn draw_pair<R: Rng + ?Sized>(members: usize, rng: &mut R) -> Result<(usize, usize), PerturbError> {
    if members < 2 {
        return Err(PerturbError::TooFewMembers { role: "ensemble", members });
    }
    let i = rng.random_range(0..members);
    let j = rng.random_range(0..members - 1);
    Ok((i, if j >= i { j + 1 } else { j }))
}

/// `div(P)(x) = -mean_b Σ_k sg(softmax(z_j))_k log softmax(z_i)_k`, a scalar.
fn divergence(zi: Tensor<2>, zj: Tensor<2>) -> Tensor<1> {
    let target = softmax(zj.detach(), 1);
    -(target * log_softmax(zi, 1)).sum_dim(1).mean()
}

/// Check teachers and student for a TDiv-SDiv step; returns the shared member count M.
pub fn check_tdiv_sdiv<const D: usize, T: EvalMembers<D>, S: EvalMembers<D>>(
    teachers: &T,
    student: &S,
) -> Result<usize, PerturbError> {
    let t = teachers.validate("teachers")?;
    let s = student.validate("student")?;
    if t < 2 {
        return Err(PerturbError::TooFewMembers { role: "teachers", members: t });
    }
    if s < 2 {
        return Err(PerturbError::TooFewMembers { role: "student", members: s });
    }
    if t != s {
        return Err(PerturbError::MemberCountMismatch { teachers: t, student: s });
    }
    let (kt, ks) = (teachers.classes(), student.classes());
    if kt != ks {
        return Err(PerturbError::ClassMismatch { teachers: kt, student: ks });
    }
    Ok(t)
}

/// `∇_x [div(teachers)(x) - div(student)(x)]` (the input's shape) for the pair `(i, j)`, all
/// networks in evaluation mode. The batch mean makes each example's gradient `1/B` of its
/// own; the per-example normalisation of the step removes that factor.
pub fn tdiv_sdiv_gradient<const D: usize, T: EvalMembers<D>, S: EvalMembers<D>>(
    x: &Tensor<D>,
    teachers: T,
    student: S,
    i: usize,
    j: usize,
) -> Result<Tensor<D>, PerturbError> {
    check_input(x)?;
    check_tdiv_sdiv(&teachers, &student)?;
    if i == j {
        return Err(PerturbError::SamePair(i));
    }
    check_pair_members(&teachers, "teachers", i, j)?;
    check_pair_members(&student, "student", i, j)?;
    let leaf = input_leaf(x);
    let (ti, tj) = teachers.pair_logits(i, j, leaf.clone());
    let (si, sj) = student.pair_logits(i, j, leaf.clone());
    let objective = divergence(ti, tj) - divergence(si, sj);
    Ok(input_gradient(&leaf, objective))
}
