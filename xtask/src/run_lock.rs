//! An advisory lock per run directory, held while a run trains.
//!
//! The lock is `flock(2)` (std's `File::lock`) on the `seed-<s>.partial/` directory itself,
//! not on a file inside it: the final rename of `.partial` to the run directory keeps the
//! locked inode, so there is no moment when a second process could lock a fresh file while the
//! first still works on the folder (a lock file would have to be deleted before the rename).
//! The holder's pid is written to `.partial/owner.pid` for messages only; the lock itself is
//! released by the kernel when the process dies, so a killed run leaves a `.partial` that the
//! next process can lock and resume.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// File in `.partial/` naming the pid of the lock holder (informational).
const OWNER: &str = "owner.pid";

/// A held run lock; released on drop.
#[derive(Debug)]
pub struct RunLock {
    _dir: File,
    partial: PathBuf,
}

/// Who, if anyone, trains a `.partial` directory now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// Not locked: a `.partial` in this state is resumable.
    Free,
    /// Locked by a live process (its pid, where `owner.pid` could be read).
    Held(Option<u32>),
}

fn owner_pid(partial: &Path) -> Option<u32> {
    std::fs::read_to_string(partial.join(OWNER)).ok()?.trim().parse().ok()
}

/// Lock `partial` (created if missing). Without `wait`, a lock held by another process is an
/// error naming the run and the holder's pid; with `wait`, block until it is released.
pub fn acquire(partial: &Path, wait: bool) -> Result<RunLock> {
    std::fs::create_dir_all(partial).with_context(|| format!("creating {}", partial.display()))?;
    let dir = File::open(partial).with_context(|| format!("opening {} to lock it", partial.display()))?;
    match dir.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) if wait => {
            let pid = owner_pid(partial).map_or("another process".to_string(), |p| format!("pid {p}"));
            tracing::info!(run = %partial.display(), holder = pid, "waiting for the run's lock (--wait)");
            dir.lock().with_context(|| format!("locking {}", partial.display()))?;
        }
        Err(TryLockError::WouldBlock) => {
            let pid = owner_pid(partial).map_or("another process".to_string(), |p| format!("pid {p}"));
            bail!(
                "run {} is being trained by {pid}; wait for it, or pass --wait to block until it is released",
                partial.display()
            );
        }
        Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("locking {}", partial.display())),
    }
    // The holder we waited for may have finished and renamed the folder away (the lock came
    // with the inode): then there is nothing to own, and the caller finds the run complete.
    if partial.is_dir() {
        crate::fsx::write_atomic(&partial.join(OWNER), format!("{}\n", std::process::id()).as_bytes())?;
    }
    Ok(RunLock { _dir: dir, partial: partial.to_path_buf() })
}

impl RunLock {
    /// Before the final rename: the pid file does not belong in a finished run.
    pub fn forget_owner(&self) -> Result<()> {
        let p = self.partial.join(OWNER);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).with_context(|| format!("removing {}", p.display())),
            _ => Ok(()),
        }
    }
}

/// Whether a live process holds `partial`'s lock (for `reproduce --dry-run`); `Free` if the
/// directory does not exist.
pub fn probe(partial: &Path) -> Holder {
    let Ok(dir) = File::open(partial) else { return Holder::Free };
    match dir.try_lock() {
        // Released when `dir` drops at the end of this function.
        Ok(()) => Holder::Free,
        Err(TryLockError::WouldBlock) => Holder::Held(owner_pid(partial)),
        Err(TryLockError::Error(_)) => Holder::Free,
    }
}

/// Remove stale temporary files and folders a killed writer left in `partial`
/// (`.<name>.tmp`, `.<name>.tmp-<pid>`). Only call while holding the lock.
pub fn clean_temp_files(partial: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(partial).with_context(|| format!("listing {}", partial.display()))? {
        let entry = entry.with_context(|| format!("listing {}", partial.display()))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') && (name.ends_with(".tmp") || name.contains(".tmp-")) {
            let p = entry.path();
            if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) }
                .with_context(|| format!("removing the stale temporary {}", p.display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("distillery-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_second_lock_is_refused_naming_the_pid_until_the_first_is_dropped() {
        let d = scratch("second").join("seed-0.partial");
        let first = acquire(&d, false).unwrap();
        // flock locks belong to the open file description: a second open in this process
        // conflicts exactly as another process would.
        let err = format!("{:#}", acquire(&d, false).unwrap_err());
        assert!(err.contains(&format!("pid {}", std::process::id())) && err.contains("seed-0.partial"), "{err}");
        assert_eq!(probe(&d), Holder::Held(Some(std::process::id())));
        drop(first);
        assert_eq!(probe(&d), Holder::Free);
        let again = acquire(&d, false).unwrap();
        again.forget_owner().unwrap();
        assert!(!d.join(OWNER).exists());
        // The lock follows the directory through a rename (the run's final step).
        let done = d.with_extension("");
        std::fs::rename(&d, &done).unwrap();
        assert!(matches!(probe(&done), Holder::Held(_)));
        drop(again);
        assert_eq!(probe(&done), Holder::Free);
    }

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let d = scratch("temps");
        std::fs::create_dir_all(d.join(".ckpt-0003.tmp")).unwrap();
        std::fs::write(d.join(".ckpt-0003.tmp/model.bpk"), b"x").unwrap();
        std::fs::write(d.join(".state.json.tmp-4242"), b"{").unwrap();
        std::fs::write(d.join("state.json"), b"{}").unwrap();
        std::fs::create_dir_all(d.join("ckpt-0002")).unwrap();
        assert_eq!(clean_temp_files(&d).unwrap(), 2);
        let mut left: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["ckpt-0002", "state.json"]);
    }
}
