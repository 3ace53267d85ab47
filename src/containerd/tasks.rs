//! The node's running tasks, and stopping one: the containerd questions of
//! `portcullis reverify`.
//!
//! This module owns listing namespaces (Namespaces `List`) and their tasks
//! (Tasks `List`), and stopping a task through the Tasks API: `SIGTERM` to
//! its init process, then, if it is still running after a grace period,
//! `SIGKILL` to all its processes. Every call is bounded by a deadline.

use std::time::{Duration, Instant};

use containerd_client::services::v1::{
    namespaces_client::NamespacesClient, tasks_client::TasksClient, GetRequest, KillRequest,
    ListNamespacesRequest, ListTasksRequest,
};
use containerd_client::tonic::Request;
use containerd_client::types::v1::Status;
use containerd_client::with_namespace;

use super::lookup::{api, block_on, connect};
use super::LookupError;

/// A task containerd reports as running (or paused).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunningTask {
    /// Its namespace.
    pub namespace: String,
    /// Its container ID.
    pub container_id: String,
    /// Its init process on the host.
    pub pid: u32,
    /// `running` or `paused`.
    pub status: &'static str,
}

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited within the grace period after `SIGTERM`.
    Term,
    /// It was still running after the grace period and got `SIGKILL`.
    Kill,
}

impl Stopped {
    /// The signal that ended it.
    pub fn signal(self) -> &'static str {
        match self {
            Stopped::Term => "SIGTERM",
            Stopped::Kill => "SIGKILL",
        }
    }
}

/// The namespaces containerd knows.
pub fn namespaces(address: &str, timeout: Duration) -> Result<Vec<String>, LookupError> {
    block_on(address, timeout, async {
        let channel = connect(address).await?;
        let mut names: Vec<String> = NamespacesClient::new(channel)
            .list(ListNamespacesRequest {
                filter: String::new(),
            })
            .await
            .map_err(api("namespaces.List"))?
            .into_inner()
            .namespaces
            .into_iter()
            .map(|n| n.name)
            .collect();
        names.sort();
        Ok(names)
    })
}

/// The running and paused tasks of `namespace`, by container ID.
pub fn running_tasks(
    address: &str,
    namespace: &str,
    timeout: Duration,
) -> Result<Vec<RunningTask>, LookupError> {
    block_on(address, timeout, async {
        let channel = connect(address).await?;
        let tasks = TasksClient::new(channel)
            .list(with_namespace!(
                ListTasksRequest {
                    filter: String::new(),
                },
                namespace
            ))
            .await
            .map_err(api("tasks.List"))?
            .into_inner()
            .tasks;
        let mut out: Vec<RunningTask> = tasks
            .into_iter()
            .filter_map(|t| {
                let status = match Status::try_from(t.status).ok()? {
                    Status::Running => "running",
                    Status::Paused | Status::Pausing => "paused",
                    _ => return None,
                };
                // containerd fills the process ID (the container's, for a
                // task's init) and leaves container_id empty.
                let container_id = if t.container_id.is_empty() {
                    t.id
                } else {
                    t.container_id
                };
                Some(RunningTask {
                    namespace: namespace.to_string(),
                    container_id,
                    pid: t.pid,
                    status,
                })
            })
            .collect();
        out.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        Ok(out)
    })
}

/// Stop a task: `SIGTERM` to its init, and `SIGKILL` to all its processes
/// when it still runs after `grace`. Returns once containerd reports it
/// stopped; an error when it does not within `grace` plus `timeout`.
pub fn stop_task(
    address: &str,
    namespace: &str,
    id: &str,
    grace: Duration,
    timeout: Duration,
) -> Result<Stopped, LookupError> {
    block_on(address, grace + timeout, async {
        let channel = connect(address).await?;
        let mut tasks = TasksClient::new(channel);
        let kill = |signal: i32, all: bool| {
            with_namespace!(
                KillRequest {
                    container_id: id.to_string(),
                    exec_id: String::new(),
                    signal: signal as u32,
                    all,
                },
                namespace
            )
        };
        tasks
            .kill(kill(nix::sys::signal::Signal::SIGTERM as i32, false))
            .await
            .map_err(api("tasks.Kill"))?;
        let term_sent = Instant::now();
        loop {
            if stopped(&mut tasks, namespace, id).await? {
                return Ok(Stopped::Term);
            }
            if term_sent.elapsed() >= grace {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tasks
            .kill(kill(nix::sys::signal::Signal::SIGKILL as i32, true))
            .await
            .map_err(api("tasks.Kill"))?;
        loop {
            if stopped(&mut tasks, namespace, id).await? {
                return Ok(Stopped::Kill);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Is the task stopped (or gone)?
async fn stopped(
    tasks: &mut TasksClient<containerd_client::tonic::transport::Channel>,
    namespace: &str,
    id: &str,
) -> Result<bool, LookupError> {
    let got = tasks
        .get(with_namespace!(
            GetRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            },
            namespace
        ))
        .await;
    match got {
        Ok(r) => Ok(r
            .into_inner()
            .process
            .is_none_or(|p| p.status == Status::Stopped as i32)),
        Err(s) if s.code() == containerd_client::tonic::Code::NotFound => Ok(true),
        Err(s) => Err(api("tasks.Get")(s)),
    }
}
