//! Ensembles seen as M members in evaluation mode, for input-gradient perturbations
//! (METHODS.md §3: "student in eval mode with unmerged BE weights"; teachers likewise).
//!
//! # Evaluation mode on the autodiff device
//!
//! The perturbations differentiate with respect to the INPUT only. Every member is used
//! through [`Module::valid`]: a copy whose parameters live on the inner (non-autodiff)
//! device and whose module-owned training flags are disabled. Fed an autodiff input, such a
//! copy computes on the autodiff device with its parameters as constants, so
//! - no parameter gradient is recorded (only the input leaf receives one), and
//! - Burn's `BatchNorm` takes its inference path (`input.is_autodiff() && training` is
//!   false), i.e. it normalises with the running statistics and never updates them.
//!
//! Both facts are tested in `tests/eval_mode.rs`. In evaluation mode the examples of a batch
//! do not interact, which is what makes a per-example gradient of a batch-mean objective
//! well defined.

use burn::module::Module;
use burn::tensor::{Tensor, s};
use ensembles::{Backbone, DeepEnsemble};

use crate::error::PerturbError;

/// M networks used in evaluation mode on inputs of rank `D` (images `[B, C, H, W]`: D = 4;
/// points `[B, d]`: D = 2), the view every perturbation takes of teachers and students.
/// [`Ensemble`] implements it for the CIFAR backbones; other model families (the spirals'
/// MLPs in `distill`) implement it to get the same perturbations.
///
/// Contract of [`member_logits`](EvalMembers::member_logits): the parameters are constants
/// (no parameter gradient is recorded, no running statistic changes) and examples do not
/// interact, so the gradient of a batch mean with respect to an input leaf is per example.
pub trait EvalMembers<const D: usize> {
    /// Number of members M.
    fn len(&self) -> usize;

    /// `true` when there is no member.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of classes K.
    fn classes(&self) -> usize;

    /// Check the members are usable; `role` (`"teachers"`, `"student"`) goes into the error.
    /// Returns M.
    fn validate(&self, role: &'static str) -> Result<usize, PerturbError> {
        match self.len() {
            0 => Err(PerturbError::EmptyEnsemble { role }),
            m => Ok(m),
        }
    }

    /// Evaluation-mode logits `[B, K]` of member `m < M` on `x` `[B, ...]`.
    fn member_logits(&self, m: usize, x: Tensor<D>) -> Tensor<2>;

    /// Evaluation-mode logits of members `i` and `j` (default: two [`member_logits`]
    /// calls; a BatchEnsemble runs once for both).
    ///
    /// [`member_logits`]: EvalMembers::member_logits
    fn pair_logits(&self, i: usize, j: usize, x: Tensor<D>) -> (Tensor<2>, Tensor<2>) {
        (self.member_logits(i, x.clone()), self.member_logits(j, x))
    }
}

impl<const D: usize, E: EvalMembers<D> + ?Sized> EvalMembers<D> for &E {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn classes(&self) -> usize {
        (**self).classes()
    }
    fn validate(&self, role: &'static str) -> Result<usize, PerturbError> {
        (**self).validate(role)
    }
    fn member_logits(&self, m: usize, x: Tensor<D>) -> Tensor<2> {
        (**self).member_logits(m, x)
    }
    fn pair_logits(&self, i: usize, j: usize, x: Tensor<D>) -> (Tensor<2>, Tensor<2>) {
        (**self).pair_logits(i, j, x)
    }
}

/// `index < M` for `members`, else the error naming `role`.
pub(crate) fn check_member<const D: usize, E: EvalMembers<D>>(
    members: &E,
    role: &'static str,
    index: usize,
) -> Result<(), PerturbError> {
    let m = members.validate(role)?;
    if index >= m {
        return Err(PerturbError::MemberOutOfRange { role, index, members: m });
    }
    Ok(())
}

/// Both `i` and `j` are members of an ensemble with at least two; returns M.
pub(crate) fn check_pair_members<const D: usize, E: EvalMembers<D>>(
    members: &E,
    role: &'static str,
    i: usize,
    j: usize,
) -> Result<usize, PerturbError> {
    let m = members.validate(role)?;
    if m < 2 {
        return Err(PerturbError::TooFewMembers { role, members: m });
    }
    check_member(members, role, i)?;
    check_member(members, role, j)?;
    Ok(m)
}

