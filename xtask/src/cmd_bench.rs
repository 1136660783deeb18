//! `xtask bench …`: throughput benchmarks with criterion-style reports (warm-up iterations,
//! then the median, min–max and IQR of the timed ones), on the CIFAR ResNet shape (`--arch`,
//! default ResNet-20; batch 128 of random `[0, 1]` images and random labels, fixed seed).
//!
//! Targets: `train` (train step of a single network, BE-4 on the tiled batch, DE-4), `infer`
//! (single, LatentBE, BE-4, DE-4), `distill` (KD, KD + LatentBE, ConfODS, TDiv-SDiv steps through
//! `distill::student::Distiller`), `loader` (loading + augmentation on one thread), and `all`.
//! Every figure runs in a child process of this binary (`--measure`, hidden), so its peak
//! resident memory (VmHWM) is that figure's alone; `--in-process` runs them here instead.
//!
//! Writes `<out>/<backend>.json` (`all`) or `<out>/<backend>-<target>.json`, and a Markdown
//! twin (`…-partial.*` when a figure failed, so a complete report is never replaced).
//! Derived checks (LatentBE/single inference ≤ 1.02, BE-4/single ≈ 4, TDiv-SDiv/KD step
//! ≤ 2, loader ≥ 20,000 img/s/core) are reported, never asserted. When
//! `<out>/pytorch.json` (from `benches/pytorch_reference.py`, same schema) exists, every
//! matching figure gets its Distillery/PyTorch throughput ratio.

mod measure;
pub mod report;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

use crate::backend::Backend;
use crate::fsx::{peak_rss_bytes, repo_root, write_atomic, write_json};
use measure::{Bench, MEMBERS, Measure};
use report::{Figure, Machine, Report, Settings};

/// Arguments of `xtask bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    target: Target,
    /// Burn backend to run on.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    backend: Backend,
    /// Smoke run: 1 warm-up and 3 timed iterations, 5 loader batches per sample (unless
    /// --warmup/--steps/--batches say otherwise). Not a measurement.
    #[arg(long)]
    quick: bool,
    /// Timed iterations per figure (default 10; loader: timed samples).
    #[arg(long, alias = "samples", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    steps: Option<usize>,
    /// Warm-up iterations per figure, not recorded (default 3).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=1_000_000))]
    warmup: Option<usize>,
    /// Images per (un-tiled) batch.
    #[arg(long, default_value_t = 128, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=65_536))]
    batch: usize,
    /// Backbone: `resnet20` (the shape), `resnet8`, `resnet32`, `wrn-16-2`, ….
    #[arg(long, default_value = "resnet20")]
    arch: String,
    /// Seed of the weights, the random batch and the perturbation draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Loader: batches per timed sample (default 100).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    batches: Option<usize>,
    /// Data root for the loader (else $DISTILLERY_DATA, else datasets/, else ../shared/data;
    /// random images when CIFAR-10 is not found).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Report directory (default results/bench/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Run every figure in this process (peak memory is then the process peak so far).
    #[arg(long)]
    in_process: bool,
    /// Internal: measure one figure and write it to --child-out as JSON.
    #[arg(long, value_enum, hide = true)]
    measure: Option<Measure>,
    /// Internal: where a --measure child writes its figure.
    #[arg(long, hide = true, requires = "measure")]
    child_out: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// Every figure below.
    All,
    /// Train steps: single network, BE-4, DE-4.
    Train,
    /// Inference: single network, LatentBE, BE-4, DE-4.
    Infer,
    /// Distillation steps: KD, KD + LatentBE, ConfODS, TDiv-SDiv.
    Distill,
    /// Training loader: shuffle, pad-crop-flip, f32 conversion, one thread.
    Loader,
}

fn value_name<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value().map(|p| p.get_name().to_string()).unwrap_or_default()
}

impl Target {
    fn measures(self) -> Vec<Measure> {
        Measure::ALL.into_iter().filter(|m| self == Target::All || m.group() == value_name(&self)).collect()
    }
}

fn settings(args: &BenchArgs) -> Result<Settings> {
    let s = Settings {
        arch: args.arch.clone(),
        batch: args.batch,
        members: MEMBERS,
        warmup: args.warmup.unwrap_or(if args.quick { 1 } else { 3 }),
        steps: args.steps.unwrap_or(if args.quick { 3 } else { 10 }),
        seed: args.seed,
        loader_batches_per_sample: args.batches.unwrap_or(if args.quick { 5 } else { 100 }),
        quick: args.quick,
        isolation: if args.in_process { "in-process" } else { "child process per figure" }.into(),
    };
    if s.steps == 0 || s.batch == 0 || s.loader_batches_per_sample == 0 {
        bail!("--steps, --batch and --batches must be positive");
    }
    ensembles::BackboneConfig::new(crate::experiment::parse_arch(&s.arch)?)
        .validate()
        .with_context(|| format!("--arch {}", s.arch))?;
    Ok(s)
}

/// Measure `m` in this process.
fn measure_here(m: Measure, args: &BenchArgs, s: &Settings) -> Result<Figure> {
    let bench = Bench {
        device: args.backend.device()?,
        arch: crate::experiment::parse_arch(&s.arch)?,
        arch_name: s.arch.clone(),
        batch: s.batch,
        warmup: s.warmup,
        steps: s.steps,
        seed: s.seed,
        loader_batches: s.loader_batches_per_sample,
        data_dir: args.data_dir.clone(),
    };
    let r = bench.run(m).with_context(|| format!("measuring {}", m.id()))?;
    Ok(Figure::new(m.id(), m.group(), m.label(), r.images_per_iter, r.seconds, peak_rss_bytes(), r.params))
}

