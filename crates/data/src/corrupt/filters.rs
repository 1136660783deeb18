//! Numeric primitives the corruptions share, each a re-implementation (not a binding) of the
//! library routine `make_cifar_c.py` calls, with that routine's boundary handling and, where
//! it changes pixel values, its rounding:
//!
//! - [`gaussian_kernel`] / [`gaussian_filter`]: `scipy.ndimage.gaussian_filter` (what
//!   `skimage.filters.gaussian` calls): radius `int(truncate * sigma + 0.5)`, weights
//!   `exp(-x² / 2σ²)` normalised to sum 1, axis 0 then axis 1, scipy's summation order.
//! - [`Boundary`]: scipy `nearest` / `reflect`, OpenCV `BORDER_REFLECT_101`.
//! - [`zoom_linear`] / [`clipped_zoom`]: `scipy.ndimage.zoom(order=1)` (corner-aligned grid,
//!   output side `round(n * z)` with Python's round-half-even) and the reference's crop-zoom-trim.
//! - [`motion_blur`]: ImageMagick's `MotionBlurImage` (one-sided Gaussian of
//!   `2⌈radius⌉ + 1` taps along the angle, edge virtual pixels, Q16 quantum rounding).
//! - [`rgb_to_hsv`] / [`hsv_to_rgb`]: `skimage.color.rgb2hsv` / `hsv2rgb`, including which
//!   channel wins when two share the maximum.
//! - [`plasma_fractal`]: the reference's diamond-square height map (numpy `roll` semantics).
//! - [`numpy_arange`]: `np.arange(start, stop, step)` with numpy's length and values, since the
//!   zoom-blur factor lists depend on its float rounding.

use crate::images::IMAGE_SIDE;

/// How a filter reads outside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Boundary {
    /// Repeat the edge sample: `aaa|abcd|ddd` (scipy `nearest`, ImageMagick `edge`).
    Nearest,
    /// Half-sample symmetric: `cba|abcd|dcb` (scipy `reflect`), periodic beyond one length.
    Reflect,
    /// Whole-sample symmetric: `dcb|abcd|cba` (OpenCV `BORDER_REFLECT_101`, its default).
    Reflect101,
}

impl Boundary {
    /// The in-range index that position `i` of a length-`n` signal reads.
    pub(crate) fn index(self, i: isize, n: usize) -> usize {
        let len = n as isize;
        if (0..len).contains(&i) {
            return i as usize;
        }
        match self {
            Boundary::Nearest => i.clamp(0, len - 1) as usize,
            Boundary::Reflect => {
                let period = 2 * len;
                let m = i.rem_euclid(period);
                (if m < len { m } else { period - 1 - m }) as usize
            }
            Boundary::Reflect101 => {
                if n == 1 {
                    return 0;
                }
                let period = 2 * len - 2;
                let m = i.rem_euclid(period);
                (if m < len { m } else { period - m }) as usize
            }
        }
    }
}

/// scipy's `_gaussian_kernel1d(sigma, 0, radius)` with `radius = int(truncate * sigma + 0.5)`:
/// `2 * radius + 1` weights `exp(-0.5 / σ² · x²)`, `x = -radius..=radius`, divided by their sum.
pub(crate) fn gaussian_kernel(sigma: f64, truncate: f64) -> Vec<f64> {
    // Python's int() truncates toward zero; the argument is non-negative here.
    let radius = (truncate * sigma + 0.5) as isize;
    let sigma2 = sigma * sigma;
    let phi: Vec<f64> = (-radius..=radius).map(|x| (-0.5 / sigma2 * (x * x) as f64).exp()).collect();
    let sum: f64 = phi.iter().sum();
    phi.into_iter().map(|p| p / sum).collect()
}

