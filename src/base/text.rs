//! Text helpers: hex and one-line messages.

/// Lower-case hex of `bytes` (one allocation; the start path writes the
/// digests of its verdict key with it).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Collapse a message onto one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The last non-empty line of a failed tool's stderr (journalctl's,
/// containerd's), trimmed: the reason, without the lines before it, so that
/// an error quoting it stays one line.
pub fn last_line(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_tool_is_quoted_by_its_last_non_empty_line() {
        let stderr = b"Hint: You are currently not seeing messages from other users.\n  Failed to parse timestamp: bogus  \n\n";
        assert_eq!(last_line(stderr), "Failed to parse timestamp: bogus");
        assert_eq!(last_line(b""), "");
        assert_eq!(last_line(b"\n \n"), "");
    }
}
