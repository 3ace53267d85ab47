//! What is mounted at a path, as the kernel records it: the topmost mount's
//! filesystem type, its root within its filesystem and its filesystem
//! options.
//!
//! This module owns the two ways of asking:
//! - `statx(2)` for the path's mount ID, then `statmount(2)` for that one
//!   mount (Linux 6.8; the options since 6.11). Its cost does not depend on
//!   how many mounts the node has.
//! - `/proc/self/mountinfo`, read with the one bounded file reader and
//!   searched for the path. The kernel formats every mount of the namespace
//!   on each read: about 6 µs per overlay mount on the bench machine, so a
//!   node running a few hundred containers pays milliseconds per read. It is
//!   the fallback for kernels without `statmount` (Debian 12's 6.1).
//!
//! Both answer the same question with the same fields; a test checks them
//! against each other on every mount of the machine it runs on.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::base::fsio;

/// Largest `/proc/self/mountinfo` read.
const MAX_MOUNTINFO_BYTES: u64 = 16 * 1024 * 1024;
/// Largest `statmount(2)` answer asked for (the fixed part and the strings).
const MAX_STATMOUNT_BYTES: usize = 16 * 1024 * 1024;
/// First `statmount(2)` buffer: the fixed part and 4 KiB of strings.
const FIRST_STATMOUNT_BYTES: usize = 512 + 4096;

/// `statmount(2)`'s number: 457 on every architecture but alpha and mips.
/// (The libc crate has it for few architectures yet.)
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYS_STATMOUNT: nix::libc::c_long = 457;

// include/uapi/linux/mount.h
const STATMOUNT_SB_BASIC: u64 = 0x01;
const STATMOUNT_MNT_ROOT: u64 = 0x08;
const STATMOUNT_MNT_POINT: u64 = 0x10;
const STATMOUNT_FS_TYPE: u64 = 0x20;
const STATMOUNT_MNT_OPTS: u64 = 0x80;
const STATMOUNT_SUPPORTED_MASK: u64 = 0x1000;
/// What every answer must carry.
const ALWAYS: u64 =
    STATMOUNT_SB_BASIC | STATMOUNT_MNT_ROOT | STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE;
/// What is asked for. The kernel leaves `STATMOUNT_MNT_OPTS` out of its
/// answer when a mount has no options, so whether it could have given them
/// is read from the supported mask (Linux 6.15); a kernel without that mask
/// that gave no options is not trusted to have none, and mountinfo is read.
const WANTED: u64 = ALWAYS | STATMOUNT_MNT_OPTS | STATMOUNT_SUPPORTED_MASK;
/// `struct mnt_id_req`'s first published size.
const MNT_ID_REQ_SIZE_VER0: u32 = 24;
/// Where `struct statmount`'s strings start (its fixed part's size).
const STATMOUNT_STR: usize = 512;
// Superblock flags as `statmount` reports them and as mountinfo prints them
// (`ro`/`rw` first, then these in this order).
const SB_RDONLY: u32 = 0x01;
const SB_FLAG_NAMES: [(u32, &str); 3] = [(0x10, "sync"), (0x80, "dirsync"), (1 << 25, "lazytime")];

/// A mount as the kernel records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedFs {
    /// Filesystem type.
    pub fstype: String,
    /// Root of the mount within its filesystem.
    pub root: String,
    /// Super options: `ro` or `rw`, the superblock's flags, then the
    /// filesystem's own options (mountinfo's escapes undone).
    pub options: Vec<String>,
}

/// Why the mount at a path could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MountsError {
    /// `/proc/self/mountinfo` could not be read.
    #[error("cannot read /proc/self/mountinfo: {0}")]
    Mountinfo(#[from] fsio::ReadError),
    /// `/proc/self/mountinfo` is not text.
    #[error("cannot read /proc/self/mountinfo: not UTF-8")]
    MountinfoNotUtf8,
    /// The path cannot be passed to the kernel.
    #[error("{0}: the path contains a NUL byte")]
    Path(PathBuf),
    /// `statx(2)` or `statmount(2)` failed for a reason other than "not
    /// supported here".
    #[error("cannot read the mount at {path}: {call}: {source}")]
    Call {
        /// The path asked about.
        path: PathBuf,
        /// The system call.
        call: &'static str,
        /// The kernel's answer.
        source: io::Error,
    },
    /// The kernel's `statmount` answer is larger than this module reads.
    #[error("cannot read the mount at {0}: its statmount record is larger than {MAX_STATMOUNT_BYTES} bytes")]
    TooLarge(PathBuf),
    /// The kernel's `statmount` answer is malformed.
    #[error("cannot read the mount at {0}: the statmount record is malformed")]
    Malformed(PathBuf),
}

