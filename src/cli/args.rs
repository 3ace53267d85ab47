//! The arguments several commands share, each defined once and flattened
//! into the commands that take it: containerd's connection, the policy
//! file, the state directory and `--json`; and how `check`, `provenance` and
//! `bundle export` find an image in containerd.

use std::path::PathBuf;

use clap::Args;

use crate::containerd;
use crate::policy;

/// containerd's socket (the commands that read every namespace take only this).
#[derive(Debug, Args)]
pub struct AddressArg {
    /// containerd's gRPC socket.
    #[arg(
        long,
        env = "CONTAINERD_ADDRESS",
        default_value = "/run/containerd/containerd.sock"
    )]
    pub address: String,
}

/// Where containerd is: its socket and the namespace.
#[derive(Debug, Args)]
pub struct ContainerdArgs {
    // The socket (a plain comment: clap reads doc comments).
    #[allow(missing_docs)]
    #[command(flatten)]
    pub socket: AddressArg,
    /// containerd namespace.
    #[arg(
        long,
        short = 'n',
        env = "CONTAINERD_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
}

/// The policy file.
#[derive(Debug, Args)]
pub struct PolicyArg {
    /// Policy file.
    #[arg(long = "policy", id = "policy",
        value_name = "POLICY", env = "PORTCULLIS_POLICY", default_value = policy::DEFAULT_POLICY_PATH)]
    pub path: PathBuf,
}

/// The state directory.
#[derive(Debug, Args)]
pub struct StateDirArg {
    /// State directory.
    #[arg(long = "state-dir", id = "state_dir",
        value_name = "STATE_DIR", env = "PORTCULLIS_STATE_DIR", default_value = crate::cache::DEFAULT_STATE_DIR)]
    pub dir: PathBuf,
}

/// `--json`.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Find an image in containerd under the name given or its normalized form;
/// a pinned digest not in containerd is checked as is.
pub fn lookup_image(
    c: &ContainerdArgs,
    image: &str,
    timeout: std::time::Duration,
) -> Result<containerd::ImageTarget, containerd::LookupError> {
    let first = containerd::lookup_image(&c.socket.address, &c.namespace, image, timeout);
    let normalized = crate::reference::ImageRef::parse(image).ok();
    match first {
        Err(containerd::LookupError::Api { .. }) => {
            if let Some(r) = &normalized {
                if r.normalized() != image {
                    if let Ok(t) = containerd::lookup_image(
                        &c.socket.address,
                        &c.namespace,
                        r.normalized(),
                        timeout,
                    ) {
                        return Ok(t);
                    }
                }
                if let Some(d) = r.digest() {
                    return Ok(containerd::ImageTarget {
                        name: image.to_string(),
                        target_digest: d.to_string(),
                        target_media_type: String::new(),
                        platform_digest: None,
                        platform_ambiguity: None,
                        snapshot_key: None,
                        snapshotter: None,
                        chain_id: None,
                        snapshot_parent: None,
                    });
                }
            }
            first
        }
        other => other,
    }
}
