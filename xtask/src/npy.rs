//! A small self-contained reader/writer for NumPy's `.npy` format (format versions 1.0,
//! 2.0 and 3.0 as specified in NEP 1, "A Simple File Format for NumPy Arrays", and
//! `numpy.lib.format`).
//!
//! Layout: the magic `\x93NUMPY`, a major and minor version byte, the header length
//! (little-endian `u16` for 1.0, `u32` for 2.0/3.0), then an ASCII (1.0/2.0) or UTF-8 (3.0)
//! Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }` padded
//! with spaces and a newline, then the raw data.
//!
//! Supported: little-endian (`<`, or `|` for one-byte types) data in C order only.
//! Reading: `[N, K]` `f4`/`f8` arrays into `Vec<f32>`, and 1-D `i1 i2 i4 i8 u1 u2 u4 u8`
//! arrays into `Vec<i64>`. Writing: `[N, K]` `f32` and 1-D `i64`, byte-for-byte as `np.save`
//! writes them (format 1.0, 64-byte aligned header with numpy's growth-axis padding).

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};

const MAGIC: &[u8] = b"\x93NUMPY";
/// numpy's `ARRAY_ALIGN`: the total header size is a multiple of this.
const ARRAY_ALIGN: usize = 64;
/// numpy's `GROWTH_AXIS_MAX_DIGITS`: extra spaces reserved so the shape can grow in place.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The dtype descriptor, e.g. `<f4`.
    pub descr: String,
    /// Whether the data is stored in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The array shape.
    pub shape: Vec<usize>,
}

impl Header {
    /// Shape formatted like Python, e.g. `(3, 2)` or `(5,)`.
    pub fn shape_str(&self) -> String {
        shape_str(&self.shape)
    }
}

fn shape_str(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Parses the preamble and header of `.npy` bytes; returns the header and the byte offset
/// at which the data starts.
pub fn parse_header(bytes: &[u8]) -> Result<(Header, usize)> {
    ensure!(
        bytes.len() >= 10 && &bytes[..6] == MAGIC,
        "not a .npy file (missing the \\x93NUMPY magic)"
    );
    let (major, minor) = (bytes[6], bytes[7]);
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            ensure!(bytes.len() >= 12, "truncated .npy preamble");
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        _ => bail!("unsupported .npy format version {major}.{minor}"),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| anyhow!("truncated .npy header ({len} bytes announced)"))?;
    let text = std::str::from_utf8(&bytes[start..end]).context(".npy header is not valid text")?;
    let header = parse_dict(text).with_context(|| format!("malformed .npy header {text:?}"))?;
    Ok((header, end))
}

