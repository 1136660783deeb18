//! `xtask spirals`: the EnD² spirals experiment (`distill::spirals`). Prints one JSON object
//! (the report without the uncertainty maps, the paper's reference errors and the wall time)
//! and writes `summary.json` (the same object) and `grid.json` (the maps) into `--out`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use distill::spirals::{SpiralsConfig, run_spirals};

use crate::backend::Backend;
use crate::fsx::{repo_root, write_atomic, write_json};

/// Arguments of `xtask spirals`.
#[derive(clap::Args, Debug)]
pub struct SpiralsArgs {
    /// Ensemble size M (the paper: 100).
    #[arg(long, default_value_t = SpiralsConfig::new().members, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000))]
    members: usize,
    /// Seed of data, initialisations and mini-batch orders.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (default results/spirals).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Grid points per side of the uncertainty maps (0 = none).
    #[arg(long, default_value_t = 101, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=2_001))]
    grid: usize,
    /// Backend.
    #[arg(long, value_enum, default_value_t)]
    backend: Backend,
}

/// `xtask spirals`.
pub fn run(args: SpiralsArgs) -> Result<()> {
    let device = args.backend.device()?;
    let cfg = SpiralsConfig::new().with_members(args.members).with_seed(args.seed).with_grid_points(args.grid);
    let start = Instant::now();
    let mut report = run_spirals(&cfg, &device).context("spirals experiment")?;
    let seconds = start.elapsed().as_secs_f64();
    let grid = report.grid.take();
    let mut summary = serde_json::to_value(&report)?;
    if let Some(obj) = summary.as_object_mut() {
        obj.remove("grid");
        obj.insert("wall_seconds".into(), serde_json::json!(seconds));
        obj.insert(
            "paper_errors".into(),
            serde_json::json!({"source": "EnD² paper, spirals, ensemble of 100", "ensemble": 0.1237, "end2": 0.1247, "end2_aux": 0.1250, "single": 0.1321}),
        );
    }
    let out = args.out.unwrap_or_else(|| repo_root().join("results").join("spirals"));
    write_json(&out.join("summary.json"), &summary)?;
    if let Some(grid) = grid {
        write_json(&out.join("grid.json"), &grid)?;
    }
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

/// `xtask reproduce spirals --profile …`: the experiment file `experiments/spirals/
/// spirals.toml` (keys of `SpiralsConfig`, `extends` allowed) with the profile's
/// `[defaults]`, then `results/spirals-<profile>/`: `summary.json` (key `bayes_error`
/// beside the errors, OOD and mean uncertainties), `README.md`, and the TU/DU/MI maps of
/// ensemble, EnD² and EnD²+aux (`plots/uncertainty-maps.{png,svg}`).
pub fn reproduce(args: &crate::reproduce::ReproduceArgs) -> Result<()> {
    let (experiments, _, results) = args.dirs.resolve();
    let dir = experiments.join("spirals");
    let cfg = load_config(&dir, &args.profile)?;
    let out = results.join(format!("spirals-{}", args.profile));
    println!(
        "plan: spirals (profile {}): {} members, {} epochs, {} train points; results in {}",
        args.profile, cfg.members, cfg.epochs, cfg.n_train, out.display()
    );
    if args.dry_run {
        return Ok(());
    }
    let device = args.backend.device()?;
    let start = Instant::now();
    let mut report = run_spirals(&cfg, &device).context("spirals experiment")?;
    let seconds = start.elapsed().as_secs_f64();
    let grid = report.grid.take();
    let paper = serde_json::json!({"source": "EnD² paper, spirals, ensemble of 100 MLPs (PROTOCOLS.md)", "ensemble": 0.1237, "end2": 0.1247, "end2_aux": 0.1250, "single": 0.1321});
    let mut summary = serde_json::to_value(&report)?;
    if let Some(obj) = summary.as_object_mut() {
        obj.insert("bayes_error".into(), serde_json::json!(report.bayes_error.mean));
        obj.insert("bayes_error_estimate".into(), serde_json::to_value(report.bayes_error)?);
        obj.insert("profile".into(), serde_json::json!(args.profile));
        obj.insert("wall_seconds".into(), serde_json::json!(seconds));
        obj.insert("paper_errors".into(), paper);
    }
    std::fs::create_dir_all(out.join("plots")).with_context(|| format!("creating {}", out.display()))?;
    write_json(&out.join("summary.json"), &summary)?;
    if let Some(g) = &grid {
        let maps = |m: &distill::spirals::GridMaps| [m.total.clone(), m.data.clone(), m.knowledge.clone()];
        let mut panels = Vec::new();
        for (name, m) in [("ensemble", &g.ensemble), ("EnD²", &g.end2), ("EnD²+aux", &g.end2_aux)] {
            for (measure, values) in ["TU", "DU", "MI"].iter().zip(maps(m)) {
                panels.push(crate::plots::MapPanel { title: format!("{name} {measure}"), values: values.iter().map(|&v| f64::from(v)).collect() });
            }
        }
        let train = data::generate_spirals(cfg.n_train.min(600), cfg.noise, cfg.seed);
        let points: Vec<(f64, f64, u8)> = train.points.iter().zip(&train.labels).map(|(p, &l)| (p[0], p[1], l as u8)).collect();
        if let Err(e) = crate::plots::uncertainty_maps(&out.join("plots/uncertainty-maps"), "Spirals: TU / DU / MI", &g.coords, &g.coords, &panels, 3, &points) {
            tracing::warn!(error = format!("{e:#}"), "uncertainty maps incomplete (the SVG needs no font; the PNG does)");
        }
    }
    // Histograms of TU and MI, test set vs ring, per uncertainty-aware model.
    for p in &report.points {
        for (measure, test, ring, label) in [
            ("tu", &p.test_total, &p.ring_total, "total uncertainty TU (nats)"),
            ("mi", &p.test_knowledge, &p.ring_knowledge, "knowledge uncertainty MI (nats)"),
        ] {
            let series = [("test set".to_string(), test.clone()), (format!("ring (r = {})", cfg.ood_radius), ring.clone())];
            let stem = out.join(format!("plots/{measure}-histogram-{}", p.model));
            let title = format!("Spirals, {}: {} on the test set vs the ring", p.model, measure.to_uppercase());
            if let Err(e) = crate::plots::histograms(&stem, &title, &series, 40, label) {
                tracing::warn!(error = format!("{e:#}"), "histogram incomplete (the SVG needs no font; the PNG does)");
            }
        }
    }
    write_atomic(&out.join("README.md"), spirals_readme(&report, &args.profile, seconds).as_bytes())?;
    println!("{}", out.join("README.md").display());
    Ok(())
}

fn load_config(dir: &std::path::Path, profile: &str) -> Result<SpiralsConfig> {
    let file = dir.join("spirals.toml");
    let mut layered = crate::compose::load_layered(&file)?;
    let p = crate::compose::Profile::load(dir, profile)?;
    layered = p.apply(layered, "spirals")?;
    let mut value = serde_json::to_value(SpiralsConfig::new())?;
    let known: Vec<String> = value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let files: Vec<String> = layered.files.iter().map(|f| f.display().to_string()).collect();
    for key in layered.table.keys() {
        if !known.contains(key) {
            anyhow::bail!("unknown key `{key}` in {} (known: {})", files.join(" + "), known.join(", "));
        }
    }
    let over = serde_json::to_value(&layered.table)?;
    if let (Some(base), Some(over)) = (value.as_object_mut(), over.as_object()) {
        for (k, v) in over {
            match (base.get_mut(k), v) {
                (Some(serde_json::Value::Object(b)), serde_json::Value::Object(o)) => {
                    for (kk, vv) in o {
                        if !b.contains_key(kk) {
                            anyhow::bail!("unknown key `{k}.{kk}` in {}", files.join(" + "));
                        }
                        b.insert(kk.clone(), vv.clone());
                    }
                }
                _ => {
                    base.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let cfg: SpiralsConfig = serde_json::from_value(value).with_context(|| format!("in {}", files.join(" + ")))?;
    cfg.validate().with_context(|| format!("in {}", files.join(" + ")))?;
    Ok(cfg)
}

fn spirals_readme(r: &distill::spirals::SpiralsReport, profile: &str, seconds: f64) -> String {
    use std::fmt::Write as _;
    let e = &r.errors;
    let mut s = String::new();
    let _ = writeln!(s, "# Spirals (EnD² paper's artificial data) — `{profile}` profile\n");
    let _ = writeln!(s, "Generated by `cargo xtask reproduce spirals --profile {profile}` ({seconds:.0} s); do not edit by hand.\n");
    let _ = writeln!(s, "Three arms, noise {}, {} training points, ensemble of {} MLPs {:?}, seed {}.\n", r.config.noise, r.config.n_train, r.config.members, r.config.hidden, r.config.seed);
    let _ = writeln!(s, "## Test error (%)\n\n| model | ours | EnD² paper (M = 100) |\n|---|---|---|");
    for (name, ours, paper) in [("Bayes-optimal", r.bayes_error.mean, None), ("Ensemble", e.ensemble, Some(12.37)), ("EnD²", e.end2, Some(12.47)), ("EnD² + aux", e.end2_aux, Some(12.50)), ("Single network", e.single, Some(13.21)), ("KD (α = 1, T = 4)", e.kd, None), ("AE-KD", e.ae_kd, None), ("Proxy-EnD²", e.proxy_end2, None), ("Ensemble member (mean)", e.member_mean, None)] {
        let _ = writeln!(s, "| {name} | {:.2} | {} |", ours * 100.0, paper.map_or("—".to_string(), |p| format!("{p:.2}")));
    }
    let m = r.config.members;
    let be = format!("BE-{m} (labels)");
    let kd_be = format!("KD + LatentBE (DE-{m} → BE-{m}, merged)");
    for (name, ours) in [(be.as_str(), e.be), (kd_be.as_str(), e.kd_latentbe), ("+ ODS", e.ods), ("+ ConfODS", e.conf_ods), ("+ TDiv-SDiv", e.tdiv_sdiv)] {
        let _ = writeln!(s, "| {name} | {:.2} | — |", ours * 100.0);
    }
    let _ = writeln!(
        s,
        "\nProxy-EnD² offsets: model {}, target {} (docs/methods/proxy-end2.md). Perturbation step η = {:.3} (norm η√2, no clipping; crates/distill/src/spirals/batch_ensemble.rs).",
        r.config.proxy_model_offset, r.config.proxy_target_offset, r.config.perturb_eta
    );
    let _ = writeln!(s, "\nBayes error: Monte-Carlo estimate {:.2} % (the generator's `E[1 - max_k p(k|x)]`); the Bayes classifier errs on {:.2} % of this test set.\n", r.bayes_error.mean * 100.0, e.bayes_test * 100.0);
    let _ = writeln!(s, "## OOD detection on the ring (radius {}; AUROC / AUPR, ring = positive)\n", r.config.ood_radius);
    let _ = writeln!(s, "| model | confidence | TU | DU | MI |\n|---|---|---|---|---|");
    for (name, o) in [("Ensemble", &r.ood.ensemble), ("EnD²", &r.ood.end2), ("EnD² + aux", &r.ood.end2_aux), ("Proxy-EnD²", &r.ood.proxy_end2)] {
        let f = |x: &metrics::OodReport| format!("{:.3} / {:.3}", x.auroc, x.aupr);
        let _ = writeln!(s, "| {name} | {} | {} | {} | {} |", f(&o.confidence), f(&o.total), f(&o.data), f(&o.knowledge));
    }
    let _ = writeln!(s, "\n## Mean uncertainty, test set vs ring\n\n| model | TU test | TU ring | DU test | DU ring | MI test | MI ring |\n|---|---|---|---|---|---|---|");
    for (name, u) in [("Ensemble", &r.uncertainty.ensemble), ("EnD²", &r.uncertainty.end2), ("EnD² + aux", &r.uncertainty.end2_aux), ("Proxy-EnD²", &r.uncertainty.proxy_end2)] {
        let _ = writeln!(s, "| {name} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |", u.test.total, u.ring.total, u.test.data, u.ring.data, u.test.knowledge, u.ring.knowledge);
    }
    let _ = writeln!(s, "\nThe EnD² paper's pattern: without auxiliary data the student shows no knowledge uncertainty (MI) far from the data; with it, it matches the ensemble's map. See [the maps](plots/uncertainty-maps.svg) and the histograms of MI and TU, test set vs ring: {}.", r.points.iter().map(|p| format!("[{m}](plots/mi-histogram-{m}.svg)", m = p.model)).collect::<Vec<_>>().join(", "));
    s
}
