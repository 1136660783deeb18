//! `xtask train --config experiments/…toml`: train one network (a Deep Ensemble member or a
//! BatchEnsemble) with the protocol of PROTOCOLS.md, checkpointing every epoch, resuming an
//! interrupted run, and writing the finished run directory atomically:
//!
//! ```text
//! runs/<name>/seed-<seed>/
//!   experiment.toml   resolved experiment (CLI overrides applied)
//!   model.json        backbone config (input statistics filled in) to rebuild the model
//!   model.safetensors the selected (best validation accuracy) model
//!   {val,test}_probs.npy  [N, K] f32 ensemble-mean probabilities of the selected model
//!   {val,test}_labels.npy [N] i64
//!   metrics.json      test metrics, calibration, selection, throughput, peak memory
//! ```
//! While training, everything lives in `seed-<seed>.partial/` (checkpoints `ckpt-<epoch>/`
//! committed by `state.json`); the final rename makes the run appear whole or not at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use data::{ImageSet, Loader, LoaderConfig};
use distill::train::{Best, EpochState, SupervisedTrainer, TrainObserver, predict_probs};
use ensembles::{Backbone, BackboneConfig};
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::experiment::TrainExperiment;
use crate::fsx::{peak_rss_bytes, repo_root, write_atomic, write_json};
use crate::npy;
use crate::progress::Progress;

/// What every command that trains from an experiment file takes: the file, its profile,
/// the seed, the backend and the data.
#[derive(clap::Args, Debug, Clone)]
pub struct RecipeArgs {
    /// Experiment file (TOML).
    #[arg(long)]
    pub config: PathBuf,
    /// Apply the overrides of `profiles/<PROFILE>.toml` next to the experiment file
    /// (`smoke`, `cpu`; `paper` is the files as written).
    #[arg(long)]
    pub profile: Option<String>,
    /// Override the experiment's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Burn backend to run on.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    pub backend: Backend,
    /// Data root (else $DISTILLERY_DATA, else datasets/ in the repository).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Arguments of `xtask train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Run directory (default runs/<name>/seed-<seed>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Train at most this many epochs in this invocation, then exit with a checkpoint that
    /// the next invocation resumes from (for time-boxed sessions).
    #[arg(long, value_name = "EPOCHS", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub stop_after: Option<usize>,
    /// If another process trains this run (holds its lock), wait for it to finish instead of
    /// failing.
    #[arg(long)]
    pub wait: bool,
    /// Discard an interrupted run (`<out>.partial`) and train from scratch: needed when its
    /// recorded experiment differs from this one, or none of its checkpoints is valid.
    #[arg(long)]
    pub restart: bool,
}

/// Arguments of `xtask distill`.
#[derive(clap::Args, Debug)]
pub struct DistillArgs {
    /// Run directories of the teachers (finished `xtask train` runs, one per member).
    #[arg(long, num_args = 1.., required = true)]
    pub teachers: Vec<PathBuf>,
    #[command(flatten)]
    pub run: TrainArgs,
}

/// Resumable progress, committed after each epoch's checkpoint files are in place.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    epoch: usize,
    /// Completed steps of epoch `epoch + 1` (a mid-epoch checkpoint, written on SIGTERM);
    /// 0 at an epoch boundary.
    #[serde(default, skip_serializing_if = "is_zero")]
    step: usize,
    dir: String,
    best_epoch: Option<usize>,
    best_accuracy: Option<f64>,
    images_per_second: f64,
    /// SHA-256 of each file of the checkpoint folder, recorded when it was committed and
    /// verified before it is loaded. Empty in checkpoints written before session 13
    /// (resumed without verification, with a warning).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    sha256: BTreeMap<String, String>,
    /// The checkpoint before this one (kept on disk, without its own `previous`): resumed
    /// from, with a warning, when this one fails verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<Box<CheckpointState>>,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// The folder name of the checkpoint after `epoch` epochs and `step` more steps.
fn checkpoint_dir(epoch: usize, step: usize) -> String {
    if step == 0 { format!("ckpt-{epoch:04}") } else { format!("ckpt-{epoch:04}-step-{step:05}") }
}

