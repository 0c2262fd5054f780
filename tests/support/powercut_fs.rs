//! A FUSE filesystem for tests that loses, on command, everything not made durable, as a power
//! cut does, and that fails `fsync` or `write` on command, as a failing disk does.
//!
//! Files and directories live in the test process's memory. Each file keeps the bytes its last
//! `fsync`/`fdatasync` made durable beside its current bytes; each directory keeps the entries
//! its last `fsync` made durable beside its current ones (so a create, a rename or an unlink is
//! durable only once its directory is synced, as POSIX asks). `power_cut` freezes the filesystem
//! (every operation from then on fails with EIO, as on a machine without power), and `remount`
//! unmounts it, throws away every byte and entry that was not durable, and mounts what is left:
//! what a machine finds on its disk when the power comes back. The kernel's caches go with the
//! unmount, and the mount has no writeback cache, so every write of the program under test
//! reaches this filesystem at once.
//!
//! Needs root (the kernel mount of `/dev/fuse`; no `fusermount` is used).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    FileAttr, FileType, Filesystem, MountOption, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};
use libc::{EEXIST, EINVAL, EIO, EISDIR, ENOENT, ENOSPC, ENOTDIR, ENOTEMPTY};

const ROOT: u64 = 1;
/// Attributes and entries are not cached by the kernel: every lookup sees the current tree.
const TTL: Duration = Duration::ZERO;

/// A disk fault, injected on command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `fsync` and `fdatasync` of files fail with EIO and make nothing durable.
    FsyncFailsDataLost,
    /// `fsync` and `fdatasync` of files fail with EIO although the data did reach the disk.
    FsyncFailsDataKept,
    /// `write` and `fallocate` fail with ENOSPC.
    WriteNoSpace,
}

/// What the filesystem saw, for a test's report.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub file_syncs: u64,
    pub dir_syncs: u64,
    pub power_cuts: u64,
    /// Bytes written but not durable when the power was cut, summed over every cut.
    pub bytes_lost: u64,
}

enum Body {
    File {
        data: Vec<u8>,
        durable: Vec<u8>,
        /// Every byte below this offset is the same in `data` and `durable`.
        clean_below: usize,
    },
    Dir {
        entries: BTreeMap<OsString, u64>,
        durable: BTreeMap<OsString, u64>,
    },
}

struct Node {
    body: Body,
    perm: u16,
    mtime: SystemTime,
}

struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    frozen: bool,
    fault: Option<Fault>,
    stats: Stats,
}

