//! Files written so that a crash never leaves a partial artefact: write to a temporary name
//! in the same directory, fsync, rename over the target.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Atomically replace `path` with `bytes`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating directory {}", dir.display()))?;
    let name = path.file_name().with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let write = || -> Result<()> {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes).with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all().with_context(|| format!("syncing {}", tmp.display()))?;
        drop(f);
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    };
    // No temporary is left behind on any error path (a full disk, a rename across devices).
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Lower-case hex SHA-256 of `bytes` (checkpoint checksums).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Atomically write pretty JSON.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// The repository root (the workspace holding `xtask/`), for default paths.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Peak resident memory of this process (VmHWM) in bytes, where /proc has it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The data root for a data set whose extracted folder is `dir_name`: `--data-dir`, else
/// `$DISTILLERY_DATA`, else `datasets/` in the repository — unless that lacks the data set
/// and a `shared/data/` folder beside the repository (this project's machines) has it.
pub fn data_root(flag: Option<&Path>, dir_name: &str) -> PathBuf {
    let root = repo_root();
    let resolved = data::resolve_data_dir(flag, &root);
    let explicit = flag.is_some() || std::env::var_os(data::DATA_ENV).is_some_and(|v| !v.is_empty());
    if !explicit && !resolved.join(dir_name).is_dir() {
        if let Some(shared) = root.parent().map(|p| p.join("shared").join("data")) {
            if shared.join(dir_name).is_dir() {
                tracing::info!(dir = %shared.display(), "using the shared data folder beside the repository");
                return shared;
            }
        }
    }
    resolved
}
