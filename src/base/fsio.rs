//! The one bounded reader of regular files and the one atomic writer.
//!
//! [`read`] (and [`open`] and [`read_each`], for a caller that reads in parts) opens with `O_NONBLOCK | O_CLOEXEC` (and `O_NOFOLLOW` when the
//! caller refuses symlinks), then checks the *opened* file with `fstat`: a
//! regular file, within the size bound, and (when the caller asks) with one
//! link. A FIFO or device placed where a file was expected is refused at once
//! instead of blocking the start; a file swapped between a check and the open
//! cannot slip through, because there is no separate check. `O_NONBLOCK` does
//! nothing to a regular file's reads.
//!
//! [`read_once_within`] pins named files for a scope: the first read of
//! each inside it is kept, and every later read there (a fork's child's
//! included) gets the same outcome, so a decision that reads a signer's key
//! file to key its verdict, again to load the key, and again to check a
//! bundle judges one content even when the file is replaced meanwhile.
//!
//! [`write_atomic`] writes a temporary file in the destination's directory
//! and renames it into place, so readers see the old bytes or the new, never
//! a part. Whether it also survives a crash is the caller's explicit choice
//! ([`Durability`]).

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// What a caller accepts of the file it reads.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Largest size accepted, in bytes.
    pub max: u64,
    /// Refuse a symlink as the last path component (`O_NOFOLLOW`). Files
    /// Portcullis writes itself (cache, verdicts) are never symlinks; files
    /// in `/etc` may legitimately be placed as symlinks by configuration
    /// management.
    pub refuse_symlink: bool,
    /// Refuse a file with more than one hard link (a link placed in a
    /// directory Portcullis owns, pointing at a file writable elsewhere).
    pub refuse_hard_links: bool,
}

impl ReadOptions {
    /// Regular files up to `max` bytes; symlinks and hard links accepted.
    pub const fn bounded(max: u64) -> Self {
        Self {
            max,
            refuse_symlink: false,
            refuse_hard_links: false,
        }
    }

    /// Also refuse a symlink as the last path component.
    pub const fn no_symlink(mut self) -> Self {
        self.refuse_symlink = true;
        self
    }

    /// Also refuse a file with more than one hard link.
    pub const fn single_link(mut self) -> Self {
        self.refuse_hard_links = true;
        self
    }
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The open or the read failed (`NotFound` included).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not a regular file: a FIFO, device, directory, socket, or a symlink
    /// the caller refuses.
    #[error("not a regular file (a FIFO, device, directory or refused symlink)")]
    NotRegular,
    /// Larger than the caller's bound.
    #[error("{size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// The size seen (at least `max + 1`).
        size: u64,
        /// The bound.
        max: u64,
    },
    /// More than one hard link, refused by the caller.
    #[error("the file has {0} hard links")]
    HardLinks(u64),
}

impl ReadError {
    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// The first read of a file that reports no size.
const PSEUDO_FILE_READ: u64 = 16 * 1024;

/// Read a regular file under the caller's options (see the module doc).
pub fn read(path: &Path, opts: ReadOptions) -> Result<Vec<u8>, ReadError> {
    read_dated(path, opts).map(|d| d.bytes)
}

/// A file's bytes and the modification time of the same opened file, so
/// that a caller judging the bytes by their age judges the bytes it read
/// (a path stat'ed apart may name a file replaced in between).
#[derive(Debug)]
pub struct Dated {
    /// The file's contents.
    pub bytes: Vec<u8>,
    /// Its modification time, where the file system keeps one.
    pub modified: Option<std::time::SystemTime>,
}

/// The outcome of a pinned file's first read, replayed to later readers.
#[derive(Debug)]
enum Pinned {
    Read(Vec<u8>, Option<std::time::SystemTime>),
    NotRegular,
    TooLarge(u64),
    HardLinks(u64),
    Io(std::io::ErrorKind, String),
}

impl Pinned {
    fn of(read: &Result<Dated, ReadError>) -> Self {
        match read {
            Ok(d) => Pinned::Read(d.bytes.clone(), d.modified),
            Err(ReadError::NotRegular) => Pinned::NotRegular,
            Err(ReadError::TooLarge { size, .. }) => Pinned::TooLarge(*size),
            Err(ReadError::HardLinks(n)) => Pinned::HardLinks(*n),
            Err(ReadError::Io(e)) => Pinned::Io(e.kind(), e.to_string()),
        }
    }

