//! The policy artifact: a node policy and every file it refers to, as one
//! OCI artifact (`portcullis policy publish` / `policy pull`).
//!
//! This module owns the artifact's bytes: its artifact type, the layer (an
//! uncompressed tar of `policy.toml` and `files/…`, written deterministically
//! and read back with every path checked), the manifest and its annotations
//! (serial, expiry, creation time, policy digest: covered by a signature over
//! the manifest digest), cosign's simple-signing payload for that digest, and
//! the OCI image layout file for air-gapped sites. It signs and fetches
//! nothing: [`crate::ops`] does.

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::json;

/// The artifact type (`artifactType` of the manifest).
pub const ARTIFACT_TYPE: &str = "application/vnd.portcullis.policy.v1";
/// The media type of the one layer: an uncompressed tar.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.portcullis.policy.layer.v1.tar";
/// The OCI image manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI 1.1 empty config descriptor's media type.
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's bytes.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// The image config media type cosign's `.sig` images use.
pub const SIG_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The policy file's name inside the artifact.
pub const POLICY_FILE: &str = "policy.toml";
/// The folder of the files the policy refers to, inside the artifact.
pub const FILES_DIR: &str = "files";

/// Annotation: the monotonically increasing serial (decimal).
pub const SERIAL: &str = "dev.portcullis.policy.serial";
/// Annotation: when the artifact stops being acceptable (RFC 3339).
pub const EXPIRES: &str = "dev.portcullis.policy.expires";
/// Annotation: `sha256:<hex>` of `policy.toml`.
pub const POLICY_DIGEST: &str = "dev.portcullis.policy.digest";
/// Annotation: creation time (RFC 3339), the OCI standard key.
pub const CREATED: &str = "org.opencontainers.image.created";
/// Index annotation naming a manifest's tag in an OCI image layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Largest layer (all files together) accepted, in bytes.
pub const MAX_LAYER_BYTES: u64 = 16 * 1024 * 1024;
/// Largest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;
/// Most files in one artifact.
pub const MAX_FILES: usize = 256;

/// Errors reading or writing the artifact.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArtifactError {
    /// The manifest is not this artifact.
    #[error("not a Portcullis policy artifact: {0}")]
    NotPolicy(String),
    /// An annotation is missing or unusable.
    #[error("policy artifact annotation `{key}`: {why}")]
    Annotation {
        /// Which annotation.
        key: &'static str,
        /// Why.
        why: String,
    },
    /// The layer is not a usable tar of the policy and its files.
    #[error("policy artifact layer: {0}")]
    Layer(String),
    /// A blob does not hash to the digest that names it.
    #[error("{what} hashes to {actual}, not {expected}: the artifact was altered after signing")]
    DigestMismatch {
        /// Which blob.
        what: String,
        /// The digest the manifest names.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
}

/// What the manifest's annotations say (all covered by its signature).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Metadata {
    /// The serial: a node refuses one lower than what it has.
    pub serial: u64,
    /// After this instant the artifact is refused (freeze protection).
    pub expires: jiff::Timestamp,
    /// When it was published.
    pub created: jiff::Timestamp,
    /// `sha256:<hex>` of `policy.toml`.
    pub policy_digest: String,
}

impl Metadata {
    /// The manifest annotations.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (SERIAL.to_string(), self.serial.to_string()),
            (EXPIRES.to_string(), rfc3339(self.expires)),
            (CREATED.to_string(), rfc3339(self.created)),
            (POLICY_DIGEST.to_string(), self.policy_digest.clone()),
        ])
    }

    /// Read them back.
    pub fn from_annotations(a: &BTreeMap<String, String>) -> Result<Metadata, ArtifactError> {
        let get = |key: &'static str| {
            a.get(key).ok_or(ArtifactError::Annotation {
                key,
                why: "missing".into(),
            })
        };
        let time = |key: &'static str| -> Result<jiff::Timestamp, ArtifactError> {
            get(key)?.parse().map_err(|e| ArtifactError::Annotation {
                key,
                why: format!("not an RFC 3339 time: {e}"),
            })
        };
        let serial_text = get(SERIAL)?;
        let serial = serial_text
            .parse::<u64>()
            .ok()
            .filter(|_| serial_text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| ArtifactError::Annotation {
                key: SERIAL,
                why: format!("\"{serial_text}\" is not a decimal serial"),
            })?;
        let policy_digest = get(POLICY_DIGEST)?.clone();
        crate::digest::sha256_hex_of(&policy_digest).map_err(|e| ArtifactError::Annotation {
            key: POLICY_DIGEST,
            why: e.to_string(),
        })?;
        Ok(Metadata {
            serial,
            expires: time(EXPIRES)?,
            created: time(CREATED)?,
            policy_digest,
        })
    }
}

