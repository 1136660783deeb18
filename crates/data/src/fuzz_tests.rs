//! Property-based fuzz tests of the file readers (CIFAR binary batches and IDX here, the MAT
//! reader in `ood`'s tests): a valid small file is generated, then mutated (truncated at a
//! random offset, bits flipped, bytes overwritten or appended, header sizes replaced by huge
//! values), and the reader must return — no panic — either `Ok` with data consistent with the
//! file, or an error whose message names the mutated file.
//!
//! Each property runs `DISTILLERY_FUZZ_CASES` cases (default: the per-test figure passed to
//! [`config`], a few hundred, so that all fuzz tests together take seconds in a debug build);
//! set it higher for a longer campaign, and `DISTILLERY_FUZZ_SEED` to vary the (otherwise
//! fixed, so CI is reproducible) random seed.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

use crate::cifar::{Cifar, Part, RecordLimit};
use crate::error::DataError;
use crate::idx::{encode_idx, read_fashion_mnist, read_idx};
use crate::images::IMAGE_BYTES;

/// A test runner for `default_cases` cases, or `DISTILLERY_FUZZ_CASES` when set; the seed is
/// `DISTILLERY_FUZZ_SEED` or fixed. No regression files are written into the source tree.
pub(crate) fn runner(default_cases: u32) -> TestRunner {
    let env = |name: &str| std::env::var(name).ok().map(|v| {
        v.parse::<u64>().unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number"))
    });
    let cases = env("DISTILLERY_FUZZ_CASES").map_or(default_cases, |c| c as u32);
    let config = Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(env("DISTILLERY_FUZZ_SEED").unwrap_or(0x5eed_f022)),
        ..Config::default()
    };
    TestRunner::new(config)
}

/// A fresh, empty scratch directory for the fuzz test `name` (unique per process).
pub(crate) fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("distillery-fuzz-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One blind mutation of a file's bytes.
#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    /// Cut the file at this offset.
    Truncate(Index),
    /// Flip bit `1 << b` of the byte at this offset.
    FlipBit(Index, u8),
    /// Overwrite the bytes from this offset on (growing the file if needed).
    Overwrite(Index, Vec<u8>),
    /// Append these bytes.
    Append(Vec<u8>),
}

/// One to four blind mutations.
pub(crate) fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let bytes = || prop::collection::vec(any::<u8>(), 1..16);
    let one = prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), bytes()).prop_map(|(i, v)| Mutation::Overwrite(i, v)),
        bytes().prop_map(Mutation::Append),
    ];
    prop::collection::vec(one, 1..=4)
}

/// Applies `muts` in order (a mutation of an empty file other than `Append` does nothing).
pub(crate) fn apply(bytes: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        let len = bytes.len();
        match m {
            Mutation::Append(v) => bytes.extend_from_slice(v),
            _ if len == 0 => {}
            Mutation::Truncate(i) => bytes.truncate(i.index(len)),
            Mutation::FlipBit(i, b) => bytes[i.index(len)] ^= 1 << b,
            Mutation::Overwrite(i, v) => {
                let at = i.index(len);
                let end = at + v.len();
                if end > len {
                    bytes.resize(end, 0);
                }
                bytes[at..end].copy_from_slice(v);
            }
        }
    }
}

/// Header sizes a corrupt or hostile file may declare: small, near the type's limits, or
/// arbitrary.
pub(crate) fn declared_u32() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..64, (u32::MAX - 8)..=u32::MAX, (1u32 << 20)..(1 << 31), any::<u32>()]
}

/// `Ok`, or an error whose message names `file` by its full path.
pub(crate) fn check_error_names<T>(
    result: &Result<T, DataError>,
    file: &Path,
) -> Result<(), TestCaseError> {
    let msg = result.as_ref().err().map(ToString::to_string).unwrap_or_default();
    prop_assert!(
        result.is_ok() || msg.contains(&*file.to_string_lossy()),
        "error does not name {}: {msg}",
        file.display()
    );
    Ok(())
}

/// Deterministic pseudo-random bytes (xorshift) for record payloads.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// CIFAR
// ---------------------------------------------------------------------------------------------

/// A CIFAR sample copy: records per data file, which file (data files, then the class-name
/// file) gets mutated, and how.
#[derive(Debug, Clone)]
struct CifarCase {
    cifar: Cifar,
    part: Part,
    records: Vec<usize>,
    names_file: bool,
    target: Index,
    limit: RecordLimit,
    muts: Vec<Mutation>,
    seed: u64,
}