    /// The first read's outcome under a later reader's bound.
    fn replay(&self, opts: ReadOptions) -> Result<Dated, ReadError> {
        match self {
            Pinned::Read(bytes, _) if bytes.len() as u64 > opts.max => Err(ReadError::TooLarge {
                size: bytes.len() as u64,
                max: opts.max,
            }),
            Pinned::Read(bytes, modified) => Ok(Dated {
                bytes: bytes.clone(),
                modified: *modified,
            }),
            Pinned::NotRegular => Err(ReadError::NotRegular),
            Pinned::TooLarge(size) => Err(ReadError::TooLarge {
                size: *size,
                max: opts.max,
            }),
            Pinned::HardLinks(n) => Err(ReadError::HardLinks(*n)),
            Pinned::Io(kind, msg) => Err(std::io::Error::new(*kind, msg.clone()).into()),
        }
    }
}

thread_local! {
    /// The files pinned by [`read_once_within`] on this thread, each with
    /// its first read once there was one.
    static PINNED: std::cell::RefCell<Vec<(std::path::PathBuf, Option<Pinned>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Run `f` with `paths` pinned: inside it, the first whole read of each
/// ([`read`], [`read_bounded`] and their dated forms) is kept, and every
/// later one gets that read's bytes or error instead of the file's current
/// state. A later reader's smaller bound still applies; the other checks
/// are the first reader's. The scope covers a
/// child forked inside `f` (it inherits the thread's pins). Scopes do not
/// nest: an inner scope replaces the outer's pins until it ends.
pub fn read_once_within<T>(
    paths: impl IntoIterator<Item = std::path::PathBuf>,
    f: impl FnOnce() -> T,
) -> T {
    struct Restore(Vec<(std::path::PathBuf, Option<Pinned>)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = std::mem::take(&mut self.0);
            PINNED.with(|p| *p.borrow_mut() = outer);
        }
    }
    let pins = paths.into_iter().map(|p| (p, None)).collect();
    let _restore = Restore(PINNED.with(|p| p.replace(pins)));
    f()
}

/// [`read`], with the opened file's modification time (from the `fstat`
/// that checked it: no system call more). A file pinned by
/// [`read_once_within`] is read at most once.
fn read_dated(path: &Path, opts: ReadOptions) -> Result<Dated, ReadError> {
    // A pinned file read before: its first outcome, replayed in place.
    // Pinned and not yet read: its index, to keep this read.
    let pinned = PINNED.with(|p| {
        let pins = p.borrow();
        let i = pins.iter().position(|(pinned, _)| pinned == path)?;
        Some(pins[i].1.as_ref().map(|first| first.replay(opts)).ok_or(i))
    });
    match pinned {
        None => read_dated_now(path, opts),
        Some(Ok(replayed)) => replayed,
        Some(Err(i)) => {
            let read = read_dated_now(path, opts);
            let kept = Pinned::of(&read);
            PINNED.with(|p| p.borrow_mut()[i].1 = Some(kept));
            read
        }
    }
}

fn read_dated_now(path: &Path, opts: ReadOptions) -> Result<Dated, ReadError> {
    let (file, meta) = open_checked(path, opts)?;
    let len = meta.len();
    // A file that reports no size (`/proc`, `/sys`) is read 16 KiB at a
    // time rather than from std's 32-byte probe doubling up: two `read`s for
    // `/proc/self/mountinfo` instead of eight.
    let cap = if len == 0 {
        opts.max.min(PSEUDO_FILE_READ)
    } else {
        len
    };
    let mut buf = Vec::with_capacity(cap as usize);
    // Bounded: the file may have grown since the fstat.
    file.take(opts.max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > opts.max {
        return Err(ReadError::TooLarge {
            size: buf.len() as u64,
            max: opts.max,
        });
    }
    Ok(Dated {
        bytes: buf,
        modified: meta.modified().ok(),
    })
}

/// Open a regular file under the caller's options, checked as [`read`]
/// checks it, for a caller that reads it in parts: the file and the size
/// the check saw (at most `opts.max`; the file may have grown since).
pub fn open(path: &Path, opts: ReadOptions) -> Result<(std::fs::File, u64), ReadError> {
    open_checked(path, opts).map(|(file, meta)| (file, meta.len()))
}

fn open_checked(
    path: &Path,
    opts: ReadOptions,
) -> Result<(std::fs::File, std::fs::Metadata), ReadError> {
    let mut flags = nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC;
    if opts.refuse_symlink {
        flags |= nix::libc::O_NOFOLLOW;
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
    {
        Ok(f) => f,
        // O_NOFOLLOW on a symlink.
        Err(e) if opts.refuse_symlink && e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(ReadError::NotRegular)
        }
        Err(e) => return Err(e.into()),
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular);
    }
    if meta.len() > opts.max {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            max: opts.max,
        });
    }
    if opts.refuse_hard_links && meta.nlink() != 1 {
        return Err(ReadError::HardLinks(meta.nlink()));
    }
    Ok((file, meta))
}