fn rfc3339(t: jiff::Timestamp) -> String {
    // Whole seconds: annotations are compared as text by people.
    jiff::Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// One file of the artifact: its path inside it (`policy.toml` or
/// `files/<name>`) and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Relative path, `/`-separated.
    pub path: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Is `path` a plain relative path inside the artifact: `policy.toml`, or
/// `files/<name>` with a name of letters, digits, `.`, `_`, `-` (no
/// leading dot)?
pub fn valid_path(path: &str) -> bool {
    if path == POLICY_FILE {
        return true;
    }
    let Some(name) = path
        .strip_prefix(FILES_DIR)
        .and_then(|p| p.strip_prefix('/'))
    else {
        return false;
    };
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The layer: a tar of `files`, sorted by path, with fixed owner, mode and
/// time, so the same files always give the same digest.
pub fn pack(files: &[File]) -> Result<Vec<u8>, ArtifactError> {
    let mut sorted: Vec<&File> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    check_set(
        sorted
            .iter()
            .map(|f| (f.path.as_str(), f.bytes.len() as u64)),
    )?;
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    for f in sorted {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(f.bytes.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, &f.path, f.bytes.as_slice())
            .map_err(|e| ArtifactError::Layer(format!("cannot write {}: {e}", f.path)))?;
    }
    b.into_inner()
        .map_err(|e| ArtifactError::Layer(format!("cannot finish the tar: {e}")))
}

fn check_set<'a>(entries: impl Iterator<Item = (&'a str, u64)>) -> Result<(), ArtifactError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut total = 0u64;
    for (path, size) in entries {
        if !valid_path(path) {
            return Err(ArtifactError::Layer(format!(
                "entry `{path}` is not policy.toml or files/<name>"
            )));
        }
        if !seen.insert(path.to_string()) {
            return Err(ArtifactError::Layer(format!(
                "entry `{path}` appears twice"
            )));
        }
        if seen.len() > MAX_FILES {
            return Err(ArtifactError::Layer(format!("more than {MAX_FILES} files")));
        }
        total = total.saturating_add(size);
        if total > MAX_LAYER_BYTES {
            return Err(ArtifactError::Layer(format!(
                "files total over {MAX_LAYER_BYTES} bytes"
            )));
        }
    }
    if !seen.contains(POLICY_FILE) {
        return Err(ArtifactError::Layer(format!("no {POLICY_FILE}")));
    }
    Ok(())
}

/// Read a layer back: only regular files at valid paths, no duplicates,
/// bounded in number and size, `policy.toml` present.
pub fn unpack(layer: &[u8]) -> Result<Vec<File>, ArtifactError> {
    if layer.len() as u64 > MAX_LAYER_BYTES + 1024 * 1024 {
        return Err(ArtifactError::Layer(format!(
            "{} bytes, over the limit",
            layer.len()
        )));
    }
    let mut a = tar::Archive::new(layer);
    let mut files = Vec::new();
    let mut total = 0u64;
    let entries = a
        .entries()
        .map_err(|e| ArtifactError::Layer(format!("not a tar: {e}")))?;
    for e in entries {
        let mut e = e.map_err(|e| ArtifactError::Layer(format!("not a tar: {e}")))?;
        let kind = e.header().entry_type();
        let path = e
            .path()
            .map_err(|err| ArtifactError::Layer(format!("bad entry name: {err}")))?
            .to_str()
            .map(String::from)
            .ok_or_else(|| ArtifactError::Layer("entry name is not UTF-8".into()))?;
        if kind == tar::EntryType::Directory && path.trim_end_matches('/') == FILES_DIR {
            continue;
        }
        if kind != tar::EntryType::Regular {
            return Err(ArtifactError::Layer(format!(
                "entry `{path}` is not a regular file"
            )));
        }
        if !valid_path(&path) {
            return Err(ArtifactError::Layer(format!(
                "entry `{path}` is not policy.toml or files/<name>"
            )));
        }
        let size = e.size();
        if size > MAX_LAYER_BYTES {
            return Err(ArtifactError::Layer(format!("entry `{path}` is too large")));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        e.read_to_end(&mut bytes)
            .map_err(|err| ArtifactError::Layer(format!("entry `{path}`: {err}")))?;
        total = total.saturating_add(bytes.len() as u64);
        if total > MAX_LAYER_BYTES || files.len() >= MAX_FILES {
            return Err(ArtifactError::Layer(format!(
                "over {MAX_FILES} files or {MAX_LAYER_BYTES} bytes"
            )));
        }
        files.push(File { path, bytes });
    }
    check_set(
        files
            .iter()
            .map(|f| (f.path.as_str(), f.bytes.len() as u64)),
    )?;
    Ok(files)
}

/// A descriptor as JSON.
fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    json!({
        "mediaType": media_type,
        "digest": crate::digest::sha256_prefixed(bytes),
        "size": bytes.len(),
    })
}

