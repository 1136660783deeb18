//! The evaluation stage of `reproduce`: the outputs of every finished run on the OOD sets
//! and the generated CIFAR-10-C-style corruptions, saved as logits beside the run:
//!
//! ```text
//! <run>/eval/
//!   test.npy, val.npy              [M*N, K] f32 logits of the selected (LatentBE: merged) model,
//!                                  member-major (M = 1 but for BatchEnsembles trained on labels)
//!   ood-<set>.npy                  fashion_mnist, svhn (if present), noise_uniform, noise_gaussian
//!   corrupt-<name>-<severity>.npy  15 corruptions x 5 severities of the first test images
//!   be-test.npy, be-ood-<set>.npy  LatentBE students only: the same for the unmerged
//!                                  BatchEnsemble ([M*N, K]), for its uncertainty decomposition
//!   done.json                      the settings and sets; a stage is redone if they change
//! ```
//!
//! Logits, not probabilities: the report turns them into probabilities (softmax) or
//! Dirichlet concentrations (EnD²: exp(z); Proxy-EnD²: exp(z) + 1) per the run's method.
//! Labels of a corrupted set are the first labels of the test split.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use data::{Corruption, ImageSet, NoiseKind, Part};
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::cmd_train::{load_data, load_run_be, load_run_model, predict_logits};
use crate::compose::Profile;
use crate::fsx::write_json;
use crate::npy;
use crate::reproduce::{Plan, Status};

/// `[evaluation]` of a profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EvalSettings {
    /// Test images per corruption and severity (the first ones of the test split).
    #[serde(default = "ten_thousand")]
    pub corruption_images: usize,
    /// Images per OOD set (at most the set's size).
    #[serde(default = "ten_thousand")]
    pub ood_images: usize,
    /// Seed of the generated sets (noise, corruptions).
    #[serde(default)]
    pub seed: u64,
}

fn ten_thousand() -> usize {
    10_000
}

impl EvalSettings {
    /// From the profile's `[evaluation]` (defaults: the whole test set, 10,000 OOD images).
    pub fn from_profile(p: &Profile) -> Result<Self> {
        Self::deserialize(toml::Value::Table(p.evaluation.clone()))
            .with_context(|| format!("in profile {}: [evaluation]", p.file.clone().unwrap_or_default().display()))
    }
}

/// One evaluation set.
pub struct EvalSet {
    /// File stem under `eval/`.
    pub name: String,
    /// The images.
    pub images: Arc<ImageSet>,
}

/// What `done.json` records.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Done {
    settings: EvalSettings,
    sets: Vec<String>,
    /// Members M of the saved model: each file holds `[M * N, K]`, member-major.
    members: usize,
    /// Members of the unmerged BatchEnsemble of a LatentBE run (`be-*.npy`), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    be_members: Option<usize>,
}

/// The OOD sets available on this machine (Fashion-MNIST and SVHN only where present).
pub fn ood_sets(settings: &EvalSettings, data_dir: Option<&Path>) -> Result<Vec<EvalSet>> {
    let n = settings.ood_images;
    let mut sets = Vec::new();
    let fm = Path::new(data::FASHION_MNIST_DEBIAN_DIR);
    match data::read_fashion_mnist(fm, Part::Test, Some(n)) {
        Ok(s) => sets.push(EvalSet { name: "ood-fashion_mnist".into(), images: Arc::new(s) }),
        Err(e) => tracing::warn!(error = %e, "Fashion-MNIST not available (apt-get install dataset-fashion-mnist); OOD row skipped"),
    }
    let root = crate::fsx::data_root(data_dir, "svhn");
    if data::svhn_present(&root).is_some() {
        let mut s = data::read_svhn(&root, data::SvhnPart::Test).with_context(|| format!("reading SVHN under {}", root.display()))?;
        if s.len() > n {
            s = s.slice(0..n);
        }
        sets.push(EvalSet { name: "ood-svhn".into(), images: Arc::new(s) });
    } else {
        tracing::info!(root = %root.display(), "SVHN not present (official test_32x32.mat under <data root>/svhn/); skipped");
    }
    for kind in [NoiseKind::Uniform, NoiseKind::Gaussian] {
        let s = data::noise_images(kind, n, settings.seed ^ 0x0D);
        sets.push(EvalSet { name: format!("ood-noise_{}", kind.name()), images: Arc::new(s) });
    }
    Ok(sets)
}

/// The 15 x 5 corrupted copies of the first `corruption_images` test images.
pub fn corruption_sets(test: &ImageSet, settings: &EvalSettings) -> Result<Vec<EvalSet>> {
    let subset = test.slice(0..settings.corruption_images.min(test.len()));
    let mut sets = Vec::new();
    for c in Corruption::ALL {
        for severity in 1..=5u8 {
            let s = data::corrupt_set(&subset, c, severity, settings.seed)?;
            sets.push(EvalSet { name: format!("corrupt-{}-{severity}", c.name()), images: Arc::new(s) });
        }
    }
    Ok(sets)
}

