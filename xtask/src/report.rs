//! `results/<table>-<profile>/`: the report of a reproduced table, regenerated from the run
//! directories by `cargo xtask report <table> --profile …` (and at the end of `reproduce`);
//! never edited by hand.
//!
//! - `runs.csv`: one row per run (and one for the teacher ensemble);
//! - `summary.csv`, `summary.json`: mean ± std (sample std, n − 1) per method;
//! - `README.md`: the table in the paper's layout (ACC, NLL, ECE, cNLL, cECE) beside the
//!   published numbers, the paper's claims checked, OOD detection and corruption averages,
//!   data provenance and hardware;
//! - `plots/`: reliability diagrams per method, histograms of uncertainty on the test set vs
//!   each OOD set (PNG and SVG).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use distill::loss::DirichletHead;
use metrics::Predictions;
use serde::Serialize;

use crate::fsx::{write_atomic, write_json};
use crate::npy;
use crate::reproduce::{Plan, PlannedRun, RowKind, RowSpec, plan};
use crate::run_eval::EvalSettings;

/// Arguments of `xtask report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Table (`cifar10`, `cifar100`).
    pub table: String,
    /// Profile whose runs to report.
    #[arg(long, default_value = "cpu")]
    pub profile: String,
    /// Include the rows marked `extra`.
    #[arg(long)]
    pub extras: bool,
    /// Folders.
    #[command(flatten)]
    pub dirs: crate::reproduce::TableDirs,
}

/// `xtask report`.
pub fn run(args: ReportArgs) -> Result<()> {
    let (experiments, runs_dir, results) = args.dirs.resolve();
    let plan = plan(&experiments, &args.table, &args.profile, &runs_dir, &[], args.extras)?;
    let eval = EvalSettings::from_profile(&plan.profile)?;
    let out = results.join(format!("{}-{}", args.table, args.profile));
    write_report(&plan, &eval, &out)?;
    println!("{}", out.join("README.md").display());
    Ok(())
}

/// How a run's logits become predictions: softmax (`None`), or its method's Dirichlet head.
fn output_of(run: &PlannedRun) -> Result<Option<DirichletHead>> {
    match &run.exp.distill {
        Some(d) => Ok(d.method()?.dirichlet_head()),
        None => Ok(None),
    }
}

/// Predictions and uncertainty scores (higher = more uncertain) of one model on one set.
struct Scored {
    probs: Predictions,
    /// name -> per-example score: confidence (negative max prob), TU, DU, MI.
    scores: BTreeMap<&'static str, Vec<f64>>,
}

fn softmax_rows(logits: &[f32], k: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(k) {
        let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f64> = row.iter().map(|&z| f64::from(z - m).exp()).collect();
        let s: f64 = e.iter().sum();
        out.extend(e.iter().map(|v| (v / s) as f32));
    }
    out
}

