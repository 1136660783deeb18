//! BatchEnsemble layers and networks against independent references: a naive host-side
//! convolution / matmul with the materialised member weight `W ∘ (s_m r_mᵀ)` (METHODS.md §1),
//! the LatentBE merge invariants, and M = 1 equivalence with the plain network.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use ensembles::layers::LayerInit;
use ensembles::{
    Arch, BackboneConfig, BatchEnsembleConfig, BiasMode, EnsConv2d, EnsLinear, FastInit, MergeRule, NormMode,
    ShortcutKind,
};

const INIT: LayerInit = LayerInit::TruncatedHeNormal;

fn dev() -> Device {
    let d = Device::flex();
    d.seed(7);
    d
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
    }
}

/// Naive direct convolution on the host: x `[B,C,H,W]`, w `[O,C,k,k]`, zero padding.
fn naive_conv(x: &[f32], xs: [usize; 4], w: &[f32], ws: [usize; 4], stride: usize, pad: usize) -> Vec<f32> {
    let [b, c, h, wd] = xs;
    let [o, _, k, _] = ws;
    let ho = (h + 2 * pad - k) / stride + 1;
    let wo = (wd + 2 * pad - k) / stride + 1;
    let mut y = vec![0f32; b * o * ho * wo];
    for n in 0..b {
        for oc in 0..o {
            for i in 0..ho {
                for j in 0..wo {
                    let mut acc = 0f64;
                    for ic in 0..c {
                        for ki in 0..k {
                            for kj in 0..k {
                                let (yy, xx) = ((i * stride + ki) as isize - pad as isize, (j * stride + kj) as isize - pad as isize);
                                if yy < 0 || xx < 0 || yy >= h as isize || xx >= wd as isize {
                                    continue;
                                }
                                let xv = x[((n * c + ic) * h + yy as usize) * wd + xx as usize];
                                let wv = w[((oc * c + ic) * k + ki) * k + kj];
                                acc += (xv * wv) as f64;
                            }
                        }
                    }
                    y[((n * o + oc) * ho + i) * wo + j] = acc as f32;
                }
            }
        }
    }
    y
}

fn be_cfg(members: usize, bias: BiasMode) -> BatchEnsembleConfig {
    BatchEnsembleConfig::new(members).with_bias(bias).with_fast_init(FastInit::Normal { mean: 1.0, std: 0.5 })
}

#[test]
fn be_conv_member_equals_conv_with_materialised_weight() {
    let device = dev();
    let (m, b, c_in, c_out, k) = (3, 2, 4, 5, 3);
    let cfg = be_cfg(m, BiasMode::PerMember);
    let mut layer = EnsConv2d::new([c_in, c_out], k, 2, 1, true, Some(&cfg), INIT, &device);
    // Non-zero per-member biases so the bias path is exercised.
    layer.bias = Some(burn::module::Param::from_tensor(Tensor::random([m, c_out], Distribution::Normal(0.0, 1.0), &device)));
    let x = Tensor::<4>::random([b, c_in, 6, 6], Distribution::Uniform(0.0, 1.0), &device);
    let y = host(layer.forward(x.clone().repeat_dim(0, m))); // [M*B, O, 3, 3]
    let (w, r, s, bias) = (
        host(layer.weight.val()),
        host(layer.r.as_ref().unwrap().val()),
        host(layer.s.as_ref().unwrap().val()),
        host(layer.bias.as_ref().unwrap().val()),
    );
    let xv = host(x.clone());
    let per_member = y.len() / m;
    for mi in 0..m {
        // W ∘ (s_m r_mᵀ), built element by element.
        let mut wm = w.clone();
        for o in 0..c_out {
            for i in 0..c_in {
                for t in 0..k * k {
                    wm[(o * c_in + i) * k * k + t] *= s[mi * c_out + o] * r[mi * c_in + i];
                }
            }
        }
        let mut expect = naive_conv(&xv, [b, c_in, 6, 6], &wm, [c_out, c_in, k, k], 2, 1);
        for (idx, v) in expect.iter_mut().enumerate() {
            *v += bias[mi * c_out + (idx / 9) % c_out];
        }
        assert_close(&y[mi * per_member..(mi + 1) * per_member], &expect, 1e-4, &format!("BE rows of member {mi}"));
        let plain = layer.member(mi).unwrap();
        assert!(plain.r.is_none() && plain.s.is_none());
        assert_close(&host(plain.forward(x.clone())), &expect, 1e-4, &format!("member({mi}) layer"));
    }
}

