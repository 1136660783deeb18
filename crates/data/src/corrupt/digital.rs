//! Digital family: brightness, contrast, elastic transform, pixelate and JPEG compression, as
//! `brightness`, `contrast`, `elastic_transform`, `pixelate` and `jpeg_compression` of
//! `make_cifar_c.py` (hendrycks/robustness), CIFAR constants.
//!
//! - Brightness: `V += c` in skimage's HSV, clipped, back to RGB. Exact.
//! - Contrast: `(x - m) · c + m` with `m` the per-channel mean (`np.mean(x, axis=(0, 1))` of
//!   an HWC image). Exact.
//! - Elastic: a random affine warp of the triangle (26, 26), (26, 6), (6, 6) by U(-a, a)
//!   offsets (`cv2.getAffineTransform` + `cv2.warpAffine`, bilinear, `BORDER_REFLECT_101`),
//!   then a displacement field `alpha · gaussian(U(-1, 1), sigma, mode='reflect',
//!   truncate=3)` per axis sampled by `scipy.ndimage.map_coordinates(order=1,
//!   mode='reflect')`, in f32 as the reference. The warp reproduces the fixed-point
//!   `warpAffine` of OpenCV up to 4.10 (coordinates quantised to 1/32 pixel with OpenCV's
//!   rounding, f32 bilinear table weights), which the 2019 reference ran on; it matches
//!   OpenCV 4.5.5 bit for bit on the test image. OpenCV 4.11 and later interpolate at
//!   unquantised coordinates and differ by up to a few levels. The affine is solved by
//!   Cramer's rule where OpenCV uses LU: float rounding only.
//! - Pixelate: PIL `resize((n, n), BOX)` then `resize((32, 32), BOX)` with `n = int(32 c)`,
//!   re-implemented from Pillow's `Resample.c` (box-filter coefficients, 22-bit fixed point,
//!   horizontal pass then vertical pass, each rounded to bytes). Exact.
//! - JPEG: a real baseline JPEG round trip at the reference qualities, IJG-scaled standard
//!   tables, 4:2:0 chroma subsampling by 2x2 averaging (as PIL/libjpeg's defaults), encoded
//!   with the `jpeg-encoder` crate and decoded with `jpeg-decoder` (libjpeg-style "fancy"
//!   chroma upsampling). Not libjpeg itself: pixels can differ from PIL's by a few levels.

use rand::Rng;

use super::filters::{self, Boundary, hsv_to_rgb, rgb_to_hsv};
use super::{to_byte, unit};
use crate::error::{DataError, Result};
use crate::images::{CHANNELS, IMAGE_SIDE, PLANE};

const S: usize = IMAGE_SIDE;

/// Brightness: HSV value offsets per severity.
pub(crate) const BRIGHTNESS: [f64; 5] = [0.05, 0.1, 0.15, 0.2, 0.3];
/// Contrast factors per severity.
pub(crate) const CONTRAST: [f64; 5] = [0.75, 0.5, 0.4, 0.3, 0.15];
/// Elastic `(alpha, sigma, affine offset bound)` per severity (multiples of the side 32).
pub(crate) const ELASTIC: [(f64, f64, f64); 5] = [
    (32.0 * 0.0, 32.0 * 0.0, 32.0 * 0.08),
    (32.0 * 0.05, 32.0 * 0.2, 32.0 * 0.07),
    (32.0 * 0.08, 32.0 * 0.06, 32.0 * 0.06),
    (32.0 * 0.1, 32.0 * 0.04, 32.0 * 0.05),
    (32.0 * 0.1, 32.0 * 0.03, 32.0 * 0.03),
];
/// Pixelate scale factors per severity.
pub(crate) const PIXELATE: [f64; 5] = [0.95, 0.9, 0.85, 0.75, 0.65];
/// JPEG qualities per severity.
pub(crate) const JPEG_QUALITY: [u8; 5] = [80, 65, 58, 50, 40];

pub(crate) fn brightness(img: &[u8], s: usize) -> Vec<u8> {
    let c = BRIGHTNESS[s];
    let mut out = vec![0u8; img.len()];
    for p in 0..PLANE {
        let mut hsv = rgb_to_hsv([unit(img[p]), unit(img[PLANE + p]), unit(img[2 * PLANE + p])]);
        hsv[2] = (hsv[2] + c).clamp(0.0, 1.0);
        let rgb = hsv_to_rgb(hsv);
        for ch in 0..CHANNELS {
            out[ch * PLANE + p] = to_byte(rgb[ch]);
        }
    }
    out
}