impl CheckpointState {
    /// Check the state against the run (epoch range, best epoch) and its folder's files
    /// against the recorded checksums.
    fn verify(&self, partial: &Path, epochs: usize, steps_per_epoch: usize) -> Result<()> {
        if self.step == 0 && (self.epoch == 0 || self.epoch > epochs) {
            bail!("epoch {} is outside 1..={epochs}, the run's epochs", self.epoch);
        }
        if self.step > 0 && (self.epoch >= epochs || self.step >= steps_per_epoch) {
            bail!("epoch {} step {} is outside the run's {epochs} epochs of {steps_per_epoch} steps", self.epoch, self.step);
        }
        if self.best_epoch.is_some_and(|b| b == 0 || b > self.epoch) {
            bail!("best_epoch {:?} is outside 1..={}", self.best_epoch, self.epoch);
        }
        if self.best_epoch.is_some() != self.best_accuracy.is_some() {
            bail!("best_epoch and best_accuracy must both be set or both absent");
        }
        if self.dir != checkpoint_dir(self.epoch, self.step) {
            bail!("checkpoint folder {:?} does not match epoch {} step {}", self.dir, self.epoch, self.step);
        }
        let ck = partial.join(&self.dir);
        let mut need = vec!["model.bpk", "optimizer.bpk"];
        if self.best_epoch.is_some() {
            need.push("best.safetensors");
        }
        for f in need {
            let path = ck.join(f);
            if !path.is_file() {
                bail!("{} is missing", path.display());
            }
            match self.sha256.get(f) {
                Some(want) => {
                    let got = data::sha256_file(&path)?;
                    if &got != want {
                        bail!("{} fails its checksum (recorded {want}, now {got})", path.display());
                    }
                }
                None if self.sha256.is_empty() => {}
                None => bail!("{} has no recorded checksum", path.display()),
            }
        }
        Ok(())
    }
}

/// Test-set report of a finished run.
#[derive(Serialize)]
struct RunMetrics {
    #[serde(flatten)]
    test: metrics::Report,
    #[serde(flatten)]
    calibrated: Option<metrics::CalibratedReport>,
    val_accuracy: f64,
    /// Accuracy of the selected model on the clean (unaugmented) labelled training images,
    /// eval mode: how well the network fits its training data.
    train_accuracy: f64,
    /// Mean NLL on the same images.
    train_nll: f64,
    selected_epoch: usize,
    epochs: usize,
    train_images_per_second: f64,
    train_seconds: f64,
    peak_memory_bytes: Option<u64>,
    backend: String,
    n_test: usize,
    /// Teacher run directories (students only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    teachers: Vec<String>,
}

/// Load the splits of an experiment, with an error that says where data was looked for.
pub fn load_data(exp: &TrainExperiment, data_dir: Option<&Path>) -> Result<(data::Splits, data::Cifar)> {
    let cifar = exp.dataset()?;
    let root = crate::fsx::data_root(data_dir, cifar.dir_name());
    let dir = data::cifar_dir(&root, cifar);
    let splits = data::load_splits(cifar, &dir, &exp.splits()).with_context(|| {
        format!(
            "loading {} from {} (set --data-dir or ${} to the folder holding {}/, or run `cargo xtask data fetch {}`)",
            exp.data.dataset,
            dir.display(),
            data::DATA_ENV,
            cifar.dir_name(),
            exp.data.dataset
        )
    })?;
    warn_unofficial_files(&exp.data.dataset, &dir);
    Ok((splits, cifar))
}

