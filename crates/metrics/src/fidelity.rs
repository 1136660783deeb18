//! Fidelity of a student to its teacher, beyond the student's own accuracy and calibration:
//! how often it predicts the teacher's class, how far its predictive distribution is from the
//! teacher's, and whether it ranks inputs by epistemic uncertainty as the teacher does.
//!
//! - top-1 agreement: `(1/N) Σ_i 1[argmax p_s,i = argmax p_t,i]` (ties towards the lowest
//!   class index, as [`accuracy`](crate::accuracy));
//! - `KL(teacher ‖ student) = (1/N) Σ_i Σ_k p_t,ik (ln p_t,ik − ln p_s,ik)`, with terms of
//!   `p_t,ik = 0` taken as 0 and the student's probability floored at [`NLL_EPS`] inside
//!   the logarithm, as the NLL does (f32 probabilities can underflow to 0);
//! - rank agreement of two uncertainty scores: Spearman's ρ ([`crate::spearman`]).

use crate::classification::NLL_EPS;
use crate::error::{MetricsError, Result};
use crate::predictions::{Predictions, argmax};

fn check_pair(student: &Predictions, teacher: &Predictions) -> Result<()> {
    if teacher.classes() != student.classes() {
        return Err(MetricsError::ClassMismatch { what: "teacher", got: teacher.classes(), expected: student.classes() });
    }
    if teacher.rows() != student.rows() {
        return Err(MetricsError::LengthMismatch { what: "teacher predictions", got: teacher.rows(), expected: student.rows() });
    }
    Ok(())
}

/// Fraction of examples on which the student's top-1 class is the teacher's, in [0, 1].
pub fn top1_agreement(student: &Predictions, teacher: &Predictions) -> Result<f64> {
    check_pair(student, teacher)?;
    let same = student.iter_rows().zip(teacher.iter_rows()).filter(|(s, t)| argmax(s).0 == argmax(t).0).count();
    Ok(same as f64 / student.rows() as f64)
}

/// Mean `KL(teacher ‖ student)` over examples, in nats (see the module docs).
pub fn kl_divergence(teacher: &Predictions, student: &Predictions) -> Result<f64> {
    check_pair(student, teacher)?;
    let total: f64 = teacher
        .iter_rows()
        .zip(student.iter_rows())
        .map(|(t, s)| {
            t.iter()
                .zip(s)
                .filter(|(pt, _)| **pt > 0.0)
                .map(|(&pt, &ps)| {
                    let pt = f64::from(pt);
                    pt * (pt.ln() - f64::from(ps).max(NLL_EPS).ln())
                })
                .sum::<f64>()
        })
        .sum();
    Ok(total / teacher.rows() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[f32], n: usize, k: usize) -> Predictions {
        Predictions::new(v.to_vec(), n, k).unwrap()
    }

    #[test]
    fn agreement_and_kl_by_hand() {
        let t = p(&[0.7, 0.2, 0.1, 0.1, 0.1, 0.8], 2, 3);
        let s = p(&[0.5, 0.25, 0.25, 0.6, 0.3, 0.1], 2, 3);
        // argmax: teacher (0, 2), student (0, 0) → 1 of 2.
        assert_eq!(top1_agreement(&s, &t).unwrap(), 0.5);
        // Row 1: 0.7 ln(0.7/0.5) + 0.2 ln(0.2/0.25) + 0.1 ln(0.1/0.25)
        //      = 0.235531 − 0.044629 − 0.091629 = 0.099273;
        // row 2: 0.1 ln(0.1/0.6) + 0.1 ln(0.1/0.3) + 0.8 ln(0.8/0.1)
        //      = −0.179176 − 0.109861 + 1.663553 = 1.374516; mean 0.736894.
        let kl = kl_divergence(&t, &s).unwrap();
        assert!((kl - 0.736_894_5).abs() < 1e-5, "{kl}");
        assert!(kl_divergence(&t, &t).unwrap().abs() < 1e-12);
        // A zero teacher probability contributes nothing; a zero student one is floored.
        let t0 = p(&[1.0, 0.0], 1, 2);
        let s0 = p(&[0.0, 1.0], 1, 2);
        assert!((kl_divergence(&t0, &s0).unwrap() - (-(NLL_EPS.ln()))).abs() < 1e-9);
        assert!(kl_divergence(&s0, &t0).unwrap().is_finite());
        assert!(matches!(top1_agreement(&p(&[1.0, 0.0], 1, 2), &t), Err(MetricsError::ClassMismatch { .. })));
        assert!(matches!(kl_divergence(&p(&[1.0, 0.0, 0.0], 1, 3), &t), Err(MetricsError::LengthMismatch { .. })));
    }
}
