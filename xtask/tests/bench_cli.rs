//! `xtask bench all --quick` on tiny settings (ResNet-8, batch 8): every figure is measured in
//! its own child process, and the JSON report has the documented schema with finite,
//! positive figures; a `pytorch.json` beside it is picked up for the ratios. The numbers
//! themselves are not checked (a benchmark report, not a test).

mod common;

use common::{json, ok, scratch, xtask};
use serde_json::Value;

const IDS: [&str; 12] = [
    "train_single",
    "train_be4",
    "train_de4",
    "infer_single",
    "infer_latentbe",
    "infer_be4",
    "infer_de4",
    "distill_kd",
    "distill_kd_latentbe",
    "distill_conf_ods",
    "distill_tdiv_sdiv",
    "loader",
];

fn positive(v: &Value, what: &str) -> f64 {
    let x = v.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x.is_finite() && x > 0.0, "{what} = {x} is not finite and positive");
    x
}

#[test]
fn bench_all_quick_writes_a_complete_report() {
    let dir = scratch("bench-cli");
    // A PyTorch report with one matching figure: its ratio must appear.
    let pytorch = serde_json::json!({
        "schema": "distillery-bench/1", "framework": "pytorch",
        "machine": {"torch_version": "0.0-test", "threads": 2},
        "settings": {"arch": "resnet8", "batch": 8, "members": 4},
        "figures": [{"id": "train_single", "images_per_second": {"median": 1.0}}],
    });
    std::fs::write(dir.join("pytorch.json"), serde_json::to_vec(&pytorch).unwrap()).unwrap();
    let out = xtask(&["bench", "all", "--quick", "--batch", "8", "--arch", "resnet8", "--out", dir.to_str().unwrap()]);
    let stdout = ok(&out);
    for id in IDS {
        assert!(stdout.contains(id), "stdout lacks {id}:\n{stdout}");
    }
    assert!(stdout.contains("tdiv_sdiv_over_kd_step"), "{stdout}");

    let r = json(&dir.join("flex.json"));
    assert_eq!(r["schema"], "distillery-bench/1");
    assert_eq!(r["framework"], "distillery");
    assert_eq!(r["backend"], "flex");
    let m = &r["machine"];
    assert!(m["cpu_model"].is_string() && m["date_utc"].is_string(), "{m}");
    assert_eq!(m["burn_version"], "0.22.1");
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        let sig = m["cpu_signature"].as_str().unwrap_or_default();
        assert!(sig.starts_with("family ") && sig.contains(", x86-64"), "{m}");
    }
    positive(&m["logical_cpus"], "logical_cpus");
    positive(&m["threads"], "threads");
    let s = &r["settings"];
    assert_eq!((s["arch"].as_str(), s["batch"].as_u64(), s["members"].as_u64()), (Some("resnet8"), Some(8), Some(4)));
    assert_eq!((s["warmup"].as_u64(), s["steps"].as_u64(), s["quick"].as_bool()), (Some(1), Some(3), Some(true)));

    let figures = r["figures"].as_array().unwrap();
    let ids: Vec<&str> = figures.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(ids, IDS);
    for f in figures {
        let id = f["id"].as_str().unwrap();
        let n = positive(&f["images_per_iter"], "images_per_iter");
        let sec = &f["seconds"];
        let samples = sec["samples"].as_array().unwrap();
        assert_eq!(samples.len(), 3, "{id}");
        for (i, v) in samples.iter().enumerate() {
            positive(v, &format!("{id} sample {i}"));
        }
        let [median, min, max, q1, q3] = ["median", "min", "max", "q1", "q3"].map(|k| positive(&sec[k], &format!("{id} seconds.{k}")));
        assert!(min <= q1 && q1 <= median && median <= q3 && q3 <= max, "{id}: {sec}");
        let ips = &f["images_per_second"];
        let [im, imin, imax] = ["median", "min", "max"].map(|k| positive(&ips[k], &format!("{id} images_per_second.{k}")));
        assert!(imin <= im && im <= imax && (im - n / median).abs() <= 1e-9 * im, "{id}: {ips}");
        positive(&f["peak_rss_bytes"], &format!("{id} peak_rss_bytes"));
        assert!(f["params"].is_object() && f["label"].is_string() && f["group"].is_string(), "{id}");
    }
    // Train figures count the un-tiled batch; BE-4 sees it tiled.
    assert_eq!(figures[1]["images_per_iter"], 8);
    assert_eq!(figures[1]["params"]["tiled_batch"], 32);

    let checks = r["checks"].as_array().unwrap();
    let ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["latentbe_over_single_inference", "be4_over_single_inference", "tdiv_sdiv_over_kd_latentbe_step", "tdiv_sdiv_over_kd_step", "loader_per_core"]
    );
    for c in checks {
        positive(&c["value"], "check value");
        // The plain-student KD ratio is context, without a verdict; every other check has one.
        let context = c["id"] == "tdiv_sdiv_over_kd_step";
        assert!(if context { c["pass"].is_null() } else { c["pass"].is_boolean() } && c["target"].is_string(), "{c}");
    }
    // LatentBE is timed alternately with a plain network in one process, and the check uses
    // that paired ratio.
    let paired = &figures[4]["params"]["paired"];
    assert_eq!(figures[4]["id"], "infer_latentbe");
    positive(&paired["single_median_seconds"], "paired single seconds");
    assert_eq!(checks[0]["value"], paired["ratio_median"]);
    // No signature in this pytorch.json: the comparison says it cannot tell the machine.
    assert!(r["pytorch"]["same_machine"].is_null());

    // PyTorch comparison: only the figure present in pytorch.json.
    let ratio = positive(&figures[0]["vs_pytorch"], "vs_pytorch");
    assert!((ratio - positive(&figures[0]["images_per_second"]["median"], "ips")).abs() < 1e-9 * ratio);
    assert!(figures[1].get("vs_pytorch").is_none());
    assert_eq!(r["pytorch"]["settings_match"], true);
    assert_eq!(r["pytorch"]["torch_version"], "0.0-test");

    let md = std::fs::read_to_string(dir.join("flex.md")).unwrap();
    assert!(md.contains("| `distill_tdiv_sdiv` |") && md.contains("vs PyTorch") && md.contains("Derived checks"), "{md}");
    assert!(md.contains("records no CPU signature"), "{md}");
}

#[test]
fn bench_rejects_bad_settings() {
    let out = xtask(&["bench", "all", "--arch", "resnet21", "--quick"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("resnet21"));
    let out = xtask(&["bench", "train", "--steps", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--steps"));
}
