//! Experiment files (`experiments/**/*.toml`): what to train, on which data, how.
//! Unknown keys are errors that name the file and the key.

use std::path::Path;

use anyhow::{Context, Result, bail};
use distill::train::OptimConfig;
use ensembles::{Arch, BackboneConfig, BatchEnsembleConfig, BiasMode, FastInit, NormMode, ShortcutKind, WeightInit};
use serde::{Deserialize, Serialize};

use crate::compose::{self, Profile};

/// A training experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainExperiment {
    /// Run name (directory under `runs/`).
    pub name: String,
    /// Data set and splits.
    pub data: DataSection,
    /// Network.
    pub model: ModelSection,
    /// Optimiser and schedule.
    #[serde(default)]
    pub optim: OptimSection,
    /// Seed of initialisation, data order and augmentation.
    #[serde(default)]
    pub seed: u64,
    /// Batch size for validation/test inference.
    #[serde(default = "default_eval_batch")]
    pub eval_batch_size: usize,
    /// Distillation (for `xtask distill`; absent for teachers).
    #[serde(default)]
    pub distill: Option<DistillSection>,
}

/// `[distill]`: how a student learns from its teachers (METHODS.md §2–3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillSection {
    /// `kd`, `one_to_one` (BatchEnsemble student), `ae_kd`, `end2`, `proxy_end2`.
    pub method: String,
    /// Weight of the distillation term (KD family).
    #[serde(default = "one")]
    pub alpha: f64,
    /// KD temperature.
    #[serde(default = "four")]
    pub temperature: f64,
    /// AE-KD cap C on teacher weights.
    #[serde(default = "cap")]
    pub cap: f64,
    /// EnD² initial temperature T0.
    #[serde(default = "ten")]
    pub t0: f64,
    /// EnD² epochs at T0.
    #[serde(default = "thirty")]
    pub hold_epochs: f64,
    /// EnD² epochs of linear decay to 1.
    #[serde(default = "thirty")]
    pub decay_epochs: f64,
    /// EnD² target smoothing.
    #[serde(default = "smoothing")]
    pub smoothing: f64,
    /// Proxy-EnD² model offset `c_s` in `α = exp(z) + c_s` (METHODS.md: 1).
    #[serde(default = "one")]
    pub model_offset: f64,
    /// Proxy-EnD² target offset `c_t` in `α_t = p̄ · precision + c_t` (METHODS.md: 1).
    #[serde(default = "one")]
    pub target_offset: f64,
    /// `none`, `ods`, `conf_ods`, `tdiv_sdiv`.
    #[serde(default = "none")]
    pub perturbation: String,
    /// Perturbation step η (the step is η·√D per example).
    #[serde(default = "eta")]
    pub eta: f64,
    /// Softmax temperature T of the ODS objective and of the ConfODS confidence,
    /// `softmax(z / T)` (METHODS.md §3; Diversity-Matters `train_student.py` passes the KD
    /// temperature). Absent: the method's KD temperature (`temperature`) for kd, one_to_one
    /// and ae_kd, 1 for the Dirichlet methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perturbation_temperature: Option<f64>,
    /// LatentBE merge rule for BatchEnsemble students: `factor_mean` or `product_mean`.
    #[serde(default = "factor_mean")]
    pub merge: String,
    /// Auxiliary unlabelled inputs mixed into the distillation set (EnD² + aux).
    #[serde(default)]
    pub aux: Option<crate::aux_data::AuxSection>,
}

fn one() -> f64 {
    1.0
}
fn four() -> f64 {
    4.0
}
fn cap() -> f64 {
    0.6
}
fn ten() -> f64 {
    10.0
}
fn thirty() -> f64 {
    30.0
}
fn smoothing() -> f64 {
    1e-3
}
fn none() -> String {
    "none".into()
}
fn eta() -> f64 {
    1.0 / 255.0
}
fn factor_mean() -> String {
    "factor_mean".into()
}

