//! Helpers shared by the kernel tests (`conv2d_flex.rs`, `batch_norm_flex.rs`).

/// Deterministic values in [-1, 1) from a 64-bit LCG: test inputs that do not touch Burn's
/// global random generator (tests of one binary run in parallel and would race on it).
pub fn lcg_values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f64 / (1u64 << 24) as f64) * 2.0 - 1.0
        })
        .collect()
}
