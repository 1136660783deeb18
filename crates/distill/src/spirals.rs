//! The spirals experiment of the EnD² paper (Malinin, Mlodozeniec & Gales 2020, §4
//! "artificial data"; METHODS.md §5, PROTOCOLS.md): an ensemble of small MLPs on the
//! three-arm spirals, distilled into one MLP with EnD² — once on the training inputs only,
//! once on the training inputs plus auxiliary points spread uniformly over a box around the
//! data — and scored against a single network and the Bayes-optimal classifier.
//!
//! [`run_spirals`] does it all and returns a [`SpiralsReport`] (no IO, no printing; progress is
//! reported as `tracing` events). [`SpiralsModels`] exposes the trained models so callers can
//! evaluate them elsewhere, e.g. the uncertainty maps of [`SpiralsModels::uncertainty_grid`].
//!
//! ## Recipe (the defaults of [`SpiralsConfig`])
//! - Data: noise 0.4; 3,000 training points (1,000 per arm), an independent test set of
//!   10,000 points, 3,000 OOD points on the ring of radius 410 (radial std 1).
//! - Networks: MLP 2 → 64 → 64 → 64 → 3 with ReLU, input divided by 100 inside the model.
//!   Weights and biases `U(±1/sqrt(fan_in))` (Burn's `Linear` default), drawn from a generator
//!   seeded per model, so the run does not depend on the device's random state.
//! - Ensemble: M = 50 members (the paper uses 100; 50 keeps the whole run within a few CPU
//!   minutes; `members` is configurable). Each member has its own initialisation and its own
//!   mini-batch order. The members are trained *simultaneously* as one stacked network
//!   ([`MlpStack`], weights `[M, fan_in, fan_out]`, batched matmul): the loss is the sum of the
//!   members' mean cross-entropies and Adam is element-wise, so this is exactly M independent
//!   trainings, only faster. [`MlpStack::member`] extracts member m as a plain [`Mlp`].
//! - Optimiser: Adam (β = 0.9, 0.999, ε = 1e-8, no weight decay), batch 100, lr 1e-2 with a
//!   cosine decay to 0 over the run; 300 epochs for members, the single network and students
//!   (1e-3 for 200 epochs underfits: about 20% error against a Bayes error of about 12%).
//! - Single network: an independent MLP trained by the same recipe with its own seed (not a
//!   member of the ensemble). The report also gives the members' mean error.
//! - EnD² students: same architecture, fresh initialisation, loss [`crate::loss::end2`]
//!   against the members' logits (precomputed once: the teachers are fixed), smoothing 1e-3,
//!   temperature 2.5 held for 75 epochs then decayed linearly to 1 over 75 epochs
//!   ([`TemperatureSchedule`]). EnD²+aux adds 3,000 points uniform in the box
//!   `[-450, 450]²` (which contains the OOD ring) to the distillation set; labels are never
//!   used by the students.
//!
//! - The LatentBE family (BE-M, KD + LatentBE, + ODS, + ConfODS, + TDiv-SDiv): see
//!   [`batch_ensemble`]; BatchEnsemble students have M = the ensemble size, like DE-4 → BE-4.
//!
//! ## Evaluation
//! Errors use the ensemble's mean probability, the students' expected probabilities
//! `α / α_0` at T = 1 (`α = exp(z)`, i.e. `softmax(z)`) and the single network's softmax.
//! Uncertainties: ensemble TU / DU / MI from the member probabilities; students: the
//! Dirichlet closed forms (`metrics::dirichlet_uncertainty`; logits are clamped to
//! `[-80, 80]` before `exp` so α stays a positive finite f32). OOD detection: the ring
//! (positives) against the test set, AUROC and AUPR of −max p, TU, DU and MI.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use data::{BayesPosterior, Estimate, Spirals};
use ensembles::{Mlp, MlpConfig};
use metrics::{OodReport, Predictions, UncertaintyScores};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;

mod batch_ensemble;
pub use batch_ensemble::{BeMembers, BeModels, StackMembers};

use crate::DistillError;
use crate::loss::{DirichletHead, ProxyOffsets, ae_kd::ae_kd, cross_entropy, end2, kd, proxy_end2::proxy_end2};
use crate::schedule::TemperatureSchedule;

/// Number of classes (arms).
pub const CLASSES: usize = data::spirals::N_ARMS;
pub use crate::loss::dirichlet::LOGIT_CLAMP;
/// Points per forward pass in evaluation (bounds memory for large M).
const EVAL_CHUNK: usize = 2048;

