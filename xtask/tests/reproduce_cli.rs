//! `cargo xtask reproduce` end to end on the smoke profiles: every CIFAR-10 row (DE-2
//! teacher, KD, AE-KD, Proxy-EnD², KD + LatentBE, + ConfODS, + TDiv-SDiv, + ODS, EnD²,
//! EnD² + aux on generated corruptions, BE baseline) trains, is evaluated on the OOD sets and
//! corruptions and lands in the report; a second invocation retrains nothing; the spirals
//! table produces its summary (with the Bayes error) and its uncertainty maps.

mod common;

use std::path::Path;

use common::{json, ok, scratch, xtask};

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).modified().unwrap()
}

#[test]
fn cifar10_smoke_table_end_to_end_then_nothing_to_redo() {
    let dir = scratch("reproduce");
    let (runs, results) = (dir.join("runs"), dir.join("results"));
    let args = ["reproduce", "cifar10", "--profile", "smoke", "--extras", "--runs-dir", runs.to_str().unwrap(), "--results-dir", results.to_str().unwrap()];
    ok(&xtask(&args));
    let out = results.join("cifar10-smoke");
    for f in ["runs.csv", "summary.csv", "summary.json", "README.md", "plots/reliability-kd.png", "plots/reliability-kd.svg", "plots/reliability-teacher.svg"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let summary = json(&out.join("summary.json"));
    let rows = summary["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    for r in rows {
        let id = r["id"].as_str().unwrap();
        assert_eq!(r["n"], 1, "{id}: {r}");
        let m = &r["metrics"];
        let acc = m["acc"][0].as_f64().unwrap();
        assert!(acc > 0.0 && acc <= 100.0, "{id}: acc {acc}");
        for k in ["nll", "ece", "cnll", "cece", "corr_acc", "corr_nll", "ood_noise_uniform_conf_auroc", "ood_noise_gaussian_TU_aupr"] {
            assert!(m[k][0].as_f64().is_some_and(f64::is_finite), "{id}: {k} missing in {m}");
        }
        // Knowledge uncertainty exists for ensembles and Dirichlet students only.
        let has_mi = m.get("ood_noise_uniform_MI_auroc").is_some();
        assert_eq!(has_mi, matches!(id, "teacher" | "be4" | "end2" | "end2-aux" | "proxy-end2" | "proxy-end2-offset1"), "{id}");
    }
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(readme.contains("| KD | 1/1 |") && readme.contains("93.70 ± 0.10") && readme.contains("| DE-2 teacher | 1/1 |"), "{readme}");
    assert!(readme.contains("TDiv-SDiv lowers NLL and ECE below KD + LatentBE: **not resolved at 1 seed**"), "{readme}");
    assert!(readme.contains("## The regime") && readme.contains("## Fidelity to the teacher"), "{readme}");
    // Fidelity to the teacher: every student has agreement and KL; those with an uncertainty
    // decomposition (Dirichlet students, the LatentBE students' unmerged BE) the MI columns.
    for r in rows.iter().filter(|r| r["id"] != "teacher") {
        let id = r["id"].as_str().unwrap();
        let m = &r["metrics"];
        let agree = m["agree"][0].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&agree), "{id}: agreement {agree}");
        assert!(m["kl_teacher"][0].as_f64().is_some_and(|k| k >= 0.0 && k.is_finite()), "{id}: {m}");
        assert!(m["train_accuracy"][0].as_f64().is_some_and(|a| (0.0..=100.0).contains(&a)), "{id}: {m}");
        let has_mi = m.get("mi_spearman").is_some();
        let decomposed = matches!(id, "be4" | "end2" | "end2-aux" | "proxy-end2" | "proxy-end2-offset1" | "kd-latentbe" | "ods" | "conf-ods" | "tdiv-sdiv");
        assert_eq!(has_mi, decomposed, "{id}: {m}");
        if decomposed {
            let rho = m["mi_spearman"][0].as_f64().unwrap();
            assert!((-1.0..=1.0).contains(&rho), "{id}: rho {rho}");
            assert!(m["mi_auroc_frac"][0].as_f64().is_some_and(|f| f > 0.0 && f.is_finite()), "{id}: {m}");
        }
    }
    let teacher = rows.iter().find(|r| r["id"] == "teacher").unwrap();
    assert!(teacher["metrics"]["member_train_acc_min"][0].as_f64().is_some_and(|a| a > 10.0), "{teacher}");
    let csv = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 12, "{csv}");
    // Runs: students learnt from both teachers; LatentBE keeps merged + unmerged networks;
    // the auxiliary images were really mixed in (EnD² + aux is configured with generated corruptions).
    let table = runs.join("cifar10-smoke");
    assert_eq!(json(&table.join("kd/seed-0/metrics.json"))["teachers"].as_array().unwrap().len(), 2);
    for row in ["kd-latentbe", "conf-ods", "tdiv-sdiv", "ods"] {
        let run = table.join(row).join("seed-0");
        assert!(json(&run.join("model.json"))["batch_ensemble"].is_null(), "{row}");
        assert_eq!(json(&run.join("be.json"))["batch_ensemble"]["members"], 2, "{row}");
    }
    let exp = std::fs::read_to_string(table.join("end2-aux/seed-0/experiment.toml")).unwrap();
    assert!(exp.contains("source = \"corruptions\""), "{exp}");
    assert_eq!(json(&table.join("be4/seed-0/eval/done.json"))["members"], 2);
    // Second invocation: every run is done, nothing is retrained or re-evaluated.
    let stamp = mtime(&table.join("tdiv-sdiv/seed-0/metrics.json"));
    let eval_stamp = mtime(&table.join("kd/seed-0/eval/done.json"));
    let plan = ok(&xtask(&args));
    assert!(!plan.contains("pending") && plan.contains("done"), "{plan}");
    assert_eq!(stamp, mtime(&table.join("tdiv-sdiv/seed-0/metrics.json")));
    assert_eq!(eval_stamp, mtime(&table.join("kd/seed-0/eval/done.json")));
    // `--only` limits training, not the report: it still has every row, the teacher's regime
    // checks included (it once reported the `--only` rows alone).
    let before = std::fs::read(out.join("summary.csv")).unwrap();
    let only: Vec<&str> = args.iter().copied().chain(["--only", "kd"]).collect();
    ok(&xtask(&only));
    assert_eq!(json(&out.join("summary.json"))["rows"].as_array().unwrap().len(), 12);
    assert!(std::fs::read_to_string(out.join("README.md")).unwrap().contains("| DE-2 teacher | 1/1 |"));
    assert_eq!(before, std::fs::read(out.join("summary.csv")).unwrap());
    // `report` regenerates the same summary from the run directories alone.
    ok(&xtask(&["report", "cifar10", "--profile", "smoke", "--extras", "--runs-dir", runs.to_str().unwrap(), "--results-dir", results.to_str().unwrap()]));
    assert_eq!(before, std::fs::read(out.join("summary.csv")).unwrap());
}

