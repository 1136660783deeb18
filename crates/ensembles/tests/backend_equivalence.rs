//! Same code on Vulkan: a tiny BatchEnsemble ResNet with fixed weights gives the same training
//! forward outputs, parameter gradients and input gradient on `wgpu` as on `flex`, the same
//! training outputs after one SGD step (Nesterov, weight decay), the same inference outputs
//! (BatchNorm running statistics updated by those forwards) and the same LatentBE-merged
//! network outputs; and training-mode batch norm at the benchmark's activation size gives the
//! same output, statistics and gradients. Larger networks are `#[ignore]`d (minutes on a
//! software driver).
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
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use ensembles::{
    Arch, Backbone, BackboneConfig, BatchEnsembleConfig, BiasMode, FastInit, MergeRule, from_safetensors_bytes, tile,
    to_safetensors_bytes,
};

const CLASSES: usize = 10;

/// Relative tolerance (of each tensor's max |value|). Measured on lavapipe (Mesa 22, AVX-512
/// host), tiny case: worst differences 3e-7 .. 1.5e-6 of the tensor's scale for logits, the
/// input gradient and all 39 parameter gradients; 2e-5 leaves a ×10 margin and still fails on
/// any real disagreement (a wrong kernel is off by O(1)).
const RTOL: f32 = 2e-5;

/// A network and batch shape to compare.
#[derive(Clone, Copy)]
struct Case {
    /// CIFAR ResNet depth.
    depth: usize,
    /// BatchEnsemble members (1: plain network).
    members: usize,
    /// Images per (untiled) batch.
    batch: usize,
    /// Image side.
    side: usize,
}

/// The CI case: tiny, so lavapipe compiles few shaders.
const TINY_BE: Case = Case { depth: 8, members: 2, batch: 3, side: 8 };

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

impl Case {
    fn config(&self) -> BackboneConfig {
        let cfg = BackboneConfig::new(Arch::ResNet { depth: self.depth });
        if self.members == 1 {
            return cfg;
        }
        cfg.with_batch_ensemble(Some(
            BatchEnsembleConfig::new(self.members)
                .with_bias(BiasMode::PerMember)
                .with_fast_init(FastInit::Normal { mean: 1.0, std: 0.5 }),
        ))
    }

    /// The same weights on `device`, loaded from safetensors bytes.
    fn load(&self, bytes: &[u8], device: &Device) -> Backbone {
        let mut model = self.config().init(device).unwrap();
        from_safetensors_bytes(&mut model, bytes.to_vec()).unwrap();
        model
    }