/// Read a regular file under the caller's options in parts, handing each
/// part to `each` in order, for a caller that digests a file it never needs
/// whole. The same checks as [`read`]; a file that grew past `opts.max`
/// since the check is refused before its excess is handed on. Returns the
/// number of bytes read.
pub fn read_each(
    path: &Path,
    opts: ReadOptions,
    mut each: impl FnMut(&[u8]),
) -> Result<u64, ReadError> {
    let (file, len) = open(path, opts)?;
    // As large as the file (and one byte to see it grew), at most 64 KiB.
    let mut chunk = vec![0u8; (len.saturating_add(1)).min(64 * 1024) as usize];
    let mut limited = file.take(opts.max + 1);
    let mut total = 0u64;
    loop {
        let n = match limited.read(&mut chunk) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        total += n as u64;
        if total > opts.max {
            return Err(ReadError::TooLarge {
                size: total,
                max: opts.max,
            });
        }
        each(&chunk[..n]);
    }
}

/// Read at most `max` bytes of the regular file `path`; `None` when the
/// file is larger. Symlinks are followed. Anything but a regular file is an
/// `InvalidInput` error, at once.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    read_bounded_dated(path, max).map(|read| read.map(|d| d.bytes))
}

/// [`read_bounded`], with the opened file's modification time ([`Dated`]).
pub fn read_bounded_dated(path: &Path, max: u64) -> std::io::Result<Option<Dated>> {
    match read_dated(path, ReadOptions::bounded(max)) {
        Ok(d) => Ok(Some(d)),
        Err(ReadError::TooLarge { .. }) => Ok(None),
        Err(ReadError::Io(e)) => Err(e),
        Err(e) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            e.to_string(),
        )),
    }
}

/// Whether a write must survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync` the file before the rename and the directory after it.
    Durable,
    /// Rename only: readers see the old or the new bytes whole, but a crash
    /// may lose the write (for caches whose loss costs only work).
    BestEffort,
}