/// Measure `m` in a child process of this binary (its own peak memory).
fn measure_child(m: Measure, args: &BenchArgs, s: &Settings) -> Result<Figure> {
    let tmp = std::env::temp_dir().join(format!("distillery-bench-{}-{}.json", std::process::id(), m.id()));
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let mut cmd = Command::new(&exe);
    cmd.arg("bench").arg("all");
    cmd.arg("--measure").arg(value_name(&m)).arg("--child-out").arg(&tmp);
    cmd.arg("--backend").arg(value_name(&args.backend)).arg("--arch").arg(&s.arch);
    for (flag, v) in [("--warmup", s.warmup), ("--steps", s.steps), ("--batch", s.batch), ("--batches", s.loader_batches_per_sample)] {
        cmd.arg(flag).arg(v.to_string());
    }
    cmd.arg("--seed").arg(s.seed.to_string());
    if let Some(d) = &args.data_dir {
        cmd.arg("--data-dir").arg(d);
    }
    if std::env::var_os("DISTILLERY_LOG").is_none() {
        // The training loop's per-epoch `info` lines are noise here; warnings still show.
        cmd.env("DISTILLERY_LOG", "warn");
    }
    let status = cmd.status().with_context(|| format!("running {}", exe.display()))?;
    if !status.success() {
        let _ = std::fs::remove_file(&tmp);
        bail!("{} failed ({status}); its error is printed above", m.id());
    }
    let bytes = std::fs::read(&tmp).with_context(|| format!("reading {}", tmp.display()));
    let _ = std::fs::remove_file(&tmp);
    serde_json::from_slice(&bytes?).with_context(|| format!("parsing the figure of {}", m.id()))
}

/// `xtask bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    let s = settings(&args)?;
    if let Some(m) = args.measure {
        let out = args.child_out.clone().context("--measure needs --child-out")?;
        return write_json(&out, &measure_here(m, &args, &s)?);
    }
    // Fail once, here, when the backend is not compiled in (rather than once per child); the
    // device also gives the report its adapter name.
    let device = args.backend.device()?;
    let out_dir = args.out.clone().unwrap_or_else(|| repo_root().join("results").join("bench"));
    let backend = value_name(&args.backend);
    let target = value_name(&args.target);
    let stem = if args.target == Target::All { backend.clone() } else { format!("{backend}-{target}") };
    let machine = Machine::current(&device);
    drop(device);
    println!(
        "bench {target} on {backend}{}: {}, batch {}, {} warm-up + {} timed iterations{}; {}, {} threads{}",
        machine.device.as_deref().map(|d| format!(" ({d})")).unwrap_or_default(),
        s.arch,
        s.batch,
        s.warmup,
        s.steps,
        if s.quick { " (--quick: smoke run)" } else { "" },
        machine.cpu_model,
        machine.threads,
        if args.in_process { ", in-process" } else { "" },
    );
    let mut figures = Vec::new();
    let mut failures = Vec::new();
    for m in args.target.measures() {
        let fig = if args.in_process { measure_here(m, &args, &s) } else { measure_child(m, &args, &s) };
        match fig {
            Ok(f) => {
                println!("{}", report::figure_line(&f));
                figures.push(f);
            }
            Err(e) => {
                println!("{:<20} FAILED: {e:#}", m.id());
                failures.push(m.id());
            }
        }
    }
    let checks = report::checks(&figures);
    let pytorch_path = out_dir.join("pytorch.json");
    let pytorch = if pytorch_path.is_file() {
        let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&pytorch_path)?)
            .with_context(|| format!("parsing {}", pytorch_path.display()))?;
        Some(report::compare_pytorch(&mut figures, &s, &machine, &value, &pytorch_path.display().to_string()))
    } else {
        None
    };
    let report = Report {
        schema: report::SCHEMA.into(),
        framework: "distillery".into(),
        backend,
        target,
        machine,
        peak_memory_note: if args.in_process {
            "VmHWM of the one benchmark process after each figure: cumulative, so each value bounds that figure and every one before it.".into()
        } else {
            "VmHWM of the child process that ran the figure alone (binary, models, optimiser state, activations; the loader's includes the CIFAR-10 training split).".into()
        },
        settings: s,
        figures,
        checks,
        pytorch,
    };
    if !report.checks.is_empty() {
        println!("derived checks (the issue's targets; reports, not tests):");
        for c in &report.checks {
            println!("  {}", report::check_line(c));
        }
    }
    if let Some(p) = &report.pytorch {
        println!(
            "vs PyTorch ({}, torch {}): Distillery img/s ÷ PyTorch img/s{}",
            p.file,
            p.torch_version.as_deref().unwrap_or("?"),
            if p.settings_match { "" } else { " — WARNING: its arch/batch/members differ from this run" }
        );
        for (id, r) in &p.ratios {
            println!("  {id:<20} ×{r:.3}");
        }
    }
    if report.figures.is_empty() {
        bail!("every figure failed: nothing written");
    }
    // An incomplete run never replaces a complete report.
    let stem = if failures.is_empty() { stem } else { format!("{stem}-partial") };
    let json = out_dir.join(format!("{stem}.json"));
    let md = out_dir.join(format!("{stem}.md"));
    write_json(&json, &report)?;
    write_atomic(&md, report::markdown(&report).as_bytes())?;
    println!("wrote {} and {}", json.display(), md.display());
    if !failures.is_empty() {
        bail!("{} figure(s) failed: {} (the others are in {})", failures.len(), failures.join(", "), json.display());
    }
    Ok(())
}

