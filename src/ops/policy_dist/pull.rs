//! `portcullis policy pull`: fetch the policy artifact the source file names
//! (or read it from an OCI layout file), verify its signature against the
//! bootstrap signer with the same code that verifies images, refuse what is
//! older than the release in force (rollback), republished under the same
//! serial, expired (freeze), tampered or invalid, then install it atomically
//! ([`crate::state::policy_store`]).
//!
//! Every refusal leaves the policy in force unchanged. The outcome is one
//! line for the operator and one journal record (`MESSAGE_ID`s
//! [`POLICY_INSTALLED`], [`POLICY_REFUSED`], [`POLICY_UNREACHABLE`]); a pull
//! that finds the release in force again records nothing.
//!
//! [`POLICY_INSTALLED`]: crate::journal::message_id::POLICY_INSTALLED
//! [`POLICY_REFUSED`]: crate::journal::message_id::POLICY_REFUSED
//! [`POLICY_UNREACHABLE`]: crate::journal::message_id::POLICY_UNREACHABLE

use std::path::{Path, PathBuf};

use crate::cache::{Artifact, Entry, Layer, StateDir, ENTRY_FORMAT};
use crate::formats::policy_artifact::{self as art, ArtifactError, Layout, Parsed};
use crate::journal::{message_id, Record, POLICY_PULL_IDENTIFIER};
use crate::state::policy_store::{PolicyStore, Release};
use crate::verify::signatures::{verify_entries_with, Rejection, RuleSigners};

use super::registry::{block_on, Registry, RegistryError};
use super::Source;

/// Why an artifact was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// Its serial is lower than the installed one.
    Rollback,
    /// Same serial as the installed one, different digest.
    Replaced,
    /// Past its expiry.
    Expired,
    /// Unsigned, or not signed by the source file's signer.
    Signature,
    /// A blob does not match the digest that names it.
    Tampered,
    /// Not a usable policy artifact.
    Invalid,
}

impl Refusal {
    /// The journal and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Rollback => "rollback",
            Refusal::Replaced => "replaced",
            Refusal::Expired => "expired",
            Refusal::Signature => "signature",
            Refusal::Tampered => "tampered",
            Refusal::Invalid => "invalid",
        }
    }
}

/// Why a pull did not install.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The artifact was refused (exit 1); the policy in force is unchanged.
    #[error("refused ({}): {message}", kind.as_str())]
    Refused {
        /// Why.
        kind: Refusal,
        /// The line for the operator (with the fix).
        message: String,
        /// Serial offered, when known.
        serial: Option<u64>,
        /// Digest offered, when known.
        digest: Option<String>,
    },
    /// The registry could not be reached (exit 4); the last good policy stays.
    #[error("{0}")]
    Unreachable(String),
    /// Anything else (exit 3): the source file, the state directory.
    #[error("{0}")]
    Failed(String),
}

/// Exit codes of `policy pull`.
pub mod exit {
    /// Installed, or the release in force is already the newest.
    pub const OK: u8 = 0;
    /// Refused (rollback, replaced, expired, signature, tampered, invalid).
    pub const REFUSED: u8 = 1;
    /// Could not run (source file, state directory, signer key).
    pub const ERROR: u8 = 3;
    /// The registry is unreachable; the last good policy stays in force.
    pub const UNREACHABLE: u8 = 4;
}

impl PullError {
    /// The exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            PullError::Refused { .. } => exit::REFUSED,
            PullError::Unreachable(_) => exit::UNREACHABLE,
            PullError::Failed(_) => exit::ERROR,
        }
    }
}

/// What to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The source file (reference and signer).
    pub source: Source,
    /// Read the artifact from this OCI layout tar instead of the registry.
    pub from_file: Option<PathBuf>,
    /// The node's state directory.
    pub state: StateDir,
    /// Now (injected by tests).
    pub now: jiff::Timestamp,
}

/// What `policy pull` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PullReport {
    /// `installed` or `current` (already in force).
    pub outcome: &'static str,
    /// The release in force now.
    pub release: Release,
    /// The one before, when this pull installed.
    pub previous: Option<Release>,
    /// The file the gate should read.
    pub policy_path: PathBuf,
}

