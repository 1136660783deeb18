//! End-to-end `xtask train` / `xtask eval` on small real slices of CIFAR-10 (the shared
//! copy, `$DISTILLERY_DATA` or `../shared/data`): learning beats chance, the run directory
//! is complete and atomic, an interrupted run resumes to bit-identical results, and bad
//! input fails with a message naming the problem.

mod common;

use std::path::Path;

use common::{TINY, json, ok, scratch, tensors, xtask, xtask_env};

#[test]
fn smoke_config_learns_well_above_chance_and_writes_a_complete_run() {
    let dir = scratch("train-smoke");
    let run = dir.join("run");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/cifar10/teacher.toml");
    ok(&xtask(&["train", "--config", config.to_str().unwrap(), "--profile", "smoke", "--out", run.to_str().unwrap()]));
    for f in ["experiment.toml", "model.json", "model.safetensors", "val_probs.npy", "test_probs.npy", "val_labels.npy", "test_labels.npy", "metrics.json"] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    assert!(!run.with_extension("partial").exists(), "partial directory left behind");
    let m = json(&run.join("metrics.json"));
    // 500 test images, 10 classes: chance is 10% with a standard deviation of 1.3%.
    let acc = m["acc"].as_f64().unwrap();
    assert!(acc > 0.2, "test accuracy {acc} after one epoch on 3,500 images");
    assert!(m["temperature"].as_f64().unwrap() > 0.0);
    // The recorded metrics agree with `xtask metrics` on the saved arrays.
    let p = |f: &str| run.join(f).to_str().unwrap().to_string();
    let out = ok(&xtask(&["metrics", "--probs", &p("test_probs.npy"), "--labels", &p("test_labels.npy")]));
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["acc"], m["acc"]);
    assert_eq!(again["nll"], m["nll"]);
}

#[test]
fn interrupted_run_resumes_to_identical_results_and_completed_runs_are_skipped() {
    let dir = scratch("train-resume");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let cfg = config.to_str().unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    // One thread: multi-threaded reductions may sum in a different order from run to run, and
    // this test compares bits to check that resuming loses nothing.
    let one = [("RAYON_NUM_THREADS", "1")];
    ok(&xtask_env(&["train", "--config", cfg, "--out", a.to_str().unwrap()], &one));
    // b: one epoch, stop (checkpoint), then resume for the second.
    ok(&xtask_env(&["train", "--config", cfg, "--out", b.to_str().unwrap(), "--stop-after", "1"], &one));
    assert!(!b.exists() && b.with_extension("partial").join("state.json").is_file());
    assert_eq!(json(&b.with_extension("partial").join("state.json"))["epoch"], 1);
    ok(&xtask_env(&["train", "--config", cfg, "--out", b.to_str().unwrap()], &one));
    let same = |f: &str| std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap();
    assert!(same("test_probs.npy"), "resumed run's test probabilities differ from the uninterrupted run's");
    // Compare tensors by name: the safetensors header's metadata order is not fixed.
    assert_eq!(tensors(&a.join("model.safetensors")), tensors(&b.join("model.safetensors")), "resumed run's weights differ");
    // A finished run is not trained again.
    let before = std::fs::metadata(a.join("metrics.json")).unwrap().modified().unwrap();
    ok(&xtask(&["train", "--config", cfg, "--out", a.to_str().unwrap()]));
    assert_eq!(before, std::fs::metadata(a.join("metrics.json")).unwrap().modified().unwrap());
    // Two identical members: the ensemble equals each member and has no knowledge uncertainty.
    let out = ok(&xtask(&["eval", "--runs", a.to_str().unwrap(), b.to_str().unwrap()]));
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["members"], 2);
    assert!((e["acc"].as_f64().unwrap() - json(&a.join("metrics.json"))["acc"].as_f64().unwrap()).abs() < 1e-12);
    assert!(e["mean_mi"].as_f64().unwrap().abs() < 1e-6);
}

#[test]
fn bad_inputs_fail_with_a_clear_message() {
    let dir = scratch("train-bad");
    let unknown = dir.join("unknown.toml");
    std::fs::write(&unknown, TINY.replace("arch = \"resnet8\"", "arch = \"resnet8\"\nwidth = 2")).unwrap();
    let out = xtask(&["train", "--config", unknown.to_str().unwrap(), "--out", dir.join("x").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("unknown.toml") && err.contains("width"), "{err}");

    let bad_arch = dir.join("arch.toml");
    std::fs::write(&bad_arch, TINY.replace("resnet8", "resnet9")).unwrap();
    let out = xtask(&["train", "--config", bad_arch.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("arch.toml") && err.contains("6n+2"), "{err}");

    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let out = xtask(&["train", "--config", config.to_str().unwrap(), "--data-dir", dir.to_str().unwrap(), "--out", dir.join("y").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("cifar-10-batches-bin") && err.contains("data fetch cifar10"), "{err}");
    assert!(!dir.join("y").exists());

    #[cfg(not(feature = "wgpu"))]
    {
        let out = xtask(&["train", "--config", config.to_str().unwrap(), "--backend", "wgpu", "--out", dir.join("z").to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("--features wgpu"), "{err}");
    }
}
