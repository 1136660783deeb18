//! Step sizes, clipping, pair draws, shared pair and seeding of [`perturb_batch`]
//! (METHODS.md §3): `||δ_b||₂ = √D/255` for TDiv-SDiv, `η√D` for ODS, `c_b η√D` for ConfODS
//! with `c_b` teacher m's max probability; `x' = clip(x + δ, 0, 1)`; `i != j`; one pair shared
//! by teachers and student; same seed → same perturbation.

mod common;

use burn::module::Module;
use burn::tensor::Device;
use common::*;
use ensembles::Backbone;
use perturb::{
    Draw, Ensemble, PerturbError, PerturbationKind, draw_pair, normalized_step, perturb_batch, tdiv_sdiv_gradient,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Pixels in [0, 1] with exact 0s and 1s so that clipping is exercised.
fn batch_with_extremes() -> Vec<f32> {
    let mut x = pixels(31, 0.0, 1.0);
    for (i, v) in x.iter_mut().enumerate() {
        match i % 7 {
            0 => *v = 0.0,
            1 => *v = 1.0,
            _ => {}
        }
    }
    x
}

fn run(kind: PerturbationKind, de: &[Backbone], be: &Backbone, x: &[f32], seed: u64) -> perturb::Perturbed {
    let mut rng = StdRng::seed_from_u64(seed);
    let xt = tensor4(x, [B, C, H, W], &ad());
    perturb_batch(&kind, xt, Ensemble::Members(de), Some(Ensemble::BatchEnsemble(be)), &mut rng).unwrap()
}

fn check_clipped(name: &str, x: &[f32], step: &[f32], out: &[f32]) {
    let mut clipped = 0;
    for (p, ((&a, &d), &o)) in x.iter().zip(step).zip(out).enumerate() {
        assert!((0.0..=1.0).contains(&o), "{name}: pixel {p} = {o} outside [0, 1]");
        let want = (a + d).clamp(0.0, 1.0);
        assert!((o - want).abs() <= 1e-6, "{name}: pixel {p}: {o} != clip({a} + {d}) = {want}");
        clipped += usize::from(a + d < 0.0 || a + d > 1.0);
    }
    assert!(clipped > 0, "{name}: no pixel needed clipping; the test batch does not exercise the clip");
}

#[test]
fn every_step_has_the_specified_norm_and_the_result_is_clipped() {
    let de = deep_ensemble(3, 41);
    let be = batch_ensemble(3, 42);
    let x = batch_with_extremes();
    let eta = 2.0 / 255.0;
    let sqrt_d = (D as f64).sqrt();
    let kinds = [
        PerturbationKind::Ods { eta, temperature: 1.5 },
        PerturbationKind::ConfOds { eta, temperature: 1.5 },
        PerturbationKind::tdiv_sdiv(),
    ];
    for kind in kinds {
        let p = run(kind, &de, &be, &x, 5);
        let step = host(p.step.clone().unwrap());
        let norms = example_norms(&step);
        let expected: Vec<f64> = match (&kind, &p.draw) {
            (PerturbationKind::Ods { .. }, _) => vec![eta * sqrt_d; B],
            (PerturbationKind::ConfOds { .. }, Draw::Ods(d)) => {
                // Teacher m's confidence at the objective's T = 1.5 (METHODS.md §3), computed on
                // the host from eval logits.
                let z = host_logits_de(&de, &x);
                (0..B)
                    .map(|b| softmax64(&z[d.teacher][b], 1.5).into_iter().fold(0.0, f64::max) * eta * sqrt_d)
                    .collect()
            }
            (PerturbationKind::TDivSDiv { .. }, _) => vec![sqrt_d / 255.0; B],
            other => panic!("unexpected draw {other:?}"),
        };
        for b in 0..B {
            let rel = (norms[b] - expected[b]).abs() / expected[b];
            assert!(rel < 1e-4, "{kind:?}: example {b} step norm {} vs {}", norms[b], expected[b]);
        }
        check_clipped(&format!("{kind:?}"), &x, &step, &host(p.x));
    }
}

#[test]
fn conf_ods_is_ods_scaled_by_confidence() {
    let de = deep_ensemble(3, 43);
    let be = batch_ensemble(3, 44);
    let x = pixels(9, 0.1, 0.9);
    // T ≠ 1: the confidence is taken at the objective's temperature (Diversity-Matters
    // `train_student.py` lines 210, 223–224: `eps *= max(softmax(logits / T))`).
    let (eta, temperature) = (1.0 / 255.0, 0.25);
    let ods = run(PerturbationKind::Ods { eta, temperature }, &de, &be, &x, 6);
    let conf = run(PerturbationKind::ConfOds { eta, temperature }, &de, &be, &x, 6);
    assert_eq!(ods.draw, conf.draw, "same seed must give the same teacher and w");
    let Draw::Ods(d) = &ods.draw else { panic!("ODS draw expected, got {:?}", ods.draw) };
    let z = host_logits_de(&de, &x);
    let (a, c) = (host(ods.step.unwrap()), host(conf.step.unwrap()));
    for b in 0..B {
        let cb = softmax64(&z[d.teacher][b], temperature).into_iter().fold(0.0, f64::max);
        let at_one = softmax64(&z[d.teacher][b], 1.0).into_iter().fold(0.0, f64::max);
        assert!((cb - at_one).abs() > 1e-3, "example {b}: confidence at T = {temperature} ({cb}) and at T = 1 ({at_one}) must differ for the test to tell them apart");
        assert!(cb > 1.0 / K as f64 && cb < 1.0, "confidence {cb} of example {b}");
        for p in b * D..(b + 1) * D {
            assert!((c[p] as f64 - cb * a[p] as f64).abs() < 1e-6, "pixel {p}: {} vs {cb} * {}", c[p], a[p]);
        }
    }
}

#[test]
fn pairs_are_distinct_in_range_and_uniform() {
    for m in [2usize, 3, 4] {
        let mut rng = StdRng::seed_from_u64(m as u64);
        let n = 6000;
        let mut counts = vec![vec![0usize; m]; m];
        for _ in 0..n {
            let (i, j) = draw_pair(m, &mut rng).unwrap();
            assert!(i < m && j < m, "pair ({i}, {j}) out of range for {m}");
            assert_ne!(i, j, "pair with i == j for {m} members");
            counts[i][j] += 1;
        }
        let expected = n as f64 / (m * (m - 1)) as f64;
        for i in 0..m {
            for j in (0..m).filter(|&j| j != i) {
                let c = counts[i][j] as f64;
                // ±5 standard deviations of a binomial count.
                assert!((c - expected).abs() < 5.0 * expected.sqrt(), "M = {m}: pair ({i},{j}) drawn {c} times, expected {expected}");
            }
        }
    }
    assert_eq!(
        draw_pair(1, &mut StdRng::seed_from_u64(0)),
        Err(PerturbError::TooFewMembers { role: "ensemble", members: 1 })
    );
}

/// perturb_batch draws exactly one pair from the caller's generator and uses it for both
/// teachers and student: its step equals the normalised shared-pair gradient of that pair
/// (whose objective is checked against finite differences in `directions.rs`), and differs
/// from the step of any other pair.
#[test]
fn tdiv_sdiv_shares_one_drawn_pair_between_teachers_and_student() {
    let de = deep_ensemble(3, 45);
    let be = batch_ensemble(3, 46);
    let x = pixels(10, 0.1, 0.9);
    for seed in 0..4 {
        let p = run(PerturbationKind::tdiv_sdiv(), &de, &be, &x, seed);
        let Draw::Pair { i, j } = p.draw else { panic!("pair expected, got {:?}", p.draw) };
        assert_eq!((i, j), draw_pair(3, &mut StdRng::seed_from_u64(seed)).unwrap(), "not the generator's first pair");
        let got = host(p.step.unwrap());
        let xt = tensor4(&x, [B, C, H, W], &ad());
        for (a, b) in [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)] {
            let g = tdiv_sdiv_gradient(&xt, Ensemble::Members(&de), Ensemble::BatchEnsemble(&be), a, b).unwrap();
            let want = host(normalized_step(g, 1.0 / 255.0, None));
            let max_diff = got.iter().zip(&want).map(|(u, v)| (u - v).abs()).fold(0.0f32, f32::max);
            if (a, b) == (i, j) {
                assert!(max_diff < 1e-6, "drawn pair ({i},{j}): step differs from its gradient by {max_diff}");
            } else {
                assert!(max_diff > 1e-4, "pair ({a},{b}) gives the same step as the drawn ({i},{j})");
            }
        }
    }
}