/// The artifact as fetched, before any check.
struct Fetched {
    origin: String,
    repository: String,
    manifest: Vec<u8>,
    digest: String,
    signatures: Option<Artifact>,
    /// Sigstore bundles attached as referrers (registry only).
    bundles: Vec<Artifact>,
}

fn refused(kind: Refusal, message: String) -> PullError {
    PullError::Refused {
        kind,
        message,
        serial: None,
        digest: None,
    }
}

fn artifact_refusal(e: ArtifactError) -> PullError {
    let kind = match e {
        ArtifactError::DigestMismatch { .. } => Refusal::Tampered,
        _ => Refusal::Invalid,
    };
    refused(
        kind,
        format!("{e}; republish it (`portcullis policy publish`)"),
    )
}

fn registry_refusal(e: RegistryError, installed: &Option<Release>) -> PullError {
    match e {
        RegistryError::Unreachable { .. } => PullError::Unreachable(format!(
            "{e}; {}; check the network and the registry (the timer retries)",
            keeps(installed)
        )),
        RegistryError::Digest { .. } => refused(
            Refusal::Tampered,
            format!("{e}: the artifact was altered in the registry; republish it"),
        ),
        RegistryError::Refused { .. } | RegistryError::Other(_) => PullError::Failed(format!(
            "{e}; check `reference` in the source file and that the artifact was published"
        )),
    }
}

fn keeps(installed: &Option<Release>) -> String {
    match installed {
        Some(r) => format!(
            "the policy in force stays (serial {}, {}, installed {})",
            r.serial, r.digest, r.installed_at
        ),
        None => "no pulled policy is installed yet; the node keeps the policy file it has".into(),
    }
}

/// A signature image from an OCI layout, as the registry path gives it.
fn layout_signatures(layout: &Layout, digest: &str) -> Result<Option<Artifact>, PullError> {
    let tag = crate::cosign::signature_tag(digest).map_err(|e| PullError::Failed(e.to_string()))?;
    let Some((sig_digest, raw)) = layout.by_tag(&tag) else {
        return Ok(None);
    };
    let m: oci_client::manifest::OciImageManifest = serde_json::from_slice(raw).map_err(|e| {
        refused(
            Refusal::Invalid,
            format!("signature manifest {tag} in the file: {e}"),
        )
    })?;
    let mut layers = Vec::new();
    for d in m.layers.iter().take(crate::cache::MAX_LAYERS) {
        let Some(blob) = layout.blobs.get(&d.digest) else {
            return Err(refused(
                Refusal::Invalid,
                format!("signature layer {} is missing from the file", d.digest),
            ));
        };
        layers.push(Layer::new(
            &d.media_type,
            d.annotations.clone().unwrap_or_default(),
            blob,
        ));
    }
    Ok(Some(Artifact {
        kind: crate::cache::kind::COSIGN_SIGNATURE.into(),
        source: format!("file:{tag}"),
        manifest_digest: sig_digest,
        layers,
    }))
}