/// Errors of the spirals experiment.
#[derive(Debug, thiserror::Error)]
pub enum SpiralsError {
    /// An invalid configuration value; the message names the field.
    #[error("spirals config: {0}")]
    Config(String),
    /// Data generation or the Bayes posterior failed.
    #[error(transparent)]
    Data(#[from] data::DataError),
    /// A metric rejected its input.
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    /// A loss or model operation failed.
    #[error(transparent)]
    Distill(#[from] DistillError),
    /// A model could not be built.
    #[error(transparent)]
    Model(#[from] ensembles::EnsembleError),
    /// An input perturbation failed.
    #[error(transparent)]
    Perturb(#[from] perturb::PerturbError),
}

/// Configuration of [`run_spirals`]; the defaults are the recipe of the module docs.
#[derive(Config, Debug, PartialEq)]
pub struct SpiralsConfig {
    /// Noise level of the generator (the paper: 0.4).
    #[config(default = 0.4)]
    pub noise: f64,
    /// Training points (balanced over the three arms).
    #[config(default = 3000)]
    pub n_train: usize,
    /// Independent in-distribution test points.
    #[config(default = 10000)]
    pub n_test: usize,
    /// Ensemble size M (the paper: 100; default 50 to fit a few CPU minutes).
    #[config(default = 50)]
    pub members: usize,
    /// Hidden widths of every MLP (members, single network, students).
    #[config(default = "vec![64, 64, 64]")]
    pub hidden: Vec<usize>,
    /// Inputs are divided by this inside the model (raw coordinates reach |x| ≈ 400).
    #[config(default = 100.0)]
    pub input_scale: f64,
    /// Mini-batch size (every model).
    #[config(default = 100)]
    pub batch_size: usize,
    /// Epochs of the members and of the single network.
    #[config(default = 300)]
    pub epochs: usize,
    /// Peak Adam learning rate of the members and the single network (cosine decay to 0).
    #[config(default = 1e-2)]
    pub lr: f64,
    /// Epochs of each EnD² student (over its distillation set).
    #[config(default = 300)]
    pub student_epochs: usize,
    /// Peak Adam learning rate of the students (cosine decay to 0).
    #[config(default = 1e-2)]
    pub student_lr: f64,
    /// EnD² temperature annealing, in student epochs.
    #[config(default = "TemperatureSchedule::new(2.5).with_hold_epochs(75.0).with_decay_epochs(75.0)")]
    pub temperature: TemperatureSchedule,
    /// EnD² teacher-probability smoothing ε.
    #[config(default = 1e-3)]
    pub smoothing: f64,
    /// KD and AE-KD students: temperature T (alpha = 1, as the CIFAR rows).
    #[config(default = 4.0)]
    pub kd_temperature: f64,
    /// AE-KD cap C on the teacher weights.
    #[config(default = 0.6)]
    pub ae_kd_cap: f64,
    /// Proxy-EnD² student offset `c_s` in `α = exp(z) + c_s` (METHODS.md: 1; the student
    /// collapses to `Dir(1, 1, 1)` with 1 at K = 3, see [`crate::loss::proxy_end2`]).
    #[config(default = 1.0)]
    pub proxy_model_offset: f64,
    /// Proxy-EnD² target offset `c_t` in `α_t = p̄ · precision + c_t` (METHODS.md: 1).
    #[config(default = 1.0)]
    pub proxy_target_offset: f64,
    /// Step η of the ODS / ConfODS / TDiv-SDiv perturbations (step norm `η √2`, no clipping):
    /// the data's range over 255, the analogue of one grey level (see [`batch_ensemble`]).
    #[config(default = "900.0 / 255.0")]
    pub perturb_eta: f64,
    /// Auxiliary (unlabelled) points for the EnD²+aux student.
    #[config(default = 3000)]
    pub n_aux: usize,
    /// Auxiliary points are uniform in `[-aux_half_width, aux_half_width]²`.
    #[config(default = 450.0)]
    pub aux_half_width: f64,
    /// OOD points on the ring.
    #[config(default = 3000)]
    pub n_ood: usize,
    /// Radius of the OOD ring.
    #[config(default = 410.0)]
    pub ood_radius: f64,
    /// Radial standard deviation of the OOD ring.
    #[config(default = 1.0)]
    pub ood_radial_std: f64,
    /// Monte-Carlo samples of the generator's Bayes error `E[1 − max_k p(k|x)]`.
    #[config(default = 20000)]
    pub n_bayes: usize,
    /// Grid points per side of the uncertainty maps in the report (0 = no maps).
    #[config(default = 0)]
    pub grid_points: usize,
    /// The maps cover `[-grid_extent, grid_extent]²`.
    #[config(default = 500.0)]
    pub grid_extent: f64,
    /// Seed of everything: data, initialisations, mini-batch orders.
    #[config(default = 0)]
    pub seed: u64,
}

impl SpiralsConfig {
    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), SpiralsError> {
        let bad = |f: &str, v: String| Err(SpiralsError::Config(format!("{f} = {v}")));
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.noise) {
            return bad("noise", self.noise.to_string());
        }
        for (f, v) in [
            ("n_train", self.n_train),
            ("n_test", self.n_test),
            ("members", self.members),
            ("batch_size", self.batch_size),
            ("n_ood", self.n_ood),
            ("n_bayes", self.n_bayes),
        ] {
            if v == 0 {
                return bad(f, "0 (must be positive)".into());
            }
        }
        for (f, v) in [
            ("input_scale", self.input_scale),
            ("lr", self.lr),
            ("student_lr", self.student_lr),
            ("aux_half_width", self.aux_half_width),
            ("ood_radius", self.ood_radius),
            ("grid_extent", self.grid_extent),
            ("perturb_eta", self.perturb_eta),
        ] {
            if !positive(v) {
                return bad(f, v.to_string());
            }
        }
        if !(self.ood_radial_std.is_finite() && self.ood_radial_std >= 0.0) {
            return bad("ood_radial_std", self.ood_radial_std.to_string());
        }
        if !(0.0..1.0).contains(&self.smoothing) {
            return bad("smoothing", self.smoothing.to_string());
        }
        self.temperature.validate()?;
        self.proxy_offsets().validate()?;
        self.mlp().validate()?;
        Ok(())
    }

    /// The Proxy-EnD² student's offsets.
    pub fn proxy_offsets(&self) -> ProxyOffsets {
        ProxyOffsets::new().with_model(self.proxy_model_offset).with_target(self.proxy_target_offset)
    }

    /// The architecture of every network.
    pub fn mlp(&self) -> MlpConfig {
        MlpConfig::new(self.hidden.clone(), CLASSES).with_input_scale(self.input_scale)
    }
}

// ---------------------------------------------------------------------------------------
// Seeds

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Independent seed for one purpose of a run.
fn sub_seed(seed: u64, tag: u64) -> u64 {
    splitmix64(seed ^ splitmix64(tag.wrapping_add(0x5350_4952_414C_5300)))
}

const TAG_TRAIN: u64 = 1;
const TAG_TEST: u64 = 2;
const TAG_RING: u64 = 3;
const TAG_AUX: u64 = 4;
const TAG_BAYES: u64 = 5;
const TAG_SINGLE: u64 = 6;
const TAG_END2: u64 = 7;
const TAG_END2_AUX: u64 = 8;
const TAG_KD: u64 = 9;
const TAG_AE_KD: u64 = 10;
const TAG_PROXY: u64 = 11;
const TAG_BE: u64 = 12;
const TAG_KD_LATENTBE: u64 = 13;
const TAG_ODS: u64 = 14;
const TAG_CONF_ODS: u64 = 15;
const TAG_TDIV_SDIV: u64 = 16;
/// Member m uses tag `TAG_MEMBER + m`.
const TAG_MEMBER: u64 = 1 << 32;

fn model_rng(seed: u64, tag: u64) -> StdRng {
    StdRng::seed_from_u64(sub_seed(seed, tag))
}

/// Burn's default `Linear` initialisation `U(±1/sqrt(fan_in))`, from `rng`.
fn draw_weights(cfg: &MlpConfig, rng: &mut StdRng) -> Vec<(Vec<f32>, Vec<f32>)> {
    cfg.layer_shapes()
        .into_iter()
        .map(|(i, o)| {
            let k = (1.0 / i as f64).sqrt() as f32;
            let w = (0..i * o).map(|_| rng.random_range(-k..k)).collect();
            let b = (0..o).map(|_| rng.random_range(-k..k)).collect();
            (w, b)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Stacked ensemble

/// M MLPs of one shape stored as stacked weights `[M, fan_in, fan_out]` and biases
/// `[M, 1, fan_out]`, evaluated with one batched matmul per layer. Member m is exactly the
/// [`Mlp`] returned by [`MlpStack::member`].
#[derive(Module, Debug)]
pub struct MlpStack {
    /// Per layer, input side first: `[M, fan_in, fan_out]`.
    pub weights: Vec<Param<Tensor<3>>>,
    /// Per layer: `[M, 1, fan_out]`.
    pub biases: Vec<Param<Tensor<3>>>,
    /// Inputs are divided by this constant first.
    pub input_scale: f64,
}

impl MlpStack {
    /// Stack members given as per-layer `(weight [fan_in, fan_out] row-major, bias)` pairs
    /// (the format of [`MlpConfig::init_with_weights`]).
    pub fn from_members(cfg: &MlpConfig, members: &[Vec<(Vec<f32>, Vec<f32>)>], device: &Device) -> Result<Self, SpiralsError> {
        cfg.validate()?;
        let m = members.len();
        if m == 0 {
            return Err(SpiralsError::Config("MlpStack needs at least one member".into()));
        }
        let shapes = cfg.layer_shapes();
        let mut weights = Vec::with_capacity(shapes.len());
        let mut biases = Vec::with_capacity(shapes.len());
        for (l, &(i, o)) in shapes.iter().enumerate() {
            let mut w = Vec::with_capacity(m * i * o);
            let mut b = Vec::with_capacity(m * o);
            for (k, member) in members.iter().enumerate() {
                let (mw, mb) = member
                    .get(l)
                    .filter(|(mw, mb)| mw.len() == i * o && mb.len() == o)
                    .ok_or_else(|| SpiralsError::Config(format!("member {k}: layer {l} is not {i}x{o} + {o}")))?;
                w.extend_from_slice(mw);
                b.extend_from_slice(mb);
            }
            weights.push(Param::from_tensor(Tensor::<3>::from_data(TensorData::new(w, [m, i, o]), device)));
            biases.push(Param::from_tensor(Tensor::<3>::from_data(TensorData::new(b, [m, 1, o]), device)));
        }
        Ok(MlpStack { weights, biases, input_scale: cfg.input_scale })
    }

    /// Number of members M.
    pub fn members(&self) -> usize {
        self.weights[0].dims()[0]
    }

    /// `x`: `[M, B, d]` (member m's own batch in row m) → logits `[M, B, K]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let last = self.weights.len() - 1;
        let mut h = x / self.input_scale;
        for (l, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            h = h.matmul(w.val()) + b.val();
            if l < last {
                h = relu(h);
            }
        }
        h
    }

    /// The same points `[N, d]` through every member → logits `[M, N, K]`.
    pub fn forward_shared(&self, x: Tensor<2>) -> Tensor<3> {
        let m = self.members();
        self.forward(x.unsqueeze_dim::<3>(0).repeat_dim(0, m))
    }

    /// Member `m` as a plain [`Mlp`].
    pub fn member(&self, m: usize) -> Mlp {
        let layers = self
            .weights
            .iter()
            .zip(&self.biases)
            .map(|(w, b)| {
                let [_, i, o] = w.dims();
                Linear {
                    weight: Param::from_tensor(w.val().slice([m..m + 1]).reshape([i, o])),
                    bias: Some(Param::from_tensor(b.val().slice([m..m + 1]).reshape([o]))),
                }
            })
            .collect();
        Mlp { layers, input_scale: self.input_scale }
    }
}

// ---------------------------------------------------------------------------------------
// Training

fn points_data(points: &[[f64; 2]], idx: &[usize], out: &mut Vec<f32>) {
    for &i in idx {
        out.push(points[i][0] as f32);
        out.push(points[i][1] as f32);
    }
}

fn cosine_lr(peak: f64, step: usize, total: usize) -> f64 {
    peak * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total.max(1) as f64).cos())
}

fn adam() -> burn::optim::ModuleOptimizer {
    AdamConfig::new().with_epsilon(1e-8).init()
}

/// Mini-batches of one epoch: a fresh permutation of `0..n` cut into `batch`-sized pieces
/// (the last one may be shorter).
fn epoch_order(n: usize, rng: &mut StdRng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    order
}

/// One epoch of mini-batches of `points` in the order of [`epoch_order`]: each batch's
/// indices and its points as a `[b, 2]` tensor on `device`.
fn epoch_batches(points: &[[f64; 2]], batch: usize, rng: &mut StdRng, device: &Device) -> Vec<(Vec<usize>, Tensor<2>)> {
    let order = epoch_order(points.len(), rng);
    order
        .chunks(batch)
        .map(|idx| {
            let mut x = Vec::with_capacity(idx.len() * 2);
            points_data(points, idx, &mut x);
            (idx.to_vec(), Tensor::<2>::from_data(TensorData::new(x, [idx.len(), 2]), device))
        })
        .collect()
}

/// One Adam step of `model` on `loss` at `lr`, after checking the loss is finite (the error
/// names `(epoch, step)`) and adding it to `sum`.
fn adam_step<M: Module>(
    optim: &mut burn::optim::ModuleOptimizer,
    model: M,
    loss: Tensor<1>,
    lr: f64,
    (epoch, step): (usize, usize),
    sum: &mut f64,
) -> Result<M, SpiralsError> {
    let value = f64::from(loss.clone().into_scalar::<f32>());
    check_finite(value, epoch, step, lr)?;
    *sum += value;
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    Ok(optim.step(lr, model, grads))
}

fn check_finite(loss: f64, epoch: usize, step: usize, lr: f64) -> Result<(), SpiralsError> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(DistillError::Diverged { loss, term: "objective", epoch: epoch + 1, step, lr, last_good: epoch }.into())
    }
}