fn cifar_case() -> impl Strategy<Value = CifarCase> {
    let which = prop_oneof![
        Just((Cifar::Ten, Part::Train)),
        Just((Cifar::Ten, Part::Test)),
        Just((Cifar::Hundred, Part::Train)),
        Just((Cifar::Hundred, Part::Test)),
    ];
    let limit = prop_oneof![
        Just(RecordLimit::All),
        (0usize..4).prop_map(RecordLimit::PerFile),
        (0usize..8).prop_map(RecordLimit::Total),
    ];
    (which, prop::collection::vec(0usize..3, 5), any::<bool>(), any::<Index>(), limit, mutations(), any::<u64>())
        .prop_map(|((cifar, part), records, names_file, target, limit, muts, seed)| CifarCase {
            cifar,
            part,
            records,
            names_file,
            target,
            limit,
            muts,
            seed,
        })
}

/// Writes the case's valid files into `dir`; returns the data files in reading order and the
/// class-name file (written only when `names_file`).
fn write_cifar(dir: &Path, c: &CifarCase) -> (Vec<PathBuf>, PathBuf) {
    let rec = c.cifar.record_bytes();
    let files: Vec<PathBuf> = c.cifar.files(c.part).iter().map(|f| dir.join(f)).collect();
    for (k, path) in files.iter().enumerate() {
        let mut bytes = noise(c.records[k] * rec, c.seed ^ k as u64);
        for r in bytes.chunks_exact_mut(rec) {
            r[0] %= if c.cifar == Cifar::Ten { 10 } else { 20 };
            if c.cifar == Cifar::Hundred {
                r[1] %= 100;
            }
        }
        std::fs::write(path, bytes).unwrap();
    }
    let names = dir.join(match c.cifar {
        Cifar::Ten => crate::cifar::CIFAR10_NAMES_FILE,
        Cifar::Hundred => crate::cifar::CIFAR100_FINE_NAMES_FILE,
    });
    let _ = std::fs::remove_file(&names);
    if c.names_file {
        let text: String = (0..c.cifar.num_classes()).map(|i| format!("class_{i}\n")).collect();
        std::fs::write(&names, text).unwrap();
    }
    (files, names)
}

#[test]
fn fuzz_cifar_sample_files() {
    let dir = scratch("cifar");
    runner(384)
        .run(&cifar_case(), |c| {
            for f in Cifar::Ten.files(Part::Train).iter().chain(&Cifar::Hundred.files(Part::Train)) {
                let _ = std::fs::remove_file(dir.join(f));
            }
            let (files, names) = write_cifar(&dir, &c);
            let mut candidates = files.clone();
            if c.names_file {
                candidates.push(names);
            }
            let target = candidates[c.target.index(candidates.len())].clone();
            let mut bytes = std::fs::read(&target).unwrap();
            apply(&mut bytes, &c.muts);
            std::fs::write(&target, &bytes).unwrap();

            let result = c.cifar.read_sample(&dir, c.part, c.limit);
            check_error_names(&result, &target)?;
            let rec = c.cifar.record_bytes() as u64;
            let sizes: Vec<u64> = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).collect();
            if sizes.iter().any(|s| s % rec != 0) {
                prop_assert!(result.is_err(), "a partial record was accepted");
            }
            if let Ok(set) = result {
                // No silent shift: exactly the whole records on disk, within the limit.
                let mut left = usize::MAX;
                if let RecordLimit::Total(n) = c.limit {
                    left = n;
                }
                let mut expected = 0;
                for s in &sizes {
                    let n = (s / rec) as usize;
                    let take = match c.limit {
                        RecordLimit::All => n,
                        RecordLimit::PerFile(k) => n.min(k),
                        RecordLimit::Total(_) => n.min(left),
                    };
                    left -= take.min(left);
                    expected += take;
                }
                prop_assert_eq!(set.len(), expected);
                prop_assert_eq!(set.pixels.len(), expected * IMAGE_BYTES);
                prop_assert!(set.labels.iter().all(|&l| (l as usize) < c.cifar.num_classes()));
            }
            Ok(())
        })
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// IDX (Fashion-MNIST)
// ---------------------------------------------------------------------------------------------

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// How one IDX file of a Fashion-MNIST pair is damaged.
#[derive(Debug, Clone)]
enum IdxDamage {
    /// Blind mutations of the plain bytes (before any gzip).
    Plain(Vec<Mutation>),
    /// Blind mutations of the gzip stream.
    Gzipped(Vec<Mutation>),
    /// Header dimensions replaced (the payload left as it is).
    Dims(Vec<Option<u32>>),
    /// A consistent but different record count: header and payload both resized to this many
    /// records, so the file alone is valid.
    Records(u32),
}