/// Once per process and data folder: a warning naming every file whose SHA-256 differs from
/// the official one recorded in `datasets/<name>.toml` (sizes are already enforced when read;
/// this project's shared CIFAR-10 copy is a reconstruction, see its PROVENANCE.json, so
/// results on it are not byte-comparable with the official files').
fn warn_unofficial_files(name: &str, dir: &Path) {
    static CHECKED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    {
        let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
        if checked.iter().any(|d| d == dir) {
            return;
        }
        checked.push(dir.to_path_buf());
    }
    let Ok(m) = crate::cmd_data::manifest(name) else { return };
    let differing: Vec<String> = m
        .files
        .iter()
        .filter(|f| f.sha256.as_ref().is_some_and(|want| !want.is_empty()))
        .filter(|f| {
            let path = dir.join(&f.name);
            path.is_file() && data::sha256_file(&path).is_ok_and(|got| !got.eq_ignore_ascii_case(f.sha256.as_deref().unwrap_or("")))
        })
        .map(|f| f.name.clone())
        .collect();
    if !differing.is_empty() {
        tracing::warn!(
            dir = %dir.display(),
            files = differing.join(", "),
            "these files differ from the official ones (SHA-256 in datasets/{name}.toml); sizes match, but results are not comparable byte-for-byte with the official data"
        );
    }
}

fn eval_batches(set: &Arc<ImageSet>, batch: usize, device: &Device) -> Result<impl Iterator<Item = burn::tensor::Tensor<4>>> {
    let loader = Loader::new(set.clone(), LoaderConfig::eval(batch))?;
    let device = device.clone();
    Ok(loader.epoch(0).map(move |b| b.into_tensors(&device).0))
}

/// Logits of every member over `set`, member-major `[M, N, K]` flattened (M = 1 for a
/// plain network; a BatchEnsemble sees each batch tiled M times).
pub fn predict_logits(model: &Backbone, set: &Arc<ImageSet>, batch: usize, device: &Device) -> Result<Vec<f32>> {
    let m = model.members;
    let mut per_member: Vec<Vec<f32>> = vec![Vec::new(); m];
    for x in eval_batches(set, batch, device)? {
        let logits = if m == 1 { model.forward(x).unsqueeze_dim::<3>(0) } else { model.member_logits(x) };
        let [_, b, k] = logits.dims();
        let v = logits.into_data().try_into_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        for (i, chunk) in v.chunks_exact(b * k).enumerate() {
            per_member[i].extend_from_slice(chunk);
        }
    }
    Ok(per_member.concat())
}

fn labels_u32(set: &ImageSet) -> Vec<u32> {
    (0..set.len()).map(|i| set.label(i) as u32).collect()
}

/// Probabilities of `model` on `set` as a validated matrix.
pub fn probabilities(model: &Backbone, set: &Arc<ImageSet>, batch: usize, device: &Device, k: usize) -> Result<metrics::Predictions> {
    let probs = predict_probs(model, eval_batches(set, batch, device)?);
    Ok(metrics::Predictions::new(probs, set.len(), k)?)
}

struct Observer<'a> {
    partial: &'a Path,
    progress: Progress,
    epochs: usize,
    /// The last committed checkpoint (kept as the fallback of the next).
    last: Option<CheckpointState>,
}

impl TrainObserver for Observer<'_> {
    fn on_step(&mut self, _epoch: usize, _step: usize, images: usize, loss: f64, _lr: f64) {
        self.progress.step(images, loss);
    }

    fn on_validation(&mut self, epoch: usize, accuracy: f64, is_best: bool) {
        let best = if is_best { " (best)" } else { "" };
        self.progress.println(format!("epoch {epoch}: val acc {:.2}%{best}", 100.0 * accuracy));
    }

    fn on_epoch_end(&mut self, state: &EpochState<'_>) -> Result<(), String> {
        let loss = self.progress.take_epoch_loss();
        self.progress.println(format!(
            "epoch {}/{}: train loss {loss:.4}, {:.1} img/s",
            state.epoch,
            self.epochs,
            self.progress.images_per_second()
        ));
        let committed = write_checkpoint(self.partial, state, self.progress.images_per_second(), self.last.take())
            .with_context(|| format!("writing the checkpoint of epoch {} (step {}) in {}", state.epoch, state.step, self.partial.display()))
            .map_err(|e| format!("{e:#}"))?;
        self.last = Some(committed);
        self.progress.resume_clock();
        Ok(())
    }

    fn stop_requested(&self) -> bool {
        crate::interrupt::requested()
    }
}

