//! The LatentBE family of the seed paper (Nam et al. 2022, Table 1; METHODS.md §1–3) on the
//! spirals: the same rows as `experiments/cifar10/`, with MLPs instead of ResNets.
//!
//! - **BE-M**: a BatchEnsemble MLP ([`ensembles::BeMlp`], M = the ensemble size) trained on
//!   the labels with every member seeing the same (tiled) batch; scored as an ensemble.
//! - **KD + LatentBE**: one-to-one DE → BE distillation ([`crate::loss::one_to_one`], alpha 1,
//!   T = `kd_temperature`): member m of a BE-M student learns teacher m on the tiled batch.
//!   Scored as the merged plain network (LatentBE, `factor_mean`), as on CIFAR.
//! - **+ ODS / + ConfODS / + TDiv-SDiv**: the same student, each clean batch replaced by its
//!   perturbation ([`perturb::perturb_inputs`]) before the teachers and the student see it;
//!   teachers and the (unmerged, evaluation-mode) student are the perturbation's
//!   [`perturb::EvalMembers`] through [`StackMembers`] and [`BeMembers`].
//!
//! ## The perturbation on points
//! METHODS.md §3 steps `η √D g / ||g||` per example and clips to the pixel range `[0, 1]`,
//! with `η = 1/255`, one 8-bit grey level of the input's range. Points in the plane have no
//! range to clip to, so nothing is clipped, and the grey level becomes the data's range over
//! 255: `perturb_eta` defaults to `900 / 255 ≈ 3.53` (the auxiliary box and the maps span
//! about ±450), i.e. a step of norm `η √2 ≈ 5` against arm noise of standard deviation up to
//! `0.4 (6π)^{3/2} ≈ 33`. This choice is ours (neither paper ran perturbations on the spirals).
//!
//! Teachers run live on every (perturbed) batch. The BatchEnsemble initialisation is drawn
//! from the device's generator after seeding it with the model's own seed. Fast weights start
//! at 1 for the distilled students (the LatentBE code: member m differs from the others
//! through its teacher) and at `N(1, 0.5²)` for BE-M on labels (giung2's default; with 1 every
//! member would see the same batch from the same start and stay identical).

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData, s};
use ensembles::{BatchEnsembleConfig, BeMlp, FastInit, MergeRule, Mlp, tile};
use perturb::{EvalMembers, PerturbationKind, perturb_inputs};
use rand::Rng;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{
    CLASSES, MlpStack, SpiralsConfig, SpiralsError, adam, adam_step, cosine_lr, epoch_batches, model_rng, sub_seed,
};
use crate::loss::{cross_entropy, one_to_one};

/// The ensemble members (teachers) as the perturbations see them.
#[derive(Debug, Clone, Copy)]
pub struct StackMembers<'a>(pub &'a MlpStack);

impl EvalMembers<2> for StackMembers<'_> {
    fn len(&self) -> usize {
        self.0.members()
    }
    fn classes(&self) -> usize {
        CLASSES
    }
    fn member_logits(&self, m: usize, x: Tensor<2>) -> Tensor<2> {
        // A plain copy of member m (parameters on the inner device: constants).
        self.0.member(m).valid().forward(x)
    }
}

/// An unmerged BatchEnsemble MLP as the perturbations see it (evaluation mode: its
/// parameters are constants).
#[derive(Debug, Clone, Copy)]
pub struct BeMembers<'a>(pub &'a BeMlp);

impl EvalMembers<2> for BeMembers<'_> {
    fn len(&self) -> usize {
        self.0.members()
    }
    fn classes(&self) -> usize {
        CLASSES
    }
    fn member_logits(&self, m: usize, x: Tensor<2>) -> Tensor<2> {
        let z = self.0.valid().member_logits(x); // [M, B, K]
        let [_, b, k] = z.dims();
        z.slice(s![m..m + 1]).reshape([b, k])
    }
    fn pair_logits(&self, i: usize, j: usize, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let z = self.0.valid().member_logits(x);
        let [_, b, k] = z.dims();
        (z.clone().slice(s![i..i + 1]).reshape([b, k]), z.slice(s![j..j + 1]).reshape([b, k]))
    }
}

/// What a BatchEnsemble MLP is trained with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum BeObjective {
    /// Cross-entropy on the labels (BE-M).
    Labels,
    /// One-to-one distillation from the ensemble, each batch perturbed by the kind given.
    OneToOne(PerturbationKind),
}

