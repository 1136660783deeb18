//! Shared helpers for the perturb tests: tiny ResNet-8 ensembles on 8x8 images (global
//! average pooling makes any H, W >= 4 work), host conversions, and f64 host evaluation of
//! the objectives through the same eval-mode networks.
#![allow(dead_code)]

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use ensembles::{Arch, Backbone, BackboneConfig, BatchEnsembleConfig, FastInit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const B: usize = 2;
pub const C: usize = 3;
pub const H: usize = 8;
pub const W: usize = 8;
pub const D: usize = C * H * W;
pub const K: usize = 5;

pub fn ad() -> Device {
    Device::flex().autodiff()
}

pub fn host<const N: usize>(t: Tensor<N>) -> Vec<f32> {
    t.inner().into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

pub fn tensor4(values: &[f32], dims: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values.to_vec(), dims), device)
}

/// Uniform pixels in `[lo, hi)`, `[B, C, H, W]`, row-major.
pub fn pixels(seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..B * D).map(|_| rng.random_range(lo..hi)).collect()
}

fn config(members: Option<usize>) -> BackboneConfig {
    let be = members.map(|m| BatchEnsembleConfig::new(m).with_fast_init(FastInit::Normal { mean: 1.0, std: 0.5 }));
    BackboneConfig::new(Arch::ResNet { depth: 8 }).with_num_classes(K).with_batch_ensemble(be)
}

/// A few training-mode forwards on the autodiff device so that the BatchNorm running
/// statistics move away from their initial (0, 1) and differ from any batch's statistics.
fn warm_running_stats(model: &Backbone, seed: u64, device: &Device) {
    let tiles = model.members;
    for s in 0..3 {
        let x = tensor4(&pixels(seed * 100 + s, 0.0, 1.0), [B, C, H, W], device);
        let _ = model.forward(ensembles::tile(x, tiles));
    }
}

/// Serialises seeding + initialisation. flex's random generator is one global, shared by
/// every test of a binary, and the tests run in parallel threads: without this, two tests'
/// weight draws interleave and the networks differ from run to run (a finite-difference check
/// then fails now and then, when a different network puts a ReLU kink inside the step).
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Forces every float parameter's initial value: Burn draws it lazily, at first use.
struct Materialise;

impl burn::module::ModuleVisitor for Materialise {
    fn visit_float<const N: usize>(&mut self, param: &burn::module::Param<Tensor<N>>) {
        let _ = param.val();
    }
}

/// Seed, build and warm a network; the seeding and every parameter draw happen under
/// [`INIT`] (parameters are materialised there, not at their first use in a later forward).
fn seeded_init(members: Option<usize>, seed: u64, device: &Device) -> Backbone {
    let net = {
        let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
        device.seed(seed);
        let net = config(members).init(device).unwrap();
        net.visit(&mut Materialise);
        net
    };
    warm_running_stats(&net, seed, device);
    net
}

/// `m` plain ResNet-8 members, each with its own seed, on the autodiff device, in training
/// mode, with warmed running statistics.
pub fn deep_ensemble(m: usize, seed: u64) -> Vec<Backbone> {
    let device = ad();
    (0..m)
        .map(|k| seeded_init(None, seed + k as u64, &device))
        .collect()
}

/// A BatchEnsemble ResNet-8 of `m` members (fast weights N(1, 0.5²) so members differ).
pub fn batch_ensemble(m: usize, seed: u64) -> Backbone {
    let device = ad();
    seeded_init(Some(m), seed, &device)
}

/// Eval-mode logits `[M][B][K]` as f64, computed on the plain device with `valid()`.
pub fn host_logits_de(members: &[Backbone], x: &[f32]) -> Vec<Vec<Vec<f64>>> {
    let plain = Device::flex();
    members
        .iter()
        .map(|net| {
            let z = host(net.valid().forward(tensor4(x, [B, C, H, W], &plain)));
            z.chunks(K).map(|r| r.iter().map(|&v| v as f64).collect()).collect()
        })
        .collect()
}

/// Eval-mode member logits `[M][B][K]` of a BatchEnsemble, as f64.
pub fn host_logits_be(net: &Backbone, x: &[f32]) -> Vec<Vec<Vec<f64>>> {
    let plain = Device::flex();
    let z = host(net.valid().member_logits(tensor4(x, [B, C, H, W], &plain)));
    z.chunks(B * K).map(|m| m.chunks(K).map(|r| r.iter().map(|&v| v as f64).collect()).collect()).collect()
}

pub fn softmax64(z: &[f64], t: f64) -> Vec<f64> {
    let mx = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| ((v - mx) / t).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// `mean_b H[sg(p_j), p_i]` at T = 1: `p_i` from host logits `z` `[M][B][K]` at the
/// evaluation point, the stop-gradient target `p_j` from `z_target`, the logits at the clean
/// point (a finite difference of `sg(.)` holds the target fixed).
pub fn div64(z: &[Vec<Vec<f64>>], z_target: &[Vec<Vec<f64>>], i: usize, j: usize) -> f64 {
    (0..B)
        .map(|b| {
            let (pi, pj) = (softmax64(&z[i][b], 1.0), softmax64(&z_target[j][b], 1.0));
            -pj.iter().zip(&pi).map(|(q, p)| q * p.ln()).sum::<f64>()
        })
        .sum::<f64>()
        / B as f64
}

/// A random direction of unit L2 norm over the whole batch.
pub fn unit_direction(seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let v: Vec<f64> = (0..B * D).map(|_| rng.random_range(-1.0..1.0)).collect();
    let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    v.iter().map(|a| a / n).collect()
}

pub fn shifted(x: &[f32], v: &[f64], h: f64) -> Vec<f32> {
    x.iter().zip(v).map(|(&a, &d)| (a as f64 + h * d) as f32).collect()
}

/// Per-example L2 norms of a `[B, …]` host buffer.
pub fn example_norms(v: &[f32]) -> Vec<f64> {
    v.chunks(D).map(|c| c.iter().map(|&a| (a as f64) * (a as f64)).sum::<f64>().sqrt()).collect()
}
