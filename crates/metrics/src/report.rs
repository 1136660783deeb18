//! The standard evaluation reports of METHODS §4: {ACC, NLL, Brier, ECE} on test predictions
//! and {T, cNLL, cECE} after temperature scaling fitted on validation predictions (Guo et al.,
//! ICML 2017; reported as in Malinin et al., "Ensemble Distribution Distillation", ICLR 2020,
//! Table 2).

use serde::Serialize;

use crate::calibration::ece;
use crate::classification::{accuracy, brier, nll};
use crate::error::{MetricsError, Result};
use crate::predictions::Predictions;
use crate::temperature::{apply_temperature, fit_temperature};

/// Uncalibrated test metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Report {
    /// Accuracy in [0, 1].
    pub acc: f64,
    /// Mean negative log-likelihood, nats.
    pub nll: f64,
    /// Mean Brier score.
    pub brier: f64,
    /// Expected calibration error.
    pub ece: f64,
}

/// Test metrics after temperature scaling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CalibratedReport {
    /// The temperature T fitted on the validation split.
    pub temperature: f64,
    /// NLL of the test predictions rescaled with T.
    pub cnll: f64,
    /// ECE of the test predictions rescaled with T.
    pub cece: f64,
}

/// ACC, NLL, Brier and ECE (`bins` equal-width bins) of `test` against `labels`.
pub fn evaluate(test: &Predictions, labels: &[u32], bins: usize) -> Result<Report> {
    Ok(Report {
        acc: accuracy(test, labels)?,
        nll: nll(test, labels)?,
        brier: brier(test, labels)?,
        ece: ece(test, labels, bins)?,
    })
}

/// Fits T on (`val`, `val_labels`), rescales `test` and reports T, cNLL and cECE.
/// `val` and `test` must have the same number of classes.
pub fn evaluate_calibrated(
    test: &Predictions,
    test_labels: &[u32],
    val: &Predictions,
    val_labels: &[u32],
    bins: usize,
) -> Result<CalibratedReport> {
    if val.classes() != test.classes() {
        return Err(MetricsError::ClassMismatch {
            what: "validation predictions",
            got: val.classes(),
            expected: test.classes(),
        });
    }
    if bins == 0 {
        return Err(MetricsError::ZeroBins { bins });
    }
    test.check_labels(test_labels)?;
    let temperature = fit_temperature(val, val_labels)?;
    evaluate_at_temperature(test, test_labels, temperature, bins)
}