/// Commit the checkpoint of `state.epoch`: its files into a temporary folder (removed on
/// any error), renamed into place, then `state.json` (atomically) naming it, its checksums and
/// `previous`; every folder but these two is then deleted.
fn write_checkpoint(partial: &Path, state: &EpochState<'_>, ips: f64, previous: Option<CheckpointState>) -> Result<CheckpointState> {
    let name = checkpoint_dir(state.epoch, state.step);
    let tmp = partial.join(format!(".{name}.tmp"));
    let write_files = || -> Result<BTreeMap<String, String>> {
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
        }
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut files = vec![("model.bpk", ensembles::to_burnpack_bytes(state.model)?), ("optimizer.bpk", state.optimizer.to_bytes()?)];
        if let Some((best, _, _)) = state.best {
            files.push(("best.safetensors", ensembles::to_safetensors_bytes(best)?));
        }
        let mut sums = BTreeMap::new();
        for (f, bytes) in files {
            let path = tmp.join(f);
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            sums.insert(f.to_string(), crate::fsx::sha256_hex(&bytes));
        }
        Ok(sums)
    };
    let sums = match write_files() {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let dst = partial.join(&name);
    if dst.exists() {
        std::fs::remove_dir_all(&dst).with_context(|| format!("removing {}", dst.display()))?;
    }
    if let Err(e) = std::fs::rename(&tmp, &dst) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e).with_context(|| format!("committing checkpoint {}", dst.display()));
    }
    let st = CheckpointState {
        epoch: state.epoch,
        step: state.step,
        dir: name.clone(),
        best_epoch: state.best.map(|b| b.1),
        best_accuracy: state.best.map(|b| b.2),
        images_per_second: ips,
        sha256: sums,
        previous: previous.map(|mut p| {
            p.previous = None;
            Box::new(p)
        }),
    };
    write_json(&partial.join("state.json"), &st)?;
    // Older checkpoints are no longer referenced by state.json.
    let keep = st.previous.as_ref().map(|p| p.dir.clone());
    for entry in std::fs::read_dir(partial).with_context(|| format!("listing {}", partial.display()))? {
        let entry = entry.with_context(|| format!("listing {}", partial.display()))?;
        let n = entry.file_name().to_string_lossy().to_string();
        if n.starts_with("ckpt-") && n != name && Some(&n) != keep.as_ref() {
            std::fs::remove_dir_all(entry.path()).with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(st)
}

/// `--restart`: delete everything in `.partial` (its lock, on the folder itself, stays held).
fn discard_partial(partial: &Path) -> Result<()> {
    let mut removed = 0;
    for entry in std::fs::read_dir(partial).with_context(|| format!("listing {}", partial.display()))? {
        let entry = entry.with_context(|| format!("listing {}", partial.display()))?;
        if entry.file_name() == "owner.pid" {
            continue;
        }
        let p = entry.path();
        if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) }.with_context(|| format!("removing {}", p.display()))?;
        removed += 1;
    }
    if removed > 0 {
        tracing::warn!(run = %partial.display(), "--restart: discarded the interrupted run");
    }
    Ok(())
}

fn load_model(cfg: &BackboneConfig, path: &Path, device: &Device) -> Result<Backbone> {
    let mut model = cfg.init(device)?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ensembles::from_safetensors_bytes(&mut model, bytes).with_context(|| format!("loading {}", path.display()))?;
    Ok(model)
}

pub(crate) fn load_experiment(args: &RecipeArgs) -> Result<TrainExperiment> {
    let profile = match &args.profile {
        Some(name) => Some(crate::compose::Profile::load(args.config.parent().unwrap_or(Path::new(".")), name)?),
        None => None,
    };
    TrainExperiment::load(&args.config, profile.as_ref())
}

/// `xtask train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let exp = load_experiment(&args.recipe)?;
    if exp.distill.is_some() {
        bail!("{} has a [distill] section: run it with `cargo xtask distill --config … --teachers DIR…`", args.recipe.config.display());
    }
    run_experiment(exp, args, &[])
}

