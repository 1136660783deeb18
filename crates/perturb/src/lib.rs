//! # perturb
//!
//! Input-gradient perturbations for ensemble distillation (METHODS.md §3): ODS (Tashiro et
//! al. 2020), ConfODS, and TDiv-SDiv (Nam et al. 2022). Each perturbs a clean batch of
//! pixels in `[0, 1]` by one normalised gradient step per example, computed with every
//! network in evaluation mode and with gradients taken with respect to the input only.
//!
//! The training loop calls [`perturb_batch`] with a [`PerturbationKind`]; teachers and
//! student are given as an [`Ensemble`] (a Deep Ensemble's plain members or one unmerged
//! BatchEnsemble). Other model families and input ranks (the spirals' MLPs on points in the
//! plane) implement [`EvalMembers`] and call [`perturb_inputs`], which clips only when given
//! bounds. Randomness comes from a caller-supplied [`rand::Rng`]. The lower-level
//! pieces ([`ods_gradient`], [`tdiv_sdiv_gradient`], [`normalized_step`], the draws) are
//! public so that each formula can be checked on its own. This crate prints nothing and
//! picks no backend.

mod ensemble;
mod error;
mod kind;
mod ods;
mod step;
mod tdiv_sdiv;

pub use ensemble::{Ensemble, EvalMembers};
pub use error::PerturbError;
pub use kind::{DEFAULT_ETA, DEFAULT_TEMPERATURE, Draw, PIXEL_RANGE, PerturbationKind, Perturbed, perturb_batch, perturb_inputs};
pub use ods::{OdsDraw, OdsGradient, draw_ods, ods_gradient};
pub use step::{MIN_GRAD_NORM, normalized_step};
pub use tdiv_sdiv::{check_tdiv_sdiv, draw_pair, tdiv_sdiv_gradient};