/// Run the evaluation stage for every finished run of the plan that lacks it, or whose
/// `done.json` records other settings or other sets (e.g. evaluated on a machine without
/// Fashion-MNIST: its logits would silently lack that OOD column beside runs that have it).
pub fn evaluate_plan(plan: &Plan, settings: &EvalSettings, backend: Backend, data_dir: Option<&Path>) -> Result<()> {
    let finished: Vec<_> =
        plan.runs.iter().filter(|r| r.status == Status::Done || r.dir.join("metrics.json").exists()).collect();
    let Some(first) = finished.first() else { return Ok(()) };
    // The sets are built before the check (about 3 s): which OOD sets exist depends on the
    // machine, and a run is done only for the sets this machine evaluates.
    let (splits, _) = load_data(&first.exp, data_dir)?;
    let started = std::time::Instant::now();
    let mut sets = vec![
        EvalSet { name: "test".into(), images: Arc::new(splits.test.clone()) },
        EvalSet { name: "val".into(), images: Arc::new(splits.val.clone()) },
    ];
    sets.extend(ood_sets(settings, data_dir)?);
    sets.extend(corruption_sets(&splits.test, settings)?);
    let names: Vec<String> = sets.iter().map(|s| s.name.clone()).collect();
    let todo: Vec<_> = finished.into_iter().filter(|r| !is_done(&r.dir.join("eval"), settings, &names)).collect();
    if todo.is_empty() {
        return Ok(());
    }
    let device = backend.device()?;
    tracing::info!(sets = sets.len(), seconds = started.elapsed().as_secs_f64(), runs = todo.len(), "evaluation sets ready");
    for r in todo {
        evaluate_run(&r.dir, &sets, settings, &device, r.exp.eval_batch_size)
            .with_context(|| format!("evaluating {}", r.dir.display()))?;
    }
    Ok(())
}

fn is_done(eval: &Path, settings: &EvalSettings, sets: &[String]) -> bool {
    let has_be = eval.parent().is_some_and(|run| run.join("be.json").exists());
    std::fs::read(eval.join("done.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Done>(&b).ok())
        .is_some_and(|d| &d.settings == settings && d.sets == sets && (d.be_members.is_some() || !has_be))
}

/// Whether the unmerged BatchEnsemble is evaluated on this set: the test set and the OOD
/// sets (its MI against the teacher's; corruptions and validation need only the merged net).
pub fn be_set(name: &str) -> bool {
    name == "test" || name.starts_with("ood-")
}

/// Logits of one run on every set, each file atomic, `done.json` last.
pub fn evaluate_run(dir: &Path, sets: &[EvalSet], settings: &EvalSettings, device: &burn::tensor::Device, batch: usize) -> Result<()> {
    let (cfg, model) = load_run_model(dir, device)?;
    let eval = dir.join("eval");
    std::fs::create_dir_all(&eval).with_context(|| format!("creating {}", eval.display()))?;
    let started = std::time::Instant::now();
    for s in sets {
        let logits = predict_logits(&model, &s.images, batch, device)?;
        npy::write_f32_2d(&eval.join(format!("{}.npy", s.name)), &logits, [model.members * s.images.len(), cfg.num_classes])?;
    }
    let be_members = match load_run_be(dir, device)? {
        Some(be) => {
            for s in sets.iter().filter(|s| be_set(&s.name)) {
                let logits = predict_logits(&be, &s.images, batch, device)?;
                npy::write_f32_2d(&eval.join(format!("be-{}.npy", s.name)), &logits, [be.members * s.images.len(), cfg.num_classes])?;
            }
            Some(be.members)
        }
        None => None,
    };
    let sets = sets.iter().map(|s| s.name.clone()).collect();
    write_json(&eval.join("done.json"), &Done { settings: settings.clone(), sets, members: model.members, be_members })?;
    tracing::info!(run = %dir.display(), seconds = started.elapsed().as_secs_f64(), "evaluated");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evaluation_with_other_sets_is_not_done() {
        let dir = std::env::temp_dir().join(format!("distillery-is-done-{}", std::process::id()));
        let eval = dir.join("run").join("eval");
        std::fs::create_dir_all(&eval).unwrap();
        let settings = EvalSettings { corruption_images: 10, ood_images: 10, seed: 0 };
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let done = Done { settings: settings.clone(), sets: names(&["test", "val", "ood-noise_uniform"]), members: 1, be_members: None };
        std::fs::write(eval.join("done.json"), serde_json::to_vec(&done).unwrap()).unwrap();
        assert!(is_done(&eval, &settings, &names(&["test", "val", "ood-noise_uniform"])));
        // This machine has Fashion-MNIST, the recorded evaluation did not: redo it.
        assert!(!is_done(&eval, &settings, &names(&["test", "val", "ood-fashion_mnist", "ood-noise_uniform"])));
        // Other settings: redo it.
        assert!(!is_done(&eval, &EvalSettings { seed: 1, ..settings.clone() }, &names(&["test", "val", "ood-noise_uniform"])));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