/// The topmost mount at `point`, or `None` if `point` is not a mount point.
/// Asks `statmount(2)` where the kernel has it, `/proc/self/mountinfo`
/// otherwise.
pub fn mounted_at(point: &Path) -> Result<Option<MountedFs>, MountsError> {
    match statmount_at(point)? {
        Answer::Known(m) => Ok(m),
        Answer::Unsupported => mountinfo_at(point),
    }
}

/// The topmost mount at `point`, searched for in `/proc/self/mountinfo`.
pub fn mountinfo_at(point: &Path) -> Result<Option<MountedFs>, MountsError> {
    let p = Path::new("/proc/self/mountinfo");
    let bytes = fsio::read(p, fsio::ReadOptions::bounded(MAX_MOUNTINFO_BYTES))?;
    let text = String::from_utf8(bytes).map_err(|_| MountsError::MountinfoNotUtf8)?;
    Ok(mount_at(&text, point))
}

/// What `statmount(2)` said.
#[derive(Debug)]
pub enum Answer {
    /// The kernel answered: the mount at the path, or none.
    Known(Option<MountedFs>),
    /// This kernel cannot answer (no `statmount`, or no mount options in it).
    Unsupported,
}

/// The topmost mount at `point`, asked of `statx(2)` and `statmount(2)`.
pub fn statmount_at(point: &Path) -> Result<Answer, MountsError> {
    statmount_sized(point, FIRST_STATMOUNT_BYTES)
}

/// [`statmount_at`] with a first buffer of `first` bytes.
fn statmount_sized(point: &Path, first: usize) -> Result<Answer, MountsError> {
    let cpath =
        CString::new(point.as_os_str().as_bytes()).map_err(|_| MountsError::Path(point.into()))?;
    let call = |call, source| MountsError::Call {
        path: point.into(),
        call,
        source,
    };
    let id = match unique_mount_id(&cpath).map_err(|e| call("statx", e))? {
        Kernel::Got(id) => id,
        Kernel::Nothing => return Ok(Answer::Known(None)),
        Kernel::Cannot => return Ok(Answer::Unsupported),
    };
    let buf = match statmount(id, point, first)? {
        Kernel::Got(buf) => buf,
        // The mount went away between the two calls.
        Kernel::Nothing => return Ok(Answer::Known(None)),
        Kernel::Cannot => return Ok(Answer::Unsupported),
    };
    let bad = || MountsError::Malformed(point.into());
    let u32_at = |o| field(&buf, o).map(u32::from_ne_bytes).ok_or_else(bad);
    let u64_at = |o| field(&buf, o).map(u64::from_ne_bytes).ok_or_else(bad);
    let mask = u64_at(8)?;
    let has_opts = mask & STATMOUNT_MNT_OPTS != 0;
    // struct statmount: supported_mask at 144.
    let could_have_opts = has_opts
        || (mask & STATMOUNT_SUPPORTED_MASK != 0 && u64_at(144)? & STATMOUNT_MNT_OPTS != 0);
    if mask & ALWAYS != ALWAYS || !could_have_opts {
        return Ok(Answer::Unsupported);
    }
    let str_at = |o: usize| -> Result<String, MountsError> {
        let start = STATMOUNT_STR + u32_at(o)? as usize;
        let rest = buf.get(start..).ok_or_else(bad)?;
        let end = rest.iter().position(|&b| b == 0).ok_or_else(bad)?;
        String::from_utf8(rest[..end].to_vec()).map_err(|_| bad())
    };
    // struct statmount: mnt_opts at 4, sb_flags at 32, fs_type at 36,
    // mnt_root at 104, mnt_point at 108.
    if normalize(Path::new(&str_at(108)?)) != normalize(point) {
        // The path is inside a mount, not the root of one.
        return Ok(Answer::Known(None));
    }
    let sb_flags = u32_at(32)?;
    let mut options = vec![if sb_flags & SB_RDONLY != 0 {
        "ro"
    } else {
        "rw"
    }
    .to_string()];
    options.extend(
        SB_FLAG_NAMES
            .iter()
            .filter(|(f, _)| sb_flags & f != 0)
            .map(|(_, n)| n.to_string()),
    );
    if has_opts {
        let opts = str_at(4)?;
        options.extend(opts.split(',').filter(|o| !o.is_empty()).map(unescape));
    }
    Ok(Answer::Known(Some(MountedFs {
        fstype: str_at(36)?,
        root: str_at(104)?,
        options,
    })))
}

