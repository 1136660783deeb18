//! `cargo xtask …`: Distillery's command line. It owns the CLI, logging, progress bars and
//! every file it writes (atomically: temp file + rename); the libraries only compute.

mod aux_data;
mod backend;
mod cmd_bench;
mod cmd_data;
mod cmd_eval;
mod cmd_lockstep;
mod cmd_metrics;
mod cmd_spirals;
mod cmd_train;
mod compose;
mod experiment;
mod fsx;
mod interrupt;
mod npy;
mod plots;
mod progress;
mod report;
mod reproduce;
mod run_eval;
mod run_lock;
mod slurm;

/// The process-wide allocator. Burn's CPU backend allocates and frees multi-megabyte
/// activation, im2col and gradient buffers on every training step; glibc's malloc serves those
/// with fresh `mmap`s and unmaps them on free, so each step pays for page faults and the
/// kernel zeroing every page again (about a quarter of a flex ResNet-20 train step in `perf`).
/// mimalloc keeps freed memory for reuse. docs/perf-levers.md has the measurements.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc v3 returns ("purges") memory a page has not reused for `purge_delay` ms (default
/// 1000) to the OS; the next use faults it in again and the kernel zeroes it (2 MiB at a
/// time where transparent huge pages back the arena). A flex train step that takes longer
/// than the delay — ResNet-20 at batch 128 on a slow 2-core machine takes ~1 s — then pays
/// that on every step: `clear_page_erms` was 21 % of a step in `perf` on a Zen 3 machine.
/// Ten seconds keeps memory across steps and still gives it back between phases: ×1.15 on the
/// single-network and ×1.18 on the BE-4 train step there, peak memory +3 % / +30 %.
/// `MIMALLOC_PURGE_DELAY` in the environment, if set, wins (mimalloc reads it at load time,
/// before `main`, which is why this is a call and not `set_var`). docs/perf-levers.md.
#[cfg(feature = "mimalloc")]
const MIMALLOC_PURGE_DELAY_MS: std::ffi::c_long = 10_000;

#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)]
fn tune_allocator() {
    // `mi_option_purge_delay` in mimalloc v3's `include/mimalloc.h` (enum mi_option_e, the
    // 16th entry; libmimalloc-sys 0.1.49 does not name it). mi_option_set only stores the
    // value; the purge logic reads it on every decision, so setting it now takes effect.
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
    unsafe extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain setter of mimalloc's option table, linked in by the mimalloc crate.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, MIMALLOC_PURGE_DELAY_MS) };
    }
}

#[cfg(not(feature = "mimalloc"))]
fn tune_allocator() {}

use anyhow::Result;
use clap::{Parser, Subcommand};

const DEFAULT_LOG: &str = "warn,xtask=info,distill=info,ensembles=info,perturb=info,metrics=info,data=info";

/// Distillery: train ensembles and distil them into single networks, on Burn.
#[derive(Parser, Debug)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    /// Log filter (tracing-subscriber syntax), e.g. `info`, `debug`, `distill=debug`. The
    /// default shows this project's events at `info` and other crates' (Burn, CubeCL's
    /// autotuner, wgpu) only from `warn` up.
    #[arg(long, global = true, default_value = DEFAULT_LOG, env = "DISTILLERY_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Data sets: download with checksum verification, or print split statistics.
    Data(cmd_data::DataArgs),
    /// Train a network (a Deep Ensemble member, or a BatchEnsemble) from an experiment file.
    Train(cmd_train::TrainArgs),
    /// Distil teachers into a student from an experiment file with a [distill] section.
    Distill(cmd_train::DistillArgs),
    /// Score finished runs as one ensemble (mean of member probabilities).
    Eval(cmd_eval::EvalArgs),
    /// Score any framework's saved predictions (.npy) with the full metric set.
    Metrics(cmd_metrics::MetricsArgs),
    /// Throughput benchmarks (criterion-style reports in results/bench/).
    Bench(cmd_bench::BenchArgs),
    /// The EnD² spirals experiment (ensemble, EnD², EnD²+aux, single network, Bayes error).
    Spirals(cmd_spirals::SpiralsArgs),
    /// Reproduce a paper table: plan, train (resumable), evaluate, report.
    Reproduce(reproduce::ReproduceArgs),
    /// Regenerate a table's report from its run directories.
    Report(report::ReportArgs),
    /// Train one run of a submitted plan (`reproduce --executor slurm`'s array tasks).
    Run(slurm::RunArgs),
    /// Developer check (issue 17 §2): a few epochs of a teacher recipe in file order without
    /// augmentation, from saved initial weights, for `benches/pytorch_parity.py --lockstep`.
    ParityLockstep(cmd_lockstep::LockstepArgs),
}

fn main() -> Result<()> {
    tune_allocator();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Data(args) => cmd_data::run(args),
        Command::Train(args) => cmd_train::run(args),
        Command::Distill(args) => cmd_train::run_distill(args),
        Command::Eval(args) => cmd_eval::run(args),
        Command::Metrics(args) => cmd_metrics::run(&args),
        Command::Bench(args) => cmd_bench::run(args),
        Command::Spirals(args) => cmd_spirals::run(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Report(args) => report::run(args),
        Command::Run(args) => slurm::run(args),
        Command::ParityLockstep(args) => cmd_lockstep::run(args),
    }
}