/// Train M members jointly (see the module docs): member m draws its initialisation and then
/// every epoch's order from its own generator.
fn train_ensemble(cfg: &SpiralsConfig, train: &Spirals, device: &Device) -> Result<MlpStack, SpiralsError> {
    let mlp = cfg.mlp();
    let m = cfg.members;
    let mut rngs: Vec<StdRng> = (0..m as u64).map(|k| model_rng(cfg.seed, TAG_MEMBER + k)).collect();
    let init: Vec<_> = rngs.iter_mut().map(|r| draw_weights(&mlp, r)).collect();
    let ad = device.clone().autodiff();
    let mut model = MlpStack::from_members(&mlp, &init, &ad)?;
    let mut optim = adam();
    let n = train.len();
    let steps = n.div_ceil(cfg.batch_size);
    let total = steps * cfg.epochs;
    for epoch in 0..cfg.epochs {
        let orders: Vec<Vec<usize>> = rngs.iter_mut().map(|r| epoch_order(n, r)).collect();
        let mut sum = 0.0;
        for step in 0..steps {
            let lo = step * cfg.batch_size;
            let hi = (lo + cfg.batch_size).min(n);
            let b = hi - lo;
            let mut x = Vec::with_capacity(m * b * 2);
            let mut y = Vec::with_capacity(m * b);
            for order in &orders {
                points_data(&train.points, &order[lo..hi], &mut x);
                y.extend(order[lo..hi].iter().map(|&i| train.labels[i] as i64));
            }
            let x = Tensor::<3>::from_data(TensorData::new(x, [m, b, 2]), &ad);
            let y = Tensor::<1, Int>::from_data(TensorData::new(y, [m * b]), &ad);
            let logits = model.forward(x).reshape([m * b, CLASSES]);
            // Sum over members of each member's mean cross-entropy.
            let loss = cross_entropy(logits, y) * (m as f64);
            let value = f64::from(loss.clone().into_scalar::<f32>()) / m as f64;
            let lr = cosine_lr(cfg.lr, epoch * steps + step, total);
            check_finite(value, epoch, step, lr)?;
            sum += value;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
        }
        tracing::debug!(epoch, loss = sum / steps as f64, "spirals ensemble epoch");
    }
    Ok(model.valid())
}

