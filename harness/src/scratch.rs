//! Scratch directories created in this process (the run's work directory, each fixture plane's),
//! so an exit that cannot unwind (a second Ctrl-C), or blocking work that outlived an interrupted
//! start and wrote into a directory already removed, still leaves nothing behind. Owners remove
//! their own directory on drop; [`remove_all`] is the last sweep before the process exits.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static CREATED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Remember a scratch directory for the final sweep.
pub fn register(path: &Path) {
    CREATED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(path.to_path_buf());
}

/// Remove every registered directory that still exists (best effort).
pub fn remove_all() {
    let all = std::mem::take(&mut *CREATED.lock().unwrap_or_else(|p| p.into_inner()));
    for p in all {
        let _ = std::fs::remove_dir_all(&p);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn removes_what_is_registered() {
        let a = tempfile::tempdir().unwrap().keep();
        super::register(&a);
        super::remove_all();
        assert!(!a.exists());
    }
}
