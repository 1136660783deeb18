//! IDX (MNIST-style `ubyte`) files and the Fashion-MNIST reader.
//!
//! An IDX file is a 4-byte magic `00 00 08 nd` (type 0x08 = unsigned byte, `nd` dimensions),
//! `nd` big-endian u32 sizes, then the bytes. Files may be gzip-compressed (detected by the
//! gzip magic `1f 8b`, as in Debian's `dataset-fashion-mnist`, which installs to
//! [`FASHION_MNIST_DEBIAN_DIR`]).
//!
//! Fashion-MNIST 28x28 grey images become an [`ImageSet`] of 32x32 RGB images: 2 zero pixels
//! of padding on each side and the grey plane replicated to the three channels, so it can be
//! fed to CIFAR models as an out-of-distribution set.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::cifar::Part;
use crate::error::{DataError, Result};
use crate::images::{CHANNELS, IMAGE_BYTES, IMAGE_SIDE, ImageSet, PLANE};

/// Where Debian's `dataset-fashion-mnist` package installs the (gzipped) IDX files.
pub const FASHION_MNIST_DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST class names in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// A decoded IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimension sizes, outermost first.
    pub dims: Vec<usize>,
    /// The bytes, row-major, `product(dims)` long.
    pub data: Vec<u8>,
}

/// Reads a (possibly gzipped) unsigned-byte IDX file, validating the magic number and that the
/// payload is exactly `product(dims)` bytes.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::io(path, e))?;
        out
    } else {
        raw
    };
    parse_idx(path, bytes)
}

/// Encodes an unsigned-byte IDX file (uncompressed): the inverse of [`read_idx`], for
/// fixtures and tools. `data` should hold `product(dims)` bytes; nothing is checked, so a
/// deliberately inconsistent file can be written too.
pub fn encode_idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn parse_idx(path: &Path, mut bytes: Vec<u8>) -> Result<IdxArray> {
    let bad = |detail, value: u64| DataError::IdxHeader { path: path.to_path_buf(), detail, value };
    if bytes.len() < 4 {
        return Err(bad("file shorter than the 4-byte magic number", bytes.len() as u64));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("magic number must start with two zero bytes", magic as u64));
    }
    if bytes[2] != 0x08 {
        return Err(bad("element type must be 0x08 (unsigned byte)", bytes[2] as u64));
    }
    let nd = bytes[3] as usize;
    if nd == 0 {
        return Err(bad("number of dimensions must be positive", 0));
    }
    let header = 4 + 4 * nd;
    if bytes.len() < header {
        return Err(bad("file shorter than its header", bytes.len() as u64));
    }
    let dims: Vec<usize> = (0..nd)
        .map(|d| {
            let o = 4 + 4 * d;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let payload = bytes.len() - header;
    // Checked: three u32 dimensions can overflow a u64 (the value shown is the largest).
    let Some(expected) = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
        let largest = dims.iter().copied().max().unwrap_or(0) as u64;
        return Err(bad("the product of the header dimensions overflows", largest));
    };
    if payload != expected {
        return Err(DataError::Mismatch {
            path: path.to_path_buf(),
            detail: "payload bytes vs product of header dimensions",
            left: payload,
            right: expected,
        });
    }
    bytes.drain(..header);
    Ok(IdxArray { dims, data: bytes })
}

/// Finds `name` or `name.gz` in `dir`.
fn find_idx(dir: &Path, name: &str) -> Result<PathBuf> {
    for cand in [name.to_string(), format!("{name}.gz")] {
        let p = dir.join(&cand);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(DataError::MissingFile {
        dir: dir.to_path_buf(),
        file: format!("{name}[.gz]"),
        expected_layout: "train-images-idx3-ubyte, train-labels-idx1-ubyte, \
                          t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each optionally .gz; \
                          Debian package dataset-fashion-mnist)"
            .into(),
    })
}

/// Builds an [`ImageSet`] from IDX image (`[n, h, w]`, h, w <= 32) and label (`[n]`) arrays:
/// centred zero padding to 32x32, grey replicated to 3 channels. `images_path` /
/// `labels_path` are used in error messages; at most `limit` images are kept.
pub fn idx_to_image_set(
    images: &IdxArray,
    labels: &IdxArray,
    images_path: &Path,
    labels_path: &Path,
    num_classes: usize,
    limit: Option<usize>,
) -> Result<ImageSet> {
    if images.dims.len() != 3 {
        return Err(DataError::IdxHeader {
            path: images_path.to_path_buf(),
            detail: "image file must have 3 dimensions",
            value: images.dims.len() as u64,
        });
    }
    if labels.dims.len() != 1 {
        return Err(DataError::IdxHeader {
            path: labels_path.to_path_buf(),
            detail: "label file must have 1 dimension",
            value: labels.dims.len() as u64,
        });
    }
    let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
    for (side, detail) in [(h, "image height must be in 1..=32"), (w, "image width must be in 1..=32")] {
        if side == 0 || side > IMAGE_SIDE {
            return Err(DataError::IdxHeader {
                path: images_path.to_path_buf(),
                detail,
                value: side as u64,
            });
        }
    }
    if labels.dims[0] != n {
        return Err(DataError::CountMismatch {
            labels: labels_path.to_path_buf(),
            label_count: labels.dims[0],
            images: images_path.to_path_buf(),
            image_count: n,
        });
    }
    let n = limit.map_or(n, |l| l.min(n));
    let (top, left) = ((IMAGE_SIDE - h) / 2, (IMAGE_SIDE - w) / 2);
    let mut pixels = vec![0u8; n * IMAGE_BYTES];
    for i in 0..n {
        let src = &images.data[i * h * w..(i + 1) * h * w];
        let dst = &mut pixels[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES];
        for y in 0..h {
            let row = &src[y * w..(y + 1) * w];
            for c in 0..CHANNELS {
                let o = c * PLANE + (y + top) * IMAGE_SIDE + left;
                dst[o..o + w].copy_from_slice(row);
            }
        }
    }
    let labels_vec = labels.data[..n].to_vec();
    for (i, &l) in labels_vec.iter().enumerate() {
        if l as usize >= num_classes {
            return Err(DataError::LabelOutOfRange {
                path: labels_path.to_path_buf(),
                record: i,
                field: "label",
                value: l,
                num_classes,
            });
        }
    }
    Ok(ImageSet { pixels, labels: labels_vec, coarse_labels: None, num_classes, class_names: Vec::new() })
}

/// Reads the Fashion-MNIST `part` from `dir` (e.g. [`FASHION_MNIST_DEBIAN_DIR`]) as 32x32 RGB
/// images, keeping at most `limit` images.
pub fn read_fashion_mnist(dir: &Path, part: Part, limit: Option<usize>) -> Result<ImageSet> {
    let prefix = match part {
        Part::Train => "train",
        Part::Test => "t10k",
    };
    let ip = find_idx(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lp = find_idx(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx(&ip)?;
    let labels = read_idx(&lp)?;
    let mut set = idx_to_image_set(&images, &labels, &ip, &lp, 10, limit)?;
    set.class_names = FASHION_MNIST_CLASSES.iter().map(|s| s.to_string()).collect();
    tracing::debug!(dir = %dir.display(), n = set.len(), "read Fashion-MNIST");
    Ok(set)
}