pub(crate) fn contrast(img: &[u8], s: usize) -> Vec<u8> {
    let c = CONTRAST[s];
    let mut out = Vec::with_capacity(img.len());
    for plane in img.chunks_exact(PLANE) {
        let mean = plane.iter().map(|&v| unit(v)).sum::<f64>() / PLANE as f64;
        out.extend(plane.iter().map(|&v| to_byte((unit(v) - mean) * c + mean)));
    }
    out
}

/// Solves `M · (x, y, 1)ᵀ = dst` for the 2x3 affine `M` through three point pairs (as
/// `cv2.getAffineTransform`), by Cramer's rule in f64.
fn affine_from_points(src: [[f32; 2]; 3], dst: [[f32; 2]; 3]) -> [f64; 6] {
    let [[x0, y0], [x1, y1], [x2, y2]] = src.map(|p| p.map(f64::from));
    let det = x0 * (y1 - y2) - y0 * (x1 - x2) + (x1 * y2 - x2 * y1);
    let solve = |u: [f64; 3]| {
        let a = (u[0] * (y1 - y2) - y0 * (u[1] - u[2]) + (u[1] * y2 - u[2] * y1)) / det;
        let b = (x0 * (u[1] - u[2]) - u[0] * (x1 - x2) + (x1 * u[2] - x2 * u[1])) / det;
        let c = (x0 * (y1 * u[2] - y2 * u[1]) - y0 * (x1 * u[2] - x2 * u[1]) + u[0] * (x1 * y2 - x2 * y1)) / det;
        [a, b, c]
    };
    let [a, b, c] = solve(dst.map(|p| p[0] as f64));
    let [d, e, f] = solve(dst.map(|p| p[1] as f64));
    [a, b, c, d, e, f]
}

/// `cv2.invertAffineTransform`.
fn invert_affine(m: [f64; 6]) -> [f64; 6] {
    let d = m[0] * m[4] - m[1] * m[3];
    let d = if d != 0.0 { 1.0 / d } else { 0.0 };
    let (a11, a22, a12, a21) = (m[4] * d, m[0] * d, -m[1] * d, -m[3] * d);
    let b1 = -a11 * m[2] - a12 * m[5];
    let b2 = -a21 * m[2] - a22 * m[5];
    [a11, a12, b1, a21, a22, b2]
}

/// OpenCV's `saturate_cast<int>(double)`: round half to even.
fn cv_round(v: f64) -> i64 {
    v.round_ties_even() as i64
}

/// `cv2.warpAffine(img, m, (32, 32), flags=INTER_LINEAR, borderMode=BORDER_REFLECT_101)` of
/// an f32 CHW image, as OpenCV 3/4's fixed-point coordinate path computes it.
fn warp_affine(img: &[f32], m: [f64; 6]) -> Vec<f32> {
    const AB_BITS: u32 = 10;
    const AB_SCALE: f64 = (1 << AB_BITS) as f64;
    const INTER_BITS: u32 = 5;
    const TAB: i64 = 1 << INTER_BITS;
    const ROUND_DELTA: i64 = (1 << AB_BITS) / TAB / 2;
    let im = invert_affine(m);
    let mut out = vec![0.0f32; img.len()];
    for y in 0..S {
        let x0 = cv_round((im[1] * y as f64 + im[2]) * AB_SCALE) + ROUND_DELTA;
        let y0 = cv_round((im[4] * y as f64 + im[5]) * AB_SCALE) + ROUND_DELTA;
        for x in 0..S {
            let xx = (x0 + cv_round(im[0] * x as f64 * AB_SCALE)) >> (AB_BITS - INTER_BITS);
            let yy = (y0 + cv_round(im[3] * x as f64 * AB_SCALE)) >> (AB_BITS - INTER_BITS);
            let (sx, sy) = (xx >> INTER_BITS, yy >> INTER_BITS);
            let fx = (xx & (TAB - 1)) as f32 / TAB as f32;
            let fy = (yy & (TAB - 1)) as f32 / TAB as f32;
            let w = [(1.0 - fy) * (1.0 - fx), (1.0 - fy) * fx, fy * (1.0 - fx), fy * fx];
            let cx = [Boundary::Reflect101.index(sx as isize, S), Boundary::Reflect101.index(sx as isize + 1, S)];
            let cy = [Boundary::Reflect101.index(sy as isize, S), Boundary::Reflect101.index(sy as isize + 1, S)];
            for c in 0..CHANNELS {
                let p = &img[c * PLANE..(c + 1) * PLANE];
                out[c * PLANE + y * S + x] = p[cy[0] * S + cx[0]] * w[0]
                    + p[cy[0] * S + cx[1]] * w[1]
                    + p[cy[1] * S + cx[0]] * w[2]
                    + p[cy[1] * S + cx[1]] * w[3];
            }
        }
    }
    out
}

