//! The 2D convolution (forward and backward) on flex against a naive host reference.
//!
//! The workspace builds a patched burn-flex (`vendor/burn-flex/PATCH.md`) whose
//! `conv2d`, `conv2d_weight_backward` and `conv2d_x_backward` are im2col + GEMM kernels of our
//! own. Every
//! backbone's training step runs through them, so they are checked here against the
//! definition, written as plain loops in f64 (independent of Burn and of im2col):
//!
//! ```text
//! y[b,o,p,q]   = bias[o] + Σ_{c∈group(o), i, j} w[o,c',i,j] · x[b,c, p·s_h − pad_h + i·d_h, q·s_w − pad_w + j·d_w]
//! L            = Σ y · r                          (r: a fixed random cotangent)
//! ∂L/∂w[o,c',i,j] = Σ_{b,p,q} r[b,o,p,q] · x[b,c, …]     ∂L/∂x[b,c,h,w] = Σ r · w over the taps that read (h,w)
//! ```
//!
//! through Burn's autodiff (the path training takes), on shapes that exercise stride, dilation,
//! per-side padding, groups, non-square images, kernels that read only padding, and a batch
//! larger than the thread count. Inputs come from a fixed host-side generator (no shared RNG).

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

mod common;

/// Deterministic f32 test values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    common::lcg_values(n, seed).into_iter().map(|v| v as f32).collect()
}

struct Case {
    x: [usize; 4],
    c_out: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    dilation: [usize; 2],
    groups: usize,
}

impl Case {
    fn out_hw(&self) -> [usize; 2] {
        let out = |axis: usize| {
            let span = self.dilation[axis] * (self.kernel[axis] - 1) + 1;
            (self.x[2 + axis] + self.padding[axis].0 + self.padding[axis].1 - span) / self.stride[axis] + 1
        };
        [out(0), out(1)]
    }

    /// Input index read by output index `o` at kernel tap `t` along spatial `axis`, if inside.
    fn input_index(&self, axis: usize, o: usize, t: usize) -> Option<usize> {
        let i = (o * self.stride[axis] + t * self.dilation[axis]) as isize - self.padding[axis].0 as isize;
        (i >= 0 && (i as usize) < self.x[2 + axis]).then_some(i as usize)
    }

