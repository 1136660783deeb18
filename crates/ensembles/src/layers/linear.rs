//! Linear layer, plain or BatchEnsemble (Wen et al. 2020, eq. 2; METHODS.md §1):
//!
//! - shared bias ([`BiasMode::Shared`](crate::BiasMode::Shared)), the LatentBE code's order:
//!   `y_m = s_m ∘ (W (x ∘ r_m) + b)` — cs-giung/giung2-jax @ 4c34054,
//!   `giung2/layers/linear.py` lines 62–73 (`x * r`, then the kernel, `+ b`, then `* s`);
//! - per-member bias ([`BiasMode::PerMember`](crate::BiasMode::PerMember)), the
//!   Diversity-Matters code's order: `y_m = s_m ∘ (W (x ∘ r_m)) + b_m` (cs-giung/giung2 @
//!   c8560fd, `giung2/layers/linear.py` lines 131–137).
//!
//! Member m equals a linear layer with weight `W ∘ (r_m s_mᵀ)` in Burn's `[d_in, d_out]`
//! layout and bias `s_m ∘ b` (shared) or `b_m` (per member). The classifier of a backbone is
//! drawn as giung2-jax's (He-normal weight, zero bias); the spirals MLP keeps PyTorch's
//! uniform default, as the EnD² reference code (PyTorch) does.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::fast::{FastWeights, LayerInit, bias_before_s, bias_rows, init_fast, leaf, member_bias, merge_factors, merged_bias};
use crate::config::{BatchEnsembleConfig, MergeRule};
use crate::error::EnsembleError;

/// A linear layer that is plain (`r`, `s` absent) or a BatchEnsemble layer.
#[derive(Module, Debug)]
pub struct EnsLinear {
    /// Shared slow weight `[d_in, d_out]` (`y = x W`, Burn's layout).
    pub weight: Param<Tensor<2>>,
    /// Input-side fast weights `[M, d_in]` (BatchEnsemble only).
    pub r: Option<Param<Tensor<2>>>,
    /// Output-side fast weights `[M, d_out]` (BatchEnsemble only).
    pub s: Option<Param<Tensor<2>>>,
    /// Bias `[1 or M, d_out]`.
    pub bias: Option<Param<Tensor<2>>>,
    /// BatchEnsemble with a shared bias: `b` is added before `s` (see the module docs).
    pub bias_before_s: bool,
}

impl EnsLinear {
    /// A new layer: weight and bias drawn per `init` with fan-in `d_in`, fast weights per `be`.
    pub fn new(d_in: usize, d_out: usize, bias: bool, be: Option<&BatchEnsembleConfig>, init: LayerInit, device: &Device) -> Self {
        let weight = leaf(init.weight([d_in, d_out], d_in, device));
        let (r, s) = match be {
            Some(c) => (
                Some(init_fast(c.members, d_in, c.fast_init, device)),
                Some(init_fast(c.members, d_out, c.fast_init, device)),
            ),
            None => (None, None),
        };
        let bias = bias.then(|| leaf(init.bias(d_out, d_in, device).repeat_dim(0, bias_rows(be))));
        Self { weight, r, s, bias, bias_before_s: bias_before_s(be) }
    }

    /// Number of members (1 for a plain layer).
    pub fn members(&self) -> usize {
        self.r.as_ref().map_or(1, |r| r.dims()[0])
    }

    /// `x`: `[M*B, d_in]` (tiled, member-major) → `[M*B, d_out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let (Some(r), Some(s)) = (&self.r, &self.s) else {
            let y = x.matmul(self.weight.val());
            return match &self.bias {
                Some(b) => y + b.val(),
                None => y,
            };
        };
        let [n, d_in] = x.dims();
        let m = r.dims()[0];
        assert!(n % m == 0, "BatchEnsemble linear: batch {n} is not a multiple of {m} members");
        let b = n / m;
        let x = x.reshape([m, b, d_in]) * r.val().reshape([m, 1, d_in]);
        let y = x.reshape([n, d_in]).matmul(self.weight.val());
        let d_out = y.dims()[1];
        let y = y.reshape([m, b, d_out]);
        let s = s.val().reshape([m, 1, d_out]);
        let y = match &self.bias {
            // [M, B, d_out]: s_m ∘ (· + b)
            Some(bias) if self.bias_before_s => (y + bias.val().reshape([1, 1, d_out])) * s,
            // s_m ∘ · + b_m
            Some(bias) => y * s + bias.val().reshape([bias.dims()[0], 1, d_out]),
            None => y * s,
        };
        y.reshape([n, d_out])
    }

    fn plain_with(weight: Tensor<2>, bias: Option<Tensor<2>>) -> Self {
        Self { weight: leaf(weight), r: None, s: None, bias: bias.map(leaf), bias_before_s: false }
    }

    /// Member `m` as a plain layer with the materialised weight `W ∘ (r_m s_mᵀ)` and bias
    /// `s_m ∘ b` (shared bias) or `b_m` (per member).
    pub fn member(&self, m: usize) -> Result<Self, EnsembleError> {
        let members = self.members();
        if m >= members {
            return Err(EnsembleError::MemberOutOfRange { index: m, members });
        }
        let bias = member_bias(self.bias.as_ref(), self.s.as_ref(), self.bias_before_s, m);
        let (Some(r), Some(s)) = (&self.r, &self.s) else {
            return Ok(Self::plain_with(self.weight.val(), bias));
        };
        // factor [d_out, d_in] = s_m r_mᵀ, transposed into the [d_in, d_out] layout.
        let factor = s.val().narrow(0, m, 1).transpose().matmul(r.val().narrow(0, m, 1));
        Ok(Self::plain_with(self.weight.val() * factor.transpose(), bias))
    }

    /// LatentBE merge into one plain layer; bias `s̄ ∘ b` (shared bias, under both rules) or
    /// the mean of the `b_m` (per member).
    pub fn merge(&self, rule: MergeRule) -> Self {
        let bias = merged_bias(self.bias.as_ref(), self.s.as_ref(), self.bias_before_s);
        match (&self.r, &self.s) {
            (Some(r), Some(s)) => {
                let factor = merge_factors(r.val(), s.val(), rule);
                Self::plain_with(self.weight.val() * factor.transpose(), bias)
            }
            _ => Self::plain_with(self.weight.val(), bias),
        }
    }

    pub(crate) fn fast(&self) -> Option<FastWeights<'_>> {
        Some(FastWeights { r: self.r.as_ref()?, s: self.s.as_ref()? })
    }
}
