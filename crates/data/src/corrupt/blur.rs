//! Blur family: defocus, glass, motion and zoom blur, as `defocus_blur`, `glass_blur`,
//! `motion_blur` and `zoom_blur` of `make_cifar_c.py` (hendrycks/robustness), CIFAR constants.
//!
//! - Defocus: the reference's `disk(radius, alias_blur)` kernel (an aliased disk on a 17x17
//!   grid, normalised, smoothed by OpenCV's 3x3 `GaussianBlur`, all in f32 as there), applied
//!   per channel by correlation with OpenCV's default `BORDER_REFLECT_101` edges.
//! - Glass: skimage `gaussian` (scipy, truncate 4, `nearest` edges), truncation to bytes, the
//!   local pixel "shuffle", and a second `gaussian`. The reference writes the shuffle as a
//!   tuple swap of numpy row views, `x[h, w], x[h', w'] = x[h', w'], x[h, w]`, which *copies*
//!   `x[h', w']` into `x[h, w]` and leaves `x[h', w']` unchanged (the right-hand side is a pair
//!   of views, the second of which sees the first assignment). This module reproduces what the
//!   reference computes, the copy; offsets are `randint(-1, 1)`, i.e. -1 or 0.
//! - Motion: ImageMagick's motion blur (see `filters::motion_blur`) at an angle drawn from
//!   U(-45°, 45°), per channel.
//! - Zoom: the mean of the image and its `clipped_zoom`s by every factor of
//!   `np.arange(1, 1 + k, 0.01)` (numpy's float rounding makes these 7, 12, 16, 21 and 26
//!   factors), in f32 as the reference.

use rand::Rng;

use super::filters::{self, Boundary};
use super::{to_byte, unit};
use crate::images::{CHANNELS, IMAGE_SIDE, PLANE};

const S: usize = IMAGE_SIDE;

/// Defocus `(radius, alias_blur)` per severity.
pub(crate) const DEFOCUS: [(f64, f64); 5] = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1)];
/// Glass blur `(sigma, max_delta, iterations)` per severity.
pub(crate) const GLASS: [(f64, usize, usize); 5] = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)];
/// Motion blur ImageMagick `(radius, sigma)` per severity.
pub(crate) const MOTION: [(f64, f64); 5] = [(6.0, 1.0), (6.0, 1.5), (6.0, 2.0), (8.0, 2.0), (9.0, 2.5)];
/// Zoom blur `np.arange(1, stop, 0.01)` stops per severity.
pub(crate) const ZOOM_STOP: [f64; 5] = [1.06, 1.11, 1.16, 1.21, 1.26];

/// The reference's `disk(radius, alias_blur)` for `radius <= 8`: a 17x17 f32 kernel (row-major).
pub(crate) fn disk_kernel(radius: f64, alias_blur: f64) -> Vec<f32> {
    const N: usize = 17;
    const HALF: isize = 8;
    assert!(radius <= 8.0, "disk radius {radius} > 8 uses a larger grid than CIFAR needs");
    let mut disk = vec![0.0f32; N * N];
    for y in -HALF..=HALF {
        for x in -HALF..=HALF {
            if ((x * x + y * y) as f64) <= radius * radius {
                disk[((y + HALF) as usize) * N + (x + HALF) as usize] = 1.0;
            }
        }
    }
    let sum: f32 = disk.iter().sum();
    disk.iter_mut().for_each(|v| *v /= sum);
    // OpenCV getGaussianKernel(3, sigma, CV_32F): f32 taps, f64 sum, f32 normalisation.
    let mut taps = [0.0f32; 3];
    let scale = -0.5 / (alias_blur * alias_blur);
    let mut tsum = 0.0f64;
    for (i, t) in taps.iter_mut().enumerate() {
        let x = i as f64 - 1.0;
        *t = (scale * x * x).exp() as f32;
        tsum += *t as f64;
    }
    let inv = 1.0 / tsum;
    taps.iter_mut().for_each(|t| *t = (*t as f64 * inv) as f32);
    // Separable 3-tap filter, rows then columns, f32, BORDER_REFLECT_101.
    let blur = |src: &[f32], along_rows: bool| -> Vec<f32> {
        let mut out = vec![0.0f32; N * N];
        for y in 0..N {
            for x in 0..N {
                let at = |d: isize| {
                    if along_rows {
                        src[y * N + Boundary::Reflect101.index(x as isize + d, N)]
                    } else {
                        src[Boundary::Reflect101.index(y as isize + d, N) * N + x]
                    }
                };
                out[y * N + x] = at(0) * taps[1] + (at(-1) + at(1)) * taps[0];
            }
        }
        out
    };
    let rows = blur(&disk, true);
    blur(&rows, false)
}