fn read_logits(dir: &Path, set: &str) -> Result<(Vec<f32>, usize, usize)> {
    let path = dir.join("eval").join(format!("{set}.npy"));
    let (v, [n, k]) = npy::read_f32_2d(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok((v, n, k))
}

fn members_of(dir: &Path) -> Result<usize> {
    let done = dir.join("eval").join("done.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&done).with_context(|| format!("reading {}", done.display()))?)?;
    Ok(v["members"].as_u64().unwrap_or(1).max(1) as usize)
}

fn score_single(dir: &Path, set: &str, output: Option<DirichletHead>) -> Result<Scored> {
    let members = members_of(dir)?;
    if members > 1 {
        // A BatchEnsemble: its members' predictions scored as an ensemble.
        let (z, rows, k) = read_logits(dir, set)?;
        let n = rows / members;
        let preds = z
            .chunks_exact(n * k)
            .map(|m| Predictions::new(softmax_rows(m, k), n, k))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        return scored_ensemble(preds);
    }
    let (z, n, k) = read_logits(dir, set)?;
    let mut scores = BTreeMap::new();
    let probs = match output {
        None => {
            let p = Predictions::new(softmax_rows(&z, k), n, k)?;
            scores.insert("TU", metrics::entropies(&p));
            p
        }
        Some(head) => {
            let u = metrics::dirichlet_uncertainty(&head.concentrations(&z), n, k)?;
            scores.insert("TU", u.total);
            scores.insert("DU", u.data);
            scores.insert("MI", u.knowledge);
            Predictions::new(head.expected_probabilities(&z, k), n, k)?
        }
    };
    scores.insert("conf", metrics::negative_confidence(&probs));
    Ok(Scored { probs, scores })
}

/// The unmerged BatchEnsemble of a LatentBE run on `set` (`eval/be-<set>.npy`), scored as an
/// ensemble of its members; `None` when the evaluation stage saved no BatchEnsemble view.
fn score_be(dir: &Path, set: &str) -> Result<Option<Scored>> {
    let done = dir.join("eval").join("done.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&done).with_context(|| format!("reading {}", done.display()))?)?;
    let Some(members) = v["be_members"].as_u64().map(|m| m.max(1) as usize) else { return Ok(None) };
    let (z, rows, k) = read_logits(dir, &format!("be-{set}"))?;
    let n = rows / members;
    let preds = z
        .chunks_exact(n * k)
        .map(|m| Predictions::new(softmax_rows(m, k), n, k))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Some(scored_ensemble(preds)?))
}

fn score_ensemble(dirs: &[PathBuf], set: &str) -> Result<Scored> {
    let mut members = Vec::new();
    for d in dirs {
        let (z, n, k) = read_logits(d, set)?;
        members.push(Predictions::new(softmax_rows(&z, k), n, k)?);
    }
    scored_ensemble(members)
}

fn scored_ensemble(members: Vec<Predictions>) -> Result<Scored> {
    let u = metrics::ensemble_uncertainty(&members)?;
    let probs = Predictions::mean(&members)?;
    let mut scores = BTreeMap::new();
    scores.insert("conf", metrics::negative_confidence(&probs));
    scores.insert("TU", u.total);
    scores.insert("DU", u.data);
    scores.insert("MI", u.knowledge);
    Ok(Scored { probs, scores })
}

/// One scored unit: a run, or the teacher ensemble.
enum Unit<'a> {
    Run(&'a PlannedRun),
    Ensemble(Vec<PathBuf>),
}

impl Unit<'_> {
    fn score(&self, set: &str) -> Result<Scored> {
        match self {
            Unit::Run(r) => score_single(&r.dir, set, output_of(r)?),
            Unit::Ensemble(dirs) => score_ensemble(dirs, set),
        }
    }
    fn eval_dir(&self) -> PathBuf {
        match self {
            Unit::Run(r) => r.dir.join("eval"),
            Unit::Ensemble(d) => d[0].join("eval"),
        }
    }
}

/// Everything measured for one unit.
#[derive(Debug, Clone, Serialize, Default)]
pub struct UnitResult {
    /// Row id.
    pub row: String,
    /// Grid point (`seed-0`) or `ensemble`.
    pub point: String,
    /// Metric name -> value.
    pub values: BTreeMap<String, f64>,
}

fn labels(dir: &Path, split: &str) -> Result<Vec<u32>> {
    let p = dir.join(format!("{split}_labels.npy"));
    Ok(npy::read_int_1d(&p).with_context(|| format!("reading {}", p.display()))?.into_iter().map(|v| v as u32).collect())
}

/// TU per example on the test set and on each OOD set (for the histograms).
type TuSeries = Vec<(String, Vec<f64>)>;

/// The teacher ensemble's outputs the students' fidelity is measured against.
struct TeacherRef {
    /// Test set.
    test: Scored,
    /// OOD sets by name (`ood-…`), in `done.json` order.
    ood: Vec<(String, Scored)>,
    /// The teacher's MI OOD AUROC on each of `ood` (computed once, not once per student).
    ood_mi_auroc: Vec<f64>,
}

fn eval_sets(eval_dir: &Path) -> Result<Vec<String>> {
    let done: serde_json::Value = serde_json::from_slice(&std::fs::read(eval_dir.join("done.json"))?)?;
    Ok(done["sets"].as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect()).unwrap_or_default())
}

impl TeacherRef {
    fn load(dirs: &[PathBuf]) -> Result<Self> {
        let test = score_ensemble(dirs, "test")?;
        let ood = eval_sets(&dirs[0].join("eval"))?
            .into_iter()
            .filter(|s| s.starts_with("ood-"))
            .map(|s| Ok((s.clone(), score_ensemble(dirs, &s)?)))
            .collect::<Result<Vec<_>>>()?;
        let ood_mi_auroc =
            ood.iter().map(|(_, o)| Ok(metrics::ood_detection(&test.scores["MI"], &o.scores["MI"])?.auroc)).collect::<Result<_>>()?;
        Ok(Self { test, ood, ood_mi_auroc })
    }
}

/// Fidelity of a student to the teacher (`metrics::fidelity`): top-1 agreement (%) and
/// KL(teacher ‖ student) on the test set (`agree`, `kl_teacher`); for a student with an
/// uncertainty decomposition (`decomposed`: Dirichlet students, BatchEnsembles, the unmerged
/// BatchEnsemble of a LatentBE student), Spearman's ρ of its MI with the teacher's over the
/// test and OOD images (`mi_spearman`), and its MI OOD AUROC as a fraction of the
/// teacher's, averaged over the OOD sets (`mi_auroc_frac`).
fn fidelity(
    v: &mut BTreeMap<String, f64>,
    test: &Scored,
    decomposed: Option<(&Scored, &[(String, Scored)])>,
    teacher: &TeacherRef,
) -> Result<()> {
    v.insert("agree".into(), metrics::top1_agreement(&test.probs, &teacher.test.probs)? * 100.0);
    v.insert("kl_teacher".into(), metrics::kl_divergence(&teacher.test.probs, &test.probs)?);
    let Some((d_test, d_ood)) = decomposed else { return Ok(()) };
    let (Some(s_mi), Some(t_mi)) = (d_test.scores.get("MI"), teacher.test.scores.get("MI")) else { return Ok(()) };
    let (mut s_all, mut t_all) = (s_mi.clone(), t_mi.clone());
    let mut fractions = Vec::new();
    for ((name, t_ood), t_auc) in teacher.ood.iter().zip(&teacher.ood_mi_auroc) {
        let (_, s_ood) = d_ood.iter().find(|(n, _)| n == name).with_context(|| format!("the student has no outputs on {name}, the teacher has"))?;
        let (s_o, t_o) = (&s_ood.scores["MI"], &t_ood.scores["MI"]);
        s_all.extend_from_slice(s_o);
        t_all.extend_from_slice(t_o);
        fractions.push(metrics::ood_detection(s_mi, s_o)?.auroc / t_auc);
    }
    v.insert("mi_spearman".into(), metrics::spearman(&s_all, &t_all)?);
    if !fractions.is_empty() {
        v.insert("mi_auroc_frac".into(), fractions.iter().sum::<f64>() / fractions.len() as f64);
    }
    Ok(())
}

