//! Directories and files that survive a power cut: a new directory entry (a created file or
//! directory, a rename) is durable only once the directory holding it is fsynced, and a file's
//! bytes once the file is.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Fsyncs a directory, so that the entries created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `path` and its missing parents like `std::fs::create_dir_all`, and makes each new
/// entry durable (the parent of every directory it created is fsynced).
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    let mut missing: Vec<PathBuf> = Vec::new();
    let mut at = Some(path);
    while let Some(dir) = at {
        if dir.as_os_str().is_empty() || dir.is_dir() {
            break;
        }
        missing.push(dir.to_owned());
        at = dir.parent();
    }
    for dir in missing.iter().rev() {
        match std::fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(e),
        }
        sync_dir(parent_of(dir))?;
    }
    Ok(())
}

/// Writes `bytes` to `tmp`, fsyncs it, renames it over `path` and fsyncs the directory: after a
/// power cut `path` holds either its old content or all of `bytes`. `tmp` is opened with
/// `options` (which say how: for example create_new and a mode).
pub fn replace_file(
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
    options: &std::fs::OpenOptions,
) -> io::Result<()> {
    let mut file = options.open(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(tmp, path)?;
    sync_dir(parent_of(path))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn creates_every_missing_parent_and_replaces_files_whole() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_dir_all(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_all(&deep).unwrap();
        let path = deep.join("f");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        replace_file(&deep.join("f.tmp"), &path, b"one", &options).unwrap();
        replace_file(&deep.join("f.tmp"), &path, b"two", &options).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!deep.join("f.tmp").exists());
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(create_dir_all(&file.join("under")).is_err());
    }
}