/// Correlates each channel plane with a square kernel (anchor at its centre), f64 with the
/// kernel's f32 values, OpenCV `BORDER_REFLECT_101` edges, skipping zero taps.
fn filter2d(img: &[f64], kernel: &[f32]) -> Vec<f64> {
    let n = (kernel.len() as f64).sqrt() as usize;
    let half = (n / 2) as isize;
    let taps: Vec<(isize, isize, f64)> = (0..n * n)
        .filter(|&i| kernel[i] != 0.0)
        .map(|i| ((i / n) as isize - half, (i % n) as isize - half, kernel[i] as f64))
        .collect();
    let mut out = vec![0.0; img.len()];
    for c in 0..CHANNELS {
        let plane = &img[c * PLANE..(c + 1) * PLANE];
        for y in 0..S {
            for x in 0..S {
                let mut acc = 0.0;
                for &(dy, dx, k) in &taps {
                    let sy = Boundary::Reflect101.index(y as isize + dy, S);
                    let sx = Boundary::Reflect101.index(x as isize + dx, S);
                    acc += plane[sy * S + sx] * k;
                }
                out[c * PLANE + y * S + x] = acc;
            }
        }
    }
    out
}

pub(crate) fn defocus_blur(img: &[u8], s: usize) -> Vec<u8> {
    let (radius, alias) = DEFOCUS[s];
    let kernel = disk_kernel(radius, alias);
    let x: Vec<f64> = img.iter().map(|&v| unit(v)).collect();
    filter2d(&x, &kernel).into_iter().map(to_byte).collect()
}

/// skimage `gaussian(x, sigma, channel_axis=-1)`: each channel plane separately, scipy
/// kernel truncated at 4 sigma, `nearest` edges.
fn skimage_gaussian(x: &[f64], sigma: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for c in 0..CHANNELS {
        out.extend(filters::gaussian_filter(&x[c * PLANE..(c + 1) * PLANE], S, S, sigma, 4.0, Boundary::Nearest));
    }
    out
}

/// Glass blur with explicit shuffle offsets: `offsets` yields `(dx, dy)` in -1..=0 for each
/// visited pixel in the reference's order (iterations, rows 31..=2, columns 31..=2).
pub(crate) fn glass_blur_with(img: &[u8], s: usize, mut offsets: impl FnMut() -> (isize, isize)) -> Vec<u8> {
    let (sigma, max_delta, iterations) = GLASS[s];
    let x: Vec<f64> = img.iter().map(|&v| unit(v)).collect();
    // np.uint8(gaussian(...) * 255): truncation, no clipping (the blur stays in [0, 1]).
    let mut bytes: Vec<u8> = skimage_gaussian(&x, sigma).into_iter().map(|v| (v * 255.0) as u8).collect();
    for _ in 0..iterations {
        for h in (max_delta + 1..S - max_delta + 1).rev() {
            for w in (max_delta + 1..S - max_delta + 1).rev() {
                let (dx, dy) = offsets();
                let hp = (h as isize + dy) as usize;
                let wp = (w as isize + dx) as usize;
                for c in 0..CHANNELS {
                    bytes[c * PLANE + h * S + w] = bytes[c * PLANE + hp * S + wp];
                }
            }
        }
    }
    let x: Vec<f64> = bytes.iter().map(|&v| unit(v)).collect();
    skimage_gaussian(&x, sigma).into_iter().map(to_byte).collect()
}

pub(crate) fn glass_blur<R: Rng + ?Sized>(img: &[u8], s: usize, rng: &mut R) -> Vec<u8> {
    let max_delta = GLASS[s].1 as i64;
    // np.random.randint(-max_delta, max_delta, size=(2,)): dx then dy, high exclusive.
    glass_blur_with(img, s, || {
        let dx = rng.random_range(-max_delta..max_delta) as isize;
        let dy = rng.random_range(-max_delta..max_delta) as isize;
        (dx, dy)
    })
}

/// Motion blur at a given angle in degrees.
pub(crate) fn motion_blur_at(img: &[u8], s: usize, angle_deg: f64) -> Vec<u8> {
    let (radius, sigma) = MOTION[s];
    let mut out = Vec::with_capacity(img.len());
    for c in 0..CHANNELS {
        out.extend(filters::motion_blur(&img[c * PLANE..(c + 1) * PLANE], S, S, radius, sigma, angle_deg));
    }
    out
}

pub(crate) fn motion_blur<R: Rng + ?Sized>(img: &[u8], s: usize, rng: &mut R) -> Vec<u8> {
    let angle = rng.random_range(-45.0..45.0);
    motion_blur_at(img, s, angle)
}

/// The zoom factors of severity index `s`.
pub(crate) fn zoom_factors(s: usize) -> Vec<f64> {
    filters::numpy_arange(1.0, ZOOM_STOP[s], 0.01)
}

pub(crate) fn zoom_blur(img: &[u8], s: usize) -> Vec<u8> {
    let factors = zoom_factors(s);
    // (np.array(x) / 255.).astype(np.float32)
    let x: Vec<f32> = img.iter().map(|&v| unit(v) as f32).collect();
    let mut acc = vec![0.0f32; img.len()];
    for &z in &factors {
        for c in 0..CHANNELS {
            let plane: Vec<f64> = x[c * PLANE..(c + 1) * PLANE].iter().map(|&v| v as f64).collect();
            let zoomed = filters::clipped_zoom(&plane, z);
            for (a, v) in acc[c * PLANE..(c + 1) * PLANE].iter_mut().zip(zoomed) {
                *a += v as f32;
            }
        }
    }
    let count = (factors.len() + 1) as f32;
    x.iter()
        .zip(&acc)
        .map(|(&xi, &ai)| {
            let v = ((xi + ai) / count).clamp(0.0, 1.0) * 255.0;
            v as u8
        })
        .collect()
}
