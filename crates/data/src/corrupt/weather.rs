//! Weather family: snow, frost and fog, as `snow`, `frost` and `fog` of `make_cifar_c.py`
//! (hendrycks/robustness), CIFAR constants.
//!
//! - Snow: a N(loc, scale) layer, `clipped_zoom`ed, thresholded, truncated to bytes, motion
//!   blurred with ImageMagick's algorithm (see `filters::motion_blur`) at an angle from
//!   U(-135°, -45°), added twice (as is and rotated 180°) to the image brightened towards
//!   `1.5 · grey + 0.5`; the image-side arithmetic in f32 and OpenCV's `RGB2GRAY` weights
//!   as the reference.
//! - Frost: **approximated**. The reference blends a random 32x32 crop of one of five frost
//!   photographs (`frost1.png` … `frost5.jpg`, shrunk by 0.2) as `c0 · x + c1 · frost`; the
//!   photographs are not available here, so the crop is replaced by a procedural texture
//!   ([`frost_texture`]): a plasma-fractal haze plus randomly walked, 60°-branching bright
//!   crystal streaks, slightly blurred and tinted blue-white. The blend and its constants are
//!   the reference's; the texture only resembles the photographs (its channel means are about
//!   0.46, 0.50 and 0.54 of full scale for R, G, B; the photographs' statistics could not be
//!   measured, so the texture is not calibrated to them).
//! - Fog: the reference's plasma fractal (diamond-square, `mapsize = 32`) added with weight
//!   `c0`, rescaled by `max / (max + c0)`; exact up to the random stream.

use rand::Rng;
use rand_distr::{Distribution, Normal, StandardNormal};

use super::filters::{self, Boundary};
use super::{to_byte, unit};
use crate::images::{CHANNELS, IMAGE_SIDE, PLANE};

const S: usize = IMAGE_SIDE;

/// Snow `(loc, scale, zoom, threshold, blur radius, blur sigma, blend)` per severity.
pub(crate) const SNOW: [(f64, f64, f64, f64, f64, f64, f64); 5] = [
    (0.1, 0.2, 1.0, 0.6, 8.0, 3.0, 0.95),
    (0.1, 0.2, 1.0, 0.5, 10.0, 4.0, 0.9),
    (0.15, 0.3, 1.75, 0.55, 10.0, 4.0, 0.9),
    (0.25, 0.3, 2.25, 0.6, 12.0, 6.0, 0.85),
    (0.3, 0.3, 1.25, 0.65, 14.0, 12.0, 0.8),
];
/// Frost `(image weight, frost weight)` per severity.
pub(crate) const FROST: [(f64, f64); 5] = [(1.0, 0.2), (1.0, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)];
/// Fog `(strength, wibble decay)` per severity.
pub(crate) const FOG: [(f64, f64); 5] = [(0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75)];

pub(crate) fn snow<R: Rng + ?Sized>(img: &[u8], s: usize, rng: &mut R) -> Vec<u8> {
    let (loc, scale, ..) = SNOW[s];
    let normal = Normal::new(loc, scale).expect("constant snow scale is positive");
    let layer: Vec<f64> = (0..PLANE).map(|_| normal.sample(rng)).collect();
    let angle = rng.random_range(-135.0..-45.0);
    snow_with(img, s, &layer, angle)
}

/// Snow from an explicit N(loc, scale) layer (32x32 row-major) and blur angle.
pub(crate) fn snow_with(img: &[u8], s: usize, layer: &[f64], angle: f64) -> Vec<u8> {
    let (_, _, zoom, threshold, radius, sigma, blend) = SNOW[s];
    let zoomed = filters::clipped_zoom(layer, zoom);
    let layer_bytes: Vec<u8> = zoomed
        .iter()
        .map(|&v| {
            let v = if v < threshold { 0.0 } else { v };
            (v.clamp(0.0, 1.0) * 255.0) as u8
        })
        .collect();
    let blurred = filters::motion_blur(&layer_bytes, S, S, radius, sigma, angle);
    let flake = |y: usize, x: usize| blurred[y * S + x] as f64 / 255.0;
    // Image side in f32: np.array(x, dtype=np.float32) / 255.
    let x: Vec<f32> = img.iter().map(|&v| v as f32 / 255.0).collect();
    let blend32 = blend as f32;
    let rest32 = (1.0 - blend) as f32;
    let mut out = vec![0u8; img.len()];
    for p in 0..PLANE {
        let (r, g, b) = (x[p], x[PLANE + p], x[2 * PLANE + p]);
        let grey = r * 0.299f32 + g * 0.587f32 + b * 0.114f32;
        let lift = grey * 1.5f32 + 0.5f32;
        let (y, xx) = (p / S, p % S);
        let snow = flake(y, xx) + flake(S - 1 - y, S - 1 - xx);
        for c in 0..CHANNELS {
            let xc = x[c * PLANE + p];
            let brightened = blend32 * xc + rest32 * xc.max(lift);
            out[c * PLANE + p] = to_byte(brightened as f64 + snow);
        }
    }
    out
}

