//! Host-side outputs of the Dirichlet students (METHODS.md §2), in one place for every
//! consumer (training-end metrics, the spirals evaluation, the reproduce report):
//! EnD² `α = exp(z)` (its temperature is 1 at evaluation), Proxy-EnD² `α = exp(z) + c_s`
//! with the model offset it was trained with (METHODS.md: `c_s = 1`; the same concentrations
//! as [`super::proxy_end2`] trains). Expected class probabilities are `α / α₀`.

/// Logits are clamped to `[-LOGIT_CLAMP, LOGIT_CLAMP]` before `exp` for concentrations, so
/// they stay finite in f32 (`e^80 ≈ 5.5e34`).
pub const LOGIT_CLAMP: f32 = 80.0;

/// How a Dirichlet student's logits become concentrations: `α = exp(z) + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DirichletHead {
    offset: f64,
}

impl DirichletHead {
    /// EnD²: `α = exp(z)`.
    pub const EXP: Self = Self { offset: 0.0 };

    /// Proxy-EnD²: `α = exp(z) + offset` (the loss's model offset, ≥ 0).
    pub const fn exp_plus(offset: f64) -> Self {
        Self { offset }
    }

    /// The constant added to `exp(z)`.
    pub const fn offset(self) -> f64 {
        self.offset
    }

    /// Concentrations `α` of `logits` (any row layout), clamped logits.
    pub fn concentrations(self, logits: &[f32]) -> Vec<f32> {
        let offset = self.offset() as f32;
        logits.iter().map(|&z| z.clamp(-LOGIT_CLAMP, LOGIT_CLAMP).exp() + offset).collect()
    }

    /// Expected class probabilities `α/α₀` of rows of `k` logits, in f64 with the row maximum
    /// factored out (`(e^{z−m} + c e^{−m}) / Σ(…)`), so large logits neither overflow nor get
    /// clamped. For [`DirichletHead::Exp`] this is the softmax.
    pub fn expected_probabilities(self, logits: &[f32], k: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(logits.len());
        for row in logits.chunks(k) {
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(f64::from(b)));
            let shift = self.offset() * (-m).exp();
            let num: Vec<f64> = row.iter().map(|&z| (f64::from(z) - m).exp() + shift).collect();
            let den: f64 = num.iter().sum();
            out.extend(num.iter().map(|v| (v / den) as f32));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::DirichletHead;
    const EXP: DirichletHead = DirichletHead::EXP;
    const EXP_PLUS_ONE: DirichletHead = DirichletHead::exp_plus(1.0);

    fn close(got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn expected_probabilities_by_hand() {
        // Proxy: z = (0, ln 3) → α = (2, 4), α₀ = 6 → (1/3, 2/3); z = (800, 800): α equal →
        // (½, ½) without overflow.
        close(&EXP_PLUS_ONE.expected_probabilities(&[0.0, 3f32.ln(), 800.0, 800.0], 2), &[1.0 / 3.0, 2.0 / 3.0, 0.5, 0.5]);
        // EnD²: z = (0, ln 3) → α = (1, 3) → (¼, ¾), the softmax.
        close(&EXP.expected_probabilities(&[0.0, 3f32.ln()], 2), &[0.25, 0.75]);
    }

    #[test]
    fn concentrations_by_hand_and_clamped() {
        close(&EXP.concentrations(&[0.0, 2f32.ln()]), &[1.0, 2.0]);
        close(&EXP_PLUS_ONE.concentrations(&[0.0, 2f32.ln()]), &[2.0, 3.0]);
        let big = EXP.concentrations(&[1000.0, -1000.0]);
        assert!(big[0].is_finite() && big[0] == 80f32.exp() && big[1] > 0.0, "{big:?}");
    }
}
