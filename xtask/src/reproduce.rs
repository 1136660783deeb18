//! `cargo xtask reproduce <table> [--profile …]`: plan, run and report a paper table.
//!
//! The table file `experiments/<table>/table.toml` lists the rows; each row `id` is an
//! experiment file `experiments/<table>/<id>.toml` (with its `extends` chain and `[grid]`),
//! the profile `experiments/<table>/profiles/<profile>.toml` overrides them. The plan:
//! 1. the teacher experiment's grid (each teacher trained once, shared by every student row);
//! 2. every student row's grid, distilled from all teachers; `train` rows from labels;
//! 3. the evaluation stage of every finished run (OOD sets, corruptions: `eval/`);
//! 4. the report (`results/<table>-<profile>/`, also `cargo xtask report`).
//!
//! Runs live in `runs/<table>-<profile>/<row>/<point>/`. A finished run (its `metrics.json`
//! exists) is skipped, an interrupted one (`<point>.partial/`) resumes from its last epoch
//! checkpoint; a run directory holding a different experiment is an error, never silently
//! reused. Every artefact is written to a temporary name and renamed, so the process can be
//! killed at any moment.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::backend::Backend;
use crate::cmd_train::{RecipeArgs, TrainArgs, run_experiment};
use crate::compose::{self, Profile};
use crate::experiment::TrainExperiment;
use crate::fsx::repo_root;

/// Arguments of `xtask reproduce`.
#[derive(clap::Args, Debug)]
pub struct ReproduceArgs {
    /// Table: `cifar10`, `cifar100` (an `experiments/<table>/table.toml`) or `spirals`.
    pub table: String,
    /// `smoke` (CI, minutes), `cpu` (2-core machine, hours), `paper` (PROTOCOLS.md, GPU).
    #[arg(long, default_value = "cpu")]
    pub profile: String,
    /// Run only these rows (ids of table.toml; repeatable). The teacher runs first if a
    /// selected row needs it.
    #[arg(long)]
    pub only: Vec<String>,
    /// Also run the rows marked `extra` (not in the paper's table).
    #[arg(long)]
    pub extras: bool,
    /// Print the plan with estimated times and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// When another process trains one of the runs (holds its lock), wait for it instead of
    /// reporting that run as failed and going on with the others.
    #[arg(long)]
    pub wait: bool,
    /// Burn backend.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Data root (else $DISTILLERY_DATA, else datasets/, else ../shared/data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Folders.
    #[command(flatten)]
    pub dirs: TableDirs,
    /// Where the runs train: `local` (this process, one after another) or `slurm` (job arrays
    /// submitted with `sbatch`: teachers, then students, then evaluation and report).
    #[arg(long, value_enum, default_value_t = crate::slurm::Executor::Local)]
    pub executor: crate::slurm::Executor,
    /// Options of the Slurm executor.
    #[command(flatten)]
    pub slurm: crate::slurm::SlurmArgs,
    /// Print which planned runs are done, training, failed, interrupted or pending (from the
    /// run directories; with the job ids of the last Slurm submission) and exit.
    #[arg(long)]
    pub status: bool,
    /// Train nothing: evaluate and report, and fail if a planned run is not finished (the
    /// Slurm executor's final job).
    #[arg(long)]
    pub report_only: bool,
}

/// Where experiments, runs and reports live (defaults: `experiments/`, `runs/`, `results/`
/// in the repository).
#[derive(clap::Args, Debug, Clone)]
pub struct TableDirs {
    /// Where run directories go (default `runs/` in the repository).
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
    /// Where reports go (default `results/` in the repository).
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Experiments folder (default `experiments/` in the repository).
    #[arg(long)]
    pub experiments_dir: Option<PathBuf>,
}

impl TableDirs {
    /// (experiments, runs, results) with the defaults filled in.
    pub fn resolve(&self) -> (PathBuf, PathBuf, PathBuf) {
        let root = repo_root();
        (
            self.experiments_dir.clone().unwrap_or_else(|| root.join("experiments")),
            self.runs_dir.clone().unwrap_or_else(|| root.join("runs")),
            self.results_dir.clone().unwrap_or_else(|| root.join("results")),
        )
    }
}

