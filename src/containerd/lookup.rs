//! The containerd lookup: from a container ID to the image digest(s) to verify.
//!
//! This module owns every question Portcullis asks containerd over its gRPC
//! API (`containerd-client`): the container record (its image name and
//! snapshot), the image record (its target descriptor), and, when the target
//! is an index, the index blob from the content store to resolve this node's
//! platform manifest. For a container it also establishes the rootfs
//! lineage: the chain ID of the image's layers (from the manifest and config
//! blobs) and the parent of the container's active snapshot, which must be
//! equal for the rootfs to be the verified image's. Every call is bounded by
//! a deadline: an unreachable or hung containerd produces an error, never a
//! hung task creation.

use std::time::Duration;

use containerd_client::services::v1::snapshots::{MountsRequest, MountsResponse};
use containerd_client::services::v1::{
    GetImageRequest, GetImageResponse, ListImagesRequest, ListImagesResponse, ReadContentRequest,
    ReadContentResponse,
};

use super::wire::{self, Conn, WireError};

/// gRPC methods of containerd's API that Portcullis calls (each constant is
/// the method's path).
#[allow(missing_docs)]
pub mod method {
    pub const CONTAINERS_GET: &str = "/containerd.services.containers.v1.Containers/Get";
    pub const IMAGES_GET: &str = "/containerd.services.images.v1.Images/Get";
    pub const IMAGES_LIST: &str = "/containerd.services.images.v1.Images/List";
    pub const CONTENT_READ: &str = "/containerd.services.content.v1.Content/Read";
    pub const CONTENT_LIST: &str = "/containerd.services.content.v1.Content/List";
    pub const SNAPSHOTS_LIST: &str = "/containerd.services.snapshots.v1.Snapshots/List";
    pub const CONTAINERS_LIST: &str = "/containerd.services.containers.v1.Containers/List";
    pub const EVENTS_SUBSCRIBE: &str = "/containerd.services.events.v1.Events/Subscribe";
    pub const VERSION: &str = "/containerd.services.version.v1.Version/Version";
    pub const INTROSPECTION_PLUGINS: &str =
        "/containerd.services.introspection.v1.Introspection/Plugins";
    pub const INTROSPECTION_SERVER: &str =
        "/containerd.services.introspection.v1.Introspection/Server";
    pub const SNAPSHOTS_STAT: &str = "/containerd.services.snapshots.v1.Snapshots/Stat";
    pub const SNAPSHOTS_MOUNTS: &str = "/containerd.services.snapshots.v1.Snapshots/Mounts";
    pub const NAMESPACES_LIST: &str = "/containerd.services.namespaces.v1.Namespaces/List";
    pub const TASKS_LIST: &str = "/containerd.services.tasks.v1.Tasks/List";
    pub const TASKS_GET: &str = "/containerd.services.tasks.v1.Tasks/Get";
    pub const TASKS_KILL: &str = "/containerd.services.tasks.v1.Tasks/Kill";
}

/// Default bound on the whole lookup.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The lookup deadline: `PORTCULLIS_CONTAINERD_TIMEOUT_MS`, else
/// [`DEFAULT_TIMEOUT`]. One place for every caller (both gates and the CLI).
pub fn lookup_timeout() -> Duration {
    crate::base::deadline::from_env("PORTCULLIS_CONTAINERD_TIMEOUT_MS", DEFAULT_TIMEOUT)
}
/// Largest index blob read from the content store.
pub const MAX_INDEX_BYTES: i64 = 4 * 1024 * 1024;

