//! Batch normalisation in training mode, forward and backward (Distillery patch, see
//! `PATCH.md` at the crate root).
//!
//! Ioffe & Szegedy 2015, Alg. 1 and its gradient (Sec. 3): per channel `c` over the
//! `M = N·spatial` values of the batch,
//!
//! ```text
//! μ_c = Σ x / M,   σ²_c = Σ (x − μ_c)² / M   (biased),   x̂ = (x − μ_c) / √(σ²_c + ε)
//! y   = γ_c x̂ + β_c
//! ∂β_c = Σ dy,   ∂γ_c = Σ dy·x̂,   ∂x = γ_c / √(σ²_c + ε) · (dy − ∂β_c / M − x̂ · ∂γ_c / M)
//! ```
//!
//! Burn's generic defaults compute the same with a `swap_dims` + reshape copy of the
//! activation for every statistic and about ten (forward) and thirteen (backward) separate
//! elementwise passes. Here: statistics in one read per pass (two-pass mean/variance, per-slab
//! f32 sums accumulated in f64), channels in parallel; the output in one pass, images in
//! parallel. f32 and f64; the caller converts other float types.

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_std::{Bytes, Shape};

use crate::{FlexTensor, Layout};

/// `[N, C, spatial…]` read as N images of C slabs of `slab` values.
#[derive(Clone, Copy)]
struct Dims {
    batch: usize,
    channels: usize,
    slab: usize,
}

impl Dims {
    fn of(shape: &Shape) -> Self {
        assert!(shape.num_dims() >= 2, "batch_norm: input {shape:?} needs [batch, channels, …]");
        let batch = shape[0];
        let channels = shape[1];
        let slab = (2..shape.num_dims()).map(|d| shape[d]).product();
        Self { batch, channels, slab }
    }

    /// Values per channel.
    fn count(&self) -> usize {
        self.batch * self.slab
    }

    /// The slabs of channel `c`, one per image.
    fn slabs<'a, T>(&self, data: &'a [T], c: usize) -> impl Iterator<Item = &'a [T]> + 'a {
        let (channels, slab) = (self.channels, self.slab);
        (0..self.batch).map(move |b| &data[(b * channels + c) * slab..(b * channels + c + 1) * slab])
    }
}

/// Runs `f(c)` for every channel (in parallel with rayon) and collects the results in order.
fn per_channel<R: Send>(channels: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        (0..channels).into_par_iter().map(f).collect()
    }
    #[cfg(not(feature = "rayon"))]
    {
        (0..channels).map(f).collect()
    }
}

/// Applies `f(c, dst_slab, b)` to every slab of `out` (`[N, C, slab]`), images in parallel.
fn per_slab_mut<T: Send>(out: &mut [T], d: Dims, f: impl Fn(usize, &mut [T], usize) + Sync + Send) {
    let image = d.channels * d.slab;
    if image == 0 {
        return;
    }
    let body = |(b, img): (usize, &mut [T])| {
        for (c, slab) in img.chunks_mut(d.slab.max(1)).enumerate() {
            f(c, slab, b);
        }
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(image).enumerate().for_each(body);
    }
    #[cfg(not(feature = "rayon"))]
    {
        out.chunks_mut(image).enumerate().for_each(body);
    }
}

fn to_f64<T: num_traits::Float>(v: T) -> f64 {
    v.to_f64().unwrap_or(f64::NAN)
}

fn from_f64<T: num_traits::Float>(v: f64) -> T {
    T::from(v).unwrap_or_else(T::nan)
}

fn vector<T: bytemuck::Pod + burn_backend::Element>(values: Vec<T>, dtype: DType) -> FlexTensor {
    let n = values.len();
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(Shape::from(vec![n])), dtype)
}

fn train_impl<T>(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
    dtype: DType,
) -> (FlexTensor, FlexTensor, FlexTensor)
where
    T: num_traits::Float + bytemuck::Pod + burn_backend::Element + Send + Sync,
{
    let shape = x.layout().shape().clone();
    let d = Dims::of(&shape);
    let x = x.into_contiguous();
    let gamma = gamma.into_contiguous();
    let beta = beta.into_contiguous();
    let x_data: &[T] = x.storage();
    let gamma_data: &[T] = gamma.storage();
    let beta_data: &[T] = beta.storage();
    let count = d.count() as f64;

    // (mean, biased variance) per channel: two passes over the channel's slabs.
    let stats: Vec<(f64, f64)> = per_channel(d.channels, |c| {
        let mean = d
            .slabs(x_data, c)
            .map(|s| to_f64(s.iter().fold(T::zero(), |a, &v| a + v)))
            .sum::<f64>()
            / count;
        let m = from_f64::<T>(mean);
        let var = d
            .slabs(x_data, c)
            .map(|s| to_f64(s.iter().fold(T::zero(), |a, &v| a + (v - m) * (v - m))))
            .sum::<f64>()
            / count;
        (mean, var)
    });
    // y = x·scale + shift with scale = γ/√(σ²+ε), shift = β − μ·scale.
    let affine: Vec<(T, T)> = stats
        .iter()
        .zip(gamma_data.iter().zip(beta_data))
        .map(|(&(mean, var), (&g, &b))| {
            let scale = to_f64(g) / (var + epsilon).sqrt();
            (from_f64(scale), from_f64(to_f64(b) - mean * scale))
        })
        .collect();
    let mut out = vec![T::zero(); x_data.len()];
    per_slab_mut(&mut out, d, |c, dst, b| {
        let src = &x_data[(b * d.channels + c) * d.slab..(b * d.channels + c + 1) * d.slab];
        let (scale, shift) = affine[c];
        for (o, &v) in dst.iter_mut().zip(src) {
            *o = v * scale + shift;
        }
    });

    let means = stats.iter().map(|s| from_f64::<T>(s.0)).collect();
    let vars = stats.iter().map(|s| from_f64::<T>(s.1)).collect();
    (
        FlexTensor::new(Bytes::from_elems(out), Layout::contiguous(shape), dtype),
        vector(means, dtype),
        vector(vars, dtype),
    )
}

