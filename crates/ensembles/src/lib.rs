//! # ensembles
//!
//! Backbones for CIFAR-sized images (CIFAR ResNet-{8,20,32,56,…} of He et al. 2016 and the
//! pre-activation Wide ResNet WRN-d-k of Zagoruyko & Komodakis 2016), Deep Ensembles,
//! BatchEnsemble (Wen et al. 2020) and the LatentBE merge (Nam et al. 2022), on Burn 0.22.
//!
//! Every backbone is written once ([`Backbone`]) on top of three layer types
//! ([`EnsConv2d`], [`EnsLinear`], [`EnsNorm`]) that are either plain or BatchEnsemble
//! layers. The same definition therefore yields a plain network, a BatchEnsemble network,
//! and — through [`Backbone::merge`] — the single merged LatentBE network, which is an
//! ordinary plain [`Backbone`] and saves/loads like a Deep Ensemble member.
//!
//! Conventions (see `docs/ARCHITECTURE.md`): inputs are pixels in `[0, 1]`, shape
//! `[N, 3, H, W]`; per-channel normalisation happens inside the model. A BatchEnsemble of
//! M members consumes a tiled batch `[M*B, …]` whose rows `m*B .. (m+1)*B` belong to
//! member m (see [`tile`]). This crate picks no backend: every constructor takes a
//! `&Device`.

mod backbone;
mod config;
mod deep_ensemble;
mod error;
pub mod layers;
mod mlp;
mod normalize;
mod storage;

pub use backbone::{Backbone, Block};
pub use config::{Arch, BackboneConfig, BatchEnsembleConfig, BiasMode, FastInit, MergeRule, NormMode, ShortcutKind, WeightInit};
pub use deep_ensemble::DeepEnsemble;
pub use error::EnsembleError;
pub use layers::{EnsConv2d, EnsLinear, EnsNorm};
pub use mlp::{BeMlp, Mlp, MlpConfig};
pub use normalize::Normalize;
pub use storage::{from_burnpack_bytes, from_safetensors_bytes, to_burnpack_bytes, to_safetensors_bytes};

use burn::tensor::Tensor;

/// Tile a batch `[B, …]` into the BatchEnsemble layout `[M*B, …]`: member-major, so rows
/// `m*B .. (m+1)*B` are a copy of the batch for member `m`.
pub fn tile<const D: usize, K: burn::tensor::kind::Basic>(x: Tensor<D, K>, members: usize) -> Tensor<D, K> {
    if members == 1 { x } else { x.repeat_dim(0, members) }
}

/// Split tiled outputs `[M*B, K]` into `[M, B, K]` (member-major, inverse of [`tile`]).
pub fn untile(y: Tensor<2>, members: usize) -> Tensor<3> {
    let [n, k] = y.dims();
    assert!(n % members == 0, "tiled batch of {n} rows is not a multiple of {members} members");
    y.reshape([members, n / members, k])
}