/// Media types of image indexes (OCI and Docker manifest lists).
pub const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// Media types of image manifests (OCI and Docker).
pub const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Errors asking containerd.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The socket could not be reached, or did not answer in time.
    #[error(transparent)]
    Connection(#[from] wire::DriveError),
    /// An API call failed.
    #[error("containerd {call} failed: {status}{}", if *call == "images.Get" && status.starts_with("NotFound") {
        "; pull the image, or check -n/--namespace"
    } else {
        ""
    })]
    Api {
        /// Which call.
        call: &'static str,
        /// The gRPC status message.
        status: String,
    },
    /// The container was created without an image (e.g. `ctr run --rootfs`).
    #[error("container {0} has no image (created from a bare rootfs): nothing to verify")]
    NoImage(String),
    /// A record lacks something we need.
    #[error("containerd record is incomplete: {0}")]
    Incomplete(String),
    /// The image's target is of a type we cannot verify.
    #[error(
        "image target has media type `{0}`, which is neither an OCI/Docker manifest nor an index"
    )]
    UnknownMediaType(String),
    /// The index has no manifest for this node.
    #[error("image index {digest} has no manifest for {platform}")]
    NoPlatform {
        /// The index.
        digest: String,
        /// This node's platform.
        platform: String,
    },
    /// The index blob is malformed.
    #[error("image index {digest} is malformed: {why}")]
    BadIndex {
        /// The index.
        digest: String,
        /// Why.
        why: String,
    },
    /// The index cannot be walked for the manifest the rootfs came from.
    #[error(transparent)]
    Origin(#[from] crate::containerd::origin::OriginError),
    /// containerd's choice from the index cannot be established.
    #[error(transparent)]
    Platform(crate::containerd::platform::PlatformError),
    /// The async runtime could not be built.
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(String),
    /// A question after the image was known failed: the image and its
    /// digest, so that the refusal can name them.
    #[error("{source}")]
    Image {
        /// The image name as recorded.
        name: String,
        /// Its target digest.
        digest: String,
        /// What failed.
        source: Box<LookupError>,
    },
}

impl LookupError {
    /// What failed, without the image a failure after it was known carries.
    pub fn cause(&self) -> &LookupError {
        match self {
            LookupError::Image { source, .. } => source.cause(),
            e => e,
        }
    }
}

/// What containerd says about the image behind a container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageTarget {
    /// The image name as recorded (what the container was created from).
    pub name: String,
    /// The target descriptor's digest (an index or a manifest).
    pub target_digest: String,
    /// Its media type.
    pub target_media_type: String,
    /// This platform's manifest digest, when the target is an index.
    pub platform_digest: Option<String>,
    /// When the index lists more than one candidate manifest for this node:
    /// why only a signature over the index digest may allow it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_ambiguity: Option<String>,
    /// The container's snapshot key, when looked up from a container.
    pub snapshot_key: Option<String>,
    /// The container's snapshotter.
    pub snapshotter: Option<String>,
    /// The chain ID of this platform's image layers (what an unpacked
    /// rootfs of the image has as its parent snapshot).
    pub chain_id: Option<String>,
    /// The parent of the container's active snapshot.
    pub snapshot_parent: Option<String>,
}

impl ImageTarget {
    /// The digests a signature may name: the target, then the platform manifest.
    pub fn digests(&self) -> Vec<&str> {
        let mut v = vec![self.target_digest.as_str()];
        if let Some(p) = &self.platform_digest {
            v.push(p.as_str());
        }
        v
    }
}

/// This node's platform in OCI terms (`linux/amd64`).
pub fn node_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    ("linux", arch)
}

pub(super) fn api(call: &'static str) -> impl Fn(WireError) -> LookupError {
    move |e| LookupError::Api {
        call,
        status: e.to_string(),
    }
}

/// One mount of a snapshot, as the snapshotter would mount it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMount {
    /// Filesystem type (`overlay`, `bind`).
    pub kind: String,
    /// Source.
    pub source: String,
    /// Options (`lowerdir=…`, `upperdir=…`).
    pub options: Vec<String>,
}

/// The mounts the snapshotter gives for snapshot `key` (Snapshots `Mounts`).
pub fn snapshot_mounts(
    address: &str,
    namespace: &str,
    snapshotter: &str,
    key: &str,
    timeout: Duration,
) -> Result<Vec<SnapshotMount>, LookupError> {
    wire::run(address, timeout, |conn| async move {
        mounts(conn, namespace, snapshotter, key).await
    })
}

/// `snapshots.Mounts` of snapshot `key`, on `channel`.
pub(super) async fn mounts(
    channel: Conn,
    namespace: &str,
    snapshotter: &str,
    key: &str,
) -> Result<Vec<SnapshotMount>, LookupError> {
    let request = MountsRequest {
        snapshotter: snapshotter.to_string(),
        key: key.to_string(),
    };
    let mounts = channel
        .unary::<_, MountsResponse>(method::SNAPSHOTS_MOUNTS, namespace, &request)
        .await
        .map_err(api("snapshots.Mounts"))?
        .mounts;
    Ok(mounts
        .into_iter()
        .map(|m| SnapshotMount {
            kind: m.r#type,
            source: m.source,
            options: m.options,
        })
        .collect())
}