impl State {
    fn new() -> State {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Node {
                body: Body::Dir {
                    entries: BTreeMap::new(),
                    durable: BTreeMap::new(),
                },
                perm: 0o755,
                mtime: SystemTime::now(),
            },
        );
        State {
            nodes,
            next_ino: ROOT + 1,
            frozen: false,
            fault: None,
            stats: Stats::default(),
        }
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let node = self.nodes.get(&ino)?;
        let (kind, size) = match &node.body {
            Body::File { data, .. } => (FileType::RegularFile, data.len() as u64),
            Body::Dir { entries, .. } => (FileType::Directory, entries.len() as u64),
        };
        Some(FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: node.mtime,
            mtime: node.mtime,
            ctime: node.mtime,
            crtime: UNIX_EPOCH,
            kind,
            perm: node.perm,
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn entries(&mut self, dir: u64) -> Result<&mut BTreeMap<OsString, u64>, i32> {
        match self.nodes.get_mut(&dir).map(|n| &mut n.body) {
            Some(Body::Dir { entries, .. }) => Ok(entries),
            Some(Body::File { .. }) => Err(ENOTDIR),
            None => Err(ENOENT),
        }
    }

    fn child(&mut self, dir: u64, name: &OsStr) -> Result<u64, i32> {
        self.entries(dir)?.get(name).copied().ok_or(ENOENT)
    }

    fn add(&mut self, parent: u64, name: &OsStr, body: Body, perm: u16) -> Result<u64, i32> {
        let ino = self.next_ino;
        let entries = self.entries(parent)?;
        if entries.contains_key(name) {
            return Err(EEXIST);
        }
        entries.insert(name.to_owned(), ino);
        self.next_ino += 1;
        self.nodes.insert(
            ino,
            Node {
                body,
                perm,
                mtime: SystemTime::now(),
            },
        );
        Ok(ino)
    }

    fn file(&mut self, ino: u64) -> Result<(&mut Vec<u8>, &mut usize), i32> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::File {
                data, clean_below, ..
            }) => Ok((data, clean_below)),
            Some(Body::Dir { .. }) => Err(EISDIR),
            None => Err(ENOENT),
        }
    }

    fn sync_file(&mut self, ino: u64) -> Result<(), i32> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::File {
                data,
                durable,
                clean_below,
            }) => {
                durable.truncate(*clean_below);
                durable.extend_from_slice(&data[*clean_below..]);
                *clean_below = data.len();
                self.stats.file_syncs += 1;
                Ok(())
            }
            Some(Body::Dir { .. }) => self.sync_dir(ino),
            None => Err(ENOENT),
        }
    }

    fn sync_dir(&mut self, ino: u64) -> Result<(), i32> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::Dir { entries, durable }) => {
                *durable = entries.clone();
                self.stats.dir_syncs += 1;
                Ok(())
            }
            Some(Body::File { .. }) => Err(ENOTDIR),
            None => Err(ENOENT),
        }
    }

    /// What the disk holds after a power cut: the durable entries from the root down, each file
    /// with its durable bytes.
    fn lose_what_is_not_durable(&mut self) {
        let mut reachable = HashSet::new();
        let mut todo = vec![ROOT];
        while let Some(ino) = todo.pop() {
            if !reachable.insert(ino) {
                continue;
            }
            if let Some(Body::Dir { durable, .. }) = self.nodes.get(&ino).map(|n| &n.body) {
                todo.extend(durable.values().copied());
            }
        }
        let mut lost = 0;
        self.nodes.retain(|ino, node| {
            if let Body::File {
                data, clean_below, ..
            } = &node.body
            {
                lost += (data.len() - (*clean_below).min(data.len())) as u64;
            }
            reachable.contains(ino)
        });
        for node in self.nodes.values_mut() {
            match &mut node.body {
                Body::File {
                    data,
                    durable,
                    clean_below,
                } => {
                    *data = durable.clone();
                    *clean_below = data.len();
                }
                Body::Dir { entries, durable } => *entries = durable.clone(),
            }
        }
        self.stats.power_cuts += 1;
        self.stats.bytes_lost += lost;
    }
}

struct Fs(Arc<Mutex<State>>);

impl Fs {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state for an operation, or EIO once the power is cut.
    fn live(&self) -> Result<MutexGuard<'_, State>, i32> {
        let state = self.lock();
        if state.frozen {
            Err(EIO)
        } else {
            Ok(state)
        }
    }
}

macro_rules! reply {
    ($reply:expr, $result:expr, |$ok:ident| $done:expr) => {
        match $result {
            Ok($ok) => $done,
            Err(errno) => $reply.error(errno),
        }
    };
}

