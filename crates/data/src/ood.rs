//! Out-of-distribution image sets for CIFAR evaluation: SVHN read from its official MATLAB
//! files, and synthetic noise images. Both load into the crate's [`ImageSet`] (32x32 RGB, CHW
//! planes per image, exactly the CIFAR layout).
//!
//! ## SVHN
//! The cropped-digit files `train_32x32.mat` / `test_32x32.mat` of
//! <http://ufldl.stanford.edu/housenumbers/> are expected under the data root as
//! `<data root>/svhn/test_32x32.mat` (see [`svhn_dir`]); [`read_svhn`] also accepts the file
//! directly in the directory it is given. Each file holds two variables: `X`, a `uint8` array
//! of size 32x32x3xN (rows, columns, RGB channel, image), and `y`, an Nx1 `double` array of
//! labels 1..=10, where 10 denotes the digit 0. Labels become `y mod 10`, so label = digit.
//!
//! MATLAB stores arrays column-major: element `(r, c, ch, n)` (0-based) of `X` is at linear
//! index `r + 32 c + 1024 ch + 3072 n`. Image `n` is thus one contiguous block of 3072 bytes
//! whose three 1024-byte channel planes are each the *transpose* of a CIFAR row-major plane;
//! the reader transposes every plane in place, so no second copy of the pixels is made.
//!
//! ## The MAT reader
//! [`read_mat_arrays`] is a minimal reader for the MATLAB level-5 MAT format (the format of
//! `save -v6` / `save -v7`; MATLAB's "MAT-File Format" document, R2019b and earlier editions),
//! restricted to what numeric data sets need:
//! - the 128-byte header: 116 bytes of text, 8 bytes of subsystem offset, version `0x0100` and
//!   the endian indicator `"IM"` (little-endian file) or `"MI"` (big-endian file); both byte
//!   orders are supported. Version `0x0200` (MAT v7.3, HDF5) is rejected with a clear error;
//! - data elements: an 8-byte tag (u32 type, u32 byte count) followed by the data padded to a
//!   multiple of 8 bytes, or the *small data element* form, where a tag whose upper 16 bits
//!   are non-zero packs (byte count << 16 | type) into 4 bytes and up to 4 data bytes follow;
//! - top-level `miMATRIX` (14) elements, and `miCOMPRESSED` (15) elements, a zlib stream
//!   holding one `miMATRIX` element (what `save -v7`, MATLAB's default, writes). As in scipy's
//!   reader, top-level elements follow each other without padding (a `miMATRIX` byte count is a
//!   multiple of 8 anyway; a compressed element's count is the exact zlib length);
//! - inside `miMATRIX`: array flags (`miUINT32`, class in the low byte, complex flag 0x0800),
//!   dimensions (`miINT32`), name (`miINT8`) and the real part, which may be stored in any
//!   numeric type (MATLAB stores e.g. a `double` array of small integers as `miUINT8`), so
//!   values are kept as [`MatData::U8`] when stored as `miUINT8`, else converted to `f64`.
//!
//! Variables are streamed: only the requested ones are decoded; others are skipped (a
//! compressed variable is skipped without inflating it). Cell, struct, char, sparse and
//! complex arrays are only supported as variables to skip. Declared sizes are checked before
//! anything is allocated from them: an element larger than what is left of the file, or a
//! real part larger than its array element, is an error; only a compressed stream, whose
//! inflated size the file cannot bound, grows its buffers as data actually arrives.
//!
//! ## Noise
//! [`noise_images`] follows the synthetic OOD sets of the outlier-exposure code
//! (Hendrycks, Mazeika & Dietterich, ICLR 2019; `hendrycks/outlier-exposure`,
//! `CIFAR/test.py`), which draws its noise directly as network input scaled to `[-1, 1]`:
//! "Gaussian Noise (sigma = 0.5)" is `clip(N(0, 0.5²), -1, 1)` and "Uniform[-1,1] Noise" is
//! `U(-1, 1)`. Read as `[0, 1]` pixels (`x = (v + 1) / 2`), which is how they enter our models
//! (the model normalises its input itself), these are:
//! - [`NoiseKind::Uniform`]: every byte i.i.d. uniform on `{0, …, 255}` (the 8-bit image of
//!   `U(0, 1)`, also ODIN's "Uniform" set, Liang, Li & Srikant, ICLR 2018);
//! - [`NoiseKind::Gaussian`]: every byte `round(255 · clip(z, 0, 1))` with `z ~ N(0.5, 0.25²)`
//!   i.i.d. (mean 127.5, standard deviation ≈ 61.2, about 2.3 % of the bytes at each of 0 and
//!   255). ODIN's "Gaussian" set instead uses unit variance, which saturates most pixels.
//!
//! Noise images are a deterministic function of `(seed, kind, image index)`: image `i` uses its
//! own stream of [`crate::seed::stream`], so a longer set extends a shorter one.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::ZlibDecoder;
use rand::{Rng, RngCore};
use rand_distr::StandardNormal;

use crate::error::{DataError, Result};
use crate::images::{IMAGE_BYTES, IMAGE_SIDE, ImageSet, PLANE};
use crate::seed;

// ---------------------------------------------------------------------------------------------
// SVHN
// ---------------------------------------------------------------------------------------------

/// Directory of the SVHN files under the data root.
pub const SVHN_DIR: &str = "svhn";
/// Where the official SVHN files are published.
pub const SVHN_URL: &str = "http://ufldl.stanford.edu/housenumbers/";
/// SVHN class names in label order (label = digit).
pub const SVHN_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// Which official SVHN (cropped digits) file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SvhnPart {
    /// `train_32x32.mat`, 73 257 images.
    Train,
    /// `test_32x32.mat`, 26 032 images.
    Test,
}

impl SvhnPart {
    /// The official file name.
    pub fn file_name(self) -> &'static str {
        match self {
            SvhnPart::Train => "train_32x32.mat",
            SvhnPart::Test => "test_32x32.mat",
        }
    }
}

/// The SVHN directory under a data root: `<data_root>/svhn`.
pub fn svhn_dir(data_root: &Path) -> PathBuf {
    data_root.join(SVHN_DIR)
}

/// The candidate locations of `part` for directory `dir`: `<dir>/svhn/<file>`, then
/// `<dir>/<file>`.
fn svhn_candidates(dir: &Path, part: SvhnPart) -> [PathBuf; 2] {
    [svhn_dir(dir).join(part.file_name()), dir.join(part.file_name())]
}

/// The path of the SVHN test file if present under `root` (`<root>/svhn/test_32x32.mat`, or
/// `<root>/test_32x32.mat`), else `None`. Lets callers and tests skip SVHN when it is absent.
pub fn svhn_present(root: &Path) -> Option<PathBuf> {
    svhn_candidates(root, SvhnPart::Test).into_iter().find(|p| p.is_file())
}

/// Reads the SVHN `part` found in `dir`: `<dir>/svhn/<file>` (when `dir` is the data root) or
/// `<dir>/<file>` (when `dir` is the SVHN directory itself), `<file>` being
/// [`SvhnPart::file_name`]. See [`read_svhn_file`] for the conversion.
pub fn read_svhn(dir: &Path, part: SvhnPart) -> Result<ImageSet> {
    let candidates = svhn_candidates(dir, part);
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        return Err(DataError::MissingFile {
            dir: dir.to_path_buf(),
            file: part.file_name().to_string(),
            expected_layout: format!(
                "<data root>/{SVHN_DIR}/{{train,test}}_32x32.mat (official MATLAB files from \
                 {SVHN_URL}), or the file directly in the given directory"
            ),
        });
    };
    read_svhn_file(path)
}

/// Reads one official SVHN MAT file into an [`ImageSet`]: `X` (32x32x3xN, `uint8`,
/// column-major) becomes N CHW images, `y` (N labels 1..=10) becomes `y mod 10`; 10 classes
/// named by digit. Errors name the file and what is wrong (header, missing variable, wrong
/// dimensions, values out of range, truncation).
pub fn read_svhn_file(path: &Path) -> Result<ImageSet> {
    let arrays = read_mat_arrays(path, &["X", "y"])?;
    let set = svhn_from_arrays(path, arrays)?;
    tracing::debug!(path = %path.display(), n = set.len(), "read SVHN");
    Ok(set)
}

