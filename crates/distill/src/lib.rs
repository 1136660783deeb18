//! # distill
//!
//! Distillation losses (METHODS.md §2) and the training loops shared by teachers and
//! students: SGD with Nesterov momentum, linear warm-up then cosine decay, weight decay
//! (with the LatentBE pull-to-one regulariser for BatchEnsemble fast weights), model
//! selection on validation, and epoch-boundary checkpoints. The loops take batches as
//! tensors and report through a [`train::TrainObserver`]; they print nothing and pick no
//! backend.

pub mod loss;
pub mod schedule;
pub mod spirals;
pub mod student;
pub mod train;

/// The end of a divergence message: which state is the last good one.
fn last_good_state(epochs: usize) -> String {
    match epochs {
        0 => "no epoch had finished, so there is no checkpoint to go back to".into(),
        e => format!("the checkpoint of epoch {e} is the last good state"),
    }
}

/// Errors of the `distill` crate.
#[derive(Debug, thiserror::Error)]
pub enum DistillError {
    /// An invalid hyper-parameter; the message names the field and value.
    #[error("invalid config: {0}")]
    Config(String),
    /// The observer (e.g. the CLI's checkpoint writer) failed; its message names the path.
    #[error("{0}")]
    Observer(String),
    /// Training diverged: a non-finite loss. Training stops at that step, before the
    /// update, so the last epoch's checkpoint is the last good state.
    #[error(
        "training diverged: non-finite loss {loss} ({term}) at epoch {epoch}, step {} of the epoch, learning rate {lr}; \
         stopped before updating: {}", .step + 1, last_good_state(*.last_good)
    )]
    Diverged {
        /// Loss value.
        loss: f64,
        /// Which term of the loss was non-finite (e.g. "objective", "fast-weight regulariser").
        term: &'static str,
        /// Epoch (1-based) the step belongs to.
        epoch: usize,
        /// Step within the epoch (0-based; the message counts from 1, as it does epochs).
        step: usize,
        /// Learning rate of that step.
        lr: f64,
        /// Completed epochs before it (0: none).
        last_good: usize,
    },
    /// The weights or the model's outputs became non-finite although every loss was finite
    /// (e.g. a huge learning rate): found at the end of an epoch, before it is checkpointed or
    /// selected.
    #[error(
        "training diverged: {what} after epoch {epoch} (learning rate {lr} at its last step); \
         not checkpointed or selected: {}", last_good_state(*.last_good)
    )]
    NonFiniteModel {
        /// What was found non-finite.
        what: String,
        /// The epoch (1-based) after which it was found.
        epoch: usize,
        /// Learning rate of the epoch's last step.
        lr: f64,
        /// Completed epochs of the last good state.
        last_good: usize,
    },
    /// Training was stopped on request ([`train::TrainObserver::stop_requested`]) after a
    /// checkpoint of the state; running again resumes from it.
    #[error("interrupted at epoch {epoch} after step {step} of it; its state is checkpointed and the run resumes from there")]
    Interrupted {
        /// Epoch (1-based) in progress.
        epoch: usize,
        /// Completed steps of that epoch (0: at its start).
        step: usize,
    },
    /// A model operation failed.
    #[error(transparent)]
    Model(#[from] ensembles::EnsembleError),
    /// An input perturbation failed.
    #[error(transparent)]
    Perturb(#[from] perturb::PerturbError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn divergence_message_counts_epochs_and_steps_from_one() {
        // The trainer records the 0-based step of the 1-based epoch; the first step of the
        // first epoch reads as "epoch 1, step 1", not "step 0".
        let e = DistillError::Diverged { loss: f64::NAN, term: "objective", epoch: 1, step: 0, lr: 0.1, last_good: 0 };
        let msg = e.to_string();
        assert!(msg.contains("at epoch 1, step 1 of the epoch, learning rate 0.1;"), "{msg}");
        assert!(msg.contains("no checkpoint to go back to"), "{msg}");
    }
}