/// A tiny parser for the header's Python dict literal.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<()> {
        ensure!(self.eat(c), "expected '{}' at byte {}", c as char, self.i);
        Ok(())
    }
    fn string(&mut self) -> Result<String> {
        let q = self.peek().filter(|&q| q == b'\'' || q == b'"');
        let q = q.ok_or_else(|| anyhow!("expected a quoted string at byte {}", self.i))?;
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != q {
            self.i += 1;
        }
        ensure!(self.i < self.s.len(), "unterminated string");
        let out = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.i += 1;
        Ok(out)
    }
    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_alphanumeric() {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn tuple(&mut self) -> Result<Vec<usize>> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            if self.eat(b')') {
                return Ok(dims);
            }
            let w = self.word();
            // numpy may write e.g. `3L` on Python 2.
            let d = w.trim_end_matches('L');
            dims.push(
                d.parse()
                    .with_context(|| format!("bad dimension {w:?} in shape"))?,
            );
            if !self.eat(b',') {
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

fn parse_dict(text: &str) -> Result<Header> {
    let mut c = Cursor {
        s: text.as_bytes(),
        i: 0,
    };
    c.expect(b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        if c.eat(b'}') {
            break;
        }
        let key = c.string()?;
        c.expect(b':')?;
        match key.as_str() {
            "descr" => descr = Some(c.string()?),
            "fortran_order" => {
                fortran = Some(match c.word().as_str() {
                    "True" => true,
                    "False" => false,
                    other => bail!("fortran_order must be True or False, found {other:?}"),
                })
            }
            "shape" => shape = Some(c.tuple()?),
            other => bail!("unexpected header key {other:?}"),
        }
        if !c.eat(b',') {
            c.expect(b'}')?;
            break;
        }
    }
    Ok(Header {
        descr: descr.ok_or_else(|| anyhow!("header has no 'descr'"))?,
        fortran_order: fortran.ok_or_else(|| anyhow!("header has no 'fortran_order'"))?,
        shape: shape.ok_or_else(|| anyhow!("header has no 'shape'"))?,
    })
}

/// Splits a descriptor such as `<f4` into (kind, item size) after checking byte order.
fn dtype(header: &Header) -> Result<(char, usize)> {
    let d = header.descr.as_bytes();
    ensure!(
        d.len() >= 3,
        "unsupported dtype '{}' (shape {})",
        header.descr,
        header.shape_str()
    );
    let (order, kind) = (d[0], d[1] as char);
    // (`get`: a non-ASCII descriptor has no char boundary at byte 2)
    let size: usize = header.descr.get(2..).and_then(|s| s.parse().ok()).ok_or_else(|| {
        anyhow!(
            "unsupported dtype '{}' (shape {})",
            header.descr,
            header.shape_str()
        )
    })?;
    match order {
        b'<' => {}
        b'|' if size == 1 => {}
        b'=' if cfg!(target_endian = "little") => {}
        _ => bail!(
            "unsupported byte order in dtype '{}' (shape {}): only little-endian data is supported",
            header.descr,
            header.shape_str()
        ),
    }
    Ok((kind, size))
}

/// Validates order and data length; returns the element count and the data bytes.
fn data<'a>(header: &Header, bytes: &'a [u8], offset: usize, size: usize) -> Result<&'a [u8]> {
    ensure!(
        !header.fortran_order,
        "dtype '{}' shape {}: Fortran-order arrays are not supported; save a C-contiguous \
         array (np.ascontiguousarray)",
        header.descr,
        header.shape_str()
    );
    let count = header
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .and_then(|c| c.checked_mul(size))
        .ok_or_else(|| anyhow!("shape {} is too large", header.shape_str()))?;
    let body = &bytes[offset..];
    ensure!(
        body.len() == count,
        "dtype '{}' shape {} needs {} data bytes but the file has {}",
        header.descr,
        header.shape_str(),
        count,
        body.len()
    );
    Ok(body)
}

/// Decodes `.npy` bytes holding a 2-D `f4` or `f8` array into row-major `f32` values and
/// the shape `[N, K]` (`f8` values are rounded to `f32`).
pub fn decode_f32_2d(bytes: &[u8]) -> Result<(Vec<f32>, [usize; 2])> {
    let (header, offset) = parse_header(bytes)?;
    let (kind, size) = dtype(&header)?;
    let [n, k] = header.shape[..] else {
        bail!(
            "expected a 2-D float array, found dtype '{}' with shape {}",
            header.descr,
            header.shape_str()
        );
    };
    let body = data(&header, bytes, offset, size)?;
    let values = match (kind, size) {
        ('f', 4) => body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect(),
        ('f', 8) => body
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        _ => bail!(
            "expected a float32 or float64 array, found dtype '{}' with shape {}",
            header.descr,
            header.shape_str()
        ),
    };
    Ok((values, [n, k]))
}

/// Decodes `.npy` bytes holding a 1-D integer array (`i1 i2 i4 i8 u1 u2 u4 u8`) into `i64`.
pub fn decode_int_1d(bytes: &[u8]) -> Result<Vec<i64>> {
    let (header, offset) = parse_header(bytes)?;
    let (kind, size) = dtype(&header)?;
    ensure!(
        header.shape.len() == 1,
        "expected a 1-D integer array, found dtype '{}' with shape {}",
        header.descr,
        header.shape_str()
    );
    ensure!(
        matches!((kind, size), ('i' | 'u', 1 | 2 | 4 | 8)),
        "expected an integer array (i1/i2/i4/i8/u1/u2/u4/u8), found dtype '{}' with shape {}",
        header.descr,
        header.shape_str()
    );
    let body = data(&header, bytes, offset, size)?;
    body.chunks_exact(size)
        .enumerate()
        .map(|(i, c)| {
            let mut buf = [0u8; 8];
            buf[..size].copy_from_slice(c);
            if kind == 'u' {
                let v = u64::from_le_bytes(buf);
                i64::try_from(v).map_err(|_| {
                    anyhow!(
                        "value {v} at index {i} of dtype '{}' overflows i64",
                        header.descr
                    )
                })
            } else {
                // Sign-extend from `size` bytes.
                let shift = 64 - 8 * size as u32;
                Ok((i64::from_le_bytes(buf) << shift) >> shift)
            }
        })
        .collect()
}

