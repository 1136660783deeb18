//! 2D convolution forward and backward kernels (Distillery patch, see `PATCH.md` at the crate root).
//!
//! Stock burn-flex 0.22.1 implements neither `conv2d_weight_backward` nor `conv2d_x_backward`,
//! so Burn's generic defaults run: the weight gradient swaps batch and channels and performs a
//! forward convolution with the output gradient as its kernel (serial layout copies, an
//! im2col that replicates the whole input nine times, a GEMM with n = kh·kw), the input
//! gradient a transposed convolution. Here both are the textbook im2col formulation
//! (Chellapilla et al. 2006; the layout PyTorch's CPU `slow_conv2d` backward also uses):
//!
//! - weight: `dW[g] = Σ_b dY_b[g] · im2col(x_b)[g]ᵀ` — per image and group one GEMM
//!   `[C/g·kh·kw, P] × [P, K/g]` (P = H_out·W_out) into the transpose dW[g]ᵀ, accumulated into
//!   one buffer per rayon worker (`fold`), the buffers summed and transposed at the end;
//! - input: `dX_b = col2im(W[g]ᵀ · dY_b[g])` — per image and group one GEMM
//!   `[C/g·kh·kw, K/g] × [K/g, P]`, then a scatter-add into the image's own slab, so images run
//!   in parallel without sharing memory.
//!
//! - forward: `Y_b[g] = W[g] · im2col(x_b)[g]` — the same column matrix, per image, so flex's
//!   serial NHWC copy of the input and reordering of the weight are not needed.
//!
//! Any stride, dilation, per-side padding and group count; f32 and f64 natively (the caller
//! converts half precisions through f32).

use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape};

use crate::{FlexTensor, Layout};

/// Sizes of one 2D convolution, read from the tensors' shapes.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    batch: usize,
    c_in: usize,
    h_in: usize,
    w_in: usize,
    c_out: usize,
    k_h: usize,
    k_w: usize,
    h_out: usize,
    w_out: usize,
    stride: [usize; 2],
    /// Padding at the beginning of each spatial axis (the end padding only shapes `h_out`/`w_out`).
    pad: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
}

impl Geometry {
    fn new(
        x_shape: &Shape,
        weight_shape: &Shape,
        grad_shape: &Shape,
        options: &ConvOptions<2>,
    ) -> Self {
        let geometry = Self {
            batch: x_shape[0],
            c_in: x_shape[1],
            h_in: x_shape[2],
            w_in: x_shape[3],
            c_out: weight_shape[0],
            k_h: weight_shape[2],
            k_w: weight_shape[3],
            h_out: grad_shape[2],
            w_out: grad_shape[3],
            stride: options.stride,
            pad: [options.padding[0].0, options.padding[1].0],
            dilation: options.dilation,
            groups: options.groups,
        };
        assert_eq!(
            weight_shape[1] * geometry.groups,
            geometry.c_in,
            "conv2d backward: weight {:?} does not match input {:?} with {} groups",
            weight_shape,
            x_shape,
            geometry.groups
        );
        assert_eq!(
            (grad_shape[0], grad_shape[1]),
            (geometry.batch, geometry.c_out),
            "conv2d backward: output gradient {:?} does not match input {:?} / weight {:?}",
            grad_shape,
            x_shape,
            weight_shape
        );
        geometry
    }

    /// Output positions per image.
    fn positions(&self) -> usize {
        self.h_out * self.w_out
    }

    /// Rows of one image's column matrix: every (input channel, kernel row, kernel column).
    fn col_rows(&self) -> usize {
        self.c_in * self.k_h * self.k_w
    }

    /// Column-matrix rows of one group.
    fn col_rows_per_group(&self) -> usize {
        self.col_rows() / self.groups
    }

    fn c_out_per_group(&self) -> usize {
        self.c_out / self.groups
    }

    /// `[lo, hi)`: the output indices `o < out` whose input index `o·stride + offset` lies in
    /// `[0, size)`.
    fn valid_range(offset: isize, stride: usize, size: usize, out: usize) -> (usize, usize) {
        let stride = stride as isize;
        let lo = if offset >= 0 {
            0
        } else {
            ((-offset) + stride - 1) / stride
        };
        let last = size as isize - 1 - offset;
        let hi = if last < 0 { 0 } else { last / stride + 1 };
        let hi = (hi as usize).min(out);
        ((lo as usize).min(hi), hi)
    }