#[test]
fn same_seed_same_perturbation_different_seed_different_ods() {
    let de = deep_ensemble(3, 47);
    let be = batch_ensemble(3, 48);
    let x = pixels(11, 0.0, 1.0);
    for kind in [PerturbationKind::ods(), PerturbationKind::conf_ods(), PerturbationKind::tdiv_sdiv()] {
        let (a, b) = (run(kind, &de, &be, &x, 99), run(kind, &de, &be, &x, 99));
        assert_eq!(a.draw, b.draw, "{kind:?}");
        assert_eq!(host(a.x), host(b.x), "{kind:?}: same seed, different perturbed batch");
    }
    let (a, b) = (run(PerturbationKind::ods(), &de, &be, &x, 1), run(PerturbationKind::ods(), &de, &be, &x, 2));
    assert_ne!(host(a.x), host(b.x), "ODS: different seeds gave the same perturbed batch");
}

#[test]
fn none_returns_the_clean_batch() {
    let de = deep_ensemble(2, 49);
    let x = pixels(12, 0.0, 1.0);
    let mut rng = StdRng::seed_from_u64(0);
    let p = perturb_batch(&PerturbationKind::default(), tensor4(&x, [B, C, H, W], &Device::flex()), Ensemble::Members(&de), None, &mut rng)
        .unwrap();
    assert_eq!(p.draw, Draw::None);
    assert!(p.step.is_none());
    assert_eq!(host(p.x), x);
}