/// What a single MLP is trained on.
enum Objective<'a> {
    /// Cross-entropy against labels.
    CrossEntropy(&'a [usize]),
    /// A distillation loss against teacher logits `[M, N, K]` (row-major, host) of the inputs.
    Distil { teacher_logits: &'a [f32], members: usize, loss: StudentLoss, labels: &'a [usize] },
}

/// The distillation losses the spirals students are trained with (METHODS.md §2).
#[derive(Debug, Clone, Copy, PartialEq)]
enum StudentLoss {
    End2,
    Kd,
    AeKd,
    ProxyEnd2,
}

fn train_mlp(
    cfg: &SpiralsConfig,
    inputs: &[[f64; 2]],
    objective: Objective<'_>,
    tag: u64,
    name: &str,
    device: &Device,
) -> Result<Mlp, SpiralsError> {
    let mlp = cfg.mlp();
    let mut rng = model_rng(cfg.seed, tag);
    let weights = draw_weights(&mlp, &mut rng);
    let ad = device.clone().autodiff();
    let mut model = mlp.init_with_weights(&weights, &ad)?;
    let mut optim = adam();
    let (epochs, lr) = match objective {
        Objective::CrossEntropy(_) => (cfg.epochs, cfg.lr),
        Objective::Distil { .. } => (cfg.student_epochs, cfg.student_lr),
    };
    let n = inputs.len();
    let steps = n.div_ceil(cfg.batch_size);
    let total = steps * epochs;
    for epoch in 0..epochs {
        let mut sum = 0.0;
        for (step, (idx, x)) in epoch_batches(inputs, cfg.batch_size, &mut rng, &ad).into_iter().enumerate() {
            let (idx, b) = (&idx[..], idx.len());
            let logits = model.forward(x);
            let loss = match objective {
                Objective::CrossEntropy(labels) => {
                    let y: Vec<i64> = idx.iter().map(|&i| labels[i] as i64).collect();
                    cross_entropy(logits, Tensor::<1, Int>::from_data(TensorData::new(y, [b]), &ad))
                }
                Objective::Distil { teacher_logits, members, loss, labels } => {
                    let mut t = Vec::with_capacity(members * b * CLASSES);
                    for m in 0..members {
                        for &i in idx {
                            let at = (m * n + i) * CLASSES;
                            t.extend_from_slice(&teacher_logits[at..at + CLASSES]);
                        }
                    }
                    let t = Tensor::<3>::from_data(TensorData::new(t, [members, b, CLASSES]), &ad);
                    // alpha = 1: labels are unused by the loss value (only shape-checked).
                    let y = || {
                        let y: Vec<i64> = idx.iter().map(|&i| labels.get(i).copied().unwrap_or(0) as i64).collect();
                        Tensor::<1, Int>::from_data(TensorData::new(y, [b]), &ad)
                    };
                    match loss {
                        StudentLoss::End2 => {
                            let temperature = cfg.temperature.temperature(epoch as f64 + step as f64 / steps as f64);
                            end2(logits, t, temperature, cfg.smoothing)?
                        }
                        StudentLoss::Kd => kd(logits, t, y(), 1.0, cfg.kd_temperature)?,
                        StudentLoss::AeKd => ae_kd(logits, t, y(), 1.0, cfg.kd_temperature, cfg.ae_kd_cap)?.loss,
                        StudentLoss::ProxyEnd2 => proxy_end2(logits, t, &cfg.proxy_offsets())?,
                    }
                }
            };
            let lr = cosine_lr(lr, epoch * steps + step, total);
            model = adam_step(&mut optim, model, loss, lr, (epoch, step), &mut sum)?;
        }
        tracing::debug!(model = name, epoch, loss = sum / steps as f64, "spirals epoch");
    }
    Ok(model.valid())
}