#[test]
fn be_linear_member_equals_linear_with_materialised_weight() {
    // Both bias modes against the host formula of METHODS.md §1: shared b BEFORE s,
    // y_m = s_m ∘ (W (x ∘ r_m) + b) (giung2-jax `layers/linear.py`), per-member b_m after s.
    let device = dev();
    let (m, b, d_in, d_out) = (2, 3, 4, 3);
    for mode in [BiasMode::Shared, BiasMode::PerMember] {
        let mut layer = EnsLinear::new(d_in, d_out, true, Some(&be_cfg(m, mode)), INIT, &device);
        let rows = if mode == BiasMode::Shared { 1 } else { m };
        // Non-zero biases (the reference init's are zero) so the bias path is exercised.
        layer.bias = Some(burn::module::Param::from_tensor(Tensor::random([rows, d_out], Distribution::Normal(0.0, 1.0), &device)));
        let x = Tensor::<2>::random([b, d_in], Distribution::Normal(0.0, 1.0), &device);
        let y = host(layer.forward(x.clone().repeat_dim(0, m)));
        let (w, r, s, bias, xv) = (
            host(layer.weight.val()),
            host(layer.r.as_ref().unwrap().val()),
            host(layer.s.as_ref().unwrap().val()),
            host(layer.bias.as_ref().unwrap().val()),
            host(x.clone()),
        );
        for mi in 0..m {
            let mut expect = vec![0f32; b * d_out];
            for n in 0..b {
                for o in 0..d_out {
                    let mut acc = 0f32;
                    for i in 0..d_in {
                        acc += xv[n * d_in + i] * w[i * d_out + o] * r[mi * d_in + i];
                    }
                    let sm = s[mi * d_out + o];
                    expect[n * d_out + o] = match mode {
                        BiasMode::Shared => sm * (acc + bias[o]),
                        BiasMode::PerMember => sm * acc + bias[mi * d_out + o],
                    };
                }
            }
            assert_close(&y[mi * b * d_out..(mi + 1) * b * d_out], &expect, 1e-5, &format!("{mode:?}: BE linear rows"));
            let plain = layer.member(mi).unwrap();
            assert!(plain.r.is_none() && plain.s.is_none());
            assert_close(&host(plain.forward(x.clone())), &expect, 1e-5, &format!("{mode:?}: member linear"));
        }
    }
}

#[test]
fn be_conv_with_shared_bias_adds_it_before_s() {
    // y_m = s_m ∘ (W * (x ∘ r_m) + b) (giung2-jax `layers/conv.py`), checked against the naive
    // convolution with the materialised member weight and the member bias s_m ∘ b.
    let device = dev();
    let (m, b, c_in, c_out, k) = (2, 2, 3, 4, 3);
    let mut layer = EnsConv2d::new([c_in, c_out], k, 1, 1, true, Some(&be_cfg(m, BiasMode::Shared)), INIT, &device);
    layer.bias = Some(burn::module::Param::from_tensor(Tensor::random([1, c_out], Distribution::Normal(0.0, 1.0), &device)));
    let x = Tensor::<4>::random([b, c_in, 5, 5], Distribution::Uniform(0.0, 1.0), &device);
    let y = host(layer.forward(x.clone().repeat_dim(0, m)));
    let (w, r, s, bias) = (
        host(layer.weight.val()),
        host(layer.r.as_ref().unwrap().val()),
        host(layer.s.as_ref().unwrap().val()),
        host(layer.bias.as_ref().unwrap().val()),
    );
    let xv = host(x.clone());
    let per_member = y.len() / m;
    for mi in 0..m {
        let mut wr = w.clone();
        for o in 0..c_out {
            for i in 0..c_in {
                for t in 0..k * k {
                    wr[(o * c_in + i) * k * k + t] *= r[mi * c_in + i];
                }
            }
        }
        let mut expect = naive_conv(&xv, [b, c_in, 5, 5], &wr, [c_out, c_in, k, k], 1, 1);
        for (idx, v) in expect.iter_mut().enumerate() {
            let o = (idx / 25) % c_out;
            *v = s[mi * c_out + o] * (*v + bias[o]);
        }
        assert_close(&y[mi * per_member..(mi + 1) * per_member], &expect, 1e-4, &format!("BE rows of member {mi}"));
        assert_close(&host(layer.member(mi).unwrap().forward(x.clone())), &expect, 1e-4, &format!("member({mi}) layer"));
    }
}

#[test]
fn merge_with_unit_fast_weights_returns_w_unchanged() {
    let device = dev();
    let cfg = BatchEnsembleConfig::new(4); // FastInit::Ones
    let conv = EnsConv2d::new([3, 4], 3, 1, 1, false, Some(&cfg), INIT, &device);
    let lin = EnsLinear::new(5, 2, true, Some(&cfg), INIT, &device);
    for rule in [MergeRule::FactorMean, MergeRule::ProductMean] {
        assert_eq!(host(conv.merge(rule).weight.val()), host(conv.weight.val()), "{rule:?} conv");
        assert_eq!(host(lin.merge(rule).weight.val()), host(lin.weight.val()), "{rule:?} linear");
    }
}