impl DistillSection {
    /// The library method.
    pub fn method(&self) -> Result<distill::student::Method> {
        use distill::student::Method;
        Ok(match self.method.as_str() {
            "kd" => Method::Kd { alpha: self.alpha, temperature: self.temperature },
            "one_to_one" => Method::OneToOne { alpha: self.alpha, temperature: self.temperature },
            "ae_kd" => Method::AeKd { alpha: self.alpha, temperature: self.temperature, cap: self.cap },
            "end2" => Method::EnD2 {
                schedule: distill::schedule::TemperatureSchedule::new(self.t0)
                    .with_hold_epochs(self.hold_epochs)
                    .with_decay_epochs(self.decay_epochs),
                smoothing: self.smoothing,
            },
            "proxy_end2" => Method::ProxyEnD2 {
                offsets: distill::loss::ProxyOffsets::new().with_model(self.model_offset).with_target(self.target_offset),
            },
            other => bail!("distill.method = {other:?}: expected kd, one_to_one, ae_kd, end2 or proxy_end2"),
        })
    }

    /// The ODS / ConfODS temperature: `perturbation_temperature`, else the method's KD
    /// temperature (1 for the Dirichlet methods, which have none).
    pub fn perturbation_temperature(&self) -> Result<f64> {
        Ok(match self.perturbation_temperature {
            Some(t) => t,
            None => self.method()?.kd_temperature().unwrap_or(1.0),
        })
    }

    /// The input perturbation.
    pub fn perturbation(&self) -> Result<perturb::PerturbationKind> {
        use perturb::PerturbationKind as P;
        let temperature = self.perturbation_temperature()?;
        if !(temperature.is_finite() && temperature > 0.0) {
            bail!("perturbation_temperature = {temperature}: must be a positive number");
        }
        Ok(match self.perturbation.as_str() {
            "none" => P::None,
            "ods" => P::Ods { eta: self.eta, temperature },
            "conf_ods" => P::ConfOds { eta: self.eta, temperature },
            "tdiv_sdiv" => P::TDivSDiv { eta: self.eta },
            other => bail!("distill.perturbation = {other:?}: expected none, ods, conf_ods or tdiv_sdiv"),
        })
    }

    /// The LatentBE merge rule.
    pub fn merge_rule(&self) -> Result<ensembles::MergeRule> {
        match self.merge.as_str() {
            "factor_mean" => Ok(ensembles::MergeRule::FactorMean),
            "product_mean" => Ok(ensembles::MergeRule::ProductMean),
            other => bail!("distill.merge = {other:?}: expected factor_mean or product_mean"),
        }
    }
}

fn default_eval_batch() -> usize {
    500
}

/// `[data]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// `cifar10` or `cifar100`.
    pub dataset: String,
    /// Training records `[start, end)` of the official training files.
    pub train: [usize; 2],
    /// Validation records `[start, end)` of the official training files.
    pub val: [usize; 2],
    /// Test records `[start, end)` of the official test file.
    pub test: [usize; 2],
    /// Allow `train` and `val` to overlap (default false: an overlap is an error, because
    /// model selection on training images selects for memorisation).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_overlap: bool,
}

/// Images in the official training files of CIFAR-10 and CIFAR-100.
const OFFICIAL_TRAIN: usize = 50_000;
/// Images in the official test files.
const OFFICIAL_TEST: usize = 10_000;

impl DataSection {
    /// Ranges within the official files, non-empty train and test, and no train/val overlap
    /// unless `allow_overlap`; errors name the key.
    fn validate(&self) -> Result<()> {
        let check = |key: &str, [a, b]: [usize; 2], available: usize, allow_empty: bool| -> Result<()> {
            if a > b || (a == b && !allow_empty) {
                bail!("{key} = [{a}, {b}]: expected [start, end) with start < end");
            }
            if b > available {
                bail!("{key} = [{a}, {b}]: the official files hold {available} records");
            }
            Ok(())
        };
        check("train", self.train, OFFICIAL_TRAIN, false)?;
        check("val", self.val, OFFICIAL_TRAIN, true)?;
        check("test", self.test, OFFICIAL_TEST, false)?;
        let ([t0, t1], [v0, v1]) = (self.train, self.val);
        if !self.allow_overlap && v0 < v1 && t0 < v1 && v0 < t1 {
            bail!(
                "train = [{t0}, {t1}] and val = [{v0}, {v1}] overlap (records {}..{}); validation images must not be training images \
                 (set allow_overlap = true to allow it on purpose)",
                t0.max(v0),
                t1.min(v1)
            );
        }
        Ok(())
    }
}

