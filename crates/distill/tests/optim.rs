//! The optimiser against hand-derived updates: Nesterov momentum without dampening and
//! coupled weight decay on ordinary weights; for BatchEnsemble fast weights no decay, the
//! pull-to-one regulariser `wd · ½Σ(1−e)²/M` and the whole gradient scaled by M.

use burn::tensor::{Device, Tensor};
use distill::train::{OptimConfig, Optimizer};
use ensembles::{Arch, BackboneConfig, BatchEnsembleConfig, FastInit};

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().unwrap()
}

const LR: f64 = 0.1;
const MU: f64 = 0.9;
const WD: f64 = 0.01;

fn config() -> OptimConfig {
    OptimConfig::new().with_lr(LR).with_momentum(MU).with_weight_decay(WD).with_nesterov(true)
}

#[test]
fn nesterov_without_dampening_and_coupled_weight_decay_by_hand() {
    let device = Device::flex().autodiff();
    device.seed(1);
    let mut model = BackboneConfig::new(Arch::ResNet { depth: 8 }).init(&device).unwrap();
    let mut opt = Optimizer::new(&config(), &model);
    let w0 = host(model.head.weight.val());
    // loss = Σ head.weight → gradient 1 everywhere; two steps.
    for _ in 0..2 {
        let loss = model.head.weight.val().sum();
        let grads = loss.backward();
        model = opt.step(LR, model, grads);
    }
    let w2 = host(model.head.weight.val());
    for (i, (&a, &b)) in w0.iter().zip(&w2).enumerate() {
        // step 1: g1 = 1 + wd w0, v1 = g1, w1 = w0 − lr (g1 + mu v1)
        let w0 = a as f64;
        let g1 = 1.0 + WD * w0;
        let v1 = g1;
        let w1 = w0 - LR * (g1 + MU * v1);
        // step 2: g2 = 1 + wd w1, v2 = mu v1 + g2, w2 = w1 − lr (g2 + mu v2)
        let g2 = 1.0 + WD * w1;
        let v2 = MU * v1 + g2;
        let want = w1 - LR * (g2 + MU * v2);
        assert!((b as f64 - want).abs() < 1e-5, "weight {i}: {b} vs {want}");
    }
}

#[test]
fn fast_weights_get_the_pull_to_one_regulariser_and_m_times_the_gradient() {
    let device = Device::flex().autodiff();
    device.seed(2);
    let m = 4;
    let be = BatchEnsembleConfig::new(m).with_fast_init(FastInit::Normal { mean: 1.0, std: 0.5 });
    let model = BackboneConfig::new(Arch::ResNet { depth: 8 }).with_batch_ensemble(Some(be)).init(&device).unwrap();
    let mut opt = Optimizer::new(&config(), &model);
    let (s0, w0) = (host(model.head.s.as_ref().unwrap().val()), host(model.head.weight.val()));
    // loss = 3 Σ head.s + Σ head.weight + the optimiser's regulariser (over every r and s).
    let loss = model.head.s.as_ref().unwrap().val().sum() * 3.0 + model.head.weight.val().sum()
        + opt.regulariser(&model).unwrap();
    let grads = loss.backward();
    let model = opt.step(LR, model, grads);
    let s1 = host(model.head.s.as_ref().unwrap().val());
    for (i, (&a, &b)) in s0.iter().zip(&s1).enumerate() {
        // d/ds [3 s + wd ½ (1 − s)² / M] = 3 + wd (s − 1) / M, scaled by M, no weight decay;
        // first Nesterov step moves by lr (1 + mu) g.
        let g = m as f64 * (3.0 + WD * (a as f64 - 1.0) / m as f64);
        let want = a as f64 - LR * (1.0 + MU) * g;
        assert!((b as f64 - want).abs() < 1e-4, "s[{i}]: {b} vs {want}");
    }
    let w1 = host(model.head.weight.val());
    for (i, (&a, &b)) in w0.iter().zip(&w1).enumerate() {
        // Ordinary weight: gradient 1 + coupled decay, not scaled by M.
        let want = a as f64 - LR * (1.0 + MU) * (1.0 + WD * a as f64);
        assert!((b as f64 - want).abs() < 1e-5, "w[{i}]: {b} vs {want}");
    }
}

#[test]
fn global_norm_clipping_matches_torch_formula() {
    // loss = Σ head.weight + 2 Σ head.bias: gradient 1 on every weight, 2 on every bias,
    // 0 elsewhere, so ‖g‖₂ = sqrt(n_w + 4 n_b) by hand; with no momentum, no decay and
    // lr = 1 the step is exactly −g · min(1, c / (‖g‖ + 1e-6)) (torch clip_grad_norm_).
    let device = Device::flex().autodiff();
    device.seed(3);
    let model = BackboneConfig::new(Arch::ResNet { depth: 8 }).init(&device).unwrap();
    let (nw, nb) = (model.head.weight.val().dims().iter().product::<usize>(), model.head.bias.as_ref().unwrap().val().dims().iter().product::<usize>());
    let norm = ((nw + 4 * nb) as f64).sqrt();
    for clip in [norm / 4.0, norm * 2.0] {
        let config = OptimConfig::new().with_momentum(0.0).with_weight_decay(0.0).with_clip_grad_norm(Some(clip));
        let mut opt = Optimizer::new(&config, &model);
        let (w0, b0) = (host(model.head.weight.val()), host(model.head.bias.as_ref().unwrap().val()));
        let loss = model.head.weight.val().sum() + model.head.bias.as_ref().unwrap().val().sum() * 2.0;
        let stepped = opt.step(1.0, model.clone(), loss.backward());
        let factor = (clip / (norm + 1e-6)).min(1.0);
        for (a, b) in w0.iter().zip(host(stepped.head.weight.val())) {
            assert!(((a - b) as f64 - factor).abs() < 1e-5, "weight step {} vs {factor}", a - b);
        }
        for (a, b) in b0.iter().zip(host(stepped.head.bias.as_ref().unwrap().val())) {
            assert!(((a - b) as f64 - 2.0 * factor).abs() < 1e-5, "bias step {} vs {}", a - b, 2.0 * factor);
        }
    }
}