/// Pull, check and install. The journal record is the caller's
/// ([`record`]), so tests need no journald.
pub fn pull(o: &PullOptions) -> Result<PullReport, PullError> {
    let store = PolicyStore::new(&o.state);
    let installed = store
        .installed()
        .map_err(|e| PullError::Failed(e.to_string()))?;
    // 1. The manifest and its signatures.
    let mut layout = None;
    let mut registry = None;
    let fetched = match &o.from_file {
        Some(file) => {
            let bytes = std::fs::read(file)
                .map_err(|e| PullError::Failed(format!("cannot read {}: {e}", file.display())))?;
            let l = Layout::from_tar(&bytes).map_err(artifact_refusal)?;
            let (digest, manifest) = l.policy_manifest().map_err(artifact_refusal)?;
            let signatures = layout_signatures(&l, &digest)?;
            let f = Fetched {
                origin: format!("file:{}", file.display()),
                repository: String::new(),
                manifest: manifest.to_vec(),
                digest,
                signatures,
                bundles: Vec::new(),
            };
            layout = Some(l);
            f
        }
        None => {
            let reference = o.source.reference.as_deref().ok_or_else(|| {
                PullError::Failed(format!(
                    "{} names no `reference`; add one, or pull with --from-file",
                    o.source.path.display()
                ))
            })?;
            let reg = Registry::new(reference, o.source.plain_http)
                .map_err(|e| registry_refusal(e, &installed))?
                .with_plain_http_switch("plain_http = true in the policy source file");
            let name = reg.reference.registry().to_string();
            let (manifest, digest, signatures, bundles) = block_on(&name, async {
                let (m, d) = reg.manifest().await?;
                let s = reg.signatures(&d).await?;
                // Referrers are a second place signatures may be; a registry
                // that cannot list them leaves the `.sig` image to decide.
                let b = reg.bundles(&d).await.unwrap_or_default();
                Ok((m, d, s, b))
            })
            .map_err(|e| registry_refusal(e, &installed))?;
            let f = Fetched {
                origin: reg.reference.whole(),
                repository: reg.repository(),
                manifest,
                digest,
                signatures,
                bundles,
            };
            registry = Some(reg);
            f
        }
    };
    let parsed: Parsed = art::parse_manifest(&fetched.manifest).map_err(artifact_refusal)?;
    let with_offer = |e: PullError| match e {
        PullError::Refused { kind, message, .. } => PullError::Refused {
            kind,
            message,
            serial: Some(parsed.meta.serial),
            digest: Some(fetched.digest.clone()),
        },
        other => other,
    };
    // 2. The signature, by the one verification path images take.
    let signer = verify(o, &fetched).map_err(with_offer)?;
    // 3. Freshness and order, from annotations the signature covers.
    check_order(
        &parsed,
        &fetched.digest,
        &fetched.origin,
        installed.as_ref(),
        o.now,
    )
    .map_err(with_offer)?;
    if let Some(cur) = &installed {
        if cur.digest == fetched.digest {
            return Ok(PullReport {
                outcome: "current",
                release: cur.clone(),
                previous: None,
                policy_path: store.policy_path(),
            });
        }
    }
    // 4. The layer, checked against the signed manifest.
    let layer = match (&layout, &registry) {
        (Some(l), _) => l
            .blobs
            .get(&parsed.layer_digest)
            .cloned()
            .ok_or_else(|| refused(Refusal::Invalid, "the file lacks the policy layer".into())),
        (None, Some(reg)) => {
            let name = reg.reference.registry().to_string();
            block_on(&name, reg.layer(&parsed.layer_digest, parsed.layer_size))
                .map_err(|e| registry_refusal(e, &installed))
        }
        (None, None) => Err(PullError::Failed("no artifact source".into())),
    }
    .map_err(with_offer)?;
    art::check_digest("policy layer", &layer, &parsed.layer_digest)
        .map_err(artifact_refusal)
        .map_err(with_offer)?;
    let files = art::unpack(&layer)
        .map_err(artifact_refusal)
        .map_err(with_offer)?;
    check_files(&files, &parsed).map_err(with_offer)?;
    // 5. Install, under the store's lock, re-checking what is in force.
    let _lock = store.lock().map_err(|e| PullError::Failed(e.to_string()))?;
    let installed = store
        .installed()
        .map_err(|e| PullError::Failed(e.to_string()))?;
    check_order(
        &parsed,
        &fetched.digest,
        &fetched.origin,
        installed.as_ref(),
        o.now,
    )
    .map_err(with_offer)?;
    let release = Release {
        serial: parsed.meta.serial,
        digest: fetched.digest.clone(),
        policy_digest: parsed.meta.policy_digest.clone(),
        source: fetched.origin.clone(),
        signer,
        created: parsed.meta.created.to_string(),
        expires: parsed.meta.expires.to_string(),
        installed_at: o.now.to_string(),
    };
    store
        .install(&release, &files, o.source.keep)
        .map_err(|e| PullError::Failed(e.to_string()))?;
    Ok(PullReport {
        outcome: "installed",
        release,
        previous: installed,
        policy_path: store.policy_path(),
    })
}

