//! The report of `xtask bench`: criterion-style statistics of each figure, the derived checks
//! against the targets, machine information, the comparison with
//! `benches/pytorch_reference.py`'s `pytorch.json` (same schema), JSON and Markdown.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Schema tag of `results/bench/*.json` (also written by `benches/pytorch_reference.py`).
pub const SCHEMA: &str = "distillery-bench/1";

/// Order statistics of the timed iterations (seconds per iteration).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Stats {
    /// Median.
    pub median: f64,
    /// Fastest iteration.
    pub min: f64,
    /// Slowest iteration.
    pub max: f64,
    /// First quartile (linear interpolation, numpy's default).
    pub q1: f64,
    /// Third quartile.
    pub q3: f64,
    /// Every timed iteration, in order.
    pub samples: Vec<f64>,
}

/// Quantile `q` of sorted values, linear interpolation between order statistics.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

impl Stats {
    /// Summarise non-empty `samples`.
    pub fn of(samples: Vec<f64>) -> Self {
        assert!(!samples.is_empty(), "no samples");
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        Self {
            median: quantile(&sorted, 0.5),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            q1: quantile(&sorted, 0.25),
            q3: quantile(&sorted, 0.75),
            samples,
        }
    }
}

/// Throughput derived from [`Stats`]: images per iteration over seconds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Rate {
    /// At the median time.
    pub median: f64,
    /// At the slowest iteration.
    pub min: f64,
    /// At the fastest iteration.
    pub max: f64,
}

/// One measured figure.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Figure {
    /// Identifier shared with the PyTorch reference (`train_single`, …).
    pub id: String,
    /// `train`, `infer`, `distill` or `loader`.
    pub group: String,
    /// Description.
    pub label: String,
    /// Images one iteration counts (un-tiled batch; loader: images per sample).
    pub images_per_iter: usize,
    /// Seconds per timed iteration.
    pub seconds: Stats,
    /// Images per second.
    pub images_per_second: Rate,
    /// Peak resident memory (VmHWM) of the process that ran the measurement, if known.
    pub peak_rss_bytes: Option<u64>,
    /// What was run.
    pub params: serde_json::Value,
    /// Distillery images/s ÷ PyTorch images/s (> 1: Distillery faster), when `pytorch.json`
    /// has this figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_pytorch: Option<f64>,
}

impl Figure {
    /// Build from per-iteration seconds.
    pub fn new(
        id: &str,
        group: &str,
        label: &str,
        images_per_iter: usize,
        seconds: Vec<f64>,
        peak_rss_bytes: Option<u64>,
        params: serde_json::Value,
    ) -> Self {
        let seconds = Stats::of(seconds);
        let n = images_per_iter as f64;
        let images_per_second = Rate { median: n / seconds.median, min: n / seconds.max, max: n / seconds.min };
        Self {
            id: id.into(),
            group: group.into(),
            label: label.into(),
            images_per_iter,
            seconds,
            images_per_second,
            peak_rss_bytes,
            params,
            vs_pytorch: None,
        }
    }

    fn seconds_per_image(&self) -> f64 {
        self.seconds.median / self.images_per_iter as f64
    }
}

/// A derived figure with the target (a benchmark report, not a test).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Check {
    /// Identifier.
    pub id: String,
    /// What is compared.
    pub description: String,
    /// The derived value.
    pub value: f64,
    /// The target, as text.
    pub target: String,
    /// Whether the value meets the target; `None` for a figure reported for context only.
    pub pass: Option<bool>,
}

