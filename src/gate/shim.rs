//! The shim wrapper: containerd's `start` goes through the gate, everything
//! else goes straight to the inner shim.
//!
//! This module owns the shim v2 command line (Go `flag` syntax: `-namespace
//! NS -address SOCK -publish-binary BIN -id ID [-bundle DIR] [-debug] start`)
//! and the hand-over: on allow it `exec`s the inner shim with the same
//! arguments, environment and working directory, so no process of ours stays
//! behind and the inner shim's `start` output (the address containerd needs,
//! in whichever format that containerd version speaks) reaches containerd
//! unchanged. On deny it prints one line and exits 1.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;

use crate::admission;
use crate::policy::{Policy, DEFAULT_SHIM};

/// Flags of the shim v2 protocol that take a value (containerd 1.6 to 2.x).
const VALUE_FLAGS: &[&str] = &[
    "namespace",
    "address",
    "publish-binary",
    "id",
    "bundle",
    "socket",
    "ttrpc-address",
];

/// The parsed command line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ShimArgs {
    /// `-namespace`.
    pub namespace: Option<String>,
    /// `-address` (containerd's gRPC socket).
    pub address: Option<String>,
    /// `-id`.
    pub id: Option<String>,
    /// The action word (`start`, `delete`), if any.
    pub action: Option<String>,
    /// Whether `start` appears anywhere as a word: checked so that an
    /// unexpected flag layout can never route a start around the gate.
    pub mentions_start: bool,
}

impl ShimArgs {
    /// Parse Go-style flags; unknown flags are skipped, never fatal.
    pub fn parse(args: &[OsString]) -> ShimArgs {
        let mut out = ShimArgs::default();
        let mut i = 0;
        while i < args.len() {
            let a = args[i].to_string_lossy();
            if let Some(flag) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) {
                if flag.is_empty() {
                    i += 1;
                    continue;
                }
                let (name, inline) = match flag.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (flag, None),
                };
                let takes_value = VALUE_FLAGS.contains(&name);
                let value = if takes_value && inline.is_none() {
                    i += 1;
                    args.get(i).map(|v| v.to_string_lossy().into_owned())
                } else {
                    inline
                };
                match name {
                    "namespace" => out.namespace = value,
                    "address" => out.address = value,
                    "id" => out.id = value,
                    _ => {}
                }
            } else {
                if a == "start" {
                    out.mentions_start = true;
                }
                if out.action.is_none() {
                    out.action = Some(a.into_owned());
                }
            }
            i += 1;
        }
        out
    }

    /// Is this a task start?
    pub fn is_start(&self) -> bool {
        self.action.as_deref() == Some("start") || self.mentions_start
    }
}

pub use crate::containerd::lookup_timeout;

/// What the wrapper does with this invocation.
pub enum Plan {
    /// Hand over to this shim binary.
    Exec(String),
    /// Refuse: print this line and exit 1.
    Refuse(String),
}

/// Where a gated start's time went (shared with the runc gate).
pub use crate::admission::Timings;

/// Decide what to do with `args` (argv without `argv[0]`).
pub fn plan(args: &[OsString]) -> Plan {
    plan_timed(args).0
}

/// [`plan`], and for a gated start where its time went.
pub fn plan_timed(args: &[OsString]) -> (Plan, Option<Timings>) {
    let parsed = ShimArgs::parse(args);
    if !parsed.is_start() {
        let policy = Policy::load_for_start(
            &Policy::default_path(),
            &crate::state::cache::StateDir::from_env(),
        );
        // delete, -v, -info, anything else: straight through to the shim the
        // policy names (the same one start used), or runc's.
        let shim = policy
            .as_ref()
            .map(|p| p.shim.clone())
            .unwrap_or_else(|_| DEFAULT_SHIM.to_string());
        return (Plan::Exec(shim), None);
    }
    // The same sequence as the runc gate's (policy, lookup, decide, record).
    let req = admission::StartRequest {
        namespace: parsed.namespace.clone(),
        id: parsed.id.clone(),
        address: parsed.address.clone(),
    };
    let (adm, tm) = admission::admit(&req, admission::GateKind::Shim, None);
    let plan = match adm {
        admission::Admission::Allow { shim } => Plan::Exec(shim),
        admission::Admission::Refuse(line) => Plan::Refuse(line),
    };
    (plan, Some(tm))
}