/// The artifact manifest for a layer and its metadata (OCI 1.1: artifact
/// type, empty config).
pub fn manifest(layer: &[u8], meta: &Metadata) -> Vec<u8> {
    let v = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": descriptor(EMPTY_CONFIG_MEDIA_TYPE, EMPTY_CONFIG),
        "layers": [descriptor(LAYER_MEDIA_TYPE, layer)],
        "annotations": meta.annotations(),
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// What a pulled manifest says: its metadata and its one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The annotations.
    pub meta: Metadata,
    /// The layer's digest.
    pub layer_digest: String,
    /// The layer's size.
    pub layer_size: u64,
}

/// Parse a pulled manifest: it must be this artifact type with one layer
/// of [`LAYER_MEDIA_TYPE`] within the size bound.
pub fn parse_manifest(raw: &[u8]) -> Result<Parsed, ArtifactError> {
    if raw.len() > MAX_MANIFEST_BYTES {
        return Err(ArtifactError::NotPolicy(format!(
            "manifest of {} bytes",
            raw.len()
        )));
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Desc {
        media_type: String,
        digest: String,
        size: u64,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct M {
        #[serde(default)]
        artifact_type: Option<String>,
        layers: Vec<Desc>,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    let m: M = serde_json::from_slice(raw)
        .map_err(|e| ArtifactError::NotPolicy(format!("manifest is not an OCI manifest: {e}")))?;
    if m.artifact_type.as_deref() != Some(ARTIFACT_TYPE) {
        return Err(ArtifactError::NotPolicy(format!(
            "artifact type is {}, not {ARTIFACT_TYPE}",
            m.artifact_type.as_deref().unwrap_or("absent")
        )));
    }
    let [layer] = m.layers.as_slice() else {
        return Err(ArtifactError::NotPolicy(format!(
            "{} layers, not 1",
            m.layers.len()
        )));
    };
    if layer.media_type != LAYER_MEDIA_TYPE {
        return Err(ArtifactError::NotPolicy(format!(
            "layer media type {}",
            layer.media_type
        )));
    }
    crate::digest::sha256_hex_of(&layer.digest)
        .map_err(|e| ArtifactError::NotPolicy(format!("layer digest: {e}")))?;
    if layer.size > MAX_LAYER_BYTES {
        return Err(ArtifactError::Layer(format!(
            "{} bytes, over the {MAX_LAYER_BYTES}-byte limit",
            layer.size
        )));
    }
    Ok(Parsed {
        meta: Metadata::from_annotations(&m.annotations)?,
        layer_digest: layer.digest.clone(),
        layer_size: layer.size,
    })
}

/// Check that `bytes` hash to `expected`.
pub fn check_digest(what: &str, bytes: &[u8], expected: &str) -> Result<(), ArtifactError> {
    let actual = crate::digest::sha256_prefixed(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(ArtifactError::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual,
        })
    }
}

/// cosign's simple-signing payload for `digest` in `repository` (what
/// `cosign sign` signs, byte for byte in form).
pub fn simple_signing_payload(repository: &str, digest: &str) -> Vec<u8> {
    let v = json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": crate::cosign::SIGNATURE_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The config blob of a `.sig` image holding one payload layer (the shape
/// cosign writes: an image config whose one diff ID is the payload's digest).
pub fn signature_config(payload: &[u8]) -> Vec<u8> {
    let v = json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [crate::digest::sha256_prefixed(payload)]},
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The `.sig` manifest: one simple-signing layer with its base64 signature
/// in cosign's annotation.
pub fn signature_manifest(config: &[u8], payload: &[u8], signature_b64: &str) -> Vec<u8> {
    let mut layer = descriptor(crate::cosign::SIMPLE_SIGNING_MEDIA_TYPE, payload);
    layer["annotations"] = json!({ crate::cosign::SIGNATURE_ANNOTATION: signature_b64 });
    let v = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptor(SIG_CONFIG_MEDIA_TYPE, config),
        "layers": [layer],
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Blobs and manifests to write as an OCI image layout.
#[derive(Debug, Default, Clone)]
pub struct Layout {
    /// Every blob (manifests included), by digest.
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// The manifests the index lists: (digest, size, tag).
    pub tagged: Vec<(String, u64, String)>,
}

impl Layout {
    /// Add a blob.
    pub fn blob(&mut self, bytes: &[u8]) {
        self.blobs
            .insert(crate::digest::sha256_prefixed(bytes), bytes.to_vec());
    }

    /// Add a manifest under a tag.
    pub fn manifest(&mut self, bytes: &[u8], tag: &str) {
        self.blob(bytes);
        self.tagged.push((
            crate::digest::sha256_prefixed(bytes),
            bytes.len() as u64,
            tag.to_string(),
        ));
    }

    /// The layout as a tar: `oci-layout`, `index.json`, `blobs/sha256/<hex>`.
    pub fn to_tar(&self) -> Result<Vec<u8>, ArtifactError> {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": self.tagged.iter().map(|(d, size, tag)| json!({
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": d,
                "size": size,
                "annotations": {REF_NAME: tag},
            })).collect::<Vec<_>>(),
        });
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |path: &str, bytes: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            b.append_data(&mut h, path, bytes)
                .map_err(|e| ArtifactError::Layer(format!("cannot write {path}: {e}")))
        };
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add(
            "index.json",
            &serde_json::to_vec(&index).unwrap_or_default(),
        )?;
        for (d, bytes) in &self.blobs {
            let hex =
                crate::digest::sha256_hex_of(d).map_err(|e| ArtifactError::Layer(e.to_string()))?;
            add(&format!("blobs/sha256/{hex}"), bytes)?;
        }
        b.into_inner()
            .map_err(|e| ArtifactError::Layer(format!("cannot finish the tar: {e}")))
    }

    /// Read a layout tar back (bounded); blobs are checked against their names.
    pub fn from_tar(bytes: &[u8]) -> Result<Layout, ArtifactError> {
        let bad = |m: String| ArtifactError::Layer(format!("OCI layout: {m}"));
        let mut a = tar::Archive::new(bytes);
        let mut out = Layout::default();
        let mut index = None;
        for e in a.entries().map_err(|e| bad(e.to_string()))? {
            let mut e = e.map_err(|e| bad(e.to_string()))?;
            if e.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = e
                .path()
                .map_err(|e| bad(e.to_string()))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if e.size() > MAX_LAYER_BYTES {
                return Err(bad(format!("{path} is too large")));
            }
            let mut buf = Vec::new();
            e.read_to_end(&mut buf).map_err(|e| bad(e.to_string()))?;
            if path == "index.json" {
                index = Some(buf);
            } else if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                let d = format!("sha256:{hex}");
                check_digest(&format!("blob {path}"), &buf, &d)?;
                out.blobs.insert(d, buf);
            }
        }
        let index = index.ok_or_else(|| bad("no index.json".into()))?;
        let v: serde_json::Value =
            serde_json::from_slice(&index).map_err(|e| bad(format!("index.json: {e}")))?;
        for m in v["manifests"].as_array().into_iter().flatten() {
            let (Some(d), Some(size)) = (m["digest"].as_str(), m["size"].as_u64()) else {
                continue;
            };
            let tag = m["annotations"][REF_NAME].as_str().unwrap_or_default();
            out.tagged.push((d.to_string(), size, tag.to_string()));
        }
        Ok(out)
    }

    /// The manifest tagged `tag`, with its digest.
    pub fn by_tag(&self, tag: &str) -> Option<(String, &[u8])> {
        let (d, _, _) = self.tagged.iter().find(|(_, _, t)| t == tag)?;
        self.blobs.get(d).map(|b| (d.clone(), b.as_slice()))
    }

    /// The one manifest of [`ARTIFACT_TYPE`] (the policy), with its digest.
    pub fn policy_manifest(&self) -> Result<(String, &[u8]), ArtifactError> {
        let mut found = self.tagged.iter().filter_map(|(d, _, _)| {
            let b = self.blobs.get(d)?;
            parse_manifest(b).ok().map(|_| (d.clone(), b.as_slice()))
        });
        match (found.next(), found.next()) {
            (Some(x), None) => Ok(x),
            (None, _) => Err(ArtifactError::NotPolicy(
                "the OCI layout holds no policy artifact".into(),
            )),
            (Some(_), Some(_)) => Err(ArtifactError::NotPolicy(
                "the OCI layout holds more than one policy artifact".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Metadata {
        Metadata {
            serial: 7,
            expires: "2030-01-01T00:00:00Z".parse().unwrap(),
            created: "2026-01-01T00:00:00Z".parse().unwrap(),
            policy_digest: crate::digest::sha256_prefixed(b"p"),
        }
    }

    fn files() -> Vec<File> {
        vec![
            File {
                path: "files/abc-k.pub".into(),
                bytes: b"key".to_vec(),
            },
            File {
                path: POLICY_FILE.into(),
                bytes: b"p".to_vec(),
            },
        ]
    }

    #[test]
    fn pack_is_deterministic_and_round_trips() {
        let a = pack(&files()).unwrap();
        let mut rev = files();
        rev.reverse();
        assert_eq!(a, pack(&rev).unwrap(), "order does not change the digest");
        let back = unpack(&a).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].path, "files/abc-k.pub");
        assert_eq!(back[1].bytes, b"p");
    }

    #[test]
    fn pack_refuses_bad_sets() {
        assert!(pack(&files()[..1]).is_err(), "no policy.toml");
        let mut dup = files();
        dup.push(files()[0].clone());
        assert!(pack(&dup).is_err());
        for bad in [
            "../x",
            "/etc/passwd",
            "files/../x",
            "files/.hidden",
            "other/x",
            "files/",
        ] {
            assert!(!valid_path(bad), "{bad}");
            let mut f = files();
            f[0].path = bad.into();
            assert!(pack(&f).is_err(), "{bad}");
        }
    }

    fn raw_tar(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, bytes) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            // Write the name into the header directly: tar::Builder refuses `..`.
            let name = h.as_old_mut().name.as_mut();
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, *bytes).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpack_refuses_escapes_links_and_duplicates() {
        let reg = tar::EntryType::Regular;
        let ok = raw_tar(&[("policy.toml", reg, b"p")]);
        assert_eq!(unpack(&ok).unwrap().len(), 1);
        for (entries, what) in [
            (
                vec![("policy.toml", reg, &b"p"[..]), ("../evil", reg, b"x")],
                "`..`",
            ),
            (
                vec![("policy.toml", reg, &b"p"[..]), ("/etc/x", reg, b"x")],
                "absolute",
            ),
            (
                vec![("policy.toml", tar::EntryType::Symlink, &b""[..])],
                "symlink",
            ),
            (
                vec![("policy.toml", reg, &b"p"[..]), ("policy.toml", reg, b"q")],
                "duplicate",
            ),
            (vec![("files/k.pub", reg, &b"k"[..])], "no policy"),
        ] {
            assert!(unpack(&raw_tar(&entries)).is_err(), "{what}");
        }
        assert!(unpack(b"not a tar at all, just text that is long enough").is_err());
    }

    #[test]
    fn manifest_round_trips_and_is_checked() {
        let layer = pack(&files()).unwrap();
        let m = manifest(&layer, &meta());
        let p = parse_manifest(&m).unwrap();
        assert_eq!(p.meta, meta());
        assert_eq!(p.layer_digest, crate::digest::sha256_prefixed(&layer));
        check_digest("layer", &layer, &p.layer_digest).unwrap();
        let mut tampered = layer.clone();
        tampered[600] ^= 1;
        assert!(matches!(
            check_digest("layer", &tampered, &p.layer_digest),
            Err(ArtifactError::DigestMismatch { .. })
        ));
        let other = String::from_utf8(m.clone())
            .unwrap()
            .replace(ARTIFACT_TYPE, "application/vnd.other");
        assert!(matches!(
            parse_manifest(other.as_bytes()),
            Err(ArtifactError::NotPolicy(_))
        ));
        let bad_serial = String::from_utf8(m).unwrap().replace("\"7\"", "\"-1\"");
        assert!(matches!(
            parse_manifest(bad_serial.as_bytes()),
            Err(ArtifactError::Annotation { key: SERIAL, .. })
        ));
    }

    #[test]
    fn payload_is_cosigns() {
        let d = crate::digest::sha256_prefixed(b"m");
        let p = crate::cosign::parse_payload(&simple_signing_payload("r.io/p", &d)).unwrap();
        assert_eq!(p.manifest_digest, d);
        assert_eq!(p.docker_reference, "r.io/p");
    }

    #[test]
    fn layout_round_trips() {
        let layer = pack(&files()).unwrap();
        let m = manifest(&layer, &meta());
        let mut l = Layout::default();
        l.blob(&layer);
        l.blob(EMPTY_CONFIG);
        l.manifest(&m, "v7");
        let back = Layout::from_tar(&l.to_tar().unwrap()).unwrap();
        let (d, bytes) = back.policy_manifest().unwrap();
        assert_eq!(d, crate::digest::sha256_prefixed(&m));
        assert_eq!(bytes, m.as_slice());
        assert!(back.by_tag("v7").is_some());
        assert!(back.by_tag("nope").is_none());
    }
}