/// The derived checks whose figures are present.
///
/// - LatentBE over single inference uses the paired ratio that `infer_latentbe` records
///   (`params.paired.ratio_median`: both networks timed alternately in one process, so drift
///   of the machine between two child processes cannot move it) when present, else the two
///   figures' medians.
/// - The TDiv-SDiv target compares it with the KD step of the same BE-4 student and
///   teachers (`distill_kd_latentbe`): what the perturbation costs. Against the plain-student
///   KD step it is reported for context only — that student sees B images, the BE-4 one 4B.
pub fn checks(figures: &[Figure]) -> Vec<Check> {
    let get = |id: &str| figures.iter().find(|f| f.id == id);
    let mut out = Vec::new();
    let ratio = |id: &str, num: &str, den: &str, description: &str, target: &str, pass: Option<&dyn Fn(f64) -> bool>| {
        let (a, b) = (get(num)?, get(den)?);
        let value = a.seconds_per_image() / b.seconds_per_image();
        Some(Check { id: id.into(), description: description.into(), value, target: target.into(), pass: pass.map(|p| p(value)) })
    };
    let paired = get("infer_latentbe").and_then(|f| f.params.pointer("/paired/ratio_median")).and_then(|v| v.as_f64());
    if let Some(value) = paired {
        out.push(Check {
            id: "latentbe_over_single_inference".into(),
            description: "LatentBE inference time / single-network inference time (paired, one process)".into(),
            value,
            target: "≤ 1.02".into(),
            pass: Some(value <= 1.02),
        });
    } else {
        out.extend(ratio(
            "latentbe_over_single_inference",
            "infer_latentbe",
            "infer_single",
            "LatentBE inference time / single-network inference time",
            "≤ 1.02",
            Some(&|v| v <= 1.02),
        ));
    }
    out.extend(ratio(
        "be4_over_single_inference",
        "infer_be4",
        "infer_single",
        "BE-4 inference time / single-network inference time",
        "≈ 4 (3.0–5.0)",
        Some(&|v| (3.0..=5.0).contains(&v)),
    ));
    out.extend(ratio(
        "tdiv_sdiv_over_kd_latentbe_step",
        "distill_tdiv_sdiv",
        "distill_kd_latentbe",
        "TDiv-SDiv step time / KD step time, same BE-4 student (KD + LatentBE)",
        "≤ 2.0",
        Some(&|v| v <= 2.0),
    ));
    out.extend(ratio(
        "tdiv_sdiv_over_kd_step",
        "distill_tdiv_sdiv",
        "distill_kd",
        "TDiv-SDiv step time / KD step time, plain student (4x fewer student images)",
        "context only",
        None,
    ));
    if let Some(l) = get("loader") {
        let threads = l.params.get("threads").and_then(|t| t.as_f64()).unwrap_or(1.0).max(1.0);
        let value = l.images_per_second.median / threads;
        out.push(Check {
            id: "loader_per_core".into(),
            description: "loader + augmentation images/s per core".into(),
            value,
            target: "≥ 20000 img/s/core".into(),
            pass: Some(value >= 20_000.0),
        });
    }
    out
}

/// The machine and code a report was measured on.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Machine {
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: String,
    /// What `model name` leaves out (virtual machines often report a bare "AMD EPYC"): the
    /// `cpu family`, `model` and `stepping` of /proc/cpuinfo and the x86-64 level its flags
    /// reach, e.g. `family 25 model 1 stepping 1, x86-64-v3`. Throughput differs several-fold
    /// between such machines, so a PyTorch ratio is only shown as valid when this matches.
    #[serde(default)]
    pub cpu_signature: Option<String>,
    /// Logical CPUs available to the process.
    pub logical_cpus: usize,
    /// Compute threads (Rayon's global pool, which flex uses; `RAYON_NUM_THREADS` sets it).
    pub threads: usize,
    /// `RAYON_NUM_THREADS` as set, if set.
    pub rayon_num_threads_env: Option<String>,
    /// Operating system and architecture.
    pub os: String,
    /// Burn version (from Cargo.lock at build time).
    pub burn_version: String,
    /// `git rev-parse HEAD` of the repository, if available.
    pub git_commit: Option<String>,
    /// Whether tracked files had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// Date of the run, UTC, ISO 8601.
    pub date_utc: String,
    /// The compute device as Burn names it (the adapter for wgpu/vulkan/cuda, e.g. Mesa's
    /// `llvmpipe (LLVM …)` for software Vulkan); `None` for flex, which runs on the CPU above.
    #[serde(default)]
    pub device: Option<String>,
    /// Cargo features of this binary that change kernels (`flex`, `wgpu`, `x86-v4`, …).
    #[serde(default)]
    pub features: Vec<String>,
}