/// Look up an image by name (as `ctr images ls` shows it) and resolve its digests.
pub fn lookup_image(
    address: &str,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<ImageTarget, LookupError> {
    wire::run(address, timeout, |conn| async move {
        resolve_image(conn, namespace, name).await
    })
}

/// The names of every image record in `namespace` (what `ctr images ls`
/// lists), sorted.
pub fn image_names(
    address: &str,
    namespace: &str,
    timeout: Duration,
) -> Result<Vec<String>, LookupError> {
    wire::run(address, timeout, |conn| async move {
        let reply = conn
            .unary::<_, ListImagesResponse>(
                method::IMAGES_LIST,
                namespace,
                &ListImagesRequest { filters: vec![] },
            )
            .await
            .map_err(api("images.List"))?;
        let mut names: Vec<String> = reply.images.into_iter().map(|i| i.name).collect();
        names.sort();
        Ok(names)
    })
}

/// The target of the image record `name` as containerd stores it (after a
/// pull or a `ctr images import`): digest, media type and size; `Ok(None)`
/// when containerd has no image by that name.
pub fn image_record(
    address: &str,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<Option<(String, String, i64)>, LookupError> {
    wire::run(address, timeout, |conn| async move {
        let request = GetImageRequest {
            name: name.to_string(),
        };
        let reply = conn
            .unary::<_, GetImageResponse>(method::IMAGES_GET, namespace, &request)
            .await;
        let image = match reply {
            Ok(r) => r.image,
            Err(e) if e.code() == wire::Code::NotFound => return Ok(None),
            Err(e) => return Err(api("images.Get")(e)),
        };
        Ok(image
            .and_then(|i| i.target)
            .map(|t| (t.digest, t.media_type, t.size)))
    })
}

/// Blobs from containerd's content store, each at most [`MAX_INDEX_BYTES`]
/// and checked against its digest.
pub fn read_content(
    address: &str,
    namespace: &str,
    digests: &[String],
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, LookupError> {
    wire::run(address, timeout, |channel| async move {
        let mut out = Vec::with_capacity(digests.len());
        for d in digests {
            crate::digest::sha256_hex_of(d).map_err(|e| LookupError::BadIndex {
                digest: d.clone(),
                why: e.to_string(),
            })?;
            out.push(read_blob(channel.clone(), namespace, d, 0).await?);
        }
        Ok(out)
    })
}

/// Resolve an image by name on an open channel (its target and, for an
/// index, this platform's manifest).
pub async fn resolve_image(
    channel: Conn,
    namespace: &str,
    name: &str,
) -> Result<ImageTarget, LookupError> {
    let request = GetImageRequest {
        name: name.to_string(),
    };
    let image = channel
        .unary::<_, GetImageResponse>(method::IMAGES_GET, namespace, &request)
        .await
        .map_err(api("images.Get"))?
        .image
        .ok_or_else(|| LookupError::Incomplete(format!("image {name} has no record")))?;
    let target = image
        .target
        .ok_or_else(|| LookupError::Incomplete(format!("image {name} has no target")))?;
    if crate::digest::sha256_hex_of(&target.digest).is_err() {
        return Err(LookupError::Incomplete(format!(
            "image {name} target digest `{}` is not sha256",
            target.digest
        )));
    }
    let media_type = target.media_type.clone();
    let (platform_digest, platform_ambiguity) = if INDEX_TYPES.contains(&media_type.as_str()) {
        let blob = read_blob(channel.clone(), namespace, &target.digest, target.size).await?;
        // Nested indexes are read from the content store as the model asks for them.
        let mut nested = std::collections::HashMap::new();
        let sel = loop {
            match crate::containerd::platform::select(
                &target.digest,
                &blob,
                node_platform(),
                &nested,
            ) {
                Err(crate::containerd::platform::PlatformError::NeedBlob(d))
                    if nested.len() < crate::containerd::platform::MAX_INDEXES =>
                {
                    let inner = read_blob(channel.clone(), namespace, &d, 0).await?;
                    nested.insert(d, inner);
                }
                other => break other.map_err(platform_error)?,
            }
        };
        let why = sel.ambiguity(&target.digest);
        (Some(sel.chosen), why)
    } else if MANIFEST_TYPES.contains(&media_type.as_str()) {
        (None, None)
    } else {
        return Err(LookupError::UnknownMediaType(media_type));
    };
    Ok(ImageTarget {
        name: name.to_string(),
        target_digest: target.digest,
        target_media_type: media_type,
        platform_digest,
        platform_ambiguity,
        snapshot_key: None,
        snapshotter: None,
        chain_id: None,
        snapshot_parent: None,
    })
}

/// The chain ID of a manifest's layers: read the manifest and its config
/// from the content store, then fold the config's `rootfs.diff_ids` as the
/// OCI image specification defines.
pub(super) async fn image_chain_id(
    channel: Conn,
    namespace: &str,
    manifest_digest: &str,
) -> Result<String, LookupError> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        config: Desc,
    }
    #[derive(serde::Deserialize)]
    struct Desc {
        digest: String,
        size: i64,
    }
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(serde::Deserialize)]
    struct RootFs {
        diff_ids: Vec<String>,
    }
    let bad = |why: String| LookupError::BadIndex {
        digest: manifest_digest.to_string(),
        why,
    };
    let raw = read_blob(channel.clone(), namespace, manifest_digest, 0).await?;
    let m: Manifest = serde_json::from_slice(&raw).map_err(|e| bad(format!("manifest: {e}")))?;
    let raw = read_blob(channel, namespace, &m.config.digest, m.config.size).await?;
    let c: Config = serde_json::from_slice(&raw).map_err(|e| bad(format!("image config: {e}")))?;
    chain_id(&c.rootfs.diff_ids).map_err(bad)
}

