//! 2-D convolution, plain or BatchEnsemble (Wen et al. 2020, eq. 2 applied to convolutions),
//! with `r_m` over input channels and `s_m` over output channels (METHODS.md §1):
//!
//! - shared bias ([`BiasMode::Shared`](crate::BiasMode::Shared)), the LatentBE code's order:
//!   `y_m = s_m ∘ (W * (x ∘ r_m) + b)` — cs-giung/giung2-jax @ 4c34054,
//!   `giung2/layers/conv.py` lines 126–146 (`x * r`, the kernel, `+ b` at 139–141, `* s` at
//!   143–145);
//! - per-member bias ([`BiasMode::PerMember`](crate::BiasMode::PerMember)), the
//!   Diversity-Matters code's order: `y_m = s_m ∘ (W * (x ∘ r_m)) + b_m` (cs-giung/giung2 @
//!   c8560fd, `giung2/layers/conv.py` lines 169–175).
//!
//! Either way member m is a plain convolution with weight `W ∘ (s_m r_mᵀ)` and bias `s_m ∘ b`
//! (shared) or `b_m` (per member). Slow weights: truncated He-normal by default (giung2-jax).

use burn::module::{Module, Param};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

use super::fast::{FastWeights, LayerInit, bias_before_s, bias_rows, init_fast, leaf, member_bias, merge_factors, merged_bias};
use crate::config::{BatchEnsembleConfig, MergeRule};
use crate::error::EnsembleError;

/// A square-kernel 2-D convolution that is plain (`r`, `s` absent) or a BatchEnsemble layer.
#[derive(Module, Debug)]
pub struct EnsConv2d {
    /// Shared slow weight `[C_out, C_in, k, k]`.
    pub weight: Param<Tensor<4>>,
    /// Input-side fast weights `[M, C_in]` (BatchEnsemble only).
    pub r: Option<Param<Tensor<2>>>,
    /// Output-side fast weights `[M, C_out]` (BatchEnsemble only).
    pub s: Option<Param<Tensor<2>>>,
    /// Bias `[1 or M, C_out]` (rows: shared or per member), if any.
    pub bias: Option<Param<Tensor<2>>>,
    /// Stride (both directions).
    pub stride: usize,
    /// Zero padding (all four sides).
    pub padding: usize,
    /// BatchEnsemble with a shared bias: `b` is added before `s` (see the module docs).
    pub bias_before_s: bool,
}

impl EnsConv2d {
    /// A new layer: slow weight drawn per `init` with fan-in `C_in k²` (the reference code:
    /// [`LayerInit::TruncatedHeNormal`]), zero bias if `bias`, fast weights per `be`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
        padding: usize,
        bias: bool,
        be: Option<&BatchEnsembleConfig>,
        init: LayerInit,
        device: &Device,
    ) -> Self {
        let [c_in, c_out] = channels;
        let weight = leaf(init.weight([c_out, c_in, kernel, kernel], c_in * kernel * kernel, device));
        let (r, s) = match be {
            Some(c) => (
                Some(init_fast(c.members, c_in, c.fast_init, device)),
                Some(init_fast(c.members, c_out, c.fast_init, device)),
            ),
            None => (None, None),
        };
        let bias = bias.then(|| leaf(Tensor::zeros([bias_rows(be), c_out], device)));
        Self { weight, r, s, bias, stride, padding, bias_before_s: bias_before_s(be) }
    }

    /// Number of members (1 for a plain layer).
    pub fn members(&self) -> usize {
        self.r.as_ref().map_or(1, |r| r.dims()[0])
    }

    fn options(&self) -> ConvOptions<2> {
        ConvOptions::new([self.stride; 2], [self.padding; 2], [1, 1], 1)
    }

    /// `x`: `[M*B, C_in, H, W]` (tiled, member-major; `[B, …]` for a plain layer)
    /// → `[M*B, C_out, H', W']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let (Some(r), Some(s)) = (&self.r, &self.s) else {
            let bias = self.bias.as_ref().map(|b| b.val().reshape([-1]));
            return conv2d(x, self.weight.val(), bias, self.options());
        };
        let [n, c_in, h, w] = x.dims();
        let m = r.dims()[0];
        assert!(n % m == 0, "BatchEnsemble conv: batch {n} is not a multiple of {m} members");
        let b = n / m;
        // [M, B, C_in, H, W] ∘ r_m
        let x = x.reshape([m, b, c_in, h, w]) * r.val().reshape([m, 1, c_in, 1, 1]);
        let y = conv2d(x.reshape([n, c_in, h, w]), self.weight.val(), None, self.options());
        let [_, c_out, ho, wo] = y.dims();
        let mut y = y.reshape([m, b, c_out, ho, wo]);
        let s = s.val().reshape([m, 1, c_out, 1, 1]);
        y = match &self.bias {
            // [M, B, C_out, H', W']: s_m ∘ (· + b)
            Some(bias) if self.bias_before_s => (y + bias.val().reshape([1, 1, c_out, 1, 1])) * s,
            // s_m ∘ · + b_m
            Some(bias) => y * s + bias.val().reshape([bias.dims()[0], 1, c_out, 1, 1]),
            None => y * s,
        };
        y.reshape([n, c_out, ho, wo])
    }

    fn plain_with(&self, weight: Tensor<4>, bias: Option<Tensor<2>>) -> Self {
        Self {
            weight: leaf(weight),
            r: None,
            s: None,
            bias: bias.map(leaf),
            stride: self.stride,
            padding: self.padding,
            bias_before_s: false,
        }
    }

    /// Member `m` as a plain layer with the materialised weight `W ∘ (s_m r_mᵀ)` and bias
    /// `s_m ∘ b` (shared bias) or `b_m` (per member).
    pub fn member(&self, m: usize) -> Result<Self, EnsembleError> {
        let members = self.members();
        if m >= members {
            return Err(EnsembleError::MemberOutOfRange { index: m, members });
        }
        let bias = member_bias(self.bias.as_ref(), self.s.as_ref(), self.bias_before_s, m);
        let (Some(r), Some(s)) = (&self.r, &self.s) else {
            return Ok(self.plain_with(self.weight.val(), bias));
        };
        let factor = s.val().narrow(0, m, 1).transpose().matmul(r.val().narrow(0, m, 1));
        Ok(self.plain_with(self.apply_factor(factor), bias))
    }

    /// `W ∘ factor` with `factor: [C_out, C_in]` broadcast over the kernel.
    fn apply_factor(&self, factor: Tensor<2>) -> Tensor<4> {
        let [c_out, c_in] = factor.dims();
        self.weight.val() * factor.reshape([c_out, c_in, 1, 1])
    }

    /// LatentBE merge into one plain layer; bias `s̄ ∘ b` (shared bias, under both rules) or
    /// the mean of the `b_m` (per member).
    pub fn merge(&self, rule: MergeRule) -> Self {
        let bias = merged_bias(self.bias.as_ref(), self.s.as_ref(), self.bias_before_s);
        match (&self.r, &self.s) {
            (Some(r), Some(s)) => {
                let w = self.apply_factor(merge_factors(r.val(), s.val(), rule));
                self.plain_with(w, bias)
            }
            _ => self.plain_with(self.weight.val(), bias),
        }
    }

    pub(crate) fn fast(&self) -> Option<FastWeights<'_>> {
        Some(FastWeights { r: self.r.as_ref()?, s: self.s.as_ref()? })
    }
}