/// [`Machine::cpu_signature`] from the text of /proc/cpuinfo (its first processor).
pub fn cpu_signature(cpuinfo: &str) -> Option<String> {
    let first = cpuinfo.split("\n\n").next()?;
    let field = |name: &str| {
        first.lines().find(|l| l.split(':').next().map(str::trim) == Some(name)).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string())
    };
    let (family, model) = (field("cpu family")?, field("model")?);
    let stepping = field("stepping").unwrap_or_else(|| "?".into());
    let flags = field("flags").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    // The x86-64 micro-architecture levels, by their defining flags (a subset suffices here).
    let level = if ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"].iter().all(|f| has(f)) {
        "x86-64-v4"
    } else if ["avx", "avx2", "bmi2", "fma", "movbe"].iter().all(|f| has(f)) {
        "x86-64-v3"
    } else if ["sse4_2", "popcnt", "ssse3"].iter().all(|f| has(f)) {
        "x86-64-v2"
    } else {
        "x86-64"
    };
    Some(format!("family {family} model {model} stepping {stepping}, {level}"))
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|m| m.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The version of the `burn` package in the workspace's Cargo.lock.
fn burn_version() -> String {
    let lock = include_str!("../../../Cargo.lock");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"burn\""
            && let Some(v) = lines.next().and_then(|l| l.trim().strip_prefix("version = \""))
        {
            return v.trim_end_matches('"').to_string();
        }
    }
    "unknown".into()
}

fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git").arg("-C").arg(crate::fsx::repo_root()).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Format seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days to civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

impl Machine {
    /// Describe this machine, checkout and the device the figures run on.
    pub fn current(device: &burn::tensor::Device) -> Self {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Self {
            cpu_model: cpu_model(),
            cpu_signature: std::fs::read_to_string("/proc/cpuinfo").ok().as_deref().and_then(cpu_signature),
            logical_cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            threads: rayon::current_num_threads(),
            rayon_num_threads_env: std::env::var("RAYON_NUM_THREADS").ok(),
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            burn_version: burn_version(),
            git_commit: git(&["rev-parse", "HEAD"]),
            git_dirty: git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()),
            date_utc: format_utc(now),
            device: device_name(device),
            features: compiled_features(),
        }
    }
}

/// The adapter name of a CubeCL device (wgpu, vulkan, cuda); flex has none.
#[cfg(any(feature = "wgpu", feature = "vulkan", feature = "cuda"))]
fn device_name(device: &burn::tensor::Device) -> Option<String> {
    device.identity().map(|i| i.name)
}

#[cfg(not(any(feature = "wgpu", feature = "vulkan", feature = "cuda")))]
fn device_name(_device: &burn::tensor::Device) -> Option<String> {
    None
}

/// The kernel-relevant cargo features compiled into this binary.
fn compiled_features() -> Vec<String> {
    let all = [
        ("flex", cfg!(feature = "flex")),
        ("wgpu", cfg!(feature = "wgpu")),
        ("vulkan", cfg!(feature = "vulkan")),
        ("cuda", cfg!(feature = "cuda")),
        ("x86-v4", cfg!(feature = "x86-v4")),
    ];
    all.iter().filter(|(_, on)| *on).map(|(f, _)| f.to_string()).collect()
}