#[derive(Debug, Clone)]
struct IdxCase {
    n: usize,
    side: (usize, usize),
    gz: (bool, bool),
    /// Damage the label file rather than the image file.
    labels: bool,
    damage: IdxDamage,
    limit: Option<usize>,
    seed: u64,
}

fn idx_case() -> impl Strategy<Value = IdxCase> {
    let damage = prop_oneof![
        mutations().prop_map(IdxDamage::Plain),
        mutations().prop_map(IdxDamage::Gzipped),
        prop::collection::vec(prop::option::of(declared_u32()), 1..=3).prop_map(IdxDamage::Dims),
        (0u32..6).prop_map(IdxDamage::Records),
    ];
    (0usize..4, (1usize..=32, 1usize..=32), any::<(bool, bool)>(), any::<bool>(), damage, prop::option::of(0usize..4), any::<u64>())
        .prop_map(|(n, side, gz, labels, damage, limit, seed)| IdxCase { n, side, gz, labels, damage, limit, seed })
}

#[test]
fn fuzz_idx_fashion_mnist_pair() {
    let dir = scratch("idx");
    runner(384)
        .run(&idx_case(), |c| {
            for f in std::fs::read_dir(&dir).unwrap() {
                std::fs::remove_file(f.unwrap().path()).unwrap();
            }
            let (h, w) = c.side;
            let pixels = noise(c.n * h * w, c.seed);
            let labels: Vec<u8> = noise(c.n, !c.seed).iter().map(|b| b % 10).collect();
            let mut img = (vec![c.n as u32, h as u32, w as u32], pixels, h * w);
            let mut lab = (vec![c.n as u32], labels, 1);
            let (target, gz) = if c.labels { (&mut lab, c.gz.1) } else { (&mut img, c.gz.0) };
            // (the declared dims and the payload after damage, for the size property)
            let mut declared: Option<Vec<u32>> = None;
            let mut raw = encode_idx(&target.0, &target.1);
            match &c.damage {
                IdxDamage::Plain(m) => apply(&mut raw, m),
                IdxDamage::Gzipped(_) => {}
                IdxDamage::Dims(new) => {
                    let mut dims = target.0.clone();
                    for (d, v) in dims.iter_mut().zip(new) {
                        if let Some(v) = v {
                            *d = *v;
                        }
                    }
                    raw = encode_idx(&dims, &target.1);
                    declared = Some(dims);
                }
                IdxDamage::Records(k) => {
                    target.0[0] = *k;
                    target.1.resize(*k as usize * target.2, 7);
                    raw = encode_idx(&target.0, &target.1);
                }
            }
            let payload_len = target.1.len();
            let mut file = gz_if(gz, raw);
            if let IdxDamage::Gzipped(m) = &c.damage {
                apply(&mut file, m);
            }
            let ext = |g| if g { ".gz" } else { "" };
            let img_path = dir.join(format!("t10k-images-idx3-ubyte{}", ext(c.gz.0)));
            let lab_path = dir.join(format!("t10k-labels-idx1-ubyte{}", ext(c.gz.1)));
            let (img_bytes, lab_bytes) = if c.labels {
                (gz_if(c.gz.0, encode_idx(&img.0, &img.1)), file)
            } else {
                (file, gz_if(c.gz.1, encode_idx(&lab.0, &lab.1)))
            };
            std::fs::write(&img_path, img_bytes).unwrap();
            std::fs::write(&lab_path, lab_bytes).unwrap();
            let target_path = if c.labels { &lab_path } else { &img_path };

            // The damaged file alone.
            let alone = read_idx(target_path);
            check_error_names(&alone, target_path)?;
            if let Some(dims) = &declared {
                // A declared size the payload cannot hold is an error, never an allocation.
                let need = dims.iter().fold(1u128, |a, &d| a.saturating_mul(u128::from(d)));
                if need != payload_len as u128 {
                    prop_assert!(alone.is_err(), "dims {dims:?} accepted for {payload_len} bytes");
                }
            }
            if let Ok(a) = &alone {
                prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
            }
            // The pair.
            let set = read_fashion_mnist(&dir, Part::Test, c.limit);
            check_error_names(&set, target_path)?;
            if let Ok(set) = set {
                let n = img.0[0] as usize;
                prop_assert_eq!(set.len(), c.limit.map_or(n, |l| l.min(n)));
                prop_assert_eq!(set.pixels.len(), set.len() * IMAGE_BYTES);
            }
            Ok(())
        })
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn gz_if(gz: bool, bytes: Vec<u8>) -> Vec<u8> {
    if gz { gzip(&bytes) } else { bytes }
}