/// cNLL and cECE of `test` rescaled with an already fitted `temperature` (from
/// [`fit_temperature`] on the validation split): what [`evaluate_calibrated`] reports, for
/// callers that rescale many test sets with one validation fit (the corruption sets).
pub fn evaluate_at_temperature(
    test: &Predictions,
    test_labels: &[u32],
    temperature: f64,
    bins: usize,
) -> Result<CalibratedReport> {
    if bins == 0 {
        return Err(MetricsError::ZeroBins { bins });
    }
    test.check_labels(test_labels)?;
    let scaled = apply_temperature(test, temperature)?;
    Ok(CalibratedReport {
        temperature,
        cnll: nll(&scaled, test_labels)?,
        cece: ece(&scaled, test_labels, bins)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::temperature::temperature_nll;

    #[test]
    fn evaluate_by_hand() {
        // Two examples, two classes.
        // row0 (0.75, 0.25) y=0: correct, -ln .75 = 0.2876820724517809, Brier 2·0.0625 = 0.125
        // row1 (0.5, 0.5)   y=1: wrong (tie -> 0), -ln .5 = 0.6931471805599453, Brier 0.5
        // ACC 0.5, NLL 0.4904146265058631, Brier 0.3125
        // ECE (B=2): both confidences (0.75, 0.5) -> bin0 = (0,.5] holds 0.5 (wrong):
        //   |0-0.5| = 0.5; bin1 holds 0.75 (correct): |1-0.75| = 0.25; ECE = (0.5+0.25)/2 = 0.375
        let p = Predictions::new(vec![0.75, 0.25, 0.5, 0.5], 2, 2).unwrap();
        let r = evaluate(&p, &[0, 1], 2).unwrap();
        assert_eq!(r.acc, 0.5);
        assert!((r.nll - 0.490_414_626_505_863_1).abs() < 1e-7);
        assert_eq!(r.brier, 0.3125);
        assert_eq!(r.ece, 0.375);
    }

    #[test]
    fn calibrated_report_uses_validation_temperature() {
        // Validation: all (0.9, 0.1), 70% class 0 -> T = ln 9 / ln(7/3) (see temperature.rs).
        let val = Predictions::new([0.9f32, 0.1].repeat(10), 10, 2).unwrap();
        let val_y: Vec<u32> = (0..10).map(|i| u32::from(i >= 7)).collect();
        let test = Predictions::new(vec![0.9, 0.1, 0.6, 0.4], 2, 2).unwrap();
        let test_y = [0, 1];
        let r = evaluate_calibrated(&test, &test_y, &val, &val_y, 15).unwrap();
        let d = (f64::from(0.9f32) + 1e-8).ln() - (f64::from(0.1f32) + 1e-8).ln();
        assert!((r.temperature - d / (7.0f64 / 3.0).ln()).abs() < 1e-5);
        let direct = temperature_nll(&test, &test_y, r.temperature).unwrap();
        assert!((r.cnll - direct).abs() < 1e-6);
        // Rescaled confidences: row0 0.7 (bin (0.667,0.733]) correct -> |1-0.7|;
        // row1: ln(.6/.4)/T = 0.405465/2.593214 -> σ = 0.539010 (bin (0.533,0.6]) wrong.
        let c1 = 1.0 / (1.0 + (-(1.5f64).ln() / r.temperature).exp());
        let expect = (0.3 + c1) / 2.0;
        assert!((r.cece - expect).abs() < 1e-6, "{} vs {expect}", r.cece);
    }

    #[test]
    fn a_given_temperature_reproduces_the_fitted_report() {
        let val = Predictions::new([0.9f32, 0.1].repeat(10), 10, 2).unwrap();
        let val_y: Vec<u32> = (0..10).map(|i| u32::from(i >= 7)).collect();
        let test = Predictions::new(vec![0.9, 0.1, 0.6, 0.4, 0.2, 0.8], 3, 2).unwrap();
        let test_y = [0, 1, 1];
        let fitted = evaluate_calibrated(&test, &test_y, &val, &val_y, 15).unwrap();
        let t = fit_temperature(&val, &val_y).unwrap();
        assert_eq!(evaluate_at_temperature(&test, &test_y, t, 15).unwrap(), fitted);
        // T = 1 leaves the predictions as they are (up to the 1e-8 inside the logarithm).
        let id = evaluate_at_temperature(&test, &test_y, 1.0, 15).unwrap();
        let plain = evaluate(&test, &test_y, 15).unwrap();
        assert!((id.cnll - plain.nll).abs() < 1e-6 && (id.cece - plain.ece).abs() < 1e-6);
        assert_eq!(evaluate_at_temperature(&test, &test_y, 1.0, 0), Err(MetricsError::ZeroBins { bins: 0 }));
        assert!(evaluate_at_temperature(&test, &test_y, 0.0, 15).is_err());
    }

    #[test]
    fn class_mismatch_is_reported() {
        let val = Predictions::new(vec![1.0, 0.0, 0.0], 1, 3).unwrap();
        let test = Predictions::new(vec![1.0, 0.0], 1, 2).unwrap();
        assert_eq!(
            evaluate_calibrated(&test, &[0], &val, &[0], 15),
            Err(MetricsError::ClassMismatch {
                what: "validation predictions",
                got: 3,
                expected: 2
            })
        );
    }
}