/// The resolved settings of a run.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Settings {
    /// Backbone (`resnet20`).
    pub arch: String,
    /// Un-tiled batch size.
    pub batch: usize,
    /// Ensemble size of BE/DE/teachers.
    pub members: usize,
    /// Warm-up iterations per figure.
    pub warmup: usize,
    /// Timed iterations per figure.
    pub steps: usize,
    /// Seed.
    pub seed: u64,
    /// Loader: batches per timed sample.
    pub loader_batches_per_sample: usize,
    /// `--quick`.
    pub quick: bool,
    /// How figures were isolated: `child process per figure` or `in-process`.
    pub isolation: String,
}

/// How this report compares with `pytorch.json`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PytorchComparison {
    /// The file read.
    pub file: String,
    /// Its torch version.
    pub torch_version: Option<String>,
    /// Its thread count.
    pub threads: Option<u64>,
    /// Whether arch, batch and members agree with this run.
    pub settings_match: bool,
    /// Whether it ran on the same CPU (model name and [`Machine::cpu_signature`]) with the
    /// same thread count; `None` when it does not record a signature.
    #[serde(default)]
    pub same_machine: Option<bool>,
    /// Figures compared: id → Distillery images/s ÷ PyTorch images/s.
    pub ratios: std::collections::BTreeMap<String, f64>,
}

/// Fill `vs_pytorch` of every figure `pytorch` (a parsed `pytorch.json`) also has.
pub fn compare_pytorch(figures: &mut [Figure], settings: &Settings, machine: &Machine, pytorch: &serde_json::Value, file: &str) -> PytorchComparison {
    let theirs = |id: &str| -> Option<f64> {
        pytorch.get("figures")?.as_array()?.iter().find(|f| f.get("id").and_then(|i| i.as_str()) == Some(id))?
            .get("images_per_second")?.get("median")?.as_f64()
    };
    let mut ratios = std::collections::BTreeMap::new();
    for f in figures.iter_mut() {
        if let Some(t) = theirs(&f.id).filter(|t| *t > 0.0 && t.is_finite()) {
            let r = f.images_per_second.median / t;
            f.vs_pytorch = Some(r);
            ratios.insert(f.id.clone(), r);
        }
    }
    let s = pytorch.get("settings");
    let field = |k: &str| s.and_then(|s| s.get(k)).cloned();
    let settings_match = field("arch") == Some(serde_json::json!(settings.arch))
        && field("batch") == Some(serde_json::json!(settings.batch))
        && field("members") == Some(serde_json::json!(settings.members));
    let theirs = pytorch.get("machine");
    let text = |k: &str| theirs.and_then(|m| m.get(k)).and_then(|v| v.as_str()).map(String::from);
    let threads = theirs.and_then(|m| m.get("threads")).and_then(|v| v.as_u64());
    let same_machine = text("cpu_signature").map(|sig| {
        Some(sig) == machine.cpu_signature && text("cpu_model").as_deref() == Some(machine.cpu_model.as_str()) && threads == Some(machine.threads as u64)
    });
    PytorchComparison { file: file.into(), torch_version: text("torch_version"), threads, settings_match, same_machine, ratios }
}

/// The whole report (`results/bench/<backend>.json`).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// `distillery` (the PyTorch script writes `pytorch`).
    pub framework: String,
    /// Burn backend.
    pub backend: String,
    /// `bench` target that produced the report (`all`, `train`, …).
    pub target: String,
    /// Machine and checkout.
    pub machine: Machine,
    /// Resolved settings.
    pub settings: Settings,
    /// What `peak_rss_bytes` means in this report.
    pub peak_memory_note: String,
    /// The figures, in measurement order.
    pub figures: Vec<Figure>,
    /// Derived checks against the targets.
    pub checks: Vec<Check>,
    /// Comparison with `pytorch.json`, when it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pytorch: Option<PytorchComparison>,
}

/// Mebibytes, for display.
pub fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "–".into(), |b| format!("{:.0}", b as f64 / (1024.0 * 1024.0)))
}