fn not_found(e: &LookupError) -> bool {
    matches!(e, LookupError::Api { status, .. } if status.starts_with("NotFound"))
}

/// A blob from the content store, `None` when containerd does not have it.
pub(super) async fn local_blob(
    channel: Conn,
    namespace: &str,
    digest: String,
) -> Result<Option<Vec<u8>>, LookupError> {
    match read_blob(channel, namespace, &digest, 0).await {
        Ok(b) => Ok(Some(b)),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The layer chain of a manifest in the content store; `None` when the
/// manifest or its config is not local or it is not an image (an artifact).
pub(super) async fn local_chain(
    channel: Conn,
    namespace: &str,
    manifest: String,
) -> Result<Option<String>, LookupError> {
    match image_chain_id(channel, namespace, &manifest).await {
        Ok(c) => Ok(Some(c)),
        Err(e) if not_found(&e) => Ok(None),
        // Not an image manifest (no image config with diff IDs): never unpacked.
        Err(LookupError::BadIndex { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Fold diff IDs into a chain ID: `ChainID(L0) = DiffID(L0)`,
/// `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`.
pub fn chain_id(diff_ids: &[String]) -> Result<String, String> {
    let mut iter = diff_ids.iter();
    let first = iter.next().ok_or("the image has no layers")?;
    crate::digest::sha256_hex_of(first).map_err(|e| e.to_string())?;
    let mut chain = first.clone();
    for d in iter {
        crate::digest::sha256_hex_of(d).map_err(|e| e.to_string())?;
        chain = crate::digest::sha256_prefixed(format!("{chain} {d}").as_bytes());
    }
    Ok(chain)
}

/// How much of a blob's descriptor size [`read_blob`] reserves up front: a
/// manifest or config is a few KiB, and a reservation of megabytes is a
/// fresh mapping for the allocator to make and unmap in the start that reads
/// it (the chain ID of an image not started before).
const RESERVE_BYTES: usize = 64 * 1024;

/// A blob from containerd's content store, checked against its digest.
/// `size` is its descriptor's size when the caller has one (0 when not),
/// within [`MAX_INDEX_BYTES`]; the read itself stops past that limit.
pub(super) async fn read_blob(
    channel: Conn,
    namespace: &str,
    digest: &str,
    size: i64,
) -> Result<Vec<u8>, LookupError> {
    if !(0..=MAX_INDEX_BYTES).contains(&size) {
        return Err(LookupError::BadIndex {
            digest: digest.to_string(),
            why: format!("size {size} is outside 0..={MAX_INDEX_BYTES}"),
        });
    }
    let request = ReadContentRequest {
        digest: digest.to_string(),
        offset: 0,
        size: 0,
    };
    let mut stream = channel
        .stream(method::CONTENT_READ, namespace, &request)
        .await
        .map_err(api("content.Read"))?;
    let mut data = Vec::with_capacity((size as usize).min(RESERVE_BYTES));
    while let Some(chunk) = stream
        .next::<ReadContentResponse>()
        .await
        .map_err(api("content.Read"))?
    {
        data.extend_from_slice(&chunk.data);
        if data.len() as i64 > MAX_INDEX_BYTES {
            return Err(LookupError::BadIndex {
                digest: digest.to_string(),
                why: "larger than its descriptor".into(),
            });
        }
    }
    // The content store is addressed by digest; check it anyway.
    let actual = crate::digest::sha256_prefixed(&data);
    if actual != digest {
        return Err(LookupError::BadIndex {
            digest: digest.to_string(),
            why: format!("content hashes to {actual}"),
        });
    }
    Ok(data)
}

/// Pick the manifest containerd runs on this node from an index blob (see
/// [`crate::containerd::platform`]; a nested index is an error here, since only the
/// outer blob is given: callers that can read blobs use
/// [`crate::containerd::platform::select`]).
pub fn select_platform(
    index_digest: &str,
    blob: &[u8],
    node: (&str, &str),
) -> Result<String, LookupError> {
    crate::containerd::platform::select(index_digest, blob, node, &Default::default())
        .map(|s| s.chosen)
        .map_err(platform_error)
}

fn platform_error(e: crate::containerd::platform::PlatformError) -> LookupError {
    match e {
        crate::containerd::platform::PlatformError::NoMatch { digest, platform } => {
            LookupError::NoPlatform { digest, platform }
        }
        crate::containerd::platform::PlatformError::Malformed { digest, why } => {
            LookupError::BadIndex { digest, why }
        }
        other => LookupError::Platform(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::base::testing::digest as d;
    use crate::containerd::start::lookup_container;

    #[test]
    fn selects_this_platform() {
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":1,"platform":{{"os":"windows","architecture":"amd64"}}}}]}}"#,
            d(1),
            d(2),
            d(3)
        );
        assert_eq!(
            select_platform(&d(9), idx.as_bytes(), ("linux", "amd64")).unwrap(),
            d(2)
        );
        assert_eq!(
            select_platform(&d(9), idx.as_bytes(), ("linux", "arm64")).unwrap(),
            d(1)
        );
        assert!(matches!(
            select_platform(&d(9), idx.as_bytes(), ("linux", "s390x")),
            Err(LookupError::NoPlatform { .. })
        ));
    }

    #[test]
    fn chain_ids_fold_as_the_image_spec_says() {
        // one layer: the chain ID is the diff ID
        assert_eq!(chain_id(&[d(1)]).unwrap(), d(1));
        // two layers: sha256("<chain> <diff>")
        let expected = crate::digest::sha256_prefixed(format!("{} {}", d(1), d(2)).as_bytes());
        assert_eq!(chain_id(&[d(1), d(2)]).unwrap(), expected);
        assert!(chain_id(&[]).is_err());
        assert!(chain_id(&["sha256:nothex".into()]).is_err());
    }

    #[test]
    fn bad_indexes_are_errors() {
        assert!(select_platform(&d(9), b"{", ("linux", "amd64")).is_err());
        assert!(select_platform(&d(9), b"{\"manifests\":[]}", ("linux", "amd64")).is_err());
        let bad = r#"{"manifests":[{"digest":"sha256:zz","platform":{"os":"linux","architecture":"amd64"}}]}"#;
        assert!(matches!(
            select_platform(&d(9), bad.as_bytes(), ("linux", "amd64")),
            Err(LookupError::BadIndex { .. })
        ));
    }

    #[test]
    fn unreachable_socket_is_a_prompt_error() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("none.sock");
        let e = lookup_container(
            sock.to_str().unwrap(),
            "default",
            "x",
            Duration::from_secs(30),
        )
        .unwrap_err();
        // Refused at connect, not by waiting for the deadline.
        assert!(
            matches!(
                e,
                LookupError::Connection(wire::DriveError::Unreachable { .. })
            ),
            "{e}"
        );
    }

    #[test]
    fn a_silent_socket_times_out() {
        // A listener that accepts and never answers: the deadline must fire.
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("silent.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = lookup_container(
            sock.to_str().unwrap(),
            "default",
            "x",
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                LookupError::Connection(
                    wire::DriveError::Timeout { .. } | wire::DriveError::Unreachable { .. }
                )
            ),
            "{e}"
        );
    }
}
