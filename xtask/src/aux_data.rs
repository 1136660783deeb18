//! Auxiliary (unlabelled) distillation inputs for EnD² + aux (METHODS.md §2): extra images
//! labelled only by the teachers, appended to the distillation set. Sources:
//! - `cifar100`: the official CIFAR-100 training images (the EnD² paper's choice for
//!   CIFAR-10), where the user has them;
//! - `fashion_mnist`: the Fashion-MNIST training images (Debian `dataset-fashion-mnist`),
//!   padded to 32x32 and replicated to 3 channels — do not combine with Fashion-MNIST as the
//!   OOD test set (same distribution);
//! - `corruptions`: random training images, each with a random CIFAR-10-C corruption type
//!   and severity 1..=5 (generated in-process, seeded).
//!
//! The spirals experiment draws its own off-manifold points (uniform in a box around the
//! data); see `distill::spirals`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use data::{Corruption, ImageSet, Part};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// `[distill.aux]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuxSection {
    /// `cifar100`, `fashion_mnist` or `corruptions`.
    pub source: String,
    /// How many auxiliary images (at most the source's size for file sources).
    pub images: usize,
}

impl AuxSection {
    /// Check the source name (the error names the value).
    pub fn validate(&self) -> Result<()> {
        match self.source.as_str() {
            "cifar100" | "fashion_mnist" | "corruptions" => {}
            other => bail!("distill.aux.source = {other:?}: expected cifar100, fashion_mnist or corruptions"),
        }
        if self.images == 0 {
            bail!("distill.aux.images = 0: need at least one image");
        }
        Ok(())
    }

    /// The auxiliary images (labels meaningless, set to 0), deterministic in `seed`.
    pub fn load(&self, train: &ImageSet, data_dir: Option<&Path>, seed: u64) -> Result<ImageSet> {
        let mut set = match self.source.as_str() {
            "cifar100" => {
                let root = crate::fsx::data_root(data_dir, data::Cifar::Hundred.dir_name());
                let dir = data::cifar_dir(&root, data::Cifar::Hundred);
                data::Cifar::Hundred
                    .read(&dir, Part::Train, data::RecordLimit::Total(self.images))
                    .with_context(|| format!("distill.aux.source = \"cifar100\": reading the CIFAR-100 training file from {} (run `cargo xtask data fetch cifar100`)", dir.display()))?
            }
            "fashion_mnist" => {
                let dir = Path::new(data::FASHION_MNIST_DEBIAN_DIR);
                data::read_fashion_mnist(dir, Part::Train, Some(self.images))
                    .with_context(|| format!("distill.aux.source = \"fashion_mnist\": reading {} (apt-get install dataset-fashion-mnist)", dir.display()))?
            }
            "corruptions" => corrupted_training_images(train, self.images, seed)?,
            other => bail!("distill.aux.source = {other:?}: expected cifar100, fashion_mnist or corruptions"),
        };
        if set.len() < self.images {
            tracing::warn!(source = self.source, wanted = self.images, found = set.len(), "fewer auxiliary images than asked for");
        }
        set.labels.iter_mut().for_each(|l| *l = 0);
        set.coarse_labels = None;
        Ok(set)
    }
}

/// `n` training images drawn with replacement, each corrupted by a uniformly drawn
/// corruption type and severity.
fn corrupted_training_images(train: &ImageSet, n: usize, seed: u64) -> Result<ImageSet> {
    if train.is_empty() {
        bail!("distill.aux.source = \"corruptions\" needs a non-empty training split");
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xA0C5_0000_0000_0001);
    let mut pixels = Vec::with_capacity(n * data::IMAGE_BYTES);
    for _ in 0..n {
        let i = rng.random_range(0..train.len());
        let c = Corruption::ALL[rng.random_range(0..Corruption::ALL.len())];
        let severity = rng.random_range(1..=5u8);
        pixels.extend(data::corrupt_image(c, severity, train.image(i), &mut rng)?);
    }
    Ok(ImageSet { pixels, labels: vec![0; n], coarse_labels: None, num_classes: train.num_classes, class_names: train.class_names.clone() })
}

/// Append `extra` to `base` (pixels and labels).
pub fn append(base: &mut ImageSet, extra: ImageSet) {
    base.pixels.extend(extra.pixels);
    base.labels.extend(extra.labels);
    base.coarse_labels = None;
}