fn encode(descr: &str, shape: &[usize], body: impl Iterator<Item = u8>) -> Vec<u8> {
    // Exactly numpy's `_write_array_header` + `_wrap_header` for format 1.0.
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}",
        shape_str(shape)
    );
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        header.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    let hlen = header.len() + 1;
    let padlen = ARRAY_ALIGN - ((MAGIC.len() + 2 + 2 + hlen) % ARRAY_ALIGN);
    let total = hlen + padlen;
    let mut out = Vec::with_capacity(10 + total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(total as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padlen));
    out.push(b'\n');
    out.extend(body);
    out
}

/// Encodes a row-major `[N, K]` `f32` array as `.npy` bytes (dtype `<f4`).
#[cfg_attr(not(test), allow(dead_code))] // used by tests and other subcommands
pub fn encode_f32_2d(values: &[f32], shape: [usize; 2]) -> Result<Vec<u8>> {
    ensure!(
        values.len() == shape[0] * shape[1],
        "{} values do not fill shape {}",
        values.len(),
        shape_str(&shape)
    );
    Ok(encode(
        "<f4",
        &shape,
        values.iter().flat_map(|v| v.to_le_bytes()),
    ))
}

/// Encodes a 1-D `i64` array as `.npy` bytes (dtype `<i8`).
#[cfg_attr(not(test), allow(dead_code))] // used by tests and other subcommands
pub fn encode_i64_1d(values: &[i64]) -> Vec<u8> {
    encode(
        "<i8",
        &[values.len()],
        values.iter().flat_map(|v| v.to_le_bytes()),
    )
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a 2-D `f4`/`f8` `.npy` file into row-major `f32` values and its shape `[N, K]`.
pub fn read_f32_2d(path: &Path) -> Result<(Vec<f32>, [usize; 2])> {
    decode_f32_2d(&read_bytes(path)?).with_context(|| format!("in {}", path.display()))
}

/// Reads a 1-D integer `.npy` file into `i64` values.
pub fn read_int_1d(path: &Path) -> Result<Vec<i64>> {
    decode_int_1d(&read_bytes(path)?).with_context(|| format!("in {}", path.display()))
}

/// Writes a row-major `[N, K]` `f32` array to a `.npy` file.
#[cfg_attr(not(test), allow(dead_code))] // used by tests and other subcommands
pub fn write_f32_2d(path: &Path, values: &[f32], shape: [usize; 2]) -> Result<()> {
    let bytes =
        encode_f32_2d(values, shape).with_context(|| format!("writing {}", path.display()))?;
    write_atomic(path, &bytes)
}

/// Writes a 1-D `i64` array to a `.npy` file.
#[cfg_attr(not(test), allow(dead_code))] // used by tests and other subcommands
pub fn write_i64_1d(path: &Path, values: &[i64]) -> Result<()> {
    write_atomic(path, &encode_i64_1d(values))
}

/// Write to a temporary name beside `path`, then rename (no partial file is ever visible).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// Helpers of xtask's property-based fuzz tests (here and in `compose`): a valid file is
/// damaged and a reader must return, `Ok` or an error naming the file, never panic. Each
/// property runs `DISTILLERY_FUZZ_CASES` cases (default: the figure the test passes, a few
/// hundred, so all of them take seconds in a debug build); `DISTILLERY_FUZZ_SEED` varies the
/// otherwise fixed seed.
#[cfg(test)]
pub(crate) mod fuzz {
    use std::path::Path;

    use proptest::prelude::*;
    use proptest::sample::Index;
    use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

    /// A runner of `default_cases` cases (or `DISTILLERY_FUZZ_CASES`), writing no regression
    /// files into the source tree.
    pub(crate) fn runner(default_cases: u32) -> TestRunner {
        let var = |name: &str| -> Option<u64> {
            let v = std::env::var(name).ok()?;
            Some(v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")))
        };
        TestRunner::new(Config {
            cases: var("DISTILLERY_FUZZ_CASES").map_or(default_cases, |c| c as u32),
            rng_seed: RngSeed::Fixed(var("DISTILLERY_FUZZ_SEED").unwrap_or(0xd157_111e)),
            failure_persistence: None,
            ..Config::default()
        })
    }

    /// Blind damage to a file: bits flipped, bytes spliced in, then a cut and a tail.
    #[derive(Debug, Clone)]
    pub(crate) struct Damage {
        flips: Vec<(Index, u8)>,
        splice: Option<(Index, Vec<u8>)>,
        cut: Option<Index>,
        tail: Vec<u8>,
    }

    /// Damage that changes at least something most of the time.
    pub(crate) fn damage() -> impl Strategy<Value = Damage> {
        let bytes = prop::collection::vec(any::<u8>(), 0..12);
        (
            prop::collection::vec((any::<Index>(), 0u8..8), 0..4),
            prop::option::of((any::<Index>(), bytes.clone())),
            prop::option::weighted(0.3, any::<Index>()),
            prop::option::weighted(0.2, bytes),
        )
            .prop_map(|(flips, splice, cut, tail)| Damage { flips, splice, cut, tail: tail.unwrap_or_default() })
    }

    impl Damage {
        /// Applies the damage in place.
        pub(crate) fn apply(&self, b: &mut Vec<u8>) {
            if !b.is_empty() {
                for (i, bit) in &self.flips {
                    let at = i.index(b.len());
                    b[at] ^= 1 << bit;
                }
                if let Some((i, v)) = &self.splice {
                    let at = i.index(b.len());
                    b.splice(at..(at + v.len()).min(b.len()), v.iter().copied());
                }
                if let Some(i) = &self.cut {
                    b.truncate(i.index(b.len()));
                }
            }
            b.extend_from_slice(&self.tail);
        }
    }

    /// `Ok`, or an error whose full chain (`{:#}`) names `file` (its path or file name).
    pub(crate) fn names_file<T>(r: &anyhow::Result<T>, file: &Path) -> Result<(), TestCaseError> {
        if let Err(e) = r {
            let msg = format!("{e:#}");
            let name = file.file_name().unwrap().to_string_lossy();
            prop_assert!(
                msg.contains(&file.display().to_string()) || msg.contains(name.as_ref()),
                "error does not name {}: {msg}",
                file.display()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Golden bytes written by numpy 2.4.6, printed as Rust literals by:
    // ```python
    // import numpy as np, io
    // def b(a, **kw):
    //     f = io.BytesIO()
    //     if kw: np.lib.format.write_array(f, a, **kw)
    //     else: np.save(f, a)
    //     return f.getvalue()
    // F32_3X2 = b(np.array([[0.25,0.75],[1.0,0.0],[0.5,0.5]], dtype=np.float32))
    // I64_3 = b(np.array([3,-1,7], dtype=np.int64))
    // F64_1X2 = b(np.array([[0.1,0.9]], dtype=np.float64))
    // U1_3 = b(np.array([2,0,255], dtype=np.uint8))
    // I2_V2 = b(np.array([1,-2], dtype='<i2'), version=(2,0))
    // I4_V3 = b(np.array([1,2], dtype=np.int32), version=(3,0))
    // I4_BIG = b(np.array([1,2], dtype='>i4'))
    // F32_FORTRAN = b(np.asfortranarray(np.array([[1,2],[3,4]], dtype=np.float32)))
    // ```
    // (each printed with non-printable bytes as \xNN escapes)
    const F32_3X2: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }                                                          \n\x00\x00\x80>\x00\x00@?\x00\x00\x80?\x00\x00\x00\x00\x00\x00\x00?\x00\x00\x00?";
    const I64_3: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }                                                            \n\x03\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x07\x00\x00\x00\x00\x00\x00\x00";
    const F64_1X2: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }                                                          \n\x9a\x99\x99\x99\x99\x99\xb9?\xcd\xcc\xcc\xcc\xcc\xcc\xec?";
    const U1_3: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }                                                            \n\x02\x00\xff";
    const I2_V2: &[u8] = b"\x93NUMPY\x02\x00t\x00\x00\x00{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }                                                          \n\x01\x00\xfe\xff";
    const I4_V3: &[u8] = b"\x93NUMPY\x03\x00t\x00\x00\x00{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }                                                          \n\x01\x00\x00\x00\x02\x00\x00\x00";
    const I4_BIG: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }                                                            \n\x00\x00\x00\x01\x00\x00\x00\x02";
    const F32_FORTRAN: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }                                                           \n\x00\x00\x80?\x00\x00@@\x00\x00\x00@\x00\x00\x80@";

    #[test]
    fn reads_numpy_f32_and_f64() {
        let (v, shape) = decode_f32_2d(F32_3X2).unwrap();
        assert_eq!(shape, [3, 2]);
        assert_eq!(v, [0.25, 0.75, 1.0, 0.0, 0.5, 0.5]);
        let (v, shape) = decode_f32_2d(F64_1X2).unwrap();
        assert_eq!(shape, [1, 2]);
        assert_eq!(v, [0.1f64 as f32, 0.9f64 as f32]);
    }

    #[test]
    fn reads_numpy_integers_all_versions() {
        assert_eq!(decode_int_1d(I64_3).unwrap(), [3, -1, 7]);
        assert_eq!(decode_int_1d(U1_3).unwrap(), [2, 0, 255]);
        assert_eq!(decode_int_1d(I2_V2).unwrap(), [1, -2]);
        assert_eq!(decode_int_1d(I4_V3).unwrap(), [1, 2]);
    }

    #[test]
    fn writer_matches_numpy_bytes() {
        assert_eq!(
            encode_f32_2d(&[0.25, 0.75, 1.0, 0.0, 0.5, 0.5], [3, 2]).unwrap(),
            F32_3X2
        );
        assert_eq!(encode_i64_1d(&[3, -1, 7]), I64_3);
    }

    #[test]
    fn file_round_trip() {
        let dir = std::env::temp_dir().join(format!("npy-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("p.npy");
        let values: Vec<f32> = (0..12).map(|i| i as f32 / 7.0 - 0.5).collect();
        write_f32_2d(&p, &values, [4, 3]).unwrap();
        assert_eq!(read_f32_2d(&p).unwrap(), (values, [4, 3]));
        let y = dir.join("y.npy");
        let labels = [0i64, i64::MAX, i64::MIN, 42];
        write_i64_1d(&y, &labels).unwrap();
        assert_eq!(read_int_1d(&y).unwrap(), labels);
        // Large first dimension: header length stays 64-aligned.
        let big = vec![0i64; 123_456];
        assert_eq!(encode_i64_1d(&big).len() % 64, (123_456 * 8) % 64);
        assert_eq!(decode_int_1d(&encode_i64_1d(&big)).unwrap().len(), 123_456);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_fortran_big_endian_and_wrong_kinds_with_clear_errors() {
        let e = format!("{:#}", decode_f32_2d(F32_FORTRAN).unwrap_err());
        assert!(
            e.contains("Fortran-order") && e.contains("'<f4'") && e.contains("(2, 2)"),
            "{e}"
        );
        let e = format!("{:#}", decode_int_1d(I4_BIG).unwrap_err());
        assert!(e.contains("'>i4'") && e.contains("little-endian"), "{e}");
        let e = format!("{:#}", decode_f32_2d(I64_3).unwrap_err());
        assert!(
            e.contains("2-D") && e.contains("'<i8'") && e.contains("(3,)"),
            "{e}"
        );
        let e = format!("{:#}", decode_int_1d(F32_3X2).unwrap_err());
        assert!(e.contains("1-D") && e.contains("(3, 2)"), "{e}");
        let e = format!("{:#}", decode_int_1d(F64_1X2).unwrap_err());
        assert!(e.contains("1-D"), "{e}");
        // 1-D float where integers are expected:
        let floats = encode("<f8", &[2], [0u8; 16].into_iter());
        let e = format!("{:#}", decode_int_1d(&floats).unwrap_err());
        assert!(e.contains("integer") && e.contains("'<f8'"), "{e}");
        // Truncated data.
        let e = format!(
            "{:#}",
            decode_f32_2d(&F32_3X2[..F32_3X2.len() - 1]).unwrap_err()
        );
        assert!(e.contains("needs 24 data bytes but the file has 23"), "{e}");
        assert!(decode_f32_2d(b"not numpy").is_err());
    }

    #[test]
    fn file_errors_name_the_file() {
        let p = std::env::temp_dir().join(format!("npy-missing-{}.npy", std::process::id()));
        let e = format!("{:#}", read_f32_2d(&p).unwrap_err());
        assert!(e.contains(&p.display().to_string()), "{e}");
    }

    // Fuzzing (see `fuzz`).

    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct NpyCase {
        version: u8,
        descr: String,
        fortran: bool,
        shape: Vec<usize>,
        damage: Option<fuzz::Damage>,
        seed: u8,
    }

    fn npy_case() -> impl Strategy<Value = NpyCase> {
        let descr = prop_oneof![
            prop::sample::select(vec!["<f4", "<f8", "<i8", "<i4", "<i2", "|i1", "|u1", "<u2", "<u4", "<u8", ">i4", "=f4", "<f0", "<c8"])
                .prop_map(String::from),
            "\\PC{0,5}",
        ];
        // Small shapes that fit the data, and declared shapes far larger than any file.
        let shape = prop_oneof![
            3 => prop::collection::vec(0usize..5, 0..=3),
            1 => prop::collection::vec(prop_oneof![0usize..5, (1usize << 20)..(1 << 40), Just(usize::MAX)], 1..=3),
        ];
        (1u8..=3, descr, any::<bool>(), shape, prop::option::weighted(0.7, fuzz::damage()), any::<u8>())
            .prop_map(|(version, descr, fortran, shape, damage, seed)| NpyCase { version, descr, fortran, shape, damage, seed })
    }

    /// The case's file as numpy would lay it out; the data is the declared size when that is
    /// small, else 64 bytes. Returns the bytes and the declared data size (saturated).
    fn npy_bytes(c: &NpyCase) -> (Vec<u8>, u128) {
        let item = c.descr.get(2..).and_then(|s| s.parse::<u128>().ok()).unwrap_or(1);
        let need = c.shape.iter().fold(item, |a, &d| a.saturating_mul(d as u128));
        let body: Vec<u8> = (0..need.min(64) as usize).map(|i| (i as u8).wrapping_mul(31) ^ c.seed).collect();
        let mut header = format!(
            "{{'descr': '{}', 'fortran_order': {}, 'shape': {}, }}",
            c.descr,
            if c.fortran { "True" } else { "False" },
            shape_str(&c.shape)
        );
        let pre = if c.version == 1 { 10 } else { 12 };
        while (pre + header.len() + 1) % ARRAY_ALIGN != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend([c.version, 0]);
        if c.version == 1 {
            out.extend((header.len() as u16).to_le_bytes());
        } else {
            out.extend((header.len() as u32).to_le_bytes());
        }
        out.extend(header.as_bytes());
        out.extend(body);
        (out, need)
    }

    #[test]
    fn fuzz_npy_readers() {
        let path = std::env::temp_dir().join(format!("npy-fuzz-{}.npy", std::process::id()));
        fuzz::runner(768)
            .run(&npy_case(), |c| {
                let (mut bytes, need) = npy_bytes(&c);
                let data_len = need.min(64);
                if let Some(d) = &c.damage {
                    d.apply(&mut bytes);
                }
                std::fs::write(&path, &bytes).unwrap();
                let floats = read_f32_2d(&path);
                let ints = read_int_1d(&path);
                fuzz::names_file(&floats, &path)?;
                fuzz::names_file(&ints, &path)?;
                if c.damage.is_none() && need != data_len {
                    // A declared size beyond the data is an error (nothing is allocated from it).
                    prop_assert!(floats.is_err() && ints.is_err(), "shape {:?} accepted", c.shape);
                }
                if let Ok((values, [n, k])) = &floats {
                    prop_assert_eq!(values.len(), n * k);
                }
                Ok(())
            })
            .unwrap();
        std::fs::remove_file(&path).unwrap();
    }
}
