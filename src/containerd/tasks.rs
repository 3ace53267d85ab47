//! The node's running tasks, and stopping one: the containerd questions of
//! `portcullis reverify`.
//!
//! This module owns listing namespaces (Namespaces `List`) and their tasks
//! (Tasks `List`), and stopping a task through the Tasks API: `SIGTERM` to
//! its init process, then, if it is still running after a grace period,
//! `SIGKILL` to all its processes. Every call is bounded by a deadline.

use std::time::{Duration, Instant};

use containerd_client::services::v1::{
    GetRequest, GetResponse, KillRequest, ListNamespacesRequest, ListNamespacesResponse,
    ListTasksRequest, ListTasksResponse,
};
use containerd_client::types::v1::Status;

use super::lookup::{api, method};
use super::wire::{self, Conn};
use super::LookupError;

/// Run `calls` on a connection on a current-thread tokio runtime, within
/// `timeout`: for the stop, which sleeps between its questions (the calls
/// that do not wait run on [`wire::run`], with no runtime).
fn block_on<T, F, Fut>(address: &str, timeout: Duration, calls: F) -> Result<T, LookupError>
where
    F: FnOnce(Conn) -> Fut,
    Fut: std::future::Future<Output = Result<T, LookupError>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| LookupError::Runtime(e.to_string()))?;
    rt.block_on(async {
        let run = async { calls(wire::connect_tokio(address).await?).await };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(wire::DriveError::Timeout {
                address: address.to_string(),
                ms: timeout.as_millis(),
            }
            .into()),
        }
    })
}

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
    wire::run(address, timeout, |conn| async move {
        let request = ListNamespacesRequest {
            filter: String::new(),
        };
        let mut names: Vec<String> = conn
            .unary::<_, ListNamespacesResponse>(method::NAMESPACES_LIST, "", &request)
            .await
            .map_err(api("namespaces.List"))?
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
    wire::run(address, timeout, |conn| async move {
        let request = ListTasksRequest {
            filter: String::new(),
        };
        let tasks = conn
            .unary::<_, ListTasksResponse>(method::TASKS_LIST, namespace, &request)
            .await
            .map_err(api("tasks.List"))?
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
    block_on(address, grace + timeout, |tasks| async move {
        let kill = |signal: i32, all: bool| KillRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
            signal: signal as u32,
            all,
        };
        let send = |r: KillRequest| {
            let tasks = tasks.clone();
            async move {
                tasks
                    .unary::<_, ()>(method::TASKS_KILL, namespace, &r)
                    .await
                    .map_err(api("tasks.Kill"))
            }
        };
        send(kill(nix::sys::signal::Signal::SIGTERM as i32, false)).await?;
        let term_sent = Instant::now();
        loop {
            if stopped(&tasks, namespace, id).await? {
                return Ok(Stopped::Term);
            }
            if term_sent.elapsed() >= grace {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        send(kill(nix::sys::signal::Signal::SIGKILL as i32, true)).await?;
        loop {
            if stopped(&tasks, namespace, id).await? {
                return Ok(Stopped::Kill);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Is the task stopped (or gone)?
async fn stopped(tasks: &Conn, namespace: &str, id: &str) -> Result<bool, LookupError> {
    let request = GetRequest {
        container_id: id.to_string(),
        exec_id: String::new(),
    };
    let got = tasks
        .unary::<_, GetResponse>(method::TASKS_GET, namespace, &request)
        .await;
    match got {
        Ok(r) => Ok(r.process.is_none_or(|p| p.status == Status::Stopped as i32)),
        Err(e) if e.code() == wire::Code::NotFound => Ok(true),
        Err(e) => Err(api("tasks.Get")(e)),
    }
}