/// Fixed-width one-line summary of a figure, for the terminal.
pub fn figure_line(f: &Figure) -> String {
    let ms = |s: f64| s * 1e3;
    let vs = f.vs_pytorch.map(|r| format!("  ×{r:.2} vs PyTorch")).unwrap_or_default();
    format!(
        "{:<20} {:>10.1} img/s [{:.1} – {:.1}]   {:>9.2} ms/iter (IQR {:.2} – {:.2}, n={})   peak {} MiB{vs}",
        f.id,
        f.images_per_second.median,
        f.images_per_second.min,
        f.images_per_second.max,
        ms(f.seconds.median),
        ms(f.seconds.q1),
        ms(f.seconds.q3),
        f.seconds.samples.len(),
        mib(f.peak_rss_bytes),
    )
}

fn pass_word<'a>(pass: Option<bool>, yes: &'a str, no: &'a str, none: &'a str) -> &'a str {
    match pass {
        Some(true) => yes,
        Some(false) => no,
        None => none,
    }
}

/// One line of a check, for the terminal.
pub fn check_line(c: &Check) -> String {
    format!("{:<32} {:>12.3}   target {:<20} {}", c.id, c.value, c.target, pass_word(c.pass, "PASS", "FAIL", "-"))
}

/// The Markdown report (`results/bench/<backend>.md`).
pub fn markdown(r: &Report) -> String {
    let m = &r.machine;
    let s = &r.settings;
    let mut out = String::new();
    let _ = writeln!(out, "# Distillery benchmarks: `{}` backend (`bench {}`)\n", r.backend, r.target);
    let commit = m.git_commit.as_deref().map(|c| format!(", commit `{}`{}", &c[..c.len().min(12)], if m.git_dirty == Some(true) { " (dirty)" } else { "" })).unwrap_or_default();
    let _ = writeln!(
        out,
        "{}: {}, {} logical CPUs, {} compute threads, Burn {}{commit}.\n",
        m.date_utc, m.cpu_model, m.logical_cpus, m.threads, m.burn_version
    );
    if let Some(sig) = &m.cpu_signature {
        let _ = writeln!(out, "CPU: {sig}.\n");
    }
    if let Some(d) = &m.device {
        let _ = writeln!(out, "Device: {d}.\n");
    }
    if !m.features.is_empty() {
        let _ = writeln!(out, "Compiled-in features: {}.\n", m.features.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", "));
    }
    let _ = writeln!(
        out,
        "`{}`, batch {} (BatchEnsembles see it tiled to {}), M = {}; {} warm-up then {} timed iterations per figure (median, min–max, IQR); seed {}{}.\n",
        s.arch,
        s.batch,
        s.batch * s.members,
        s.members,
        s.warmup,
        s.steps,
        s.seed,
        if s.quick { "; `--quick` (smoke run, not a measurement)" } else { "" }
    );
    let with_pt = r.pytorch.is_some();
    let _ = writeln!(
        out,
        "| figure | what | img/s (median) | img/s (min – max) | ms/iter (median) | ms/iter (IQR) | peak RSS (MiB) |{}",
        if with_pt { " vs PyTorch |" } else { "" }
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|{}", if with_pt { "---:|" } else { "" });
    for f in &r.figures {
        let pt = if with_pt { f.vs_pytorch.map_or_else(|| " – |".into(), |v| format!(" ×{v:.2} |")) } else { String::new() };
        let _ = writeln!(
            out,
            "| `{}` | {} | {:.1} | {:.1} – {:.1} | {:.2} | {:.2} – {:.2} | {} |{pt}",
            f.id,
            f.label,
            f.images_per_second.median,
            f.images_per_second.min,
            f.images_per_second.max,
            f.seconds.median * 1e3,
            f.seconds.q1 * 1e3,
            f.seconds.q3 * 1e3,
            mib(f.peak_rss_bytes)
        );
    }
    if !r.checks.is_empty() {
        let _ = writeln!(out, "\n## Derived checks (the issue's targets; reports, not tests)\n");
        let _ = writeln!(out, "| check | value | target | result |\n|---|---:|---|---|");
        for c in &r.checks {
            let _ = writeln!(out, "| {} | {:.3} | {} | {} |", c.description, c.value, c.target, pass_word(c.pass, "pass", "**fail**", "–"));
        }
    }
    if let Some(p) = &r.pytorch {
        let _ = writeln!(
            out,
            "\nvs PyTorch: Distillery img/s ÷ PyTorch img/s from `{}` (torch {}, {} threads{}); > 1 means Distillery is faster.",
            p.file,
            p.torch_version.as_deref().unwrap_or("?"),
            p.threads.map_or_else(|| "?".into(), |t| t.to_string()),
            if p.settings_match { "" } else { "; **its arch/batch/members differ from this run**" }
        );
        let _ = writeln!(
            out,
            "{}",
            match p.same_machine {
                Some(true) => "It ran on this CPU (same model, signature and threads).",
                Some(false) => "**It ran on a different CPU or thread count: the ratios compare two machines** (rerun `benches/pytorch_reference.py` here).",
                None => "**It records no CPU signature: the ratios are only meaningful if it ran on this machine.**",
            }
        );
    }
    let _ = writeln!(out, "\nPeak RSS: {}", r.peak_memory_note);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(id: &str, images: usize, secs: &[f64]) -> Figure {
        Figure::new(id, "g", id, images, secs.to_vec(), Some(1 << 20), serde_json::json!({}))
    }

    #[test]
    fn stats_hand_values() {
        let s = Stats::of(vec![4.0, 1.0, 3.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
        // numpy.percentile([1,2,3,4], [25, 75]) = 1.75, 3.25
        assert_eq!((s.q1, s.q3), (1.75, 3.25));
        assert_eq!(s.samples, vec![4.0, 1.0, 3.0, 2.0]);
        let s = Stats::of(vec![5.0, 1.0, 3.0]);
        assert_eq!((s.median, s.q1, s.q3), (3.0, 2.0, 4.0));
        let f = fig("x", 128, &[0.5, 1.0, 2.0]);
        assert_eq!((f.images_per_second.median, f.images_per_second.min, f.images_per_second.max), (128.0, 64.0, 256.0));
    }

    #[test]
    fn checks_from_figures() {
        let figures = vec![
            fig("infer_single", 128, &[1.0]),
            fig("infer_latentbe", 128, &[1.01]),
            fig("infer_be4", 128, &[5.5]),
            fig("distill_kd", 128, &[2.0]),
            fig("distill_tdiv_sdiv", 128, &[3.0]),
            fig("loader", 12_800, &[0.5]),
        ];
        let c = checks(&figures);
        let get = |id: &str| c.iter().find(|c| c.id == id).unwrap();
        assert!((get("latentbe_over_single_inference").value - 1.01).abs() < 1e-12);
        assert_eq!(get("latentbe_over_single_inference").pass, Some(true));
        assert_eq!(get("be4_over_single_inference").pass, Some(false));
        // Plain-student KD: context only, no verdict; no KD + LatentBE figure: no target check.
        assert!((get("tdiv_sdiv_over_kd_step").value - 1.5).abs() < 1e-12 && get("tdiv_sdiv_over_kd_step").pass.is_none());
        assert!(c.iter().all(|c| c.id != "tdiv_sdiv_over_kd_latentbe_step"));
        assert!((get("loader_per_core").value - 25_600.0).abs() < 1e-9 && get("loader_per_core").pass == Some(true));
        // Missing figures: no check.
        assert!(checks(&figures[..1]).is_empty());

        // The same-student target, and the paired LatentBE ratio taking precedence over the
        // two separate figures (which alone would give 1.5, a fail).
        let mut figures = vec![
            fig("infer_single", 128, &[1.0]),
            Figure::new("infer_latentbe", "g", "l", 128, vec![1.5], None, serde_json::json!({"paired": {"ratio_median": 0.99}})),
            fig("distill_kd_latentbe", 128, &[2.0]),
            fig("distill_tdiv_sdiv", 128, &[4.2]),
        ];
        let c = checks(&figures);
        let get = |id: &str| c.iter().find(|c| c.id == id).unwrap();
        assert_eq!(get("latentbe_over_single_inference").value, 0.99);
        assert_eq!(get("latentbe_over_single_inference").pass, Some(true));
        assert!((get("tdiv_sdiv_over_kd_latentbe_step").value - 2.1).abs() < 1e-12);
        assert_eq!(get("tdiv_sdiv_over_kd_latentbe_step").pass, Some(false));
        figures[1].params = serde_json::json!({});
        let c = checks(&figures);
        assert_eq!(c[0].value, 1.5);
        assert_eq!(c[0].pass, Some(false));
    }

    #[test]
    fn pytorch_ratios() {
        let mut figures = vec![fig("train_single", 128, &[1.0]), fig("loader", 100, &[1.0])];
        let settings = Settings {
            arch: "resnet20".into(), batch: 128, members: 4, warmup: 1, steps: 1, seed: 0,
            loader_batches_per_sample: 1, quick: false, isolation: "in-process".into(),
        };
        let pt = serde_json::json!({
            "settings": {"arch": "resnet20", "batch": 128, "members": 4},
            "machine": {"torch_version": "2.9.0", "threads": 2},
            "figures": [{"id": "train_single", "images_per_second": {"median": 256.0}}],
        });
        let mut machine = Machine::current(&burn::tensor::Device::default());
        machine.cpu_model = "AMD EPYC".into();
        machine.cpu_signature = Some("family 25 model 1 stepping 1, x86-64-v3".into());
        machine.threads = 2;
        let c = compare_pytorch(&mut figures, &settings, &machine, &pt, "pytorch.json");
        assert_eq!(figures[0].vs_pytorch, Some(0.5));
        assert_eq!(figures[1].vs_pytorch, None);
        assert!(c.settings_match);
        assert_eq!(c.threads, Some(2));
        assert_eq!(c.ratios.len(), 1);
        assert_eq!(c.same_machine, None, "no signature recorded");
        let with_sig = |sig: &str, threads: u64| {
            let mut pt = pt.clone();
            pt["machine"] = serde_json::json!({"cpu_model": "AMD EPYC", "cpu_signature": sig, "threads": threads});
            compare_pytorch(&mut figures.clone(), &settings, &machine, &pt, "pytorch.json").same_machine
        };
        assert_eq!(with_sig("family 25 model 1 stepping 1, x86-64-v3", 2), Some(true));
        assert_eq!(with_sig("family 25 model 17 stepping 1, x86-64-v4", 2), Some(false));
        assert_eq!(with_sig("family 25 model 1 stepping 1, x86-64-v3", 1), Some(false));
    }

    #[test]
    fn cpu_signatures() {
        // Abbreviated /proc/cpuinfo of a Zen 3 and a Zen 4 virtual machine.
        let zen3 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nstepping\t: 1\n\
                    flags\t\t: fpu sse4_2 popcnt ssse3 avx avx2 bmi2 fma movbe\n\nprocessor\t: 1\ncpu family\t: 99\n";
        assert_eq!(cpu_signature(zen3).as_deref(), Some("family 25 model 1 stepping 1, x86-64-v3"));
        let zen4 = zen3.replace("model\t\t: 1\n", "model\t\t: 17\n").replace("movbe", "movbe avx512f avx512bw avx512cd avx512dq avx512vl");
        assert_eq!(cpu_signature(&zen4).as_deref(), Some("family 25 model 17 stepping 1, x86-64-v4"));
        assert_eq!(cpu_signature("processor\t: 0\nflags\t: sse2\n"), None);
    }

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_utc(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn burn_version_from_lock() {
        assert_eq!(burn_version(), "0.22.1");
    }
}
