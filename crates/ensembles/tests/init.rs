//! Slow-weight initialisation against closed forms (METHODS.md §1: "Slow weights as in
//! giung2-jax: truncated He-normal convolutions; classifier weight He-normal, bias zero").
//! giung2-jax (@ 4c34054) passes `jax.nn.initializers.kaiming_normal()` (= `variance_scaling(2.0,
//! "fan_in", "truncated_normal")`) to every Conv and Dense and zeros to the bias
//! (`giung2/layers/conv.py` lines 29–30 and 106–107, `linear.py` lines 24–25 and 48–49); JAX draws a standard normal truncated to ±2 and
//! scales it by `sqrt(2 / fan_in) / 0.87962566103423978`.

use burn::tensor::{Device, Tensor};
use ensembles::{Arch, BackboneConfig, WeightInit};

/// Φ(1) − Φ(−1) over Φ(2) − Φ(−2): the mass of the standard normal truncated to ±2 that lies
/// within ±1 (0.682689492 / 0.954499736).
const WITHIN_ONE: f64 = 0.682_689_492_137_085_9 / 0.954_499_736_103_641_6;
const TRUNCATED_STD: f64 = 0.879_625_661_034_239_78;

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap()
}

fn std(v: &[f64]) -> f64 {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

#[test]
fn reference_init_is_truncated_he_normal_with_a_zero_classifier_bias() {
    let device = Device::flex();
    device.seed(3);
    let net = BackboneConfig::new(Arch::ResNet { depth: 20 }).init(&device).unwrap();
    // The last stage's 3x3 convolutions: 64 x 64 x 9 = 36,864 weights each.
    let conv = &net.blocks.last().unwrap().conv2;
    let w = host(conv.weight.val());
    let fan_in = 64.0 * 9.0;
    let he = (2.0 / fan_in as f64).sqrt();
    let unit = he / TRUNCATED_STD; // the scale of the truncated standard normal
    let max = w.iter().fold(0f64, |m, x| m.max(x.abs()));
    assert!(max <= 2.0 * unit * (1.0 + 1e-6), "a weight {max} lies beyond the truncation 2 x {unit}");
    assert!(max > 1.9 * unit, "largest weight {max}: the draws do not reach the truncation point {}", 2.0 * unit);
    // Variance 2 / fan_in (sample std of 36,864 draws: relative error ~0.4 %).
    assert!((std(&w) / he - 1.0).abs() < 0.02, "std {} vs sqrt(2 / fan_in) = {he}", std(&w));
    let within = w.iter().filter(|x| x.abs() < unit).count() as f64 / w.len() as f64;
    assert!((within - WITHIN_ONE).abs() < 0.01, "mass within ±1 unit: {within} vs {WITHIN_ONE}");

    // Classifier: He-normal weight [64, 10] (fan-in 64), zero bias.
    let head = host(net.head.weight.val());
    let he_head = (2.0f64 / 64.0).sqrt();
    assert!((std(&head) / he_head - 1.0).abs() < 0.12, "head std {} vs {he_head}", std(&head));
    assert!(head.iter().all(|x| x.abs() <= 2.0 * he_head / TRUNCATED_STD * (1.0 + 1e-6)), "head weight beyond ±2 units");
    assert!(host(net.head.bias.as_ref().unwrap().val()).iter().all(|&b| b == 0.0), "classifier bias must start at zero");
}

#[test]
fn the_earlier_init_stays_available_and_differs() {
    let device = Device::flex();
    device.seed(3);
    let net = BackboneConfig::new(Arch::ResNet { depth: 20 }).with_init(WeightInit::HeNormalUniformHead).init(&device).unwrap();
    let w = host(net.blocks.last().unwrap().conv2.weight.val());
    let he = (2.0f64 / 576.0).sqrt();
    // Untruncated: about 2.3 % of N(0, he²) (~850 of 36,864 weights) lies beyond 2 he / 0.8796 = 2.27 he.
    let beyond = w.iter().filter(|x| x.abs() > 2.0 * he / TRUNCATED_STD).count();
    assert!(beyond > 100, "{beyond} weights beyond the truncation point: not the untruncated He-normal");
    // PyTorch's uniform head: bias in ±1/8, not all zero.
    let bias = host(net.head.bias.as_ref().unwrap().val());
    assert!(bias.iter().all(|b| b.abs() <= 0.125) && bias.iter().any(|&b| b != 0.0), "{bias:?}");
}