/// `[model]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// `resnet8`, `resnet20`, `resnet32`, `resnet56`, … or `wrn-28-4`, `wrn-16-2`, ….
    pub arch: String,
    /// `zeropad` or `projection`; default: the architecture's (see `ensembles`).
    #[serde(default)]
    pub shortcut: Option<String>,
    /// Dropout inside blocks.
    #[serde(default)]
    pub dropout: f64,
    /// Build a BatchEnsemble of this many members.
    #[serde(default)]
    pub batch_ensemble: Option<BeSection>,
    /// Slow-weight initialisation: `reference` (giung2-jax: truncated He-normal
    /// convolutions and classifier, zero classifier bias; the default) or
    /// `he_normal_uniform_head` (untruncated He-normal convolutions, PyTorch's uniform
    /// classifier: what this project used before).
    #[serde(default = "reference")]
    pub init: String,
}

fn reference() -> String {
    "reference".into()
}

/// `[model.batch_ensemble]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeSection {
    /// Members M.
    pub members: usize,
    /// `shared` or `per_member`.
    #[serde(default = "shared")]
    pub bias: String,
    /// `shared` or `per_member`.
    #[serde(default = "shared")]
    pub norm: String,
    /// `ones`, `normal` (N(1, 0.5²)) or `random_sign`.
    #[serde(default = "ones")]
    pub fast_init: String,
}

fn shared() -> String {
    "shared".into()
}
fn ones() -> String {
    "ones".into()
}

/// `[optim]` (defaults: PROTOCOLS.md paper protocol).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimSection {
    /// Peak learning rate.
    pub lr: f64,
    /// Momentum.
    pub momentum: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Weight decay.
    pub weight_decay: f64,
    /// Warm-up epochs.
    pub warmup_epochs: usize,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Global gradient-norm clipping threshold (absent: no clipping).
    pub clip_grad_norm: Option<f64>,
}

impl Default for OptimSection {
    fn default() -> Self {
        let c = OptimConfig::new();
        Self {
            lr: c.lr,
            momentum: c.momentum,
            nesterov: c.nesterov,
            weight_decay: c.weight_decay,
            warmup_epochs: c.warmup_epochs,
            epochs: c.epochs,
            batch_size: c.batch_size,
            clip_grad_norm: c.clip_grad_norm,
        }
    }
}

impl OptimSection {
    /// The library config.
    pub fn to_config(&self) -> OptimConfig {
        OptimConfig::new()
            .with_lr(self.lr)
            .with_momentum(self.momentum)
            .with_nesterov(self.nesterov)
            .with_weight_decay(self.weight_decay)
            .with_warmup_epochs(self.warmup_epochs)
            .with_epochs(self.epochs)
            .with_batch_size(self.batch_size)
            .with_clip_grad_norm(self.clip_grad_norm)
    }
}

impl TrainExperiment {
    /// Read and check an experiment file (its `extends` chain merged, `[grid]` ignored:
    /// `train`/`distill` run one point, `--seed` picks the seed).
    pub fn load(path: &Path, profile: Option<&Profile>) -> Result<Self> {
        let mut layered = compose::load_layered(path)?;
        if let Some(p) = profile {
            let id = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            layered = p.apply(layered, id)?;
        }
        layered.table.remove("grid");
        Self::from_layered(&layered)
    }

    /// Deserialize and check one merged experiment (errors name the files).
    pub fn from_layered(layered: &compose::Layered) -> Result<Self> {
        let path = layered.files.last().cloned().unwrap_or_default();
        let path = path.as_path();
        let exp: Self = compose::deserialize(layered, &format!("experiment file {}", path.display()))?;
        exp.model
            .backbone(10)
            .and_then(|b| Ok(b.validate()?))
            .with_context(|| format!("in experiment file {}: [model]", path.display()))?;
        exp.optim.to_config().validate().with_context(|| format!("in experiment file {}: [optim]", path.display()))?;
        exp.dataset().and_then(|_| exp.data.validate()).with_context(|| format!("in experiment file {}: [data]", path.display()))?;
        let train_images = exp.data.train[1] - exp.data.train[0];
        if exp.optim.batch_size > train_images {
            bail!(
                "in experiment file {}: [optim] batch_size = {} exceeds the {train_images} training images of [data] train (a batch never fills)",
                path.display(),
                exp.optim.batch_size
            );
        }
        if exp.optim.warmup_epochs > exp.optim.epochs {
            bail!(
                "in experiment file {}: [optim] warmup_epochs = {} exceeds epochs = {}",
                path.display(),
                exp.optim.warmup_epochs,
                exp.optim.epochs
            );
        }
        if exp.eval_batch_size == 0 {
            bail!("in experiment file {}: eval_batch_size = 0: expected at least 1", path.display());
        }
        if let Some(d) = &exp.distill {
            let check = || -> Result<()> {
                let members = exp.model.batch_ensemble.as_ref().map_or(1, |b| b.members);
                d.method()?;
                d.perturbation()?;
                d.merge_rule()?;
                if let Some(aux) = &d.aux {
                    aux.validate()?;
                    let label_free = matches!(d.method.as_str(), "end2" | "proxy_end2") || d.alpha == 1.0;
                    if !label_free {
                        bail!("aux: auxiliary images have no labels, so the loss must not use labels (end2, proxy_end2, or alpha = 1), but method = {:?} with alpha = {}", d.method, d.alpha);
                    }
                }
                if d.perturbation == "tdiv_sdiv" && members < 2 {
                    bail!("perturbation = \"tdiv_sdiv\" needs a BatchEnsemble student (its members' diversity)");
                }
                Ok(())
            };
            check().with_context(|| format!("in experiment file {}: [distill]", path.display()))?;
        }
        Ok(exp)
    }

