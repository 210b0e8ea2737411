//! Keys, prefixes and their NATS spelling.
//!
//! Bytes arrive from C, Python and Go as untrusted buffers; everything past this module
//! works on a `&str` that is known to be a valid key or prefix, so the backends never
//! re-check. The NATS codec is a bijection between coordkv keys (`/nodes/n-1`) and NATS
//! KV keys (`nodes.n-1`): segments are joined with `.`, and inside a segment every byte
//! outside `A-Z a-z 0-9 - _` is written `=XX`. Plain keys stay readable to any NATS
//! client, and a segment-aligned prefix becomes a server-side subject filter.

use crate::error::{shown, Error, Result};

/// Longest key, in bytes of its UTF-8 form.
pub const MAX_KEY_LEN: usize = 1024;

/// Raw bytes as UTF-8 text, with an error naming `what` and the first bad byte.
pub fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        Error::invalid(format!(
            "{what} is not valid UTF-8 (bad byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// Checks raw bytes and returns them as a valid key.
pub fn key_from_bytes(bytes: &[u8]) -> Result<&str> {
    let key = utf8(bytes, "key")?;
    validate_key(key)?;
    Ok(key)
}

/// Checks raw bytes and returns them as a valid prefix.
pub fn prefix_from_bytes(bytes: &[u8]) -> Result<&str> {
    let prefix = utf8(bytes, "prefix")?;
    validate_prefix(prefix)?;
    Ok(prefix)
}

/// A key is `/` followed by non-empty segments separated by `/`: no trailing `/`,
/// no NUL, at most [`MAX_KEY_LEN`] bytes.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("key is empty; a key looks like /a/b"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::invalid(format!(
            "key is {} bytes; the limit is {MAX_KEY_LEN}",
            key.len()
        )));
    }
    if !key.starts_with('/') {
        return Err(Error::invalid(format!(
            "key {} must start with '/'",
            shown(key)
        )));
    }
    if key.len() == 1 {
        return Err(Error::invalid(
            "key \"/\" has no segment; a key looks like /a/b",
        ));
    }
    if key.ends_with('/') {
        return Err(Error::invalid(format!(
            "key {} must not end with '/'",
            shown(key)
        )));
    }
    if key.as_bytes().contains(&0) {
        return Err(Error::invalid(format!(
            "key {} contains a NUL byte",
            shown(key)
        )));
    }
    if key.contains("//") {
        return Err(Error::invalid(format!(
            "key {} has an empty segment",
            shown(key)
        )));
    }
    Ok(())
}

/// A prefix is any string that starts with `/`, without NUL, at most [`MAX_KEY_LEN`] bytes.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if !prefix.starts_with('/') {
        return Err(Error::invalid(format!(
            "prefix {} must start with '/'",
            shown(prefix)
        )));
    }
    if prefix.len() > MAX_KEY_LEN {
        return Err(Error::invalid(format!(
            "prefix is {} bytes; the limit is {MAX_KEY_LEN}",
            prefix.len()
        )));
    }
    if prefix.as_bytes().contains(&0) {
        return Err(Error::invalid(format!(
            "prefix {} contains a NUL byte",
            shown(prefix)
        )));
    }
    Ok(())
}

/// Whether `key` is matched by `prefix` (byte-wise, like etcd).
pub fn matches_prefix(key: &str, prefix: &str) -> bool {
    key.as_bytes().starts_with(prefix.as_bytes())
}

/// What a watch covers: the key `target` itself, or every key under it when `prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    pub target: &'a str,
    pub prefix: bool,
}

impl Scope<'_> {
    /// Whether `key` is in this scope.
    pub fn contains(&self, key: &str) -> bool {
        if self.prefix {
            matches_prefix(key, self.target)
        } else {
            key == self.target
        }
    }
}

fn keeps_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn encode_segment(segment: &str, out: &mut String) {
    for &b in segment.as_bytes() {
        if keeps_byte(b) {
            out.push(b as char);
        } else {
            out.push('=');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xF) as usize] as char);
        }
    }
}