/// The `N` bytes at offset `o` of a statmount record.
fn field<const N: usize>(buf: &[u8], o: usize) -> Option<[u8; N]> {
    buf.get(o..o.checked_add(N)?)?.try_into().ok()
}

/// What a system call of this module said.
enum Kernel<T> {
    /// The answer.
    Got(T),
    /// Nothing there: no file at the path, or the mount is gone.
    Nothing,
    /// This kernel cannot answer (no such call, or a filter refusing it).
    Cannot,
}

/// The unique ID of the mount `path` resolves to (symlinks not followed).
fn unique_mount_id(path: &CString) -> io::Result<Kernel<u64>> {
    use nix::libc;
    // SAFETY: statx is plain old data, for which all zeroes is a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `stx` a statx the
    // kernel writes into; both outlive the call.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT,
            libc::STATX_MNT_ID_UNIQUE,
            &mut stx,
        )
    };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            // no statx, or a filter (seccomp) refusing it: mountinfo answers
            Some(libc::ENOSYS | libc::EPERM) => Ok(Kernel::Cannot),
            Some(libc::ENOENT | libc::ENOTDIR) => Ok(Kernel::Nothing),
            _ => Err(e),
        };
    }
    if stx.stx_mask & libc::STATX_MNT_ID_UNIQUE == 0 {
        return Ok(Kernel::Cannot);
    }
    Ok(Kernel::Got(stx.stx_mnt_id))
}

/// The raw `statmount(2)` record of mount `id`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn statmount(id: u64, point: &Path, first: usize) -> Result<Kernel<Vec<u8>>, MountsError> {
    use nix::libc;
    // struct mnt_id_req, version 0: size, a spare u32, mnt_id, param.
    #[repr(C)]
    struct MntIdReq {
        size: u32,
        spare: u32,
        mnt_id: u64,
        param: u64,
    }
    let req = MntIdReq {
        size: MNT_ID_REQ_SIZE_VER0,
        spare: 0,
        mnt_id: id,
        param: WANTED,
    };
    let mut len = first.max(STATMOUNT_STR);
    loop {
        // Bytes: the kernel copies its record out with copy_to_user, which
        // asks no alignment of the destination; the fields are read back
        // with from_ne_bytes.
        let mut buf = vec![0u8; len];
        // SAFETY: `req` is a mnt_id_req of the size it states and `buf` a
        // writable buffer of exactly the length passed; both outlive the
        // call, and the kernel writes no further than that length.
        let rc = unsafe {
            libc::syscall(
                SYS_STATMOUNT,
                &req as *const MntIdReq,
                buf.as_mut_ptr(),
                len,
                0u32,
            )
        };
        if rc == 0 {
            return Ok(Kernel::Got(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            // no statmount, a request it does not know, or a filter
            // (seccomp) refusing it: mountinfo answers
            Some(libc::ENOSYS | libc::EINVAL | libc::EPERM | libc::EOPNOTSUPP) => {
                return Ok(Kernel::Cannot)
            }
            Some(libc::ENOENT) => return Ok(Kernel::Nothing),
            Some(libc::EOVERFLOW) if len < MAX_STATMOUNT_BYTES => {
                len = (len * 4).min(MAX_STATMOUNT_BYTES);
            }
            Some(libc::EOVERFLOW) => return Err(MountsError::TooLarge(point.into())),
            _ => {
                return Err(MountsError::Call {
                    path: point.into(),
                    call: "statmount",
                    source: e,
                })
            }
        }
    }
}

/// No `statmount` number is known for this architecture: mountinfo it is.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn statmount(_id: u64, _point: &Path, _first: usize) -> Result<Kernel<Vec<u8>>, MountsError> {
    Ok(Kernel::Cannot)
}

