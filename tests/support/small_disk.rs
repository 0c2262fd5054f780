//! A tmpfs of its own for a test, unmounted when dropped: a disk that really fills up. Needs
//! root (the tests run as root; a mount that fails fails the test).

use std::path::PathBuf;
use std::process::Command;

pub struct SmallDisk {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    pub fn mount(megabytes: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mount -t tmpfs failed: these tests run as root"
        );
        SmallDisk { path, _dir: dir }
    }

    /// Writes a file until the disk is full.
    pub fn fill(&self) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.path.join("filler")).unwrap();
        let chunk = vec![0u8; 1 << 16];
        while filler.write_all(&chunk).is_ok() {}
        let _ = filler.sync_all();
    }

    /// Frees what `fill` took.
    pub fn free(&self) {
        std::fs::remove_file(self.path.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
