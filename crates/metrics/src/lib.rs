//! Classification, calibration, uncertainty and OOD-detection metrics for ensembles and
//! distilled students (METHODS §4). Backend-free: everything works on plain `f32` buffers
//! validated into [`Predictions`], with all accumulation in `f64`. The library prints nothing
//! and reports every problem through [`MetricsError`].
//!
//! - [`classification`]: ACC, NLL, Brier.
//! - [`calibration`]: ECE and reliability-diagram bins.
//! - [`temperature`]: temperature scaling (fit T on validation, apply to test).
//! - [`report`]: [`evaluate`] → [`Report`], [`evaluate_calibrated`] → [`CalibratedReport`].
//! - [`uncertainty`]: TU / DU / MI / EPKL for ensembles and Dirichlet outputs.
//! - [`special`]: ln Γ and digamma.
//! - [`ood`]: AUROC and AUPR (OOD = positive class).
//! - [`corruption`]: averages over corruption types and severities.
//! - [`fidelity`]: top-1 agreement with and KL divergence from a teacher.
//! - [`stats`]: Welch's interval of a difference of means, Spearman's rank correlation.

pub mod calibration;
pub mod classification;
pub mod corruption;
pub mod error;
pub mod fidelity;
pub mod ood;
pub mod predictions;
pub mod report;
pub mod special;
pub mod stats;
pub mod temperature;
pub mod uncertainty;

pub use calibration::{DEFAULT_BINS, Reliability, ReliabilityBin, ece, reliability};
pub use classification::{NLL_EPS, accuracy, brier, nll};
pub use corruption::{
    CorruptionResult, CorruptionSummary, mean_calibrated_report, mean_report, summarise_corruptions,
};
pub use error::{MetricsError, Result};
pub use fidelity::{kl_divergence, top1_agreement};
pub use stats::{GroupStats, Interval, spearman, welch_interval};
pub use ood::{OodReport, aupr, auroc, ood_detection};
pub use predictions::{Predictions, ROW_SUM_TOLERANCE, check_labels};
pub use report::{CalibratedReport, Report, evaluate, evaluate_at_temperature, evaluate_calibrated};
pub use temperature::{apply_temperature, fit_temperature, temperature_nll};
pub use uncertainty::{
    UncertaintyScores, dirichlet_uncertainty, ensemble_uncertainty, entropies, entropy,
    negative_confidence,
};