/// Lexical normalization (`.` and trailing slashes; `..` kept, so a path
/// with one never equals one without).
pub fn normalize(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The topmost mount at `mountpoint` in a mountinfo text.
pub fn mount_at(mountinfo: &str, mountpoint: &Path) -> Option<MountedFs> {
    let want = normalize(mountpoint);
    // A mount point without escapes is itself once unescaped, so it can be
    // `want` only if it contains want's last component: most lines of a
    // node's table are passed over without building a path.
    let last = want
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let mut found = None;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut pre = pre.split(' ');
        let (Some(root), Some(point)) = (pre.nth(3), pre.next()) else {
            continue;
        };
        let mut post = post.split(' ');
        let (Some(fstype), Some(options)) = (post.next(), post.nth(1)) else {
            continue;
        };
        if !point.contains('\\') && !point.contains(last) {
            continue;
        }
        if normalize(Path::new(&unescape(point))) != want {
            continue;
        }
        found = Some(MountedFs {
            fstype: fstype.to_string(),
            root: unescape(root),
            options: options.split(',').map(unescape).collect(),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_the_topmost_mount_with_escapes_undone() {
        let info = "\
100 20 0:50 / /b/rootfs rw,relatime - overlay overlay rw,lowerdir=/s/2/fs:/s/1/fs,upperdir=/s/9/fs
101 20 0:51 /sub\\040dir /b/rootfs\\040x rw - tmpfs tmpfs rw,size=1k
";
        let m = mount_at(info, Path::new("/b/rootfs/")).unwrap();
        assert_eq!(m.fstype, "overlay");
        assert_eq!(m.root, "/");
        assert_eq!(
            m.options,
            ["rw", "lowerdir=/s/2/fs:/s/1/fs", "upperdir=/s/9/fs"]
        );
        let x = mount_at(info, Path::new("/b/rootfs x")).unwrap();
        assert_eq!((x.fstype.as_str(), x.root.as_str()), ("tmpfs", "/sub dir"));
        let stacked = format!("{info}103 20 0:53 / /b/rootfs rw - tmpfs tmpfs rw\n");
        assert_eq!(
            mount_at(&stacked, Path::new("/b/rootfs")).unwrap().fstype,
            "tmpfs"
        );
        assert!(mount_at(info, Path::new("/b")).is_none());
        assert!(mount_at("garbage\n\n- -\n", Path::new("/b/rootfs")).is_none());
    }

    /// The kernel's release as (major, minor).
    fn kernel() -> (u32, u32) {
        let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut p = r.split(|c: char| !c.is_ascii_digit());
        let n = |s: Option<&str>| s.and_then(|s| s.parse().ok()).unwrap_or(0);
        (n(p.next()), n(p.next()))
    }

    /// statmount and mountinfo agree on every mount point of this machine
    /// (but a few behind symbolic links); on an older kernel the statmount
    /// way may say it cannot answer, and the gate then reads mountinfo.
    #[test]
    fn statmount_and_mountinfo_agree_on_every_mount_of_this_machine() {
        let info = String::from_utf8(std::fs::read("/proc/self/mountinfo").unwrap()).unwrap();
        let points: Vec<String> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(unescape))
            .collect();
        assert!(!points.is_empty());
        let (mut compared, mut uncompared) = (0, vec![]);
        for p in &points {
            let path = Path::new(p);
            let Some(from_info) = mount_at(&info, path) else {
                continue;
            };
            match statmount_at(path) {
                Ok(Answer::Known(Some(m))) => {
                    assert_eq!(m, from_info, "{p}");
                    compared += 1;
                }
                // Before 6.15 the kernel cannot say whether a mount without
                // options has none; before 6.11 it gives no options at all.
                Ok(Answer::Unsupported) => assert!(kernel() < (6, 15), "{p}: {:?}", kernel()),
                // Reached through a symbolic link, or out of this root.
                other => uncompared.push(format!("{p}: {other:?}")),
            }
        }
        if kernel() >= (6, 15) {
            assert!(
                compared > 0 && uncompared.len() <= compared / 4,
                "{compared} compared; not answered: {uncompared:?}"
            );
        }
        // what the gate calls gives the same answer as mountinfo
        let root = Path::new("/");
        assert_eq!(mounted_at(root).unwrap(), mount_at(&info, root));
        // a record larger than the first buffer: the buffer grows
        if let Ok(Answer::Known(Some(m))) = statmount_at(root) {
            match statmount_sized(root, STATMOUNT_STR + 1) {
                Ok(Answer::Known(Some(small))) => assert_eq!(small, m),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_path_that_is_not_a_mount_point_has_no_mount() {
        let d = tempfile::tempdir().unwrap();
        let inside = d.path().join("dir");
        std::fs::create_dir(&inside).unwrap();
        assert_eq!(mounted_at(&inside).unwrap(), None);
        assert_eq!(mountinfo_at(&inside).unwrap(), None);
        assert_eq!(mounted_at(&d.path().join("absent")).unwrap(), None);
        assert!(matches!(
            statmount_at(Path::new("/a\0b")),
            Err(MountsError::Path(_))
        ));
    }
}