/// Replace `path` with `bytes` atomically: a temporary file in the same
/// directory (which must exist), then a rename. On error the temporary file
/// is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8], durability: Durability) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    if durability == Durability::Durable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if durability == Durability::Durable {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_pinned_file_is_read_once_within_its_scope() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pub");
        let gone = dir.path().join("ca.pem");
        let other = dir.path().join("other");
        std::fs::write(&key, b"first").unwrap();
        std::fs::write(&other, b"first").unwrap();
        let opts = ReadOptions::bounded(64);
        let seen = read_once_within([key.clone(), gone.clone()], || {
            assert_eq!(read(&key, opts).unwrap(), b"first");
            assert!(read(&gone, opts).unwrap_err().is_not_found());
            // Replaced (a new file renamed over it), and the missing one
            // placed, during the scope.
            std::fs::write(dir.path().join("new"), b"second").unwrap();
            std::fs::rename(dir.path().join("new"), &key).unwrap();
            std::fs::write(&gone, b"now here").unwrap();
            std::fs::write(&other, b"second").unwrap();
            let again = read_bounded(&key, 64).unwrap().unwrap();
            let still_gone = read_bounded(&gone, 64).unwrap_err();
            // A smaller bound still applies to the kept bytes.
            let small = read(&key, ReadOptions::bounded(3)).unwrap_err();
            (again, still_gone.kind(), small, read(&other, opts).unwrap())
        });
        assert_eq!(seen.0, b"first");
        assert_eq!(seen.1, std::io::ErrorKind::NotFound);
        assert!(matches!(seen.2, ReadError::TooLarge { size: 5, max: 3 }));
        // Files not pinned are read as they are.
        assert_eq!(seen.3, b"second");
        // Outside the scope, the file's current bytes.
        assert_eq!(read(&key, opts).unwrap(), b"second");
        assert_eq!(read(&gone, opts).unwrap(), b"now here");
    }

    /// Run `f` in a thread; fail (instead of hanging) if it blocks.
    pub(crate) fn refuses_at_once<T: Send + 'static>(
        what: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{what}: the read blocked on a FIFO"))
    }

    pub(crate) fn fifo(path: &Path) {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }

    #[test]
    fn a_fifo_is_refused_at_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        fifo(&p);
        let r = refuses_at_once("fsio::read", move || read(&p, ReadOptions::bounded(10)));
        assert!(matches!(r, Err(ReadError::NotRegular)), "{r:?}");
    }

    #[test]
    fn bounds_symlinks_and_links_are_per_caller() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read(&p, ReadOptions::bounded(5)).unwrap(), b"12345");
        assert!(matches!(
            read(&p, ReadOptions::bounded(4)),
            Err(ReadError::TooLarge { size: 5, max: 4 })
        ));
        assert_eq!(read_bounded(&p, 4).unwrap(), None);
        let l = d.path().join("l");
        std::os::unix::fs::symlink(&p, &l).unwrap();
        assert_eq!(read(&l, ReadOptions::bounded(5)).unwrap(), b"12345");
        assert!(matches!(
            read(&l, ReadOptions::bounded(5).no_symlink()),
            Err(ReadError::NotRegular)
        ));
        let h = d.path().join("h");
        std::fs::hard_link(&p, &h).unwrap();
        assert!(read(&h, ReadOptions::bounded(5)).is_ok());
        assert!(matches!(
            read(&h, ReadOptions::bounded(5).single_link()),
            Err(ReadError::HardLinks(2))
        ));
        assert!(read(&d.path().join("missing"), ReadOptions::bounded(5))
            .unwrap_err()
            .is_not_found());
        assert!(matches!(
            read(d.path(), ReadOptions::bounded(5)),
            Err(ReadError::NotRegular)
        ));
    }

    #[test]
    fn read_each_hands_on_every_part_in_order_under_the_same_checks() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        // Larger than one 64 KiB part.
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &bytes).unwrap();
        let mut seen = Vec::new();
        let n = read_each(&p, ReadOptions::bounded(200_000), |part| {
            seen.extend_from_slice(part)
        })
        .unwrap();
        assert_eq!((n, seen == bytes), (200_000, true));
        let mut handed = 0usize;
        assert!(matches!(
            read_each(&p, ReadOptions::bounded(199_999), |part| handed +=
                part.len()),
            Err(ReadError::TooLarge { .. })
        ));
        assert_eq!(handed, 0, "the fstat bound refuses before any part");
        let f = d.path().join("fifo");
        fifo(&f);
        let r = refuses_at_once("fsio::read_each", move || {
            read_each(&f, ReadOptions::bounded(10), |_| ())
        });
        assert!(matches!(r, Err(ReadError::NotRegular)), "{r:?}");
    }

    #[test]
    fn write_atomic_replaces_whole_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out");
        write_atomic(&p, b"one", Durability::Durable).unwrap();
        write_atomic(&p, b"two", Durability::BestEffort).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert!(write_atomic(&d.path().join("no/such/dir/f"), b"x", Durability::Durable).is_err());
    }
}
