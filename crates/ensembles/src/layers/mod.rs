//! Layers that are either plain or BatchEnsemble (Wen et al. 2020, METHODS.md §1).
//!
//! A layer with `r = s = None` is an ordinary layer; with fast weights it is a
//! BatchEnsemble layer over a tiled batch `[M*B, …]`. Merging (LatentBE) and member
//! extraction both return plain layers of the same type.

mod conv;
mod fast;
mod linear;
mod norm;

pub use conv::EnsConv2d;
pub use fast::LayerInit;
pub use linear::EnsLinear;
pub use norm::EnsNorm;


