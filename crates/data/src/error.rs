//! The crate's error type: every variant names the file (or directory), and where relevant
//! the record index and the offending value, so a message alone locates the problem.

use std::path::PathBuf;

/// Everything that can go wrong while locating, reading or checking data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file the layout requires is absent.
    #[error(
        "missing file {file:?} in directory {dir}: expected layout is {expected_layout}"
    )]
    MissingFile {
        /// Directory that was searched.
        dir: PathBuf,
        /// Name of the file that is missing.
        file: String,
        /// Human-readable description of the expected directory layout.
        expected_layout: String,
    },
    /// An I/O error while opening or reading a file.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// File or directory concerned.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file size is not a whole number of fixed-size records.
    #[error(
        "{path}: size {size} bytes is not a whole number of {record_size}-byte records"
    )]
    PartialRecord {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// Expected size of one record in bytes.
        record_size: u64,
    },
    /// A file of the official layout does not have its official size (truncated, emptied or
    /// extended), so its records would shift into other files' places.
    #[error(
        "{path}: size {size} bytes, expected {expected} bytes (the official {records} records of \
         {record_size} bytes); the file is truncated or extended: re-fetch the data set (`cargo \
         xtask data fetch cifar10` or `cifar100`)"
    )]
    WrongFileSize {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The official size in bytes.
        expected: u64,
        /// The official record count.
        records: usize,
        /// Bytes per record.
        record_size: u64,
    },
    /// A label byte is outside the valid class range.
    #[error("{path}: record {record}: {} {value} is out of range 0..{num_classes}", label_name(field))]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Record index within the file (0-based).
        record: usize,
        /// Which label ("label", "fine", "coarse").
        field: &'static str,
        /// The offending value.
        value: u8,
        /// Number of classes (valid labels are `0..num_classes`).
        num_classes: usize,
    },
    /// A split range asks for records that are not on disk.
    #[error(
        "split {split:?}: range {start}..{end} exceeds the {available} records available in {source_desc}"
    )]
    RangeOutOfBounds {
        /// Split name ("train", "val", "test").
        split: String,
        /// Range start.
        start: usize,
        /// Range end (exclusive).
        end: usize,
        /// Records available.
        available: usize,
        /// What the records come from (directory or file list).
        source_desc: String,
    },
    /// A split range is empty or reversed.
    #[error("split {split:?}: invalid range {start}..{end} (start must be < end)")]
    InvalidRange {
        /// Split name.
        split: String,
        /// Range start.
        start: usize,
        /// Range end.
        end: usize,
    },
    /// A class-name file has the wrong number of names.
    #[error("{path}: expected {expected} class names, found {found}")]
    ClassNames {
        /// The file.
        path: PathBuf,
        /// Expected count.
        expected: usize,
        /// Count found.
        found: usize,
    },
    /// An IDX file has a wrong magic number or inconsistent header.
    #[error("{path}: bad IDX header: {detail} (value {value})")]
    IdxHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: &'static str,
        /// The offending header value.
        value: u64,
    },
    /// A MATLAB MAT file is malformed, truncated or lacks what the reader needs.
    #[error("{path}: MAT file: {detail}")]
    MatFile {
        /// The file.
        path: PathBuf,
        /// What is wrong (names the variable or byte offset where relevant).
        detail: String,
    },
    /// Two files that must agree (images and labels) do not.
    #[error("{path}: {detail}: {left} vs {right}")]
    Mismatch {
        /// The file that disagrees.
        path: PathBuf,
        /// What disagrees.
        detail: &'static str,
        /// Value in this file.
        left: usize,
        /// Value expected from the companion file.
        right: usize,
    },
    /// An IDX label file and its image file disagree on the record count (either may be the
    /// damaged one, so both are named).
    #[error("{labels}: {label_count} labels, but {images} holds {image_count} images")]
    CountMismatch {
        /// The label file.
        labels: PathBuf,
        /// Its record count.
        label_count: usize,
        /// The image file.
        images: PathBuf,
        /// Its record count.
        image_count: usize,
    },
    /// A checksum listing is malformed.
    #[error("{path}: line {line}: malformed checksum line {content:?}")]
    ChecksumFormat {
        /// The SHA256SUMS file.
        path: PathBuf,
        /// Line number (1-based).
        line: usize,
        /// The offending line.
        content: String,
    },
    /// A file's SHA-256 differs from the listed one.
    #[error("{path}: sha256 {actual} does not match expected {expected}")]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// Listed digest.
        expected: String,
        /// Computed digest.
        actual: String,
    },
    /// A parameter is out of its valid domain.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Its value, formatted.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A corruption severity outside the CIFAR-10-C range `1..=5`.
    #[error("invalid severity {severity} for corruption {corruption}: severities are 1..=5")]
    InvalidSeverity {
        /// The corruption's name (e.g. "gaussian_noise").
        corruption: &'static str,
        /// The offending severity.
        severity: u8,
    },
    /// A corruption name that is not one of the fifteen CIFAR-10-C names.
    #[error("unknown corruption {name:?}: expected one of {expected}")]
    UnknownCorruption {
        /// The name given.
        name: String,
        /// The valid names, comma-separated.
        expected: String,
    },
    /// The JPEG round trip of the `jpeg_compression` corruption failed.
    #[error("jpeg_compression at quality {quality}: {stage} failed: {detail}")]
    Jpeg {
        /// "encode" or "decode".
        stage: &'static str,
        /// The JPEG quality used.
        quality: u8,
        /// The codec's message.
        detail: String,
    },
}

impl DataError {
    /// Wraps an [`std::io::Error`] with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { path: path.into(), source }
    }
}

/// Shorthand result type of this crate.
pub type Result<T> = std::result::Result<T, DataError>;

/// "label" for CIFAR-10's only label byte, "coarse label" / "fine label" for CIFAR-100's.
fn label_name(field: &str) -> String {
    if field == "label" { "label".into() } else { format!("{field} label") }
}