fn verify(o: &PullOptions, f: &Fetched) -> Result<String, PullError> {
    let signers = RuleSigners::load(std::slice::from_ref(&o.source.signer)).map_err(|e| {
        PullError::Failed(format!(
            "the bootstrap signer of {} is unusable: {e}",
            o.source.path.display()
        ))
    })?;
    let root = crate::verify::rule::LazyTrustRoot::new(crate::state::trust_names::trust_root_path(
        &o.state,
        o.source.trust_root.as_deref(),
    ));
    let entry = Entry {
        format: ENTRY_FORMAT,
        subject: f.digest.clone(),
        repository: f.repository.clone(),
        fetched_at: o.now.to_string(),
        artifacts: f.signatures.iter().chain(&f.bundles).cloned().collect(),
    };
    let sign_hint = format!(
        "sign it with the signer {} names ({}): `portcullis policy publish --key KEY` or `cosign sign --key KEY {}@{}`",
        o.source.path.display(),
        o.source.signer,
        if f.repository.is_empty() { "REGISTRY/REPO" } else { &f.repository },
        f.digest
    );
    let mut trust = || root.get();
    match verify_entries_with(&[entry], &[f.digest.as_str()], &signers, &mut trust) {
        Ok(v) => Ok(v.signer),
        Err(Rejection::NothingCached) => Err(refused(
            Refusal::Signature,
            format!(
                "{}@{} is not signed (no {}, no Sigstore bundle referring to it); {sign_hint}",
                f.origin,
                f.digest,
                crate::cosign::signature_tag(&f.digest).unwrap_or_default()
            ),
        )),
        Err(Rejection::NoValidSignature { reason, .. }) => Err(refused(
            Refusal::Signature,
            format!("{}@{}: {reason}; {sign_hint}", f.origin, f.digest),
        )),
    }
}

/// Expiry, rollback and same-serial checks against the release in force.
pub fn check_order(
    p: &Parsed,
    digest: &str,
    origin: &str,
    installed: Option<&Release>,
    now: jiff::Timestamp,
) -> Result<(), PullError> {
    let m = &p.meta;
    let in_force = || {
        installed
            .map(|r| {
                format!(
                    "the policy in force stays (serial {}, {})",
                    r.serial, r.digest
                )
            })
            .unwrap_or_else(|| "nothing was installed".into())
    };
    if m.expires <= now {
        return Err(refused(
            Refusal::Expired,
            format!(
                "{origin} (serial {}) expired at {}; {}; publish a new serial with a later --expires",
                m.serial,
                m.expires,
                in_force()
            ),
        ));
    }
    if let Some(cur) = installed {
        if m.serial < cur.serial {
            return Err(refused(
                Refusal::Rollback,
                format!(
                    "{origin} has serial {}, lower than the installed {} (a rollback); {}; publish with --serial {} or higher",
                    m.serial,
                    cur.serial,
                    in_force(),
                    cur.serial + 1
                ),
            ));
        }
        if m.serial == cur.serial && digest != cur.digest {
            return Err(refused(
                Refusal::Replaced,
                format!(
                    "{origin} serves {digest} under serial {}, which is installed as {}; {}; a new policy needs a new serial (--serial {})",
                    m.serial,
                    cur.digest,
                    in_force(),
                    cur.serial + 1
                ),
            ));
        }
    }
    Ok(())
}

/// The layer matches the signed annotations, and its policy is valid and
/// names only files the artifact holds.
fn check_files(files: &[art::File], p: &Parsed) -> Result<(), PullError> {
    let policy = files
        .iter()
        .find(|f| f.path == art::POLICY_FILE)
        .ok_or_else(|| refused(Refusal::Invalid, "the artifact holds no policy.toml".into()))?;
    art::check_digest("policy.toml", &policy.bytes, &p.meta.policy_digest)
        .map_err(artifact_refusal)?;
    let text = std::str::from_utf8(&policy.bytes)
        .map_err(|_| refused(Refusal::Invalid, "policy.toml is not UTF-8".into()))?;
    let probe = Path::new("/portcullis-policy-artifact").join(art::POLICY_FILE);
    crate::policy::Policy::parse(text, &probe).map_err(|e| {
        refused(
            Refusal::Invalid,
            format!("the artifact's policy is invalid: {e}; fix it and republish"),
        )
    })?;
    let refs = crate::policy::references::file_references(text)
        .map_err(|e| refused(Refusal::Invalid, e))?;
    for r in refs {
        if r.kind == crate::policy::references::RefKind::TrustRootName {
            continue;
        }
        if !files.iter().any(|f| f.path == r.value) {
            return Err(refused(
                Refusal::Invalid,
                format!(
                    "the artifact's policy refers to {} which the artifact does not hold; publish it with `portcullis policy publish`, which packs every file",
                    r.value
                ),
            ));
        }
    }
    Ok(())
}