/// `experiments/<table>/table.toml`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFile {
    /// Caption of the report table.
    pub title: String,
    /// Row id of the teacher experiment.
    pub teacher: String,
    /// Rows in the paper's order.
    pub rows: Vec<RowSpec>,
}

/// One row of a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    /// Experiment file stem.
    pub id: String,
    /// Label in the report.
    pub label: String,
    /// How the row is produced.
    #[serde(default)]
    pub kind: RowKind,
    /// Not in the paper's table (runs with `--extras` or `--only`).
    #[serde(default)]
    pub extra: bool,
    /// Published numbers: metric -> [mean, std].
    #[serde(default)]
    pub published: Option<std::collections::BTreeMap<String, [f64; 2]>>,
}

/// How a row is produced.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RowKind {
    /// Distilled from the teacher runs (`xtask distill`).
    #[default]
    Student,
    /// The teacher runs scored as one ensemble.
    Ensemble,
    /// Trained on labels (`xtask train`).
    Train,
}

/// Where a planned run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// `metrics.json` exists.
    Done,
    /// Interrupted after this many epochs, its lock free: resumable.
    Partial(usize),
    /// Its last attempt failed (`.partial/failed.json`; its lock free); rerunning resumes it.
    Failed {
        /// Completed epochs.
        epoch: usize,
        /// The error of the last attempt.
        error: String,
    },
    /// Being trained now by another process (it holds the run's lock), at this epoch.
    Training {
        /// Completed epochs.
        epoch: usize,
        /// The holder's pid, where it could be read.
        pid: Option<u32>,
    },
    /// Not started.
    Pending,
}

/// One planned training run.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// Row id.
    pub row: String,
    /// Grid point name (`seed-0`).
    pub point: String,
    /// The experiment at this point.
    pub exp: TrainExperiment,
    /// The experiment file of the row.
    pub file: PathBuf,
    /// Run directory.
    pub dir: PathBuf,
    /// Distilled from the teachers?
    pub student: bool,
    /// Current status.
    pub status: Status,
    /// Estimated seconds still needed on this machine (flex, 2 cores).
    pub est_seconds: f64,
}

/// A table, profile and their runs.
pub struct Plan {
    /// Table name.
    pub table: String,
    /// The table file.
    pub spec: TableFile,
    /// The profile.
    pub profile: Profile,
    /// `runs/<table>-<profile>`.
    pub runs_root: PathBuf,
    /// Teacher runs first, then the rows in table order.
    pub runs: Vec<PlannedRun>,
    /// The rows selected.
    pub rows: Vec<RowSpec>,
}

impl Plan {
    /// Teacher run directories.
    pub fn teacher_dirs(&self) -> Vec<PathBuf> {
        self.runs.iter().filter(|r| r.row == self.spec.teacher).map(|r| r.dir.clone()).collect()
    }

    /// Runs of one row.
    pub fn row_runs(&self, row: &str) -> Vec<&PlannedRun> {
        let id = if self.rows.iter().any(|r| r.id == row && r.kind == RowKind::Ensemble) { &self.spec.teacher } else { row };
        self.runs.iter().filter(|r| r.row == *id).collect()
    }
}