/// When `PORTCULLIS_RUSAGE_LOG` names a file, append this process's CPU
/// time and peak memory so far, the same for its reaped verification child,
/// its page faults and context switches, and where the time went (one JSON
/// line): the benchmark's measure of the wrapper's own cost, taken just
/// before the hand-over, with the verification child's steps when one ran
/// ([`crate::sandbox::Timeline`]). Peak memory is `VmHWM` of this program's address
/// space: `ru_maxrss` would also count the containerd process this one was
/// forked from (Linux keeps it across `execve`). The faults (`minflt`) and
/// the voluntary switches (`nvcsw`: each wait for containerd or a child is
/// one) count from the fork, the exec of this program included.
pub fn log_rusage(timings: &Timings) {
    use nix::sys::resource::{getrusage, UsageWho};
    use nix::sys::time::TimeValLike;
    use std::io::Write;
    let Some(path) = std::env::var_os("PORTCULLIS_RUSAGE_LOG") else {
        return;
    };
    let Ok(u) = getrusage(UsageWho::RUSAGE_SELF) else {
        return;
    };
    // The verification child (reaped by now) is part of the wrapper's cost.
    let Ok(c) = getrusage(UsageWho::RUSAGE_CHILDREN) else {
        return;
    };
    let hwm_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    let t = timings;
    let p = &t.phases;
    let sb = p.sandbox.unwrap_or_default();
    let line = format!(
        "{{\"user_us\":{},\"sys_us\":{},\"max_rss_kib\":{hwm_kib},\"minflt\":{},\"nvcsw\":{},\"child_user_us\":{},\"child_sys_us\":{},\"child_max_rss_kib\":{},\"child_minflt\":{},\"policy_us\":{},\"lookup_us\":{},\"key_us\":{},\"cache_read_us\":{},\"verify_us\":{},\"sandbox\":\"{}\",\"fork_us\":{},\"child_start_us\":{},\"confine_us\":{},\"work_us\":{},\"exit_us\":{},\"reap_us\":{},\"decide_us\":{},\"journal_us\":{},\"total_us\":{}}}\n",
        u.user_time().num_microseconds(),
        u.system_time().num_microseconds(),
        u.minor_page_faults(),
        u.voluntary_context_switches(),
        c.user_time().num_microseconds(),
        c.system_time().num_microseconds(),
        c.max_rss(),
        c.minor_page_faults(),
        t.policy_us,
        t.lookup_us,
        p.key_us,
        p.cache_read_us,
        p.verify_us,
        match p.isolation {
            Some(crate::sandbox::Isolation::Child) => "child",
            Some(crate::sandbox::Isolation::InProcess) => "in-process",
            None => "none",
        },
        sb.fork_us,
        sb.child_start_us,
        sb.confine_us,
        sb.work_us,
        sb.exit_us,
        sb.reap_us,
        t.decide_us,
        t.journal_us,
        t.total_us,
    );
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Replace this process with the inner shim. Returns only on failure.
pub fn exec_inner(shim: &str, args: &[OsString]) -> std::io::Error {
    let mut cmd = std::process::Command::new(OsStr::new(shim));
    cmd.args(args);
    cmd.exec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn parses_containerd_start() {
        let p = ShimArgs::parse(&args(
            "-namespace default -address /run/containerd/containerd.sock -publish-binary /usr/bin/containerd -id abc start",
        ));
        assert_eq!(p.namespace.as_deref(), Some("default"));
        assert_eq!(
            p.address.as_deref(),
            Some("/run/containerd/containerd.sock")
        );
        assert_eq!(p.id.as_deref(), Some("abc"));
        assert!(p.is_start());
    }

    #[test]
    fn parses_delete_and_version() {
        let p = ShimArgs::parse(&args(
            "-namespace default -address /s -publish-binary /c -id abc -bundle /b delete",
        ));
        assert_eq!(p.action.as_deref(), Some("delete"));
        assert!(!p.is_start());
        let p = ShimArgs::parse(&args("-v"));
        assert!(!p.is_start());
        assert_eq!(p.action, None);
    }

    #[test]
    fn an_id_named_start_is_not_an_action_but_a_trailing_start_is() {
        let p = ShimArgs::parse(&args("-id start -namespace n delete"));
        assert_eq!(p.id.as_deref(), Some("start"));
        assert!(!p.is_start());
        // an unknown boolean-looking flag swallowing nothing still finds start
        let p = ShimArgs::parse(&args("-namespace n -debug -id x -newflag start"));
        assert!(p.is_start());
        let p = ShimArgs::parse(&args("--namespace=n --id=x --address=/s start"));
        assert_eq!(
            (p.namespace.as_deref(), p.id.as_deref()),
            (Some("n"), Some("x"))
        );
        assert!(p.is_start());
    }
}