#[test]
fn a_row_that_cannot_work_fails_naming_its_file() {
    // TDiv-SDiv needs BatchEnsemble student members: a plain KD student with it is refused.
    let dir = scratch("reproduce-bad");
    let kd = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/cifar10/kd.toml");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, format!("extends = {:?}\n[distill]\nperturbation = \"tdiv_sdiv\"\n", kd.to_str().unwrap())).unwrap();
    let out = xtask(&["distill", "--config", bad.to_str().unwrap(), "--teachers", "nowhere"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("bad.toml") && err.contains("tdiv_sdiv"), "{err}");
    // An unknown key names the key and the file that set it.
    std::fs::write(&bad, format!("extends = {:?}\n[optim]\nlearning_rate = 0.1\n", kd.to_str().unwrap())).unwrap();
    let out = xtask(&["distill", "--config", bad.to_str().unwrap(), "--teachers", "nowhere"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("learning_rate") && err.contains("bad.toml"), "{err}");
    // An unknown profile and an unknown row are errors too.
    let out = xtask(&["reproduce", "cifar10", "--profile", "laptop", "--dry-run"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("laptop"));
    let out = xtask(&["reproduce", "cifar10", "--only", "kdd", "--dry-run"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("kdd"));
}

#[test]
fn spirals_smoke_reports_errors_beside_the_bayes_error_with_maps() {
    let dir = scratch("reproduce-spirals");
    ok(&xtask(&["reproduce", "spirals", "--profile", "smoke", "--results-dir", dir.to_str().unwrap()]));
    let out = dir.join("spirals-smoke");
    let s = json(&out.join("summary.json"));
    let bayes = s["bayes_error"].as_f64().unwrap();
    assert!(bayes > 0.02 && bayes < 0.3, "bayes error {bayes}");
    for model in ["ensemble", "end2", "end2_aux", "single", "kd", "ae_kd", "proxy_end2", "be", "kd_latentbe", "ods", "conf_ods", "tdiv_sdiv"] {
        let e = s["errors"][model].as_f64().unwrap();
        assert!((0.0..0.67).contains(&e), "{model}: {e}");
    }
    for model in ["ensemble", "end2", "end2_aux"] {
        let a = s["ood"][model]["knowledge"]["auroc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&a), "{model}: {a}");
    }
    for f in ["README.md", "plots/uncertainty-maps.png", "plots/uncertainty-maps.svg", "plots/mi-histogram-end2_aux.svg", "plots/tu-histogram-ensemble.png"] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(readme.contains("Bayes-optimal") && readme.contains("12.37") && readme.contains("+ TDiv-SDiv"), "{readme}");
}