    fn images(&self, x: &[f32], device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(x.to_vec(), [self.batch, 3, self.side, self.side]), device)
    }

    /// One training forward/backward on `device`'s autodiff twin, one SGD step (Nesterov
    /// 0.9, weight decay 5e-4, lr 0.1, as the training protocol), the training forward of the
    /// updated network, then inference with the updated BatchNorm statistics and the
    /// LatentBE-merged network on `device`.
    fn run(&self, bytes: &[u8], x: &[f32], c: &[f32], device: &Device) -> Outputs {
        let ad = device.clone().autodiff();
        let model = self.load(bytes, &ad);
        let x_ad = self.images(x, &ad).require_grad();
        let c_ad = Tensor::<2>::from_data(TensorData::new(c.to_vec(), [self.members * self.batch, CLASSES]), &ad);
        let objective = |model: &Backbone, x: Tensor<4>| {
            let logits = model.forward(tile(x, self.members)); // [M*B, K]
            let loss = (log_softmax(logits.clone(), 1) * c_ad.clone()).sum();
            (logits, loss)
        };
        let (logits, loss) = objective(&model, x_ad.clone());
        let mut grads = loss.backward();
        let input_grad = host(x_ad.grad(&grads).expect("input gradient"));
        let params = GradientsParams::from_module(&mut grads, &model);
        let mut collect = CollectGrads { grads: &params, out: Vec::new() };
        model.visit(&mut collect);
        let param_grads = collect.out;

        let momentum = MomentumConfig::new().with_momentum(0.9).with_dampening(0.0).with_nesterov(true);
        let mut sgd = SgdConfig::new().with_momentum(Some(momentum)).with_weight_decay(Some(WeightDecayConfig::new(5e-4))).init();
        let model = sgd.step(0.1, model, params);
        let (stepped, _) = objective(&model, self.images(x, &ad));

        let eval = model.valid();
        let x_plain = self.images(x, device);
        let eval_logits = host(eval.forward(tile(x_plain.clone(), self.members)));
        let merged_logits = host(eval.merge(MergeRule::FactorMean).unwrap().forward(x_plain));
        Outputs {
            train_logits: host(logits),
            input_grad,
            param_grads,
            stepped_logits: host(stepped),
            eval_logits,
            merged_logits,
        }
    }

    /// Compare wgpu against flex on this case.
    fn check(&self) {
        let flex = Device::flex();
        flex.seed(11);
        let bytes = to_safetensors_bytes(&self.config().init(&flex).unwrap()).unwrap();
        let x = host(Tensor::<4>::random([self.batch, 3, self.side, self.side], Distribution::Uniform(0.0, 1.0), &flex));
        let c = host(Tensor::<2>::random([self.members * self.batch, CLASSES], Distribution::Normal(0.0, 1.0), &flex));

        let want = self.run(&bytes, &x, &c, &flex);
        let wgpu = Device::wgpu(Default::default());
        eprintln!("wgpu adapter: {}", wgpu.identity().map(|i| i.name).unwrap_or_default());
        let got = self.run(&bytes, &x, &c, &wgpu);

        // The reference itself must be informative: distinct members, non-zero gradients.
        if self.members > 1 {
            let (m0, m1) = want.train_logits.split_at(self.batch * CLASSES);
            assert!(m0.iter().zip(m1).any(|(a, b)| (a - b).abs() > 1e-3), "BE members identical: weak test");
        }
        assert!(want.input_grad.iter().any(|g| g.abs() > 0.0));

        assert_close(&got.train_logits, &want.train_logits, RTOL, "training logits");
        assert_close(&got.input_grad, &want.input_grad, RTOL, "input gradient");
        assert_eq!(got.param_grads.len(), want.param_grads.len(), "number of parameter gradients");
        assert!(want.param_grads.len() >= 20, "only {} parameter gradients", want.param_grads.len());
        for (i, (g, w)) in got.param_grads.iter().zip(&want.param_grads).enumerate() {
            assert!(w.iter().any(|v| *v != 0.0), "parameter {i}: zero gradient on flex");
            assert_close(g, w, RTOL, &format!("gradient of parameter {i} (visiting order)"));
        }
        assert_close(&got.stepped_logits, &want.stepped_logits, RTOL, "training logits after one SGD step");
        assert_close(&got.eval_logits, &want.eval_logits, RTOL, "inference logits");
        assert_close(&got.merged_logits, &want.merged_logits, RTOL, "LatentBE merged logits");
    }
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
    stepped_logits: Vec<f32>,
    eval_logits: Vec<f32>,
    merged_logits: Vec<f32>,
}

#[test]
fn batch_ensemble_resnet_matches_flex_on_wgpu() {
    TINY_BE.check();
}

/// The benchmark's shape (plain ResNet-20, batch 128, 32x32), where `bench train --backend
/// wgpu` saw a NaN loss on the second step. Failed on lavapipe (Mesa 22.3.6) with stock Burn
/// 0.22.1 — training logits off by 7e16 in the first forward pass — because its batch norm
/// reduced 131,072 values per channel in one row (see `batch_norm_train_matches_flex_on_wgpu`;
/// `vendor/burn-backend` fixes batch norm, this whole-network case has not been re-run since).
/// Tens of minutes unoptimised on lavapipe: not run in CI.
#[test]
#[ignore = "slow on a software Vulkan driver; run with --ignored"]
fn resnet20_bench_shape_matches_flex_on_wgpu() {
    Case { depth: 20, members: 1, batch: 128, side: 32 }.check();
}

/// Smaller shapes that pass on lavapipe (3–7 minutes): they bracket the failing one above.
#[test]
#[ignore = "slow on a software Vulkan driver; run with --ignored"]
fn resnet8_shapes_match_flex_on_wgpu() {
    for case in [
        Case { depth: 8, members: 1, batch: 128, side: 8 },
        Case { depth: 8, members: 1, batch: 3, side: 32 },
        Case { depth: 8, members: 1, batch: 32, side: 16 },
    ] {
        case.check();
    }
}

/// ResNet-8 at the benchmark's batch and image size (the same activation sizes as the ResNet-20
/// case, fewer blocks). Failed on lavapipe with stock Burn too (logits off by 8e6): batch norm
/// in training mode, as above.
#[test]
#[ignore = "slow on a software Vulkan driver; run with --ignored"]
fn resnet8_bench_batch_matches_flex_on_wgpu() {
    Case { depth: 8, members: 1, batch: 128, side: 32 }.check();
}