/// scipy `correlate1d` of a symmetric kernel along one axis of an `h x w` row-major plane.
/// Summation order as scipy's symmetric branch: centre tap first, then the pairs from the
/// outermost inwards, each pair added before it is weighted.
fn correlate_symmetric(
    src: &[f64],
    h: usize,
    w: usize,
    kernel: &[f64],
    along_rows: bool,
    mode: Boundary,
) -> Vec<f64> {
    let r = (kernel.len() / 2) as isize;
    let centre = kernel[r as usize];
    let mut out = vec![0.0; h * w];
    let mut line = Vec::new();
    let (lines, len) = if along_rows { (w, h) } else { (h, w) };
    for l in 0..lines {
        line.clear();
        line.extend((0..len).map(|i| if along_rows { src[i * w + l] } else { src[l * w + i] }));
        for i in 0..len {
            let ii = i as isize;
            let mut acc = line[i] * centre;
            for j in -r..0 {
                let a = line[mode.index(ii + j, len)];
                let b = line[mode.index(ii - j, len)];
                acc += (a + b) * kernel[(j + r) as usize];
            }
            let o = if along_rows { i * w + l } else { l * w + i };
            out[o] = acc;
        }
    }
    out
}

/// `scipy.ndimage.gaussian_filter` of one `h x w` plane with the same `sigma` on both axes
/// (axis 0, then axis 1). scipy skips an axis whose sigma is not above 1e-15.
pub(crate) fn gaussian_filter(
    src: &[f64],
    h: usize,
    w: usize,
    sigma: f64,
    truncate: f64,
    mode: Boundary,
) -> Vec<f64> {
    if sigma <= 1e-15 {
        return src.to_vec();
    }
    let k = gaussian_kernel(sigma, truncate);
    let tmp = correlate_symmetric(src, h, w, &k, true, mode);
    correlate_symmetric(&tmp, h, w, &k, false, mode)
}

/// `np.arange(start, stop, step)` for a positive step: `ceil((stop - start) / step)` values
/// `start + i * delta` with numpy's `delta = (start + step) - start`.
pub(crate) fn numpy_arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil().max(0.0) as usize;
    let delta = (start + step) - start;
    (0..len).map(|i| start + i as f64 * delta).collect()
}

/// `scipy.ndimage.zoom(order=1)` of an `n x n` plane to `m x m`: output sample `k` reads
/// input coordinate `k · (n - 1) / (m - 1)` (corner-aligned grid, `grid_mode=False`),
/// bilinear. Coordinates that round past the last sample read the last sample.
pub(crate) fn zoom_linear(src: &[f64], n: usize, m: usize) -> Vec<f64> {
    let scale = if m > 1 { (n as f64 - 1.0) / (m as f64 - 1.0) } else { 1.0 };
    // Per output index: (lower input index, weight of the upper one).
    let taps: Vec<(usize, f64)> = (0..m)
        .map(|k| {
            let c = k as f64 * scale;
            let lo = (c.floor().max(0.0) as usize).min(n - 1);
            let t = if lo + 1 < n { c - lo as f64 } else { 0.0 };
            (lo, t)
        })
        .collect();
    let at = |y: usize, x: usize| src[y * n + x];
    let mut out = vec![0.0; m * m];
    for (oy, &(y0, ty)) in taps.iter().enumerate() {
        let y1 = (y0 + 1).min(n - 1);
        for (ox, &(x0, tx)) in taps.iter().enumerate() {
            let x1 = (x0 + 1).min(n - 1);
            let top = at(y0, x0) * (1.0 - tx) + at(y0, x1) * tx;
            let bottom = at(y1, x0) * (1.0 - tx) + at(y1, x1) * tx;
            out[oy * m + ox] = top * (1.0 - ty) + bottom * ty;
        }
    }
    out
}

/// The reference's `clipped_zoom` on one 32x32 plane: crop the centred `ceil(32 / z)` square,
/// zoom it by `z` with [`zoom_linear`] to `round(ceil(32 / z) · z)` (round half to even, as
/// Python's `round`), keep the centred 32x32 (offset `(size - 32) // 2`).
pub(crate) fn clipped_zoom(plane: &[f64], z: f64) -> Vec<f64> {
    const H: usize = IMAGE_SIDE;
    let ch = (H as f64 / z).ceil() as usize;
    let top = (H - ch) / 2;
    let crop: Vec<f64> =
        (0..ch).flat_map(|y| (0..ch).map(move |x| (y, x))).map(|(y, x)| plane[(top + y) * H + top + x]).collect();
    let m = (ch as f64 * z).round_ties_even() as usize;
    let zoomed = zoom_linear(&crop, ch, m);
    let trim = (m - H) / 2;
    (0..H).flat_map(|y| (0..H).map(move |x| (y, x))).map(|(y, x)| zoomed[(trim + y) * m + trim + x]).collect()
}

