//! Training-mode batch normalisation on flex against a host reference.
//!
//! The workspace's patched burn-flex (`vendor/burn-flex/PATCH.md`) computes
//! `batch_norm_train` and its backward in fused kernels of our own; every backbone's training
//! step runs through them. Checked here through Burn's autodiff (the path training takes)
//! against the definition in f64 (Ioffe & Szegedy 2015, Alg. 1):
//!
//! ```text
//! μ_c = mean over (n, spatial) of x,  σ²_c = mean of (x − μ_c)²,  y = γ_c (x − μ_c)/√(σ²_c + ε) + β_c
//! ```
//!
//! Its gradients for L = Σ y·r are taken by central finite differences of that f64 forward
//! (independent of any closed-form backward), on inputs with a large common offset (where a
//! one-pass variance would cancel), rank 2 (no spatial axes) and rank 4, and a batch that
//! splits unevenly over the thread pool.

use burn::tensor::module::batch_norm_train;
use burn::tensor::{Device, Tensor, TensorData};

const EPS: f64 = 1e-5;

mod common;

use common::lcg_values as values;

/// The definition in f64: `(y, mean, biased variance)`.
fn forward(x: &[f64], gamma: &[f64], beta: &[f64], shape: &[usize]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (n, c) = (shape[0], shape[1]);
    let slab: usize = shape[2..].iter().product();
    let idx = |b: usize, ch: usize, i: usize| (b * c + ch) * slab + i;
    let count = (n * slab) as f64;
    let mut mean = vec![0.0; c];
    let mut var = vec![0.0; c];
    for ch in 0..c {
        mean[ch] = (0..n).flat_map(|b| (0..slab).map(move |i| (b, i))).map(|(b, i)| x[idx(b, ch, i)]).sum::<f64>() / count;
        var[ch] = (0..n)
            .flat_map(|b| (0..slab).map(move |i| (b, i)))
            .map(|(b, i)| (x[idx(b, ch, i)] - mean[ch]).powi(2))
            .sum::<f64>()
            / count;
    }
    let mut y = vec![0.0; x.len()];
    for b in 0..n {
        for ch in 0..c {
            for i in 0..slab {
                let j = idx(b, ch, i);
                y[j] = gamma[ch] * (x[j] - mean[ch]) / (var[ch] + EPS).sqrt() + beta[ch];
            }
        }
    }
    (y, mean, var)
}

fn loss(x: &[f64], gamma: &[f64], beta: &[f64], r: &[f64], shape: &[usize]) -> f64 {
    forward(x, gamma, beta, shape).0.iter().zip(r).map(|(y, r)| y * r).sum()
}

/// Central differences of `loss` with respect to every entry of the argument `which`
/// (0: x, 1: gamma, 2: beta).
fn numeric_grad(x: &[f64], gamma: &[f64], beta: &[f64], r: &[f64], shape: &[usize], which: usize) -> Vec<f64> {
    let h = 1e-5;
    let len = [x.len(), gamma.len(), beta.len()][which];
    (0..len)
        .map(|i| {
            let mut args = [x.to_vec(), gamma.to_vec(), beta.to_vec()];
            args[which][i] += h;
            let up = loss(&args[0], &args[1], &args[2], r, shape);
            args[which][i] -= 2.0 * h;
            let down = loss(&args[0], &args[1], &args[2], r, shape);
            (up - down) / (2.0 * h)
        })
        .collect()
}

fn compare(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{what}: the reference is all zeros, the check would say nothing");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (*g as f64 - w).abs() / scale;
        assert!(err <= tol, "{what}[{i}]: {g} vs reference {w} (relative error {err:.2e})");
    }
}

fn check<const D: usize>(shape: [usize; D], offset: f64) {
    let device = Device::flex().autodiff();
    let c = shape[1];
    let numel: usize = shape.iter().product();
    let x: Vec<f64> = values(numel, 11).into_iter().map(|v| v * 2.0 + offset).collect();
    let gamma: Vec<f64> = values(c, 12).into_iter().map(|v| 1.0 + 0.5 * v).collect();
    let beta = values(c, 13);
    let r = values(numel, 14);
    let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    // The reference sees exactly the f32 values Burn sees.
    let round = |v: &[f64]| v.iter().map(|&v| v as f32 as f64).collect::<Vec<f64>>();
    let (x, gamma, beta, r) = (round(&x), round(&gamma), round(&beta), round(&r));

    let xt = Tensor::<D>::from_data(TensorData::new(f32s(&x), shape), &device).require_grad();
    let gt = Tensor::<1>::from_data(TensorData::new(f32s(&gamma), [c]), &device).require_grad();
    let bt = Tensor::<1>::from_data(TensorData::new(f32s(&beta), [c]), &device).require_grad();
    let rt = Tensor::<D>::from_data(TensorData::new(f32s(&r), shape), &device);
    let out = batch_norm_train(xt.clone(), gt.clone(), bt.clone(), EPS);
    let host = |t: TensorData| t.try_to_vec::<f32>().unwrap();
    let (y, mean, var) = (host(out.output.clone().into_data()), host(out.mean.into_data()), host(out.variance.into_data()));
    let grads = (out.output * rt).sum().backward();
    let dx = host(xt.grad(&grads).expect("x gradient").into_data());
    let dgamma = host(gt.grad(&grads).expect("gamma gradient").into_data());
    let dbeta = host(bt.grad(&grads).expect("beta gradient").into_data());

    let name = format!("{shape:?}, offset {offset}");
    let (ry, rmean, rvar) = forward(&x, &gamma, &beta, &shape);
    compare(&y, &ry, 1e-5, &format!("{name}: y"));
    compare(&mean, &rmean, 1e-6, &format!("{name}: mean"));
    compare(&var, &rvar, 1e-5, &format!("{name}: variance"));
    // Finite differences in f64 carry ~1e-9 relative error; f32 kernels ~1e-6.
    compare(&dx, &numeric_grad(&x, &gamma, &beta, &r, &shape, 0), 1e-4, &format!("{name}: dL/dx"));
    compare(&dgamma, &numeric_grad(&x, &gamma, &beta, &r, &shape, 1), 1e-4, &format!("{name}: dL/dgamma"));
    compare(&dbeta, &numeric_grad(&x, &gamma, &beta, &r, &shape, 2), 1e-4, &format!("{name}: dL/dbeta"));
}

#[test]
fn rank4_activations() {
    check([5, 3, 4, 3], 0.0);
}

#[test]
fn large_common_offset() {
    // Values 100 ± 2: a one-pass Σx² − (Σx)²/M variance would lose most digits in f32.
    check([4, 2, 3, 3], 100.0);
}

#[test]
fn rank2_features_and_uneven_batch() {
    check([17, 5], 0.0);
}