    /// The data set named in `[data] dataset`.
    pub fn dataset(&self) -> Result<data::Cifar> {
        match self.data.dataset.as_str() {
            "cifar10" => Ok(data::Cifar::Ten),
            "cifar100" => Ok(data::Cifar::Hundred),
            other => bail!("dataset = {other:?}: expected \"cifar10\" or \"cifar100\""),
        }
    }

    /// The split ranges.
    pub fn splits(&self) -> data::SplitConfig {
        let r = |x: [usize; 2]| x[0]..x[1];
        data::SplitConfig { train: r(self.data.train), val: r(self.data.val), test: r(self.data.test) }
    }
}

/// The keys whose values differ between two resolved experiments, as `key: a -> b` lines
/// (dotted paths; `name` ignored, as it only names the run's folder).
pub fn differing_keys(old: &TrainExperiment, new: &TrainExperiment) -> Result<Vec<String>> {
    fn flatten(prefix: &str, v: &toml::Value, out: &mut std::collections::BTreeMap<String, String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    flatten(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let flat = |e: &TrainExperiment| -> Result<std::collections::BTreeMap<String, String>> {
        let mut e = e.clone();
        e.name.clear();
        let mut out = std::collections::BTreeMap::new();
        flatten("", &toml::Value::try_from(&e)?, &mut out);
        Ok(out)
    };
    let (a, b) = (flat(old)?, flat(new)?);
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    Ok(keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |m: &std::collections::BTreeMap<String, String>| m.get(k).cloned().unwrap_or_else(|| "(absent)".into());
            format!("{k}: {} -> {}", show(&a), show(&b))
        })
        .collect())
}

impl ModelSection {
    /// The backbone config for `num_classes` classes (input statistics filled in later).
    pub fn backbone(&self, num_classes: usize) -> Result<BackboneConfig> {
        let arch = parse_arch(&self.arch)?;
        let shortcut = match self.shortcut.as_deref() {
            None => None,
            Some("zeropad") => Some(ShortcutKind::ZeroPad),
            Some("projection") => Some(ShortcutKind::Projection),
            Some(other) => bail!("shortcut = {other:?}: expected \"zeropad\" or \"projection\""),
        };
        let be = self.batch_ensemble.as_ref().map(BeSection::to_config).transpose()?;
        let init = match self.init.as_str() {
            "reference" => WeightInit::Reference,
            "he_normal_uniform_head" => WeightInit::HeNormalUniformHead,
            other => bail!("init = {other:?}: expected \"reference\" or \"he_normal_uniform_head\""),
        };
        Ok(BackboneConfig::new(arch)
            .with_init(init)
            .with_num_classes(num_classes)
            .with_shortcut(shortcut)
            .with_dropout(self.dropout)
            .with_batch_ensemble(be))
    }
}

