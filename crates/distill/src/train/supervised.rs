//! Supervised training of a backbone (a Deep Ensemble member, or a BatchEnsemble trained on
//! tiled inputs and labels as in the reference code) with model selection on validation.

use burn::module::Module;
use burn::tensor::{Int, Tensor};
use ensembles::{Backbone, tile};

use super::optim::{OptimConfig, Optimizer};
use super::selection::evaluation_epochs;
use crate::DistillError;
use crate::loss::cross_entropy;

/// Callbacks of a training loop (progress bars, logging and checkpoints live in the caller).
pub trait TrainObserver {
    /// After each optimisation step; `images` = un-tiled images in the batch.
    fn on_step(&mut self, _epoch: usize, _step: usize, _images: usize, _loss: f64, _lr: f64) {}
    /// After validation following 1-based `epoch`.
    fn on_validation(&mut self, _epoch: usize, _accuracy: f64, _is_best: bool) {}
    /// After every epoch, with the whole resumable state (checkpoint here); also mid-epoch,
    /// with `state.step > 0`, when [`stop_requested`](Self::stop_requested) stopped training.
    fn on_epoch_end(&mut self, _state: &EpochState<'_>) -> Result<(), String> {
        Ok(())
    }
    /// Polled after every step: `true` (e.g. on SIGTERM, Slurm's warning before it preempts a
    /// job) stops training at that step; the state is passed to `on_epoch_end` with
    /// `step > 0` and `fit` returns [`DistillError::Interrupted`].
    fn stop_requested(&self) -> bool {
        false
    }
}

/// The resumable state at an epoch boundary.
pub struct EpochState<'a> {
    /// Completed epochs.
    pub epoch: usize,
    /// Completed steps of the epoch in progress (0 at an epoch boundary).
    pub step: usize,
    /// Current weights (training device).
    pub model: &'a Backbone,
    /// Optimiser (momentum buffers).
    pub optimizer: &'a Optimizer,
    /// Best model so far by validation accuracy: (eval-mode model, epoch, accuracy).
    pub best: Option<(&'a Backbone, usize, f64)>,
}

/// Best-so-far model kept by model selection.
pub struct Best {
    /// Eval-mode copy of the model.
    pub model: Backbone,
    /// 1-based epoch after which it was validated.
    pub epoch: usize,
    /// Its validation accuracy.
    pub accuracy: f64,
}

/// Trains one backbone with cross-entropy; see the crate docs for the recipe.
pub struct SupervisedTrainer {
    config: OptimConfig,
    model: Backbone,
    optimizer: Optimizer,
    epoch: usize,
    /// Completed steps of epoch `epoch` (0-based index of the epoch in progress).
    step: usize,
    best: Option<Best>,
    stop_at: Option<usize>,
}

impl SupervisedTrainer {
    /// Start from `model` (built on an autodiff device).
    pub fn new(config: OptimConfig, model: Backbone) -> Result<Self, DistillError> {
        config.validate()?;
        let optimizer = Optimizer::new(&config, &model);
        Ok(Self { config, model, optimizer, epoch: 0, step: 0, best: None, stop_at: None })
    }

    /// Resume after `epoch` completed epochs and `step` completed steps of the next one
    /// (0 at an epoch boundary) with a saved optimiser state and best model. Mid-epoch, `fit`
    /// skips the epoch's first `step` batches: every batch and every random draw of a step
    /// is a function of (seed, epoch, step), so the resumed run is the uninterrupted one.
    pub fn resume(
        config: OptimConfig,
        model: Backbone,
        optimizer_state: Vec<u8>,
        (epoch, step): (usize, usize),
        best: Option<Best>,
    ) -> Result<Self, DistillError> {
        config.validate()?;
        let optimizer = Optimizer::new(&config, &model).load_bytes(optimizer_state)?;
        Ok(Self { config, model, optimizer, epoch, step, best, stop_at: None })
    }

    /// Completed steps of the epoch in progress (0 at an epoch boundary).
    pub fn step(&self) -> usize {
        self.step
    }

    /// Completed epochs.
    pub fn epoch(&self) -> usize {
        self.epoch
    }

    /// Train at most `epochs` more epochs in the next [`fit`](Self::fit) call, then return
    /// `None` with the state checkpointed (time-boxed sessions resume later).
    pub fn with_epoch_budget(mut self, epochs: Option<usize>) -> Self {
        self.stop_at = epochs.map(|e| self.epoch + e);
        self
    }

