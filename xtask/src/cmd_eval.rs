//! `xtask eval --runs DIR…`: score finished runs as one Deep Ensemble — the mean of the
//! members' saved probabilities (METHODS.md §1) — with the full metric set and the
//! uncertainty decomposition (METHODS.md §4).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use metrics::Predictions;
use serde::Serialize;

use crate::fsx::write_json;
use crate::npy;

/// Arguments of `xtask eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Finished run directories (each with {val,test}_{probs,labels}.npy).
    #[arg(long, num_args = 1.., required = true)]
    pub runs: Vec<PathBuf>,
    /// ECE bins (1 to 10,000).
    #[arg(long, default_value_t = metrics::DEFAULT_BINS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=crate::cmd_metrics::MAX_BINS))]
    pub bins: usize,
    /// Also write the JSON report here (atomically).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Serialize)]
struct EvalReport {
    members: usize,
    #[serde(flatten)]
    test: metrics::Report,
    #[serde(flatten)]
    calibrated: metrics::CalibratedReport,
    /// Mean over test inputs of total / data / knowledge uncertainty and EPKL.
    mean_tu: f64,
    mean_du: f64,
    mean_mi: f64,
    mean_epkl: f64,
    member_acc: Vec<f64>,
    member_nll: Vec<f64>,
}

fn load(run: &PathBuf, split: &str) -> Result<(Predictions, Vec<u32>)> {
    let pp = run.join(format!("{split}_probs.npy"));
    let lp = run.join(format!("{split}_labels.npy"));
    let (probs, [n, k]) = npy::read_f32_2d(&pp).with_context(|| format!("run {}", run.display()))?;
    let labels = npy::read_int_1d(&lp).with_context(|| format!("run {}", run.display()))?;
    let p = Predictions::new(probs, n, k).with_context(|| format!("{}", pp.display()))?;
    let labels: Vec<u32> = labels
        .iter()
        .enumerate()
        .map(|(i, &v)| u32::try_from(v).ok().filter(|&v| (v as usize) < k).with_context(|| format!("{}: label {v} at index {i} is not in 0..{k}", lp.display())))
        .collect::<Result<_>>()?;
    p.check_labels(&labels).with_context(|| format!("{}", lp.display()))?;
    Ok((p, labels))
}

/// `xtask eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let mut test = Vec::new();
    let mut val = Vec::new();
    let mut test_labels: Option<Vec<u32>> = None;
    let mut val_labels: Option<Vec<u32>> = None;
    for run in &args.runs {
        let (tp, tl) = load(run, "test")?;
        let (vp, vl) = load(run, "val")?;
        for (have, new, split) in [(&mut test_labels, tl, "test"), (&mut val_labels, vl, "val")] {
            match have {
                Some(h) if *h != new => bail!(
                    "{}: its {split} labels differ from {}'s: runs must share data set and split",
                    run.display(),
                    args.runs[0].display()
                ),
                Some(_) => {}
                None => *have = Some(new),
            }
        }
        test.push(tp);
        val.push(vp);
    }
    let (test_labels, val_labels) = (test_labels.unwrap(), val_labels.unwrap());
    let mean_test = Predictions::mean(&test)?;
    let mean_val = Predictions::mean(&val)?;
    let u = metrics::ensemble_uncertainty(&test)?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let report = EvalReport {
        members: test.len(),
        test: metrics::evaluate(&mean_test, &test_labels, args.bins)?,
        calibrated: metrics::evaluate_calibrated(&mean_test, &test_labels, &mean_val, &val_labels, args.bins)?,
        mean_tu: mean(&u.total),
        mean_du: mean(&u.data),
        mean_mi: mean(&u.knowledge),
        mean_epkl: mean(&u.epkl),
        member_acc: test.iter().map(|p| metrics::accuracy(p, &test_labels)).collect::<Result<_, _>>()?,
        member_nll: test.iter().map(|p| metrics::nll(p, &test_labels)).collect::<Result<_, _>>()?,
    };
    if let Some(out) = &args.out {
        write_json(out, &report)?;
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
