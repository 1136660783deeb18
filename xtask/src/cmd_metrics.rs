//! `xtask metrics`: METHODS §4 metrics of a saved prediction matrix.
//!
//! Reads test probabilities `[N, K]` (`.npy`, f32 or f64) and integer labels `[N]`, and
//! prints one JSON object with `acc`, `nll`, `brier`, `ece`; given validation probabilities
//! and labels as well, it also fits a temperature on them (Guo et al., ICML 2017) and adds
//! `temperature`, `cnll`, `cece`. Every input problem is an error naming the file and the
//! offending row, index or value.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use metrics::{CalibratedReport, Predictions, Report};
use serde::Serialize;

use crate::npy;

/// Largest `--bins`: far above any useful ECE resolution, and bounded so a typo cannot
/// allocate gigabytes of bins.
pub const MAX_BINS: u64 = 10_000;

/// Arguments of `xtask metrics`.
#[derive(clap::Args, Debug)]
pub struct MetricsArgs {
    /// Test probabilities, an `[N, K]` float32/float64 `.npy` file (rows sum to 1).
    #[arg(long, value_name = "P.npy")]
    pub probs: PathBuf,
    /// Test labels, a 1-D integer `.npy` file of length N with values in 0..K.
    #[arg(long, value_name = "Y.npy")]
    pub labels: PathBuf,
    /// Validation probabilities for temperature scaling (requires --val-labels).
    #[arg(long, value_name = "P.npy", requires = "val_labels")]
    pub val_probs: Option<PathBuf>,
    /// Validation labels for temperature scaling (requires --val-probs).
    #[arg(long, value_name = "Y.npy", requires = "val_probs")]
    pub val_labels: Option<PathBuf>,
    /// Number of equal-width confidence bins for ECE (1 to 10,000).
    #[arg(long, default_value_t = metrics::DEFAULT_BINS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_BINS))]
    pub bins: usize,
}

/// The JSON object printed on stdout.
#[derive(Serialize)]
struct Output {
    #[serde(flatten)]
    report: Report,
    #[serde(flatten)]
    calibrated: Option<CalibratedReport>,
}

/// Loads and validates a probability matrix; errors name the file.
fn load_probs(path: &Path) -> Result<Predictions> {
    let (values, [n, k]) = npy::read_f32_2d(path)?;
    Predictions::new(values, n, k).map_err(|e| {
        anyhow!(e).context(format!(
            "invalid probabilities in {} (shape ({n}, {k}))",
            path.display()
        ))
    })
}

/// Loads integer labels, checks them against `probs` (from `probs_path`); errors name the
/// labels file and the offending index and value.
fn load_labels(path: &Path, probs: &Predictions, probs_path: &Path) -> Result<Vec<u32>> {
    let raw = npy::read_int_1d(path)?;
    let labels = raw
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            u32::try_from(v).map_err(|_| {
                anyhow!(
                    "label {v} at index {i} in {} is not a valid class index (0..{})",
                    path.display(),
                    probs.classes()
                )
            })
        })
        .collect::<Result<Vec<u32>>>()?;
    probs.check_labels(&labels).map_err(|e| {
        anyhow!(e).context(format!(
            "labels in {} do not match probabilities in {} (shape ({}, {}))",
            path.display(),
            probs_path.display(),
            probs.rows(),
            probs.classes()
        ))
    })?;
    Ok(labels)
}

/// Runs `xtask metrics`, printing one JSON object on stdout.
pub fn run(args: &MetricsArgs) -> Result<()> {
    if args.bins == 0 {
        bail!("--bins must be > 0");
    }
    let test = load_probs(&args.probs)?;
    let test_labels = load_labels(&args.labels, &test, &args.probs)?;
    let report =
        metrics::evaluate(&test, &test_labels, args.bins).context("computing test metrics")?;
    let calibrated = match (&args.val_probs, &args.val_labels) {
        (None, None) => None,
        (Some(vp), Some(vl)) => {
            let val = load_probs(vp)?;
            if val.classes() != test.classes() {
                bail!(
                    "{} has {} classes but {} has {}",
                    vp.display(),
                    val.classes(),
                    args.probs.display(),
                    test.classes()
                );
            }
            let val_labels = load_labels(vl, &val, vp)?;
            Some(
                metrics::evaluate_calibrated(&test, &test_labels, &val, &val_labels, args.bins)
                    .context("temperature scaling")?,
            )
        }
        _ => bail!("--val-probs and --val-labels must be given together (or neither)"),
    };
    let out = Output { report, calibrated };
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