/// Build the plan (reads files only; trains nothing).
pub fn plan(
    experiments: &Path,
    table: &str,
    profile_name: &str,
    runs_dir: &Path,
    only: &[String],
    extras: bool,
) -> Result<Plan> {
    let table_dir = experiments.join(table);
    let table_file = table_dir.join("table.toml");
    let text = std::fs::read_to_string(&table_file)
        .with_context(|| format!("reading {} (tables: cifar10, cifar100, spirals)", table_file.display()))?;
    let spec: TableFile = toml::from_str(&text).with_context(|| format!("in {}", table_file.display()))?;
    for id in only {
        if !spec.rows.iter().any(|r| &r.id == id) {
            let ids: Vec<_> = spec.rows.iter().map(|r| r.id.as_str()).collect();
            bail!("--only {id}: no such row in {} (rows: {})", table_file.display(), ids.join(", "));
        }
    }
    let profile = Profile::load(&table_dir, profile_name)?;
    let runs_root = runs_dir.join(format!("{table}-{profile_name}"));
    let rows: Vec<RowSpec> = spec
        .rows
        .iter()
        .filter(|r| if only.is_empty() { extras || !r.extra } else { only.contains(&r.id) })
        .cloned()
        .collect();
    let needs_teacher = rows.iter().any(|r| r.kind != RowKind::Train);
    let mut runs = Vec::new();
    let mut add = |id: &str, student: bool| -> Result<()> {
        let file = table_dir.join(format!("{id}.toml"));
        let layered = profile.apply(compose::load_layered(&file)?, id)?;
        for point in compose::expand_grid(layered.table.clone(), &file.display().to_string())? {
            let l = compose::Layered { table: point.table, files: layered.files.clone() };
            let exp = TrainExperiment::from_layered(&l)?;
            if student != exp.distill.is_some() {
                bail!(
                    "{}: row {id} is {} but the experiment {} a [distill] section",
                    file.display(),
                    if student { "a student" } else { "trained on labels" },
                    if student { "has no" } else { "has" }
                );
            }
            let dir = runs_root.join(id).join(&point.name);
            let status = run_status(&dir, &exp)?;
            runs.push(PlannedRun { row: id.into(), point: point.name, exp, file: file.clone(), dir, student, status, est_seconds: 0.0 });
        }
        Ok(())
    };
    if needs_teacher {
        add(&spec.teacher, false)?;
    }
    for r in &rows {
        match r.kind {
            RowKind::Ensemble => {}
            RowKind::Student => add(&r.id, true)?,
            RowKind::Train => add(&r.id, false)?,
        }
    }
    // Teachers first; then students point by point (every row's first seed before any
    // row's second), so an interrupted table has every method at least once.
    let n_teacher = runs.iter().filter(|r| r.row == spec.teacher).count();
    let mut point_index = std::collections::HashMap::new();
    let keyed: Vec<(usize, PlannedRun)> = runs
        .into_iter()
        .map(|r| {
            let i = point_index.entry(r.row.clone()).or_insert(0usize);
            *i += 1;
            (*i, r)
        })
        .collect();
    let (teacher_runs, mut student_runs): (Vec<_>, Vec<_>) = keyed.into_iter().partition(|(_, r)| r.row == spec.teacher);
    student_runs.sort_by_key(|(i, _)| *i);
    let mut runs: Vec<PlannedRun> = teacher_runs.into_iter().chain(student_runs).map(|(_, r)| r).collect();
    let teachers = n_teacher;
    for r in &mut runs {
        r.est_seconds = estimate_seconds(&r.exp, teachers, &r.status);
    }
    Ok(Plan { table: table.into(), spec, profile, runs_root, runs, rows })
}

/// Compare the run directory's recorded experiment with the planned one (names aside).
fn run_status(dir: &Path, exp: &TrainExperiment) -> Result<Status> {
    let partial = dir.with_extension("partial");
    let (recorded, status) = if dir.join("metrics.json").exists() {
        (dir.join("experiment.toml"), Status::Done)
    } else if partial.join("experiment.toml").exists() {
        let epoch = std::fs::read(partial.join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("epoch").and_then(|e| e.as_u64()))
            .unwrap_or(0) as usize;
        (partial.join("experiment.toml"), Status::Partial(epoch))
    } else {
        return Ok(Status::Pending);
    };
    let text = std::fs::read_to_string(&recorded).with_context(|| format!("reading {}", recorded.display()))?;
    let old: TrainExperiment = toml::from_str(&text).with_context(|| format!("parsing {}", recorded.display()))?;
    let diff = crate::experiment::differing_keys(&old, exp)?;
    if !diff.is_empty() {
        bail!(
            "{} holds a different experiment than the plan ({}); delete that directory or use another --runs-dir",
            recorded.display(),
            diff.join("; ")
        );
    }
    if let Status::Partial(epoch) = status {
        if let crate::run_lock::Holder::Held(pid) = crate::run_lock::probe(&partial) {
            return Ok(Status::Training { epoch, pid });
        }
        if let Some(error) = read_failure(&partial) {
            return Ok(Status::Failed { epoch, error });
        }
    }
    Ok(status)
}

