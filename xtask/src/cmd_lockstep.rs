//! `xtask parity-lockstep`: the training-efficiency parity check of issue 17 §2 without the
//! random streams. It trains a teacher recipe for a few epochs exactly as `xtask train` does
//! (the same `SupervisedTrainer`, optimiser, schedule and objective), but over the training
//! images in file order and without augmentation, and writes what a second framework needs
//! to take the identical steps:
//!
//! ```text
//! <out>/
//!   lockstep.json        recipe, steps per epoch, the loss and learning rate of every step
//!   model.json           backbone config (input statistics filled in)
//!   init.safetensors     the initial weights (seeded as the recipe's seed)
//!   epoch-<E>.safetensors  the weights and BatchNorm statistics after epoch E
//!   step-<S>.safetensors   the same after global step S (1-based), for S ≤ --save-steps
//!                          (steps that end an epoch are its epoch file)
//! ```
//!
//! `benches/pytorch_parity.py --lockstep <out>` loads `init.safetensors`, takes the same
//! steps in PyTorch and compares losses and weights step by step: identical mechanics agree
//! to float rounding, a different update rule or BatchNorm shows from the first step on
//! (`benches/README-parity.md`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use data::{Loader, LoaderConfig};
use distill::train::{EpochState, SupervisedTrainer, TrainObserver};
use serde::Serialize;

use crate::cmd_train::RecipeArgs;
use crate::fsx::{write_atomic, write_json};

/// Arguments of `xtask parity-lockstep`.
#[derive(clap::Args, Debug)]
pub struct LockstepArgs {
    /// The teacher experiment (no [distill] section); the seed sets the initialisation only,
    /// the order is fixed.
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Epochs to train (of the recipe's schedule: warm-up and cosine as for the full run).
    #[arg(long, default_value_t = 2, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub epochs: usize,
    /// Also save the weights after each of the first N steps (a single step's update is
    /// where a different update rule shows before rounding differences have grown).
    #[arg(long, default_value_t = 0)]
    pub save_steps: usize,
    /// Output folder (must not exist).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Serialize)]
struct Step {
    epoch: usize,
    step: usize,
    loss: f64,
    lr: f64,
}

#[derive(Serialize)]
struct Record<'a> {
    schema: &'static str,
    config: String,
    profile: Option<&'a str>,
    seed: u64,
    train: [usize; 2],
    batch_size: usize,
    steps_per_epoch: usize,
    epochs_trained: usize,
    optim: &'a crate::experiment::OptimSection,
    backend: String,
    steps: Vec<Step>,
}

struct Observer<'a> {
    out: &'a std::path::Path,
    steps: Vec<Step>,
    save_steps: usize,
    steps_per_epoch: usize,
}

impl TrainObserver for Observer<'_> {
    fn on_step(&mut self, epoch: usize, step: usize, _images: usize, loss: f64, lr: f64) {
        self.steps.push(Step { epoch, step, loss, lr });
    }

    fn on_epoch_end(&mut self, state: &EpochState<'_>) -> Result<(), String> {
        let name = if state.step == 0 {
            format!("epoch-{}.safetensors", state.epoch)
        } else {
            format!("step-{}.safetensors", state.epoch * self.steps_per_epoch + state.step)
        };
        let bytes = ensembles::to_safetensors_bytes(&state.model.valid()).map_err(|e| e.to_string())?;
        write_atomic(&self.out.join(name), &bytes).map_err(|e| format!("{e:#}"))
    }

    /// Stopping after a step is how `fit` hands out mid-epoch weights: it calls
    /// `on_epoch_end` with `step > 0`, returns `Interrupted`, and the next `fit` call goes
    /// on from the following step.
    fn stop_requested(&self) -> bool {
        self.steps.len() <= self.save_steps
    }
}

/// `xtask parity-lockstep`.
pub fn run(args: LockstepArgs) -> Result<()> {
    let mut exp = crate::cmd_train::load_experiment(&args.recipe)?;
    if exp.distill.is_some() {
        bail!("{} has a [distill] section: the lock-step check trains a teacher recipe", args.recipe.config.display());
    }
    if let Some(seed) = args.recipe.seed {
        exp.seed = seed;
    }
    if args.out.exists() {
        bail!("{} exists; pass a new --out", args.out.display());
    }
    let optim = exp.optim.to_config();
    if args.epochs > optim.epochs {
        bail!("--epochs {} is more than the recipe's {} epochs", args.epochs, optim.epochs);
    }
    let (splits, cifar) = crate::cmd_train::load_data(&exp, args.recipe.data_dir.as_deref())?;
    let stats = data::split_stats(&splits.train);
    let backbone = exp
        .model
        .backbone(cifar.num_classes())?
        .with_input_mean(stats.mean.map(|v| v as f32))
        .with_input_std(stats.std.map(|v| v as f32));
    let device = args.recipe.backend.device()?;
    let train = Arc::new(splits.train);
    // File order, no augmentation: the only difference from `xtask train`'s loader.
    let loader = Loader::new(
        train.clone(),
        LoaderConfig { batch_size: optim.batch_size, seed: exp.seed, shuffle: false, augment: false, drop_last: true },
    )?;
    let steps = loader.num_batches();
    if steps == 0 {
        bail!("training split of {} images is smaller than one batch of {}", train.len(), optim.batch_size);
    }
    device.seed(exp.seed);
    let ad = device.clone().autodiff();
    let model = backbone.init(&ad)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    write_json(&args.out.join("model.json"), &backbone)?;
    write_atomic(&args.out.join("init.safetensors"), &ensembles::to_safetensors_bytes(&model.valid())?)?;
    let mut trainer = SupervisedTrainer::new(optim.clone(), model)?.with_epoch_budget(Some(args.epochs));
    let mut observer = Observer { out: &args.out, steps: Vec::new(), save_steps: args.save_steps, steps_per_epoch: steps };
    let ad_batches = ad.clone();
    loop {
        let done = trainer.fit(
            |epoch| loader.epoch(epoch as u64).map(|b| b.into_tensors(&ad_batches)),
            steps,
            distill::train::cross_entropy_objective,
            // Validation plays no part in the steps; the full recipe's selection is not compared.
            |_| 0.0,
            &mut observer,
        );
        match done {
            Err(distill::DistillError::Interrupted { .. }) => continue,
            other => {
                other?;
                break;
            }
        }
    }
    let record = Record {
        schema: "distillery-lockstep/1",
        config: args.recipe.config.display().to_string(),
        profile: args.recipe.profile.as_deref(),
        seed: exp.seed,
        train: exp.data.train,
        batch_size: optim.batch_size,
        steps_per_epoch: steps,
        epochs_trained: trainer.epoch(),
        optim: &exp.optim,
        backend: format!("{:?}", args.recipe.backend),
        steps: observer.steps,
    };
    write_json(&args.out.join("lockstep.json"), &record)?;
    println!("{}", args.out.display());
    Ok(())
}