/// `xtask distill`.
pub fn run_distill(args: DistillArgs) -> Result<()> {
    let exp = load_experiment(&args.run.recipe)?;
    if exp.distill.is_none() {
        bail!("{} has no [distill] section: a teacher is trained with `cargo xtask train`", args.run.recipe.config.display());
    }
    run_experiment(exp, args.run, &args.teachers)
}

/// Load a finished run's selected model (eval mode) on `device`.
pub fn load_run_model(dir: &Path, device: &Device) -> Result<(BackboneConfig, Backbone)> {
    let cfg_path = dir.join("model.json");
    let text = std::fs::read_to_string(&cfg_path).with_context(|| format!("reading {} (is {} a finished run?)", cfg_path.display(), dir.display()))?;
    let cfg: BackboneConfig = serde_json::from_str(&text).with_context(|| format!("parsing {}", cfg_path.display()))?;
    let model = load_model(&cfg, &dir.join("model.safetensors"), device)?;
    Ok((cfg, model.valid()))
}

/// The unmerged BatchEnsemble of a LatentBE run (`be.json`, `be.safetensors`), eval mode;
/// `None` for runs that saved none.
pub fn load_run_be(dir: &Path, device: &Device) -> Result<Option<Backbone>> {
    let cfg_path = dir.join("be.json");
    if !cfg_path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&cfg_path).with_context(|| format!("reading {}", cfg_path.display()))?;
    let cfg: BackboneConfig = serde_json::from_str(&text).with_context(|| format!("parsing {}", cfg_path.display()))?;
    Ok(Some(load_model(&cfg, &dir.join("be.safetensors"), device)?.valid()))
}

