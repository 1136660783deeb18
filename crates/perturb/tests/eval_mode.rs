//! Evaluation mode on the autodiff device (METHODS.md §3: networks in eval mode, gradient
//! with respect to the input only). The crate uses `Module::valid()` copies fed an autodiff
//! input leaf; these tests pin down what that does in Burn 0.22.1:
//! BatchNorm normalises with the RUNNING statistics (checked against the closed form
//! `γ (x - μ_run)/√(σ²_run + ε) + β`), never updates them, a training-mode forward would give
//! a different output, and no parameter receives a gradient while the input does.

mod common;

use burn::module::Module;
use burn::nn::BatchNormConfig;
use burn::tensor::{Device, Tensor};
use common::*;
use perturb::{Ensemble, PerturbationKind, perturb_batch};
use rand::SeedableRng;
use rand::rngs::StdRng;

#[test]
fn batch_norm_copy_from_valid_uses_running_statistics_on_autodiff_input() {
    // No `device.seed`: BatchNorm initialises to constants, and reseeding flex's global
    // generator would disturb networks other tests of this binary draw in parallel.
    let device = ad();
    let bn = BatchNormConfig::new(C).init(&device);
    // Training-mode forwards on the autodiff device move the running statistics.
    for s in 0..3 {
        let _ = bn.forward(tensor4(&pixels(60 + s, 0.0, 3.0), [B, C, H, W], &device));
    }
    // `RunningState::value()` may be one update stale (per-thread pending values); `valid()`
    // and `value_sync()` synchronise.
    let (rm, rv) = (host(bn.running_mean.value_sync()), host(bn.running_var.value_sync()));
    assert!(rm.iter().all(|&m| m > 0.1), "running mean did not move: {rm:?}");
    let x = pixels(70, 0.0, 1.0);
    let leaf = tensor4(&x, [B, C, H, W], &device).require_grad();
    let eval = bn.valid();
    let y = eval.forward(leaf.clone());
    assert!(y.is_autodiff(), "the eval copy on an autodiff input must still compute on the autodiff device");
    let out = host(y.clone());
    let (gamma, beta) = (host(bn.gamma.val()), host(bn.beta.val()));
    for (p, (&xv, &yv)) in x.iter().zip(&out).enumerate() {
        let c = (p / (H * W)) % C;
        let want = gamma[c] as f64 * (xv as f64 - rm[c] as f64) / (rv[c] as f64 + 1e-5).sqrt() + beta[c] as f64;
        assert!((yv as f64 - want).abs() < 1e-5, "pixel {p}: {yv} vs running-stat closed form {want}");
    }
    // Gradient reaches the input (∂/∂x Σ y = γ_c / √(σ²_run + ε)) and no parameter.
    let grads = y.sum().backward();
    let gx = host(leaf.grad(&grads).expect("input gradient"));
    for (p, &g) in gx.iter().enumerate() {
        let c = (p / (H * W)) % C;
        let want = gamma[c] as f64 / (rv[c] as f64 + 1e-5).sqrt();
        assert!((g as f64 - want).abs() < 1e-5, "d/dx[{p}] = {g} vs {want}");
    }
    assert!(bn.gamma.val().grad(&grads).is_none(), "original gamma got a gradient");
    assert!(eval.gamma.val().grad(&grads).is_none(), "eval-copy gamma got a gradient");
    assert_eq!(host(bn.running_mean.value_sync()), rm, "eval forward updated the running mean");
    // The training path (original module, autodiff input) gives something else and updates
    // the statistics: the checks above could fail.
    let train = host(bn.forward(tensor4(&x, [B, C, H, W], &device)));
    let diff = train.iter().zip(&out).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(diff > 1e-2, "training-mode BatchNorm gave the eval output (max diff {diff})");
    assert_ne!(host(bn.running_mean.value_sync()), rm, "training forward did not update running stats");
}

#[test]
fn backbone_eval_copy_gives_input_gradient_only() {
    let de = deep_ensemble(1, 80);
    let net = &de[0];
    let x = pixels(81, 0.0, 1.0);
    let leaf = tensor4(&x, [B, C, H, W], &ad()).require_grad();
    let grads = net.valid().forward(leaf.clone()).sum().backward();
    assert!(leaf.grad(&grads).is_some(), "no input gradient");
    assert!(net.head.weight.val().grad(&grads).is_none(), "head weight got a gradient through the eval copy");
    assert!(net.stem.weight.val().grad(&grads).is_none(), "stem weight got a gradient through the eval copy");
    // Contrast: the training-mode module does record parameter gradients.
    let leaf2 = tensor4(&x, [B, C, H, W], &ad()).require_grad();
    let grads = net.forward(leaf2).sum().backward();
    assert!(net.head.weight.val().grad(&grads).is_some(), "contrast failed: training module has no parameter grad");
}

