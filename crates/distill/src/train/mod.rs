//! Training machinery shared by teachers and students.

mod optim;
mod schedule;
mod selection;
mod supervised;

pub use optim::{OptimConfig, Optimizer};
pub use schedule::WarmupCosine;
pub use selection::evaluation_epochs;
pub use supervised::{Best, EpochState, SupervisedTrainer, TrainObserver, cross_entropy_objective, non_finite_parameters, predict_probs};
