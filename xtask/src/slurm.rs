//! `reproduce --executor slurm`: a plan's runs as Slurm job arrays.
//!
//! Every planned run is already an independent, resumable, atomically committed and locked
//! directory, so the executor only writes the plan as a manifest
//! (`runs/<table>-<profile>/slurm/manifest.json`) and submits, with `sbatch`:
//! 1. the teacher runs as one array (`--requeue`; one task per run, by manifest index),
//! 2. the student runs as a second array with `--dependency=afterok:<teachers>`,
//! 3. evaluation and report as one job after the students (`reproduce --report-only`).
//!
//! Each array task runs `xtask run --manifest F --index $SLURM_ARRAY_TASK_ID`, which re-plans
//! from the manifest's arguments, checks that the run at that index is still the one
//! submitted, and trains it exactly as the local executor does: a finished run is skipped, an
//! interrupted one resumes (from the step SIGTERM checkpointed, when Slurm preempted it), and
//! the run's lock keeps two tasks from ever training one run at once. Logs go to
//! `slurm/logs/`, the job ids to `slurm/submitted.json` (read by `reproduce --status`).
//! No scheduler of our own: Slurm decides where and when.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::reproduce::{Plan, ReproduceArgs, Status, plan, train_planned};

/// Where `reproduce` trains.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Executor {
    /// In this process, run after run.
    #[default]
    Local,
    /// As Slurm job arrays (`sbatch`).
    Slurm,
}

/// Options of the Slurm executor (ignored by the local one).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SlurmArgs {
    /// Partition (`sbatch --partition`; default: the cluster's default partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per task (`sbatch --time`, e.g. `12:00:00`; default: the partition's).
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task (`--cpus-per-task`); also the task's Rayon threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpus_per_task: u32,
    /// GPUs per task (`--gres=gpu:N`; default 1 for the GPU backends, 0 for flex).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=64))]
    pub gpus_per_task: Option<u32>,
    /// Tasks of one array running at once (`--array=…%K`; default: no limit).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub array_parallelism: Option<u32>,
    /// Extra `sbatch` argument for every job (repeatable), e.g. `--sbatch-arg=--qos=long`.
    #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
}

/// The submitted plan: enough to re-plan it in an array task and to check it is unchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Table id (`cifar10`).
    pub table: String,
    /// Profile name.
    pub profile: String,
    /// `--only` rows.
    pub only: Vec<String>,
    /// `--extras`.
    pub extras: bool,
    /// Backend name (`flex`, `cuda`, …).
    pub backend: String,
    /// `--data-dir`, if given.
    pub data_dir: Option<PathBuf>,
    /// Experiments folder.
    pub experiments_dir: PathBuf,
    /// Runs folder (the parent of `<table>-<profile>/`).
    pub runs_dir: PathBuf,
    /// Results folder.
    pub results_dir: PathBuf,
    /// The planned runs, by array index.
    pub runs: Vec<ManifestRun>,
}

/// One planned run of a manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestRun {
    /// Row id.
    pub row: String,
    /// Grid point.
    pub point: String,
    /// Run directory.
    pub dir: PathBuf,
    /// Distilled from the teachers?
    pub student: bool,
}

/// Job ids of the last submission (`slurm/submitted.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Submitted {
    /// Teacher array job.
    pub teachers: Option<String>,
    /// Student array job.
    pub students: Option<String>,
    /// Evaluation and report job.
    pub report: Option<String>,
}

fn slurm_dir(plan: &Plan) -> PathBuf {
    plan.runs_root.join("slurm")
}

fn backend_name(b: Backend) -> String {
    b.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_else(|| "flex".into())
}

/// Single-quote for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// An sbatch script: `#SBATCH` lines, then `exec` of `command`.
fn script(name: &str, array: Option<&str>, log: &Path, opts: &SlurmArgs, backend: Backend, command: &[String]) -> String {
    let mut s = String::from("#!/bin/bash\n");
    s += &format!("#SBATCH --job-name={name}\n");
    if let Some(a) = array {
        s += &format!("#SBATCH --array={a}\n");
    }
    s += &format!("#SBATCH --output={}\n", log.display());
    s += "#SBATCH --requeue\n";
    s += &format!("#SBATCH --cpus-per-task={}\n", opts.cpus_per_task);
    if let Some(p) = &opts.partition {
        s += &format!("#SBATCH --partition={p}\n");
    }
    if let Some(t) = &opts.time {
        s += &format!("#SBATCH --time={t}\n");
    }
    let gpus = opts.gpus_per_task.unwrap_or(if backend == Backend::Flex { 0 } else { 1 });
    if gpus > 0 {
        s += &format!("#SBATCH --gres=gpu:{gpus}\n");
    }
    for a in &opts.sbatch_args {
        s += &format!("#SBATCH {a}\n");
    }
    // Rayon sizes its pool from the machine, not the allocation: pin it to the task's CPUs
    // unless the submitter chose a thread count.
    s += "export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}\n";
    s += "exec";
    for c in command {
        s += " ";
        s += &sh_quote(c);
    }
    s += "\n";
    s
}