/// The journal record of a pull's outcome (`None`: nothing to record).
pub fn record(source: &Source, r: &Result<PullReport, PullError>) -> Option<Record> {
    let src = source.path.display().to_string();
    let base = |id: &str| {
        vec![
            (
                "SYSLOG_IDENTIFIER".to_string(),
                POLICY_PULL_IDENTIFIER.to_string(),
            ),
            ("MESSAGE_ID".into(), id.to_string()),
            ("PORTCULLIS_KIND".into(), "policy-pull".into()),
            ("PORTCULLIS_POLICY_SOURCE_FILE".into(), src.clone()),
        ]
    };
    match r {
        Ok(rep) if rep.outcome == "current" => None,
        Ok(rep) => {
            let mut fields = base(message_id::POLICY_INSTALLED);
            fields.extend([
                (
                    "PORTCULLIS_POLICY_SERIAL".into(),
                    rep.release.serial.to_string(),
                ),
                (
                    "PORTCULLIS_POLICY_ARTIFACT".into(),
                    rep.release.digest.clone(),
                ),
                (
                    "PORTCULLIS_POLICY_DIGEST".into(),
                    rep.release.policy_digest.clone(),
                ),
                (
                    "PORTCULLIS_POLICY_SOURCE".into(),
                    rep.release.source.clone(),
                ),
                ("PORTCULLIS_SIGNER".into(), rep.release.signer.clone()),
            ]);
            Some(Record {
                message: installed_line(rep),
                priority: 5,
                fields,
            })
        }
        Err(
            e @ PullError::Refused {
                kind,
                serial,
                digest,
                ..
            },
        ) => {
            let mut fields = base(message_id::POLICY_REFUSED);
            fields.push(("PORTCULLIS_POLICY_REFUSAL".into(), kind.as_str().into()));
            if let Some(s) = serial {
                fields.push(("PORTCULLIS_POLICY_OFFERED_SERIAL".into(), s.to_string()));
            }
            if let Some(d) = digest {
                fields.push(("PORTCULLIS_POLICY_OFFERED_ARTIFACT".into(), d.clone()));
            }
            Some(Record {
                message: format!("policy pull {e}"),
                priority: 3,
                fields,
            })
        }
        Err(e @ PullError::Unreachable(_)) => Some(Record {
            message: format!("policy pull: {e}"),
            priority: 4,
            fields: base(message_id::POLICY_UNREACHABLE),
        }),
        Err(e @ PullError::Failed(_)) => Some(Record {
            message: format!("policy pull failed: {e}"),
            priority: 3,
            fields: base(message_id::POLICY_REFUSED)
                .into_iter()
                .chain([("PORTCULLIS_POLICY_REFUSAL".to_string(), "error".to_string())])
                .collect(),
        }),
    }
}

