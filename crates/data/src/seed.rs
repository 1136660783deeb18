//! Deterministic seed derivation: independent RNG streams from `(seed, purpose, a, b)` via
//! SplitMix64 mixing, so any batch of any epoch can be regenerated on its own.
//!
//! Streams are `rand::rngs::StdRng` (rand 0.9, ChaCha12), so byte-for-byte reproducibility
//! holds for a fixed `rand` version — the workspace's `Cargo.lock` pins it.

use rand::SeedableRng;
use rand::rngs::StdRng;

/// One SplitMix64 step: a bijective 64-bit mixer.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derives a 64-bit seed from a base seed, a purpose tag and two indices.
pub fn derive_seed(seed: u64, purpose: u64, a: u64, b: u64) -> u64 {
    let mut h = splitmix64(seed ^ 0x6A09_E667_F3BC_C908);
    h = splitmix64(h ^ purpose);
    h = splitmix64(h ^ a);
    splitmix64(h ^ b)
}

/// An RNG for the stream `(seed, purpose, a, b)`.
pub fn stream(seed: u64, purpose: u64, a: u64, b: u64) -> StdRng {
    StdRng::seed_from_u64(derive_seed(seed, purpose, a, b))
}

/// Purpose tag: per-epoch shuffle order.
pub const SHUFFLE: u64 = 1;
/// Purpose tag: per-batch augmentation.
pub const AUGMENT: u64 = 2;
/// Purpose tag: spiral generation.
pub const SPIRALS: u64 = 3;
/// Purpose tag: per-image corruption draws (`corrupt::corrupt_set`).
pub const CORRUPT: u64 = 4;
