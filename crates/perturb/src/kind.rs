//! The perturbation a distillation run applies to each clean batch before computing its loss
//! (METHODS.md §3: the clean batch is replaced by the perturbed one), as a configuration
//! value, and the entry points the training loops call: [`perturb_batch`] for image batches
//! (pixels clipped to `[0, 1]`) and [`perturb_inputs`] for any input rank and domain.

use burn::config::Config;
use burn::tensor::Tensor;
use rand::Rng;

use crate::ensemble::{Ensemble, EvalMembers};
use crate::error::PerturbError;
use crate::ods::{OdsDraw, check_input, check_positive, draw_ods, ods_gradient};
use crate::step::{apply_step, normalized_step};
use crate::tdiv_sdiv::{check_tdiv_sdiv, draw_pair, tdiv_sdiv_gradient};

/// Default step size η = 1/255 (one 8-bit grey level, scaled by √D): METHODS.md §3 for ODS
/// and TDiv-SDiv alike.
pub const DEFAULT_ETA: f64 = 1.0 / 255.0;

/// Default ODS temperature T = 1 (Tashiro et al. 2020 use the plain softmax). A
/// distillation run passes its KD temperature instead, as the Diversity-Matters code does
/// (see [`crate::ods`]).
pub const DEFAULT_TEMPERATURE: f64 = 1.0;

/// Which input perturbation to apply (METHODS.md §3). Defaults: [`PerturbationKind::None`];
/// the constructors [`ods`](PerturbationKind::ods), [`conf_ods`](PerturbationKind::conf_ods)
/// and [`tdiv_sdiv`](PerturbationKind::tdiv_sdiv) use `eta = 1/255` and `temperature = 1`.
#[derive(Config, Debug, PartialEq, Copy)]
pub enum PerturbationKind {
    /// Use the clean batch.
    None,
    /// Output Diversified Sampling: step `η √D g/||g||` along `∇_x wᵀ softmax(z_m(x)/T)`.
    Ods {
        /// Step size η (default 1/255).
        eta: f64,
        /// Softmax temperature T of the objective (default 1).
        temperature: f64,
    },
    /// ODS with the step scaled per example by teacher m's confidence `max_k p_m,k(x)`.
    ConfOds {
        /// Step size η (default 1/255).
        eta: f64,
        /// Softmax temperature T of the objective and of the confidence (default 1).
        temperature: f64,
    },
    /// Teacher-divergence minus student-divergence ascent (Nam et al. 2022).
    TDivSDiv {
        /// Step size η (default 1/255, i.e. step norm `√D/255`).
        eta: f64,
    },
}

impl Default for PerturbationKind {
    fn default() -> Self {
        PerturbationKind::None
    }
}

impl PerturbationKind {
    /// ODS with the defaults `eta = 1/255`, `temperature = 1`.
    pub fn ods() -> Self {
        PerturbationKind::Ods { eta: DEFAULT_ETA, temperature: DEFAULT_TEMPERATURE }
    }

    /// ConfODS with the defaults `eta = 1/255`, `temperature = 1`.
    pub fn conf_ods() -> Self {
        PerturbationKind::ConfOds { eta: DEFAULT_ETA, temperature: DEFAULT_TEMPERATURE }
    }

    /// TDiv-SDiv with the default `eta = 1/255`.
    pub fn tdiv_sdiv() -> Self {
        PerturbationKind::TDivSDiv { eta: DEFAULT_ETA }
    }

    /// Whether this kind needs the student network ([`PerturbationKind::TDivSDiv`] only).
    pub fn needs_student(&self) -> bool {
        matches!(self, PerturbationKind::TDivSDiv { .. })
    }
}

/// What was drawn for one perturbed batch (for logging and tests).
#[derive(Debug, Clone, PartialEq)]
pub enum Draw {
    /// No perturbation: nothing drawn.
    None,
    /// ODS/ConfODS: teacher and direction `w`.
    Ods(OdsDraw),
    /// TDiv-SDiv: the ordered pair shared by teachers and student members.
    Pair {
        /// Member whose prediction is moved (`p_i`).
        i: usize,
        /// Member giving the stop-gradient target (`p_j`).
        j: usize,
    },
}