/// Train a BE-M MLP on the training points (see the module docs).
pub(super) fn train_be(
    cfg: &SpiralsConfig,
    points: &[[f64; 2]],
    labels: &[usize],
    teachers: &MlpStack,
    objective: BeObjective,
    tag: u64,
    name: &str,
    device: &Device,
) -> Result<BeMlp, SpiralsError> {
    let m = cfg.members;
    let ad = device.clone().autodiff();
    ad.seed(sub_seed(cfg.seed, tag));
    let fast_init = match objective {
        BeObjective::Labels => FastInit::Normal { mean: 1.0, std: 0.5 },
        BeObjective::OneToOne(_) => FastInit::Ones,
    };
    let mut model = cfg.mlp().init_batch_ensemble(&BatchEnsembleConfig::new(m).with_fast_init(fast_init), &ad)?;
    let mut optim = adam();
    let mut rng = model_rng(cfg.seed, tag);
    let (epochs, lr) = match objective {
        BeObjective::Labels => (cfg.epochs, cfg.lr),
        BeObjective::OneToOne(_) => (cfg.student_epochs, cfg.student_lr),
    };
    let n = points.len();
    let steps = n.div_ceil(cfg.batch_size);
    let total = steps * epochs;
    for epoch in 0..epochs {
        let mut sum = 0.0;
        for (step, (idx, x)) in epoch_batches(points, cfg.batch_size, &mut rng, &ad).into_iter().enumerate() {
            let b = idx.len();
            let y = Tensor::<1, Int>::from_data(TensorData::new(idx.iter().map(|&i| labels[i] as i64).collect::<Vec<_>>(), [b]), &ad);
            let loss = match objective {
                BeObjective::Labels => cross_entropy(model.forward(tile(x, m)), tile(y, m)),
                BeObjective::OneToOne(kind) => {
                    // One generator per step, derived from the model's stream.
                    let mut step_rng = StdRng::seed_from_u64(rng.random());
                    let x = perturb_inputs(&kind, x, StackMembers(teachers), Some(BeMembers(&model)), None, &mut step_rng)?.x;
                    let teacher_logits = teachers.forward_shared(x.clone().inner()).autodiff().detach(); // [M, B, K]
                    one_to_one(model.forward(tile(x, m)), teacher_logits, y, 1.0, cfg.kd_temperature)?
                }
            };
            let lr = cosine_lr(lr, epoch * steps + step, total);
            model = adam_step(&mut optim, model, loss, lr, (epoch, step), &mut sum)?;
        }
        tracing::debug!(model = name, epoch, loss = sum / steps as f64, "spirals epoch");
    }
    Ok(model.valid())
}

/// The LatentBE-family models of one run (evaluation mode, plain device).
#[derive(Debug)]
pub struct BeModels {
    /// BE-M trained on the labels (scored as an ensemble).
    pub be: BeMlp,
    /// KD + LatentBE, merged.
    pub kd_latentbe: Mlp,
    /// + ODS, merged.
    pub ods: Mlp,
    /// + ConfODS, merged.
    pub conf_ods: Mlp,
    /// + TDiv-SDiv, merged.
    pub tdiv_sdiv: Mlp,
}