// ---------------------------------------------------------------------------------------
// Evaluation helpers

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().expect("f32 tensor data")
}

/// Logits of a plain MLP on `points`, host `[N, K]` row-major.
fn mlp_logits(model: &Mlp, points: &[[f64; 2]], device: &Device) -> Vec<f32> {
    let mut out = Vec::with_capacity(points.len() * CLASSES);
    for chunk in points.chunks(EVAL_CHUNK) {
        out.extend(host(model.forward(data::spirals::points_tensor(chunk, device))));
    }
    out
}

/// Softmax probabilities of a plain MLP on `points`.
fn softmax_predictions(model: &Mlp, points: &[[f64; 2]], device: &Device) -> Result<Predictions, SpiralsError> {
    Ok(Predictions::new(softmax_rows(&mlp_logits(model, points, device)), points.len(), CLASSES)?)
}

/// Each member's softmax probabilities of a BatchEnsemble MLP on `points`.
fn be_member_predictions(model: &ensembles::BeMlp, points: &[[f64; 2]], device: &Device) -> Result<Vec<Predictions>, SpiralsError> {
    let m = model.members();
    let n = points.len();
    let mut z = vec![Vec::with_capacity(n * CLASSES); m];
    for chunk in points.chunks(EVAL_CHUNK) {
        let c = chunk.len();
        let all = host(model.member_logits(data::spirals::points_tensor(chunk, device))); // [M, c, K]
        for (k, zk) in z.iter_mut().enumerate() {
            zk.extend_from_slice(&all[k * c * CLASSES..(k + 1) * c * CLASSES]);
        }
    }
    z.iter().map(|zk| Ok(Predictions::new(softmax_rows(zk), n, CLASSES)?)).collect()
}

/// Logits of every member on `points`, host `[M, N, K]` row-major.
fn stack_logits(model: &MlpStack, points: &[[f64; 2]], device: &Device) -> Vec<f32> {
    let m = model.members();
    let n = points.len();
    let mut out = vec![0.0f32; m * n * CLASSES];
    let mut start = 0;
    for chunk in points.chunks(EVAL_CHUNK) {
        let c = chunk.len();
        let z = host(model.forward_shared(data::spirals::points_tensor(chunk, device)));
        for k in 0..m {
            let dst = (k * n + start) * CLASSES;
            out[dst..dst + c * CLASSES].copy_from_slice(&z[k * c * CLASSES..(k + 1) * c * CLASSES]);
        }
        start += c;
    }
    out
}

/// Row-wise softmax in f64 (exactly normalised f32 rows for [`Predictions`]).
fn softmax_rows(logits: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(CLASSES) {
        let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let e: Vec<f64> = row.iter().map(|&z| (z as f64 - mx).exp()).collect();
        let s: f64 = e.iter().sum();
        out.extend(e.iter().map(|v| (v / s) as f32));
    }
    out
}

/// The models' predictions on one set of points.
struct Outputs {
    /// Ensemble members' probabilities.
    members: Vec<Predictions>,
    /// Ensemble mean probability.
    ensemble: Predictions,
    /// Student concentrations α (EnD², EnD²+aux) and their expected probabilities.
    end2: (Vec<f32>, Predictions),
    end2_aux: (Vec<f32>, Predictions),
    /// Single network's probabilities.
    single: Predictions,
    /// KD and AE-KD students' probabilities.
    kd: Predictions,
    ae_kd: Predictions,
    /// Proxy-EnD² student: α = exp(z) + c_s and α/α₀.
    proxy_end2: (Vec<f32>, Predictions),
    /// BE-M: the mean of its members' probabilities.
    be: Predictions,
    /// Merged LatentBE students' probabilities.
    kd_latentbe: Predictions,
    ods: Predictions,
    conf_ods: Predictions,
    tdiv_sdiv: Predictions,
}

fn dirichlet_outputs(head: DirichletHead, logits: &[f32], n: usize) -> Result<(Vec<f32>, Predictions), SpiralsError> {
    Ok((head.concentrations(logits), Predictions::new(head.expected_probabilities(logits, CLASSES), n, CLASSES)?))
}

/// TU / DU / MI and −max p of one model on one set of points.
struct Scores {
    confidence: Vec<f64>,
    u: UncertaintyScores,
}

fn ensemble_scores(o: &Outputs) -> Result<Scores, SpiralsError> {
    Ok(Scores { confidence: metrics::negative_confidence(&o.ensemble), u: metrics::ensemble_uncertainty(&o.members)? })
}

fn dirichlet_scores(s: &(Vec<f32>, Predictions)) -> Result<Scores, SpiralsError> {
    let n = s.1.rows();
    Ok(Scores { confidence: metrics::negative_confidence(&s.1), u: metrics::dirichlet_uncertainty(&s.0, n, CLASSES)? })
}

// ---------------------------------------------------------------------------------------
// Report types

/// Classification errors on the test set (fractions in `[0, 1]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpiralsErrors {
    /// Ensemble (mean of member probabilities).
    pub ensemble: f64,
    /// EnD² student (expected probabilities α/α_0 at T = 1).
    pub end2: f64,
    /// EnD² student distilled with auxiliary data.
    pub end2_aux: f64,
    /// Independent single network.
    pub single: f64,
    /// KD student (alpha 1, T = `kd_temperature`).
    pub kd: f64,
    /// AE-KD student.
    pub ae_kd: f64,
    /// Proxy-EnD² student (expected probabilities).
    pub proxy_end2: f64,
    /// BE-M trained on the labels (mean of its members' probabilities).
    pub be: f64,
    /// KD + LatentBE (one-to-one DE → BE-M, merged).
    pub kd_latentbe: f64,
    /// + ODS (merged).
    pub ods: f64,
    /// + ConfODS (merged).
    pub conf_ods: f64,
    /// + TDiv-SDiv (merged).
    pub tdiv_sdiv: f64,
    /// Mean error of the ensemble's members taken one at a time.
    pub member_mean: f64,
    /// Bayes classifier (argmax of the true posterior) on the same test set.
    pub bayes_test: f64,
}

/// AUROC / AUPR of each OOD score (ring = positive class).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OodScores {
    /// −max_k p_k.
    pub confidence: OodReport,
    /// Total uncertainty TU.
    pub total: OodReport,
    /// Data uncertainty DU.
    pub data: OodReport,
    /// Knowledge uncertainty MI.
    pub knowledge: OodReport,
}

