//! The distillation objective of one student step (METHODS.md §2–3): perturb the batch if
//! asked (ODS, ConfODS, TDiv-SDiv), run the teachers on the (perturbed) batch, and apply the
//! method's loss. The teachers' outputs are constants; the batch the loss sees is the
//! perturbed one (the clean batch is replaced, as in the reference code).
//!
//! EnD²'s temperature follows the annealing schedule in FRACTIONAL epochs, `epoch + step /
//! steps_per_epoch`, updated every step (as `distill::spirals` does), so a schedule of
//! 0.3 + 0.4 epochs reaches T = 1 after 70 % of the first epoch instead of never.

use burn::config::Config;
use burn::tensor::{Int, Tensor};
use ensembles::{Backbone, tile};
use perturb::{Ensemble, PerturbationKind, perturb_batch};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::DistillError;
use crate::loss::{DirichletHead, ProxyOffsets, ae_kd, end2, kd, one_to_one, proxy_end2};
use crate::schedule::TemperatureSchedule;

/// Which distillation loss trains the student.
#[derive(Config, Debug, PartialEq)]
pub enum Method {
    /// KD against the ensemble mean (Hinton et al. 2015); plain student.
    Kd {
        /// Weight of the distillation term (1 − alpha on the label cross-entropy).
        alpha: f64,
        /// Softmax temperature T.
        temperature: f64,
    },
    /// Member-to-member DE → BE (Mariet et al. 2021); BatchEnsemble student with as many
    /// members as teachers. With a LatentBE merge this is "KD + LatentBE".
    OneToOne {
        /// Weight of the distillation term.
        alpha: f64,
        /// Softmax temperature T.
        temperature: f64,
    },
    /// AE-KD (Du et al. 2020): per-batch min-norm teacher weights on the capped simplex.
    AeKd {
        /// Weight of the distillation term.
        alpha: f64,
        /// Softmax temperature T.
        temperature: f64,
        /// Cap C on each teacher weight.
        cap: f64,
    },
    /// EnD² (Malinin et al. 2019): Dirichlet student, annealed temperature.
    EnD2 {
        /// Temperature annealing.
        schedule: TemperatureSchedule,
        /// Target smoothing epsilon.
        smoothing: f64,
    },
    /// Proxy-EnD² (Ryabinin et al. 2021): KL to the proxy Dirichlet target.
    ProxyEnD2 {
        /// Constants added to the student and target concentrations (METHODS.md: 1, 1).
        offsets: ProxyOffsets,
    },
}

impl Method {
    /// The KD softmax temperature T of the KD-family methods (KD, one-to-one, AE-KD); `None`
    /// for the Dirichlet methods, which have none. ODS and ConfODS default to it
    /// (METHODS.md §3).
    pub fn kd_temperature(&self) -> Option<f64> {
        match self {
            Method::Kd { temperature, .. } | Method::OneToOne { temperature, .. } | Method::AeKd { temperature, .. } => {
                Some(*temperature)
            }
            Method::EnD2 { .. } | Method::ProxyEnD2 { .. } => None,
        }
    }

    /// Whether the student outputs Dirichlet concentrations rather than class logits.
    pub fn is_dirichlet(&self) -> bool {
        self.dirichlet_head().is_some()
    }

    /// How the student's logits become Dirichlet concentrations, for a Dirichlet student.
    pub fn dirichlet_head(&self) -> Option<DirichletHead> {
        match self {
            Method::EnD2 { .. } => Some(DirichletHead::EXP),
            Method::ProxyEnD2 { offsets } => Some(DirichletHead::exp_plus(offsets.model)),
            _ => None,
        }
    }

    /// Check the student/teacher combination; the error says what is wrong.
    pub fn check(&self, student_members: usize, teachers: usize) -> Result<(), DistillError> {
        if teachers == 0 {
            return Err(DistillError::Config("no teachers".into()));
        }
        match self {
            Method::OneToOne { .. } if student_members != teachers => Err(DistillError::Config(format!(
                "one_to_one needs a BatchEnsemble student with one member per teacher: {student_members} members, {teachers} teachers"
            ))),
            Method::OneToOne { .. } => Ok(()),
            _ if student_members != 1 => Err(DistillError::Config(format!(
                "{self:?} distils into a plain student, but the student has {student_members} members (use one_to_one for BatchEnsemble students)"
            ))),
            Method::EnD2 { schedule, .. } => schedule.validate(),
            Method::ProxyEnD2 { offsets } => offsets.validate(),
            _ => Ok(()),
        }
    }
}

/// One student step's objective; see the module docs.
pub struct Distiller<'a> {
    method: Method,
    perturbation: PerturbationKind,
    teachers: &'a [Backbone],
    seed: u64,
    steps_per_epoch: usize,
}

impl<'a> Distiller<'a> {
    /// `teachers`: plain eval-mode networks (Deep Ensemble members). `seed` drives the
    /// perturbation draws, derived per (epoch, step) so a resumed run draws the same.
    /// `steps_per_epoch`: optimisation steps per epoch of the training loop (schedules
    /// that run in fractional epochs need it; at least 1).
    pub fn new(method: Method, perturbation: PerturbationKind, teachers: &'a [Backbone], seed: u64, steps_per_epoch: usize) -> Self {
        Self { method, perturbation, teachers, seed, steps_per_epoch: steps_per_epoch.max(1) }
    }

    /// The fractional epoch of 0-based `epoch`'s 0-based `step`: `epoch + step / steps_per_epoch`.
    pub fn progress(&self, epoch: usize, step: usize) -> f64 {
        epoch as f64 + step as f64 / self.steps_per_epoch as f64
    }

