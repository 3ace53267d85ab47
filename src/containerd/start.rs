//! The container lookup with the fewest round trips: what a start asks
//! containerd, on one connection.
//!
//! This module owns the order of the questions about a container:
//! `containers.Get`; then at once `images.Get` (and, for an index, its blob),
//! `snapshots.Stat` of the container's snapshot and, when the caller asks for
//! them (the runc gate compares them with what is mounted), the snapshot's
//! `snapshots.Mounts`; then the image's layer chain ID, and for an index whose
//! default pick does not have the container's layers, which of its manifests
//! the rootfs came from ([`super::origin`]). The chain ID is a pure
//! function of the manifest digest (the manifest and the config it names are
//! content-addressed), so a caller that already knows it for this digest
//! passes it in and the two content-store reads it costs (manifest, then
//! config) are skipped; a chain ID computed here is returned for the caller
//! to keep. The answers are the same as asking each question alone.

use std::time::Duration;

use containerd_client::services::v1::snapshots::{StatSnapshotRequest, StatSnapshotResponse};
use containerd_client::services::v1::{GetContainerRequest, GetContainerResponse};

use super::lookup::{
    api, image_chain_id, local_blob, local_chain, method, read_blob, resolve_image, ImageTarget,
    LookupError, SnapshotMount,
};
use super::wire;

/// What the container lookup found.
#[derive(Debug)]
pub struct Found {
    /// The image, its digests, the container's snapshot and its lineage.
    pub target: ImageTarget,
    /// The snapshot's mounts, when asked for and the container has a
    /// snapshot (their failure does not fail the lookup: the caller decides).
    pub mounts: Option<Result<Vec<SnapshotMount>, LookupError>>,
    /// `(manifest digest, chain ID)` when the chain ID was read from the
    /// content store here rather than given by the caller.
    pub computed_chain: Option<(String, String)>,
}

/// Look up a container's image and resolve its digests (and its rootfs
/// lineage, the chain ID read from the content store).
pub fn lookup_container(
    address: &str,
    namespace: &str,
    id: &str,
    timeout: Duration,
) -> Result<ImageTarget, LookupError> {
    lookup(address, namespace, id, timeout, &|_| None, false).map(|f| f.target)
}

/// Look a container up: its image and digests, its snapshot's parent and the
/// image's chain ID (`known_chain` of the manifest digest when it answers),
/// and the snapshot's mounts when `with_mounts`.
pub fn lookup(
    address: &str,
    namespace: &str,
    id: &str,
    timeout: Duration,
    known_chain: &dyn Fn(&str) -> Option<String>,
    with_mounts: bool,
) -> Result<Found, LookupError> {
    wire::run(address, timeout, |channel| async move {
        let request = GetContainerRequest { id: id.to_string() };
        let container = channel
            .unary::<_, GetContainerResponse>(method::CONTAINERS_GET, namespace, &request)
            .await
            .map_err(api("containers.Get"))?
            .container
            .ok_or_else(|| LookupError::Incomplete(format!("container {id} has no record")))?;
        if container.image.is_empty() {
            return Err(LookupError::NoImage(id.to_string()));
        }
        let snapshot_key = Some(container.snapshot_key).filter(|s| !s.is_empty());
        let snapshotter = Some(container.snapshotter).filter(|s| !s.is_empty());
        let snapshot = snapshot_key.as_deref().zip(snapshotter.as_deref());
        // The image and the snapshot depend only on the container record:
        // ask for all of them at once.
        let stat = async {
            let Some((key, snapshotter)) = snapshot else {
                return Ok(None);
            };
            let request = StatSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: key.to_string(),
            };
            channel
                .unary::<_, StatSnapshotResponse>(method::SNAPSHOTS_STAT, namespace, &request)
                .await
                .map_err(api("snapshots.Stat"))?
                .info
                .map(Some)
                .ok_or_else(|| LookupError::Incomplete(format!("snapshot {key} has no record")))
        };
        let mounts = async {
            let (Some((key, snapshotter)), true) = (snapshot, with_mounts) else {
                return None;
            };
            Some(super::lookup::mounts(channel.clone(), namespace, snapshotter, key).await)
        };
        let (target, info, mounts) = tokio::join!(
            resolve_image(channel.clone(), namespace, &container.image),
            stat,
            mounts
        );
        let mut target = target?;
        // Failures from here on are about a known image: they carry it.
        let target_digest = target.target_digest.clone();
        let known = |e: LookupError| LookupError::Image {
            name: container.image.clone(),
            digest: target_digest.clone(),
            source: Box::new(e),
        };
        target.snapshot_key = snapshot_key;
        target.snapshotter = snapshotter;
        let mut computed_chain = None;
        if let Some(info) = info.map_err(known)? {
            target.snapshot_parent = Some(info.parent.clone());
            match target.platform_digest.clone() {
                // An index: which of its manifests the rootfs came from
                // (`--platform` may have taken another than the default pick).
                Some(pick) => {
                    let default_chain = match known_chain(&pick) {
                        Some(c) => Some(c),
                        None => {
                            let c = local_chain(channel.clone(), namespace, pick.clone())
                                .await
                                .map_err(known)?;
                            if let Some(c) = &c {
                                computed_chain = Some((pick.clone(), c.clone()));
                            }
                            c
                        }
                    };
                    if default_chain.as_deref() == Some(info.parent.as_str()) {
                        // The default pick has the container's layers: it is
                        // what origin::settle binds whatever else the index
                        // holds (the platform model's verdict stands), so the
                        // walk of the index's other manifests is skipped.
                        target.chain_id = default_chain;
                    } else {
                        let blob = read_blob(channel.clone(), namespace, &target.target_digest, 0)
                            .await
                            .map_err(known)?;
                        let observed = super::origin::observe(
                            &target.target_digest,
                            &blob,
                            &info.parent,
                            |d| local_blob(channel.clone(), namespace, d),
                            // The default pick's chain is known: not read twice.
                            |m| {
                                let known = (m == pick).then(|| default_chain.clone());
                                let channel = channel.clone();
                                async move {
                                    match known {
                                        Some(c) => Ok(c),
                                        None => local_chain(channel, namespace, m).await,
                                    }
                                }
                            },
                        )
                        .await
                        .map_err(known)?;
                        let s = super::origin::settle(
                            &target.target_digest,
                            &pick,
                            default_chain,
                            target.platform_ambiguity.take(),
                            &info.parent,
                            &observed,
                        );
                        target.platform_digest = Some(s.platform_digest);
                        target.chain_id = s.chain_id;
                        target.platform_ambiguity = s.ambiguity;
                    }
                }
                None => {
                    let manifest = target.target_digest.clone();
                    let chain = match known_chain(&manifest) {
                        Some(c) => c,
                        None => {
                            let c = image_chain_id(channel, namespace, &manifest)
                                .await
                                .map_err(known)?;
                            computed_chain = Some((manifest, c.clone()));
                            c
                        }
                    };
                    target.chain_id = Some(chain);
                }
            }
        }
        Ok(Found {
            target,
            mounts,
            computed_chain,
        })
    })
}