/// OOD detection, ring against the test set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpiralsOod {
    /// Ensemble.
    pub ensemble: OodScores,
    /// EnD² student.
    pub end2: OodScores,
    /// EnD²+aux student.
    pub end2_aux: OodScores,
    /// Proxy-EnD² student (a Dirichlet too).
    pub proxy_end2: OodScores,
}

/// Mean TU / DU / MI over a set of points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeanUncertainty {
    /// Mean total uncertainty.
    pub total: f64,
    /// Mean data uncertainty.
    pub data: f64,
    /// Mean knowledge uncertainty (MI).
    pub knowledge: f64,
}

/// Mean uncertainties of one model on the test set and on the ring.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InOut {
    /// In-distribution test points.
    pub test: MeanUncertainty,
    /// OOD ring points.
    pub ring: MeanUncertainty,
}

/// Mean uncertainties of each model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpiralsUncertainty {
    /// Ensemble.
    pub ensemble: InOut,
    /// EnD² student.
    pub end2: InOut,
    /// EnD²+aux student.
    pub end2_aux: InOut,
    /// Proxy-EnD² student.
    pub proxy_end2: InOut,
}

/// TU / DU / MI of one model on the grid (row-major, see [`UncertaintyGrid`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridMaps {
    /// Total uncertainty.
    pub total: Vec<f32>,
    /// Data uncertainty.
    pub data: Vec<f32>,
    /// Knowledge uncertainty (MI).
    pub knowledge: Vec<f32>,
}

/// Uncertainty maps on a regular grid: `coords` are the same for both axes, and the value at
/// `(x, y) = (coords[i], coords[j])` is entry `j * coords.len() + i` (rows = y).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UncertaintyGrid {
    /// Grid coordinates along each axis, increasing, from `-extent` to `extent`.
    pub coords: Vec<f64>,
    /// Ensemble.
    pub ensemble: GridMaps,
    /// EnD² student.
    pub end2: GridMaps,
    /// EnD²+aux student.
    pub end2_aux: GridMaps,
}

/// Everything [`run_spirals`] measures. Identical for identical configs (seeded), up to the
/// float-rounding caveat of multi-threaded reductions (docs/ARCHITECTURE.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpiralsReport {
    /// The configuration that produced it.
    pub config: SpiralsConfig,
    /// Monte-Carlo Bayes error of the generator, `E[1 − max_k p(k|x)]` (`data::bayes_error`).
    pub bayes_error: Estimate,
    /// Test errors of every model and of the Bayes classifier.
    pub errors: SpiralsErrors,
    /// OOD detection, ring vs test set.
    pub ood: SpiralsOod,
    /// Mean uncertainties on the test set and on the ring.
    pub uncertainty: SpiralsUncertainty,
    /// Uncertainty maps (when `config.grid_points > 0`).
    pub grid: Option<UncertaintyGrid>,
    /// Per-point uncertainties of the ensemble and the Dirichlet students, for histograms
    /// (not serialised: tens of thousands of values).
    #[serde(skip)]
    pub points: Vec<PointUncertainty>,
}

/// Per-point TU and MI of one model on the test set and on the ring.
#[derive(Debug, Clone, PartialEq)]
pub struct PointUncertainty {
    /// `ensemble`, `end2`, `end2_aux`, `proxy_end2`.
    pub model: &'static str,
    /// Total uncertainty on the test points.
    pub test_total: Vec<f64>,
    /// Total uncertainty on the ring.
    pub ring_total: Vec<f64>,
    /// Knowledge uncertainty (MI) on the test points.
    pub test_knowledge: Vec<f64>,
    /// Knowledge uncertainty (MI) on the ring.
    pub ring_knowledge: Vec<f64>,
}

// ---------------------------------------------------------------------------------------
// Models

/// The trained models of one run (eval-mode, on the plain device).
#[derive(Debug)]
pub struct SpiralsModels {
    /// The M ensemble members.
    pub ensemble: MlpStack,
    /// EnD² student distilled on the training inputs.
    pub end2: Mlp,
    /// EnD² student distilled on training inputs ∪ auxiliary points.
    pub end2_aux: Mlp,
    /// Independent single network.
    pub single: Mlp,
    /// KD student (training inputs).
    pub kd: Mlp,
    /// AE-KD student (training inputs).
    pub ae_kd: Mlp,
    /// Proxy-EnD² student (training inputs).
    pub proxy_end2: Mlp,
    /// How the Proxy-EnD² student's logits become concentrations (its model offset).
    pub proxy_head: DirichletHead,
    /// The LatentBE family.
    pub latent_be: BeModels,
}

/// The data sets of one run (deterministic in the config).
#[derive(Debug, Clone)]
pub struct SpiralsData {
    /// Training set.
    pub train: Spirals,
    /// Independent test set.
    pub test: Spirals,
    /// OOD ring points.
    pub ring: Vec<[f64; 2]>,
    /// Auxiliary points (uniform in the box).
    pub aux: Vec<[f64; 2]>,
}

impl SpiralsData {
    /// Generate the sets of `cfg` (each from its own seed derived from `cfg.seed`).
    pub fn generate(cfg: &SpiralsConfig) -> Self {
        let mut rng = model_rng(cfg.seed, TAG_AUX);
        let h = cfg.aux_half_width;
        SpiralsData {
            train: data::generate_spirals(cfg.n_train, cfg.noise, sub_seed(cfg.seed, TAG_TRAIN)),
            test: data::generate_spirals(cfg.n_test, cfg.noise, sub_seed(cfg.seed, TAG_TEST)),
            ring: data::generate_ood_ring(cfg.n_ood, cfg.ood_radius, cfg.ood_radial_std, sub_seed(cfg.seed, TAG_RING)),
            aux: (0..cfg.n_aux).map(|_| [rng.random_range(-h..h), rng.random_range(-h..h)]).collect(),
        }
    }
}