/// Builds the SVHN [`ImageSet`] from the arrays `X` and `y` of `path`.
fn svhn_from_arrays(path: &Path, arrays: Vec<MatArray>) -> Result<ImageSet> {
    let err = |detail: String| mat_err(path, detail);
    let mut x = None;
    let mut y = None;
    for a in arrays {
        match a.name.as_str() {
            "X" => x = Some(a),
            "y" => y = Some(a),
            _ => {}
        }
    }
    let layout = "SVHN files hold X (uint8, 32x32x3xN) and y (Nx1 labels 1..=10)";
    let x = x.ok_or_else(|| err(format!("missing variable \"X\" ({layout})")))?;
    let y = y.ok_or_else(|| err(format!("missing variable \"y\" ({layout})")))?;

    // MATLAB drops trailing singleton dimensions: a single image is stored as 32x32x3.
    let n = match x.dims.as_slice() {
        [32, 32, 3] => 1,
        [32, 32, 3, n] => *n,
        _ => {
            return Err(err(format!(
                "variable \"X\" has dimensions {}, expected 32x32x3xN",
                dims_str(&x.dims)
            )));
        }
    };
    let mut pixels = match x.data {
        MatData::U8(v) => v,
        MatData::F64(v) => v
            .iter()
            .enumerate()
            .map(|(i, &f)| {
                if f.fract() == 0.0 && (0.0..=255.0).contains(&f) {
                    Ok(f as u8)
                } else {
                    Err(err(format!(
                        "variable \"X\" element {i} = {f} is not an integer in 0..=255"
                    )))
                }
            })
            .collect::<Result<Vec<u8>>>()?,
    };
    debug_assert_eq!(pixels.len(), n * IMAGE_BYTES);
    // Column-major (r + 32 c) → row-major (32 r + c): transpose every 32x32 plane in place.
    for plane in pixels.chunks_exact_mut(PLANE) {
        for r in 0..IMAGE_SIDE {
            for c in r + 1..IMAGE_SIDE {
                plane.swap(r * IMAGE_SIDE + c, c * IMAGE_SIDE + r);
            }
        }
    }

    let is_vector = y.dims.iter().filter(|&&d| d != 1).count() <= 1;
    if !is_vector || y.data.len() != n {
        return Err(err(format!(
            "variable \"y\" has dimensions {}, expected {n}x1 (one label per image of X)",
            dims_str(&y.dims)
        )));
    }
    let labels = (0..n)
        .map(|i| {
            let v = y.data.value(i);
            if v.fract() == 0.0 && (1.0..=10.0).contains(&v) {
                Ok((v as u8) % 10)
            } else {
                Err(err(format!(
                    "variable \"y\" element {i} = {v} is not a label in 1..=10 (10 denotes digit 0)"
                )))
            }
        })
        .collect::<Result<Vec<u8>>>()?;

    Ok(ImageSet {
        pixels,
        labels,
        coarse_labels: None,
        num_classes: SVHN_CLASSES.len(),
        class_names: SVHN_CLASSES.iter().map(|s| s.to_string()).collect(),
    })
}

fn dims_str(dims: &[usize]) -> String {
    dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x")
}

// ---------------------------------------------------------------------------------------------
// MAT level-5 reader
// ---------------------------------------------------------------------------------------------

/// Data type `miINT8` (also used for array names).
const MI_INT8: u32 = 1;
/// Data type `miUINT8`.
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
/// Data type `miINT32` (dimensions).
const MI_INT32: u32 = 5;
/// Data type `miUINT32` (array flags).
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
/// Data type `miMATRIX`: an array.
const MI_MATRIX: u32 = 14;
/// Data type `miCOMPRESSED`: a zlib stream holding one element.
const MI_COMPRESSED: u32 = 15;
/// Data type `miUTF8` (accepted for array names).
const MI_UTF8: u32 = 16;

/// Array class `mxDOUBLE_CLASS` (the class of SVHN's `y`).
pub const MX_DOUBLE_CLASS: u8 = 6;
/// Array class `mxUINT8_CLASS` (the class of SVHN's `X`).
pub const MX_UINT8_CLASS: u8 = 9;
/// Largest numeric array class (`mxUINT64_CLASS`); numeric classes are 6..=15.
const MX_UINT64_CLASS: u8 = 15;

/// Bytes in the MAT level-5 header.
const HEADER_BYTES: usize = 128;
/// Largest accepted flags / dimensions / name sub-element (guards against corrupt sizes).
const MAX_HEADER_SUBELEMENT: u32 = 1 << 16;
/// Largest up-front allocation for a real part; larger ones grow as data actually arrives.
const MAX_PREALLOC: usize = 1 << 28;

/// The real part of a numeric MATLAB array, column-major.
#[derive(Debug, Clone, PartialEq)]
pub enum MatData {
    /// Stored as `miUINT8`: the bytes as they are.
    U8(Vec<u8>),
    /// Stored in any other numeric type, converted to `f64` (64-bit integers beyond 2^53 lose
    /// precision).
    F64(Vec<f64>),
}

impl MatData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            MatData::U8(v) => v.len(),
            MatData::F64(v) => v.len(),
        }
    }

    /// True when there is no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` (column-major linear index) as `f64`.
    pub fn value(&self, i: usize) -> f64 {
        match self {
            MatData::U8(v) => f64::from(v[i]),
            MatData::F64(v) => v[i],
        }
    }
}

/// One real numeric array (variable) of a MAT file.
#[derive(Debug, Clone, PartialEq)]
pub struct MatArray {
    /// Variable name.
    pub name: String,
    /// MATLAB array class (`mxDOUBLE_CLASS` = 6 … `mxUINT64_CLASS` = 15), e.g.
    /// [`MX_UINT8_CLASS`]; the storage type of `data` may be narrower than the class.
    pub class: u8,
    /// Dimensions, first (fastest-varying) first.
    pub dims: Vec<usize>,
    /// The real part, column-major: element `(i0, i1, …)` is at
    /// `i0 + dims[0] * (i1 + dims[1] * (…))`.
    pub data: MatData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }

    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }

    fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        }
    }
}

/// A data element tag. `small` holds the data of a small data element.
#[derive(Debug, Clone, Copy)]
struct Tag {
    ty: u32,
    nbytes: u32,
    small: Option<[u8; 4]>,
}

fn parse_tag(b: [u8; 8], e: Endian) -> Tag {
    let first = e.u32([b[0], b[1], b[2], b[3]]);
    if first >> 16 != 0 {
        Tag { ty: first & 0xFFFF, nbytes: first >> 16, small: Some([b[4], b[5], b[6], b[7]]) }
    } else {
        Tag { ty: first, nbytes: e.u32([b[4], b[5], b[6], b[7]]), small: None }
    }
}

fn mat_err(path: &Path, detail: impl Into<String>) -> DataError {
    DataError::MatFile { path: path.to_path_buf(), detail: detail.into() }
}

/// Maps an I/O error met while reading `what`: end of data is truncation, invalid data a
/// corrupt zlib stream, anything else an I/O error on the file.
fn read_err(path: &Path, e: io::Error, what: &str) -> DataError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            mat_err(path, format!("truncated: data ends inside {what}"))
        }
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            mat_err(path, format!("corrupt compressed data in {what}: {e}"))
        }
        _ => DataError::io(path, e),
    }
}

/// Reads until `buf` is full or the data ends; returns the number of bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads exactly `n` bytes (allocating as data arrives, so a corrupt size cannot exhaust
/// memory before the data runs out).
fn read_vec<R: Read>(r: &mut R, n: usize, path: &Path, what: &str) -> Result<Vec<u8>> {
    let mut v = Vec::with_capacity(n.min(MAX_PREALLOC));
    r.by_ref().take(n as u64).read_to_end(&mut v).map_err(|e| read_err(path, e, what))?;
    if v.len() != n {
        return Err(mat_err(
            path,
            format!("truncated: {what}: {n} bytes declared, the data ends after {}", v.len()),
        ));
    }
    Ok(v)
}