/// File in `.partial/` recording why the last attempt failed (removed when a new one starts).
pub const FAILED: &str = "failed.json";

fn read_failure(partial: &Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(partial.join(FAILED)).ok()?).ok()?;
    v.get("error")?.as_str().map(str::to_string)
}

/// Train one planned run (skipping a finished one, resuming an interrupted one); a failure
/// is recorded in `.partial/failed.json` for `--status`.
pub fn train_planned(r: &PlannedRun, profile: &str, teacher_dirs: &[PathBuf], backend: Backend, data_dir: Option<&Path>, wait: bool) -> Result<()> {
    if r.student && !teacher_dirs.iter().all(|d| d.join("metrics.json").exists()) {
        bail!("{} {}: teachers not finished", r.row, r.point);
    }
    tracing::info!(row = r.row, point = r.point, dir = %r.dir.display(), estimate = hms(r.est_seconds), "run");
    let train_args = TrainArgs {
        recipe: RecipeArgs { config: r.file.clone(), profile: Some(profile.to_string()), seed: None, backend, data_dir: data_dir.map(Path::to_path_buf) },
        out: Some(r.dir.clone()),
        stop_after: None,
        wait,
        restart: false,
    };
    let teachers: &[PathBuf] = if r.student { teacher_dirs } else { &[] };
    let result = run_experiment(r.exp.clone(), train_args, teachers);
    if let Err(e) = &result {
        let partial = r.dir.with_extension("partial");
        if partial.is_dir() && !crate::interrupt::requested() {
            let _ = crate::fsx::write_json(&partial.join(FAILED), &serde_json::json!({ "error": format!("{e:#}") }));
        }
    }
    result
}

/// Rough training time on the reference machine ([`REFERENCE_RESNET20_IPS`]; `run` scales it
/// by [`calibration`]) (flex with the patched convolution kernels and mimalloc, `bench train`): measured ResNet-8 train throughput ~760 img/s,
/// ResNet-20 ~235, ResNet-32 ~155, WRN-16-4 ~50, others interpolated; an eval-mode teacher
/// forward costs ~1/4 of a train step; BE-M students cost M; ODS/ConfODS add one teacher
/// forward+backward; TDiv-SDiv measured 1.79x a KD + LatentBE step.
pub fn estimate_seconds(exp: &TrainExperiment, teachers: usize, status: &Status) -> f64 {
    let done_epochs = match status {
        Status::Done => return 0.0,
        Status::Partial(e) | Status::Training { epoch: e, .. } | Status::Failed { epoch: e, .. } => *e,
        Status::Pending => 0,
    };
    let arch = exp.model.arch.as_str();
    let base_ips = match arch {
        "resnet8" => 760.0,
        "resnet14" => 420.0,
        "resnet20" => 235.0,
        "resnet32" => 155.0,
        "resnet44" => 110.0,
        "resnet56" => 85.0,
        a if a.starts_with("wrn-16") => 50.0,
        a if a.starts_with("wrn-28") => 15.0,
        _ => 100.0,
    };
    let members = exp.model.batch_ensemble.as_ref().map_or(1, |b| b.members) as f64;
    let mut cost = members;
    if let Some(d) = &exp.distill {
        cost += 0.25 * teachers as f64;
        match d.perturbation.as_str() {
            "ods" | "conf_ods" => cost += 1.0,
            "tdiv_sdiv" => cost *= 1.79,
            _ => {}
        }
    }
    let mut images = (exp.data.train[1] - exp.data.train[0]) as f64;
    if let Some(aux) = exp.distill.as_ref().and_then(|d| d.aux.as_ref()) {
        images += aux.images as f64;
    }
    let epochs = exp.optim.epochs.saturating_sub(done_epochs) as f64;
    epochs * images * cost / base_ips
}

/// ResNet-20 (batch 128) train-step throughput, img/s, of the machine the constants of
/// [`estimate_seconds`] were measured on (session 5: an EPYC VM, 2 threads).
pub const REFERENCE_RESNET20_IPS: f64 = 235.0;