impl SpiralsModels {
    /// Train the ensemble, the single network and both EnD² students on `data`.
    pub fn train(cfg: &SpiralsConfig, data: &SpiralsData, device: &Device) -> Result<Self, SpiralsError> {
        cfg.validate()?;
        tracing::info!(members = cfg.members, epochs = cfg.epochs, n_train = data.train.len(), "spirals: training the ensemble");
        let ensemble = train_ensemble(cfg, &data.train, device)?;
        tracing::info!("spirals: training the single network");
        let single = train_mlp(cfg, &data.train.points, Objective::CrossEntropy(&data.train.labels), TAG_SINGLE, "single", device)?;

        let m = cfg.members;
        let teacher = stack_logits(&ensemble, &data.train.points, device);
        tracing::info!(epochs = cfg.student_epochs, "spirals: distilling EnD²");
        let distil = |loss: StudentLoss, tag: u64, name: &str| {
            tracing::info!(epochs = cfg.student_epochs, student = name, "spirals: distilling");
            let objective = Objective::Distil { teacher_logits: &teacher, members: m, loss, labels: &data.train.labels };
            train_mlp(cfg, &data.train.points, objective, tag, name, device)
        };
        let end2 = distil(StudentLoss::End2, TAG_END2, "end2")?;
        let kd = distil(StudentLoss::Kd, TAG_KD, "kd")?;
        let ae_kd = distil(StudentLoss::AeKd, TAG_AE_KD, "ae_kd")?;
        let proxy_end2 = distil(StudentLoss::ProxyEnd2, TAG_PROXY, "proxy_end2")?;

        let mut inputs = data.train.points.clone();
        inputs.extend_from_slice(&data.aux);
        let teacher_aux = stack_logits(&ensemble, &inputs, device);
        tracing::info!(n_aux = data.aux.len(), "spirals: distilling EnD² with auxiliary data");
        let end2_aux = train_mlp(
            cfg,
            &inputs,
            Objective::Distil { teacher_logits: &teacher_aux, members: m, loss: StudentLoss::End2, labels: &[] },
            TAG_END2_AUX,
            "end2_aux",
            device,
        )?;
        let latent_be = batch_ensemble::train_be_models(cfg, &data.train.points, &data.train.labels, &ensemble, device)?;
        let proxy_head = DirichletHead::exp_plus(cfg.proxy_model_offset);
        Ok(SpiralsModels { ensemble, end2, end2_aux, single, kd, ae_kd, proxy_end2, proxy_head, latent_be })
    }

    fn outputs(&self, points: &[[f64; 2]], device: &Device) -> Result<Outputs, SpiralsError> {
        let n = points.len();
        let m = self.ensemble.members();
        let z = stack_logits(&self.ensemble, points, device);
        let members = z
            .chunks_exact(n * CLASSES)
            .map(|c| Predictions::new(softmax_rows(c), n, CLASSES))
            .collect::<Result<Vec<_>, _>>()?;
        debug_assert_eq!(members.len(), m);
        let ensemble = Predictions::mean(&members)?;
        Ok(Outputs {
            members,
            ensemble,
            end2: dirichlet_outputs(DirichletHead::EXP, &mlp_logits(&self.end2, points, device), n)?,
            end2_aux: dirichlet_outputs(DirichletHead::EXP, &mlp_logits(&self.end2_aux, points, device), n)?,
            single: Predictions::new(softmax_rows(&mlp_logits(&self.single, points, device)), n, CLASSES)?,
            kd: Predictions::new(softmax_rows(&mlp_logits(&self.kd, points, device)), n, CLASSES)?,
            ae_kd: Predictions::new(softmax_rows(&mlp_logits(&self.ae_kd, points, device)), n, CLASSES)?,
            proxy_end2: dirichlet_outputs(self.proxy_head, &mlp_logits(&self.proxy_end2, points, device), n)?,
            be: Predictions::mean(&be_member_predictions(&self.latent_be.be, points, device)?)?,
            kd_latentbe: softmax_predictions(&self.latent_be.kd_latentbe, points, device)?,
            ods: softmax_predictions(&self.latent_be.ods, points, device)?,
            conf_ods: softmax_predictions(&self.latent_be.conf_ods, points, device)?,
            tdiv_sdiv: softmax_predictions(&self.latent_be.tdiv_sdiv, points, device)?,
        })
    }

    /// TU / DU / MI of the ensemble and both students on a `points × points` grid over
    /// `[-extent, extent]²` (for the uncertainty maps).
    pub fn uncertainty_grid(&self, extent: f64, points: usize, device: &Device) -> Result<UncertaintyGrid, SpiralsError> {
        if points < 2 || !(extent.is_finite() && extent > 0.0) {
            return Err(SpiralsError::Config(format!("grid: points = {points} (≥ 2), extent = {extent} (> 0)")));
        }
        let coords: Vec<f64> = (0..points).map(|i| -extent + 2.0 * extent * i as f64 / (points - 1) as f64).collect();
        let pts: Vec<[f64; 2]> = coords.iter().flat_map(|&y| coords.iter().map(move |&x| [x, y])).collect();
        let o = self.outputs(&pts, device)?;
        let maps = |s: Scores| GridMaps {
            total: s.u.total.iter().map(|&v| v as f32).collect(),
            data: s.u.data.iter().map(|&v| v as f32).collect(),
            knowledge: s.u.knowledge.iter().map(|&v| v as f32).collect(),
        };
        Ok(UncertaintyGrid {
            coords,
            ensemble: maps(ensemble_scores(&o)?),
            end2: maps(dirichlet_scores(&o.end2)?),
            end2_aux: maps(dirichlet_scores(&o.end2_aux)?),
        })
    }
}

fn error(p: &Predictions, labels: &[u32]) -> Result<f64, SpiralsError> {
    Ok(1.0 - metrics::accuracy(p, labels)?)
}

