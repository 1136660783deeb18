//! Output Diversified Sampling (ODS; Tashiro, Song & Ermon 2020, "Diversity can be
//! Transferred: Output Diversification for White- and Black-box Attacks", eq. 2) and its
//! confidence-scaled variant ConfODS, as specified in METHODS.md §3 and as the
//! Diversity-Matters code computes them (cs-giung/giung2 @ c8560fd,
//! `projects/Diversity-Matters/scripts/train_student.py`, lines 199–226):
//!
//! - draw one teacher `m ~ U{0..M-1}` for the batch (line 208) and `w_b ~ U(-1, 1)^K` for
//!   EVERY example b (lines 212–215: `uniform_(-1, 1)` of the `[B, K]` output);
//! - `g_b = ∇_{x_b} w_bᵀ softmax(z_m(x_b) / T)` with teacher m in evaluation mode, T the
//!   student's KD temperature (line 210: `softmax(logits / args.kd_temperature)`);
//! - `x'_b = clip(x_b + c_b η √D g_b / ||g_b||₂, 0, 1)` (lines 216–225), `η = 1/255`, `c_b = 1`
//!   for ODS and `c_b = max_k softmax(z_m(x_b) / T)_k` for ConfODS — teacher m's confidence
//!   on the clean batch at the SAME temperature T (lines 223–224: `eps *= max(y, dim=1)`,
//!   `y` being the tempered softmax above).
//!
//! The reference keeps its label cross-entropy on the clean batch and puts only the KD term
//! on the perturbed one; this project's student step replaces the whole batch (as the
//! LatentBE TDiv-SDiv code does), which is the same whenever the label weight `1 − alpha` is 0
//! (every CIFAR row of this project).
//!
//! Random draws, in this order: the teacher index (`random_range(0..M)`), then `B·K` values
//! of `w` row-major (`random_range(-1.0..1.0)`), all from the caller's generator.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use rand::Rng;

use crate::ensemble::EvalMembers;
use crate::error::PerturbError;
use crate::step::{host_matrix, input_gradient, input_leaf};

/// The random draw of one ODS/ConfODS step.
#[derive(Debug, Clone, PartialEq)]
pub struct OdsDraw {
    /// The teacher member m whose output is diversified.
    pub teacher: usize,
    /// `w`, `[B, K]` row-major, entries in `[-1, 1)`.
    pub w: Vec<f32>,
}

/// The ODS objective gradient and the teacher's confidence on the clean batch.
#[derive(Debug, Clone)]
pub struct OdsGradient<const D: usize = 4> {
    /// `∇_x Σ_b w_bᵀ softmax(z_m(x_b) / T)`, the shape of the input (`[B, C, H, W]` for
    /// images; per example, since examples do not interact in evaluation mode).
    pub grad: Tensor<D>,
    /// `max_k softmax(z_m(x_b) / T)_k`, length B (the ConfODS scale, at the objective's T).
    pub confidence: Tensor<1>,
}

/// Draw the teacher and `w` for a batch of `batch` examples and `classes` classes.
pub fn draw_ods<R: Rng + ?Sized>(teachers: usize, batch: usize, classes: usize, rng: &mut R) -> OdsDraw {
    let teacher = rng.random_range(0..teachers);
    let w = (0..batch * classes).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    OdsDraw { teacher, w }
}

pub(crate) fn check_positive(name: &'static str, value: f64) -> Result<(), PerturbError> {
    if value.is_finite() && value > 0.0 { Ok(()) } else { Err(PerturbError::InvalidParameter { name, value }) }
}

pub(crate) fn check_input<const D: usize>(x: &Tensor<D>) -> Result<usize, PerturbError> {
    let dims = x.dims();
    if dims.contains(&0) {
        return Err(PerturbError::BadInput { dims: dims.to_vec() });
    }
    Ok(dims[0])
}

/// Gradient of the ODS objective for a given draw, with teacher `draw.teacher` in evaluation
/// mode, at temperature `temperature`.
pub fn ods_gradient<const D: usize, T: EvalMembers<D>>(
    x: &Tensor<D>,
    teachers: T,
    draw: &OdsDraw,
    temperature: f64,
) -> Result<OdsGradient<D>, PerturbError> {
    check_positive("temperature", temperature)?;
    let batch = check_input(x)?;
    let members = teachers.validate("teachers")?;
    if draw.teacher >= members {
        return Err(PerturbError::MemberOutOfRange { role: "teachers", index: draw.teacher, members });
    }
    let classes = teachers.classes();
    if draw.w.len() != batch * classes {
        return Err(PerturbError::DirectionShape { got: draw.w.len(), batch, classes });
    }
    let leaf = input_leaf(x);
    let z = teachers.member_logits(draw.teacher, leaf.clone());
    let confidence = softmax(z.clone().detach().inner() / temperature, 1).max_dim(1).reshape([batch]);
    let w = host_matrix(draw.w.clone(), batch, classes, x);
    let objective = (softmax(z / temperature, 1) * w).sum();
    let grad = input_gradient(&leaf, objective);
    Ok(OdsGradient { grad, confidence })
}