/// How the plan's estimates are scaled to this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// This machine's speed over the reference machine's (estimates are divided by it).
    pub factor: f64,
    /// Where the factor comes from, for the plan's last line.
    pub basis: String,
}

/// Scale the estimates by this machine's measured ResNet-20 train step when a flex bench
/// report (`results/bench/flex.json` or `flex-train.json`, batch 128) was measured on the
/// same CPU (model name and `cpu_signature`) with the same thread count; else keep the
/// reference machine's figures and say so. CPUs sold under one name differ several-fold
/// (docs/perf-levers.md, session 6).
pub fn calibration(bench_dir: &Path, cpu_model: &str, cpu_signature: Option<&str>, threads: usize) -> Calibration {
    let measured = ["flex.json", "flex-train.json"].iter().find_map(|name| {
        let path = bench_dir.join(name);
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        let m = &r["machine"];
        let same = cpu_signature.is_some()
            && m["cpu_signature"].as_str() == cpu_signature
            && m["cpu_model"].as_str() == Some(cpu_model)
            && m["threads"].as_u64() == Some(threads as u64);
        let shape = r["settings"]["arch"] == "resnet20" && r["settings"]["batch"] == 128;
        let ips = r["figures"].as_array()?.iter().find(|f| f["id"] == "train_single")?["images_per_second"]["median"].as_f64()?;
        (same && shape && ips.is_finite() && ips > 0.0).then(|| (path, ips, m["date_utc"].as_str().unwrap_or("?").to_string()))
    });
    match measured {
        Some((path, ips, date)) => Calibration {
            factor: ips / REFERENCE_RESNET20_IPS,
            basis: format!(
                "scaled by {:.2}: this CPU's ResNet-20 train step is {ips:.0} img/s in {} ({date}) vs {REFERENCE_RESNET20_IPS:.0} on the reference machine",
                ips / REFERENCE_RESNET20_IPS,
                path.display()
            ),
        },
        None => Calibration {
            factor: 1.0,
            basis: format!(
                "reference machine's speed (ResNet-20 train step {REFERENCE_RESNET20_IPS:.0} img/s); `cargo xtask bench train` here scales the estimates to this CPU"
            ),
        },
    }
}

fn hms(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60)
}

/// `xtask reproduce`.
pub fn run(args: ReproduceArgs) -> Result<()> {
    if args.table == "spirals" {
        return crate::cmd_spirals::reproduce(&args);
    }
    let (experiments, runs_dir, results_dir) = args.dirs.resolve();
    let mut plan = plan(&experiments, &args.table, &args.profile, &runs_dir, &args.only, args.extras)?;
    let cal = {
        use crate::cmd_bench::report::{cpu_model, cpu_signature};
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let bench = crate::fsx::repo_root().join("results").join("bench");
        calibration(&bench, &cpu_model(), cpu_signature(&cpuinfo).as_deref(), rayon::current_num_threads())
    };
    for r in &mut plan.runs {
        r.est_seconds /= cal.factor;
    }
    if args.status {
        print_plan(&plan, &cal);
        return crate::slurm::print_submission(&plan);
    }
    print_plan(&plan, &cal);
    if args.executor == crate::slurm::Executor::Slurm && !args.report_only {
        return crate::slurm::submit(&args, &plan);
    }
    if args.dry_run {
        return Ok(());
    }
    let teacher_dirs = plan.teacher_dirs();
    let mut failed = Vec::new();
    for r in plan.runs.iter().filter(|r| r.status != Status::Done) {
        if args.report_only {
            failed.push(format!("{} {}: not finished", r.row, r.point));
            continue;
        }
        // A failed run (e.g. a diverged loss) is reported, the other runs go on.
        if let Err(e) = train_planned(r, &args.profile, &teacher_dirs, args.backend, args.data_dir.as_deref(), args.wait) {
            if crate::interrupt::requested() {
                return Err(e.context("stopped by a signal: run the same command again to resume"));
            }
            tracing::error!(row = r.row, point = r.point, error = format!("{e:#}"), "run failed");
            failed.push(format!("{} {}: {e:#}", r.row, r.point));
        }
    }
    if args.report_only && !failed.is_empty() {
        bail!("--report-only: {} planned run(s) are not finished:\n  {}", failed.len(), failed.join("\n  "));
    }
    if crate::interrupt::requested() {
        bail!("stopped by a signal before evaluation: run the same command again to resume");
    }
    // `--only` restricts what is trained, not what is reported: the report always covers the
    // whole table (the teacher row and the regime checks included), as `report` would, so
    // re-planning reads every row's run directories afresh after the training above.
    let table = self::plan(&experiments, &args.table, &args.profile, &runs_dir, &[], args.extras)?;
    let eval = crate::run_eval::EvalSettings::from_profile(&table.profile)?;
    crate::run_eval::evaluate_plan(&table, &eval, args.backend, args.data_dir.as_deref())?;
    let out = results_dir.join(format!("{}-{}", table.table, args.profile));
    crate::report::write_report(&table, &eval, &out)?;
    println!("{}", out.join("README.md").display());
    if !failed.is_empty() {
        bail!("{} run(s) failed (the report covers the others):\n  {}", failed.len(), failed.join("\n  "));
    }
    Ok(())
}

