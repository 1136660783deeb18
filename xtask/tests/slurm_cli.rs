//! `reproduce --executor slurm` against a real Slurm (`.ci/slurm-up` starts a single-node
//! cluster; CI sets `DISTILLERY_REQUIRE_SLURM=1`, so a missing Slurm fails there, while a
//! laptop without one prints a visible skip): the smoke KD table submitted as job arrays
//! gives the local executor's report, and an array task stopped with SIGTERM (`scancel
//! --signal=TERM`) and requeued resumes to the uninterrupted result.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ok, scratch, xtask_env};

fn slurm_up() -> bool {
    Command::new("sinfo").arg("-h").output().is_ok_and(|o| o.status.success())
}

fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Job ids printed by `reproduce --executor slurm` (`<what>: job <id>`).
fn job(stdout: &str, what: &str) -> Option<String> {
    stdout.lines().find_map(|l| l.strip_prefix(&format!("{what}: job ")).map(str::to_string))
}

/// Wait until none of `jobs` is pending or running.
fn wait_gone(jobs: &[&str], limit: Duration) {
    let t0 = Instant::now();
    loop {
        let q = sh("squeue", &["-h", "-o", "%i %T", "-j", &jobs.join(",")]);
        if q.trim().is_empty() {
            return;
        }
        assert!(t0.elapsed() < limit, "jobs still queued after {limit:?}:\n{q}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn same(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap_or_else(|e| panic!("{}: {e}", a.display())) == std::fs::read(b).unwrap_or_else(|e| panic!("{}: {e}", b.display()))
}

#[test]
fn slurm_executor_matches_local_and_resumes_a_sigtermed_task() {
    if !slurm_up() {
        assert!(std::env::var_os("DISTILLERY_REQUIRE_SLURM").is_none(), "DISTILLERY_REQUIRE_SLURM is set but Slurm does not answer (run .ci/slurm-up)");
        eprintln!("SKIPPED slurm_executor_matches_local_and_resumes_a_sigtermed_task: no Slurm here (`sinfo` fails); .ci/slurm-up starts one");
        return;
    }
    let dir = scratch("slurm");
    let one = [("RAYON_NUM_THREADS", "1")];
    let table = |name: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["reproduce", "cifar10", "--profile", "smoke", "--only", "kd"].iter().map(|s| s.to_string()).collect();
        v.extend(["--runs-dir".into(), dir.join(name).join("runs").display().to_string()]);
        v.extend(["--results-dir".into(), dir.join(name).join("results").display().to_string()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: &[String]| ok(&xtask_env(&args.iter().map(String::as_str).collect::<Vec<_>>(), &one));

    // Local executor, then the same plan on Slurm: the same report.
    run(&table("local", &[]));
    let out = run(&table("slurm", &["--executor", "slurm", "--cpus-per-task", "1"]));
    let ids: Vec<String> = ["teachers", "students", "report"].iter().map(|w| job(&out, w).unwrap_or_else(|| panic!("no {w} job in {out}"))).collect();
    wait_gone(&ids.iter().map(String::as_str).collect::<Vec<_>>(), Duration::from_secs(600));
    let summary = |name: &str| dir.join(name).join("results/cifar10-smoke/summary.csv");
    assert!(summary("slurm").is_file(), "the report job wrote no report (logs in {})", dir.join("slurm/runs/cifar10-smoke/slurm/logs").display());
    // Every metric equal; only the measurements of the machine (speed, time, memory) differ.
    let metrics = |name: &str| -> Vec<(String, String, String)> {
        let text = std::fs::read_to_string(summary(name)).unwrap();
        let mut lines = text.lines();
        let head: Vec<String> = lines.next().unwrap().split(',').map(str::to_string).collect();
        lines
            .flat_map(|l| {
                let cells: Vec<String> = l.split(',').map(str::to_string).collect();
                head.iter().cloned().zip(cells.clone()).map(move |(k, v)| (cells[0].clone(), k, v)).collect::<Vec<_>>()
            })
            .filter(|(_, k, _)| !["peak_memory_bytes", "train_images_per_second", "train_seconds"].iter().any(|m| k.starts_with(m)))
            .collect()
    };
    let (local, slurm) = (metrics("local"), metrics("slurm"));
    assert!(local.len() > 50 && local.iter().any(|(_, k, _)| k == "nll_mean"), "{local:?}");
    assert_eq!(local, slurm, "the Slurm executor's report differs from the local one's");
    let status = run(&table("slurm", &["--status"]));
    assert!(status.contains(&format!("teachers {}, students {}, report {}", ids[0], ids[1], ids[2])) && !status.contains("pending"), "{status}");

    // Preemption: the teachers are done (copied), so only the student array and the report
    // are submitted; SIGTERM the student task as soon as it holds its run's lock, requeue it.
    let runs = dir.join("term/runs/cifar10-smoke");
    std::fs::create_dir_all(runs.join("teacher")).unwrap();
    for s in ["seed-0", "seed-1"] {
        sh("cp", &["-r", dir.join("slurm/runs/cifar10-smoke/teacher").join(s).to_str().unwrap(), runs.join("teacher").to_str().unwrap()]);
    }
    let out = run(&table("term", &["--executor", "slurm", "--cpus-per-task", "1"]));
    assert!(job(&out, "teachers").is_none(), "finished teachers were submitted again: {out}");
    let students = job(&out, "students").unwrap();
    let report = job(&out, "report").unwrap();
    let task = format!("{students}_2");
    let partial = runs.join("kd/seed-0.partial");
    let t0 = Instant::now();
    while !partial.join("owner.pid").exists() {
        assert!(t0.elapsed() < Duration::from_secs(300), "the student task never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    sh("scancel", &["--batch", "--signal=TERM", &task]);
    wait_gone(&[&task], Duration::from_secs(120));
    eprintln!("SIGTERM to the task leaving the queue: {:?}", sent.elapsed());
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(partial.join("state.json")).expect("no checkpoint after SIGTERM")).unwrap();
    assert!(state["step"].as_u64().is_some_and(|s| s > 0), "not a mid-epoch checkpoint: {state}");
    assert!(!runs.join("kd/seed-0/metrics.json").exists(), "the task finished despite SIGTERM");
    sh("scontrol", &["requeue", &task]);
    let t0 = Instant::now();
    while !runs.join("kd/seed-0/metrics.json").exists() {
        assert!(t0.elapsed() < Duration::from_secs(300), "the requeued task never finished");
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_gone(&[&task], Duration::from_secs(60));
    // Its report job waited on a failed array (afterok): cancel whatever is left.
    let _ = Command::new("scancel").arg(&report).status();
    for f in ["test_probs.npy", "val_probs.npy"] {
        assert!(same(&runs.join("kd/seed-0").join(f), &dir.join("slurm/runs/cifar10-smoke/kd/seed-0").join(f)), "resumed task: {f} differs");
    }
}