/// ImageMagick's `MotionBlurImage(radius, sigma, angle)` on one `h x w` 8-bit channel, as
/// ImageMagick 6 Q16 (non-HDRI) computes it through the reference's PNG round trip:
///
/// - `width = 2⌈radius⌉ + 1` taps, weights `exp(-i² / 2σ²)` for `i = 0..width`, normalised
///   (one-sided: tap 0 is the pixel itself);
/// - tap `i` reads pixel `(x + ⌈i·cos a - ½⌉, y + ⌈i·sin a - ½⌉)` (x right, y down; the
///   cosine and sine formed as ImageMagick does, through `hypot`), edge virtual pixels;
/// - 8-bit samples scale to 16-bit quanta (`v · 257`), the weighted sum is rounded to a
///   quantum (`ClampToQuantum`) and the 8-bit PNG the reference reads back holds
///   `quantum / 257` truncated. This rounding was measured, not read: it matches ImageMagick
///   6.9.11 Q16 through Wand and PNG bit for bit (while rounding to the nearest byte
///   mismatches half the pixels).
pub(crate) fn motion_blur(src: &[u8], h: usize, w: usize, radius: f64, sigma: f64, angle_deg: f64) -> Vec<u8> {
    const MAGICK_EPSILON: f64 = 1.0e-12;
    let width = (2.0 * radius.ceil() + 1.0) as usize;
    let sigma = if sigma.abs() < MAGICK_EPSILON { MAGICK_EPSILON } else { sigma };
    let sq2pi = (2.0 * std::f64::consts::PI).sqrt();
    let mut kernel: Vec<f64> = (0..width)
        .map(|i| (-((i * i) as f64) / (2.0 * sigma * sigma)).exp() / (sq2pi * sigma))
        .collect();
    let norm: f64 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= norm);
    let rad = std::f64::consts::PI * angle_deg / 180.0;
    let px = width as f64 * rad.sin();
    let py = width as f64 * rad.cos();
    let hyp = px.hypot(py);
    let offsets: Vec<(isize, isize)> = (0..width)
        .map(|i| {
            let ox = ((i as f64 * py) / hyp - 0.5).ceil() as isize;
            let oy = ((i as f64 * px) / hyp - 0.5).ceil() as isize;
            (ox, oy)
        })
        .collect();
    let mut out = vec![0u8; h * w];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0f64;
            for (k, &(ox, oy)) in kernel.iter().zip(&offsets) {
                let sy = Boundary::Nearest.index(y as isize + oy, h);
                let sx = Boundary::Nearest.index(x as isize + ox, w);
                acc += k * (src[sy * w + sx] as f64 * 257.0);
            }
            // ClampToQuantum (Q16, non-HDRI), then the 8-bit PNG sample.
            let q: u32 = if acc <= 0.0 {
                0
            } else if acc >= 65535.0 {
                65535
            } else {
                (acc + 0.5) as u32
            };
            out[y * w + x] = (q / 257) as u8;
        }
    }
    out
}

/// `skimage.color.rgb2hsv` of one pixel (components in [0, 1]): `v = max`, `s = ptp / v`
/// (0 when `ptp = 0`), hue from the maximal channel with blue over green over red on ties,
/// `(h / 6) mod 1` (numpy's floor modulo), 0 when `ptp = 0`.
pub(crate) fn rgb_to_hsv(rgb: [f64; 3]) -> [f64; 3] {
    let [r, g, b] = rgb;
    let v = r.max(g).max(b);
    let delta = v - r.min(g).min(b);
    if delta == 0.0 {
        return [0.0, 0.0, v];
    }
    let s = delta / v;
    let h6 = if b == v {
        4.0 + (r - g) / delta
    } else if g == v {
        2.0 + (b - r) / delta
    } else {
        (g - b) / delta
    };
    [(h6 / 6.0).rem_euclid(1.0), s, v]
}

