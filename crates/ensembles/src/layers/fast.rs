//! Fast weights `r_m` (input side) and `s_m` (output side) of a BatchEnsemble layer, their
//! initialisation, member bias, the LatentBE merge factor and the pull-to-one penalty
//! (METHODS.md §1). Shared by [`EnsConv2d`](super::EnsConv2d) and
//! [`EnsLinear`](super::EnsLinear), which differ only in how the factor meets the weight.

use burn::module::Param;
use burn::tensor::{Device, Distribution, Tensor};

use crate::config::{BatchEnsembleConfig, BiasMode, FastInit, MergeRule};

/// How a layer draws its slow weight (and, for [`EnsLinear`](super::EnsLinear), its bias).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerInit {
    /// Truncated He-normal, JAX's `variance_scaling(2.0, "fan_in", "truncated_normal")`
    /// (giung2-jax's convolutions and classifier): a standard normal truncated to ±2, times
    /// `sqrt(2 / fan_in) / 0.87962566103423978` (the std of the truncated standard normal),
    /// so the weight's variance is `2 / fan_in`. Linear bias: zero.
    TruncatedHeNormal,
    /// Untruncated He-normal `N(0, 2 / fan_in)`. Linear bias: zero.
    HeNormal,
    /// PyTorch's default for `nn.Linear`: weight and bias `U(−1/sqrt(fan_in), 1/sqrt(fan_in))`.
    TorchUniform,
}

/// Standard deviation of a standard normal truncated to [−2, 2] (JAX's constant).
const TRUNCATED_STD: f64 = 0.879_625_661_034_239_78;

impl LayerInit {
    /// A weight of `shape` with fan-in `fan_in`, drawn from the device's generator.
    pub(crate) fn weight<const D: usize>(self, shape: [usize; D], fan_in: usize, device: &Device) -> Tensor<D> {
        let he_std = (2.0 / fan_in as f64).sqrt();
        match self {
            LayerInit::TruncatedHeNormal => truncated_standard_normal(shape, device) * (he_std / TRUNCATED_STD),
            LayerInit::HeNormal => Tensor::random(shape, Distribution::Normal(0.0, he_std), device),
            LayerInit::TorchUniform => {
                let bound = 1.0 / (fan_in as f64).sqrt();
                Tensor::random(shape, Distribution::Uniform(-bound, bound), device)
            }
        }
    }

    /// A linear layer's bias row `[1, d_out]`: zero for the He initialisations.
    pub(crate) fn bias(self, d_out: usize, fan_in: usize, device: &Device) -> Tensor<2> {
        match self {
            LayerInit::TorchUniform => self.weight([1, d_out], fan_in, device),
            LayerInit::TruncatedHeNormal | LayerInit::HeNormal => Tensor::zeros([1, d_out], device),
        }
    }
}

/// A standard normal truncated to [−2, 2]: draws outside the interval are redrawn until none
/// is left (exactly the truncated distribution, which JAX samples by inverse CDF instead).
pub(crate) fn truncated_standard_normal<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    let mut t = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), device);
    loop {
        let outside = t.clone().abs().greater_elem(2.0);
        if !outside.clone().any().into_scalar::<bool>() {
            return t;
        }
        t = t.mask_where(outside, Tensor::random(shape, Distribution::Normal(0.0, 1.0), device));
    }
}

/// A trainable parameter from a computed tensor: detached first, so it is a leaf of the
/// autodiff graph even when computed from other parameters (merge, member extraction).
pub(crate) fn leaf<const D: usize>(t: Tensor<D>) -> Param<Tensor<D>> {
    Param::from_tensor(t.detach())
}

/// Initialise an `[M, n]` fast-weight matrix.
pub(crate) fn init_fast(members: usize, n: usize, init: FastInit, device: &Device) -> Param<Tensor<2>> {
    let t = match init {
        FastInit::Ones => Tensor::ones([members, n], device),
        FastInit::Normal { mean, std } => Tensor::random([members, n], Distribution::Normal(mean, std), device),
        FastInit::RandomSign { p_positive } => {
            Tensor::random([members, n], Distribution::Bernoulli(p_positive), device) * 2.0 - 1.0
        }
    };
    leaf(t)
}

/// Whether a BatchEnsemble layer adds its (shared) bias before the output fast weight `s`
/// ([`BiasMode::Shared`]); plain layers and per-member biases add it after.
pub(crate) fn bias_before_s(be: Option<&BatchEnsembleConfig>) -> bool {
    be.is_some_and(|c| c.bias == BiasMode::Shared)
}

/// Rows of the bias matrix: 1 when shared (or plain), M when per-member.
pub(crate) fn bias_rows(be: Option<&BatchEnsembleConfig>) -> usize {
    match be {
        Some(c) if c.bias == BiasMode::PerMember => c.members,
        _ => 1,
    }
}

/// View over the optional fast weights of a layer.
pub(crate) struct FastWeights<'a> {
    pub r: &'a Param<Tensor<2>>,
    pub s: &'a Param<Tensor<2>>,
}

impl FastWeights<'_> {
    /// `0.5 * Σ (1 - e)² / M` over every entry e of r and s (LatentBE code's regulariser).
    pub(crate) fn pull_to_one(&self) -> Tensor<1> {
        let members = self.r.dims()[0] as f64;
        let r = (self.r.val().neg() + 1.0).powi_scalar(2).sum();
        let s = (self.s.val().neg() + 1.0).powi_scalar(2).sum();
        (r + s) * (0.5 / members)
    }
}

/// The LatentBE merge factor `[n_out, n_in]` from `r: [M, n_in]`, `s: [M, n_out]`:
/// `FactorMean` → `s̄ r̄ᵀ`; `ProductMean` → `(1/M) Σ_m s_m r_mᵀ`.
pub(crate) fn merge_factors(r: Tensor<2>, s: Tensor<2>, rule: MergeRule) -> Tensor<2> {
    let [m, _] = r.dims();
    match rule {
        MergeRule::FactorMean => s.mean_dim(0).transpose().matmul(r.mean_dim(0)),
        MergeRule::ProductMean => s.transpose().matmul(r) / m as f64,
    }
}

/// Member `m`'s plain-layer bias `[1, n_out]` from a bias of `[1 or M, n_out]` rows: `s_m ∘ b`
/// when a shared bias is added before `s`, else row m (or the only row).
pub(crate) fn member_bias(
    bias: Option<&Param<Tensor<2>>>,
    s: Option<&Param<Tensor<2>>>,
    before_s: bool,
    m: usize,
) -> Option<Tensor<2>> {
    let b = bias?.val();
    match s {
        Some(s) if before_s => Some(b * s.val().narrow(0, m, 1)),
        _ => {
            let rows = b.dims()[0];
            Some(b.narrow(0, if rows == 1 { 0 } else { m }, 1))
        }
    }
}

/// The LatentBE merge's bias `[1, n_out]`: `s̄ ∘ b` for a shared bias added before `s`
/// (METHODS.md §1, under both merge rules), else the mean over the bias rows.
pub(crate) fn merged_bias(bias: Option<&Param<Tensor<2>>>, s: Option<&Param<Tensor<2>>>, before_s: bool) -> Option<Tensor<2>> {
    let b = bias?.val();
    match s {
        Some(s) if before_s => Some(b * s.val().mean_dim(0)),
        _ => Some(b.mean_dim(0)),
    }
}