impl BeSection {
    fn to_config(&self) -> Result<BatchEnsembleConfig> {
        if self.members == 0 {
            bail!("batch_ensemble.members = 0: need at least 1");
        }
        let mode = |key: &str, v: &str| match v {
            "shared" => Ok(true),
            "per_member" => Ok(false),
            other => bail!("batch_ensemble.{key} = {other:?}: expected \"shared\" or \"per_member\""),
        };
        let bias = if mode("bias", &self.bias)? { BiasMode::Shared } else { BiasMode::PerMember };
        let norm = if mode("norm", &self.norm)? { NormMode::Shared } else { NormMode::PerMember };
        let fast_init = match self.fast_init.as_str() {
            "ones" => FastInit::Ones,
            "normal" => FastInit::Normal { mean: 1.0, std: 0.5 },
            "random_sign" => FastInit::RandomSign { p_positive: 0.5 },
            other => bail!("batch_ensemble.fast_init = {other:?}: expected \"ones\", \"normal\" or \"random_sign\""),
        };
        Ok(BatchEnsembleConfig::new(self.members).with_bias(bias).with_norm(norm).with_fast_init(fast_init))
    }
}

/// `resnet20` → ResNet depth 20; `wrn-28-4` → pre-activation WRN depth 28 width 4.
pub fn parse_arch(s: &str) -> Result<Arch> {
    let bad = || anyhow::anyhow!("arch = {s:?}: expected `resnet<depth>` (resnet8, resnet20, …) or `wrn-<depth>-<width>`");
    if let Some(d) = s.strip_prefix("resnet") {
        return Ok(Arch::ResNet { depth: d.parse().map_err(|_| bad())? });
    }
    if let Some(rest) = s.strip_prefix("wrn-") {
        let (d, k) = rest.split_once('-').ok_or_else(bad)?;
        return Ok(Arch::PreActWrn { depth: d.parse().map_err(|_| bad())?, width: k.parse().map_err(|_| bad())? });
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_name_the_key() {
        let text = "name = \"x\"\nseed = 1\n[data]\ndataset = \"cifar10\"\ntrain = [0, 10]\nval = [10, 20]\ntest = [0, 10]\n[model]\narch = \"resnet8\"\ndepth = 3\n";
        let err = toml::from_str::<TrainExperiment>(text).unwrap_err().to_string();
        assert!(err.contains("depth"), "{err}");
    }

    fn distill_section(extra: &str) -> DistillSection {
        toml::from_str(&format!("method = \"one_to_one\"\ntemperature = 4.0\nperturbation = \"conf_ods\"\n{extra}")).unwrap()
    }

    #[test]
    fn perturbation_temperature_defaults_to_the_kd_temperature() {
        // METHODS.md §3 / Diversity-Matters `train_student.py` line 210: softmax(z / T_KD).
        let d = distill_section("");
        assert_eq!(d.perturbation().unwrap(), perturb::PerturbationKind::ConfOds { eta: 1.0 / 255.0, temperature: 4.0 });
        let d = distill_section("perturbation_temperature = 1.5");
        assert_eq!(d.perturbation().unwrap(), perturb::PerturbationKind::ConfOds { eta: 1.0 / 255.0, temperature: 1.5 });
        let mut d = distill_section("");
        d.perturbation = "ods".into();
        assert_eq!(d.perturbation().unwrap(), perturb::PerturbationKind::Ods { eta: 1.0 / 255.0, temperature: 4.0 });
        // The Dirichlet methods have no KD temperature: T = 1.
        d.method = "end2".into();
        assert_eq!(d.perturbation_temperature().unwrap(), 1.0);
        let e = distill_section("perturbation_temperature = 0.0").perturbation().unwrap_err().to_string();
        assert!(e.contains("perturbation_temperature = 0"), "{e}");
    }

    #[test]
    fn init_key_picks_the_weight_initialisation() {
        let m: ModelSection = toml::from_str("arch = \"resnet8\"").unwrap();
        assert_eq!(m.backbone(10).unwrap().init, WeightInit::Reference);
        let m: ModelSection = toml::from_str("arch = \"resnet8\"\ninit = \"he_normal_uniform_head\"").unwrap();
        assert_eq!(m.backbone(10).unwrap().init, WeightInit::HeNormalUniformHead);
        let m: ModelSection = toml::from_str("arch = \"resnet8\"\ninit = \"xavier\"").unwrap();
        assert!(m.backbone(10).unwrap_err().to_string().contains("init = \"xavier\""));
    }

    #[test]
    fn arch_names() {
        assert_eq!(parse_arch("resnet20").unwrap(), Arch::ResNet { depth: 20 });
        assert_eq!(parse_arch("wrn-28-4").unwrap(), Arch::PreActWrn { depth: 28, width: 4 });
        assert!(parse_arch("vgg16").is_err());
        assert!(parse_arch("wrn-28").is_err());
    }
}