#[test]
fn merge_with_one_member_is_the_members_effective_weight() {
    let device = dev();
    let cfg = be_cfg(1, BiasMode::PerMember);
    let conv = EnsConv2d::new([3, 4], 3, 1, 1, true, Some(&cfg), INIT, &device);
    let lin = EnsLinear::new(5, 2, true, Some(&cfg), INIT, &device);
    let conv_member = host(conv.member(0).unwrap().weight.val());
    let lin_member = host(lin.member(0).unwrap().weight.val());
    for rule in [MergeRule::FactorMean, MergeRule::ProductMean] {
        assert_close(&host(conv.merge(rule).weight.val()), &conv_member, 1e-6, "conv");
        assert_close(&host(lin.merge(rule).weight.val()), &lin_member, 1e-6, "linear");
    }
}

#[test]
fn merge_rules_match_hand_formulas() {
    // M = 2 linear layer, d_in = 2, d_out = 1, W = [[1], [2]] (layout [d_in, d_out]),
    // r_1 = (1, 2), r_2 = (3, 4), s_1 = 2, s_2 = 4, biases b_1 = 1, b_2 = 3.
    // FactorMean: r̄ = (2, 3), s̄ = 3 → W' = (1*2*3, 2*3*3) = (6, 18).
    // ProductMean: (s_1 r_1 + s_2 r_2)/2 = ((2, 4) + (12, 16))/2 = (7, 10) → W' = (7, 20).
    // Bias: (1 + 3)/2 = 2.
    let device = dev();
    let t = |v: Vec<f32>, shape: [usize; 2]| burn::module::Param::from_tensor(Tensor::<2>::from_data(TensorData::new(v, shape), &device));
    let lin = EnsLinear {
        weight: t(vec![1.0, 2.0], [2, 1]),
        r: Some(t(vec![1.0, 2.0, 3.0, 4.0], [2, 2])),
        s: Some(t(vec![2.0, 4.0], [2, 1])),
        bias: Some(t(vec![1.0, 3.0], [2, 1])),
        bias_before_s: false,
    };
    let f = lin.merge(MergeRule::FactorMean);
    assert_eq!(host(f.weight.val()), vec![6.0, 18.0]);
    assert_eq!(host(f.bias.unwrap().val()), vec![2.0]);
    assert_eq!(host(lin.merge(MergeRule::ProductMean).weight.val()), vec![7.0, 20.0]);
    // Shared bias b = 5 added before s (METHODS.md §1): merged bias s̄ ∘ b = 3 * 5 = 15 under
    // both rules; member m's bias s_m ∘ b: 10 and 20.
    let shared = EnsLinear { bias: Some(t(vec![5.0], [1, 1])), bias_before_s: true, ..lin };
    for rule in [MergeRule::FactorMean, MergeRule::ProductMean] {
        assert_eq!(host(shared.merge(rule).bias.unwrap().val()), vec![15.0], "{rule:?}");
    }
    assert_eq!(host(shared.member(0).unwrap().bias.unwrap().val()), vec![10.0]);
    assert_eq!(host(shared.member(1).unwrap().bias.unwrap().val()), vec![20.0]);
}

fn tiny(arch: Arch, be: Option<BatchEnsembleConfig>) -> BackboneConfig {
    BackboneConfig::new(arch).with_batch_ensemble(be)
}

#[test]
fn be_network_with_one_member_equals_the_plain_network() {
    let device = dev();
    let be = tiny(Arch::ResNet { depth: 8 }, Some(be_cfg(1, BiasMode::Shared))).init(&device).unwrap();
    let plain = be.member(0).unwrap();
    assert_eq!(plain.members, 1);
    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Uniform(0.0, 1.0), &device);
    assert_close(&host(be.forward(x.clone())), &host(plain.forward(x)), 1e-4, "M=1 BE vs plain");
}

#[test]
fn be_network_rows_are_the_members_networks() {
    let device = dev();
    for arch in [Arch::ResNet { depth: 8 }, Arch::PreActWrn { depth: 10, width: 1 }] {
        let cfg = tiny(arch.clone(), Some(be_cfg(3, BiasMode::PerMember).with_norm(NormMode::PerMember)));
        let be = cfg.init(&device).unwrap();
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Uniform(0.0, 1.0), &device);
        let logits = host(be.member_logits(x.clone())); // [3, 2, 10]
        for m in 0..3 {
            let member = host(be.member(m).unwrap().forward(x.clone()));
            assert_close(&logits[m * 20..(m + 1) * 20], &member, 1e-3, &format!("{arch:?} member {m}"));
        }
        // Per-member BatchNorm cannot be merged: a clear error, not a silent average.
        let err = be.merge(MergeRule::FactorMean).unwrap_err().to_string();
        assert!(err.contains("per-member BatchNorm"), "{err}");
    }
}

