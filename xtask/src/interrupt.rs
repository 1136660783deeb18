//! SIGTERM / SIGINT: stop a training run at the next step with a checkpoint of that step.
//!
//! Slurm sends SIGTERM before it kills a preempted or timed-out job (and `scancel
//! --signal=TERM` does so on request); a user's Ctrl-C is SIGINT. The first signal only sets
//! a flag that the trainer polls after every step (`TrainObserver::stop_requested`): the run
//! checkpoints the current step and exits non-zero, and the next invocation (a requeued array
//! task, or the user again) resumes from that step. A second signal while the flag is set
//! exits at once (status 130 on SIGINT, 143 on SIGTERM, as a shell reports a kill).

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Install the handlers (idempotent; the CLI calls it before training).
pub fn install() -> Result<()> {
    if FLAG.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    for (sig, code) in [(signal_hook::consts::SIGTERM, 143), (signal_hook::consts::SIGINT, 130)] {
        // Registered first, so it sees the flag as it was before this signal set it.
        signal_hook::flag::register_conditional_shutdown(sig, code, flag.clone()).context("installing a signal handler")?;
        signal_hook::flag::register(sig, flag.clone()).context("installing a signal handler")?;
    }
    let _ = FLAG.set(flag);
    Ok(())
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
}