#[test]
fn ensemble_logits_are_eval_mode_and_differ_from_training_mode() {
    let de = deep_ensemble(2, 82);
    let be = batch_ensemble(2, 83);
    let x = pixels(84, 0.0, 1.0);
    let plain = Device::flex();
    // Order matters: a training forward leaves a pending running-stat update that the next
    // `valid()` synchronises, so the eval outputs are taken before the training one.
    let de_eval = |x: &[f32]| host(Ensemble::Members(&de).eval_member_logits(1, tensor4(x, [B, C, H, W], &ad()).require_grad()).unwrap());
    let be_eval = |x: &[f32]| host(Ensemble::BatchEnsemble(&be).eval_member_logits(1, tensor4(x, [B, C, H, W], &ad()).require_grad()).unwrap());
    let (z_de, ref_de) = (de_eval(&x), host(de[1].valid().forward(tensor4(&x, [B, C, H, W], &plain))));
    let train_de = host(de[1].forward(tensor4(&x, [B, C, H, W], &ad())));
    let (z_be, ref_be) = (be_eval(&x), host(be.valid().member_logits(tensor4(&x, [B, C, H, W], &plain)))[B * K..].to_vec());
    let train_be = host(be.member_logits(tensor4(&x, [B, C, H, W], &ad())))[B * K..].to_vec();
    for (name, z, reference, training) in [("DE", z_de, ref_de, train_de), ("BE", z_be, ref_be, train_be)] {
        let eval_diff = z.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let train_diff = z.iter().zip(&training).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(eval_diff < 1e-5, "{name}: eval logits differ from valid() on the plain device by {eval_diff}");
        assert!(train_diff > 1e-3, "{name}: training-mode logits equal eval ones (diff {train_diff})");
    }
}

/// Running statistics of every network are untouched by every perturbation (a training-mode
/// forward would move them; see the contrast at the end).
#[test]
fn perturbations_leave_running_statistics_untouched() {
    let de = deep_ensemble(3, 85);
    let be = batch_ensemble(3, 86);
    let stats = |n: &ensembles::Backbone| host(n.stem_norm.as_ref().unwrap().norms[0].running_mean.value_sync());
    // Synchronise the warm-up's pending updates first (valid() does), then snapshot.
    let before: Vec<Vec<f32>> = de.iter().chain([&be]).map(|n| stats(&n.valid())).collect();
    let x = tensor4(&pixels(87, 0.0, 1.0), [B, C, H, W], &ad());
    for kind in [PerturbationKind::ods(), PerturbationKind::conf_ods(), PerturbationKind::tdiv_sdiv()] {
        let mut rng = StdRng::seed_from_u64(1);
        perturb_batch(&kind, x.clone(), Ensemble::Members(&de), Some(Ensemble::BatchEnsemble(&be)), &mut rng).unwrap();
    }
    let after: Vec<Vec<f32>> = de.iter().chain([&be]).map(stats).collect();
    assert_eq!(before, after, "a perturbation updated BatchNorm running statistics");
    let _ = be.member_logits(x);
    assert_ne!(stats(&be), before[3], "contrast failed: a training forward did not move the statistics");
}

#[test]
fn perturbed_batch_keeps_the_input_device_and_carries_no_graph() {
    let de = deep_ensemble(2, 88);
    let x = tensor4(&pixels(89, 0.0, 1.0), [B, C, H, W], &ad());
    let mut rng = StdRng::seed_from_u64(0);
    let p = perturb_batch(&PerturbationKind::ods(), x, Ensemble::Members(&de), None, &mut rng).unwrap();
    assert!(p.x.is_autodiff(), "autodiff input, non-autodiff output");
    assert!(!p.x.is_tracked(), "perturbed batch carries a graph");
    let xp: Tensor<4> = tensor4(&pixels(89, 0.0, 1.0), [B, C, H, W], &Device::flex());
    let p = perturb_batch(&PerturbationKind::ods(), xp, Ensemble::Members(&de), None, &mut rng).unwrap();
    assert!(!p.x.is_autodiff(), "plain input, autodiff output");
}
