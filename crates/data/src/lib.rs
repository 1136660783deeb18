//! Distillery's data crate: CIFAR-10/100 binary readers into one contiguous buffer, train /
//! validation / test splits, seeded pad-crop-flip augmentation and batching to Burn tensors,
//! the EnD² spirals with their Bayes-optimal posterior, Fashion-MNIST as an OOD set, data
//! location, checksum / manifest verification, a loader benchmark, and CIFAR-10-C-style
//! common corruptions generated in process.
//!
//! The library prints nothing and installs no logger; it emits `tracing` events only.

pub mod augment;
pub mod bench;
pub mod cifar;
pub mod corrupt;
pub mod error;
#[cfg(test)]
mod fuzz_tests;
pub mod idx;
pub mod images;
pub mod loader;
pub mod location;
pub mod ood;
pub mod seed;
pub mod spirals;
pub mod split;
pub mod stats;
pub mod verify;

pub use augment::{CropFlip, write_augmented, write_plain};
pub use bench::loader_throughput;
pub use cifar::{Cifar, Part, RecordLimit, read_class_names};
pub use corrupt::{Corruption, CorruptionFamily, corrupt_image, corrupt_set};
pub use error::{DataError, Result};
pub use idx::{FASHION_MNIST_DEBIAN_DIR, IdxArray, read_fashion_mnist, read_idx};
pub use images::{IMAGE_BYTES, ImageSet};
pub use loader::{Batch, EpochIter, Loader, LoaderConfig, Prefetch, make_batch};
pub use location::{DATA_ENV, cifar_dir, resolve_data_dir};
pub use ood::{
    MatArray, MatData, NoiseKind, SvhnPart, noise_images, read_mat_arrays, read_svhn,
    read_svhn_file, svhn_dir, svhn_present,
};
pub use spirals::{
    BayesPosterior, Estimate, Spirals, bayes_error, generate_ood_ring, generate_spirals,
};
pub use split::{SplitConfig, Splits, load_splits};
pub use stats::{SplitStats, split_stats};
pub use verify::{
    ChecksumReport, DatasetManifest, ManifestFile, check_manifest_files, sha256_file,
    verify_sha256sums,
};
