//! SGD with Nesterov momentum and weight decay as in the LatentBE reference code
//! (PROTOCOLS.md, METHODS.md §1): L2 weight decay on every parameter except BatchEnsemble
//! fast weights, which instead get `wd * 0.5 * Σ (1 - e)² / M` added to the loss and their
//! whole gradient scaled by M.

use burn::config::Config;
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::Tensor;
use burn::tensor::Gradients;
use ensembles::Backbone;

use super::schedule::WarmupCosine;
use crate::DistillError;

/// Optimiser and schedule (PROTOCOLS.md: lr 0.1, Nesterov 0.9, wd 5e-4, 5 warm-up epochs,
/// cosine to 0, batch 128).
#[derive(Config, Debug)]
pub struct OptimConfig {
    /// Peak learning rate.
    #[config(default = 0.1)]
    pub lr: f64,
    /// Momentum factor (no dampening).
    #[config(default = 0.9)]
    pub momentum: f64,
    /// Nesterov momentum.
    #[config(default = true)]
    pub nesterov: bool,
    /// L2 weight decay coefficient (coupled, as an L2 term in the loss).
    #[config(default = 5e-4)]
    pub weight_decay: f64,
    /// Linear warm-up length in epochs.
    #[config(default = 5)]
    pub warmup_epochs: usize,
    /// Training length in epochs.
    #[config(default = 200)]
    pub epochs: usize,
    /// Mini-batch size B (a BatchEnsemble sees the batch tiled to M*B).
    #[config(default = 128)]
    pub batch_size: usize,
    /// Clip the global L2 norm of the loss gradient to this value before the step, as
    /// `torch.nn.utils.clip_grad_norm_` (the EnD² reference trainer of
    /// `KaosEngineer/PriorNetworks` clips at 10.0). `None`: no clipping (LatentBE recipe).
    #[config(default = "None")]
    pub clip_grad_norm: Option<f64>,
}

impl OptimConfig {
    /// Check the values; the error names the field.
    pub fn validate(&self) -> Result<(), DistillError> {
        let bad = |f: &str, v: String| Err(DistillError::Config(format!("{f} = {v}")));
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", self.lr.to_string());
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", self.momentum.to_string());
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad("weight_decay", self.weight_decay.to_string());
        }
        if self.epochs == 0 {
            return bad("epochs", "0".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size", "0".into());
        }
        if let Some(c) = self.clip_grad_norm
            && !(c > 0.0 && c.is_finite())
        {
            return bad("clip_grad_norm", c.to_string());
        }
        Ok(())
    }

    /// The per-step schedule for `steps_per_epoch` steps per epoch.
    pub fn schedule(&self, steps_per_epoch: usize) -> WarmupCosine {
        WarmupCosine {
            base_lr: self.lr,
            warmup_steps: self.warmup_epochs * steps_per_epoch,
            total_steps: self.epochs * steps_per_epoch,
        }
    }

    fn sgd(&self, weight_decay: f64) -> SgdConfig {
        let momentum = MomentumConfig::new().with_momentum(self.momentum).with_dampening(0.0).with_nesterov(self.nesterov);
        let sgd = SgdConfig::new().with_momentum(Some(momentum));
        if weight_decay > 0.0 { sgd.with_weight_decay(Some(WeightDecayConfig::new(weight_decay as f32))) } else { sgd }
    }
}

/// The optimiser for one backbone (plain or BatchEnsemble).
pub struct Optimizer {
    inner: ModuleOptimizer,
    fast_ids: Vec<ParamId>,
    members: usize,
    weight_decay: f64,
    clip_grad_norm: Option<f64>,
}

impl Optimizer {
    /// Build for `model`: fast weights (if any) get their own group without coupled decay.
    pub fn new(config: &OptimConfig, model: &Backbone) -> Self {
        let fast_ids = model.fast_weight_ids();
        let mut inner = config.sgd(config.weight_decay).init();
        if !fast_ids.is_empty() {
            inner = inner.with_group(burn::module::ParamGroup::from_ids(fast_ids.clone()), config.sgd(0.0).build(), None);
        }
        Self { inner, fast_ids, members: model.members, weight_decay: config.weight_decay, clip_grad_norm: config.clip_grad_norm }
    }

    /// The regulariser to add to the loss: `wd * 0.5 * Σ (1 - e)² / M` over fast weights.
    pub fn regulariser(&self, model: &Backbone) -> Option<Tensor<1>> {
        model.fast_weight_penalty().map(|p| p * self.weight_decay)
    }

    /// One SGD step from the loss gradients: optional global-norm clipping, then
    /// fast-weight gradients scaled by M, then SGD (coupled weight decay inside the step).
    pub fn step(&mut self, lr: f64, model: Backbone, grads: Gradients) -> Backbone {
        let mut grads = GradientsParams::from_grads(grads, &model);
        if let Some(max_norm) = self.clip_grad_norm {
            clip_global_norm(&mut grads, &model, max_norm);
        }
        for id in &self.fast_ids {
            if let Some(g) = grads.remove::<2>(*id) {
                grads.register(*id, g * self.members as f64);
            }
        }
        self.inner.step(lr, model, grads)
    }

    /// The optimiser state as burnpack bytes (for checkpoints).
    pub fn to_bytes(&self) -> Result<Vec<u8>, DistillError> {
        self.inner.into_bytes().map(|b| b.to_vec()).map_err(|e| DistillError::Config(format!("optimizer state: {e:?}")))
    }

    /// Restore state saved by [`Optimizer::to_bytes`].
    pub fn load_bytes(mut self, bytes: Vec<u8>) -> Result<Self, DistillError> {
        self.inner = self
            .inner
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| DistillError::Config(format!("optimizer state: {e:?}")))?;
        Ok(self)
    }
}


/// Scale every gradient by `min(1, max_norm / (‖g‖₂ + 1e-6))`, `‖g‖₂` the L2 norm of all
/// gradients of `model` concatenated (the formula of `torch.nn.utils.clip_grad_norm_`).
/// Returns the norm before clipping.
pub fn clip_global_norm<M: Module>(grads: &mut GradientsParams, model: &M, max_norm: f64) -> f64 {
    struct SquaredNorm<'a> {
        grads: &'a GradientsParams,
        sum: f64,
    }
    impl ModuleVisitor for SquaredNorm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                self.sum += g.powi_scalar(2).sum().into_scalar::<f32>() as f64;
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, g * self.factor);
            }
        }
    }
    let mut norm = SquaredNorm { grads, sum: 0.0 };
    model.visit(&mut norm);
    let total = norm.sum.sqrt();
    let factor = max_norm / (total + 1e-6);
    if factor < 1.0 {
        model.visit(&mut Scale { grads, factor });
    }
    total
}