    /// Train until `config.epochs`. `batches(epoch)` yields the (augmented, shuffled) batches
    /// of 0-based `epoch` on the training device, `steps_per_epoch` of them; `objective`
    /// maps (model, images `[B,3,H,W]`, labels `[B]`, epoch, step) to the scalar loss (see
    /// [`cross_entropy_objective`] for teachers, [`crate::student::Distiller`] for
    /// students; the fast-weight regulariser is added here); `validate`
    /// returns the validation accuracy of an eval-mode model. Returns the selected model, or
    /// `None` when the epoch budget ran out first.
    pub fn fit<I>(
        &mut self,
        mut batches: impl FnMut(usize) -> I,
        steps_per_epoch: usize,
        mut objective: impl FnMut(&Backbone, Tensor<4>, Tensor<1, Int>, usize, usize) -> Result<Tensor<1>, DistillError>,
        mut validate: impl FnMut(&Backbone) -> f64,
        observer: &mut dyn TrainObserver,
    ) -> Result<Option<&Best>, DistillError>
    where
        I: Iterator<Item = (Tensor<4>, Tensor<1, Int>)>,
    {
        let schedule = self.config.schedule(steps_per_epoch);
        let eval_at = evaluation_epochs(self.config.epochs);
        while self.epoch < self.config.epochs {
            if self.stop_at.is_some_and(|s| self.epoch >= s) {
                tracing::info!(epoch = self.epoch, "epoch budget used; stopping with a checkpoint");
                return Ok(None);
            }
            let epoch = self.epoch;
            let skip = std::mem::take(&mut self.step);
            for (step, (x, y)) in batches(epoch).enumerate().skip(skip) {
                let lr = schedule.lr(epoch * steps_per_epoch + step);
                let images = x.dims()[0];
                let objective_loss = objective(&self.model, x, y, epoch, step)?;
                let reg = self.optimizer.regulariser(&self.model);
                let loss = match &reg {
                    Some(r) => objective_loss.clone() + r.clone(),
                    None => objective_loss.clone(),
                };
                let value: f64 = loss.clone().into_scalar::<f32>() as f64;
                tracing::debug!(epoch, step, loss = value, lr, "step");
                if !value.is_finite() {
                    // Name the term: only now pay for reading the parts separately.
                    let objective_value = objective_loss.into_scalar::<f32>() as f64;
                    let term = if objective_value.is_finite() && reg.is_some() { "fast-weight regulariser" } else { "objective" };
                    return Err(DistillError::Diverged { loss: value, term, epoch: epoch + 1, step, lr, last_good: self.epoch });
                }
                let grads = loss.backward();
                let model = self.model.clone();
                self.model = self.optimizer.step(lr, model, grads);
                observer.on_step(epoch, step, images, value, lr);
                if observer.stop_requested() && step + 1 < steps_per_epoch {
                    let _ = self.model.valid();
                    let state = EpochState {
                        epoch,
                        step: step + 1,
                        model: &self.model,
                        optimizer: &self.optimizer,
                        best: self.best.as_ref().map(|b| (&b.model, b.epoch, b.accuracy)),
                    };
                    observer.on_epoch_end(&state).map_err(DistillError::Observer)?;
                    self.step = step + 1;
                    return Err(DistillError::Interrupted { epoch: epoch + 1, step: step + 1 });
                }
            }
            self.epoch += 1;
            let last_lr = schedule.lr((epoch + 1) * steps_per_epoch - 1);
            let diverged = |what: String| DistillError::NonFiniteModel { what, epoch: epoch + 1, lr: last_lr, last_good: epoch };
            let bad = non_finite_parameters(&self.model);
            if bad > 0 {
                return Err(diverged(format!("{bad} parameter tensor(s) hold non-finite values")));
            }
            if eval_at.contains(&self.epoch) {
                let eval_model = self.model.valid();
                let accuracy = validate(&eval_model);
                if !accuracy.is_finite() {
                    return Err(diverged("the validation accuracy is not finite (the model's outputs are not, or validation failed)".into()));
                }
                let is_best = self.best.as_ref().is_none_or(|b| accuracy > b.accuracy);
                tracing::info!(epoch = self.epoch, accuracy, is_best, "validation");
                if is_best {
                    self.best = Some(Best { model: eval_model, epoch: self.epoch, accuracy });
                }
                observer.on_validation(self.epoch, accuracy, is_best);
            }
            // `valid()` folds pending per-thread BatchNorm running-statistics updates into
            // the shared state, so the checkpoint below holds the statistics of every step.
            let _ = self.model.valid();
            let state = EpochState {
                epoch: self.epoch,
                step: 0,
                model: &self.model,
                optimizer: &self.optimizer,
                best: self.best.as_ref().map(|b| (&b.model, b.epoch, b.accuracy)),
            };
            observer.on_epoch_end(&state).map_err(DistillError::Observer)?;
            if observer.stop_requested() && self.epoch < self.config.epochs {
                return Err(DistillError::Interrupted { epoch: self.epoch + 1, step: 0 });
            }
        }
        self.best.as_ref().map(Some).ok_or_else(|| DistillError::Config("no validation epoch ran".into()))
    }
}

/// How many float parameter tensors of `model` hold a NaN or an infinity (their sum is not
/// finite; a finite tensor whose sum overflows f32 counts too, as weights near 1e38 have
/// diverged as surely). One reduction per tensor: cheap once an epoch.
pub fn non_finite_parameters<M: Module>(model: &M) -> usize {
    struct Count(usize);
    impl burn::module::ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            if !(param.val().sum().into_scalar::<f32>()).is_finite() {
                self.0 += 1;
            }
        }
    }
    let mut c = Count(0);
    model.visit(&mut c);
    c.0
}

/// The supervised objective: cross-entropy of every member on the tiled batch and labels
/// (a plain network is the M = 1 case), as the reference code trains BatchEnsembles.
pub fn cross_entropy_objective(
    model: &Backbone,
    x: Tensor<4>,
    y: Tensor<1, Int>,
    _epoch: usize,
    _step: usize,
) -> Result<Tensor<1>, DistillError> {
    let members = model.members;
    Ok(cross_entropy(model.forward(tile(x, members)), tile(y, members)))
}

/// Ensemble probabilities (mean over members) of an eval-mode model over `batches`,
/// row-major `[N, K]` on the host.
pub fn predict_probs(model: &Backbone, batches: impl Iterator<Item = Tensor<4>>) -> Vec<f32> {
    let mut out = Vec::new();
    for x in batches {
        let p = model.predict_probs(x);
        out.extend(p.into_data().try_into_vec::<f32>().expect("f32 probabilities"));
    }
    out
}
