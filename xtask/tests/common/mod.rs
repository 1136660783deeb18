//! Shared helpers of the CLI integration tests: run the built `xtask` on the project's real
//! CIFAR-10 copy (`$DISTILLERY_DATA`, default `../shared/data`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The data root the tests use.
pub fn data_dir() -> PathBuf {
    std::env::var_os("DISTILLERY_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// A test's scratch directory: removed when the test passes, kept (and its path printed)
/// when it fails, for a look at what the run left behind.
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("scratch directory kept: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("distillery-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// Run `xtask` with extra environment variables.
pub fn xtask_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("DISTILLERY_DATA", data_dir())
        .env("DISTILLERY_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("run xtask")
}

/// Run `xtask`.
pub fn xtask(args: &[&str]) -> Output {
    xtask_env(args, &[])
}

/// Assert success; return stdout.
pub fn ok(out: &Output) -> String {
    assert!(out.status.success(), "xtask failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Parse a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A two-epoch ResNet-8 on 1,000 real training images: 20 steps of 50 per epoch.
pub const TINY: &str = r#"
name = "tiny"
seed = 3
eval_batch_size = 250
[data]
dataset = "cifar10"
train = [0, 1000]
val = [1000, 1500]
test = [0, 500]
[model]
arch = "resnet8"
[optim]
lr = 0.05
warmup_epochs = 1
epochs = 2
batch_size = 50
"#;

/// Every tensor of a safetensors file by name: (dtype, shape, raw bytes). The format is an
/// 8-byte little-endian header length, a JSON header, then the data.
pub fn tensors(path: &Path) -> std::collections::BTreeMap<String, (String, String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut out = std::collections::BTreeMap::new();
    for (name, t) in header.as_object().unwrap() {
        if name == "__metadata__" {
            continue;
        }
        let (lo, hi) = (t["data_offsets"][0].as_u64().unwrap() as usize, t["data_offsets"][1].as_u64().unwrap() as usize);
        out.insert(name.clone(), (t["dtype"].to_string(), t["shape"].to_string(), data[lo..hi].to_vec()));
    }
    assert!(!out.is_empty(), "{} holds no tensors", path.display());
    out
}