#[allow(clippy::too_many_arguments)]
fn backward_impl<T>(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
    dtype: DType,
) -> (FlexTensor, FlexTensor, FlexTensor)
where
    T: num_traits::Float + bytemuck::Pod + burn_backend::Element + Send + Sync,
{
    let shape = x.layout().shape().clone();
    let d = Dims::of(&shape);
    let x = x.into_contiguous();
    let dy = output_grad.into_contiguous();
    let gamma = gamma.into_contiguous();
    let mean = mean.into_contiguous();
    let variance = variance.into_contiguous();
    let x_data: &[T] = x.storage();
    let dy_data: &[T] = dy.storage();
    let gamma_data: &[T] = gamma.storage();
    let mean_data: &[T] = mean.storage();
    let var_data: &[T] = variance.storage();
    let count = d.count() as f64;
    let inv_std: Vec<f64> = var_data.iter().map(|&v| 1.0 / (to_f64(v) + epsilon).sqrt()).collect();

    // (Σ dy, Σ dy·x̂) per channel, x̂ = (x − μ)·inv_std.
    let sums: Vec<(f64, f64)> = per_channel(d.channels, |c| {
        let (m, s) = (mean_data[c], from_f64::<T>(inv_std[c]));
        d.slabs(dy_data, c).zip(d.slabs(x_data, c)).fold((0.0, 0.0), |(a, b), (g, x)| {
            let (sg, sgx) = g
                .iter()
                .zip(x)
                .fold((T::zero(), T::zero()), |(p, q), (&g, &x)| (p + g, q + g * (x - m) * s));
            (a + to_f64(sg), b + to_f64(sgx))
        })
    });
    // ∂x = k·(dy − Σdy/M − x̂·Σdy·x̂/M), k = γ·inv_std; as ∂x = k·dy − k·Σdy/M − (x − μ)·k·inv_std·Σdy·x̂/M.
    let coeffs: Vec<(T, T, T, T)> = (0..d.channels)
        .map(|c| {
            let k = to_f64(gamma_data[c]) * inv_std[c];
            let (sg, sgx) = sums[c];
            (
                from_f64(k),
                from_f64(k * sg / count),
                from_f64(k * inv_std[c] * sgx / count),
                mean_data[c],
            )
        })
        .collect();
    let mut x_grad = vec![T::zero(); x_data.len()];
    per_slab_mut(&mut x_grad, d, |c, dst, b| {
        let range = (b * d.channels + c) * d.slab..(b * d.channels + c + 1) * d.slab;
        let (k, shift, proj, m) = coeffs[c];
        for ((o, &g), &x) in dst.iter_mut().zip(&dy_data[range.clone()]).zip(&x_data[range]) {
            *o = k * g - shift - (x - m) * proj;
        }
    });

    let gamma_grad = sums.iter().map(|s| from_f64::<T>(s.1)).collect();
    let beta_grad = sums.iter().map(|s| from_f64::<T>(s.0)).collect();
    (
        FlexTensor::new(Bytes::from_elems(x_grad), Layout::contiguous(shape), dtype),
        vector(gamma_grad, dtype),
        vector(beta_grad, dtype),
    )
}

/// Training-mode batch norm: `(output, mean, biased variance)`. f32 and f64.
pub fn batch_norm_train(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    match x.dtype() {
        DType::F32 => train_impl::<f32>(x, gamma, beta, epsilon, DType::F32),
        DType::F64 => train_impl::<f64>(x, gamma, beta, epsilon, DType::F64),
        dtype => panic!("batch_norm_train: unsupported dtype {dtype:?}"),
    }
}

/// Gradients of [`batch_norm_train`]: `(x_grad, gamma_grad, beta_grad)`. f32 and f64.
pub fn batch_norm_train_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    match x.dtype() {
        DType::F32 => backward_impl::<f32>(x, gamma, mean, variance, epsilon, output_grad, DType::F32),
        DType::F64 => backward_impl::<f64>(x, gamma, mean, variance, epsilon, output_grad, DType::F64),
        dtype => panic!("batch_norm_train_backward: unsupported dtype {dtype:?}"),
    }
}
