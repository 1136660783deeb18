//! Noise family: Gaussian, shot (Poisson) and impulse (salt-and-pepper) noise, per pixel and
//! per channel independently, as `gaussian_noise`, `shot_noise` and `impulse_noise` of
//! `make_cifar_c.py` (hendrycks/robustness). All three are exact up to the random stream.

use rand::Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};

use super::{to_byte, unit};

/// Gaussian noise standard deviations (pixel units in [0, 1]) per severity.
pub(crate) const GAUSSIAN_SIGMA: [f64; 5] = [0.04, 0.06, 0.08, 0.09, 0.10];
/// Shot-noise photon counts per unit intensity per severity.
pub(crate) const SHOT_RATE: [f64; 5] = [500.0, 250.0, 100.0, 75.0, 50.0];
/// Impulse-noise fractions of flipped samples per severity.
pub(crate) const IMPULSE_AMOUNT: [f64; 5] = [0.01, 0.02, 0.03, 0.05, 0.07];

/// `clip(x + N(0, σ²), 0, 1)`, one draw per sample.
pub(crate) fn gaussian_noise<R: Rng + ?Sized>(img: &[u8], s: usize, rng: &mut R) -> Vec<u8> {
    let sigma = GAUSSIAN_SIGMA[s];
    img.iter()
        .map(|&v| {
            let n: f64 = StandardNormal.sample(rng);
            to_byte(unit(v) + n * sigma)
        })
        .collect()
}

/// `clip(Poisson(x · c) / c, 0, 1)`; a zero rate gives 0 (numpy's `poisson(0)`).
pub(crate) fn shot_noise<R: Rng + ?Sized>(img: &[u8], s: usize, rng: &mut R) -> Vec<u8> {
    let c = SHOT_RATE[s];
    // One distribution per byte value; rand_distr rejects a zero rate.
    let dists: Vec<Option<Poisson<f64>>> = (0..=255u8).map(|v| Poisson::new(unit(v) * c).ok()).collect();
    img.iter()
        .map(|&v| {
            let k = dists[v as usize].as_ref().map_or(0.0, |d| d.sample(rng));
            to_byte(k / c)
        })
        .collect()
}

/// skimage `random_noise(mode='s&p', amount=c)` with `salt_vs_pepper = 0.5`: each sample is
/// replaced with probability `c`, by 1 or 0 with equal probability.
pub(crate) fn impulse_noise<R: Rng + ?Sized>(img: &[u8], s: usize, rng: &mut R) -> Vec<u8> {
    let amount = IMPULSE_AMOUNT[s];
    img.iter()
        .map(|&v| {
            let flipped = rng.random_bool(amount);
            let salt = rng.random_bool(0.5);
            let x = match (flipped, salt) {
                (false, _) => unit(v),
                (true, true) => 1.0,
                (true, false) => 0.0,
            };
            to_byte(x)
        })
        .collect()
}