#[test]
fn shapes_and_parameter_counts() {
    let device = dev();
    // ResNet-20 with option-A shortcuts has 269,722 trainable parameters (He et al. 2016
    // report 0.27M; count: stem 432 + BN 32, stages 14,016 + 51,072 + 203,520, classifier
    // 650). Burn's count adds the BatchNorm running mean and variance: 2 x 688 channels.
    let r20 = tiny(Arch::ResNet { depth: 20 }, None).with_shortcut(Some(ShortcutKind::ZeroPad)).init(&device).unwrap();
    assert_eq!(r20.num_params(), 269_722 + 2 * 688);
    let x = Tensor::<4>::random([3, 3, 32, 32], Distribution::Uniform(0.0, 1.0), &device);
    assert_eq!(r20.forward(x.clone()).dims(), [3, 10]);
    let be = tiny(Arch::ResNet { depth: 8 }, Some(BatchEnsembleConfig::new(4))).init(&device).unwrap();
    assert_eq!(be.forward(x.clone().repeat_dim(0, 4)).dims(), [12, 10]);
    let p = be.predict_probs(x.clone());
    assert_eq!(p.dims(), [3, 10]);
    assert_close(&host(p.sum_dim(1)), &[1.0; 3], 1e-5, "probability rows");
    let wrn = tiny(Arch::PreActWrn { depth: 16, width: 2 }, None).with_num_classes(100).init(&device).unwrap();
    assert_eq!(wrn.forward(x).dims(), [3, 100]);
    assert!(tiny(Arch::ResNet { depth: 21 }, None).init(&device).is_err());
    assert!(tiny(Arch::PreActWrn { depth: 15, width: 2 }, None).init(&device).is_err());
}

#[test]
fn pull_to_one_penalty_by_hand() {
    let device = dev();
    // With r = s = 1 everywhere the penalty is exactly zero.
    let be = tiny(Arch::ResNet { depth: 8 }, Some(BatchEnsembleConfig::new(2))).init(&device).unwrap();
    assert_eq!(host(be.fast_weight_penalty().unwrap()), vec![0.0]);
    assert!(tiny(Arch::ResNet { depth: 8 }, None).init(&device).unwrap().fast_weight_penalty().is_none());
    // Shift every r and s entry of the head by +0.5 (others stay 1):
    // penalty = 0.5 * (n_r + n_s) * 0.25 / M with n_r = 2*64, n_s = 2*10, M = 2 → 9.25.
    let mut be = be;
    let r = be.head.r.take().unwrap().val() + 0.5;
    let s = be.head.s.take().unwrap().val() + 0.5;
    be.head.r = Some(burn::module::Param::from_tensor(r));
    be.head.s = Some(burn::module::Param::from_tensor(s));
    assert_close(&host(be.fast_weight_penalty().unwrap()), &[9.25], 1e-6, "penalty");
    // ResNet-8 (zero-pad shortcuts): stem + 2 convs x 3 blocks + head, an r and an s each.
    assert_eq!(be.fast_weight_ids().len(), 2 * (1 + 6 + 1));
}

#[test]
fn merged_latent_be_saves_and_loads_as_a_plain_backbone() {
    let device = dev();
    let arch = Arch::ResNet { depth: 8 };
    let be = tiny(arch.clone(), Some(be_cfg(4, BiasMode::PerMember))).init(&device).unwrap();
    let merged = be.merge(MergeRule::FactorMean).unwrap();
    let bytes = ensembles::to_safetensors_bytes(&merged).unwrap();
    for _ in 0..5 {
        assert!(bytes == ensembles::to_safetensors_bytes(&merged).unwrap(), "safetensors bytes are not deterministic");
    }
    let mut plain = tiny(arch.clone(), None).init(&device).unwrap();
    ensembles::from_safetensors_bytes(&mut plain, bytes).unwrap();
    let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Uniform(0.0, 1.0), &device);
    assert_eq!(host(plain.forward(x.clone())), host(merged.forward(x)));
    // The unmerged BatchEnsemble checkpoint is not a plain backbone: refused, naming r/s.
    let mut plain = tiny(arch, None).init(&device).unwrap();
    let err = ensembles::from_safetensors_bytes(&mut plain, ensembles::to_safetensors_bytes(&be).unwrap()).unwrap_err();
    assert!(err.to_string().contains(".r"), "{err}");
}