/// `scipy.ndimage.map_coordinates(img, (row, col, channel), order=1, mode='reflect')` with
/// per-pixel displacements: output `(c, y, x)` samples channel `c` at `(y + dy, x + dx)`.
fn displace(img: &[f32], dx: &[f32], dy: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; img.len()];
    for p in 0..PLANE {
        let (y, x) = (p / S, p % S);
        let (cy, cx) = (y as f64 + dy[p] as f64, x as f64 + dx[p] as f64);
        let (fy, fx) = (cy.floor(), cx.floor());
        let (ty, tx) = (cy - fy, cx - fx);
        let (iy, ix) = (fy as isize, fx as isize);
        let ys = [Boundary::Reflect.index(iy, S), Boundary::Reflect.index(iy + 1, S)];
        let xs = [Boundary::Reflect.index(ix, S), Boundary::Reflect.index(ix + 1, S)];
        let wy = [1.0 - ty, ty];
        let wx = [1.0 - tx, tx];
        for c in 0..CHANNELS {
            let plane = &img[c * PLANE..(c + 1) * PLANE];
            let mut acc = 0.0f64;
            for a in 0..2 {
                for b in 0..2 {
                    acc += wy[a] * wx[b] * plane[ys[a] * S + xs[b]] as f64;
                }
            }
            out[c * PLANE + p] = acc as f32;
        }
    }
    out
}

/// Elastic transform from explicit draws: the six affine offsets (row-major over the three
/// points' (x, y)) and the two 32x32 U(-1, 1) fields for the column and row displacements.
pub(crate) fn elastic_with(img: &[u8], s: usize, affine: [f64; 6], ux: &[f64], uy: &[f64]) -> Vec<u8> {
    let (alpha, sigma, _) = ELASTIC[s];
    let x: Vec<f32> = img.iter().map(|&v| v as f32 / 255.0).collect();
    // center_square = 32 // 2 = 16, square_size = 32 // 3 = 10.
    let pts1: [[f32; 2]; 3] = [[26.0, 26.0], [26.0, 6.0], [6.0, 6.0]];
    let mut pts2 = pts1;
    for (i, p) in pts2.iter_mut().enumerate() {
        p[0] += affine[2 * i] as f32;
        p[1] += affine[2 * i + 1] as f32;
    }
    let warped = warp_affine(&x, affine_from_points(pts1, pts2));
    let field = |u: &[f64]| -> Vec<f32> {
        filters::gaussian_filter(u, S, S, sigma, 3.0, Boundary::Reflect).into_iter().map(|v| (v * alpha) as f32).collect()
    };
    let (dx, dy) = (field(ux), field(uy));
    displace(&warped, &dx, &dy)
        .into_iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0f32) as u8)
        .collect()
}

pub(crate) fn elastic<R: Rng + ?Sized>(img: &[u8], s: usize, rng: &mut R) -> Vec<u8> {
    let bound = ELASTIC[s].2;
    let affine: [f64; 6] = std::array::from_fn(|_| rng.random_range(-bound..bound));
    let ux: Vec<f64> = (0..PLANE).map(|_| rng.random_range(-1.0..1.0)).collect();
    let uy: Vec<f64> = (0..PLANE).map(|_| rng.random_range(-1.0..1.0)).collect();
    elastic_with(img, s, affine, &ux, &uy)
}