fn ood_scores(test: &Scores, ring: &Scores) -> Result<OodScores, SpiralsError> {
    Ok(OodScores {
        confidence: metrics::ood_detection(&test.confidence, &ring.confidence)?,
        total: metrics::ood_detection(&test.u.total, &ring.u.total)?,
        data: metrics::ood_detection(&test.u.data, &ring.u.data)?,
        knowledge: metrics::ood_detection(&test.u.knowledge, &ring.u.knowledge)?,
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn mean_uncertainty(s: &Scores) -> MeanUncertainty {
    MeanUncertainty { total: mean(&s.u.total), data: mean(&s.u.data), knowledge: mean(&s.u.knowledge) }
}

/// Score trained models on the data of `cfg` (test errors, OOD detection, mean uncertainties
/// and, when `cfg.grid_points > 0`, the uncertainty maps).
pub fn evaluate_spirals(
    cfg: &SpiralsConfig,
    models: &SpiralsModels,
    data: &SpiralsData,
    device: &Device,
) -> Result<SpiralsReport, SpiralsError> {
    tracing::info!(n_test = data.test.len(), n_ood = data.ring.len(), "spirals: evaluating");
    let labels: Vec<u32> = data.test.labels.iter().map(|&l| l as u32).collect();
    let test = models.outputs(&data.test.points, device)?;
    let ring = models.outputs(&data.ring, device)?;

    let posterior = BayesPosterior::new(cfg.noise)?;
    let bayes_wrong = data.test.points.iter().zip(&data.test.labels).filter(|(x, y)| posterior.predict(**x) != **y).count();
    let member_errors = test.members.iter().map(|p| error(p, &labels)).collect::<Result<Vec<_>, _>>()?;
    let errors = SpiralsErrors {
        ensemble: error(&test.ensemble, &labels)?,
        end2: error(&test.end2.1, &labels)?,
        end2_aux: error(&test.end2_aux.1, &labels)?,
        single: error(&test.single, &labels)?,
        kd: error(&test.kd, &labels)?,
        ae_kd: error(&test.ae_kd, &labels)?,
        proxy_end2: error(&test.proxy_end2.1, &labels)?,
        be: error(&test.be, &labels)?,
        kd_latentbe: error(&test.kd_latentbe, &labels)?,
        ods: error(&test.ods, &labels)?,
        conf_ods: error(&test.conf_ods, &labels)?,
        tdiv_sdiv: error(&test.tdiv_sdiv, &labels)?,
        member_mean: mean(&member_errors),
        bayes_test: bayes_wrong as f64 / labels.len() as f64,
    };
    let bayes_error = data::bayes_error(cfg.noise, cfg.n_bayes, sub_seed(cfg.seed, TAG_BAYES))?;

    let (te, re) = (ensemble_scores(&test)?, ensemble_scores(&ring)?);
    let (t2, r2) = (dirichlet_scores(&test.end2)?, dirichlet_scores(&ring.end2)?);
    let (ta, ra) = (dirichlet_scores(&test.end2_aux)?, dirichlet_scores(&ring.end2_aux)?);
    let (tp, rp) = (dirichlet_scores(&test.proxy_end2)?, dirichlet_scores(&ring.proxy_end2)?);
    let ood = SpiralsOod {
        ensemble: ood_scores(&te, &re)?,
        end2: ood_scores(&t2, &r2)?,
        end2_aux: ood_scores(&ta, &ra)?,
        proxy_end2: ood_scores(&tp, &rp)?,
    };
    let io = |t: &Scores, r: &Scores| InOut { test: mean_uncertainty(t), ring: mean_uncertainty(r) };
    let uncertainty =
        SpiralsUncertainty { ensemble: io(&te, &re), end2: io(&t2, &r2), end2_aux: io(&ta, &ra), proxy_end2: io(&tp, &rp) };
    let grid = if cfg.grid_points > 0 {
        tracing::info!(points = cfg.grid_points, extent = cfg.grid_extent, "spirals: uncertainty maps");
        Some(models.uncertainty_grid(cfg.grid_extent, cfg.grid_points, device)?)
    } else {
        None
    };
    tracing::info!(
        ensemble = errors.ensemble,
        end2 = errors.end2,
        end2_aux = errors.end2_aux,
        single = errors.single,
        bayes = bayes_error.mean,
        "spirals: test errors"
    );
    let points = [("ensemble", &te, &re), ("end2", &t2, &r2), ("end2_aux", &ta, &ra), ("proxy_end2", &tp, &rp)]
        .into_iter()
        .map(|(model, t, r)| PointUncertainty {
            model,
            test_total: t.u.total.clone(),
            ring_total: r.u.total.clone(),
            test_knowledge: t.u.knowledge.clone(),
            ring_knowledge: r.u.knowledge.clone(),
        })
        .collect();
    Ok(SpiralsReport { config: cfg.clone(), bayes_error, errors, ood, uncertainty, grid, points })
}

/// The whole experiment: generate the data, train every model, evaluate.
pub fn run_spirals(cfg: &SpiralsConfig, device: &Device) -> Result<SpiralsReport, SpiralsError> {
    cfg.validate()?;
    let data = SpiralsData::generate(cfg);
    let models = SpiralsModels::train(cfg, &data, device)?;
    evaluate_spirals(cfg, &models, &data, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_members_equal_plain_mlps() {
        let device = Device::flex();
        let cfg = MlpConfig::new(vec![5, 4], 3).with_input_scale(10.0);
        let mut rng = StdRng::seed_from_u64(1);
        let members: Vec<_> = (0..3).map(|_| draw_weights(&cfg, &mut rng)).collect();
        let stack = MlpStack::from_members(&cfg, &members, &device).unwrap();
        let pts = [[3.0, -7.0], [0.5, 0.25], [-20.0, 11.0], [0.0, 0.0]];
        let x = data::spirals::points_tensor(&pts, &device);
        let z = host(stack.forward_shared(x.clone()));
        for (m, w) in members.iter().enumerate() {
            let plain = host(cfg.init_with_weights(w, &device).unwrap().forward(x.clone()));
            let extracted = host(stack.member(m).forward(x.clone()));
            for (i, (&a, &b)) in plain.iter().zip(&extracted).enumerate() {
                let s = z[m * 12 + i];
                assert!((a - s).abs() < 1e-5 && (a - b).abs() < 1e-6, "member {m} [{i}]: {a} {b} {s}");
            }
        }
    }

    #[test]
    fn config_validation_names_the_field() {
        let e = SpiralsConfig::new().with_members(0).validate().unwrap_err().to_string();
        assert!(e.contains("members"), "{e}");
        let e = SpiralsConfig::new().with_smoothing(1.0).validate().unwrap_err().to_string();
        assert!(e.contains("smoothing"), "{e}");
        SpiralsConfig::new().validate().unwrap();
    }
}
