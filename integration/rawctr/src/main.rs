//! Test-only: containerd API calls `ctr` cannot make, for the adversarial
//! cases of integration/runc-gate.sh (a hostile API client).
//!
//! - `update`: rewrite a container record: clear its snapshot key and/or point
//!   its spec's `root.path` elsewhere (Containers.Update).
//! - `create-task`: Tasks.Create with the rootfs mounts of a snapshot the
//!   caller names (instead of the record's) and/or a `runtime_path`.
//!
//! Prints nothing on success; the containerd error on failure (exit 1).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use containerd_client::services::v1::snapshots::{
    snapshots_client::SnapshotsClient, MountsRequest,
};
use containerd_client::services::v1::{
    containers_client::ContainersClient, tasks_client::TasksClient, CreateTaskRequest,
    GetContainerRequest, UpdateContainerRequest,
};
use containerd_client::tonic::Request;
use containerd_client::with_namespace;

#[derive(Parser)]
struct Cli {
    /// containerd socket.
    #[arg(long)]
    address: String,
    /// Namespace.
    #[arg(long)]
    namespace: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Rewrite a container record.
    Update {
        id: String,
        /// Clear the record's snapshot key.
        #[arg(long)]
        clear_snapshot: bool,
        /// Set the spec's root.path.
        #[arg(long)]
        root_path: Option<String>,
    },
    /// Create (not start) the container's task.
    CreateTask {
        id: String,
        /// Use this snapshot's mounts as the task's rootfs.
        #[arg(long)]
        rootfs_snapshot: Option<String>,
        /// Snapshotter of --rootfs-snapshot.
        #[arg(long, default_value = "overlayfs")]
        snapshotter: String,
        /// Tasks.Create runtime_path (a shim binary).
        #[arg(long)]
        runtime_path: Option<String>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let ns = cli.namespace.as_str();
    let channel = containerd_client::connect(&cli.address)
        .await
        .context("connect")?;
    match cli.cmd {
        Cmd::Update {
            id,
            clear_snapshot,
            root_path,
        } => {
            let mut c = ContainersClient::new(channel.clone())
                .get(with_namespace!(GetContainerRequest { id: id.clone() }, ns))
                .await?
                .into_inner()
                .container
                .context("no container")?;
            let mut paths = Vec::new();
            if clear_snapshot {
                c.snapshot_key.clear();
                paths.push("snapshotkey".to_string());
            }
            if let Some(p) = root_path {
                let spec = c.spec.as_mut().context("no spec")?;
                let mut v: serde_json::Value = serde_json::from_slice(&spec.value)?;
                v["root"]["path"] = serde_json::Value::String(p);
                spec.value = serde_json::to_vec(&v)?;
                paths.push("spec".to_string());
            }
            ContainersClient::new(channel)
                .update(with_namespace!(
                    UpdateContainerRequest {
                        container: Some(c),
                        update_mask: Some(prost_types::FieldMask { paths }),
                    },
                    ns
                ))
                .await?;
        }
        Cmd::CreateTask {
            id,
            rootfs_snapshot,
            snapshotter,
            runtime_path,
        } => {
            let rootfs = match rootfs_snapshot {
                Some(key) => {
                    SnapshotsClient::new(channel.clone())
                        .mounts(with_namespace!(MountsRequest { snapshotter, key }, ns))
                        .await?
                        .into_inner()
                        .mounts
                }
                None => Vec::new(),
            };
            TasksClient::new(channel)
                .create(with_namespace!(
                    CreateTaskRequest {
                        container_id: id,
                        rootfs,
                        runtime_path: runtime_path.unwrap_or_default(),
                        ..Default::default()
                    },
                    ns
                ))
                .await?;
        }
    }
    Ok(())
}