/// Comma-separated array indices, with the `%K` limit.
fn array_spec(indices: &[usize], parallelism: Option<u32>) -> String {
    let list: Vec<String> = indices.iter().map(|i| i.to_string()).collect();
    let mut a = list.join(",");
    if let Some(k) = parallelism {
        a += &format!("%{k}");
    }
    a
}

fn sbatch(script_path: &Path, dependency: Option<&str>) -> Result<String> {
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable");
    if let Some(d) = dependency {
        cmd.arg(format!("--dependency=afterok:{d}"));
    }
    cmd.arg(script_path);
    let out = cmd.output().context("running sbatch (is Slurm installed and on PATH?)")?;
    if !out.status.success() {
        bail!("sbatch {} failed: {}", script_path.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch {} printed no job id: {text:?}", script_path.display());
    }
    Ok(id)
}

/// Write the manifest and scripts; submit them (or, with `--dry-run`, print the scripts).
pub fn submit(args: &ReproduceArgs, plan: &Plan) -> Result<()> {
    let (experiments_dir, runs_dir, results_dir) = args.dirs.resolve();
    let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    let manifest = Manifest {
        table: args.table.clone(),
        profile: args.profile.clone(),
        only: args.only.clone(),
        extras: args.extras,
        backend: backend_name(args.backend),
        data_dir: args.data_dir.clone().map(abs),
        experiments_dir: abs(experiments_dir.clone()),
        runs_dir: abs(runs_dir.clone()),
        results_dir: abs(results_dir.clone()),
        runs: plan
            .runs
            .iter()
            .map(|r| ManifestRun { row: r.row.clone(), point: r.point.clone(), dir: abs(r.dir.clone()), student: r.student })
            .collect(),
    };
    let dir = abs(slurm_dir(plan));
    let manifest_path = dir.join("manifest.json");
    let exe = std::env::current_exe().context("locating this executable for the job scripts")?;
    let exe = exe.display().to_string();
    let pending = |student: bool| -> Vec<usize> {
        plan.runs.iter().enumerate().filter(|(_, r)| r.student == student && r.status != Status::Done).map(|(i, _)| i).collect()
    };
    let (teachers, students) = (pending(false), pending(true));
    let task = |m: &Path| vec![exe.clone(), "run".into(), "--manifest".into(), m.display().to_string(), "--index".into(), "${SLURM_ARRAY_TASK_ID}".into()];
    let tag = format!("distillery-{}-{}", plan.table, args.profile);
    let logs = dir.join("logs");
    let array_script = |what: &str, idx: &[usize]| {
        let mut text = script(&format!("{tag}-{what}"), Some(&array_spec(idx, args.slurm.array_parallelism)), &logs.join(format!("{what}-%A_%a.log")), &args.slurm, args.backend, &task(&manifest_path));
        // The task id must expand: unquote it (sh_quote protects everything else).
        text = text.replace("'${SLURM_ARRAY_TASK_ID}'", "\"${SLURM_ARRAY_TASK_ID}\"");
        text
    };
    let mut report_cmd = vec![exe.clone(), "reproduce".into(), args.table.clone(), "--profile".into(), args.profile.clone()];
    for o in &args.only {
        report_cmd.extend(["--only".into(), o.clone()]);
    }
    if args.extras {
        report_cmd.push("--extras".into());
    }
    report_cmd.extend([
        "--backend".into(),
        manifest.backend.clone(),
        "--experiments-dir".into(),
        manifest.experiments_dir.display().to_string(),
        "--runs-dir".into(),
        manifest.runs_dir.display().to_string(),
        "--results-dir".into(),
        manifest.results_dir.display().to_string(),
        "--report-only".into(),
    ]);
    if let Some(d) = &manifest.data_dir {
        report_cmd.extend(["--data-dir".into(), d.display().to_string()]);
    }
    let report_script = script(&format!("{tag}-report"), None, &logs.join("report-%j.log"), &args.slurm, args.backend, &report_cmd);
    let scripts: Vec<(&str, Option<String>)> = vec![
        ("teachers", (!teachers.is_empty()).then(|| array_script("teachers", &teachers))),
        ("students", (!students.is_empty()).then(|| array_script("students", &students))),
        ("report", Some(report_script)),
    ];
    if args.dry_run {
        println!("manifest: {}", manifest_path.display());
        for (name, text) in &scripts {
            if let Some(t) = text {
                let dep = match *name {
                    "students" if !teachers.is_empty() => "  (submitted with --dependency=afterok:<teachers>)",
                    "report" => "  (submitted with --dependency=afterok:<students, else teachers>)",
                    _ => "",
                };
                println!("--- {name}.sbatch{dep}\n{t}");
            }
        }
        return Ok(());
    }
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    crate::fsx::write_json(&manifest_path, &manifest)?;
    let mut submitted = Submitted::default();
    let mut last: Option<String> = None;
    for (name, text) in scripts {
        let Some(text) = text else { continue };
        let path = dir.join(format!("{name}.sbatch"));
        crate::fsx::write_atomic(&path, text.as_bytes())?;
        let id = sbatch(&path, last.as_deref())?;
        tracing::info!(job = id, script = %path.display(), "submitted {name}");
        println!("{name}: job {id}");
        match name {
            "teachers" => submitted.teachers = Some(id.clone()),
            "students" => submitted.students = Some(id.clone()),
            _ => submitted.report = Some(id.clone()),
        }
        last = Some(id);
        crate::fsx::write_json(&dir.join("submitted.json"), &submitted)?;
    }
    Ok(())
}

/// `reproduce --status`: the job ids of the last submission, where there was one.
pub fn print_submission(plan: &Plan) -> Result<()> {
    let path = slurm_dir(plan).join("submitted.json");
    if let Ok(bytes) = std::fs::read(&path) {
        let s: Submitted = serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
        let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
        println!("slurm jobs ({}): teachers {}, students {}, report {}", path.display(), show(&s.teachers), show(&s.students), show(&s.report));
    }
    Ok(())
}

/// Arguments of `xtask run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Manifest written by `reproduce --executor slurm`.
    #[arg(long)]
    pub manifest: PathBuf,
    /// Index of the run in the manifest (`$SLURM_ARRAY_TASK_ID`).
    #[arg(long)]
    pub index: usize,
}

