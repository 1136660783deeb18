//! `xtask data fetch <name>` (download the official archive, verify its SHA-256 and the
//! extracted files, install atomically) and `xtask data stats <name>` (one JSON object with
//! per-split counts, class counts, channel mean and std of `[0, 1]` pixels).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::fsx::repo_root;

/// Arguments of `xtask data`.
#[derive(clap::Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(clap::Subcommand, Debug)]
enum DataCommand {
    /// Download and verify a data set (`cifar10`, `cifar100`) into the data root.
    Fetch {
        /// Manifest name under datasets/ (cifar10, cifar100).
        name: String,
        /// Data root (else $DISTILLERY_DATA, else datasets/).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print split statistics of a data set as one JSON object.
    Stats {
        /// Data set (cifar10, cifar100).
        name: String,
        /// Data root (else $DISTILLERY_DATA, else datasets/).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Training records [start, end) (default: the paper split 0..45000).
        #[arg(long, num_args = 2, value_names = ["START", "END"])]
        train: Option<Vec<usize>>,
        /// Validation records [start, end) (default 45000..50000).
        #[arg(long, num_args = 2, value_names = ["START", "END"])]
        val: Option<Vec<usize>>,
        /// Test records [start, end) (default 0..10000).
        #[arg(long, num_args = 2, value_names = ["START", "END"])]
        test: Option<Vec<usize>>,
    },
}

/// `xtask data`.
pub fn run(args: DataArgs) -> Result<()> {
    match args.command {
        DataCommand::Fetch { name, data_dir } => fetch(&name, data_dir.as_deref()),
        DataCommand::Stats { name, data_dir, train, val, test } => stats(&name, data_dir.as_deref(), train, val, test),
    }
}

fn cifar_named(name: &str) -> Result<data::Cifar> {
    match name {
        "cifar10" => Ok(data::Cifar::Ten),
        "cifar100" => Ok(data::Cifar::Hundred),
        other => bail!("unknown data set {other:?}: expected cifar10 or cifar100"),
    }
}

fn stats(
    name: &str,
    data_dir: Option<&Path>,
    train: Option<Vec<usize>>,
    val: Option<Vec<usize>>,
    test: Option<Vec<usize>>,
) -> Result<()> {
    let cifar = cifar_named(name)?;
    let root = crate::fsx::data_root(data_dir, cifar.dir_name());
    let dir = data::cifar_dir(&root, cifar);
    let mut cfg = data::SplitConfig::paper();
    let range = |v: Vec<usize>| v[0]..v[1];
    if let Some(t) = train {
        cfg.train = range(t);
    }
    if let Some(v) = val {
        cfg.val = range(v);
    }
    if let Some(t) = test {
        cfg.test = range(t);
    }
    let splits = data::load_splits(cifar, &dir, &cfg)
        .with_context(|| format!("loading {name} from {} (set --data-dir or ${})", dir.display(), data::DATA_ENV))?;
    let out = serde_json::json!({
        "train": data::split_stats(&splits.train),
        "val": data::split_stats(&splits.val),
        "test": data::split_stats(&splits.test),
    });
    println!("{out}");
    Ok(())
}

/// The manifest `datasets/<name>.toml` of the repository.
pub fn manifest(name: &str) -> Result<data::DatasetManifest> {
    let path = repo_root().join("datasets").join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("no manifest {} for data set {name:?}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("in manifest {}", path.display()))
}

fn fetch(name: &str, data_dir: Option<&Path>) -> Result<()> {
    let m = manifest(name)?;
    let root = data::resolve_data_dir(data_dir, &repo_root());
    let target = root.join(&m.extract_dir);
    if target.is_dir() && data::check_manifest_files(&target, &m, false).is_ok() {
        tracing::info!(dir = %target.display(), "{name} is already present (names and sizes match the manifest)");
        return Ok(());
    }
    std::fs::create_dir_all(&root).with_context(|| format!("creating data root {}", root.display()))?;
    let archive = root.join(format!(".{}.part", m.archive));
    tracing::info!(url = m.url, to = %archive.display(), "downloading");
    let offline_help = || {
        let files: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
        format!(
            "could not download {} (no network?). Put the official files {} into {} \
             (or extract {} from {} there), or point --data-dir / ${} at a folder holding {}/",
            m.archive,
            files.join(", "),
            target.display(),
            m.archive,
            m.url,
            data::DATA_ENV,
            m.extract_dir
        )
    };
    let response = ureq::get(&m.url).call().map_err(|e| anyhow::anyhow!("{e}")).with_context(offline_help)?;
    let mut reader = response.into_reader();
    let mut file = std::fs::File::create(&archive).with_context(|| format!("creating {}", archive.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf).with_context(offline_help)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        std::io::Write::write_all(&mut file, &buf[..n])?;
        size += n as u64;
    }
    file.sync_all()?;
    drop(file);
    let sha = format!("{:x}", hasher.finalize());
    if let Some(expected) = m.archive_size {
        if size != expected {
            std::fs::remove_file(&archive).ok();
            bail!("{}: downloaded {size} bytes, manifest says {expected}", m.url);
        }
    }
    if !m.sha256.is_empty() && !sha.eq_ignore_ascii_case(&m.sha256) {
        std::fs::remove_file(&archive).ok();
        bail!("{}: sha256 {sha} does not match the manifest's {}", m.url, m.sha256);
    }
    // Extract into a temporary folder, verify, then move into place.
    let staging = root.join(format!(".{}.extract", m.extract_dir));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&archive)?);
    tar::Archive::new(gz).unpack(&staging).with_context(|| format!("extracting {}", archive.display()))?;
    let extracted = staging.join(&m.extract_dir);
    data::check_manifest_files(&extracted, &m, true).with_context(|| format!("verifying {}", extracted.display()))?;
    if target.exists() {
        bail!("{} exists but does not match the manifest; move it away and fetch again", target.display());
    }
    std::fs::rename(&extracted, &target)?;
    std::fs::remove_dir_all(&staging).ok();
    std::fs::remove_file(&archive).ok();
    tracing::info!(dir = %target.display(), sha256 = sha, "installed {name}");
    Ok(())
}
