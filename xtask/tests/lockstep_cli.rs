//! `xtask parity-lockstep` (the Distillery half of benches/pytorch_lockstep.py) on a small
//! real slice of CIFAR-10: every step is recorded, the mid-epoch weight files are written,
//! and handing out those files does not change the steps taken.

mod common;

use common::{TINY, json, ok, scratch, tensors, xtask_env};

#[test]
fn lockstep_records_every_step_and_saving_steps_does_not_change_them() {
    let dir = scratch("lockstep");
    let config = dir.join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let cfg = config.to_str().unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    // One thread: the comparison below is bit for bit.
    let one = [("RAYON_NUM_THREADS", "1")];
    ok(&xtask_env(&["parity-lockstep", "--config", cfg, "--epochs", "2", "--out", a.to_str().unwrap()], &one));
    ok(&xtask_env(&["parity-lockstep", "--config", cfg, "--epochs", "2", "--save-steps", "22", "--out", b.to_str().unwrap()], &one));
    // TINY: 1,000 training images in batches of 50 = 20 steps per epoch.
    let rec = json(&b.join("lockstep.json"));
    assert_eq!(rec["steps_per_epoch"], 20);
    assert_eq!(rec["epochs_trained"], 2);
    let steps = rec["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 40);
    for (i, s) in steps.iter().enumerate() {
        assert_eq!((s["epoch"].as_u64().unwrap(), s["step"].as_u64().unwrap()), ((i / 20) as u64, (i % 20) as u64));
        assert!(s["loss"].as_f64().unwrap().is_finite());
    }
    // Warm-up: 0-based step s of 20 warm-up steps uses lr (s + 1) / 20 of the peak 0.05.
    assert!((steps[0]["lr"].as_f64().unwrap() - 0.05 / 20.0).abs() < 1e-12);
    // Steps 1..=22 saved; step 20 ends epoch 1 and is its epoch file.
    for s in (1..=22).filter(|s| *s != 20) {
        assert!(b.join(format!("step-{s}.safetensors")).is_file(), "step-{s}.safetensors missing");
    }
    assert!(!b.join("step-20.safetensors").exists() && !b.join("step-23.safetensors").exists());
    for f in ["init.safetensors", "epoch-1.safetensors", "epoch-2.safetensors", "model.json"] {
        assert!(a.join(f).is_file() && b.join(f).is_file(), "{f} missing");
    }
    // Stopping after each of the first 22 steps to write its weights took the same steps.
    assert_eq!(json(&a.join("lockstep.json"))["steps"], rec["steps"]);
    assert_eq!(tensors(&a.join("epoch-2.safetensors")), tensors(&b.join("epoch-2.safetensors")), "saving steps changed the weights");
    // The output folder is never overwritten.
    let again = xtask_env(&["parity-lockstep", "--config", cfg, "--out", a.to_str().unwrap()], &one);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
}