pub fn run_experiment(mut exp: TrainExperiment, args: TrainArgs, teacher_dirs: &[PathBuf]) -> Result<()> {
    if let Some(seed) = args.recipe.seed {
        exp.seed = seed;
    }
    let out = args.out.clone().unwrap_or_else(|| repo_root().join("runs").join(&exp.name).join(format!("seed-{}", exp.seed)));
    let already_complete = || {
        tracing::info!(run = %out.display(), "already complete; nothing to do");
        println!("{}", out.display());
    };
    if out.join("metrics.json").exists() {
        already_complete();
        return Ok(());
    }
    if out.exists() {
        bail!("{} exists but is not a finished run (no metrics.json); move it away or pass another --out", out.display());
    }
    // The run's lock, held until the run directory is renamed into place and the process is
    // done with it; then re-check: the holder we waited for may have finished the run.
    let partial = out.with_extension("partial");
    let lock = crate::run_lock::acquire(&partial, args.wait)?;
    // From here a SIGTERM/SIGINT checkpoints the step in progress and exits non-zero.
    crate::interrupt::install()?;
    if out.join("metrics.json").exists() {
        let _ = std::fs::remove_file(partial.join("owner.pid"));
        let _ = std::fs::remove_dir(&partial);
        already_complete();
        return Ok(());
    }
    // A new attempt: the previous one's failure record no longer describes the run.
    let _ = std::fs::remove_file(partial.join(crate::reproduce::FAILED));
    if args.restart {
        discard_partial(&partial)?;
    }
    let stale = crate::run_lock::clean_temp_files(&partial)?;
    if stale > 0 {
        tracing::info!(run = %partial.display(), files = stale, "removed stale temporary files of an interrupted writer");
    }
    let recorded = partial.join("experiment.toml");
    if recorded.exists() {
        let text = std::fs::read_to_string(&recorded).with_context(|| format!("reading {}", recorded.display()))?;
        let old: TrainExperiment = toml::from_str(&text)
            .with_context(|| format!("parsing {} (pass --restart to discard the interrupted run)", recorded.display()))?;
        let diff = crate::experiment::differing_keys(&old, &exp)?;
        if !diff.is_empty() {
            bail!(
                "{} was started with a different experiment ({}); resuming would mix the two. \
                 Run the original experiment again, or pass --restart to discard the interrupted run",
                partial.display(),
                diff.join("; ")
            );
        }
    }
    let device = args.recipe.backend.device()?;
    let (splits, cifar) = load_data(&exp, args.recipe.data_dir.as_deref())?;
    let k = cifar.num_classes();
    let stats = data::split_stats(&splits.train);
    let backbone = exp
        .model
        .backbone(k)?
        .with_input_mean(stats.mean.map(|v| v as f32))
        .with_input_std(stats.std.map(|v| v as f32));
    let optim = exp.optim.to_config();
    if splits.val.is_empty() {
        bail!("{}: [data] val is empty, but model selection needs a validation split", args.recipe.config.display());
    }

    // Teachers (students only): eval-mode plain networks with the same classes.
    let mut teachers = Vec::with_capacity(teacher_dirs.len());
    for dir in teacher_dirs {
        let (cfg, model) = load_run_model(dir, &device)?;
        if cfg.num_classes != k {
            bail!("teacher {} has {} classes, the data set {k}", dir.display(), cfg.num_classes);
        }
        if model.members != 1 {
            bail!("teacher {} is a BatchEnsemble; teachers are Deep Ensemble members (plain networks)", dir.display());
        }
        teachers.push(model);
    }
    let distill_setup = match &exp.distill {
        Some(d) => {
            let method = d.method()?;
            method
                .check(backbone.batch_ensemble.as_ref().map_or(1, |b| b.members), teachers.len())
                .with_context(|| format!("{}: [distill] with {} teachers", args.recipe.config.display(), teachers.len()))?;
            let merge = backbone.batch_ensemble.is_some().then(|| d.merge_rule()).transpose()?;
            Some((method, d.perturbation()?, merge))
        }
        None => None,
    };
    let merge = distill_setup.as_ref().and_then(|s| s.2);
    // Dirichlet students are scored through their head (for EnD²'s α = exp(z), α/α₀ is the softmax).
    let dirichlet_head = distill_setup.as_ref().and_then(|s| s.0.dirichlet_head());

    let mut train = splits.train;
    let labelled_train = train.len();
    if let Some(aux) = exp.distill.as_ref().and_then(|d| d.aux.as_ref()) {
        let extra = aux.load(&train, args.recipe.data_dir.as_deref(), exp.seed)?;
        tracing::info!(source = aux.source, images = extra.len(), "auxiliary distillation inputs (teacher-labelled only)");
        crate::aux_data::append(&mut train, extra);
    }
    let train = Arc::new(train);
    let val = Arc::new(splits.val);
    let test = Arc::new(splits.test);
    let loader = Loader::new(train.clone(), LoaderConfig::train(optim.batch_size, exp.seed))?;
    let steps = loader.num_batches();
    if steps == 0 {
        bail!("training split of {} images is smaller than one batch of {}", train.len(), optim.batch_size);
    }
    device.seed(exp.seed);
    let ad = device.clone().autodiff();
    let state_path = partial.join("state.json");
    let (trainer, last) = if state_path.exists() {
        let restart_hint = "pass --restart to discard the interrupted run and train from scratch";
        let st: CheckpointState = std::fs::read(&state_path)
            .with_context(|| format!("reading {}", state_path.display()))
            .and_then(|b| serde_json::from_slice(&b).with_context(|| format!("parsing {}", state_path.display())))
            .with_context(|| format!("{} holds no valid checkpoint state; {restart_hint}", partial.display()))?;
        let load = |st: &CheckpointState| -> Result<SupervisedTrainer> {
            st.verify(&partial, optim.epochs, steps)?;
            if st.sha256.is_empty() {
                tracing::warn!(checkpoint = %partial.join(&st.dir).display(), "checkpoint from before checksums were recorded: resumed unverified");
            }
            let ck = partial.join(&st.dir);
            let mut model = backbone.init(&ad)?;
            let bytes = std::fs::read(ck.join("model.bpk")).with_context(|| format!("reading {}", ck.join("model.bpk").display()))?;
            ensembles::from_burnpack_bytes(&mut model, bytes).with_context(|| format!("loading {}", ck.join("model.bpk").display()))?;
            let opt = std::fs::read(ck.join("optimizer.bpk")).with_context(|| format!("reading {}", ck.join("optimizer.bpk").display()))?;
            let best = match (st.best_epoch, st.best_accuracy) {
                (Some(epoch), Some(accuracy)) => {
                    Some(Best { model: load_model(&backbone, &ck.join("best.safetensors"), &device)?, epoch, accuracy })
                }
                _ => None,
            };
            SupervisedTrainer::resume(optim.clone(), model, opt, (st.epoch, st.step), best)
                .with_context(|| format!("loading {}", ck.join("optimizer.bpk").display()))
        };
        match load(&st) {
            Ok(t) => {
                tracing::info!(epoch = st.epoch, checkpoint = %partial.join(&st.dir).display(), "resuming");
                (t, Some(st))
            }
            Err(latest) => match st.previous.as_deref() {
                Some(prev) => match load(prev) {
                    Ok(t) => {
                        tracing::warn!(
                            failed = format!("{latest:#}"), epoch = prev.epoch, checkpoint = %partial.join(&prev.dir).display(),
                            "the latest checkpoint failed verification; resuming from the previous one"
                        );
                        (t, Some(prev.clone()))
                    }
                    Err(previous) => bail!(
                        "no valid checkpoint in {}: the latest (epoch {}): {latest:#}; the previous (epoch {}): {previous:#}; {restart_hint}",
                        partial.display(),
                        st.epoch,
                        prev.epoch
                    ),
                },
                None => bail!("no valid checkpoint in {}: the latest (epoch {}): {latest:#}; {restart_hint}", partial.display(), st.epoch),
            },
        }
    } else {
        (SupervisedTrainer::new(optim.clone(), backbone.init(&ad)?)?, None)
    };
    let mut trainer = trainer.with_epoch_budget(args.stop_after);
    write_atomic(&partial.join("experiment.toml"), toml::to_string_pretty(&exp)?.as_bytes())?;
    write_json(&partial.join("model.json"), &backbone)?;

    tracing::info!(
        name = exp.name, seed = exp.seed, train = train.len(), val = val.len(), test = test.len(),
        steps_per_epoch = steps, epochs = optim.epochs, backend = ?args.recipe.backend, "training"
    );
    let mut observer = Observer {
        partial: &partial,
        progress: Progress::new((steps * optim.epochs) as u64, (steps * trainer.epoch() + trainer.step()) as u64),
        epochs: optim.epochs,
        last,
    };
    let started = Instant::now();
    let val_labels = labels_u32(&val);
    let eval_batch = exp.eval_batch_size;
    let ad_batches = ad.clone();
    let distiller = distill_setup
        .as_ref()
        .map(|(method, perturbation, _)| distill::student::Distiller::new(method.clone(), *perturbation, &teachers, exp.seed, steps));
    // LatentBE: validation (model selection) uses the merged single network.
    let selected_view = |model: &Backbone| -> Result<Backbone> {
        Ok(match merge {
            Some(rule) => model.merge(rule)?,
            None => model.clone(),
        })
    };
    let best = trainer.fit(
        |epoch| loader.epoch_prefetch(epoch as u64, 2).map(|b| b.into_tensors(&ad_batches)),
        steps,
        |model, x, y, epoch, step| match &distiller {
            Some(d) => d.loss(model, x, y, epoch, step),
            None => distill::train::cross_entropy_objective(model, x, y, epoch, step),
        },
        |model| {
            selected_view(model)
                .and_then(|m| probabilities(&m, &val, eval_batch, &device, k))
                .and_then(|p| Ok(metrics::accuracy(&p, &val_labels)?))
                .unwrap_or(f64::NAN)
        },
        &mut observer,
    );
    let best = match best {
        Ok(b) => b,
        Err(e) => {
            observer.progress.finish();
            let hint = match &e {
                distill::DistillError::Diverged { .. } | distill::DistillError::NonFiniteModel { .. } => format!(
                    " in {} (resuming repeats the divergence: lower [optim] lr and pass --restart)",
                    partial.display()
                ),
                distill::DistillError::Interrupted { .. } => {
                    format!(" in {} (a signal asked it to stop; run the same command again to resume)", partial.display())
                }
                _ => String::new(),
            };
            return Err(anyhow::Error::new(e).context(format!("training {} (lr {}){hint}", exp.name, optim.lr)));
        }
    };
    observer.progress.finish();
    let Some(best) = best else {
        tracing::info!(checkpoint = %partial.display(), "stopped early; run the same command again to resume");
        return Ok(());
    };
    let train_seconds = started.elapsed().as_secs_f64();

    // Final artefacts of the selected model, then the atomic rename.
    let final_model = selected_view(&best.model)?;
    let probs = |set: &Arc<ImageSet>| -> Result<metrics::Predictions> {
        if let Some(head) = dirichlet_head {
            let logits = predict_logits(&final_model, set, eval_batch, &device)?;
            Ok(metrics::Predictions::new(head.expected_probabilities(&logits, k), set.len(), k)?)
        } else {
            probabilities(&final_model, set, eval_batch, &device, k)
        }
    };
    let val_p = probs(&val)?;
    let test_p = probs(&test)?;
    let test_labels = labels_u32(&test);
    let report = metrics::evaluate(&test_p, &test_labels, metrics::DEFAULT_BINS)?;
    // Fit to the training data: the labelled images only (auxiliary inputs carry no labels).
    let train_fit = {
        let labelled = if labelled_train == train.len() { train.clone() } else { Arc::new(train.slice(0..labelled_train)) };
        metrics::evaluate(&probs(&labelled)?, &labels_u32(&labelled), metrics::DEFAULT_BINS)?
    };
    let calibrated = metrics::evaluate_calibrated(&test_p, &test_labels, &val_p, &val_labels, metrics::DEFAULT_BINS)?;
    let run_metrics = RunMetrics {
        test: report,
        calibrated: Some(calibrated),
        val_accuracy: best.accuracy,
        train_accuracy: train_fit.acc,
        train_nll: train_fit.nll,
        selected_epoch: best.epoch,
        epochs: optim.epochs,
        train_images_per_second: observer.progress.images_per_second(),
        train_seconds,
        peak_memory_bytes: peak_rss_bytes(),
        backend: format!("{:?}", args.recipe.backend).to_lowercase(),
        n_test: test.len(),
        teachers: teacher_dirs.iter().map(|d| d.display().to_string()).collect(),
    };
    write_atomic(&partial.join("model.safetensors"), &ensembles::to_safetensors_bytes(&final_model)?)?;
    if merge.is_some() {
        // LatentBE: model.* is the merged plain network; be.* the unmerged BatchEnsemble.
        write_atomic(&partial.join("be.safetensors"), &ensembles::to_safetensors_bytes(&best.model)?)?;
        write_json(&partial.join("be.json"), &backbone)?;
        write_json(&partial.join("model.json"), &backbone.clone().with_batch_ensemble(None))?;
    }
    npy::write_f32_2d(&partial.join("val_probs.npy"), val_p.as_slice(), [val.len(), k])?;
    npy::write_f32_2d(&partial.join("test_probs.npy"), test_p.as_slice(), [test.len(), k])?;
    npy::write_i64_1d(&partial.join("val_labels.npy"), &val_labels.iter().map(|&v| v as i64).collect::<Vec<_>>())?;
    npy::write_i64_1d(&partial.join("test_labels.npy"), &test_labels.iter().map(|&v| v as i64).collect::<Vec<_>>())?;
    for entry in std::fs::read_dir(&partial).with_context(|| format!("listing {}", partial.display()))? {
        let entry = entry.with_context(|| format!("listing {}", partial.display()))?;
        if entry.file_name().to_string_lossy().starts_with("ckpt-") || entry.file_name() == "state.json" {
            let p = entry.path();
            if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) }.with_context(|| format!("removing {}", p.display()))?;
        }
    }
    write_json(&partial.join("metrics.json"), &run_metrics)?;
    lock.forget_owner()?;
    std::fs::rename(&partial, &out).with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
    drop(lock);
    let summary = serde_json::to_string_pretty(&run_metrics)?;
    tracing::info!(run = %out.display(), "done");
    println!("{summary}");
    Ok(())
}
