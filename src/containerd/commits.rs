//! Whether a committed snapshot named by a chain ID is one an image unpack
//! made (threat T33: a snapshot squatted under a signed image's chain ID).
//!
//! This module owns the judgement and the containerd queries behind it. An
//! unpack by containerd 1.6 through 2.x (the pull unpacker, `ctr images
//! import`, `ctr images unpack`) leaves two traces, read from containerd's
//! source (`unpacker.go`/`rootfs/apply.go` at v1.6.20, `core/unpack` at
//! v2.3.4):
//!
//! - it prepares the snapshot under the key `extract-<nonce> <chain ID>`
//!   (`snapshots.UnpackKeyFormat`) and commits that key under the chain ID;
//! - right after the commit, once the applied layer's uncompressed digest
//!   matched the config's diff ID, it labels the layer blob in the content
//!   store `containerd.io/uncompressed=<diff ID>`. So the committed name must
//!   equal `sha256(<parent chain ID> + " " + <diff ID>)` (or the diff ID
//!   itself for a base layer) for a diff ID some layer blob carries.
//!
//! A squatter who prepares a snapshot on other content and commits it under
//! the chain ID of an image not pulled yet leaves neither. Both can be faked
//! by a client holding containerd's socket (it picks the key, fetches the
//! signed image's blobs with `ctr content fetch` and sets the label itself):
//! this is detection of the plain squat, not proof of an unpack. The
//! `containerd.io/snapshot.ref` label is not used: `ctr images import` does
//! not set it, and any client can.

use std::collections::BTreeSet;

use containerd_client::services::v1::snapshots::{
    ListSnapshotsRequest, ListSnapshotsResponse, StatSnapshotRequest, StatSnapshotResponse,
};
use containerd_client::services::v1::{ListContentRequest, ListContentResponse};

use super::lookup::method;
use super::wire::{Conn, WireError};

/// The content label an unpack sets on a layer blob after verifying it.
pub const UNCOMPRESSED_LABEL: &str = "containerd.io/uncompressed";

/// The prefix of the keys an unpack prepares (`snapshots.UnpackKeyPrefix`).
pub const UNPACK_KEY_PREFIX: &str = "extract-";

/// The committed-snapshot kind in the Snapshots API (`KIND_COMMITTED`).
const KIND_COMMITTED: i32 = 3;

/// Errors of asking containerd about a committed snapshot.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A containerd call failed.
    #[error("{call}: {message}")]
    Api {
        /// The API method.
        call: &'static str,
        /// containerd's message.
        message: String,
    },
}

fn api(call: &'static str) -> impl Fn(WireError) -> CommitError {
    move |e| CommitError::Api {
        call,
        message: e.to_string(),
    }
}

