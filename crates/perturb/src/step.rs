//! The shared machinery of the three perturbations (METHODS.md §3): the gradient of a scalar
//! objective with respect to the input batch, and the per-example normalised step
//! `δ_b = scale_b · η √D · g_b / ||g_b||₂` with the norm taken over everything but the batch
//! dimension (`D = C·H·W`, 3072 for CIFAR; `D = d` for points), the result clipped to the
//! input domain (`[0, 1]` for pixels; unbounded for points).

use burn::tensor::{Tensor, TensorData};

/// Below this gradient norm an example is treated as having a zero gradient: its step is
/// (numerically) zero instead of NaN.
pub const MIN_GRAD_NORM: f64 = 1e-12;

/// A fresh autodiff leaf with the values of `x` (any device; the graph of `x`, if any, is
/// dropped), marked to receive a gradient.
pub(crate) fn input_leaf<const D: usize>(x: &Tensor<D>) -> Tensor<D> {
    x.clone().inner().autodiff().require_grad()
}

/// `∇_x objective` for the leaf made by [`input_leaf`]; the gradient is on the inner device.
///
/// # Panics
/// If `objective` does not depend on `leaf` — impossible for the objectives of this crate,
/// which all pass the input through a network.
pub(crate) fn input_gradient<const D: usize>(leaf: &Tensor<D>, objective: Tensor<1>) -> Tensor<D> {
    let grads = objective.backward();
    leaf.grad(&grads).expect("the perturbation objective does not depend on the input")
}

/// Per-example normalised step `scale_b · η √D · g_b / max(||g_b||₂, MIN_GRAD_NORM)` for a
/// gradient `g` `[B, ...]` (D = the product of the non-batch dimensions); `scale` (length B)
/// is 1 for ODS and TDiv-SDiv and the teacher's confidence for ConfODS.
pub fn normalized_step<const R: usize>(g: Tensor<R>, eta: f64, scale: Option<Tensor<1>>) -> Tensor<R> {
    let dims = g.dims();
    let b = dims[0];
    let d: usize = dims[1..].iter().product();
    let flat = g.reshape([b, d]);
    let norm = flat.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(MIN_GRAD_NORM); // [B, 1]
    let mut dir = flat / norm * (eta * (d as f64).sqrt());
    if let Some(scale) = scale {
        dir = dir * scale.reshape([b, 1]);
    }
    dir.reshape(dims)
}

/// `x + δ`, clipped to `bounds` (`[lo, hi]`) when given, returned on the device (autodiff or
/// not) of `x`, as a constant: the graph of `x` is not continued.
pub(crate) fn apply_step<const D: usize>(x: &Tensor<D>, step: Tensor<D>, bounds: Option<(f64, f64)>) -> Tensor<D> {
    let mut out = x.clone().inner() + step;
    if let Some((lo, hi)) = bounds {
        out = out.clamp(lo, hi);
    }
    if x.is_autodiff() { out.autodiff() } else { out }
}

/// A host matrix `[rows, cols]` of f32 as a tensor on `like`'s inner device.
pub(crate) fn host_matrix<const D: usize>(values: Vec<f32>, rows: usize, cols: usize, like: &Tensor<D>) -> Tensor<2> {
    let device = like.clone().inner().device();
    Tensor::from_data(TensorData::new(values, [rows, cols]), &device)
}