pub fn print_plan(plan: &Plan, cal: &Calibration) {
    let mut total = 0.0;
    println!("plan: {} (profile {}), runs in {}", plan.spec.title, plan.profile.name, plan.runs_root.display());
    println!("{:<14} {:<12} {:>10}  {}", "row", "point", "estimate", "status");
    for r in &plan.runs {
        let status = match &r.status {
            Status::Done => "done".to_string(),
            Status::Partial(e) => format!("partial, resumable at epoch {e}/{}", r.exp.optim.epochs),
            Status::Failed { epoch, error } => {
                format!("failed at epoch {epoch}/{} (resumable): {}", r.exp.optim.epochs, error.lines().next().unwrap_or(""))
            }
            Status::Training { epoch, pid } => format!(
                "training now ({}), epoch {epoch}/{}",
                pid.map_or("another process".into(), |p| format!("pid {p}")),
                r.exp.optim.epochs
            ),
            Status::Pending => "pending".to_string(),
        };
        total += r.est_seconds;
        println!("{:<14} {:<12} {:>10}  {status}", r.row, r.point, hms(r.est_seconds));
    }
    for row in plan.rows.iter().filter(|r| r.kind == RowKind::Ensemble) {
        println!("{:<14} {:<12} {:>10}  {}", row.id, "(ensemble)", "-", "scored");
    }
    println!("estimated training time left: {} (flex; evaluation and report extra)", hms(total));
    println!("estimates: {}", cal.basis);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiments() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments")
    }

    #[test]
    fn estimates_scale_only_by_a_bench_of_the_same_cpu() {
        let dir = std::env::temp_dir().join(format!("distillery-calibration-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let sig = "family 25 model 1 stepping 1, x86-64-v3";
        let report = |sig: &str, threads: u64, batch: u64| {
            serde_json::json!({
                "machine": {"cpu_model": "AMD EPYC", "cpu_signature": sig, "threads": threads, "date_utc": "2026-11-29T14:17:42Z"},
                "settings": {"arch": "resnet20", "batch": batch},
                "figures": [{"id": "train_single", "images_per_second": {"median": 117.5}}],
            })
        };
        // No report: the reference machine's speed.
        assert_eq!(calibration(&dir, "AMD EPYC", Some(sig), 2).factor, 1.0);
        std::fs::write(dir.join("flex.json"), serde_json::to_vec(&report(sig, 2, 128)).unwrap()).unwrap();
        let c = calibration(&dir, "AMD EPYC", Some(sig), 2);
        assert!((c.factor - 0.5).abs() < 1e-12, "{c:?}"); // 117.5 / 235
        assert!(c.basis.contains("118 img/s") && c.basis.contains("flex.json"), "{}", c.basis);
        // Another CPU, thread count, unknown signature or batch: not this machine's figure.
        assert_eq!(calibration(&dir, "AMD EPYC", Some("family 25 model 17 stepping 1, x86-64-v4"), 2).factor, 1.0);
        assert_eq!(calibration(&dir, "AMD EPYC", Some(sig), 1).factor, 1.0);
        assert_eq!(calibration(&dir, "Intel Xeon", Some(sig), 2).factor, 1.0);
        assert_eq!(calibration(&dir, "AMD EPYC", None, 2).factor, 1.0);
        std::fs::write(dir.join("flex.json"), serde_json::to_vec(&report(sig, 2, 64)).unwrap()).unwrap();
        assert_eq!(calibration(&dir, "AMD EPYC", Some(sig), 2).factor, 1.0);
        // A `bench train` report counts as well.
        std::fs::write(dir.join("flex-train.json"), serde_json::to_vec(&report(sig, 2, 128)).unwrap()).unwrap();
        assert!((calibration(&dir, "AMD EPYC", Some(sig), 2).factor - 0.5).abs() < 1e-12);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_profile_of_cifar10_plans_with_teachers_first_and_valid_experiments() {
        let runs = std::env::temp_dir().join(format!("distillery-plan-{}", std::process::id()));
        for profile in ["smoke", "cpu", "cpu-short", "paper"] {
            let p = plan(&experiments(), "cifar10", profile, &runs, &[], true).unwrap();
            assert_eq!(p.runs[0].row, "teacher", "{profile}");
            let teachers = p.teacher_dirs().len();
            assert!(teachers >= 2, "{profile}: {teachers} teachers");
            for r in &p.runs {
                assert!(r.dir.starts_with(runs.join(format!("cifar10-{profile}"))));
                // One-to-one students mirror the teacher ensemble.
                if r.exp.distill.as_ref().is_some_and(|d| d.method == "one_to_one") {
                    assert_eq!(r.exp.model.batch_ensemble.as_ref().unwrap().members, teachers, "{profile} {}", r.row);
                }
            }
            let ids: Vec<_> = p.rows.iter().map(|r| r.id.as_str()).collect();
            for want in ["teacher", "kd", "ae-kd", "proxy-end2", "kd-latentbe", "conf-ods", "tdiv-sdiv", "ods", "end2", "end2-aux", "be4"] {
                assert!(ids.contains(&want), "{profile}: row {want} missing");
            }
        }
        // The paper profile is the files as written: ResNet-32, 200 epochs, 4 seeds.
        let p = plan(&experiments(), "cifar10", "paper", &runs, &["kd".into()], false).unwrap();
        let kd: Vec<_> = p.runs.iter().filter(|r| r.row == "kd").collect();
        assert_eq!(kd.len(), 4);
        assert_eq!(kd[0].exp.model.arch, "resnet32");
        assert_eq!(kd[0].exp.optim.epochs, 200);
        assert_eq!(kd[3].exp.seed, 3);
        // cpu (regime R4 of docs/cpu-regime.md): ResNet-20 teachers fitted to 2,500 images for
        // 160 epochs; students keep the profile's 4 epochs on the same images, 3 seeds.
        let p = plan(&experiments(), "cifar10", "cpu", &runs, &["kd".into()], false).unwrap();
        assert_eq!(p.runs.iter().filter(|r| r.row == "teacher").count(), 4);
        assert_eq!(p.runs.iter().filter(|r| r.row == "kd").count(), 3);
        assert_eq!(p.runs[0].exp.optim.epochs, 160);
        assert_eq!(p.runs[0].exp.model.arch, "resnet20");
        assert_eq!(p.runs[0].exp.data.train, [0, 2500]);
        assert_eq!(p.runs.last().unwrap().exp.optim.epochs, 4);
        assert_eq!(p.runs.last().unwrap().exp.data.train, [0, 2500]);
        // cpu-short (the former cpu profile): ResNet-8, 5-epoch teachers, 2-epoch students.
        let p = plan(&experiments(), "cifar10", "cpu-short", &runs, &["kd".into()], false).unwrap();
        assert_eq!(p.runs[0].exp.optim.epochs, 5);
        assert_eq!(p.runs.last().unwrap().exp.optim.epochs, 2);
        assert!(plan(&experiments(), "cifar10", "cpu", &runs, &["nope".into()], false).is_err());
        // CIFAR-100 rows are the CIFAR-10 rows with the WRN-28x4 / CIFAR-100 layer on top.
        let p = plan(&experiments(), "cifar100", "paper", &runs, &[], true).unwrap();
        for r in &p.runs {
            assert_eq!((r.exp.data.dataset.as_str(), r.exp.model.arch.as_str()), ("cifar100", "wrn-28-4"), "{}", r.row);
            assert_eq!(r.exp.name, format!("cifar100/{}", r.row));
        }
        let tdiv = p.runs.iter().find(|r| r.row == "tdiv-sdiv").unwrap();
        assert_eq!(tdiv.exp.distill.as_ref().unwrap().perturbation, "tdiv_sdiv");
        assert_eq!(tdiv.exp.model.batch_ensemble.as_ref().unwrap().members, 4);
    }

    #[test]
    fn a_run_directory_with_a_different_experiment_is_refused() {
        let runs = std::env::temp_dir().join(format!("distillery-plan-mismatch-{}", std::process::id()));
        let p = plan(&experiments(), "cifar10", "smoke", &runs, &["kd".into()], false).unwrap();
        let r = p.runs.iter().find(|r| r.row == "kd").unwrap();
        std::fs::create_dir_all(&r.dir).unwrap();
        let mut other = r.exp.clone();
        other.optim.lr *= 2.0;
        std::fs::write(r.dir.join("experiment.toml"), toml::to_string(&other).unwrap()).unwrap();
        std::fs::write(r.dir.join("metrics.json"), "{}").unwrap();
        let err = format!("{:#}", plan(&experiments(), "cifar10", "smoke", &runs, &["kd".into()], false).err().unwrap());
        assert!(err.contains("different experiment") && err.contains("lr"), "{err}");
        // Same experiment (another name): done.
        let mut same = r.exp.clone();
        same.name = "renamed".into();
        std::fs::write(r.dir.join("experiment.toml"), toml::to_string(&same).unwrap()).unwrap();
        let p = plan(&experiments(), "cifar10", "smoke", &runs, &["kd".into()], false).unwrap();
        assert_eq!(p.runs.iter().find(|r| r.row == "kd").unwrap().status, Status::Done);
        std::fs::remove_dir_all(&runs).unwrap();
    }

    #[test]
    fn an_interrupted_run_is_resumable_unless_a_live_process_holds_its_lock() {
        let runs = std::env::temp_dir().join(format!("distillery-plan-lock-{}", std::process::id()));
        let p = plan(&experiments(), "cifar10", "smoke", &runs, &["kd".into()], false).unwrap();
        let r = p.runs.iter().find(|r| r.row == "kd").unwrap();
        let partial = r.dir.with_extension("partial");
        std::fs::create_dir_all(&partial).unwrap();
        std::fs::write(partial.join("experiment.toml"), toml::to_string(&r.exp).unwrap()).unwrap();
        std::fs::write(partial.join("state.json"), r#"{"epoch": 1, "dir": "ckpt-0001"}"#).unwrap();
        let status = |p: &Plan| p.runs.iter().find(|r| r.row == "kd").unwrap().status.clone();
        let replan = || plan(&experiments(), "cifar10", "smoke", &runs, &["kd".into()], false).unwrap();
        assert_eq!(status(&replan()), Status::Partial(1));
        let lock = crate::run_lock::acquire(&partial, false).unwrap();
        assert_eq!(status(&replan()), Status::Training { epoch: 1, pid: Some(std::process::id()) });
        drop(lock);
        assert_eq!(status(&replan()), Status::Partial(1));
        // A failed attempt (recorded by train_planned) shows as failed, with its error.
        std::fs::write(partial.join(FAILED), r#"{"error": "training diverged: ..."}"#).unwrap();
        assert_eq!(status(&replan()), Status::Failed { epoch: 1, error: "training diverged: ...".into() });
        std::fs::remove_dir_all(&runs).unwrap();
    }
}