    /// (y, dx, dw, dbias) of L = Σ y·r by the definition, accumulated in f64.
    fn reference(&self, x: &[f32], w: &[f32], bias: &[f32], r: &[f32]) -> [Vec<f64>; 4] {
        let [n, c_in, h, wd] = self.x;
        let [kh, kw] = self.kernel;
        let [ho, wo] = self.out_hw();
        let cg = c_in / self.groups;
        let og = self.c_out / self.groups;
        let mut dx = vec![0f64; x.len()];
        let mut dw = vec![0f64; w.len()];
        let mut db = vec![0f64; self.c_out];
        let mut y = vec![0f64; r.len()];
        for b in 0..n {
            for o in 0..self.c_out {
                let group = o / og;
                for p in 0..ho {
                    for q in 0..wo {
                        let yi = ((b * self.c_out + o) * ho + p) * wo + q;
                        let g_out = r[yi] as f64;
                        db[o] += g_out;
                        y[yi] += bias[o] as f64;
                        for cl in 0..cg {
                            let c = group * cg + cl;
                            for i in 0..kh {
                                let Some(ih) = self.input_index(0, p, i) else { continue };
                                for j in 0..kw {
                                    let Some(iw) = self.input_index(1, q, j) else { continue };
                                    let xi = ((b * c_in + c) * h + ih) * wd + iw;
                                    let wi = ((o * cg + cl) * kh + i) * kw + j;
                                    y[yi] += w[wi] as f64 * x[xi] as f64;
                                    dw[wi] += g_out * x[xi] as f64;
                                    dx[xi] += g_out * w[wi] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        [y, dx, dw, db]
    }

    fn check(&self, name: &str) {
        let device = Device::flex().autodiff();
        let [n, c_in, h, wd] = self.x;
        let [kh, kw] = self.kernel;
        let [ho, wo] = self.out_hw();
        let w_shape = [self.c_out, c_in / self.groups, kh, kw];
        let x_host = values(n * c_in * h * wd, 1);
        let w_host = values(w_shape.iter().product(), 2);
        let b_host = values(self.c_out, 3);
        let r_host = values(n * self.c_out * ho * wo, 4);

        let x = Tensor::<4>::from_data(TensorData::new(x_host.clone(), self.x), &device).require_grad();
        let w = Tensor::<4>::from_data(TensorData::new(w_host.clone(), w_shape), &device).require_grad();
        let bias = Tensor::<1>::from_data(TensorData::new(b_host.clone(), [self.c_out]), &device).require_grad();
        let r = Tensor::<4>::from_data(TensorData::new(r_host.clone(), [n, self.c_out, ho, wo]), &device);
        let options = ConvOptions::new_with_padding(self.stride, self.padding, self.dilation, self.groups);
        let y = conv2d(x.clone(), w.clone(), Some(bias.clone()), options);
        assert_eq!(y.dims(), [n, self.c_out, ho, wo], "{name}: output shape");
        let host = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
        let y_host = host(y.clone());
        let grads = (y * r).sum().backward();
        let dx = host(x.grad(&grads).expect("x gradient"));
        let dw = host(w.grad(&grads).expect("weight gradient"));
        let db = bias.grad(&grads).expect("bias gradient").into_data().try_to_vec::<f32>().unwrap();

        let [ry, rx, rw, rb] = self.reference(&x_host, &w_host, &b_host, &r_host);
        compare(&y_host, &ry, &format!("{name}: y"));
        compare(&dx, &rx, &format!("{name}: dL/dx"));
        compare(&dw, &rw, &format!("{name}: dL/dw"));
        compare(&db, &rb, &format!("{name}: dL/dbias"));
    }
}

/// Relative to the tensor's largest reference value: f32 sums of up to a few thousand terms.
fn compare(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{what}: the reference is all zeros, the check would say nothing");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (*g as f64 - w).abs() / scale;
        assert!(err <= 1e-5, "{what}[{i}]: {g} vs reference {w} (relative error {err:.2e})");
    }
}

#[test]
fn resnet_3x3_same_padding() {
    // The CIFAR ResNet's body convolution: 3x3, stride 1, padding 1.
    Case { x: [5, 4, 7, 6], c_out: 6, kernel: [3, 3], stride: [1, 1], padding: [(1, 1), (1, 1)], dilation: [1, 1], groups: 1 }
        .check("3x3 s1 p1");
}

#[test]
fn resnet_stride_two_and_projection() {
    // The stage change: 3x3 stride 2 (odd and even sizes) and the 1x1 stride-2 projection shortcut.
    Case { x: [3, 3, 9, 8], c_out: 5, kernel: [3, 3], stride: [2, 2], padding: [(1, 1), (1, 1)], dilation: [1, 1], groups: 1 }
        .check("3x3 s2 p1");
    Case { x: [3, 4, 8, 7], c_out: 8, kernel: [1, 1], stride: [2, 2], padding: [(0, 0), (0, 0)], dilation: [1, 1], groups: 1 }
        .check("1x1 s2");
    // 1x1 stride 1 unpadded: the forward reads the image as its own column matrix.
    Case { x: [3, 4, 5, 6], c_out: 3, kernel: [1, 1], stride: [1, 1], padding: [(0, 0), (0, 0)], dilation: [1, 1], groups: 1 }
        .check("1x1 s1");
}

#[test]
fn dilation_asymmetric_padding_and_rectangular_kernels() {
    Case { x: [2, 3, 10, 9], c_out: 4, kernel: [3, 2], stride: [1, 3], padding: [(2, 0), (1, 3)], dilation: [2, 1], groups: 1 }
        .check("3x2 dilated, asymmetric padding");
    // A kernel wider than the input: some taps only ever read padding.
    Case { x: [2, 2, 3, 2], c_out: 3, kernel: [5, 5], stride: [1, 1], padding: [(2, 2), (2, 2)], dilation: [1, 1], groups: 1 }
        .check("5x5 on 3x2");
    // Stride 1 with the output as wide as the input: the kernels' flat-shift path (one
    // contiguous run per column-matrix row), here with dilation, one-sided and asymmetric
    // padding and fewer output rows than input rows.
    Case { x: [3, 2, 6, 7], c_out: 3, kernel: [2, 3], stride: [1, 1], padding: [(0, 0), (1, 3)], dilation: [1, 2], groups: 1 }
        .check("2x3 dilated, width-preserving asymmetric padding");
    Case { x: [2, 3, 5, 4], c_out: 2, kernel: [3, 3], stride: [1, 1], padding: [(2, 2), (2, 0)], dilation: [1, 1], groups: 1 }
        .check("3x3, one-sided width padding");
}

#[test]
fn grouped_convolution() {
    Case { x: [3, 6, 6, 5], c_out: 4, kernel: [3, 3], stride: [1, 2], padding: [(1, 1), (1, 1)], dilation: [1, 1], groups: 2 }
        .check("groups 2");
    // Stride 1, width-preserving: the flat-shift im2col / col2im, one GEMM per group.
    Case { x: [3, 4, 6, 5], c_out: 6, kernel: [3, 3], stride: [1, 1], padding: [(1, 1), (1, 1)], dilation: [1, 1], groups: 2 }
        .check("groups 2, 3x3 s1 p1");
}

#[test]
fn batch_larger_than_the_thread_pool() {
    // Per-worker accumulators are summed at the end: a batch of 17 splits unevenly.
    Case { x: [17, 2, 5, 5], c_out: 3, kernel: [3, 3], stride: [1, 1], padding: [(1, 1), (1, 1)], dilation: [1, 1], groups: 1 }
        .check("batch 17");
}