/// Whether `name` has the form of a chain ID (`sha256:` and 64 lower-case hex digits).
pub fn is_chain_id(name: &str) -> bool {
    name.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Whether `key` is the key an unpack prepares for `name`: `extract-<nonce> <name>`.
pub fn is_unpack_key(key: &str, name: &str) -> bool {
    key.strip_prefix(UNPACK_KEY_PREFIX)
        .and_then(|rest| rest.strip_suffix(name))
        .is_some_and(|nonce| nonce.len() > 1 && nonce.ends_with(' '))
}

/// The chain ID of a layer with diff ID `diff_id` on `parent` (empty: a base layer).
pub fn fold(parent: &str, diff_id: &str) -> String {
    if parent.is_empty() {
        diff_id.to_string()
    } else {
        crate::digest::sha256_prefixed(format!("{parent} {diff_id}").as_bytes())
    }
}

/// Why a committed snapshot named `name` with parent `parent` is not one an
/// unpack made; empty when it is. `key` is the key it was committed from
/// (`None` when unknown: a snapshot found by a scan). `diff_ids` are the
/// verified diff IDs of the content store's layer blobs.
pub fn reasons(
    name: &str,
    parent: &str,
    key: Option<&str>,
    diff_ids: &BTreeSet<String>,
) -> Vec<String> {
    let mut why = Vec::new();
    if !is_chain_id(name) {
        return why;
    }
    if let Some(key) = key {
        if !is_unpack_key(key, name) {
            why.push(format!(
                "committed from key {key:?}, not an unpack's \"{UNPACK_KEY_PREFIX}<nonce> {name}\""
            ));
        }
    }
    if !diff_ids.iter().any(|d| fold(parent, d) == name) {
        why.push(format!(
            "no layer blob in the content store has a verified diff ID ({UNCOMPRESSED_LABEL}) that folds with parent {} to this chain ID",
            if parent.is_empty() { "(none)" } else { parent }
        ));
    }
    why
}

/// The verified diff IDs of the layer blobs in `namespace`'s content store.
pub async fn verified_diff_ids(
    channel: Conn,
    namespace: &str,
) -> Result<BTreeSet<String>, CommitError> {
    let request = ListContentRequest {
        filters: vec![format!("labels.\"{UNCOMPRESSED_LABEL}\"")],
    };
    let mut stream = channel
        .stream(method::CONTENT_LIST, namespace, &request)
        .await
        .map_err(api("content.List"))?;
    let mut out = BTreeSet::new();
    while let Some(page) = stream
        .next::<ListContentResponse>()
        .await
        .map_err(api("content.List"))?
    {
        for info in page.info {
            if let Some(d) = info.labels.get(UNCOMPRESSED_LABEL) {
                out.insert(d.clone());
            }
        }
    }
    Ok(out)
}

/// The parent of the snapshot `name` of `snapshotter` in `namespace`.
pub async fn parent(
    channel: Conn,
    namespace: &str,
    snapshotter: &str,
    name: &str,
) -> Result<String, CommitError> {
    let request = StatSnapshotRequest {
        snapshotter: snapshotter.to_string(),
        key: name.to_string(),
    };
    let info = channel
        .unary::<_, StatSnapshotResponse>(method::SNAPSHOTS_STAT, namespace, &request)
        .await
        .map_err(api("snapshots.Stat"))?
        .info
        .ok_or_else(|| CommitError::Api {
            call: "snapshots.Stat",
            message: format!("no record for {name}"),
        })?;
    Ok(info.parent)
}

/// The committed snapshots named by a chain ID in `namespace`: (name, parent).
pub async fn committed_chain_ids(
    channel: Conn,
    namespace: &str,
    snapshotter: &str,
) -> Result<Vec<(String, String)>, CommitError> {
    let request = ListSnapshotsRequest {
        snapshotter: snapshotter.to_string(),
        filters: vec![],
    };
    let mut stream = channel
        .stream(method::SNAPSHOTS_LIST, namespace, &request)
        .await
        .map_err(api("snapshots.List"))?;
    let mut out = Vec::new();
    while let Some(page) = stream
        .next::<ListSnapshotsResponse>()
        .await
        .map_err(api("snapshots.List"))?
    {
        for info in page.info {
            if info.kind == KIND_COMMITTED && is_chain_id(&info.name) {
                out.push((info.name, info.parent));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::base::testing::digest as d;

    #[test]
    fn chain_id_and_unpack_key_forms() {
        assert!(is_chain_id(&d(1)));
        assert!(!is_chain_id("sha256:ABC"));
        assert!(!is_chain_id(&d(1).to_uppercase()));
        assert!(!is_chain_id("my-snapshot"));
        let name = d(2);
        assert!(is_unpack_key(&format!("extract-12345-abc {name}"), &name));
        assert!(!is_unpack_key(&format!("extract- {name}"), &name));
        assert!(!is_unpack_key(&format!("squat {name}"), &name));
        assert!(!is_unpack_key(&format!("extract-1 {}", d(3)), &name));
        assert!(!is_unpack_key(&format!("extract-1{name}"), &name));
    }

    #[test]
    fn fold_matches_the_image_spec_chain_id() {
        assert_eq!(fold("", &d(1)), d(1));
        assert_eq!(
            fold(&d(1), &d(2)),
            crate::containerd::chain_id(&[d(1), d(2)]).unwrap()
        );
    }

    #[test]
    fn an_unpack_leaves_no_reason_and_a_squat_two() {
        let top = fold(&d(1), &d(2));
        let verified: BTreeSet<String> = [d(1), d(2)].into();
        let key = format!("extract-99-x {top}");
        assert!(reasons(&top, &d(1), Some(&key), &verified).is_empty());
        assert!(reasons(&d(1), "", None, &verified).is_empty());
        let why = reasons(&top, &d(7), Some("squat"), &verified);
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why[0].contains("not an unpack's"));
        assert!(why[1].contains("folds with parent"));
        let why = reasons(&top, &d(1), Some(&key), &[d(1)].into());
        assert_eq!(why.len(), 1);
        assert!(reasons("not-a-chain-id", "", Some("k"), &verified).is_empty());
    }
}