/// `skimage.color.hsv2rgb` of one pixel: sector `floor(6h) mod 6`, `f = 6h - floor(6h)`.
pub(crate) fn hsv_to_rgb(hsv: [f64; 3]) -> [f64; 3] {
    let [h, s, v] = hsv;
    let hi = (h * 6.0).floor();
    let f = h * 6.0 - hi;
    let p = v * (1.0 - s);
    let q = v * (1.0 - f * s);
    let t = v * (1.0 - (1.0 - f) * s);
    match (hi as i64).rem_euclid(6) {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// The reference's `plasma_fractal(mapsize, wibbledecay)`: a diamond-square height map on a
/// torus, normalised to [0, 1], row-major `mapsize x mapsize`. Random offsets are
/// `wibble · U(-wibble, wibble)` with `wibble = 100` divided by `wibbledecay` per level, drawn
/// square step first, then the two diamond steps, each in row-major order;
/// `uniform(low, high)` draws one U(low, high).
///
/// # Panics
/// If `mapsize` is not a power of two.
pub(crate) fn plasma_fractal(mapsize: usize, wibbledecay: f64, mut uniform: impl FnMut(f64, f64) -> f64) -> Vec<f64> {
    assert!(mapsize.is_power_of_two(), "plasma mapsize {mapsize} is not a power of two");
    let n = mapsize;
    let mut map = vec![0.0f64; n * n];
    let mut step = n;
    let mut wibble = 100.0f64;
    let wrap = |i: isize, k: usize| i.rem_euclid(k as isize) as usize;
    while step >= 2 {
        let half = step / 2;
        let k = n / step; // grid points per side at this level
        let mut jitter = |sum: f64| sum / 4.0 + wibble * uniform(-wibble, wibble);
        // Square step: centres from the four corners.
        let corner = |map: &[f64], i: usize, j: usize| map[(i * step) * n + j * step];
        let mut centres = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                let i1 = wrap(i as isize + 1, k);
                let j1 = wrap(j as isize + 1, k);
                // numpy order: (c[i,j] + c[i+1,j]) + (c[i,j+1] + c[i+1,j+1])
                let sum = (corner(&map, i, j) + corner(&map, i1, j)) + (corner(&map, i, j1) + corner(&map, i1, j1));
                centres[i * k + j] = jitter(sum);
            }
        }
        for i in 0..k {
            for j in 0..k {
                map[(i * step + half) * n + j * step + half] = centres[i * k + j];
            }
        }
        let centre = |map: &[f64], i: usize, j: usize| map[(i * step + half) * n + j * step + half];
        // Diamond step 1: top-edge midpoints (i*step, j*step + half).
        let mut top = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                let im1 = wrap(i as isize - 1, k);
                let j1 = wrap(j as isize + 1, k);
                let sum = (centre(&map, i, j) + centre(&map, im1, j)) + (corner(&map, i, j) + corner(&map, i, j1));
                top[i * k + j] = jitter(sum);
            }
        }
        for i in 0..k {
            for j in 0..k {
                map[(i * step) * n + j * step + half] = top[i * k + j];
            }
        }
        // Diamond step 2: left-edge midpoints (i*step + half, j*step).
        let mut left = vec![0.0; k * k];
        for i in 0..k {
            for j in 0..k {
                let i1 = wrap(i as isize + 1, k);
                let jm1 = wrap(j as isize - 1, k);
                let sum = (centre(&map, i, j) + centre(&map, i, jm1)) + (corner(&map, i, j) + corner(&map, i1, j));
                left[i * k + j] = jitter(sum);
            }
        }
        for i in 0..k {
            for j in 0..k {
                map[(i * step + half) * n + j * step] = left[i * k + j];
            }
        }
        step /= 2;
        wibble /= wibbledecay;
    }
    let min = map.iter().copied().fold(f64::INFINITY, f64::min);
    map.iter_mut().for_each(|v| *v -= min);
    let max = map.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    map.iter_mut().for_each(|v| *v /= max);
    map
}