/// The failing activation size `[128, 16, 32, 32]` (2,097,152 values) and a 16 → 16 3x3 kernel.
const LARGE: [usize; 4] = [128, 16, 32, 32];
const KERNEL: [usize; 4] = [16, 16, 3, 3];

/// Draw an input of size [`LARGE`] and a [`KERNEL`] on flex, evaluate `outputs(x, w)` with
/// them on flex and on wgpu, and fail naming every output that differs (each is reported).
fn compare_large_outputs(seed: u64, outputs: impl Fn(&[f32], &[f32], &Device) -> Vec<(&'static str, Vec<f32>)>) {
    let flex = Device::flex();
    flex.seed(seed);
    let x = host(Tensor::<4>::random(LARGE, Distribution::Uniform(0.0, 1.0), &flex));
    let w = host(Tensor::<4>::random(KERNEL, Distribution::Normal(0.0, 0.1), &flex));
    let want = outputs(&x, &w, &flex);
    let got = outputs(&x, &w, &Device::wgpu(Default::default()));
    let mut bad = Vec::new();
    for ((name, g), (_, w)) in got.iter().zip(&want) {
        let ok = std::panic::catch_unwind(|| assert_close(g, w, RTOL, name)).is_ok();
        eprintln!("{name}: {}", if ok { "ok" } else { "DIFFERS" });
        if !ok {
            bad.push(*name);
        }
    }
    assert!(bad.is_empty(), "outputs differing on wgpu: {bad:?}");
}

/// Training-mode batch norm at the ResNet-20 benchmark's first-stage size [`LARGE`] (131,072
/// values per channel): output, batch statistics (through the running mean and variance) and
/// the gradients of the input, γ and β for the loss Σ y·r with a fixed r. CubeCL's long-axis
/// reduction is wrong on lavapipe at this length, which stock Burn's batch norm hit (NaN in
/// `bench --backend wgpu`); `vendor/burn-backend` reduces over `[N, C, H·W]` instead. flex
/// (the reference) runs its own fused kernel, checked against the definition in
/// `tests/batch_norm_flex.rs`. Seconds on lavapipe.
#[test]
fn batch_norm_train_matches_flex_on_wgpu() {
    use burn::nn::BatchNormConfig;
    compare_large_outputs(10, |x, _w, device| {
        let ad = device.clone().autodiff();
        let len = x.len();
        // A fixed loss weight, the input permuted: r_i = x_{7919 i mod len} − ½.
        let r: Vec<f32> = (0..len).map(|i| x[(i * 7919) % len] - 0.5).collect();
        let xt = Tensor::<4>::from_data(TensorData::new(x.to_vec(), LARGE), &ad).require_grad();
        let r = Tensor::<4>::from_data(TensorData::new(r, LARGE), &ad);
        let mut bn = BatchNormConfig::new(LARGE[1]).init(&ad);
        // γ and β away from 1 and 0, so their gradients and the affine part are exercised.
        let channels: Vec<f32> = (0..LARGE[1]).map(|c| c as f32 / 8.0).collect();
        let gamma = Tensor::<1>::from_data(TensorData::new(channels.iter().map(|v| 0.5 + v).collect::<Vec<_>>(), [LARGE[1]]), &ad);
        let beta = Tensor::<1>::from_data(TensorData::new(channels.iter().map(|v| v - 1.0).collect::<Vec<_>>(), [LARGE[1]]), &ad);
        bn.gamma = Param::from_tensor(gamma);
        bn.beta = Param::from_tensor(beta);
        let y = bn.forward(xt.clone());
        let grads = (y.clone() * r).sum().backward();
        vec![
            ("batch_norm", host(y)),
            ("running_mean", host(bn.running_mean.value())),
            ("running_var", host(bn.running_var.value())),
            ("x_grad", host(xt.grad(&grads).unwrap())),
            ("gamma_grad", host(bn.gamma.val().grad(&grads).unwrap())),
            ("beta_grad", host(bn.beta.val().grad(&grads).unwrap())),
        ]
    });
}

fn conv3x3(x: Tensor<4>, w: Tensor<4>, stride: usize) -> Tensor<4> {
    burn::tensor::module::conv2d(x, w, None, burn::tensor::ops::ConvOptions::new([stride; 2], [1, 1], [1, 1], 1))
}

/// Single ops at the failing activation size, to find which kernel disagrees with flex on
/// lavapipe. All pass.
#[test]
#[ignore = "diagnosis of the ResNet-20 failure; run with --ignored"]
fn large_activation_ops_match_flex_on_wgpu() {
    use burn::tensor::activation::relu;
    compare_large_outputs(5, |x, w, device| {
        let (x, w) = (TensorData::new(x.to_vec(), LARGE), TensorData::new(w.to_vec(), KERNEL));
        let ad = device.clone().autodiff();
        let xa = Tensor::<4>::from_data(x.clone(), &ad).require_grad();
        let wa = Tensor::<4>::from_data(w.clone(), &ad).require_grad();
        let g = (conv3x3(xa.clone(), wa.clone(), 1) * 0.5).sum().backward();
        let (x, w) = (Tensor::<4>::from_data(x, device), Tensor::<4>::from_data(w, device));
        vec![
            ("scale_shift", host(x.clone() * 2.0 + 1.0)),
            ("relu", host(relu(x.clone() - 0.5))),
            ("channel_mean", host(x.clone().mean_dim(0).mean_dim(2).mean_dim(3))),
            ("sum", host(x.clone().sum())),
            ("conv3x3", host(conv3x3(x.clone(), w.clone(), 1))),
            ("conv3x3_stride2", host(conv3x3(x, w, 2))),
            ("conv3x3_input_grad", host(xa.grad(&g).unwrap())),
            ("conv3x3_weight_grad", host(wa.grad(&g).unwrap())),
        ]
    });
}

/// A short op sequence at the failing size: conv → batch-norm arithmetic (batch statistics)
/// → ReLU → conv, forward only. Passes: the ResNet failure is not this chain.
#[test]
#[ignore = "diagnosis of the ResNet-20 failure; run with --ignored"]
fn large_activation_sequence_matches_flex_on_wgpu() {
    use burn::tensor::activation::relu;
    compare_large_outputs(6, |x, w, device| {
        let x = Tensor::<4>::from_data(TensorData::new(x.to_vec(), LARGE), device);
        let w = Tensor::<4>::from_data(TensorData::new(w.to_vec(), KERNEL), device);
        let h = conv3x3(x, w.clone(), 1);
        let mean = h.clone().mean_dim(0).mean_dim(2).mean_dim(3); // [1, C, 1, 1]
        let centred = h.clone() - mean;
        let var = centred.clone().powi_scalar(2).mean_dim(0).mean_dim(2).mean_dim(3);
        let a = relu(centred / (var + 1e-5).sqrt());
        let out = conv3x3(a.clone(), w, 1);
        vec![("conv", host(h)), ("conv_bn_relu", host(a)), ("conv_bn_relu_conv", host(out))]
    });
}

/// The ResNet forward's remaining pieces at the failing size, each on its own: the input
/// normalisation and the 3 → 16 stem convolution on `[128, 3, 32, 32]`, the zero-pad
/// shortcut (stride-2 slice, concatenation with zeros), and the global average pool. All pass.
#[test]
#[ignore = "diagnosis of the ResNet-20 failure; run with --ignored"]
fn resnet_forward_pieces_match_flex_on_wgpu() {
    use burn::tensor::s;
    compare_large_outputs(7, |x, w, device| {
        let [n, c, h, wd] = LARGE;
        // The first three channels of x as an image batch, cut on the host.
        let image: Vec<f32> = (0..n)
            .flat_map(|b| x[b * c * h * wd..(b * c + 3) * h * wd].iter().copied())
            .collect();
        let image = Tensor::<4>::from_data(TensorData::new(image, [n, 3, h, wd]), device);
        let stem_w: Vec<f32> = w[..16 * 3 * 9].to_vec();
        let stem_w = Tensor::<4>::from_data(TensorData::new(stem_w, [16, 3, 3, 3]), device);
        let x = Tensor::<4>::from_data(TensorData::new(x.to_vec(), LARGE), device);
        let mean = Tensor::<1>::from_floats([0.49, 0.48, 0.45], device).reshape([1, 3, 1, 1]);
        let inv_std = Tensor::<1>::from_floats([4.1, 4.1, 3.8], device).reshape([1, 3, 1, 1]);
        let normalised = (image.clone() - mean) * inv_std;
        let subsampled = x.clone().slice(s![.., .., 0..;2, 0..;2]);
        let zeros = Tensor::zeros([n, c, h / 2, wd / 2], device);
        let padded = Tensor::cat(vec![subsampled.clone(), zeros], 1);
        let pooled = x.reshape([n, c, h * wd]).mean_dim(2).reshape([n, c]);
        vec![
            ("normalise", host(normalised.clone())),
            ("stem_conv", host(conv3x3(image, stem_w.clone(), 1))),
            ("normalise_stem_conv", host(conv3x3(normalised, stem_w, 1))),
            ("stride2_slice", host(subsampled)),
            ("zero_pad_cat", host(padded)),
            ("global_avg_pool", host(pooled)),
        ]
    });
}

/// Burn's `BatchNorm` module in training mode (autodiff device: batch statistics, running
/// statistics updated), alone and followed by ReLU → conv, at the failing size. Failed on
/// lavapipe with stock Burn (batch-norm output off by 3e2, running mean by 5e-2) while the
/// stride-2 case (32,768 values per channel) passed: the per-channel mean was wrong, see
/// below. Passes with `vendor/burn-backend`.
#[test]
#[ignore = "diagnosis of the ResNet-20 failure; run with --ignored"]
fn batch_norm_module_matches_flex_on_wgpu() {
    use burn::nn::BatchNormConfig;
    use burn::tensor::activation::relu;
    compare_large_outputs(8, |x, w, device| {
        let ad = device.clone().autodiff();
        let x = Tensor::<4>::from_data(TensorData::new(x.to_vec(), LARGE), &ad);
        let w = Tensor::<4>::from_data(TensorData::new(w.to_vec(), KERNEL), &ad);
        let bn = BatchNormConfig::new(16).init(&ad);
        let y = bn.forward(x.clone());
        let out = conv3x3(relu(y.clone()), w.clone(), 1);
        let y2 = bn.forward(conv3x3(x, w, 2));
        vec![
            ("batch_norm", host(y)),
            ("batch_norm_relu_conv", host(out)),
            ("running_mean", host(bn.running_mean.value())),
            ("running_var", host(bn.running_var.value())),
            ("stride2_conv_batch_norm", host(y2)),
        ]
    });
}

/// The per-channel statistics the way stock Burn's `batch_norm_train` computed them: channels to the
/// front (`swap_dims`), flattened to `[C, N·H·W]` (a copy of the permuted tensor), mean over
/// the long axis — and the copy and the long reduction each on their own. On lavapipe the copy
/// matches; the mean and the sum over the 131,072-long axis are wrong, from a contiguous
/// input too.
#[test]
#[ignore = "diagnosis of the ResNet-20 failure; run with --ignored"]
fn channel_statistics_as_batch_norm_computes_them_match_flex_on_wgpu() {
    compare_large_outputs(9, |x, _w, device| {
        let [n, c, h, wd] = LARGE;
        let x = Tensor::<4>::from_data(TensorData::new(x.to_vec(), LARGE), device);
        let flat = x.clone().swap_dims(0, 1).reshape([c, n * h * wd]);
        let contiguous = Tensor::<2>::from_data(TensorData::new(host(flat.clone()), [c, n * h * wd]), device);
        vec![
            ("swap_dims_reshape", host(flat.clone())),
            ("swap_dims_reshape_mean", host(flat.mean_dim(1))),
            ("long_axis_mean", host(contiguous.clone().mean_dim(1))),
            ("long_axis_sum", host(contiguous.sum_dim(1))),
        ]
    });
}

/// Where the long-axis reduction breaks on lavapipe: `sum_dim(1)` of ones `[rows, len]` must
/// be `len` in every row. On lavapipe (Mesa 22.3.6): right up to 32,768; `[1, 65535]` → 65532,
/// `[16, 65536]` → 65460 in one row, `[16, 131072]` → 0 from the third row on.
#[test]
#[ignore = "fails on lavapipe (the ResNet-20 failure, minimal reproduction); run with --ignored"]
fn long_axis_sum_of_ones_on_wgpu() {
    let device = Device::wgpu(Default::default());
    let mut wrong = Vec::new();
    for rows in [1usize, 16] {
        for len in [4096usize, 32768, 65535, 65536, 65537, 100_000, 131_072, 262_144] {
            let sums = host(Tensor::<2>::ones([rows, len], &device).sum_dim(1));
            let ok = sums.iter().all(|&s| s == len as f32);
            eprintln!("[{rows}, {len}] sum_dim(1): {}", if ok { "ok".to_string() } else { format!("WRONG {:?}", &sums[..rows.min(4)]) });
            if !ok {
                wrong.push((rows, len));
            }
        }
    }
    assert!(wrong.is_empty(), "wrong long-axis sums on wgpu: {wrong:?}");
}