/// Pillow's `precompute_coeffs` for the box filter followed by `normalize_coeffs_8bpc`:
/// per output sample, the first input index and the 22-bit fixed-point weights.
fn box_coeffs(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i64>)> {
    const PRECISION_BITS: u32 = 32 - 8 - 2;
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 0.5 * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C's (int) cast truncates toward zero; both arguments are non-negative here.
            let xmin = ((center - support + 0.5) as usize).min(in_size);
            let xmax = ((center + support + 0.5) as usize).min(in_size) - xmin;
            let w: Vec<f64> = (0..xmax)
                .map(|x| {
                    let t = ((x + xmin) as f64 - center + 0.5) * ss;
                    if t > -0.5 && t <= 0.5 { 1.0 } else { 0.0 }
                })
                .collect();
            let total: f64 = w.iter().sum();
            let fixed = w
                .iter()
                .map(|&k| {
                    let k = if total != 0.0 { k / total } else { k };
                    (0.5 + k * (1u64 << PRECISION_BITS) as f64) as i64
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

/// One Pillow 8-bit resampling pass over a `rows x cols` plane along its rows (`horizontal`)
/// or columns, to `out` samples: `clip8((2^21 + Σ v·k) >> 22)`.
fn resample_pass(src: &[u8], rows: usize, cols: usize, out: usize, horizontal: bool) -> Vec<u8> {
    let len = if horizontal { cols } else { rows };
    let coeffs = box_coeffs(len, out);
    let (orow, ocol) = if horizontal { (rows, out) } else { (out, cols) };
    let mut dst = vec![0u8; orow * ocol];
    for r in 0..orow {
        for c in 0..ocol {
            let (i, (start, ks)) = if horizontal { (r, &coeffs[c]) } else { (c, &coeffs[r]) };
            let mut acc: i64 = 1 << 21;
            for (j, &k) in ks.iter().enumerate() {
                let v = if horizontal { src[i * cols + start + j] } else { src[(start + j) * cols + i] };
                acc += v as i64 * k;
            }
            dst[r * ocol + c] = (acc >> 22).clamp(0, 255) as u8;
        }
    }
    dst
}

/// PIL `Image.resize((n, n), BOX)` of one square plane of side `side`.
fn pil_box_resize(plane: &[u8], side: usize, n: usize) -> Vec<u8> {
    let h = resample_pass(plane, side, side, n, true);
    resample_pass(&h, side, n, n, false)
}

pub(crate) fn pixelate(img: &[u8], s: usize) -> Vec<u8> {
    // Python int() of a positive float truncates.
    let n = (S as f64 * PIXELATE[s]) as usize;
    let mut out = Vec::with_capacity(img.len());
    for plane in img.chunks_exact(PLANE) {
        let small = pil_box_resize(plane, S, n);
        out.extend(pil_box_resize(&small, n, S));
    }
    out
}

/// Baseline JPEG of an interleaved 32x32 RGB image at `quality`, 4:2:0 by 2x2 averaging.
pub(crate) fn jpeg_encode(rgb: &[u8], quality: u8) -> Result<Vec<u8>> {
    let mut encoded = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut encoded, quality);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder.set_chroma_subsampling_method(jpeg_encoder::ChromaSubsamplingMethod::Average);
    encoder
        .encode(rgb, S as u16, S as u16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| DataError::Jpeg { stage: "encode", quality, detail: e.to_string() })?;
    Ok(encoded)
}

/// Decodes a 32x32 colour JPEG to interleaved RGB.
pub(crate) fn jpeg_decode(encoded: &[u8], quality: u8) -> Result<Vec<u8>> {
    let mut decoder = jpeg_decoder::Decoder::new(encoded);
    let decoded = decoder
        .decode()
        .map_err(|e| DataError::Jpeg { stage: "decode", quality, detail: e.to_string() })?;
    if decoded.len() != PLANE * CHANNELS {
        return Err(DataError::Jpeg {
            stage: "decode",
            quality,
            detail: format!("decoded {} bytes, expected {} (32x32 RGB)", decoded.len(), PLANE * CHANNELS),
        });
    }
    Ok(decoded)
}

pub(crate) fn jpeg(img: &[u8], s: usize) -> Result<Vec<u8>> {
    let quality = JPEG_QUALITY[s];
    let mut rgb = vec![0u8; img.len()];
    for p in 0..PLANE {
        for c in 0..CHANNELS {
            rgb[p * CHANNELS + c] = img[c * PLANE + p];
        }
    }
    let decoded = jpeg_decode(&jpeg_encode(&rgb, quality)?, quality)?;
    let mut out = vec![0u8; img.len()];
    for p in 0..PLANE {
        for c in 0..CHANNELS {
            out[c * PLANE + p] = decoded[p * CHANNELS + c];
        }
    }
    Ok(out)
}
