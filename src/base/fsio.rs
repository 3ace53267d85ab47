//! The one bounded reader of regular files.

use std::io::Read;
use std::path::Path;

/// Read at most `max` bytes of `path`; `None` when the file is larger.
/// Only a regular file is read: the open is non-blocking, so a FIFO placed
/// where a file was expected is refused at once instead of blocking until a
/// writer appears (the flag does nothing to a regular file's reads).
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut buf = Vec::new();
    file.take(max + 1).read_to_end(&mut buf)?;
    Ok((buf.len() as u64 <= max).then_some(buf))
}
