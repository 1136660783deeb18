//! The spirals experiment end to end on a tiny configuration: structural facts of the report
//! that a wrong pipeline could not produce, and seeded reproducibility.

use burn::tensor::Device;
use distill::schedule::TemperatureSchedule;
use distill::spirals::{OodScores, SpiralsConfig, SpiralsReport, run_spirals};

fn tiny(seed: u64) -> SpiralsConfig {
    SpiralsConfig::new()
        .with_n_train(600)
        .with_n_test(900)
        .with_members(4)
        .with_hidden(vec![32, 32])
        .with_batch_size(100)
        .with_epochs(150)
        .with_lr(1e-2)
        .with_student_epochs(60)
        .with_student_lr(1e-2)
        .with_temperature(TemperatureSchedule::new(2.5).with_hold_epochs(15.0).with_decay_epochs(15.0))
        .with_n_aux(300)
        .with_n_ood(300)
        .with_n_bayes(3000)
        // Model offset 0: with METHODS.md's 1 the Proxy-EnD² student collapses to Dir(1, 1, 1)
        // at K = 3 (distill::loss::proxy_end2).
        .with_proxy_model_offset(0.0)
        .with_grid_points(7)
        .with_seed(seed)
}

fn check_ood(name: &str, s: &OodScores) {
    for (score, r) in [("confidence", s.confidence), ("TU", s.total), ("DU", s.data), ("MI", s.knowledge)] {
        assert!((0.0..=1.0).contains(&r.auroc), "{name} {score} AUROC {}", r.auroc);
        assert!((0.0..=1.0).contains(&r.aupr), "{name} {score} AUPR {}", r.aupr);
    }
}

fn check_structure(r: &SpiralsReport) {
    let e = &r.errors;
    for (name, v) in [
        ("ensemble", e.ensemble),
        ("end2", e.end2),
        ("end2_aux", e.end2_aux),
        ("single", e.single),
        ("kd", e.kd),
        ("ae_kd", e.ae_kd),
        ("proxy_end2", e.proxy_end2),
        ("be", e.be),
        ("kd_latentbe", e.kd_latentbe),
        ("ods", e.ods),
        ("conf_ods", e.conf_ods),
        ("tdiv_sdiv", e.tdiv_sdiv),
        ("member_mean", e.member_mean),
        ("bayes_test", e.bayes_test),
    ] {
        assert!((0.0..=1.0).contains(&v), "{name} error {v}");
    }
    // Learned something: far better than chance (2/3) even when tiny.
    assert!(e.ensemble < 0.5, "ensemble error {}", e.ensemble);
    // Every student learns something (chance is 2/3).
    assert!(e.kd < 0.6 && e.ae_kd < 0.6 && e.proxy_end2 < 0.6, "KD {} AE-KD {} Proxy-EnD² {}", e.kd, e.ae_kd, e.proxy_end2);
    // The LatentBE family (BatchEnsemble students of the ensemble's size, merged) too.
    for (name, v) in [("be", e.be), ("kd_latentbe", e.kd_latentbe), ("ods", e.ods), ("conf_ods", e.conf_ods), ("tdiv_sdiv", e.tdiv_sdiv)] {
        assert!(v < 0.6, "{name} error {v}");
    }
    // The Bayes classifier's empirical error agrees with the generator's Bayes error within a
    // few standard errors (binomial error of the test set + Monte-Carlo error of the estimate).
    let b = r.bayes_error;
    assert!(b.mean > 0.0 && b.mean < 0.5, "bayes error {b:?}");
    let n = r.config.n_test as f64;
    let se = (b.mean * (1.0 - b.mean) / n).sqrt();
    assert!(
        (e.bayes_test - b.mean).abs() <= 4.0 * se + 4.0 * b.std_err,
        "Bayes classifier test error {} vs Bayes error {} ± {} (test s.e. {se})",
        e.bayes_test,
        b.mean,
        b.std_err
    );
    // Ensemble averaging helps on average: the ensemble is no worse than its mean member
    // (not a theorem for 0-1 error, but robust at this size with a margin).
    assert!(e.ensemble <= e.member_mean + 0.03, "ensemble {} vs members {}", e.ensemble, e.member_mean);
    check_ood("ensemble", &r.ood.ensemble);
    check_ood("end2", &r.ood.end2);
    check_ood("end2_aux", &r.ood.end2_aux);
    check_ood("proxy_end2", &r.ood.proxy_end2);
    // NOT asserted: "the ensemble's MI on the ring exceeds its MI on the test set". It does not
    // hold for this generator and ring (radius 410 lies within two noise standard deviations of
    // the arms' outer ends, where the members agree, while test points in the overlap of the
    // arms carry member disagreement): the default full run gives 0.028 on the ring vs 0.031 on
    // the test set. What the paper's maps show and does hold: EnD² without auxiliary data
    // loses the ensemble's knowledge uncertainty off the data.
    let (ens, end2) = (&r.uncertainty.ensemble, &r.uncertainty.end2);
    assert!(ens.ring.knowledge > 0.0, "ensemble MI on the ring {}", ens.ring.knowledge);
    assert!(
        end2.ring.knowledge < ens.ring.knowledge,
        "EnD² MI on the ring {} vs ensemble {}",
        end2.ring.knowledge,
        ens.ring.knowledge
    );
    for (name, io) in [
        ("ensemble", &r.uncertainty.ensemble),
        ("end2", &r.uncertainty.end2),
        ("end2_aux", &r.uncertainty.end2_aux),
        ("proxy_end2", &r.uncertainty.proxy_end2),
    ] {
        for m in [&io.test, &io.ring] {
            // TU = DU + MI, 0 ≤ DU, MI ≥ 0 (up to rounding), TU ≤ ln 3.
            assert!(m.data >= -1e-9 && m.knowledge >= -1e-6, "{name}: {m:?}");
            assert!(m.total <= 3f64.ln() + 1e-6, "{name}: {m:?}");
            assert!((m.total - m.data - m.knowledge).abs() < 1e-9, "{name}: {m:?}");
        }
    }
    let g = r.grid.as_ref().expect("grid requested");
    let side = r.config.grid_points;
    assert_eq!(g.coords.len(), side);
    assert_eq!((g.coords[0], g.coords[side - 1]), (-r.config.grid_extent, r.config.grid_extent));
    for maps in [&g.ensemble, &g.end2, &g.end2_aux] {
        for v in [&maps.total, &maps.data, &maps.knowledge] {
            assert_eq!(v.len(), side * side);
            assert!(v.iter().all(|x| x.is_finite() && *x >= -1e-5), "{v:?}");
        }
    }
}

#[test]
fn tiny_run_is_structurally_sound_and_reproducible() {
    let device = Device::flex();
    let cfg = tiny(3);
    let a = run_spirals(&cfg, &device).unwrap();
    check_structure(&a);
    let b = run_spirals(&cfg, &device).unwrap();
    assert_eq!(a, b, "same seed, different report");
    // Another seed gives other data and models.
    let c = run_spirals(&tiny(4), &device).unwrap();
    assert_ne!(a.errors, c.errors);
}