/// The perturbations of the three perturbed rows with the step of `cfg`; ODS and ConfODS at
/// the students' KD temperature (METHODS.md §3, as the CIFAR rows).
pub(super) fn perturbations(cfg: &SpiralsConfig) -> [(&'static str, PerturbationKind); 3] {
    let (eta, temperature) = (cfg.perturb_eta, cfg.kd_temperature);
    [
        ("ods", PerturbationKind::Ods { eta, temperature }),
        ("conf_ods", PerturbationKind::ConfOds { eta, temperature }),
        ("tdiv_sdiv", PerturbationKind::TDivSDiv { eta }),
    ]
}

/// Train every LatentBE-family model on the training points.
pub(super) fn train_be_models(
    cfg: &SpiralsConfig,
    points: &[[f64; 2]],
    labels: &[usize],
    teachers: &MlpStack,
    device: &Device,
) -> Result<BeModels, SpiralsError> {
    let train = |objective, tag, name: &str| {
        tracing::info!(student = name, members = cfg.members, "spirals: training a BatchEnsemble");
        train_be(cfg, points, labels, teachers, objective, tag, name, device)
    };
    let merge = |be: BeMlp| be.merge(MergeRule::FactorMean);
    let be = train(BeObjective::Labels, super::TAG_BE, "be")?;
    let kd_latentbe = merge(train(BeObjective::OneToOne(PerturbationKind::None), super::TAG_KD_LATENTBE, "kd_latentbe")?);
    let [(_, ods), (_, conf_ods), (_, tdiv_sdiv)] = perturbations(cfg);
    let ods = merge(train(BeObjective::OneToOne(ods), super::TAG_ODS, "ods")?);
    let conf_ods = merge(train(BeObjective::OneToOne(conf_ods), super::TAG_CONF_ODS, "conf_ods")?);
    let tdiv_sdiv = merge(train(BeObjective::OneToOne(tdiv_sdiv), super::TAG_TDIV_SDIV, "tdiv_sdiv")?);
    Ok(BeModels { be, kd_latentbe, ods, conf_ods, tdiv_sdiv })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensembles::MlpConfig;
    use perturb::Draw;

    fn host(t: Tensor<2>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
    }

    fn models(device: &Device) -> (MlpStack, BeMlp) {
        let cfg = MlpConfig::new(vec![8], CLASSES).with_input_scale(100.0);
        let mut rng = model_rng(3, 1);
        let members: Vec<_> = (0..3).map(|_| super::super::draw_weights(&cfg, &mut rng)).collect();
        let stack = MlpStack::from_members(&cfg, &members, device).unwrap();
        device.seed(4);
        let be = cfg
            .init_batch_ensemble(&BatchEnsembleConfig::new(3).with_fast_init(FastInit::Normal { mean: 1.0, std: 0.5 }), device)
            .unwrap();
        (stack, be)
    }

    const X: [f32; 8] = [120.0, -40.0, -300.0, 10.0, 5.0, 5.0, 0.5, 0.9];

    #[test]
    fn member_views_agree_with_plain_members() {
        let device = Device::flex();
        let (stack, be) = models(&device);
        let x = Tensor::<2>::from_data(TensorData::new(X.to_vec(), [4, 2]), &device);
        let (sv, bv) = (StackMembers(&stack), BeMembers(&be));
        assert_eq!((sv.len(), bv.len(), sv.classes()), (3, 3, CLASSES));
        for m in 0..3 {
            assert_eq!(host(sv.member_logits(m, x.clone())), host(stack.member(m).forward(x.clone())));
            let plain = host(be.member(m).unwrap().forward(x.clone()));
            for (p, q) in host(bv.member_logits(m, x.clone())).iter().zip(&plain) {
                assert!((p - q).abs() < 1e-5, "BE member {m}: {p} vs {q}");
            }
        }
        let (zi, zj) = bv.pair_logits(2, 0, x.clone());
        assert_eq!(host(zi), host(bv.member_logits(2, x.clone())));
        assert_eq!(host(zj), host(bv.member_logits(0, x)));
    }

    /// On points: the step has norm η√2 per example, nothing is clipped (coordinates far
    /// outside [0, 1] stay), and the ODS direction agrees with central differences of the
    /// objective `wᵀ softmax(z_m(x))` through the teacher view.
    #[test]
    fn point_perturbations_have_the_step_norm_no_clipping_and_the_ods_direction() {
        let device = Device::flex();
        let (stack, be) = models(&device);
        let eta = 3.5;
        let x = Tensor::<2>::from_data(TensorData::new(X.to_vec(), [4, 2]), &device.clone().autodiff());
        for kind in [PerturbationKind::Ods { eta, temperature: 1.0 }, PerturbationKind::TDivSDiv { eta }] {
            let mut rng = StdRng::seed_from_u64(9);
            let p = perturb_inputs(&kind, x.clone(), StackMembers(&stack), Some(BeMembers(&be)), None, &mut rng).unwrap();
            let step = host(p.step.clone().unwrap());
            let moved = host(p.x.clone());
            for b in 0..4 {
                let norm = (step[2 * b].powi(2) + step[2 * b + 1].powi(2)).sqrt();
                assert!((f64::from(norm) - eta * 2f64.sqrt()).abs() < 1e-4, "{kind:?}: example {b} step norm {norm}");
                for c in 0..2 {
                    let want = X[2 * b + c] + step[2 * b + c];
                    assert!((moved[2 * b + c] - want).abs() < 1e-4, "{kind:?}: clipped? {} vs {want}", moved[2 * b + c]);
                }
            }
            if let Draw::Ods(draw) = &p.draw {
                // Central differences in f64 on the host copy of teacher `draw.teacher`.
                let teacher = stack.member(draw.teacher);
                let objective = |pt: [f64; 2], b: usize| -> f64 {
                    let z = host(teacher.forward(Tensor::<2>::from_data(TensorData::new(vec![pt[0] as f32, pt[1] as f32], [1, 2]), &device)));
                    let mx = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f64> = z.iter().map(|&v| f64::from(v - mx).exp()).collect();
                    let s: f64 = e.iter().sum();
                    (0..CLASSES).map(|k| f64::from(draw.w[b * CLASSES + k]) * e[k] / s).sum()
                };
                for b in 0..4 {
                    let h = 0.5; // raw units; the model divides by 100
                    let pt = [f64::from(X[2 * b]), f64::from(X[2 * b + 1])];
                    let g: Vec<f64> = (0..2)
                        .map(|c| {
                            let (mut hi, mut lo) = (pt, pt);
                            hi[c] += h;
                            lo[c] -= h;
                            (objective(hi, b) - objective(lo, b)) / (2.0 * h)
                        })
                        .collect();
                    let gn = (g[0] * g[0] + g[1] * g[1]).sqrt();
                    let dir = [f64::from(step[2 * b]) / (eta * 2f64.sqrt()), f64::from(step[2 * b + 1]) / (eta * 2f64.sqrt())];
                    let cos = (dir[0] * g[0] + dir[1] * g[1]) / gn;
                    assert!(cos > 0.999, "example {b}: ODS direction {dir:?} vs finite differences {g:?} (cos {cos})");
                }
            } else {
                assert!(matches!(p.draw, Draw::Pair { i, j } if i != j && i < 3 && j < 3), "{:?}", p.draw);
            }
        }
    }
}