    /// Input row (or column) read by output index 0 of kernel tap `tap` along `axis`.
    fn offset(&self, axis: usize, tap: usize) -> isize {
        (tap * self.dilation[axis]) as isize - self.pad[axis] as isize
    }
}

/// Whether output rows have the input's width at stride 1 ("same" padding, e.g. 3x3 with
/// padding 1): then column `q = oh·W + ow` of a column-matrix row reads input element
/// `q + offset(0)·W + offset(1)` of its channel plane, one contiguous run per row of the
/// column matrix instead of one short copy per output row (see [`im2col`]).
fn flat_shift(g: &Geometry) -> bool {
    g.stride == [1, 1] && g.w_out == g.w_in
}

/// `[lo, hi)` of the valid output rows and, in flat-shift layout, the element offset of the
/// kernel tap `(i, j)` into its channel plane.
fn shifted_rows(g: &Geometry, i: usize, j: usize) -> (usize, usize, isize) {
    let (off_h, off_w) = (g.offset(0, i), g.offset(1, j));
    let (oh_lo, oh_hi) = Geometry::valid_range(off_h, 1, g.h_in, g.h_out);
    (oh_lo, oh_hi, off_h * g.w_in as isize + off_w)
}

/// Fills `cols` (`[C·kh·kw, P]`, row `(c, i, j)`, column `(oh, ow)`) from one image `[C, H, W]`;
/// taps that fall into the padding are zero.
fn im2col<T: num_traits::Float>(cols: &mut [T], image: &[T], g: &Geometry) {
    let p = g.positions();
    let plane = g.h_in * g.w_in;
    let flat = flat_shift(g);
    for c in 0..g.c_in {
        let src_plane = &image[c * plane..(c + 1) * plane];
        for i in 0..g.k_h {
            let off_h = g.offset(0, i);
            for j in 0..g.k_w {
                let off_w = g.offset(1, j);
                let (lo, hi) = Geometry::valid_range(off_w, g.stride[1], g.w_in, g.w_out);
                let row_start = ((c * g.k_h + i) * g.k_w + j) * p;
                let row = &mut cols[row_start..row_start + p];
                if flat {
                    // Valid rows: one copy of the shifted plane (clamped to the plane), then
                    // the columns that fell into the padding (they read a neighbouring row)
                    // and the rows outside the image are zeroed.
                    let w = g.w_out;
                    let (oh_lo, oh_hi, shift) = shifted_rows(g, i, j);
                    let (q0, q1) = (oh_lo * w, oh_hi * w);
                    let d0 = (q0 as isize).max(-shift).min(q1 as isize);
                    let d1 = (q1 as isize).min(plane as isize - shift).max(d0);
                    let (d0, d1) = (d0 as usize, d1 as usize);
                    row[..d0].fill(T::zero());
                    row[d1..].fill(T::zero());
                    if d1 > d0 {
                        let s0 = (d0 as isize + shift) as usize;
                        row[d0..d1].copy_from_slice(&src_plane[s0..s0 + (d1 - d0)]);
                    }
                    if lo > 0 || hi < w {
                        for r in row[q0..q1].chunks_exact_mut(w) {
                            r[..lo].fill(T::zero());
                            r[hi..].fill(T::zero());
                        }
                    }
                    continue;
                }
                for oh in 0..g.h_out {
                    let seg = &mut row[oh * g.w_out..(oh + 1) * g.w_out];
                    let ih = (oh * g.stride[0]) as isize + off_h;
                    if ih < 0 || ih >= g.h_in as isize || lo == hi {
                        seg.fill(T::zero());
                        continue;
                    }
                    let src = &src_plane[ih as usize * g.w_in..(ih as usize + 1) * g.w_in];
                    seg[..lo].fill(T::zero());
                    seg[hi..].fill(T::zero());
                    if g.stride[1] == 1 {
                        let start = (lo as isize + off_w) as usize;
                        seg[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                    } else {
                        for ow in lo..hi {
                            seg[ow] = src[((ow * g.stride[1]) as isize + off_w) as usize];
                        }
                    }
                }
            }
        }
    }
}

/// Adds the column matrix `cols` (layout of [`im2col`]) back into one image gradient `[C, H, W]`.
/// In flat-shift layout the entries of padding taps are zeroed in `cols` first, so that each
/// row is one contiguous add.
fn col2im_add<T: num_traits::Float>(image: &mut [T], cols: &mut [T], g: &Geometry) {
    let p = g.positions();
    let plane = g.h_in * g.w_in;
    let flat = flat_shift(g);
    for c in 0..g.c_in {
        let dst_plane = &mut image[c * plane..(c + 1) * plane];
        for i in 0..g.k_h {
            let off_h = g.offset(0, i);
            for j in 0..g.k_w {
                let off_w = g.offset(1, j);
                let (lo, hi) = Geometry::valid_range(off_w, g.stride[1], g.w_in, g.w_out);
                if lo == hi {
                    continue;
                }
                let row_start = ((c * g.k_h + i) * g.k_w + j) * p;
                if flat {
                    let w = g.w_out;
                    let (oh_lo, oh_hi, shift) = shifted_rows(g, i, j);
                    let (q0, q1) = (oh_lo * w, oh_hi * w);
                    let row = &mut cols[row_start + q0..row_start + q1];
                    if lo > 0 || hi < w {
                        for r in row.chunks_exact_mut(w) {
                            r[..lo].fill(T::zero());
                            r[hi..].fill(T::zero());
                        }
                    }
                    // Zeroed entries may map just outside the plane: clamp the run to it.
                    let d0 = (q0 as isize).max(-shift).min(q1 as isize);
                    let d1 = (q1 as isize).min(plane as isize - shift).max(d0);
                    let (d0, d1) = (d0 as usize, d1 as usize);
                    if d1 > d0 {
                        let s0 = (d0 as isize + shift) as usize;
                        let dst = &mut dst_plane[s0..s0 + (d1 - d0)];
                        for (d, &s) in dst.iter_mut().zip(&row[d0 - q0..d1 - q0]) {
                            *d = *d + s;
                        }
                    }
                    continue;
                }
                let row = &cols[row_start..row_start + p];
                for oh in 0..g.h_out {
                    let ih = (oh * g.stride[0]) as isize + off_h;
                    if ih < 0 || ih >= g.h_in as isize {
                        continue;
                    }
                    let seg = &row[oh * g.w_out..(oh + 1) * g.w_out];
                    let dst = &mut dst_plane[ih as usize * g.w_in..(ih as usize + 1) * g.w_in];
                    if g.stride[1] == 1 {
                        let start = (lo as isize + off_w) as usize;
                        for (d, &s) in dst[start..start + (hi - lo)].iter_mut().zip(&seg[lo..hi]) {
                            *d = *d + s;
                        }
                    } else {
                        for ow in lo..hi {
                            let d = &mut dst[((ow * g.stride[1]) as isize + off_w) as usize];
                            *d = *d + seg[ow];
                        }
                    }
                }
            }
        }
    }
}

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]` with explicit strides (`*_rs` between rows, `*_cs`
/// between columns), single-threaded: the callers parallelise over images.
///
/// # Safety
/// Every index addressed through the strides must lie inside the pointed-to buffers.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_into<T: 'static + Copy + num_traits::Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_rs: usize,
    accumulate: bool,
    lhs: *const T,
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: *const T,
    rhs_rs: usize,
    rhs_cs: usize,
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

fn conv2d_forward_impl<T>(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: &ConvOptions<2>,
    dtype: DType,
) -> FlexTensor
where
    T: num_traits::Float + bytemuck::Pod + burn_backend::Element + Send + Sync + 'static,
{
    let x_shape = x.layout().shape().clone();
    let w_shape = weight.layout().shape().clone();
    let out_size = |axis: usize| {
        let span = options.dilation[axis] * (w_shape[2 + axis] - 1) + 1;
        let padded = x_shape[2 + axis] + options.padding[axis].0 + options.padding[axis].1;
        assert!(
            padded >= span,
            "conv2d: kernel {:?} (dilation {:?}) larger than the padded input {:?}",
            w_shape,
            options.dilation,
            x_shape
        );
        (padded - span) / options.stride[axis] + 1
    };
    let out_shape = Shape::from(vec![x_shape[0], w_shape[0], out_size(0), out_size(1)]);
    let g = Geometry::new(&x_shape, &w_shape, &out_shape, options);
    let x = x.into_contiguous();
    let weight = weight.into_contiguous();
    let x_data: &[T] = x.storage();
    let w_data: &[T] = weight.storage();
    let bias = bias.map(|b| b.into_contiguous());
    let bias_data: Option<&[T]> = bias.as_ref().map(|b| b.storage());

    let p = g.positions();
    let rows_g = g.col_rows_per_group();
    let k_g = g.c_out_per_group();
    let image_len = g.c_in * g.h_in * g.w_in;
    let out_len = g.c_out * p;
    // A 1x1, stride-1, unpadded convolution reads the image itself as its column matrix.
    let pointwise = g.k_h == 1
        && g.k_w == 1
        && g.stride == [1, 1]
        && g.pad == [0, 0]
        && (g.h_out, g.w_out) == (g.h_in, g.w_in);
    let cols_len = if pointwise { 0 } else { g.col_rows() * p };

    // out_b[group gi] ([kg, P]) = W[group gi] ([kg, rows_g]) · cols[group gi] ([rows_g, P]).
    let image_out = |out: &mut [T], cols: &mut Vec<T>, b: usize| {
        let image = &x_data[b * image_len..(b + 1) * image_len];
        let cols: &[T] = if pointwise {
            image
        } else {
            im2col(cols, image, &g);
            cols
        };
        if let Some(bias) = bias_data {
            for (o, plane) in out.chunks_mut(p.max(1)).enumerate() {
                plane.fill(bias[o]);
            }
        }
        for gi in 0..g.groups {
            let dst = &mut out[gi * k_g * p..(gi + 1) * k_g * p];
            let lhs = &w_data[gi * k_g * rows_g..(gi + 1) * k_g * rows_g];
            let rhs = &cols[gi * rows_g * p..(gi + 1) * rows_g * p];
            // SAFETY: dst [k_g, p], lhs [k_g, rows_g] and rhs [rows_g, p], all row-major; the
            // slices above hold exactly these elements.
            unsafe {
                gemm_into(
                    k_g,
                    p,
                    rows_g,
                    dst.as_mut_ptr(),
                    p,
                    bias_data.is_some(),
                    lhs.as_ptr(),
                    rows_g,
                    1,
                    rhs.as_ptr(),
                    p,
                    1,
                );
            }
        }
    };

    let mut output = vec![T::zero(); g.batch * out_len];
    if out_len > 0 {
        #[cfg(feature = "rayon")]
        {
            use rayon::prelude::*;
            output.par_chunks_mut(out_len).enumerate().for_each_init(
                || vec![T::zero(); cols_len],
                |cols, (b, out)| image_out(out, cols, b),
            );
        }
        #[cfg(not(feature = "rayon"))]
        {
            let mut cols = vec![T::zero(); cols_len];
            for (b, out) in output.chunks_mut(out_len).enumerate() {
                image_out(out, &mut cols, b);
            }
        }
    }

    FlexTensor::new(Bytes::from_elems(output), Layout::contiguous(out_shape), dtype)
}

fn conv2d_weight_backward_impl<T>(
    x: FlexTensor,
    weight_shape: Shape,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
    dtype: DType,
) -> FlexTensor
where
    T: num_traits::Float + bytemuck::Pod + burn_backend::Element + Send + Sync + 'static,
{
    let g = Geometry::new(x.layout().shape(), &weight_shape, output_grad.layout().shape(), options);
    let x = x.into_contiguous();
    let dy = output_grad.into_contiguous();
    let x_data: &[T] = x.storage();
    let dy_data: &[T] = dy.storage();

    let p = g.positions();
    let rows_g = g.col_rows_per_group();
    let k_g = g.c_out_per_group();
    let image_len = g.c_in * g.h_in * g.w_in;
    let weight_len = g.c_out * rows_g;
    let cols_len = g.col_rows() * p;

    // Accumulated transposed, per group: dW[g]ᵀ ([rows_g, kg]) += cols[g] ([rows_g, P]) ·
    // dY_b[g]ᵀ ([P, kg]). gemm's micro-kernel wants the destination's contiguous axis
    // contiguous in one operand; both operands are contiguous along P (the reduction), so one
    // is repacked by strided gathers. In this orientation that is dY_b[g] (kg·P values, in
    // cache) instead of the column matrix (rows_g·P, 4.5-9x larger): 12 % of a ResNet-20 train
    // step on flex was that gather. One transpose per call at the end restores dW's layout.
    let accumulate_image = |acc: &mut Vec<T>, cols: &mut Vec<T>, b: usize| {
        im2col(cols, &x_data[b * image_len..(b + 1) * image_len], &g);
        for gi in 0..g.groups {
            let dst = &mut acc[gi * k_g * rows_g..(gi + 1) * k_g * rows_g];
            let lhs = &cols[gi * rows_g * p..(gi + 1) * rows_g * p];
            let rhs = &dy_data[(b * g.c_out + gi * k_g) * p..(b * g.c_out + (gi + 1) * k_g) * p];
            // SAFETY: dst is [rows_g, k_g] row-major, lhs [rows_g, p] row-major, rhs read as
            // the transpose of the [k_g, p] row-major slice; each slice holds exactly that
            // many elements (checked by the slicing above).
            unsafe {
                gemm_into(
                    rows_g,
                    k_g,
                    p,
                    dst.as_mut_ptr(),
                    k_g,
                    true,
                    lhs.as_ptr(),
                    p,
                    1,
                    rhs.as_ptr(),
                    1,
                    p,
                );
            }
        }
    };

    #[cfg(feature = "rayon")]
    let grad = {
        use rayon::prelude::*;
        (0..g.batch)
            .into_par_iter()
            .fold(
                || (vec![T::zero(); weight_len], vec![T::zero(); cols_len]),
                |(mut acc, mut cols), b| {
                    accumulate_image(&mut acc, &mut cols, b);
                    (acc, cols)
                },
            )
            .map(|(acc, _)| acc)
            .reduce(
                || vec![T::zero(); weight_len],
                |mut a, b| {
                    for (x, y) in a.iter_mut().zip(b) {
                        *x = *x + y;
                    }
                    a
                },
            )
    };
    #[cfg(not(feature = "rayon"))]
    let grad = {
        let mut acc = vec![T::zero(); weight_len];
        let mut cols = vec![T::zero(); cols_len];
        for b in 0..g.batch {
            accumulate_image(&mut acc, &mut cols, b);
        }
        acc
    };

    // dW[g] = (dW[g]ᵀ)ᵀ: [rows_g, k_g] -> [k_g, rows_g] per group.
    let mut weight_grad = vec![T::zero(); weight_len];
    for (dst, src) in weight_grad
        .chunks_mut((k_g * rows_g).max(1))
        .zip(grad.chunks((k_g * rows_g).max(1)))
    {
        for (r, row) in src.chunks(k_g.max(1)).enumerate() {
            for (co, &v) in row.iter().enumerate() {
                dst[co * rows_g + r] = v;
            }
        }
    }

    FlexTensor::new(
        Bytes::from_elems(weight_grad),
        Layout::contiguous(weight_shape),
        dtype,
    )
}

fn conv2d_x_backward_impl<T>(
    x_shape: Shape,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
    dtype: DType,
) -> FlexTensor
where
    T: num_traits::Float + bytemuck::Pod + burn_backend::Element + Send + Sync + 'static,
{
    let g = Geometry::new(&x_shape, weight.layout().shape(), output_grad.layout().shape(), options);
    let weight = weight.into_contiguous();
    let dy = output_grad.into_contiguous();
    let w_data: &[T] = weight.storage();
    let dy_data: &[T] = dy.storage();

    let p = g.positions();
    let rows_g = g.col_rows_per_group();
    let k_g = g.c_out_per_group();
    let image_len = g.c_in * g.h_in * g.w_in;
    let cols_len = g.col_rows() * p;

    // cols[group gi] ([rows_g, P]) = W[group gi]ᵀ ([rows_g, kg]) · dY_b[group gi] ([kg, P]).
    let image_grad = |dx: &mut [T], cols: &mut Vec<T>, b: usize| {
        for gi in 0..g.groups {
            let dst = &mut cols[gi * rows_g * p..(gi + 1) * rows_g * p];
            let lhs = &w_data[gi * k_g * rows_g..(gi + 1) * k_g * rows_g];
            let rhs = &dy_data[(b * g.c_out + gi * k_g) * p..(b * g.c_out + (gi + 1) * k_g) * p];
            // SAFETY: dst is [rows_g, p] row-major, lhs read as the transpose of the
            // [k_g, rows_g] row-major weight block, rhs [k_g, p] row-major; the slices above
            // hold exactly these elements.
            unsafe {
                gemm_into(
                    rows_g,
                    p,
                    k_g,
                    dst.as_mut_ptr(),
                    p,
                    false,
                    lhs.as_ptr(),
                    1,
                    rows_g,
                    rhs.as_ptr(),
                    p,
                    1,
                );
            }
        }
        col2im_add(dx, cols, &g);
    };

    let mut grad = vec![T::zero(); g.batch * image_len];
    if image_len > 0 {
        #[cfg(feature = "rayon")]
        {
            use rayon::prelude::*;
            grad.par_chunks_mut(image_len).enumerate().for_each_init(
                || vec![T::zero(); cols_len],
                |cols, (b, dx)| image_grad(dx, cols, b),
            );
        }
        #[cfg(not(feature = "rayon"))]
        {
            let mut cols = vec![T::zero(); cols_len];
            for (b, dx) in grad.chunks_mut(image_len).enumerate() {
                image_grad(dx, &mut cols, b);
            }
        }
    }

    FlexTensor::new(Bytes::from_elems(grad), Layout::contiguous(x_shape), dtype)
}

/// 2D convolution forward, `[N, C_out, H_out, W_out]`: per image one im2col and one GEMM per
/// group against the weight as stored (`[C_out, C_in/g·kh·kw]` row-major, no reordering).
/// f32 and f64; the caller converts other float types.
pub fn conv2d(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: &ConvOptions<2>,
) -> FlexTensor {
    match x.dtype() {
        DType::F32 => conv2d_forward_impl::<f32>(x, weight, bias, options, DType::F32),
        DType::F64 => conv2d_forward_impl::<f64>(x, weight, bias, options, DType::F64),
        dtype => panic!("conv2d: unsupported dtype {dtype:?}"),
    }
}

/// Gradient of a 2D convolution with respect to its weight, `[C_out, C_in/groups, kh, kw]`.
/// f32 and f64; the caller converts other float types.
pub fn conv2d_weight_backward(
    x: FlexTensor,
    weight_shape: Shape,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    match x.dtype() {
        DType::F32 => conv2d_weight_backward_impl::<f32>(x, weight_shape, output_grad, options, DType::F32),
        DType::F64 => conv2d_weight_backward_impl::<f64>(x, weight_shape, output_grad, options, DType::F64),
        dtype => panic!("conv2d_weight_backward: unsupported dtype {dtype:?}"),
    }
}

/// Gradient of a 2D convolution with respect to its input, `x_shape`.
/// f32 and f64; the caller converts other float types.
pub fn conv2d_x_backward(
    x_shape: Shape,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    match weight.dtype() {
        DType::F32 => conv2d_x_backward_impl::<f32>(x_shape, weight, output_grad, options, DType::F32),
        DType::F64 => conv2d_x_backward_impl::<f64>(x_shape, weight, output_grad, options, DType::F64),
        dtype => panic!("conv2d_x_backward: unsupported dtype {dtype:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::Geometry;
    use alloc::vec::Vec;

    #[test]
    fn valid_range_matches_brute_force() {
        for offset in -4isize..4 {
            for stride in 1..4 {
                for size in 0..7 {
                    for out in 0..7 {
                        let valid: Vec<usize> = (0..out)
                            .filter(|&o| {
                                let i = (o * stride) as isize + offset;
                                i >= 0 && i < size as isize
                            })
                            .collect();
                        let (lo, hi) = Geometry::valid_range(offset, stride, size, out);
                        let got: Vec<usize> = (lo..hi).collect();
                        assert_eq!(got, valid, "offset {offset} stride {stride} size {size} out {out}");
                    }
                }
            }
        }
    }
}
