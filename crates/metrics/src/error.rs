//! The single error type of the `metrics` crate.
//!
//! Every variant names the offending value together with its position (row, column, index,
//! member) so that a caller can point at the exact bad entry of an input file.

use thiserror::Error;

/// Everything that can go wrong when validating inputs or computing a metric.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricsError {
    /// A prediction matrix was declared with zero rows or zero columns.
    #[error("empty prediction matrix: {rows} rows x {classes} classes (both must be > 0)")]
    EmptyMatrix {
        /// Declared number of rows N.
        rows: usize,
        /// Declared number of classes K.
        classes: usize,
    },
    /// The flat buffer length does not equal N·K.
    #[error("buffer has {len} values but the declared shape is [{rows}, {classes}] = {expected}")]
    ShapeMismatch {
        /// Actual number of values.
        len: usize,
        /// Declared number of rows N.
        rows: usize,
        /// Declared number of classes K.
        classes: usize,
        /// N·K.
        expected: usize,
    },
    /// A probability (or concentration) is NaN or infinite.
    #[error("non-finite value {value} at row {row}, column {col}")]
    NonFinite {
        /// Row index.
        row: usize,
        /// Column (class) index.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// A probability is negative.
    #[error("negative probability {value} at row {row}, column {col}")]
    NegativeProbability {
        /// Row index.
        row: usize,
        /// Column (class) index.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// A row of probabilities does not sum to 1 within the tolerance.
    #[error("row {row} sums to {sum}, not 1 (tolerance {tolerance})")]
    RowSum {
        /// Row index.
        row: usize,
        /// The row's sum (accumulated in f64).
        sum: f64,
        /// Allowed absolute deviation from 1.
        tolerance: f64,
    },
    /// A Dirichlet concentration is not strictly positive.
    #[error("Dirichlet concentration {value} at row {row}, column {col} is not > 0")]
    NonPositiveConcentration {
        /// Row index.
        row: usize,
        /// Column (class) index.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// The number of labels differs from the number of prediction rows.
    #[error("{labels} labels for {rows} prediction rows")]
    LabelCount {
        /// Number of labels given.
        labels: usize,
        /// Number of prediction rows N.
        rows: usize,
    },
    /// A label is not a valid class index.
    #[error("label {value} at index {index} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// Position of the label.
        index: usize,
        /// The offending label.
        value: u32,
        /// Number of classes K.
        classes: usize,
    },
    /// The requested number of ECE bins is zero.
    #[error("number of calibration bins must be > 0, got {bins}")]
    ZeroBins {
        /// The requested bin count.
        bins: usize,
    },
    /// Two prediction sets that must agree on the number of classes do not.
    #[error("class count mismatch: {what} has {got} classes, expected {expected}")]
    ClassMismatch {
        /// Which input disagrees.
        what: &'static str,
        /// Its number of classes.
        got: usize,
        /// The number of classes expected.
        expected: usize,
    },
    /// An ensemble member's shape differs from member 0.
    #[error(
        "ensemble member {member} has shape [{rows}, {classes}], member 0 has [{expected_rows}, {expected_classes}]"
    )]
    MemberShape {
        /// Index of the offending member.
        member: usize,
        /// Its number of rows.
        rows: usize,
        /// Its number of classes.
        classes: usize,
        /// Rows of member 0.
        expected_rows: usize,
        /// Classes of member 0.
        expected_classes: usize,
    },
    /// An ensemble with no members was given.
    #[error("ensemble has no members")]
    EmptyEnsemble,
    /// A list of OOD scores is empty.
    #[error("no {which} scores given (need at least one in-distribution and one OOD score)")]
    EmptyScores {
        /// `"in-distribution"` or `"out-of-distribution"`.
        which: &'static str,
    },
    /// An OOD score is NaN or infinite.
    #[error("{which} score at index {index} is not finite: {value}")]
    NonFiniteScore {
        /// `"in-distribution"` or `"out-of-distribution"`.
        which: &'static str,
        /// Position of the score.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A temperature is not a finite positive number.
    #[error("temperature must be finite and > 0, got {value}")]
    InvalidTemperature {
        /// The offending temperature.
        value: f64,
    },
    /// An average over an empty list of reports was requested.
    #[error("cannot average an empty list of reports")]
    NoReports,
    /// Two paired series (predictions, scores) differ in length.
    #[error("{what}: {got} values, expected {expected} (one per example of the other series)")]
    LengthMismatch {
        /// Which input disagrees.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length expected.
        expected: usize,
    },
    /// A statistic needs more values than it was given.
    #[error("{what} needs at least {needed} values, got {got}")]
    TooFewValues {
        /// The statistic.
        what: &'static str,
        /// Values needed.
        needed: usize,
        /// Values given.
        got: usize,
    },
    /// A value that must be finite is not.
    #[error("{what} is not finite: {value}")]
    NotFinite {
        /// Which value.
        what: &'static str,
        /// The offending value.
        value: f64,
    },
}

/// Shorthand for `Result<T, MetricsError>`.
pub type Result<T> = std::result::Result<T, MetricsError>;