impl Filesystem for Fs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let result = self.live().and_then(|mut s| {
            let ino = s.child(parent, name)?;
            s.attr(ino).ok_or(ENOENT)
        });
        reply!(reply, result, |attr| reply.entry(&TTL, &attr, 0));
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let result = self.live().and_then(|s| s.attr(ino).ok_or(ENOENT));
        reply!(reply, result, |attr| reply.attr(&TTL, &attr));
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let result = self.live().and_then(|mut s| {
            if let Some(size) = size {
                let (data, clean_below) = s.file(ino)?;
                let size = usize::try_from(size).map_err(|_| EINVAL)?;
                data.resize(size, 0);
                *clean_below = (*clean_below).min(size);
            }
            let node = s.nodes.get_mut(&ino).ok_or(ENOENT)?;
            if let Some(mode) = mode {
                node.perm = (mode & 0o7777) as u16;
            }
            node.mtime = SystemTime::now();
            s.attr(ino).ok_or(ENOENT)
        });
        reply!(reply, result, |attr| reply.attr(&TTL, &attr));
    }

    fn mkdir(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let result = self.live().and_then(|mut s| {
            let body = Body::Dir {
                entries: BTreeMap::new(),
                durable: BTreeMap::new(),
            };
            let ino = s.add(parent, name, body, (mode & !umask & 0o7777) as u16)?;
            s.attr(ino).ok_or(ENOENT)
        });
        reply!(reply, result, |attr| reply.entry(&TTL, &attr, 0));
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let result = self.live().and_then(|mut s| {
            let ino = s.child(parent, name)?;
            s.file(ino)?;
            s.entries(parent)?.remove(name);
            Ok(())
        });
        reply!(reply, result, |_ok| reply.ok());
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let result = self.live().and_then(|mut s| {
            let ino = s.child(parent, name)?;
            if !s.entries(ino)?.is_empty() {
                return Err(ENOTEMPTY);
            }
            s.entries(parent)?.remove(name);
            Ok(())
        });
        reply!(reply, result, |_ok| reply.ok());
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        let result = self.live().and_then(|mut s| {
            let ino = s.child(parent, name)?;
            let target = s.entries(newparent)?.get(newname).copied();
            if flags & libc::RENAME_NOREPLACE != 0 && target.is_some() {
                return Err(EEXIST);
            }
            if flags & !libc::RENAME_NOREPLACE != 0 {
                return Err(EINVAL);
            }
            if let Some(target) = target {
                let target_is_dir = s.entries(target).is_ok();
                let source_is_dir = s.entries(ino).is_ok();
                if target_is_dir && !s.entries(target)?.is_empty() {
                    return Err(ENOTEMPTY);
                }
                if target_is_dir != source_is_dir {
                    return Err(if target_is_dir { EISDIR } else { ENOTDIR });
                }
            }
            s.entries(parent)?.remove(name);
            s.entries(newparent)?.insert(newname.to_owned(), ino);
            Ok(())
        });
        reply!(reply, result, |_ok| reply.ok());
    }

    fn link(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        newparent: u64,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let result = self.live().and_then(|mut s| {
            s.file(ino)?;
            let entries = s.entries(newparent)?;
            if entries.contains_key(newname) {
                return Err(EEXIST);
            }
            entries.insert(newname.to_owned(), ino);
            s.attr(ino).ok_or(ENOENT)
        });
        reply!(reply, result, |attr| reply.entry(&TTL, &attr, 0));
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        let result = self.live().and_then(|s| s.attr(ino).ok_or(ENOENT));
        reply!(reply, result, |_attr| reply.opened(0, 0));
    }

    fn create(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let result = self.live().and_then(|mut s| {
            let body = Body::File {
                data: Vec::new(),
                durable: Vec::new(),
                clean_below: 0,
            };
            let ino = s.add(parent, name, body, (mode & !umask & 0o7777) as u16)?;
            s.attr(ino).ok_or(ENOENT)
        });
        reply!(reply, result, |attr| reply.created(&TTL, &attr, 0, 0, 0));
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let mut state = match self.live() {
            Ok(state) => state,
            Err(errno) => return reply.error(errno),
        };
        match state.file(ino) {
            Ok((data, _)) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let end = start.saturating_add(size as usize).min(data.len());
                reply.data(&data[start..end]);
            }
            Err(errno) => reply.error(errno),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        bytes: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        let result = self.live().and_then(|mut s| {
            if s.fault == Some(Fault::WriteNoSpace) {
                return Err(ENOSPC);
            }
            let (data, clean_below) = s.file(ino)?;
            let start = usize::try_from(offset).map_err(|_| EINVAL)?;
            let end = start + bytes.len();
            if data.len() < end {
                data.resize(end, 0);
            }
            data[start..end].copy_from_slice(bytes);
            *clean_below = (*clean_below).min(start);
            Ok(bytes.len() as u32)
        });
        reply!(reply, result, |n| reply.written(n));
    }

    fn fallocate(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        length: i64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let result = self.live().and_then(|mut s| {
            if s.fault == Some(Fault::WriteNoSpace) {
                return Err(ENOSPC);
            }
            let (data, _) = s.file(ino)?;
            let end = usize::try_from(offset + length).map_err(|_| EINVAL)?;
            if mode & libc::FALLOC_FL_KEEP_SIZE == 0 && data.len() < end {
                data.resize(end, 0);
            }
            Ok(())
        });
        reply!(reply, result, |_ok| reply.ok());
    }

    fn flush(&mut self, _req: &Request<'_>, _ino: u64, _fh: u64, _owner: u64, reply: ReplyEmpty) {
        reply!(reply, self.live(), |_state| reply.ok());
    }

    fn fsync(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let result = self.live().and_then(|mut s| match s.fault {
            Some(Fault::FsyncFailsDataLost) => Err(EIO),
            Some(Fault::FsyncFailsDataKept) => s.sync_file(ino).and(Err(EIO)),
            _ => s.sync_file(ino),
        });
        reply!(reply, result, |_ok| reply.ok());
    }

    fn opendir(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        let result = self.live().and_then(|mut s| s.entries(ino).map(|_| ()));
        reply!(reply, result, |_ok| reply.opened(0, 0));
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let listing = self.live().and_then(|mut s| {
            let names: Vec<(OsString, u64)> = s
                .entries(ino)?
                .iter()
                .map(|(n, i)| (n.clone(), *i))
                .collect();
            let mut listing = vec![
                (OsString::from("."), ino, FileType::Directory),
                (OsString::from(".."), ino, FileType::Directory),
            ];
            for (name, child) in names {
                let kind = s.attr(child).map_or(FileType::RegularFile, |a| a.kind);
                listing.push((name, child, kind));
            }
            Ok(listing)
        });
        match listing {
            Ok(listing) => {
                let skip = usize::try_from(offset).unwrap_or(0);
                for (i, (name, child, kind)) in listing.into_iter().enumerate().skip(skip) {
                    if reply.add(child, (i + 1) as i64, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(errno) => reply.error(errno),
        }
    }

    fn fsyncdir(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, _ds: bool, reply: ReplyEmpty) {
        let result = self.live().and_then(|mut s| s.sync_dir(ino));
        reply!(reply, result, |_ok| reply.ok());
    }

    fn statfs(&mut self, _req: &Request<'_>, _ino: u64, reply: ReplyStatfs) {
        reply!(reply, self.live(), |_state| reply.statfs(
            1 << 20,
            1 << 19,
            1 << 19,
            1 << 20,
            1 << 19,
            4096,
            255,
            4096
        ));
    }

    fn access(&mut self, _req: &Request<'_>, ino: u64, _mask: i32, reply: ReplyEmpty) {
        let result = self.live().and_then(|s| s.attr(ino).ok_or(ENOENT));
        reply!(reply, result, |_attr| reply.ok());
    }
}

/// The mounted filesystem, unmounted when dropped.
pub struct PowerCutFs {
    state: Arc<Mutex<State>>,
    session: Option<fuser::BackgroundSession>,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl PowerCutFs {
    pub fn mount() -> PowerCutFs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let mut fs = PowerCutFs {
            state: Arc::new(Mutex::new(State::new())),
            session: None,
            path,
            _dir: dir,
        };
        fs.attach();
        fs
    }

    fn attach(&mut self) {
        let options = [MountOption::FSName("powercut".into()), MountOption::NoAtime];
        let session = fuser::spawn_mount2(Fs(self.state.clone()), &self.path, &options)
            .expect("mounting the FUSE filesystem (these tests run as root and need /dev/fuse)");
        self.session = Some(session);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The power goes: from now on every operation fails with EIO and nothing more becomes
    /// durable. Kill the program under test, then `remount`.
    pub fn power_cut(&self) {
        self.lock().frozen = true;
    }

    /// The power comes back: unmount (the program using the disk must be dead), lose what was
    /// not durable, mount again.
    pub fn remount(&mut self) {
        if let Some(session) = self.session.take() {
            session.join();
        }
        {
            let mut state = self.lock();
            if state.frozen {
                state.lose_what_is_not_durable();
            }
            state.frozen = false;
            state.fault = None;
        }
        self.attach();
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        self.lock().fault = fault;
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats
    }
}

impl Drop for PowerCutFs {
    fn drop(&mut self) {
        self.lock().frozen = true;
        if let Some(session) = self.session.take() {
            drop(session);
        }
    }
}