/// Consumes the rest of `r` (a `Take` limited to an element), checking it is all there.
fn drain<R: Read>(r: &mut io::Take<R>, path: &Path, what: &str) -> Result<()> {
    io::copy(r, &mut io::sink()).map_err(|e| read_err(path, e, what))?;
    if r.limit() != 0 {
        return Err(mat_err(
            path,
            format!("truncated: data ends {} bytes before the end of {what}", r.limit()),
        ));
    }
    Ok(())
}

fn read_tag<R: Read>(r: &mut R, e: Endian, path: &Path, what: &str) -> Result<Tag> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).map_err(|err| read_err(path, err, &format!("the tag of {what}")))?;
    Ok(parse_tag(b, e))
}

/// Reads one (small) header sub-element of an array: returns its type and data bytes and
/// skips its padding.
fn read_subelement<R: Read>(
    r: &mut R,
    e: Endian,
    path: &Path,
    what: &str,
) -> Result<(u32, Vec<u8>)> {
    let tag = read_tag(r, e, path, what)?;
    if let Some(small) = tag.small {
        if tag.nbytes > 4 {
            return Err(mat_err(
                path,
                format!("{what}: small data element of {} bytes", tag.nbytes),
            ));
        }
        return Ok((tag.ty, small[..tag.nbytes as usize].to_vec()));
    }
    if tag.nbytes > MAX_HEADER_SUBELEMENT {
        return Err(mat_err(path, format!("{what}: implausible size {} bytes", tag.nbytes)));
    }
    let data = read_vec(r, tag.nbytes as usize, path, what)?;
    let pad = (8 - tag.nbytes as usize % 8) % 8;
    read_vec(r, pad, path, &format!("the padding of {what}"))?;
    Ok((tag.ty, data))
}

/// Bytes per element of a numeric storage type.
fn element_size(ty: u32) -> Option<usize> {
    match ty {
        MI_INT8 | MI_UINT8 => Some(1),
        MI_INT16 | MI_UINT16 => Some(2),
        MI_INT32 | MI_UINT32 | MI_SINGLE => Some(4),
        MI_DOUBLE | MI_INT64 | MI_UINT64 => Some(8),
        _ => None,
    }
}

/// Converts raw real-part bytes of numeric storage type `ty` to `f64`.
fn decode_f64(bytes: &[u8], ty: u32, e: Endian) -> Vec<f64> {
    let b2 = |c: &[u8]| e.u16([c[0], c[1]]);
    let b4 = |c: &[u8]| e.u32([c[0], c[1], c[2], c[3]]);
    let b8 = |c: &[u8]| e.u64([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    match ty {
        MI_INT8 => bytes.iter().map(|&b| f64::from(b as i8)).collect(),
        MI_UINT8 => bytes.iter().map(|&b| f64::from(b)).collect(),
        MI_INT16 => bytes.chunks_exact(2).map(|c| f64::from(b2(c) as i16)).collect(),
        MI_UINT16 => bytes.chunks_exact(2).map(|c| f64::from(b2(c))).collect(),
        MI_INT32 => bytes.chunks_exact(4).map(|c| f64::from(b4(c) as i32)).collect(),
        MI_UINT32 => bytes.chunks_exact(4).map(|c| f64::from(b4(c))).collect(),
        MI_SINGLE => bytes.chunks_exact(4).map(|c| f64::from(f32::from_bits(b4(c)))).collect(),
        MI_DOUBLE => bytes.chunks_exact(8).map(|c| f64::from_bits(b8(c))).collect(),
        MI_INT64 => bytes.chunks_exact(8).map(|c| b8(c) as i64 as f64).collect(),
        MI_UINT64 => bytes.chunks_exact(8).map(|c| b8(c) as f64).collect(),
        _ => unreachable!("decode_f64 called with non-numeric type {ty}"),
    }
}

/// Reads the contents of one `miMATRIX` element (`nbytes` long, its tag already consumed;
/// `r` is limited to the element). Returns `None` for an empty element or a variable not in
/// `names`, leaving the rest of the element unread (the caller skips it).
fn read_matrix<R: Read>(
    r: &mut io::Take<R>,
    nbytes: u32,
    e: Endian,
    path: &Path,
    names: &[&str],
    at: u64,
) -> Result<Option<MatArray>> {
    if nbytes == 0 {
        return Ok(None);
    }
    let here = format!("the array at byte {at}");
    let (ty, flags) = read_subelement(r, e, path, &format!("the array flags of {here}"))?;
    if ty != MI_UINT32 || flags.len() != 8 {
        return Err(mat_err(
            path,
            format!(
                "{here}: array flags must be 8 bytes of miUINT32, found {} bytes of type {ty}",
                flags.len()
            ),
        ));
    }
    let flags = e.u32([flags[0], flags[1], flags[2], flags[3]]);
    let class = (flags & 0xFF) as u8;
    let complex = flags & 0x0800 != 0;

    let (ty, dims_raw) = read_subelement(r, e, path, &format!("the dimensions of {here}"))?;
    if ty != MI_INT32 || dims_raw.len() % 4 != 0 || dims_raw.len() < 8 {
        return Err(mat_err(
            path,
            format!(
                "{here}: dimensions must be at least 2 miINT32 values, found {} bytes of type {ty}",
                dims_raw.len()
            ),
        ));
    }
    let dims = dims_raw
        .chunks_exact(4)
        .map(|c| {
            let d = e.u32([c[0], c[1], c[2], c[3]]) as i32;
            usize::try_from(d).map_err(|_| mat_err(path, format!("{here}: negative dimension {d}")))
        })
        .collect::<Result<Vec<usize>>>()?;

    let (ty, name) = read_subelement(r, e, path, &format!("the name of {here}"))?;
    if ty != MI_INT8 && ty != MI_UTF8 {
        return Err(mat_err(path, format!("{here}: array name must be miINT8, found type {ty}")));
    }
    let name = String::from_utf8_lossy(&name).into_owned();
    if !names.contains(&name.as_str()) {
        return Ok(None);
    }

    let var = format!("variable {name:?} (byte {at})");
    if !(MX_DOUBLE_CLASS..=MX_UINT64_CLASS).contains(&class) {
        return Err(mat_err(
            path,
            format!("{var}: array class {class} is not numeric (expected 6..=15, e.g. 9 = uint8)"),
        ));
    }
    if complex {
        return Err(mat_err(path, format!("{var}: complex arrays are not supported")));
    }
    let numel = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| mat_err(path, format!("{var}: dimensions {} overflow", dims_str(&dims))))?;

    let real = format!("the real part of {var}");
    let tag = read_tag(r, e, path, &real)?;
    let size = element_size(tag.ty).ok_or_else(|| {
        mat_err(path, format!("{real}: unsupported storage type {} (not numeric)", tag.ty))
    })?;
    let expected = numel.checked_mul(size);
    if expected != Some(tag.nbytes as usize) {
        return Err(mat_err(
            path,
            format!(
                "{real}: {} bytes of type {} but dimensions {} need {numel} elements of \
                 {size} bytes",
                tag.nbytes,
                tag.ty,
                dims_str(&dims)
            ),
        ));
    }
    // Sizes are checked against what the element holds before anything is allocated.
    let bytes = match tag.small {
        Some(_) if tag.nbytes > 4 => {
            return Err(mat_err(
                path,
                format!("{real}: small data element declares {} bytes (at most 4)", tag.nbytes),
            ));
        }
        Some(small) => small[..tag.nbytes as usize].to_vec(),
        None if u64::from(tag.nbytes) > r.limit() => {
            return Err(mat_err(
                path,
                format!(
                    "{real}: declares {} bytes, more than the {} bytes left in its array element",
                    tag.nbytes,
                    r.limit()
                ),
            ));
        }
        None => read_vec(r, tag.nbytes as usize, path, &real)?,
    };
    let data = if tag.ty == MI_UINT8 {
        MatData::U8(bytes)
    } else {
        MatData::F64(decode_f64(&bytes, tag.ty, e))
    };
    Ok(Some(MatArray { name, class, dims, data }))
}

/// Reads the 128-byte header and returns the file's byte order.
fn read_header<R: Read>(r: &mut R, path: &Path) -> Result<Endian> {
    let mut h = [0u8; HEADER_BYTES];
    let got = read_full(r, &mut h).map_err(|e| DataError::io(path, e))?;
    if got < HEADER_BYTES {
        return Err(mat_err(
            path,
            format!(
                "bad header: file has {got} bytes, fewer than the {HEADER_BYTES}-byte MAT header"
            ),
        ));
    }
    let e = match &h[126..128] {
        b"IM" => Endian::Little,
        b"MI" => Endian::Big,
        other => {
            return Err(mat_err(
                path,
                format!(
                    "bad header: endian indicator {:?} at bytes 126..128 is neither \"IM\" nor \
                     \"MI\" (not a MATLAB level-5 MAT file)",
                    String::from_utf8_lossy(other)
                ),
            ));
        }
    };
    match e.u16([h[124], h[125]]) {
        0x0100 => Ok(e),
        0x0200 => Err(mat_err(
            path,
            "bad header: MAT v7.3 (HDF5) files are not supported; save with -v7 or -v6",
        )),
        v => Err(mat_err(path, format!("bad header: version 0x{v:04x}, expected 0x0100"))),
    }
}

/// Parses a MAT level-5 stream of `len` bytes, returning the arrays named in `names` in file
/// order.
fn parse_mat<R: Read>(r: &mut R, len: u64, path: &Path, names: &[&str]) -> Result<Vec<MatArray>> {
    let e = read_header(r, path)?;
    let mut out = Vec::new();
    let mut at = HEADER_BYTES as u64;
    loop {
        let mut b = [0u8; 8];
        let got = read_full(r, &mut b).map_err(|err| DataError::io(path, err))?;
        if got == 0 || (got < 8 && b[..got].iter().all(|&x| x == 0)) {
            break; // end of file (tolerating a few bytes of trailing zero padding)
        }
        if got < 8 {
            return Err(mat_err(path, format!("truncated: {got}-byte partial tag at byte {at}")));
        }
        let tag = parse_tag(b, e);
        let what = format!("the element at byte {at}");
        if tag.small.is_some() {
            return Err(mat_err(
                path,
                format!("{what}: unexpected small data element at top level"),
            ));
        }
        let left = len.saturating_sub(at + 8);
        if u64::from(tag.nbytes) > left {
            return Err(mat_err(
                path,
                format!(
                    "{what}: declares {} bytes, more than the {left} bytes left in the file                      (truncated or corrupt)",
                    tag.nbytes
                ),
            ));
        }
        let mut raw = r.by_ref().take(u64::from(tag.nbytes));
        match tag.ty {
            MI_MATRIX => {
                if let Some(a) = read_matrix(&mut raw, tag.nbytes, e, path, names, at)? {
                    out.push(a);
                }
            }
            MI_COMPRESSED => {
                let mut z = ZlibDecoder::new(&mut raw);
                let inner = read_tag(&mut z, e, path, &format!("the compressed data of {what}"))?;
                if inner.ty != MI_MATRIX || inner.small.is_some() {
                    return Err(mat_err(
                        path,
                        format!(
                            "{what}: compressed element holds type {}, expected miMATRIX (14)",
                            inner.ty
                        ),
                    ));
                }
                let mut m = (&mut z).take(u64::from(inner.nbytes));
                let found = read_matrix(&mut m, inner.nbytes, e, path, names, at)?;
                if let Some(a) = found {
                    // Inflate the rest so truncation and the zlib checksum are checked.
                    drain(
                        &mut m,
                        path,
                        &format!("the compressed array {:?} at byte {at}", a.name),
                    )?;
                    io::copy(&mut z, &mut io::sink()).map_err(|err| read_err(path, err, &what))?;
                    out.push(a);
                }
            }
            ty => {
                return Err(mat_err(
                    path,
                    format!(
                        "{what}: unexpected top-level element type {ty} (expected miMATRIX 14 \
                         or miCOMPRESSED 15)"
                    ),
                ));
            }
        }
        drain(&mut raw, path, &what)?;
        at += 8 + u64::from(tag.nbytes);
    }
    Ok(out)
}

/// Reads the real numeric arrays named in `names` from the MATLAB level-5 MAT file `path`
/// (uncompressed or compressed, either byte order; see the module docs), in file order.
/// Requested names absent from the file are simply absent from the result; other variables
/// are skipped. Errors name the file and what is wrong.
pub fn read_mat_arrays(path: &Path, names: &[&str]) -> Result<Vec<MatArray>> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    parse_mat(&mut r, len, path, names)
}