/// A procedural stand-in for a 32x32 crop of the reference's frost photographs: RGB bytes,
/// CHW. Deterministic given `rng`.
pub(crate) fn frost_texture<R: Rng + ?Sized>(rng: &mut R) -> Vec<u8> {
    // Haze: a smooth fractal between 0.3 and 0.55.
    let haze = filters::plasma_fractal(S, 2.0, |lo, hi| rng.random_range(lo..hi));
    // Crystals: random walks deposited bilinearly, with 60° side branches.
    let mut ice = vec![0.0f64; PLANE];
    let deposit = |ice: &mut [f64], x: f64, y: f64, a: f64| {
        let (x0, y0) = (x.floor(), y.floor());
        let (tx, ty) = (x - x0, y - y0);
        for (dy, wy) in [(0isize, 1.0 - ty), (1, ty)] {
            for (dx, wx) in [(0isize, 1.0 - tx), (1, tx)] {
                let (xi, yi) = (x0 as isize + dx, y0 as isize + dy);
                if (0..S as isize).contains(&xi) && (0..S as isize).contains(&yi) {
                    ice[yi as usize * S + xi as usize] += a * wx * wy;
                }
            }
        }
    };
    let seeds = rng.random_range(14..=22);
    // (x, y, direction, length, intensity, depth)
    let mut stack: Vec<(f64, f64, f64, f64, f64, u8)> = (0..seeds)
        .map(|_| {
            (
                rng.random_range(0.0..S as f64),
                rng.random_range(0.0..S as f64),
                rng.random_range(0.0..std::f64::consts::TAU),
                rng.random_range(6.0..18.0),
                rng.random_range(0.25..0.5),
                0u8,
            )
        })
        .collect();
    const STEP: f64 = 0.5;
    while let Some((mut x, mut y, mut dir, len, a, depth)) = stack.pop() {
        let steps = (len / STEP) as usize;
        for _ in 0..steps {
            deposit(&mut ice, x, y, a * STEP);
            let turn: f64 = StandardNormal.sample(rng);
            dir += 0.1 * turn;
            x += STEP * dir.cos();
            y += STEP * dir.sin();
            if depth < 2 && rng.random_bool(0.25 * STEP) {
                let side = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
                stack.push((x, y, dir + side * std::f64::consts::FRAC_PI_3, len / 3.0, a * 0.8, depth + 1));
            }
        }
    }
    let ice = filters::gaussian_filter(&ice, S, S, 0.5, 4.0, Boundary::Nearest);
    // Blue-white tint (the photographs are pale blue).
    const TINT: [f64; 3] = [0.86, 0.94, 1.0];
    let mut out = vec![0u8; PLANE * CHANNELS];
    for p in 0..PLANE {
        let t = (0.3 + 0.25 * haze[p] + ice[p]).clamp(0.0, 1.0);
        for c in 0..CHANNELS {
            out[c * PLANE + p] = (t * TINT[c] * 255.0) as u8;
        }
    }
    out
}

pub(crate) fn frost<R: Rng + ?Sized>(img: &[u8], s: usize, rng: &mut R) -> Vec<u8> {
    let (wx, wf) = FROST[s];
    let texture = frost_texture(rng);
    img.iter()
        .zip(&texture)
        .map(|(&v, &f)| (wx * v as f64 + wf * f as f64).clamp(0.0, 255.0) as u8)
        .collect()
}

/// Fog from an explicit 32x32 plasma map in [0, 1].
pub(crate) fn fog_with(img: &[u8], s: usize, plasma: &[f64]) -> Vec<u8> {
    let (strength, _) = FOG[s];
    let max_val = img.iter().map(|&v| unit(v)).fold(f64::NEG_INFINITY, f64::max);
    img.iter()
        .enumerate()
        .map(|(i, &v)| {
            let x = unit(v) + strength * plasma[i % PLANE];
            to_byte(x * max_val / (max_val + strength))
        })
        .collect()
}

pub(crate) fn fog<R: Rng + ?Sized>(img: &[u8], s: usize, rng: &mut R) -> Vec<u8> {
    let plasma = filters::plasma_fractal(S, FOG[s].1, |lo, hi| rng.random_range(lo..hi));
    fog_with(img, s, &plasma)
}