#[test]
fn bad_input_is_rejected_with_the_value() {
    let de = deep_ensemble(3, 50);
    let be2 = batch_ensemble(2, 51);
    let be3 = batch_ensemble(3, 52);
    let plain = de[0].valid();
    let x = tensor4(&pixels(13, 0.0, 1.0), [B, C, H, W], &ad());
    let mut rng = StdRng::seed_from_u64(0);
    let mut go = |kind: PerturbationKind, t: Ensemble<'_>, s: Option<Ensemble<'_>>| perturb_batch(&kind, x.clone(), t, s, &mut rng).unwrap_err();
    let tdiv = PerturbationKind::tdiv_sdiv();
    assert_eq!(go(tdiv, Ensemble::Members(&de), None), PerturbError::MissingStudent);
    let e = go(tdiv, Ensemble::Members(&de), Some(Ensemble::BatchEnsemble(&be2)));
    assert_eq!(e, PerturbError::MemberCountMismatch { teachers: 3, student: 2 });
    assert!(e.to_string().contains("3 teachers vs 2 student"), "{e}");
    let e = go(tdiv, Ensemble::Members(&de), Some(Ensemble::BatchEnsemble(&plain)));
    assert_eq!(e, PerturbError::TooFewMembers { role: "student", members: 1 });
    assert_eq!(
        go(tdiv, Ensemble::Members(&de[..1]), Some(Ensemble::BatchEnsemble(&be3))),
        PerturbError::TooFewMembers { role: "teachers", members: 1 }
    );
    let e = go(PerturbationKind::Ods { eta: 0.0, temperature: 1.0 }, Ensemble::Members(&de), None);
    assert_eq!(e, PerturbError::InvalidParameter { name: "eta", value: 0.0 });
    let e = go(PerturbationKind::ConfOds { eta: 1.0, temperature: f64::NAN }, Ensemble::Members(&de), None);
    assert!(matches!(e, PerturbError::InvalidParameter { name: "temperature", .. }), "{e:?}");
    let mixed = vec![de[0].clone(), be3.clone()];
    let e = go(PerturbationKind::ods(), Ensemble::Members(&mixed), None);
    assert_eq!(e, PerturbError::NotPlain { role: "teachers", index: 1, members: 3 });
    assert_eq!(go(PerturbationKind::ods(), Ensemble::Members(&[]), None), PerturbError::EmptyEnsemble { role: "teachers" });
    let empty = tensor4(&[], [0, C, H, W], &ad());
    let e = perturb_batch(&PerturbationKind::ods(), empty, Ensemble::Members(&de), None, &mut StdRng::seed_from_u64(0)).unwrap_err();
    assert_eq!(e, PerturbError::BadInput { dims: vec![0, C, H, W] });
}

#[test]
fn kind_round_trips_through_burn_config_json() {
    use burn::config::Config;
    for kind in [PerturbationKind::None, PerturbationKind::ods(), PerturbationKind::conf_ods(), PerturbationKind::tdiv_sdiv()] {
        let json = kind.to_string();
        let back = PerturbationKind::load_binary(json.as_bytes()).unwrap();
        assert_eq!(back, kind, "{json}");
    }
    assert_eq!(PerturbationKind::ods(), PerturbationKind::Ods { eta: 1.0 / 255.0, temperature: 1.0 });
}