/// The one line for an installed release.
pub fn installed_line(rep: &PullReport) -> String {
    let r = &rep.release;
    match rep.outcome {
        "current" => format!(
            "policy serial {} ({}) from {} is already in force",
            r.serial, r.digest, r.source
        ),
        _ => format!(
            "installed policy serial {} ({}) from {}, signed by {}, expires {}{}",
            r.serial,
            r.digest,
            r.source,
            r.signer,
            r.expires,
            rep.previous
                .as_ref()
                .map(|p| format!("; replaces serial {}", p.serial))
                .unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::policy_dist::publish;

    const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgKtdq29I2ZGeRNTG7
VwS9RnrWm4y8F/1YVaJn7x1TiIWhRANCAAQsR9b9SfoQ7E4aoGQqhGkSAveXV3Y9
XPgXMeK2UCFY47piKC8lBxC0JAnrLIZFLOxRo/575sOnjikcGdti8h2M
-----END PRIVATE KEY-----
";
    const PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELEfW/Un6EOxOGqBkKoRpEgL3l1d2
PVz4FzHitlAhWOO6YigvJQcQtCQJ6yyGRSzsUaP+e+bDp44pHBnbYvIdjA==
-----END PUBLIC KEY-----
";
    const OTHER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgE1FRUAiiPXG/fYbc
ZqrYPn+Rsi0wGCzo4Pv5zP2sf7ahRANCAARo9+SucEnFDvWe0uRqVARBpJTk6/wH
JvyTGnYrzVgDyfycW0VZkBMtNvd62lqmDhmMtH58pImBPa3ZPj8VsYr4
-----END PRIVATE KEY-----
";

    struct World {
        dir: tempfile::TempDir,
        node: StateDir,
        source: Source,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("signer.key"), KEY).unwrap();
        std::fs::write(d.join("other.key"), OTHER_KEY).unwrap();
        std::fs::write(d.join("signer.pub"), PUB).unwrap();
        std::fs::create_dir_all(d.join("pub/keys")).unwrap();
        std::fs::write(d.join("pub/keys/app.pub"), PUB).unwrap();
        std::fs::write(
            d.join("pub/policy.toml"),
            "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"app\"\nimages = [\"r.io/app/**\"]\n[[rule.signer]]\nkey = \"keys/app.pub\"\n",
        )
        .unwrap();
        let source = Source::parse(
            "[signer]\nkey = \"signer.pub\"\n",
            &d.join("policy-source.toml"),
        )
        .unwrap();
        World {
            node: StateDir::new(d.join("node")),
            source,
            dir,
        }
    }

    impl World {
        fn publish(&self, serial: u64, key: Option<&str>, expires_secs: u64) -> PathBuf {
            let out = self
                .dir
                .path()
                .join(format!("p-{serial}-{}.tar", key.unwrap_or("none")));
            publish::publish(&publish::PublishOptions {
                policy: self.dir.path().join("pub/policy.toml"),
                reference: None,
                serial,
                expires_in: std::time::Duration::from_secs(expires_secs),
                key: key.map(|k| self.dir.path().join(k)),
                out: Some(out.clone()),
                plain_http: false,
                state: StateDir::new(self.dir.path().join("publisher")),
            })
            .unwrap();
            out
        }

        fn pull(&self, file: &Path, now: jiff::Timestamp) -> Result<PullReport, PullError> {
            pull(&PullOptions {
                source: self.source.clone(),
                from_file: Some(file.to_path_buf()),
                state: self.node.clone(),
                now,
            })
        }

        fn installed(&self) -> Option<Release> {
            PolicyStore::new(&self.node).installed().unwrap()
        }
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::now()
    }

    fn kind(r: Result<PullReport, PullError>) -> Refusal {
        match r {
            Err(PullError::Refused { kind, .. }) => kind,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn installs_then_refuses_each_bad_artifact_and_keeps_the_policy() {
        let w = world();
        let v2 = w.publish(2, Some("signer.key"), 3600);
        let rep = w.pull(&v2, now()).unwrap();
        assert_eq!(rep.outcome, "installed");
        assert_eq!(rep.release.serial, 2);
        assert!(
            rep.release.signer.starts_with("key:"),
            "{}",
            rep.release.signer
        );
        // The gate's view: the policy and its key from the release.
        let p = crate::policy::Policy::load(&rep.policy_path).unwrap();
        assert_eq!(p.digest, rep.release.policy_digest);
        crate::verify::signatures::RuleSigners::load(&p.rules()[0].signers).unwrap();
        // Again: already in force, nothing recorded.
        let again = w.pull(&v2, now()).unwrap();
        assert_eq!(again.outcome, "current");
        assert!(record(&w.source, &Ok(again)).is_none());
        let before = w.installed().unwrap();

        // Rollback.
        let v1 = w.publish(1, Some("signer.key"), 3600);
        assert_eq!(kind(w.pull(&v1, now())), Refusal::Rollback);
        // Same serial, other bytes.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let v2b = w.publish(2, Some("signer.key"), 3600);
        assert_eq!(kind(w.pull(&v2b, now())), Refusal::Replaced);
        // Expired (a serial that would otherwise be accepted).
        let v3 = w.publish(3, Some("signer.key"), 60);
        let later = now()
            .checked_add(jiff::SignedDuration::from_secs(120))
            .unwrap();
        assert_eq!(kind(w.pull(&v3, later)), Refusal::Expired);
        // Wrong signer, and unsigned.
        let v4 = w.publish(4, Some("other.key"), 3600);
        assert_eq!(kind(w.pull(&v4, now())), Refusal::Signature);
        let v5 = w.publish(5, None, 3600);
        let e = w.pull(&v5, now()).unwrap_err();
        assert!(e.to_string().contains("is not signed"), "{e}");
        // Tampered: one byte of the layer blob in the file.
        let v6 = w.publish(6, Some("signer.key"), 3600);
        let mut l = Layout::from_tar(&std::fs::read(&v6).unwrap()).unwrap();
        let (_, m) = l.policy_manifest().unwrap();
        let layer_digest = art::parse_manifest(m).unwrap().layer_digest;
        l.blobs.get_mut(&layer_digest).unwrap()[700] ^= 1;
        std::fs::write(&v6, l.to_tar().unwrap()).unwrap();
        assert_eq!(kind(w.pull(&v6, now())), Refusal::Tampered);

        assert_eq!(
            w.installed().unwrap(),
            before,
            "every refusal left the release in force"
        );
        let r = record(&w.source, &w.pull(&v1, now())).unwrap();
        assert!(r
            .fields
            .contains(&("MESSAGE_ID".into(), message_id::POLICY_REFUSED.into())));
        assert!(r
            .fields
            .contains(&("PORTCULLIS_POLICY_REFUSAL".into(), "rollback".into())));

        // A newer, good one installs and the previous is reported.
        let v7 = w.publish(7, Some("signer.key"), 3600);
        let rep = w.pull(&v7, now()).unwrap();
        assert_eq!(rep.previous.unwrap().serial, 2);
        assert_eq!(w.installed().unwrap().serial, 7);
    }

    #[test]
    fn order_checks() {
        let meta = art::Metadata {
            serial: 5,
            expires: "2030-01-01T00:00:00Z".parse().unwrap(),
            created: "2026-01-01T00:00:00Z".parse().unwrap(),
            policy_digest: crate::base::testing::digest(1),
        };
        let p = Parsed {
            meta,
            layer_digest: crate::base::testing::digest(2),
            layer_size: 1,
        };
        let t: jiff::Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        let inst = |serial, d| Release {
            serial,
            digest: crate::base::testing::digest(d),
            policy_digest: String::new(),
            source: String::new(),
            signer: String::new(),
            created: String::new(),
            expires: String::new(),
            installed_at: String::new(),
        };
        let d3 = crate::base::testing::digest(3);
        assert!(check_order(&p, &d3, "o", None, t).is_ok());
        assert!(check_order(&p, &d3, "o", Some(&inst(4, 9)), t).is_ok());
        assert!(
            check_order(&p, &d3, "o", Some(&inst(5, 3)), t).is_ok(),
            "same release"
        );
        let k = |r| match r {
            Err(PullError::Refused { kind, message, .. }) => (kind, message),
            _ => panic!(),
        };
        let (kind, msg) = k(check_order(&p, &d3, "o", Some(&inst(6, 9)), t));
        assert_eq!(kind, Refusal::Rollback);
        assert!(msg.contains("--serial 7"), "{msg}");
        assert_eq!(
            k(check_order(&p, &d3, "o", Some(&inst(5, 9)), t)).0,
            Refusal::Replaced
        );
        let late: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(k(check_order(&p, &d3, "o", None, late)).0, Refusal::Expired);
    }

    #[test]
    fn a_policy_naming_files_it_does_not_hold_is_refused() {
        let text = "mode = \"enforce\"\ndefault = \"deny\"\n[[rule]]\nname = \"a\"\nimages = [\"r.io/**\"]\n[[rule.signer]]\nkey = \"/etc/keys/x.pub\"\n";
        let files = vec![art::File {
            path: art::POLICY_FILE.into(),
            bytes: text.as_bytes().to_vec(),
        }];
        let p = Parsed {
            meta: art::Metadata {
                serial: 1,
                expires: "2030-01-01T00:00:00Z".parse().unwrap(),
                created: "2026-01-01T00:00:00Z".parse().unwrap(),
                policy_digest: crate::digest::sha256_prefixed(text.as_bytes()),
            },
            layer_digest: crate::base::testing::digest(2),
            layer_size: 1,
        };
        let e = check_files(&files, &p).unwrap_err();
        assert!(e.to_string().contains("/etc/keys/x.pub"), "{e}");
        let mut bad = p.clone();
        bad.meta.policy_digest = crate::base::testing::digest(7);
        assert!(matches!(
            check_files(&files, &bad),
            Err(PullError::Refused {
                kind: Refusal::Tampered,
                ..
            })
        ));
    }
}