/// `xtask run`: one planned run of a manifest (an array task).
pub fn run(args: RunArgs) -> Result<()> {
    let text = std::fs::read(&args.manifest).with_context(|| format!("reading {}", args.manifest.display()))?;
    let m: Manifest = serde_json::from_slice(&text).with_context(|| format!("parsing {}", args.manifest.display()))?;
    let Some(want) = m.runs.get(args.index) else {
        bail!("--index {}: {} lists {} runs", args.index, args.manifest.display(), m.runs.len());
    };
    let backend = <Backend as ValueEnum>::from_str(&m.backend, true).map_err(|e| anyhow::anyhow!("{}: backend {:?}: {e}", args.manifest.display(), m.backend))?;
    let p = plan(&m.experiments_dir, &m.table, &m.profile, &m.runs_dir, &m.only, m.extras)?;
    let Some(r) = p.runs.get(args.index) else {
        bail!("{}: the plan has changed since submission (it has {} runs); submit again", args.manifest.display(), p.runs.len());
    };
    let got = ManifestRun { row: r.row.clone(), point: r.point.clone(), dir: std::path::absolute(&r.dir)?, student: r.student };
    if &got != want {
        bail!("{}: run {} is now {} {} ({}), not the submitted {} {}; submit again", args.manifest.display(), args.index, got.row, got.point, got.dir.display(), want.row, want.point);
    }
    crate::interrupt::install()?;
    // Another submission's task may be training this run: wait for it (then find it done)
    // rather than fail and block this array's dependants.
    train_planned(r, &m.profile, &p.teacher_dirs(), backend, m.data_dir.as_deref(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_carry_the_options_and_quote_the_command() {
        let opts = SlurmArgs {
            partition: Some("gpu".into()),
            time: Some("2:00:00".into()),
            cpus_per_task: 8,
            gpus_per_task: None,
            array_parallelism: Some(3),
            sbatch_args: vec!["--qos=long".into()],
        };
        let s = script("t", Some(&array_spec(&[0, 2, 5], opts.array_parallelism)), Path::new("/l/x-%A_%a.log"), &opts, Backend::Cuda, &["/bin/x".into(), "it's".into()]);
        for line in ["#SBATCH --array=0,2,5%3", "#SBATCH --partition=gpu", "#SBATCH --time=2:00:00", "#SBATCH --cpus-per-task=8", "#SBATCH --gres=gpu:1", "#SBATCH --qos=long", "#SBATCH --requeue", "#SBATCH --output=/l/x-%A_%a.log"] {
            assert!(s.lines().any(|l| l == line), "{line} missing in\n{s}");
        }
        assert!(s.ends_with("exec '/bin/x' 'it'\\''s'\n"), "{s}");
        // flex asks for no GPU unless told to.
        let flex = script("t", None, Path::new("/l"), &SlurmArgs { cpus_per_task: 2, ..Default::default() }, Backend::Flex, &["x".into()]);
        assert!(!flex.contains("--gres") && !flex.contains("--array"), "{flex}");
    }
}