    /// The EnD² temperature the loss uses at (`epoch`, `step`); `None` for other methods.
    pub fn end2_temperature(&self, epoch: usize, step: usize) -> Option<f64> {
        match &self.method {
            Method::EnD2 { schedule, .. } => Some(schedule.temperature(self.progress(epoch, step))),
            _ => None,
        }
    }

    fn rng(&self, epoch: usize, step: usize) -> StdRng {
        // SplitMix64 finaliser over (seed, epoch, step): independent streams per step.
        let mut z = self.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (step as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        StdRng::seed_from_u64(z ^ (z >> 31))
    }

    /// The loss of `student` on batch `x` `[B,3,H,W]` with labels `y` `[B]`.
    pub fn loss(
        &self,
        student: &Backbone,
        x: Tensor<4>,
        y: Tensor<1, Int>,
        epoch: usize,
        step: usize,
    ) -> Result<Tensor<1>, DistillError> {
        let mut rng = self.rng(epoch, step);
        let student_view = (student.members > 1).then(|| Ensemble::BatchEnsemble(student));
        let x = perturb_batch(&self.perturbation, x, Ensemble::Members(self.teachers), student_view, &mut rng)?.x;
        // Teachers in eval mode; their outputs are constants of the student's loss.
        let teacher_logits = Tensor::stack(self.teachers.iter().map(|t| t.forward(x.clone()).detach()).collect(), 0);
        let members = student.members;
        let perturbed = tracing::enabled!(tracing::Level::TRACE).then(|| max_abs(&x));
        let student_logits = student.forward(tile(x, members));
        if let Some(input) = perturbed {
            // Where a divergence starts (DISTILLERY_LOG=distill=trace): a perturbation that
            // produced non-finite inputs shows here as `input`, an optimiser divergence as
            // growing logits on finite inputs. A few reductions, paid only at trace level.
            tracing::trace!(
                epoch,
                step,
                input,
                teacher_logits = max_abs(&teacher_logits),
                student_logits = max_abs(&student_logits),
                "student step magnitudes (max |.|)"
            );
        }
        Ok(match &self.method {
            Method::Kd { alpha, temperature } => kd(student_logits, teacher_logits, y, *alpha, *temperature)?,
            Method::OneToOne { alpha, temperature } => one_to_one(student_logits, teacher_logits, y, *alpha, *temperature)?,
            Method::AeKd { alpha, temperature, cap } => ae_kd(student_logits, teacher_logits, y, *alpha, *temperature, *cap)?.loss,
            Method::EnD2 { schedule, smoothing } => {
                end2(student_logits, teacher_logits, schedule.temperature(self.progress(epoch, step)), *smoothing)?
            }
            Method::ProxyEnD2 { offsets } => proxy_end2(student_logits, teacher_logits, offsets)?,
        })
    }
}

/// `max |t|` as f64, or NaN when `t` holds a NaN or an infinity (checked through the sum:
/// whether `max` propagates a NaN is backend-dependent).
fn max_abs<const D: usize>(t: &Tensor<D>) -> f64 {
    let a = t.clone().detach().abs();
    if !(a.clone().sum().into_scalar::<f32>()).is_finite() {
        return f64::NAN;
    }
    a.max().into_scalar::<f32>() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smoke profile's EnD² schedule (T0 = 10, hold 0.3, decay 0.4 epochs) over a
    /// 10-step epoch: the temperature the loss uses must leave T0 at step 3 and reach 1 at
    /// step 7 of the FIRST epoch (0.3 + 0.4 = 0.7 epochs). With whole epochs it stayed at
    /// T0 = 10 for all of epoch 0.
    #[test]
    fn end2_temperature_anneals_within_an_epoch() {
        let schedule = TemperatureSchedule::new(10.0).with_hold_epochs(0.3).with_decay_epochs(0.4);
        let method = Method::EnD2 { schedule, smoothing: 1e-3 };
        let d = Distiller::new(method, PerturbationKind::None, &[], 0, 10);
        let t = |step| d.end2_temperature(0, step).unwrap();
        assert_eq!(t(0), 10.0);
        assert_eq!(t(2), 10.0);
        // step 5 = 0.5 epochs: 10 + (1 − 10)(0.5 − 0.3)/0.4 = 5.5
        assert!((t(5) - 5.5).abs() < 1e-12, "{}", t(5));
        assert_eq!(t(7), 1.0);
        assert_eq!(t(9), 1.0);
        assert_eq!(d.end2_temperature(1, 0), Some(1.0));
        // Hold and decay of whole epochs: T reaches 1 exactly at epoch hold + decay.
        let schedule = TemperatureSchedule::new(4.0).with_hold_epochs(1.0).with_decay_epochs(2.0);
        let d = Distiller::new(Method::EnD2 { schedule, smoothing: 0.0 }, PerturbationKind::None, &[], 0, 4);
        assert_eq!(d.end2_temperature(0, 3), Some(4.0));
        assert_eq!(d.end2_temperature(1, 2), Some(4.0 - 3.0 * 0.5 / 2.0));
        assert!(d.end2_temperature(2, 3).unwrap() > 1.0);
        assert_eq!(d.end2_temperature(3, 0), Some(1.0));
        let kd = Distiller::new(Method::Kd { alpha: 1.0, temperature: 4.0 }, PerturbationKind::None, &[], 0, 4);
        assert_eq!(kd.end2_temperature(0, 0), None);
    }
}