/// A perturbed batch (images `[B, C, H, W]` by default).
#[derive(Debug, Clone)]
pub struct Perturbed<const D: usize = 4> {
    /// `x + step` clipped to the input domain (the clean `x` for [`PerturbationKind::None`]),
    /// on the device of the input, as a constant (no graph).
    pub x: Tensor<D>,
    /// The unclipped step `δ` (the input's shape); `None` for [`PerturbationKind::None`].
    pub step: Option<Tensor<D>>,
    /// The random draw.
    pub draw: Draw,
}

/// Perturb a clean batch `x` `[B, C, H, W]` (pixels in `[0, 1]`, any device) as `kind` says.
///
/// `teachers` and (for TDiv-SDiv only) `student` are used in evaluation mode whatever mode
/// they are in; neither receives gradients and BatchNorm running statistics are not touched.
/// All randomness comes from `rng`, so a seeded generator gives a reproducible perturbation.
pub fn perturb_batch<R: Rng + ?Sized>(
    kind: &PerturbationKind,
    x: Tensor<4>,
    teachers: Ensemble<'_>,
    student: Option<Ensemble<'_>>,
    rng: &mut R,
) -> Result<Perturbed, PerturbError> {
    perturb_inputs(kind, x, teachers, student, Some(PIXEL_RANGE), rng)
}

/// The pixel range image batches are clipped to.
pub const PIXEL_RANGE: (f64, f64) = (0.0, 1.0);

/// [`perturb_batch`] for inputs of any rank `D` (`[B, ...]`, every example one row of the
/// batch) and any domain: the perturbed batch is clipped to `bounds` `(lo, hi)` when given,
/// and left unclipped otherwise (e.g. points in the plane). `√D` in the step is the square
/// root of the number of values per example.
pub fn perturb_inputs<const D: usize, T: EvalMembers<D>, S: EvalMembers<D>, R: Rng + ?Sized>(
    kind: &PerturbationKind,
    x: Tensor<D>,
    teachers: T,
    student: Option<S>,
    bounds: Option<(f64, f64)>,
    rng: &mut R,
) -> Result<Perturbed<D>, PerturbError> {
    let batch = check_input(&x)?;
    match *kind {
        PerturbationKind::None => Ok(Perturbed { x, step: None, draw: Draw::None }),
        PerturbationKind::Ods { eta, temperature } | PerturbationKind::ConfOds { eta, temperature } => {
            check_positive("eta", eta)?;
            check_positive("temperature", temperature)?;
            let members = teachers.validate("teachers")?;
            let draw = draw_ods(members, batch, teachers.classes(), rng);
            tracing::trace!(teacher = draw.teacher, "ODS draw");
            let g = ods_gradient(&x, teachers, &draw, temperature)?;
            let scale = matches!(kind, PerturbationKind::ConfOds { .. }).then_some(g.confidence);
            let step = normalized_step(g.grad, eta, scale);
            Ok(Perturbed { x: apply_step(&x, step.clone(), bounds), step: Some(step), draw: Draw::Ods(draw) })
        }
        PerturbationKind::TDivSDiv { eta } => {
            check_positive("eta", eta)?;
            let student = student.ok_or(PerturbError::MissingStudent)?;
            let members = check_tdiv_sdiv(&teachers, &student)?;
            let (i, j) = draw_pair(members, rng)?;
            tracing::trace!(i, j, "TDiv-SDiv pair");
            let g = tdiv_sdiv_gradient(&x, teachers, student, i, j)?;
            let step = normalized_step(g, eta, None);
            Ok(Perturbed { x: apply_step(&x, step.clone(), bounds), step: Some(step), draw: Draw::Pair { i, j } })
        }
    }
}