/// M ensemble members, either separate plain networks (a Deep Ensemble) or one
/// BatchEnsemble network over a tiled, member-major batch.
#[derive(Debug, Clone, Copy)]
pub enum Ensemble<'a> {
    /// Deep Ensemble members: one plain [`Backbone`] each (`members == 1`).
    Members(&'a [Backbone]),
    /// One BatchEnsemble [`Backbone`] with `members >= 1`, used unmerged.
    BatchEnsemble(&'a Backbone),
}

impl<'a> From<&'a DeepEnsemble> for Ensemble<'a> {
    fn from(de: &'a DeepEnsemble) -> Self {
        Ensemble::Members(&de.members)
    }
}

impl<'a> From<&'a [Backbone]> for Ensemble<'a> {
    fn from(members: &'a [Backbone]) -> Self {
        Ensemble::Members(members)
    }
}

impl<'a> From<&'a Backbone> for Ensemble<'a> {
    /// A single backbone: a BatchEnsemble of `backbone.members` members (1 if plain).
    fn from(backbone: &'a Backbone) -> Self {
        Ensemble::BatchEnsemble(backbone)
    }
}

impl Ensemble<'_> {
    /// Number of members M.
    pub fn len(&self) -> usize {
        match self {
            Ensemble::Members(m) => m.len(),
            Ensemble::BatchEnsemble(b) => b.members,
        }
    }

    /// Number of classes K (width of the first member's classifier; 0 when empty).
    pub fn classes(&self) -> usize {
        match self {
            Ensemble::Members(m) => m.first().map_or(0, |b| b.head.weight.dims()[1]),
            Ensemble::BatchEnsemble(b) => b.head.weight.dims()[1],
        }
    }

    /// `true` when there is no member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Check the ensemble is usable; `role` (`"teachers"`, `"student"`) goes into the error.
    pub fn validate(&self, role: &'static str) -> Result<usize, PerturbError> {
        if let Ensemble::Members(members) = self {
            if let Some((index, b)) = members.iter().enumerate().find(|(_, b)| b.members != 1) {
                return Err(PerturbError::NotPlain { role, index, members: b.members });
            }
        }
        match self.len() {
            0 => Err(PerturbError::EmptyEnsemble { role }),
            m => Ok(m),
        }
    }

    /// Eval-mode logits `[B, K]` of member `m` on `x` `[B, C, H, W]` (see the module docs).
    /// For a BatchEnsemble the whole tiled batch is run and member m's rows are returned.
    pub fn eval_member_logits(&self, m: usize, x: Tensor<4>) -> Result<Tensor<2>, PerturbError> {
        check_member(self, "ensemble", m)?;
        Ok(self.eval_member_logits_unchecked(m, x))
    }

    pub(crate) fn eval_member_logits_unchecked(&self, m: usize, x: Tensor<4>) -> Tensor<2> {
        match self {
            Ensemble::Members(members) => members[m].valid().forward(x),
            Ensemble::BatchEnsemble(b) => {
                let z = b.valid().member_logits(x);
                let [_, batch, k] = z.dims();
                z.slice(s![m..m + 1]).reshape([batch, k])
            }
        }
    }

    /// Eval-mode logits `(z_i, z_j)`, each `[B, K]`, of two members on `x`. For a Deep
    /// Ensemble only those two members run; a BatchEnsemble runs once for both.
    pub(crate) fn eval_pair_logits(&self, i: usize, j: usize, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        match self {
            Ensemble::Members(_) => {
                (self.eval_member_logits_unchecked(i, x.clone()), self.eval_member_logits_unchecked(j, x))
            }
            Ensemble::BatchEnsemble(b) => {
                let z = b.valid().member_logits(x);
                let [_, batch, k] = z.dims();
                let zi = z.clone().slice(s![i..i + 1]).reshape([batch, k]);
                let zj = z.slice(s![j..j + 1]).reshape([batch, k]);
                (zi, zj)
            }
        }
    }
}

impl EvalMembers<4> for Ensemble<'_> {
    fn len(&self) -> usize {
        Ensemble::len(self)
    }
    fn classes(&self) -> usize {
        Ensemble::classes(self)
    }
    fn validate(&self, role: &'static str) -> Result<usize, PerturbError> {
        Ensemble::validate(self, role)
    }
    fn member_logits(&self, m: usize, x: Tensor<4>) -> Tensor<2> {
        self.eval_member_logits_unchecked(m, x)
    }
    fn pair_logits(&self, i: usize, j: usize, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        self.eval_pair_logits(i, j, x)
    }
}