// ---------------------------------------------------------------------------------------------
// Noise
// ---------------------------------------------------------------------------------------------

/// Mean of [`NoiseKind::Gaussian`] pixels, in `[0, 1]` pixel units (before clipping).
pub const GAUSSIAN_NOISE_MEAN: f64 = 0.5;
/// Standard deviation of [`NoiseKind::Gaussian`] pixels, in `[0, 1]` units (before clipping).
pub const GAUSSIAN_NOISE_STD: f64 = 0.25;

/// Seed-stream purpose tag of noise images (ASCII "ood_nois"; distinct from [`crate::seed`]'s).
const NOISE_PURPOSE: u64 = 0x6F6F_645F_6E6F_6973;

/// A synthetic noise OOD set (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoiseKind {
    /// Every byte i.i.d. uniform on `{0, …, 255}`.
    Uniform,
    /// Every byte `round(255 · clip(N(0.5, 0.25²), 0, 1))`, i.i.d.
    Gaussian,
}

impl NoiseKind {
    /// Lower-case name ("uniform", "gaussian").
    pub fn name(self) -> &'static str {
        match self {
            NoiseKind::Uniform => "uniform",
            NoiseKind::Gaussian => "gaussian",
        }
    }

    fn stream_tag(self) -> u64 {
        match self {
            NoiseKind::Uniform => 1,
            NoiseKind::Gaussian => 2,
        }
    }
}