fn measure(unit: &Unit, label_dir: &Path, teacher: Option<&TeacherRef>) -> Result<(BTreeMap<String, f64>, Scored, TuSeries)> {
    let bins = metrics::DEFAULT_BINS;
    let mut v = BTreeMap::new();
    let (test_labels, val_labels) = (labels(label_dir, "test")?, labels(label_dir, "val")?);
    let test = unit.score("test")?;
    let val = unit.score("val")?;
    let rep = metrics::evaluate(&test.probs, &test_labels, bins)?;
    let cal = metrics::evaluate_calibrated(&test.probs, &test_labels, &val.probs, &val_labels, bins)?;
    v.insert("acc".into(), rep.acc * 100.0);
    v.insert("nll".into(), rep.nll);
    v.insert("ece".into(), rep.ece);
    v.insert("brier".into(), rep.brier);
    v.insert("cnll".into(), cal.cnll);
    v.insert("cece".into(), cal.cece);
    v.insert("temperature".into(), cal.temperature);
    let sets = eval_sets(&unit.eval_dir())?;
    // OOD: each score separates test (in) from the OOD set (out).
    let mut tu: TuSeries = vec![("CIFAR-10 test".into(), test.scores["TU"].clone())];
    let mut ood_scored = Vec::new();
    for set in sets.iter().filter(|s| s.starts_with("ood-")) {
        let ood = unit.score(set)?;
        tu.push((set.trim_start_matches("ood-").to_string(), ood.scores["TU"].clone()));
        for (name, in_scores) in &test.scores {
            let r = metrics::ood_detection(in_scores, &ood.scores[name])?;
            let short = set.trim_start_matches("ood-");
            v.insert(format!("ood_{short}_{name}_auroc"), r.auroc);
            v.insert(format!("ood_{short}_{name}_aupr"), r.aupr);
        }
        ood_scored.push((set.clone(), ood));
    }
    if let (Some(t), Unit::Run(run)) = (teacher, unit) {
        // The view with an uncertainty decomposition: the run's own outputs when they have MI
        // (Dirichlet students, BatchEnsembles), else a LatentBE student's unmerged BE.
        let be_view = match score_be(&run.dir, "test")? {
            Some(be_test) if !test.scores.contains_key("MI") => {
                let ood = sets
                    .iter()
                    .filter(|s| s.starts_with("ood-"))
                    .map(|s| Ok((s.clone(), score_be(&run.dir, s)?.context("BatchEnsemble view missing for an OOD set")?)))
                    .collect::<Result<Vec<_>>>()?;
                Some((be_test, ood))
            }
            _ => None,
        };
        let decomposed = match &be_view {
            Some((be_test, ood)) => Some((be_test, ood.as_slice())),
            None if test.scores.contains_key("MI") => Some((&test, ood_scored.as_slice())),
            None => None,
        };
        fidelity(&mut v, &test, decomposed, t)?;
    }
    // Corruptions: mean over types and severities, uncalibrated and with the val temperature
    // (fitted above, once: refitting it per set cost ~90 % of a report).
    let mut results = Vec::new();
    let mut calibrated = Vec::new();
    for set in sets.iter().filter(|s| s.starts_with("corrupt-")) {
        let c = unit.score(set)?;
        let n = c.probs.rows();
        let (name, sev) = set.trim_start_matches("corrupt-").rsplit_once('-').context("corruption set name")?;
        let report = metrics::evaluate(&c.probs, &test_labels[..n], bins)?;
        calibrated.push(metrics::evaluate_at_temperature(&c.probs, &test_labels[..n], cal.temperature, bins)?);
        results.push(metrics::CorruptionResult { corruption: name.into(), severity: sev.parse()?, report });
    }
    if !results.is_empty() {
        let s = metrics::summarise_corruptions(&results)?;
        let c = metrics::mean_calibrated_report(&calibrated)?;
        v.insert("corr_acc".into(), s.overall.acc * 100.0);
        v.insert("corr_nll".into(), s.overall.nll);
        v.insert("corr_ece".into(), s.overall.ece);
        v.insert("corr_cnll".into(), c.cnll);
        v.insert("corr_cece".into(), c.cece);
    }
    Ok((v, test, tu))
}

fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let s = if xs.len() > 1 { (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
    (m, s)
}

/// Per-row summary: metric -> (mean, std, n).
#[derive(Debug, Clone, Serialize)]
pub struct RowSummary {
    /// Row id.
    pub id: String,
    /// Row label.
    pub label: String,
    /// Runs summarised.
    pub n: usize,
    /// Runs planned.
    pub planned: usize,
    /// Metric -> [mean, std].
    pub metrics: BTreeMap<String, [f64; 2]>,
    /// Published metric -> [mean, std].
    pub published: Option<BTreeMap<String, [f64; 2]>>,
}

/// Write the report of `plan` into `out`.
pub fn write_report(plan: &Plan, eval: &EvalSettings, out: &Path) -> Result<()> {
    let plots = out.join("plots");
    std::fs::create_dir_all(&plots).with_context(|| format!("creating {}", plots.display()))?;
    let mut units: Vec<UnitResult> = Vec::new();
    let mut summaries = Vec::new();
    let teacher_dirs: Vec<PathBuf> = plan.teacher_dirs();
    let teacher_ready = !teacher_dirs.is_empty() && teacher_dirs.iter().all(|d| d.join("eval/done.json").exists());
    let teacher_ref = if teacher_ready { Some(TeacherRef::load(&teacher_dirs).context("scoring the teacher ensemble")?) } else { None };
    for row in &plan.rows {
        let mut row_units = Vec::new();
        let planned;
        let mut first_scored = None;
        if row.kind == RowKind::Ensemble {
            planned = 1;
            if teacher_ready {
                let (mut v, s, tu) = measure(&Unit::Ensemble(teacher_dirs.clone()), &teacher_dirs[0], None)?;
                // How well the members fit their training data (`train_accuracy` of each run).
                let fits: Vec<f64> = teacher_dirs.iter().filter_map(|d| run_metric(d, "train_accuracy")).collect();
                if fits.len() == teacher_dirs.len() {
                    v.insert("member_train_acc_min".into(), fits.iter().cloned().fold(f64::INFINITY, f64::min) * 100.0);
                    v.insert("member_train_acc_mean".into(), fits.iter().sum::<f64>() / fits.len() as f64 * 100.0);
                }
                row_units.push(UnitResult { row: row.id.clone(), point: "ensemble".into(), values: v });
                first_scored = Some((s, teacher_dirs[0].clone(), tu));
            }
        } else {
            let runs = plan.row_runs(&row.id);
            planned = runs.len();
            for r in runs {
                if !r.dir.join("eval/done.json").exists() {
                    continue;
                }
                let (mut v, s, tu) = measure(&Unit::Run(r), &r.dir, teacher_ref.as_ref()).with_context(|| format!("scoring {}", r.dir.display()))?;
                for key in ["train_seconds", "train_images_per_second", "peak_memory_bytes", "train_accuracy", "train_nll"] {
                    if let Some(x) = run_metric(&r.dir, key) {
                        v.insert(key.into(), if key == "train_accuracy" { x * 100.0 } else { x });
                    }
                }
                row_units.push(UnitResult { row: row.id.clone(), point: r.point.clone(), values: v });
                if first_scored.is_none() {
                    first_scored = Some((s, r.dir.clone(), tu));
                }
            }
        }
        if let Some((scored, dir, tu)) = &first_scored {
            row_plots(&plots, row, scored, dir, tu)?;
        }
        let mut metrics_summary = BTreeMap::new();
        if let Some(first) = row_units.first() {
            for key in first.values.keys() {
                let xs: Vec<f64> = row_units.iter().filter_map(|u| u.values.get(key).copied()).collect();
                let (m, s) = mean_std(&xs);
                metrics_summary.insert(key.clone(), [m, s]);
            }
        }
        summaries.push(RowSummary {
            id: row.id.clone(),
            label: ensemble_label(row, teacher_dirs.len()),
            n: row_units.len(),
            planned,
            metrics: metrics_summary,
            published: row.published.clone(),
        });
        units.extend(row_units);
    }
    write_atomic(&out.join("runs.csv"), runs_csv(&units).as_bytes())?;
    write_atomic(&out.join("summary.csv"), summary_csv(&summaries).as_bytes())?;
    write_json(
        &out.join("summary.json"),
        &serde_json::json!({ "table": plan.table, "profile": plan.profile.name, "title": plan.spec.title, "evaluation": eval, "rows": summaries }),
    )?;
    write_atomic(&out.join("README.md"), readme(plan, eval, &summaries)?.as_bytes())?;
    Ok(())
}

/// A number from a run's `metrics.json`, if the file and the key are there.
fn run_metric(dir: &Path, key: &str) -> Option<f64> {
    let bytes = std::fs::read(dir.join("metrics.json")).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?[key].as_f64()
}

/// The teacher row's label names the ensemble size the profile really used (`DE-4` in the
/// paper's table, `DE-2` in the smoke profile).
fn ensemble_label(row: &RowSpec, members: usize) -> String {
    if row.kind == RowKind::Ensemble && members > 0 {
        if let Some(rest) = row.label.strip_prefix("DE-").and_then(|r| r.split_once(' ')) {
            return format!("DE-{members} {}", rest.1);
        }
    }
    row.label.clone()
}

fn row_plots(plots: &Path, row: &RowSpec, scored: &Scored, label_dir: &Path, tu: &TuSeries) -> Result<()> {
    let test_labels = labels(label_dir, "test")?;
    let rel = metrics::reliability(&scored.probs, &test_labels, metrics::DEFAULT_BINS)?;
    let ece = metrics::ece(&scored.probs, &test_labels, metrics::DEFAULT_BINS)?;
    let stem = plots.join(format!("reliability-{}", row.id));
    if let Err(e) = crate::plots::reliability_diagram(&stem, &format!("{} — reliability (test)", row.label), &rel.bins, Some(ece)) {
        // The SVG is written first and needs no font; a missing PNG font must not sink the report.
        tracing::warn!(plot = %stem.display(), error = format!("{e:#}"), "plot incomplete");
    }
    let stem = plots.join(format!("uncertainty-{}", row.id));
    if let Err(e) = crate::plots::histograms(&stem, &format!("{} — total uncertainty, in-distribution vs OOD", row.label), tu, 30, "total uncertainty TU (nats)") {
        tracing::warn!(plot = %stem.display(), error = format!("{e:#}"), "plot incomplete");
    }
    Ok(())
}

fn csv_escape(s: &str) -> String {
    if s.contains(',') || s.contains('"') { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn runs_csv(units: &[UnitResult]) -> String {
    let mut keys: Vec<String> = units.iter().flat_map(|u| u.values.keys().cloned()).collect();
    keys.sort();
    keys.dedup();
    let mut s = format!("row,point,{}\n", keys.join(","));
    for u in units {
        let vals: Vec<String> = keys.iter().map(|k| u.values.get(k).map_or(String::new(), |v| format!("{v}"))).collect();
        let _ = writeln!(s, "{},{},{}", csv_escape(&u.row), csv_escape(&u.point), vals.join(","));
    }
    s
}

fn summary_csv(rows: &[RowSummary]) -> String {
    let mut keys: Vec<String> = rows.iter().flat_map(|r| r.metrics.keys().cloned()).collect();
    keys.sort();
    keys.dedup();
    let head: Vec<String> = keys.iter().flat_map(|k| [format!("{k}_mean"), format!("{k}_std")]).collect();
    let mut s = format!("row,label,n,{}\n", head.join(","));
    for r in rows {
        let vals: Vec<String> = keys
            .iter()
            .flat_map(|k| match r.metrics.get(k) {
                Some([m, sd]) => [format!("{m}"), format!("{sd}")],
                None => [String::new(), String::new()],
            })
            .collect();
        let _ = writeln!(s, "{},{},{},{}", csv_escape(&r.id), csv_escape(&r.label), r.n, vals.join(","));
    }
    s
}

fn fmt_ms(ms: Option<&[f64; 2]>, digits: usize, n: usize) -> String {
    match ms {
        None => "—".into(),
        Some([m, s]) if n > 1 => format!("{m:.digits$} ± {s:.digits$}"),
        Some([m, _]) => format!("{m:.digits$}"),
    }
}

const MAIN: [(&str, &str, usize); 5] = [("acc", "ACC", 2), ("nll", "NLL", 3), ("ece", "ECE", 3), ("cnll", "cNLL", 3), ("cece", "cECE", 3)];

fn readme(plan: &Plan, eval: &EvalSettings, rows: &[RowSummary]) -> Result<String> {
    let mut s = String::new();
    let _ = writeln!(s, "# {} — `{}` profile\n", plan.spec.title, plan.profile.name);
    let _ = writeln!(s, "Generated by `cargo xtask report {} --profile {}` from the run directories under `{}`; do not edit by hand.\n", plan.table, plan.profile.name, plan.runs_root.file_name().map(|f| format!("runs/{}", f.to_string_lossy())).unwrap_or_default());
    if let Some(d) = profile_description(plan) {
        let _ = writeln!(s, "Profile: {d}\n");
    }
    let _ = writeln!(s, "## Main table (test set; ACC in %, mean ± std over student seeds)\n");
    let _ = writeln!(s, "| method | n | ACC | NLL | ECE | cNLL | cECE | paper ACC | paper NLL | paper ECE | paper cNLL | paper cECE |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let ours: Vec<String> = MAIN.iter().map(|(k, _, d)| fmt_ms(r.metrics.get(*k), *d, r.n)).collect();
        let paper: Vec<String> = MAIN
            .iter()
            .map(|(k, _, d)| r.published.as_ref().and_then(|p| p.get(*k)).map_or("—".into(), |[m, sd]| if *sd > 0.0 { format!("{m:.d$} ± {sd:.d$}", d = *d) } else { format!("{m:.d$}", d = *d) }))
            .collect();
        let _ = writeln!(s, "| {} | {}/{} | {} | {} |", r.label, r.n, r.planned, ours.join(" | "), paper.join(" | "));
    }
    let _ = writeln!(s, "\n## The paper's claims, checked on these numbers\n");
    for line in claims(rows) {
        let _ = writeln!(s, "- {line}");
    }
    let _ = writeln!(s, "\n## The regime (criteria of `docs/cpu-regime.md`)\n");
    for line in regime_checks(rows) {
        let _ = writeln!(s, "- {line}");
    }
    if rows.iter().any(|r| r.metrics.contains_key("agree")) {
        let _ = writeln!(s, "\n## Fidelity to the teacher (test set; MI columns for students with an uncertainty decomposition)\n");
        let _ = writeln!(s, "| method | train ACC | top-1 agreement | KL(teacher ‖ student) | MI Spearman ρ (test + OOD) | MI OOD AUROC / teacher's |");
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for r in rows.iter().filter(|r| r.n > 0) {
            let train = if r.id == "teacher" { r.metrics.get("member_train_acc_mean") } else { r.metrics.get("train_accuracy") };
            let v: Vec<String> = [(train, 2), (r.metrics.get("agree"), 2), (r.metrics.get("kl_teacher"), 4), (r.metrics.get("mi_spearman"), 3), (r.metrics.get("mi_auroc_frac"), 3)]
                .into_iter()
                .map(|(m, d)| fmt_ms(m, d, r.n))
                .collect();
            let _ = writeln!(s, "| {} | {} |", r.label, v.join(" | "));
        }
        let _ = writeln!(s, "\nTrain ACC: clean training images, eval mode (the teacher row: mean over its members). LatentBE students: agreement and KL of the merged network, MI of the unmerged BatchEnsemble (`eval/be-*.npy`); Dirichlet students: the MI of their Dirichlet; the MI OOD AUROC ratio is averaged over the OOD sets.");
    }
    // OOD
    let ood_sets: Vec<String> = {
        let mut v: Vec<String> = rows
            .iter()
            .flat_map(|r| r.metrics.keys())
            .filter_map(|k| k.strip_prefix("ood_").and_then(|k| k.strip_suffix("_conf_auroc")).map(String::from))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    if !ood_sets.is_empty() {
        let _ = writeln!(s, "\n## OOD detection (AUROC, test set = in-distribution; score: conf = max probability, TU = total, DU = data, MI = knowledge uncertainty)\n");
        let mut head = String::from("| method |");
        let mut rule = String::from("|---|");
        for set in &ood_sets {
            for m in ["conf", "TU", "DU", "MI"] {
                let _ = write!(head, " {set} {m} |");
                rule.push_str("---|");
            }
        }
        let _ = writeln!(s, "{head}\n{rule}");
        for r in rows.iter().filter(|r| r.n > 0) {
            let mut line = format!("| {} |", r.label);
            for set in &ood_sets {
                for m in ["conf", "TU", "DU", "MI"] {
                    let _ = write!(line, " {} |", fmt_ms(r.metrics.get(&format!("ood_{set}_{m}_auroc")), 3, r.n));
                }
            }
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(s, "\nAUPR (in-distribution = negative class, OOD = positive) is in `summary.csv`. Sets: Fashion-MNIST test (Debian `dataset-fashion-mnist`, padded to 32x32, 3 channels), SVHN test if its official file is present, uniform and Gaussian noise images; {} images each at most.", eval.ood_images);
    }
    if rows.iter().any(|r| r.metrics.contains_key("corr_acc")) {
        let _ = writeln!(s, "\n## Corruptions (CIFAR-10-C protocol, generated in-process: 15 types x 5 severities of the first {} test images; mean over all 75)\n", eval.corruption_images);
        let _ = writeln!(s, "| method | ACC | NLL | ECE | cNLL | cECE |\n|---|---|---|---|---|---|");
        for r in rows.iter().filter(|r| r.metrics.contains_key("corr_acc")) {
            let v: Vec<String> = ["corr_acc", "corr_nll", "corr_ece", "corr_cnll", "corr_cece"]
                .iter()
                .zip([2, 3, 3, 3, 3])
                .map(|(k, d)| fmt_ms(r.metrics.get(*k), d, r.n))
                .collect();
            let _ = writeln!(s, "| {} | {} |", r.label, v.join(" | "));
        }
        let approx: Vec<String> = data::Corruption::ALL
            .iter()
            .filter_map(|c| c.is_approximated().map(|why| format!("`{}`: {why}", c.name())))
            .collect();
        if !approx.is_empty() {
            let _ = writeln!(s, "\nApproximated corruptions (see `data::corrupt`):\n");
            for a in approx {
                let _ = writeln!(s, "- {a}");
            }
        }
    }
    let _ = writeln!(s, "\n## Plots\n");
    for r in rows.iter().filter(|r| r.n > 0) {
        let _ = writeln!(s, "- {}: [reliability](plots/reliability-{}.svg), [uncertainty histogram](plots/uncertainty-{}.svg)", r.label, r.id, r.id);
    }
    let _ = writeln!(s, "\n## Data and hardware\n");
    let _ = writeln!(s, "- Data: CIFAR-10 in the official binary layout. On this project's machines it is the copy described in `../shared/data/cifar-10-batches-bin` (labels exact; data_batch_1 records 0..3999 and test records 0..999 bit-exact, all other pixels recovered from JPEG copies, ~6/255 mean error), so accuracies are comparable to, not identical with, published CIFAR-10 numbers.");
    let _ = writeln!(s, "- Hardware: {}.", hardware());
    let _ = writeln!(s, "- Training time and throughput per run: `runs.csv` (`train_seconds`, `train_images_per_second`, `peak_memory_bytes`).");
    Ok(s)
}

fn profile_description(plan: &Plan) -> Option<String> {
    let f = plan.profile.file.as_ref()?;
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(f).ok()?).ok()?;
    t.get("description").and_then(|d| d.as_str()).map(String::from)
}

/// One metric of a claim: row `a` beats row `b` on `metric` (higher or lower is better).
struct Comparison {
    metric: &'static str,
    label: &'static str,
    higher_is_better: bool,
    digits: usize,
}

const ACC_UP: Comparison = Comparison { metric: "acc", label: "ACC", higher_is_better: true, digits: 2 };
const NLL_DOWN: Comparison = Comparison { metric: "nll", label: "NLL", higher_is_better: false, digits: 3 };
const ECE_DOWN: Comparison = Comparison { metric: "ece", label: "ECE", higher_is_better: false, digits: 3 };

/// Where a comparison's interval lies relative to 0.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Claimed,
    Opposite,
    Straddles,
}

/// The claims of PROTOCOLS.md, each metric's gap with its 95 % Welch interval (the student
/// seeds of two rows are independent runs; Welch does not assume equal variances). Verdict:
/// "holds" when every interval lies on the claimed side of 0, "contradicted" when some
/// interval lies entirely on the other side, else "not resolved at n seeds".
fn claims(rows: &[RowSummary]) -> Vec<String> {
    let group = |id: &str, k: &str| -> Option<metrics::GroupStats> {
        let r = rows.iter().find(|r| r.id == id && r.n > 0)?;
        let [mean, std] = *r.metrics.get(k)?;
        Some(metrics::GroupStats { mean, std, n: r.n })
    };
    let claim = |text: &str, a: &str, b: &str, cmp: &[Comparison]| -> String {
        let mut parts = Vec::new();
        let mut sides = Vec::new();
        let mut n_min = usize::MAX;
        for c in cmp {
            let (Some(ga), Some(gb)) = (group(a, c.metric), group(b, c.metric)) else {
                return format!("{text}: not all runs are finished.");
            };
            n_min = n_min.min(ga.n).min(gb.n);
            let d = c.digits;
            let ms = |g: metrics::GroupStats| if g.n > 1 { format!("{:.d$} ± {:.d$}", g.mean, g.std) } else { format!("{:.d$}", g.mean) };
            let mut part = format!("{} {} vs {} (n = {}, {}): gap {:+.d$}", c.label, ms(ga), ms(gb), ga.n, gb.n, ga.mean - gb.mean);
            match metrics::welch_interval(ga, gb, 0.95) {
                Ok(i) => {
                    let _ = write!(part, ", 95 % CI [{:+.d$}, {:+.d$}]", i.lo, i.hi);
                    let (claimed_lo, claimed_hi) = if c.higher_is_better { (i.lo > 0.0, i.hi < 0.0) } else { (i.hi < 0.0, i.lo > 0.0) };
                    sides.push(if claimed_lo { Side::Claimed } else if claimed_hi { Side::Opposite } else { Side::Straddles });
                }
                Err(_) => {
                    part.push_str(", no interval with one seed");
                    sides.push(Side::Straddles);
                }
            }
            parts.push(part);
        }
        let verdict = if sides.contains(&Side::Opposite) {
            "**contradicted**".to_string()
        } else if sides.iter().all(|s| *s == Side::Claimed) {
            "**holds**".to_string()
        } else {
            format!("**not resolved at {n_min} seed{}**", if n_min == 1 { "" } else { "s" })
        };
        format!("{text}: {verdict} ({}).", parts.join("; "))
    };
    vec![
        claim("KD + LatentBE beats KD on ACC and NLL", "kd-latentbe", "kd", &[ACC_UP, NLL_DOWN]),
        claim("TDiv-SDiv lowers NLL and ECE below KD + LatentBE", "tdiv-sdiv", "kd-latentbe", &[NLL_DOWN, ECE_DOWN]),
        claim("TDiv-SDiv lowers NLL and ECE below ConfODS", "tdiv-sdiv", "conf-ods", &[NLL_DOWN, ECE_DOWN]),
        "The single-pass LatentBE student costs one backbone forward pass: it is saved as the merged plain network (see `cargo xtask bench`).".into(),
        "Rule: each gap is row − comparator (mean over student seeds) with its 95 % Welch interval (unequal variances, Welch–Satterthwaite degrees of freedom); a claim holds when every interval lies on the claimed side of 0, is contradicted when one lies entirely on the other side, and is otherwise not resolved at that many seeds.".into(),
    ]
}

/// The regime criteria of `docs/cpu-regime.md`, checked on the summary: teachers fit their
/// training data, KD students are over-confident.
fn regime_checks(rows: &[RowSummary]) -> Vec<String> {
    let get = |id: &str, k: &str| rows.iter().find(|r| r.id == id && r.n > 0).and_then(|r| r.metrics.get(k)).map(|v| v[0]);
    let pass = |ok: bool| if ok { "**met**" } else { "**not met**" };
    let mut out = Vec::new();
    match get("teacher", "member_train_acc_min") {
        Some(a) => out.push(format!("Teachers fit their training data (every member ≥ 98 % clean training accuracy): {} (lowest member {a:.2} %).", pass(a >= 98.0))),
        None => out.push("Teachers' training accuracy: not recorded (runs older than `train_accuracy` in metrics.json).".into()),
    }
    if let (Some(n), Some(c)) = (get("kd", "nll"), get("kd", "cnll")) {
        out.push(format!("KD students over-confident, NLL − cNLL ≥ 0.03: {} ({:.3} − {:.3} = {:.3}; paper 0.270 − 0.201 = 0.069).", pass(n - c >= 0.03), n, c, n - c));
    }
    if let (Some(k), Some(t)) = (get("kd", "ece"), get("teacher", "ece")) {
        out.push(format!("KD ECE at least twice the teacher's: {} ({k:.3} vs {t:.3}; paper 0.042 vs 0.006).", pass(k >= 2.0 * t)));
    }
    // The direction of the miscalibration: NLL − cNLL and ECE are as large for a student that
    // is under-confident; temperature scaling tells them apart (T > 1 flattens an
    // over-confident softmax). docs/cpu-regime.md, criterion 2.
    if let Some(t) = get("kd", "temperature") {
        out.push(format!("KD miscalibrated towards over-confidence (fitted temperature > 1): {} (T = {t:.3}).", pass(t > 1.0)));
    }
    out
}

fn hardware() -> String {
    let cpu = crate::cmd_bench::report::cpu_model();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or("?".into(), |kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0));
    let signature = std::fs::read_to_string("/proc/cpuinfo").ok().as_deref().and_then(crate::cmd_bench::report::cpu_signature);
    let cpu = signature.map_or_else(|| cpu.clone(), |sig| format!("{cpu} ({sig})"));
    format!("{cpu}, {cores} cores available, {mem} RAM, backend flex (CPU) unless the runs say otherwise")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, metrics: &[(&str, [f64; 2])]) -> RowSummary {
        RowSummary {
            id: id.into(),
            label: id.into(),
            n: 2,
            planned: 2,
            metrics: metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            published: None,
        }
    }

    #[test]
    fn claims_carry_welch_intervals_and_three_verdicts() {
        let rows = [
            row("kd", &[("acc", [64.31, 0.11]), ("nll", [0.984, 0.001])]),
            row("kd-latentbe", &[("acc", [65.19, 0.07]), ("nll", [0.966, 0.005]), ("ece", [0.035, 0.001])]),
            row("conf-ods", &[("nll", [0.977, 0.014]), ("ece", [0.043, 0.001])]),
            row("tdiv-sdiv", &[("nll", [0.976, 0.004]), ("ece", [0.041, 0.002])]),
        ];
        let c = claims(&rows);
        // Intervals checked against scipy (t = scipy.stats.t.ppf(0.975, ν)):
        // ACC: +0.88, se = √(.07²/2 + .11²/2) = .0922, ν = 1.70: CI [+0.407, +1.353].
        // NLL: −0.018, se = .0036, ν = 1.08: CI [−0.057, +0.021] straddles 0 → not resolved.
        assert!(c[0].starts_with("KD + LatentBE beats KD on ACC and NLL: **not resolved at 2 seeds**"), "{}", c[0]);
        assert!(c[0].contains("ACC 65.19 ± 0.07 vs 64.31 ± 0.11 (n = 2, 2): gap +0.88, 95 % CI [+0."), "{}", c[0]);
        // NLL +0.010 above KD + LatentBE: CI [−0.010, +0.030]; ECE +0.006: CI [−0.004, +0.016];
        // both straddle 0: not resolved.
        assert!(c[1].contains("**not resolved at 2 seeds**"), "{}", c[1]);
        // Clear gaps: holds; a clear gap the wrong way: contradicted; missing rows: unfinished.
        // NLL 0.90 ± .004 vs 0.977 ± .004: CI [−0.094, −0.060]; ECE: [−0.027, −0.019].
        let mut clear = rows.clone();
        clear[2] = row("conf-ods", &[("nll", [0.977, 0.004]), ("ece", [0.043, 0.001])]);
        clear[3] = row("tdiv-sdiv", &[("nll", [0.90, 0.004]), ("ece", [0.020, 0.001])]);
        assert!(claims(&clear)[2].contains("below ConfODS: **holds**"), "{:?}", claims(&clear));
        // NLL 1.20 vs 0.977: CI [+0.210, +0.236], entirely above 0.
        clear[3] = row("tdiv-sdiv", &[("nll", [1.20, 0.004]), ("ece", [0.020, 0.001])]);
        assert!(claims(&clear)[2].contains("below ConfODS: **contradicted**"), "{:?}", claims(&clear));
        assert!(claims(&rows[2..])[0].contains("not all runs are finished"));
        let one = [RowSummary { n: 1, ..rows[0].clone() }, RowSummary { n: 1, ..rows[1].clone() }];
        assert!(claims(&one)[0].contains("**not resolved at 1 seed**") && claims(&one)[0].contains("no interval with one seed"), "{:?}", claims(&one));
    }

    #[test]
    fn regime_checks_apply_the_documented_thresholds() {
        let rows = [
            row("teacher", &[("member_train_acc_min", [98.4, 0.0]), ("ece", [0.010, 0.0])]),
            row("kd", &[("nll", [1.00, 0.01]), ("cnll", [0.96, 0.01]), ("ece", [0.019, 0.001]), ("temperature", [0.93, 0.02])]),
        ];
        let c = regime_checks(&rows);
        assert!(c[0].contains("**met**") && c[0].contains("98.40"), "{}", c[0]);
        assert!(c[1].contains("**met**") && c[1].contains("0.040"), "{}", c[1]);
        assert!(c[2].contains("**not met**"), "{}", c[2]);
        // An under-confident student (T < 1) fails the direction check.
        assert!(c[3].contains("**not met**") && c[3].contains("T = 0.930"), "{}", c[3]);
        let mut over = rows.clone();
        over[1] = row("kd", &[("temperature", [1.31, 0.02])]);
        assert!(regime_checks(&over)[1].contains("**met**"), "{:?}", regime_checks(&over));
    }
}
