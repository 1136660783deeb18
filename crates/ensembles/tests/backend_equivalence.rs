//! Same code on Vulkan: a tiny BatchEnsemble ResNet with fixed weights gives the same training
//! forward outputs, parameter gradients and input gradient on `wgpu` as on `flex`, the same
//! inference outputs (BatchNorm running statistics updated by that forward) and the same
//! LatentBE-merged network outputs.
//!
//! Compiled only with the test feature that builds the wgpu backend in, and it needs a Vulkan
//! (or Metal/DX12) driver; CI installs Mesa's software Vulkan (lavapipe):
//!
//! ```sh
//! cargo test -p ensembles --features test-wgpu --test backend_equivalence --profile wgpu-test
//! ```
//!
//! (`--profile wgpu-test` builds the dependencies unoptimised: the wgpu/CubeCL stack at the dev
//! profile's opt-level 3 costs about 40 CPU-minutes; any profile works.)
//!
//! The reference is the flex backend (whose layers are checked against naive host-side
//! convolutions in `tests/batch_ensemble.rs`); the weights go from one device to the other
//! through the safetensors bytes the checkpoints use, so the test also pins that a model saved
//! on one backend loads on another.
#![cfg(feature = "test-wgpu")]

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use ensembles::{
    Arch, Backbone, BackboneConfig, BatchEnsembleConfig, BiasMode, FastInit, MergeRule, from_safetensors_bytes, tile,
    to_safetensors_bytes,
};

const MEMBERS: usize = 2;
const BATCH: usize = 3;
const SIDE: usize = 8;
const CLASSES: usize = 10;

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

/// `|a - b| <= rtol * max|b| + atol`, per tensor: summation orders differ between backends,
/// so entries are compared on the scale of the whole tensor.
fn assert_close(a: &[f32], b: &[f32], rtol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let tol = rtol * scale + 1e-6;
    let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(a.iter().all(|v| v.is_finite()), "{what}: non-finite value on wgpu");
    assert!(worst <= tol, "{what}: max |wgpu - flex| = {worst:e} > {tol:e} (max |flex| = {scale:e})");
}

fn config() -> BackboneConfig {
    BackboneConfig::new(Arch::ResNet { depth: 8 }).with_batch_ensemble(Some(
        BatchEnsembleConfig::new(MEMBERS)
            .with_bias(BiasMode::PerMember)
            .with_fast_init(FastInit::Normal { mean: 1.0, std: 0.5 }),
    ))
}

/// The same weights on `device`, loaded from safetensors bytes.
fn load(bytes: &[u8], device: &Device) -> Backbone {
    let mut model = config().init(device).unwrap();
    from_safetensors_bytes(&mut model, bytes.to_vec()).unwrap();
    model
}

/// Every float parameter's gradient, in visiting order (the same order for both models).
struct CollectGrads<'a> {
    grads: &'a GradientsParams,
    out: Vec<Vec<f32>>,
}

impl ModuleVisitor for CollectGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.out.push(host(g));
        }
    }
}

struct Outputs {
    train_logits: Vec<f32>,
    input_grad: Vec<f32>,
    param_grads: Vec<Vec<f32>>,
    eval_logits: Vec<f32>,
    merged_logits: Vec<f32>,
}

/// One training forward/backward on `device`'s autodiff twin, then inference with the updated
/// BatchNorm statistics and the LatentBE-merged network on `device`.
fn run(bytes: &[u8], x: &[f32], c: &[f32], device: &Device) -> Outputs {
    let ad = device.clone().autodiff();
    let model = load(bytes, &ad);
    let x_ad = Tensor::<4>::from_data(TensorData::new(x.to_vec(), [BATCH, 3, SIDE, SIDE]), &ad).require_grad();
    let logits = model.forward(tile(x_ad.clone(), MEMBERS)); // [M*B, K]
    let c_ad = Tensor::<2>::from_data(TensorData::new(c.to_vec(), [MEMBERS * BATCH, CLASSES]), &ad);
    let loss = (log_softmax(logits.clone(), 1) * c_ad).sum();
    let mut grads = loss.backward();
    let input_grad = host(x_ad.grad(&grads).expect("input gradient"));
    let params = GradientsParams::from_module(&mut grads, &model);
    let mut collect = CollectGrads { grads: &params, out: Vec::new() };
    model.visit(&mut collect);

    let eval = model.valid();
    let x_plain = Tensor::<4>::from_data(TensorData::new(x.to_vec(), [BATCH, 3, SIDE, SIDE]), device);
    let eval_logits = host(eval.forward(tile(x_plain.clone(), MEMBERS)));
    let merged_logits = host(eval.merge(MergeRule::FactorMean).unwrap().forward(x_plain));
    Outputs { train_logits: host(logits), input_grad, param_grads: collect.out, eval_logits, merged_logits }
}

#[test]
fn batch_ensemble_resnet_matches_flex_on_wgpu() {
    let flex = Device::flex();
    flex.seed(11);
    let bytes = to_safetensors_bytes(&config().init(&flex).unwrap()).unwrap();
    let x = host(Tensor::<4>::random([BATCH, 3, SIDE, SIDE], Distribution::Uniform(0.0, 1.0), &flex));
    let c = host(Tensor::<2>::random([MEMBERS * BATCH, CLASSES], Distribution::Normal(0.0, 1.0), &flex));

    let want = run(&bytes, &x, &c, &flex);
    let got = run(&bytes, &x, &c, &Device::wgpu(Default::default()));

    // The reference itself must be informative: distinct members, non-zero gradients.
    let (m0, m1) = want.train_logits.split_at(BATCH * CLASSES);
    assert!(m0.iter().zip(m1).any(|(a, b)| (a - b).abs() > 1e-3), "BE members identical: weak test");
    assert!(want.input_grad.iter().any(|g| g.abs() > 0.0));

    // Measured on lavapipe (Mesa 22, AVX-512 host): worst differences 3e-7 .. 1.5e-6 of the
    // tensor's scale for logits, the input gradient and all 39 parameter gradients; 2e-5
    // leaves a ×10 margin and still fails on any real disagreement (a wrong kernel is off
    // by O(1)).
    const RTOL: f32 = 2e-5;
    assert_close(&got.train_logits, &want.train_logits, RTOL, "training logits");
    assert_close(&got.eval_logits, &want.eval_logits, RTOL, "inference logits");
    assert_close(&got.merged_logits, &want.merged_logits, RTOL, "LatentBE merged logits");
    assert_close(&got.input_grad, &want.input_grad, RTOL, "input gradient");
    assert_eq!(got.param_grads.len(), want.param_grads.len(), "number of parameter gradients");
    assert!(want.param_grads.len() >= 20, "only {} parameter gradients", want.param_grads.len());
    for (i, (g, w)) in got.param_grads.iter().zip(&want.param_grads).enumerate() {
        assert!(w.iter().any(|v| *v != 0.0), "parameter {i}: zero gradient on flex");
        assert_close(g, w, RTOL, &format!("gradient of parameter {i} (visiting order)"));
    }
}