/// `n` noise images of `kind`, a deterministic function of `seed` (image `i` depends only on
/// `(seed, kind, i)`, for a fixed `rand` version). Labels are all 0 and carry no meaning
/// (`num_classes` is 10 so the set fits CIFAR-10 code paths); no class names.
pub fn noise_images(kind: NoiseKind, n: usize, seed: u64) -> ImageSet {
    let mut pixels = vec![0u8; n * IMAGE_BYTES];
    for (i, img) in pixels.chunks_exact_mut(IMAGE_BYTES).enumerate() {
        let mut rng = seed::stream(seed, NOISE_PURPOSE, kind.stream_tag(), i as u64);
        match kind {
            NoiseKind::Uniform => rng.fill_bytes(img),
            NoiseKind::Gaussian => {
                for p in img.iter_mut() {
                    let z: f64 = rng.sample(StandardNormal);
                    let v = (GAUSSIAN_NOISE_MEAN + GAUSSIAN_NOISE_STD * z).clamp(0.0, 1.0);
                    *p = (v * 255.0).round() as u8;
                }
            }
        }
    }
    ImageSet {
        pixels,
        labels: vec![0; n],
        coarse_labels: None,
        num_classes: 10,
        class_names: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    // -----------------------------------------------------------------------------------------
    // A tiny MAT level-5 writer, laid out like MATLAB's own files: 128-byte header with text,
    // zero subsystem offset, version 0x0100 and the endian indicator written as the u16
    // ('M' << 8 | 'I') in the file's byte order ("IM" little-endian, "MI" big-endian); each
    // variable a miMATRIX of array flags (miUINT32 x2), dimensions (miINT32), name (miINT8,
    // small data element when <= 4 bytes) and real part (small when <= 4 bytes); every
    // non-small element padded to 8 bytes; optionally each variable zlib-compressed in a
    // miCOMPRESSED element (MATLAB's default `save -v7`).
    // -----------------------------------------------------------------------------------------

    struct MatWriter {
        e: Endian,
    }

    impl MatWriter {
        fn u16b(&self, v: u16) -> [u8; 2] {
            match self.e {
                Endian::Little => v.to_le_bytes(),
                Endian::Big => v.to_be_bytes(),
            }
        }

        fn u32b(&self, v: u32) -> [u8; 4] {
            match self.e {
                Endian::Little => v.to_le_bytes(),
                Endian::Big => v.to_be_bytes(),
            }
        }

        fn f64s(&self, vals: &[f64]) -> Vec<u8> {
            vals.iter()
                .flat_map(|v| match self.e {
                    Endian::Little => v.to_le_bytes(),
                    Endian::Big => v.to_be_bytes(),
                })
                .collect()
        }

        fn header(&self) -> Vec<u8> {
            let mut h =
                b"MATLAB 5.0 MAT-file, Platform: test, Created by: distillery ood tests".to_vec();
            h.resize(116, b' ');
            h.extend([0u8; 8]);
            h.extend(self.u16b(0x0100));
            h.extend(self.u16b(u16::from_be_bytes(*b"MI")));
            assert_eq!(h.len(), 128);
            h
        }

        fn element(&self, ty: u32, data: &[u8], allow_small: bool) -> Vec<u8> {
            let mut out = Vec::new();
            if allow_small && !data.is_empty() && data.len() <= 4 {
                out.extend(self.u32b(((data.len() as u32) << 16) | ty));
                out.extend(data);
                out.resize(8, 0);
            } else {
                out.extend(self.u32b(ty));
                out.extend(self.u32b(data.len() as u32));
                out.extend(data);
                out.resize(out.len().next_multiple_of(8), 0);
            }
            out
        }

        fn matrix(
            &self,
            name: &str,
            class: u8,
            dims: &[usize],
            real_ty: u32,
            real: &[u8],
        ) -> Vec<u8> {
            let mut flags = self.u32b(u32::from(class)).to_vec();
            flags.extend(self.u32b(0));
            let dims: Vec<u8> = dims.iter().flat_map(|&d| self.u32b(d as u32)).collect();
            let mut body = self.element(MI_UINT32, &flags, false);
            body.extend(self.element(MI_INT32, &dims, false));
            body.extend(self.element(MI_INT8, name.as_bytes(), true));
            body.extend(self.element(real_ty, real, true));
            let mut out = self.u32b(MI_MATRIX).to_vec();
            out.extend(self.u32b(body.len() as u32));
            out.extend(body);
            out
        }

        fn compressed(&self, element: &[u8]) -> Vec<u8> {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            z.write_all(element).unwrap();
            let z = z.finish().unwrap();
            let mut out = self.u32b(MI_COMPRESSED).to_vec();
            out.extend(self.u32b(z.len() as u32));
            out.extend(z);
            out
        }
    }

    /// The hand-chosen test pattern: value of `X(r, c, ch, n)` (0-based). `r` and `c` have
    /// different coefficients, so a missing or doubled transpose changes the values.
    fn pattern(r: usize, c: usize, ch: usize, n: usize) -> u8 {
        ((r + 2 * c + 67 * ch + 101 * n) % 256) as u8
    }

    /// `X` of `n` images in MATLAB's column-major order: `(r, c, ch, n)` at
    /// `r + 32 c + 1024 ch + 3072 n`.
    fn x_column_major(n: usize) -> Vec<u8> {
        let mut x = vec![0u8; n * IMAGE_BYTES];
        for img in 0..n {
            for ch in 0..3 {
                for c in 0..32 {
                    for r in 0..32 {
                        x[r + 32 * c + 1024 * ch + 3072 * img] = pattern(r, c, ch, img);
                    }
                }
            }
        }
        x
    }

    #[derive(Debug, Clone)]
    struct Spec {
        endian: Endian,
        compressed: bool,
        /// Storage type of `y` (class is always double): MI_DOUBLE or MI_UINT8.
        y_storage: u32,
        /// Variables to write before `X` and after `y`, to be skipped.
        extras: bool,
        x_name: &'static str,
        x_dims: Vec<usize>,
        labels: Vec<f64>,
    }

    impl Spec {
        fn official_like() -> Spec {
            Spec {
                endian: Endian::Little,
                compressed: false,
                y_storage: MI_DOUBLE,
                extras: false,
                x_name: "X",
                x_dims: vec![32, 32, 3, 2],
                labels: vec![10.0, 3.0],
            }
        }

        fn bytes(&self) -> Vec<u8> {
            self.assemble(self.variables())
        }

        /// The file's variables, each one uncompressed `miMATRIX` element.
        fn variables(&self) -> Vec<Vec<u8>> {
            let w = MatWriter { e: self.endian };
            let n: usize = self.x_dims.iter().product::<usize>() / IMAGE_BYTES.max(1);
            let x_bytes: Vec<u8> = if self.x_dims[..3] == [32, 32, 3] {
                x_column_major(n)
            } else {
                vec![7; self.x_dims.iter().product()]
            };
            let y_bytes = match self.y_storage {
                MI_DOUBLE => w.f64s(&self.labels),
                MI_UINT8 => self.labels.iter().map(|&v| v as u8).collect(),
                other => panic!("unsupported storage {other}"),
            };
            let mut vars = Vec::new();
            if self.extras {
                vars.push(w.matrix(
                    "junk",
                    MX_DOUBLE_CLASS,
                    &[3, 1],
                    MI_DOUBLE,
                    &w.f64s(&[1.5, -2.0, 3.0]),
                ));
                let title: Vec<u8> = "hello".encode_utf16().flat_map(|u| w.u16b(u)).collect();
                vars.push(w.matrix("title", 4, &[1, 5], MI_UINT16, &title));
            }
            vars.push(w.matrix(self.x_name, MX_UINT8_CLASS, &self.x_dims, MI_UINT8, &x_bytes));
            vars.push(w.matrix(
                "y",
                MX_DOUBLE_CLASS,
                &[self.labels.len(), 1],
                self.y_storage,
                &y_bytes,
            ));
            if self.extras {
                vars.push(w.matrix("Xy", MX_UINT8_CLASS, &[1, 3], MI_UINT8, &[1, 2, 3]));
            }
            vars
        }

        /// The header, then `vars` (each compressed when the spec says so).
        fn assemble(&self, vars: Vec<Vec<u8>>) -> Vec<u8> {
            let w = MatWriter { e: self.endian };
            let mut out = w.header();
            for v in vars {
                if self.compressed {
                    out.extend(w.compressed(&v));
                } else {
                    out.extend(v);
                }
            }
            out
        }
    }

    /// A fresh, empty scratch directory unique to `name`.
    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join("distillery-data-ood-tests").join(name);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Every pixel of every image is at its CHW position: channel plane, then row, then column.
    fn assert_pattern(set: &ImageSet, n: usize) {
        assert_eq!(set.len(), n);
        assert_eq!(set.pixels.len(), n * IMAGE_BYTES);
        for img in 0..n {
            let px = set.image(img);
            for ch in 0..3 {
                for r in 0..32 {
                    for c in 0..32 {
                        assert_eq!(
                            px[ch * PLANE + r * IMAGE_SIDE + c],
                            pattern(r, c, ch, img),
                            "image {img} channel {ch} row {r} col {c}"
                        );
                    }
                }
            }
        }
        // Spot checks by hand: row 0 / col 1 is CHW byte 1, row 1 / col 0 is CHW byte 32.
        assert_eq!(set.image(0)[1], 2);
        assert_eq!(set.image(0)[32], 1);
        assert_eq!(set.image(0)[PLANE], 67);
    }

    fn svhn_err(path: &Path) -> String {
        let e = read_svhn_file(path).expect_err("reading must fail");
        assert!(matches!(e, DataError::MatFile { .. }), "unexpected error kind: {e:?}");
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "error does not name the file: {msg}");
        msg
    }

    #[test]
    fn ood_svhn_uncompressed_layout_and_labels() {
        let dir = scratch("uncompressed");
        let path = write(&dir, "test_32x32.mat", &Spec::official_like().bytes());
        let set = read_svhn_file(&path).unwrap();
        assert_pattern(&set, 2);
        assert_eq!(set.labels, vec![0, 3], "10 means digit 0");
        assert_eq!(set.num_classes, 10);
        assert_eq!(set.class_names, SVHN_CLASSES.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(set.coarse_labels.is_none());

        // The generic reader sees the raw column-major data and the classes.
        let arrays = read_mat_arrays(&path, &["X", "y"]).unwrap();
        assert_eq!(arrays.len(), 2);
        assert_eq!((arrays[0].name.as_str(), arrays[0].class), ("X", MX_UINT8_CLASS));
        assert_eq!(arrays[0].dims, vec![32, 32, 3, 2]);
        assert_eq!(arrays[0].data, MatData::U8(x_column_major(2)));
        assert_eq!((arrays[1].name.as_str(), arrays[1].class), ("y", MX_DOUBLE_CLASS));
        assert_eq!(arrays[1].dims, vec![2, 1]);
        assert_eq!(arrays[1].data, MatData::F64(vec![10.0, 3.0]));
    }

    #[test]
    fn ood_svhn_compressed_with_narrow_label_storage_and_skipped_variables() {
        let dir = scratch("compressed");
        for y_storage in [MI_UINT8, MI_DOUBLE] {
            let spec = Spec { compressed: true, y_storage, extras: true, ..Spec::official_like() };
            let bytes = spec.bytes();
            let path = write(&dir, "test_32x32.mat", &bytes);
            let set = read_svhn_file(&path).unwrap();
            assert_pattern(&set, 2);
            assert_eq!(set.labels, vec![0, 3]);
            // Also uncompressed with the same extra variables.
            let spec = Spec { compressed: false, ..spec };
            let path = write(&dir, "plain.mat", &spec.bytes());
            assert_eq!(read_svhn_file(&path).unwrap(), set);
        }
        // The skipped variables are readable on their own.
        let path = dir.join("plain.mat");
        let junk = read_mat_arrays(&path, &["junk", "Xy"]).unwrap();
        assert_eq!(junk[0].data, MatData::F64(vec![1.5, -2.0, 3.0]));
        assert_eq!(junk[1].data, MatData::U8(vec![1, 2, 3]));
        // A non-numeric variable that is asked for is an error naming it.
        let e = read_mat_arrays(&path, &["title"]).unwrap_err().to_string();
        assert!(e.contains("\"title\"") && e.contains("not numeric"), "{e}");
    }

    #[test]
    fn ood_svhn_big_endian_files() {
        let dir = scratch("big-endian");
        for compressed in [false, true] {
            for y_storage in [MI_DOUBLE, MI_UINT8] {
                let spec =
                    Spec { endian: Endian::Big, compressed, y_storage, ..Spec::official_like() };
                let bytes = spec.bytes();
                assert_eq!(&bytes[126..128], b"MI");
                let path = write(&dir, "test_32x32.mat", &bytes);
                let set = read_svhn_file(&path).unwrap();
                assert_pattern(&set, 2);
                assert_eq!(set.labels, vec![0, 3]);
            }
        }
    }

    #[test]
    fn ood_svhn_single_image_without_trailing_singleton_dimension() {
        let dir = scratch("single");
        let spec = Spec { x_dims: vec![32, 32, 3], labels: vec![7.0], ..Spec::official_like() };
        let path = write(&dir, "one.mat", &spec.bytes());
        let set = read_svhn_file(&path).unwrap();
        assert_pattern(&set, 1);
        assert_eq!(set.labels, vec![7]);
    }

    /// `scipy.io.savemat` output, as an independent check of the format and of MATLAB's
    /// column-major order. Generated with scipy 1.17.1:
    /// ```python
    /// import numpy as np, scipy.io as sio
    /// r, c, ch, n = np.meshgrid(*(np.arange(k) for k in (32, 32, 3, 2)), indexing="ij")
    /// X = ((r + 2 * c + 67 * ch + 101 * n) % 256).astype(np.uint8)   # X[r, c, ch, n]
    /// sio.savemat("svhn_z.mat", {"X": X, "y": np.array([[10.0], [3.0]])}, do_compression=True)
    /// sio.savemat("small.mat", {"a": np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8),
    ///                           "b": np.array([[10.0], [3.0]])})
    /// ```
    /// numpy's `X[r, c, ch, n]` is MATLAB's `X(r+1, c+1, ch+1, n+1)`; savemat writes it
    /// column-major. Conversely, `scipy.io.loadmat` reads the files of [`MatWriter`]
    /// (checked by hand when writing these tests: same X, and y as float64 or uint8).
    const SCIPY_SVHN_COMPRESSED: &[&str] = &[
        "4d41544c414220352e30204d41542d66696c6520506c6174666f726d3a20706f7369782c2043726561746564",
        "206f6e3a2053756e204e6f762032322030343a33353a35342032303236000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000001494d0f000000",
        "a1020000789cedd8555095611446e19f14a4fb902222222222222222222262b7627777777777272122222222",
        "2222227677777777fbab5caf7dcf70983d8739cffdf7ce2c53455102358aa2af7e1ba867a8fcffe8a967ae9e",
        "6bdee9a8a7ad9e96fa1795f7bfa2f9fb83b68eae9e7e2103c3c246c626a666e6169656d636b6761a7b074727",
        "679722acae4559dd8ab1ba1767f528c1ea5992d5ab14ab7769569f32acbe6559fdcab1fa97670da8c01a5891",
        "35a8126b7065d6902aaca15559c3aab18657678da8c11a5993b5566dd63a7559ebd5676dd090b55163d6264d",
        "599b35678d6ac1dab2156beb36406ddbb5efd091b55367d62e5d59bb7567edd193b5576fd63e7d59fbf5671d",
        "309075d060d6214359870d671d319275d468d6316359c78d679d309175d264d6295359a74d679d319375d66c",
        "d6397359e7cd675db09075d162d6254b59972d675db19275d56ad6356b59d7ad078a8e898ddbc01abf913561",
        "136be266d6a42dacc95b5953b6b1a66e674ddbc19abe933563176be66ed6ac3dacd97b5973f6b1e6ee673d70",
        "90f5d061d62347598f1d673d7192f5d469d6336759cf9d67bd7091f5d265d62b5759af5d67bd7193f5d66dd6",
        "3b7759efdd2f78dff3f7fbce1a1dc31a1b27cc43bc300f09c23c240af39024cc43b2300f29c23ca40af39026",
        "cc43ba300f19c23c640af39025cc43b6300f39c23ce416bceff9fb7d677df090f5d163d6274f599f3d677df1",
        "92f5d56bd6376f59dfbd67fdf091f5d367d62f5f59bf7d67fdf193f5d76f56458b555b8755570fe85fba6335",
        "3266353165353367b5b064b5b266b5b165b5d3b0da3bb03a3ab13abb0879d555c8ab6e425e7517f2aa879057",
        "3d85bcea25e4556f21affa0879d557c8ab7e425ef517f26a8090570385bc1a24e4d56021af8608793554c8ab",
        "61425e0d17f26a84905723ff00ee4bcee90f0000002d000000789ce36360607000623620e680d220c00ae533",
        "0131231833325402694e2016608001150708cde10000303601b3",
    ];
    const SCIPY_SMALL_UNCOMPRESSED: &[&str] = &[
        "4d41544c414220352e30204d41542d66696c6520506c6174666f726d3a20706f7369782c2043726561746564",
        "206f6e3a2053756e204e6f762032322030343a33353a35342032303236000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000000000000000001494d0e000000",
        "3800000006000000080000000900000000000000050000000800000002000000030000000100010061000000",
        "020000000600000001040205030600000e000000400000000600000008000000060000000000000005000000",
        "0800000002000000010000000100010062000000090000001000000000000000000024400000000000000840",
    ];

    fn unhex(lines: &[&str]) -> Vec<u8> {
        let s: String = lines.concat();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn ood_scipy_reference_files() {
        let dir = scratch("scipy");
        let path = write(&dir, "svhn_z.mat", &unhex(SCIPY_SVHN_COMPRESSED));
        let set = read_svhn_file(&path).unwrap();
        assert_pattern(&set, 2);
        assert_eq!(set.labels, vec![0, 3]);

        let small = unhex(SCIPY_SMALL_UNCOMPRESSED);
        let arrays = parse_mat(&mut &small[..], small.len() as u64, Path::new("small.mat"), &["a", "b"]).unwrap();
        assert_eq!(arrays.len(), 2);
        assert_eq!(arrays[0].name, "a");
        assert_eq!(arrays[0].dims, vec![2, 3]);
        assert_eq!(arrays[0].data, MatData::U8(vec![1, 4, 2, 5, 3, 6]), "column-major");
        assert_eq!(arrays[1].name, "b");
        assert_eq!((arrays[1].class, arrays[1].dims.clone()), (MX_DOUBLE_CLASS, vec![2, 1]));
        assert_eq!(arrays[1].data, MatData::F64(vec![10.0, 3.0]));
    }

    #[test]
    fn ood_svhn_truncated_files_are_errors_naming_the_file() {
        let dir = scratch("truncated");
        for compressed in [false, true] {
            let bytes = Spec { compressed, ..Spec::official_like() }.bytes();
            let len = bytes.len();
            for cut in [0, 50, 127, 128 + 5, 128 + 40, len / 2, len - 9, len - 3, len - 1] {
                let path = write(&dir, &format!("cut-{compressed}-{cut}.mat"), &bytes[..cut]);
                let msg = svhn_err(&path);
                let expected = if cut < 128 { "bad header" } else { "truncated" };
                assert!(
                    msg.contains(expected),
                    "cut at {cut} of {len} (compressed {compressed}): {msg}"
                );
            }
        }
    }

    #[test]
    fn ood_svhn_malformed_files_are_errors_naming_the_file() {
        let dir = scratch("malformed");
        let check = |name: &str, bytes: Vec<u8>, expected: &[&str]| {
            let path = write(&dir, name, &bytes);
            let msg = svhn_err(&path);
            for x in expected {
                assert!(msg.contains(x), "{name}: {msg:?} lacks {x:?}");
            }
        };
        for compressed in [false, true] {
            let base = Spec { compressed, ..Spec::official_like() };
            check(
                "wrong-name.mat",
                Spec { x_name: "Z", ..base }.bytes(),
                &["missing variable \"X\""],
            );
            let spec = Spec { x_dims: vec![32, 32, 1, 2], compressed, ..Spec::official_like() };
            check("wrong-dims.mat", spec.bytes(), &["\"X\"", "32x32x1x2", "32x32x3xN"]);
            let spec = Spec { labels: vec![10.0, 3.0, 4.0], compressed, ..Spec::official_like() };
            check("label-count.mat", spec.bytes(), &["\"y\"", "3x1", "expected 2x1"]);
            let spec = Spec { labels: vec![11.0, 3.0], compressed, ..Spec::official_like() };
            check("label-range.mat", spec.bytes(), &["\"y\" element 0 = 11"]);
            let spec = Spec { labels: vec![1.0, 0.0], compressed, ..Spec::official_like() };
            check("label-zero.mat", spec.bytes(), &["\"y\" element 1 = 0"]);
        }
        // A missing y.
        let w = MatWriter { e: Endian::Little };
        let mut only_x = w.header();
        only_x.extend(w.matrix("X", MX_UINT8_CLASS, &[32, 32, 3, 1], MI_UINT8, &x_column_major(1)));
        check("no-y.mat", only_x, &["missing variable \"y\""]);
        // Real-part size disagreeing with the dimensions.
        let mut short_x = w.header();
        short_x.extend(w.matrix(
            "X",
            MX_UINT8_CLASS,
            &[32, 32, 3, 2],
            MI_UINT8,
            &x_column_major(1),
        ));
        check("short-x.mat", short_x, &["real part of variable \"X\"", "3072 bytes"]);
        // Headers: not a MAT file, MAT v7.3, unknown element.
        let good = Spec::official_like().bytes();
        let mut bad = good.clone();
        bad[126..128].copy_from_slice(b"XY");
        check("bad-endian.mat", bad, &["bad header", "endian indicator"]);
        let mut v73 = good.clone();
        v73[124..126].copy_from_slice(&0x0200u16.to_le_bytes());
        check("v73.mat", v73, &["bad header", "v7.3"]);
        let mut unknown = good.clone();
        unknown[128] = 99;
        check("unknown.mat", unknown, &["element at byte 128", "type 99"]);
        // Corrupt zlib data.
        let mut corrupt = Spec { compressed: true, ..Spec::official_like() }.bytes();
        for b in &mut corrupt[140..160] {
            *b ^= 0x5A;
        }
        check("corrupt.mat", corrupt, &["MAT file"]);
        // A file that does not exist is an I/O error naming it.
        let missing = dir.join("absent.mat");
        let e = read_svhn_file(&missing).unwrap_err();
        assert!(matches!(e, DataError::Io { .. }) && e.to_string().contains("absent.mat"), "{e}");
    }

    #[test]
    fn ood_svhn_location_and_presence() {
        let root = scratch("location");
        assert_eq!(svhn_present(&root), None);
        let e = read_svhn(&root, SvhnPart::Test).unwrap_err();
        assert!(matches!(e, DataError::MissingFile { .. }), "{e:?}");
        assert!(e.to_string().contains("test_32x32.mat") && e.to_string().contains("svhn/"), "{e}");

        // <root>/svhn/test_32x32.mat
        std::fs::create_dir_all(svhn_dir(&root)).unwrap();
        let bytes = Spec::official_like().bytes();
        let p = write(&svhn_dir(&root), "test_32x32.mat", &bytes);
        assert_eq!(svhn_present(&root), Some(p));
        let set = read_svhn(&root, SvhnPart::Test).unwrap();
        assert_pattern(&set, 2);
        assert!(matches!(read_svhn(&root, SvhnPart::Train), Err(DataError::MissingFile { .. })));

        // <dir>/train_32x32.mat given the SVHN directory itself.
        write(&svhn_dir(&root), "train_32x32.mat", &bytes);
        assert_eq!(read_svhn(&svhn_dir(&root), SvhnPart::Train).unwrap(), set);
        assert_eq!(read_svhn(&root, SvhnPart::Train).unwrap(), set);
        assert_eq!(SvhnPart::Train.file_name(), "train_32x32.mat");
    }

    /// The official test file, when the data root holds it (`$DISTILLERY_DATA`, else the
    /// workspace's sibling `shared/data`): 26 032 images with the published class counts.
    #[test]
    fn ood_svhn_official_test_file_if_present() {
        let root = match std::env::var_os(crate::location::DATA_ENV).filter(|v| !v.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        };
        let Some(path) = svhn_present(&root) else { return };
        let set = read_svhn_file(&path).unwrap();
        assert_eq!(set.len(), 26_032);
        // Digits 0..9 (file labels 10, 1, …, 9).
        assert_eq!(
            set.class_counts(),
            vec![1744, 5099, 4149, 2882, 2523, 2384, 1977, 2019, 1660, 1595]
        );
    }

    // -----------------------------------------------------------------------------------------
    // Noise
    // -----------------------------------------------------------------------------------------

    fn mean_std(bytes: &[u8]) -> (f64, f64) {
        let n = bytes.len() as f64;
        let mean = bytes.iter().map(|&b| f64::from(b)).sum::<f64>() / n;
        let var = bytes.iter().map(|&b| (f64::from(b) - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn ood_noise_is_deterministic_and_extends() {
        for kind in [NoiseKind::Uniform, NoiseKind::Gaussian] {
            let a = noise_images(kind, 7, 42);
            assert_eq!(a, noise_images(kind, 7, 42));
            assert_eq!(a.len(), 7);
            assert_eq!(a.pixels.len(), 7 * IMAGE_BYTES);
            assert_eq!(a.labels, vec![0; 7]);
            assert_eq!(a.num_classes, 10);
            assert!(a.class_names.is_empty() && a.coarse_labels.is_none());
            // Image i depends only on (seed, kind, i).
            assert_eq!(noise_images(kind, 12, 42).slice(0..7), a);
            // Other seeds differ, image by image.
            let b = noise_images(kind, 7, 43);
            for i in 0..7 {
                assert_ne!(a.image(i), b.image(i), "{kind:?} image {i}");
            }
            // Images within a set differ.
            assert_ne!(a.image(0), a.image(1));
        }
        assert_ne!(noise_images(NoiseKind::Uniform, 2, 5), noise_images(NoiseKind::Gaussian, 2, 5));
        assert!(noise_images(NoiseKind::Gaussian, 0, 1).is_empty());
    }

    #[test]
    fn ood_uniform_noise_statistics() {
        let set = noise_images(NoiseKind::Uniform, 20, 7);
        let px = &set.pixels;
        // U{0..255}: mean 127.5, std sqrt((256² - 1) / 12) = 73.90.
        let (mean, std) = mean_std(px);
        assert!((mean - 127.5).abs() < 1.2, "mean {mean}");
        assert!((std - 73.90).abs() < 0.8, "std {std}");
        let mut hist = [0usize; 256];
        for &p in px {
            hist[p as usize] += 1;
        }
        let expected = px.len() as f64 / 256.0; // 240
        for (v, &h) in hist.iter().enumerate() {
            assert!((h as f64 - expected).abs() < 0.35 * expected, "value {v}: {h} vs {expected}");
        }
    }

    #[test]
    fn ood_gaussian_noise_statistics() {
        let set = noise_images(NoiseKind::Gaussian, 20, 7);
        let px = &set.pixels;
        // round(255 clip(N(0.5, 0.25²), 0, 1)): symmetric about 127.5; std = 255 · 0.25 ·
        // sqrt(E[clip(Z, -2, 2)²]) with E[clip(Z, -2, 2)²] = (2Φ(2) - 1) - 4φ(2) + 8(1 - Φ(2))
        // = 0.920537 → 61.16; bytes are 0 when 255 x < 0.5, i.e. Z < -1.992: Φ(-1.992) =
        // 2.32 %, as many are 255.
        let (mean, std) = mean_std(px);
        assert!((mean - 127.5).abs() < 1.0, "mean {mean}");
        assert!((std - 61.16).abs() < 0.8, "std {std}");
        let n = px.len() as f64;
        let zeros = px.iter().filter(|&&p| p == 0).count() as f64 / n;
        let full = px.iter().filter(|&&p| p == 255).count() as f64 / n;
        for frac in [zeros, full] {
            assert!((frac - 0.0232).abs() < 0.004, "saturated fraction {frac}");
        }
        // Unlike uniform noise, the middle is far denser than the tails.
        let mid = px.iter().filter(|&&p| (96..160).contains(&p)).count() as f64 / n;
        assert!((mid - 0.38).abs() < 0.02, "fraction in 96..160: {mid}");
    }

    // -----------------------------------------------------------------------------------------
    // Fuzzing (see `crate::fuzz_tests`)
    // -----------------------------------------------------------------------------------------

    use crate::fuzz_tests::{Mutation, apply, check_error_names, declared_u32, mutations, runner};
    use proptest::prelude::*;
    use proptest::sample::Index;

    /// Rewrites the last dimension of the uncompressed `miMATRIX` element `elem` to
    /// `last_dim`, with the real part's byte count (and, with `outer`, the element's) made to
    /// agree: sizes consistent with each other but not with the data. Returns the real part's
    /// declared byte count, when its tag could say it (else only the dimensions changed), and
    /// the bytes of data the element really holds (4 for a small data element).
    fn declare_shape(e: Endian, elem: &mut [u8], last_dim: u32, outer: bool) -> Option<(u64, u64)> {
        let rd = |b: &[u8], o: usize| e.u32([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let w = MatWriter { e };
        let put = |b: &mut [u8], o: usize, v: u32| b[o..o + 4].copy_from_slice(&w.u32b(v));
        // Tag (8), array flags (8 + 8), dimensions tag (8) then the dimensions.
        let dims_bytes = rd(elem, 28) as usize;
        let nd = dims_bytes / 4;
        put(elem, 32 + 4 * (nd - 1), last_dim);
        let numel = (0..nd).fold(1u64, |a, d| a.saturating_mul(u64::from(rd(elem, 32 + 4 * d))));
        let name_at = 32 + dims_bytes.next_multiple_of(8);
        let name_first = rd(elem, name_at);
        let real_at = name_at
            + if name_first >> 16 != 0 { 8 } else { 8 + (rd(elem, name_at + 4) as usize).next_multiple_of(8) };
        let real_first = rd(elem, real_at);
        let small = real_first >> 16 != 0;
        let ty = if small { real_first & 0xFFFF } else { real_first };
        let held = if small { 4 } else { u64::from(rd(elem, real_at + 4)) };
        let nbytes = numel.saturating_mul(element_size(ty)? as u64);
        if small && nbytes <= 0xFFFF {
            put(elem, real_at, ((nbytes as u32) << 16) | ty);
        } else if !small && nbytes <= u64::from(u32::MAX) {
            put(elem, real_at + 4, nbytes as u32);
        } else {
            return None;
        }
        if outer {
            let total = (real_at - 8 + 8) as u64 + nbytes.next_multiple_of(8);
            put(elem, 4, total.min(u64::from(u32::MAX)) as u32);
        }
        Some((nbytes, held))
    }

    #[derive(Debug, Clone)]
    enum MatDamage {
        /// Blind mutations of the whole file.
        Blind(Vec<Mutation>),
        /// A variable's last dimension (and the byte counts with it) replaced.
        Shape { var: Index, last_dim: u32, outer: bool },
    }

    fn mat_case() -> impl Strategy<Value = (Spec, MatDamage)> {
        let labels = prop::collection::vec(1u8..=10, 0..=3);
        let spec = (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), labels)
            .prop_map(|(big, compressed, narrow, extras, squeeze, labels)| {
                let n = labels.len();
                Spec {
                    endian: if big { Endian::Big } else { Endian::Little },
                    compressed,
                    y_storage: if narrow { MI_UINT8 } else { MI_DOUBLE },
                    extras,
                    x_name: "X",
                    x_dims: if squeeze && n == 1 { vec![32, 32, 3] } else { vec![32, 32, 3, n] },
                    labels: labels.into_iter().map(f64::from).collect(),
                }
            });
        let damage = prop_oneof![
            mutations().prop_map(MatDamage::Blind),
            (any::<Index>(), declared_u32(), any::<bool>())
                .prop_map(|(var, last_dim, outer)| MatDamage::Shape { var, last_dim, outer }),
        ];
        (spec, damage)
    }

    #[test]
    fn fuzz_mat_svhn_files() {
        let dir = crate::fuzz_tests::scratch("mat");
        let path = dir.join("test_32x32.mat");
        runner(512)
            .run(&mat_case(), |(spec, damage)| {
                let mut vars = spec.variables();
                let mut declared = None;
                let bytes = match &damage {
                    MatDamage::Blind(m) => {
                        let mut b = spec.assemble(vars);
                        apply(&mut b, m);
                        b
                    }
                    MatDamage::Shape { var, last_dim, outer } => {
                        let k = var.index(vars.len());
                        // (variable 1 of the extras, "title", is a char array no read asks
                        // for: skipped unread, its real part is never checked)
                        let read = !(spec.extras && k == 1);
                        declared = declare_shape(spec.endian, &mut vars[k], *last_dim, *outer)
                            .filter(|&(d, held)| read && d > held)
                            .map(|(d, _)| d);
                        spec.assemble(vars)
                    }
                };
                std::fs::write(&path, &bytes).unwrap();
                let set = read_svhn_file(&path);
                check_error_names(&set, &path)?;
                let arrays = read_mat_arrays(&path, &["X", "y", "junk", "Xy"]);
                check_error_names(&arrays, &path)?;
                if let Some(d) = declared {
                    // More bytes declared than written: an error; one beyond the length of an
                    // uncompressed file is found before reading (and allocating for) them.
                    prop_assert!(arrays.is_err(), "{d} declared bytes accepted");
                    let msg = arrays.as_ref().unwrap_err().to_string();
                    let beyond = !spec.compressed && d > bytes.len() as u64;
                    prop_assert!(!beyond || msg.contains("declares"), "not checked up front: {msg}");
                }
                if let Ok(set) = set {
                    prop_assert_eq!(set.pixels.len(), set.len() * IMAGE_BYTES);
                    prop_assert!(set.labels.iter().all(|&l| l < 10));
                }
                if let Ok(arrays) = arrays {
                    for a in arrays {
                        prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
                    }
                }
                Ok(())
            })
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