/// The NATS KV key of a valid coordkv key: `/nodes/n 1` -> `nodes.n=201`.
pub fn to_nats(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for (i, segment) in key[1..].split('/').enumerate() {
        if i > 0 {
            out.push('.');
        }
        encode_segment(segment, &mut out);
    }
    out
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The coordkv key of a NATS KV key written by coordkv (or by anyone using the same
/// spelling). Fails on anything [`to_nats`] cannot produce, so the mapping stays a bijection.
pub fn from_nats(nats_key: &str) -> Result<String> {
    let bad =
        |why: &str| Error::invalid(format!("NATS key {nats_key:?} is not a coordkv key: {why}"));
    if nats_key.is_empty() {
        return Err(bad("empty"));
    }
    let mut bytes = Vec::with_capacity(nats_key.len() + 1);
    for segment in nats_key.split('.') {
        if segment.is_empty() {
            return Err(bad("empty segment"));
        }
        bytes.push(b'/');
        let raw = segment.as_bytes();
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            if keeps_byte(b) {
                bytes.push(b);
                i += 1;
            } else if b == b'=' {
                let (hi, lo) = match (raw.get(i + 1), raw.get(i + 2)) {
                    (Some(&h), Some(&l)) => (hex_value(h), hex_value(l)),
                    _ => (None, None),
                };
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        let decoded = (h << 4) | l;
                        if keeps_byte(decoded) {
                            return Err(bad("escapes a byte that is never escaped"));
                        }
                        bytes.push(decoded);
                        i += 3;
                    }
                    _ => return Err(bad("'=' must be followed by two upper-case hex digits")),
                }
            } else {
                return Err(bad("byte outside A-Z a-z 0-9 - _ = ."));
            }
        }
    }
    let key = String::from_utf8(bytes).map_err(|_| bad("decodes to invalid UTF-8"))?;
    validate_key(&key).map_err(|e| bad(e.message()))?;
    Ok(key)
}

/// How a prefix is served on NATS: the subject filter (relative to the bucket, `>` for
/// everything) that the server applies, and whether the core must filter further because
/// the prefix does not end on a segment boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsFilter {
    pub subject: String,
    pub needs_core_filter: bool,
}

/// `/nodes/` -> `nodes.>`; `/` -> `>`; `/nodes/n-` -> `nodes.>` plus a core filter.
pub fn prefix_to_nats_filter(prefix: &str) -> NatsFilter {
    let aligned_end = prefix.rfind('/').expect("validated prefix starts with '/'");
    let aligned = &prefix[..=aligned_end];
    let needs_core_filter = aligned.len() != prefix.len();
    if aligned == "/" {
        return NatsFilter {
            subject: ">".to_string(),
            needs_core_filter,
        };
    }
    let inner = &aligned[1..aligned.len() - 1];
    if inner.split('/').any(str::is_empty) {
        // An empty segment matches no valid key; `>` with the core filter stays correct.
        return NatsFilter {
            subject: ">".to_string(),
            needs_core_filter: true,
        };
    }
    let mut subject = to_nats(&aligned[..aligned.len() - 1]);
    subject.push_str(".>");
    NatsFilter {
        subject,
        needs_core_filter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_unaligned_filters() {
        assert_eq!(prefix_to_nats_filter("/").subject, ">");
        let f = prefix_to_nats_filter("/nodes/");
        assert_eq!(
            (f.subject.as_str(), f.needs_core_filter),
            ("nodes.>", false)
        );
        let f = prefix_to_nats_filter("/nodes/n-");
        assert_eq!((f.subject.as_str(), f.needs_core_filter), ("nodes.>", true));
        let f = prefix_to_nats_filter("/nod");
        assert_eq!((f.subject.as_str(), f.needs_core_filter), (">", true));
        let f = prefix_to_nats_filter("/a b/c/");
        assert_eq!(f.subject, "a=20b.c.>");
    }
}
