//! `portcullis doctor`: is this node set up to enforce?
//!
//! This module owns the node's set-up checks and their fixes: containerd
//! reachable (its version API), the CRI runtime handler registered (the
//! `runtime_type` in `containerd config dump`, weighed against whether the
//! CRI plugin is loaded, from the introspection API), the shim binary on
//! containerd's `PATH` (from its process environment when containerd tells
//! its pid), the policy valid ([`crate::policy`]), the default trust root
//! present and fresh ([`crate::trust::age`]), journald's socket reachable,
//! the state directory writable and private, and `portcullis-sync.service`
//! active (when systemd is PID 1; otherwise the answer is "unknown"). The
//! decisions are plain functions of what was observed, so they are tested
//! without a node; [`run`] does the observing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::PluginsRequest;

use crate::containerd::method;
use serde::Serialize;

use crate::cache::StateDir;
use crate::policy::{Policy, Signer};

pub use crate::base::names::RUNTIME_TYPE;
/// The service that keeps the cache filled.
pub const SYNC_UNIT: &str = "portcullis-sync.service";
/// journald's native protocol socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// A default root older than this is stale when the policy sets no
/// `trust_root_max_age`.
pub const DEFAULT_TRUST_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Where a package puts the containerd drop-in.
pub const DROP_IN: &str = "/etc/containerd/conf.d/portcullis-runtime.toml";

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but worth a look; does not fail the run.
    Warn,
    /// Broken: enforcement will not work as configured.
    Fail,
    /// Cannot be told from here.
    Unknown,
}

impl Status {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
        }
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name (`containerd`, `cri-runtime`, `shim`, `policy`,
    /// `trust-root`, `policy-source`, `journald`, `state-dir`, `sync-service`).
    pub name: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do, when something is to be done.
    pub fix: Option<String>,
}

impl Check {
    /// A check with its status and detail.
    pub fn new(name: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Check {
            name,
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    /// The fix an operator applies.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// Every check, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// No check failed.
    pub ok: bool,
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// A report of these checks.
    pub fn new(checks: Vec<Check>) -> Self {
        Report {
            ok: !checks.iter().any(|c| c.status == Status::Fail),
            checks,
        }
    }
}

/// Where to look.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// containerd's gRPC socket.
    pub address: String,
    /// containerd's configuration file (`None`: containerd's default).
    pub containerd_config: Option<PathBuf>,
    /// The policy file.
    pub policy: PathBuf,
    /// The state directory.
    pub state_dir: PathBuf,
    /// Bound on the containerd questions, together.
    pub timeout: Duration,
}

/// Observe the node and run every check.
pub fn run(o: &DoctorOptions) -> Report {
    let (version, cri_loaded, pid) = ask_containerd(&o.address, o.timeout);
    let mut checks = vec![containerd_check(&o.address, &version)];
    checks.push(cri_check(
        &config_dump(o.containerd_config.as_deref()),
        cri_loaded,
    ));
    let socket = o.address.strip_prefix("unix://").unwrap_or(&o.address);
    let path = pid
        .or_else(|| listener_pid(Path::new(socket)))
        .and_then(process_path);
    checks.push(shim_check(path.as_deref()));
    checks.push(node_wide_check(path.as_deref()));
    let (policy_check, policy) = policy_check(&o.policy);
    checks.push(policy_check);
    let state = StateDir::new(&o.state_dir);
    let (age, path) = match crate::trust::RootName::parse(crate::trust::DEFAULT) {
        Ok(name) => (
            crate::trust::age(&state, &name).map_err(|e| {
                let missing = matches!(e, crate::trust::TrustError::NotCached { .. });
                (missing, e.to_string())
            }),
            crate::trust::root_path(&state, &name),
        ),
        Err(e) => (Err((false, e.to_string())), o.state_dir.clone()),
    };
    checks.push(trust_check(age, &path, policy.as_ref()));
    if let Some(p) = &policy {
        checks.push(enforcement_check(&crate::policy::summary::GateState::of(
            p, &state,
        )));
    }
    checks.push(policy_source_check(
        &o.policy,
        Path::new(crate::state::policy_store::DEFAULT_SOURCE).exists(),
        jiff::Timestamp::now(),
    ));
    checks.push(journald_check(Path::new(JOURNAL_SOCKET)));
    checks.push(state_dir_check(&o.state_dir));
    let systemd = Path::new("/run/systemd/system").is_dir();
    let active = systemd.then(|| is_active(SYNC_UNIT));
    checks.push(sync_check(systemd, active));
    Report::new(checks)
}

type Observed = (Result<String, String>, Option<bool>, Option<u32>);

/// containerd's version, whether its CRI plugin is loaded, and its pid.
fn ask_containerd(address: &str, timeout: Duration) -> Observed {
    use crate::containerd::wire::{self, DriveError};
    use containerd_client::services::v1::{PluginsResponse, ServerResponse, VersionResponse};
    let asked = wire::run(address, timeout, |conn| async move {
        let version = conn
            .unary::<_, VersionResponse>(method::VERSION, "", &())
            .await
            .map(|v| v.version)
            .map_err(|e| format!("version API: {e}"));
        let request = PluginsRequest { filters: vec![] };
        let cri_loaded = conn
            .unary::<_, PluginsResponse>(method::INTROSPECTION_PLUGINS, "", &request)
            .await
            .ok()
            .map(|p| {
                p.plugins.iter().any(|p| {
                    p.init_err.is_none()
                        && ((p.r#type == "io.containerd.grpc.v1" && p.id == "cri")
                            || p.r#type == "io.containerd.cri.v1")
                })
            });
        let pid = conn
            .unary::<_, ServerResponse>(method::INTROSPECTION_SERVER, "", &())
            .await
            .ok()
            .and_then(|s| u32::try_from(s.pid).ok())
            .filter(|p| *p > 0);
        Ok::<_, DriveError>((version, cri_loaded, pid))
    });
    match asked {
        Ok(o) => o,
        Err(DriveError::Unreachable { why, .. }) => (Err(why), None, None),
        Err(DriveError::Timeout { ms, .. }) => {
            (Err(format!("no answer within {ms} ms")), None, None)
        }
    }
}

/// The `containerd` check.
pub fn containerd_check(address: &str, version: &Result<String, String>) -> Check {
    match version {
        Ok(v) => Check::new(
            "containerd",
            Status::Ok,
            format!("containerd {v} at {address}"),
        ),
        Err(e) => Check::new(
            "containerd",
            Status::Fail,
            format!("containerd at {address} is unreachable: {e}"),
        )
        .fix("start containerd (`systemctl start containerd`), or pass --address SOCKET"),
    }
}

/// `containerd config dump`'s output, or why there is none.
fn config_dump(config: Option<&Path>) -> Result<String, String> {
    let mut cmd = std::process::Command::new("containerd");
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd
        .args(["config", "dump"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `containerd config dump`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`containerd config dump` failed: {}",
            crate::base::text::last_line(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| "`containerd config dump` is not UTF-8".into())
}

/// The CRI runtime handlers whose `runtime_type` is ours, in a dumped
/// containerd configuration (any config version: the handlers are the
/// tables under a `runtimes` table).
pub fn runtime_handlers(dump: &str) -> Result<Vec<String>, String> {
    fn walk(t: &toml::Table, parent: Option<&str>, out: &mut Vec<String>) {
        for (k, v) in t {
            if let toml::Value::Table(sub) = v {
                if parent == Some("runtimes")
                    && sub.get("runtime_type").and_then(|v| v.as_str()) == Some(RUNTIME_TYPE)
                {
                    out.push(k.clone());
                }
                walk(sub, Some(k), out);
            }
        }
    }
    let table: toml::Table = dump
        .parse()
        .map_err(|e: toml::de::Error| format!("cannot parse containerd's configuration: {e}"))?;
    let mut out = Vec::new();
    walk(&table, None, &mut out);
    out.sort();
    out.dedup();
    Ok(out)
}

/// The `cri-runtime` check: from the dumped configuration and whether the
/// CRI plugin is loaded (`None`: unknown).
pub fn cri_check(dump: &Result<String, String>, cri_loaded: Option<bool>) -> Check {
    const NAME: &str = "cri-runtime";
    let fix = format!(
        "add `imports = [\"{DROP_IN}\"]` near the top of /etc/containerd/config.toml (containerd 1.6/1.7, 2.0/2.1; 2.2+ reads /etc/containerd/conf.d/ itself), then `systemctl restart containerd`; on 1.6/1.7 the import replaces config.toml's whole CRI plugin section (see /usr/share/doc/portcullis/README.packaging.md, step 4)"
    );
    let handlers = match dump.as_deref().map_err(|e| e.to_string()).and_then(runtime_handlers) {
        Ok(h) => h,
        Err(e) => return Check::new(NAME, Status::Unknown, e).fix("check that `containerd config dump` works (pass --containerd-config FILE for a non-default file)"),
    };
    let via = "ctr/nerdctl need no registration: --runtime io.containerd.portcullis.v2";
    match (handlers.is_empty(), cri_loaded) {
        (false, Some(false)) => Check::new(
            NAME,
            Status::Ok,
            format!(
                "runtime handler(s) {} registered; the CRI plugin is not loaded ({via})",
                handlers.join(", ")
            ),
        ),
        (false, _) => Check::new(
            NAME,
            Status::Ok,
            format!(
                "runtime handler(s) {} registered (RuntimeClass handler)",
                handlers.join(", ")
            ),
        ),
        (true, Some(false)) => Check::new(
            NAME,
            Status::Warn,
            format!("no CRI runtime handler for {RUNTIME_TYPE}; the CRI plugin is not loaded ({via})"),
        )
        .fix(fix),
        (true, _) => Check::new(
            NAME,
            Status::Fail,
            format!("no CRI runtime handler has runtime_type {RUNTIME_TYPE}: Kubernetes cannot use Portcullis"),
        )
        .fix(fix),
    }
}

/// The pid of the process listening on a unix socket (containerd before 1.7
/// does not report its pid): the socket's inode from `/proc/net/unix`, then
/// the process holding it among `/proc/*/fd`.
fn listener_pid(socket: &Path) -> Option<u32> {
    let want = socket.to_str()?;
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    let inode = table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 8 && f[7] == want).then(|| f[6].to_string())
    })?;
    let link = format!("socket:[{inode}]");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let fds = std::fs::read_dir(e.path().join("fd")).ok()?;
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == link.as_str()))
            .then_some(pid)
    })
}

/// containerd's `PATH`, from its process environment.
fn process_path(pid: u32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"PATH="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The first executable file `name` in a `PATH` value.
pub fn find_on_path(path: &str, name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// The `shim` check, given containerd's `PATH` when known. containerd also
/// looks in `/opt/containerd/bin`; without its `PATH`, systemd's default is
/// assumed and the check can at most warn.
pub fn shim_check(containerd_path: Option<&str>) -> Check {
    const NAME: &str = "shim";
    let shim = crate::policy::OWN_SHIM;
    let fix = format!("install {shim} into /usr/bin (the portcullis package does)");
    let (path, known) = match containerd_path {
        Some(p) => (format!("{p}:/opt/containerd/bin"), true),
        None => (
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/containerd/bin"
                .to_string(),
            false,
        ),
    };
    match (find_on_path(&path, shim), known) {
        (Some(p), true) => Check::new(NAME, Status::Ok, format!("{} on containerd's PATH", p.display())),
        (Some(p), false) => Check::new(
            NAME,
            Status::Ok,
            format!("{} (containerd's own PATH unknown: it did not report its pid; checked systemd's default PATH)", p.display()),
        ),
        (None, true) => Check::new(NAME, Status::Fail, format!("{shim} is not on containerd's PATH ({path})")).fix(fix),
        (None, false) => Check::new(
            NAME,
            Status::Fail,
            format!("{shim} is not on systemd's default PATH ({path})"),
        )
        .fix(fix),
    }
}

/// The `policy` check, and the policy when it is valid.
pub fn policy_check(path: &Path) -> (Check, Option<Policy>) {
    const NAME: &str = "policy";
    match Policy::load_with_lints(path) {
        Ok(p) => {
            let mut c = Check::new(
                NAME,
                Status::Ok,
                format!(
                    "{} valid: mode {}, {} rule(s), {} warning(s)",
                    path.display(),
                    p.mode.as_str(),
                    p.rules().len(),
                    p.warnings.len()
                ),
            );
            if !p.warnings.is_empty() {
                c.status = Status::Warn;
                c = c.fix(format!("see `portcullis policy check {}`", path.display()));
            }
            (c, Some(p))
        }
        Err(e) => (
            Check::new(NAME, Status::Fail, e.to_string()).fix(format!(
                "write a valid policy (the package's example is /usr/share/doc/portcullis/examples/policy.toml); `portcullis policy check {}` lists every problem; every start through Portcullis is refused until then",
                path.display()
            )),
            None,
        ),
    }
}

/// The `enforcement` check: the mode, policy digest and trust-root digests
/// in force (the heartbeat's statement); warns when not every rule enforces.
pub fn enforcement_check(gs: &crate::policy::summary::GateState) -> Check {
    let roots = gs
        .trust_roots
        .iter()
        .map(|t| {
            format!(
                "{} {}",
                t.path,
                t.digest.as_deref().unwrap_or("(unreadable)")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let detail = format!(
        "mode {} ({}), policy {}, trust root(s): {}",
        gs.mode,
        if gs.rule_modes().is_empty() {
            "no rules".to_string()
        } else {
            gs.rule_modes()
        },
        gs.policy_digest.as_deref().unwrap_or("unreadable"),
        if roots.is_empty() {
            "none used".into()
        } else {
            roots
        }
    );
    if gs.enforcing() {
        Check::new("enforcement", Status::Ok, detail)
    } else {
        Check::new("enforcement", Status::Warn, detail).fix(
            "starts that fail verification under a warn or audit mode still run; set mode = \"enforce\" once the audit records are clean",
        )
    }
}

/// Whether any rule needs the default Sigstore trust root: a keyless
/// signer, or a key signer that requires a transparency-log entry, in a
/// rule that names no root of its own.
pub fn needs_trust_root(p: &Policy) -> bool {
    p.rules()
        .iter()
        .filter(|r| r.trust_root.is_none())
        .any(|r| {
            let prov = r.provenance.iter().flat_map(|p| p.signers.iter());
            r.signers.iter().chain(prov).any(|s| match s {
                Signer::Keyless(_) => true,
                Signer::Key { require_tlog, .. } => *require_tlog,
            })
        })
}

/// The `trust-root` check: the default root's age (or whether it is
/// missing, with the reason), against the policy's `trust_root_max_age`.
pub fn trust_check(
    age: Result<Duration, (bool, String)>,
    path: &Path,
    policy: Option<&Policy>,
) -> Check {
    const NAME: &str = "trust-root";
    let needed = policy.is_none_or(needs_trust_root);
    let bad = if needed { Status::Fail } else { Status::Warn };
    let why = if needed {
        ""
    } else {
        " (no rule of the policy needs it yet)"
    };
    let max = policy
        .and_then(|p| p.trust_root_max_age)
        .unwrap_or(DEFAULT_TRUST_MAX_AGE);
    let days = |d: Duration| d.as_secs() / 86400;
    match age {
        Ok(a) if a <= max => Check::new(
            NAME,
            Status::Ok,
            format!("{} written {}h ago", path.display(), a.as_secs() / 3600),
        ),
        Ok(a) => Check::new(
            NAME,
            bad,
            format!("{} is {} day(s) old, older than {} day(s){why}", path.display(), days(a), days(max)),
        )
        .fix("run `portcullis trust update` (enable portcullis-trust-refresh.timer to keep it fresh)"),
        Err((missing, e)) => Check::new(
            NAME,
            bad,
            if missing {
                format!("no trust root at {}{why}", path.display())
            } else {
                format!("{e}{why}")
            },
        )
        .fix("run `portcullis trust update` (or `portcullis trust import FILE` offline)"),
    }
}

/// `policy-source`: where the policy in force came from. A pulled release
/// (`portcullis policy pull`) is reported with its serial, digest, source
/// and age; an expired one is a warning (the node keeps enforcing it until a
/// newer serial arrives).
pub fn policy_source_check(policy: &Path, source_configured: bool, now: jiff::Timestamp) -> Check {
    const NAME: &str = "policy-source";
    let Some(r) = crate::state::policy_store::release_of(policy) else {
        if source_configured {
            return Check::new(
                NAME,
                Status::Warn,
                format!(
                    "{} exists but the policy in force ({}) was not pulled",
                    crate::state::policy_store::DEFAULT_SOURCE,
                    policy.display()
                ),
            )
            .fix("run `portcullis policy pull`, then `ln -sf STATE_DIR/policy/current/policy.toml /etc/portcullis/policy.toml`");
        }
        return Check::new(
            NAME,
            Status::Ok,
            format!("{} is placed by hand (no policy source)", policy.display()),
        );
    };
    let age = |t: &str| {
        t.parse::<jiff::Timestamp>()
            .ok()
            .map(|t| human_age(now.as_second() - t.as_second()))
            .unwrap_or_else(|| "unknown".into())
    };
    let detail = format!(
        "serial {} ({}) from {}, published {} ago, installed {} ago, expires {}",
        r.serial,
        r.digest,
        r.source,
        age(&r.created),
        age(&r.installed_at),
        r.expires
    );
    let expired = r
        .expires
        .parse::<jiff::Timestamp>()
        .map(|e| e <= now)
        .unwrap_or(true);
    if expired {
        Check::new(NAME, Status::Warn, format!("EXPIRED: {detail}"))
            .fix("publish a newer serial (`portcullis policy publish --serial N`) and let the nodes pull it; the expired policy stays in force until then")
    } else {
        Check::new(NAME, Status::Ok, detail)
    }
}

fn human_age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The `journald` check: its socket takes connections.
pub fn journald_check(socket: &Path) -> Check {
    const NAME: &str = "journald";
    let r = std::os::unix::net::UnixDatagram::unbound().and_then(|s| s.connect(socket));
    match r {
        Ok(()) => Check::new(
            NAME,
            Status::Ok,
            format!("{} accepts records", socket.display()),
        ),
        Err(e) => Check::new(
            NAME,
            Status::Fail,
            format!(
                "{}: {e}: verdicts are spooled, not journaled",
                socket.display()
            ),
        )
        .fix("start systemd-journald; then `portcullis journal replay` sends the spooled records"),
    }
}

/// The `state-dir` check: writable, and not open to other users.
pub fn state_dir_check(dir: &Path) -> Check {
    use std::os::unix::fs::PermissionsExt;
    const NAME: &str = "state-dir";
    let fix = format!("install -d -m 0700 -o root -g root {}", dir.display());
    let meta = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => {
            return Check::new(
                NAME,
                Status::Fail,
                format!("{} is not a directory", dir.display()),
            )
            .fix(fix)
        }
        Err(e) => {
            return Check::new(NAME, Status::Fail, format!("{}: {e}", dir.display())).fix(fix)
        }
    };
    if let Err(e) = tempfile::Builder::new().prefix(".doctor-").tempfile_in(dir) {
        return Check::new(
            NAME,
            Status::Fail,
            format!("{} is not writable: {e}", dir.display()),
        )
        .fix(fix);
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Check::new(
            NAME,
            Status::Fail,
            format!(
                "{} is writable by others (mode {mode:04o}): anyone could plant cache entries",
                dir.display()
            ),
        )
        .fix(format!("chmod 0700 {}", dir.display()));
    }
    if mode & 0o077 != 0 {
        return Check::new(
            NAME,
            Status::Warn,
            format!(
                "{} is writable, mode {mode:04o} (others can read it)",
                dir.display()
            ),
        )
        .fix(format!("chmod 0700 {}", dir.display()));
    }
    Check::new(
        NAME,
        Status::Ok,
        format!("{} writable, mode {mode:04o}", dir.display()),
    )
}

fn is_active(unit: &str) -> String {
    std::process::Command::new("systemctl")
        .args(["is-active", unit])
        .stdin(std::process::Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("cannot run systemctl: {e}"))
}

/// The `sync-service` check: whether systemd is PID 1, and then what
/// `systemctl is-active` said.
pub fn sync_check(systemd_pid1: bool, is_active: Option<String>) -> Check {
    const NAME: &str = "sync-service";
    match (systemd_pid1, is_active.as_deref()) {
        (true, Some("active")) => Check::new(NAME, Status::Ok, format!("{SYNC_UNIT} is active")),
        (true, state) => Check::new(
            NAME,
            Status::Fail,
            format!(
                "{SYNC_UNIT} is {}: pulled images get no signatures cached",
                state.filter(|s| !s.is_empty()).unwrap_or("not active")
            ),
        )
        .fix(format!("systemctl enable --now {SYNC_UNIT}; see `journalctl -u {SYNC_UNIT}`")),
        (false, _) => Check::new(
            NAME,
            Status::Unknown,
            "systemd is not PID 1 here: cannot tell whether `portcullis sync` runs",
        )
        .fix("run `portcullis sync` under your init system, or `portcullis fetch IMAGE` after each pull"),
    }
}

/// `portcullis doctor`'s `node-wide` check, given containerd's `PATH` when
/// known: is the first `runc` on it this gate (symlinks resolved), and is a
/// real runc found behind it?
pub fn node_wide_check(containerd_path: Option<&str>) -> Check {
    const NAME: &str = "node-wide";
    let enable = format!(
        "for node-wide enforcement install packaging/containerd/portcullis-node-wide.conf as a containerd.service drop-in (it puts {}, holding runc -> /usr/bin/{}, first on containerd's PATH) and restart containerd",
        crate::gate::runc::NODE_WIDE_DIR,
        crate::gate::runc::GATE_BINARY
    );
    let Some(path) = containerd_path else {
        return Check::new(
            NAME,
            Status::Unknown,
            "containerd's PATH is unknown (it did not report its pid): cannot tell which runc it runs",
        )
        .fix(enable);
    };
    let first = find_on_path(path, "runc");
    let is_gate = first
        .as_ref()
        .and_then(|p| std::fs::canonicalize(p).ok())
        .is_some_and(|c| {
            c.file_name()
                .is_some_and(|n| n == crate::gate::runc::GATE_BINARY)
        });
    match (first, is_gate) {
        (None, _) => Check::new(NAME, Status::Fail, format!("no runc on containerd's PATH ({path})"))
            .fix("install runc"),
        (Some(p), false) => Check::new(
            NAME,
            Status::Warn,
            format!(
                "not active: containerd's runc is {} (only containers started with the portcullis runtime are gated)",
                p.display()
            ),
        )
        .fix(enable),
        (Some(p), true) => {
            let target = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
            match crate::gate::runc::real_runc(&target, None, Some(std::ffi::OsStr::new(path))) {
                Ok(real) => Check::new(
                    NAME,
                    Status::Ok,
                    format!(
                        "active: containerd's runc {} is the gate {}, handing over to {}; a client naming its own runc binary (BinaryName, --runc-binary) still bypasses it and shows as an evidence gap",
                        p.display(),
                        target.display(),
                        real.display()
                    ),
                ),
                Err(e) => Check::new(
                    NAME,
                    Status::Fail,
                    format!("containerd's runc {} is the gate, but {e}", p.display()),
                )
                .fix("install runc into /usr/sbin or /usr/bin, after the gate's directory on containerd's PATH"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP_V2: &str = r#"
version = 2
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.portcullis]
  runtime_type = "io.containerd.portcullis.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.portcullis.options]
    SystemdCgroup = false
"#;

    const DUMP_V3: &str = r#"
version = 3
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.gated]
  runtime_type = "io.containerd.portcullis.v2"
"#;

    #[test]
    fn doctor_reports_node_wide_enforcement() {
        let d = tempfile::tempdir().unwrap();
        let (gate_dir, real_dir) = (d.path().join("gate"), d.path().join("real"));
        std::fs::create_dir_all(&gate_dir).unwrap();
        std::fs::create_dir_all(&real_dir).unwrap();
        let gate = d.path().join(crate::gate::runc::GATE_BINARY);
        let real = real_dir.join("runc");
        use std::os::unix::fs::PermissionsExt;
        for f in [&gate, &real] {
            std::fs::write(f, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::os::unix::fs::symlink(&gate, gate_dir.join("runc")).unwrap();
        let both = format!("{}:{}", gate_dir.display(), real_dir.display());
        assert_eq!(node_wide_check(Some(&both)).status, Status::Ok);
        let plain = real_dir.display().to_string();
        assert_eq!(node_wide_check(Some(&plain)).status, Status::Warn);
        let only = gate_dir.display().to_string();
        assert_eq!(node_wide_check(Some(&only)).status, Status::Fail);
        assert_eq!(node_wide_check(None).status, Status::Unknown);
    }

    #[test]
    fn finds_our_handlers_in_v2_and_v3_configs() {
        assert_eq!(runtime_handlers(DUMP_V2).unwrap(), ["portcullis"]);
        assert_eq!(runtime_handlers(DUMP_V3).unwrap(), ["gated"]);
        assert!(runtime_handlers("version = 2\n").unwrap().is_empty());
        assert!(runtime_handlers("version = [").is_err());
    }

    #[test]
    fn cri_check_fails_only_when_cri_is_loaded_without_a_handler() {
        let none = Ok("version = 2\n".to_string());
        assert_eq!(cri_check(&none, Some(true)).status, Status::Fail);
        assert_eq!(cri_check(&none, None).status, Status::Fail);
        assert_eq!(cri_check(&none, Some(false)).status, Status::Warn);
        let c = cri_check(&none, Some(true));
        assert!(c.fix.unwrap().contains("imports = ["));
        let some = Ok(DUMP_V2.to_string());
        assert_eq!(cri_check(&some, Some(true)).status, Status::Ok);
        assert_eq!(cri_check(&some, Some(false)).status, Status::Ok);
        let c = cri_check(&Err("cannot run".into()), Some(true));
        assert_eq!(c.status, Status::Unknown);
    }

    #[test]
    fn shim_on_path() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join(crate::policy::OWN_SHIM);
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        let path = format!("/nonexistent:{}", d.path().display());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(find_on_path(&path, crate::policy::OWN_SHIM), None);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_on_path(&path, crate::policy::OWN_SHIM), Some(f));
        assert_eq!(shim_check(Some(&path)).status, Status::Ok);
        assert_eq!(shim_check(Some("/nonexistent")).status, Status::Fail);
    }

    fn policy(text: &str) -> Policy {
        Policy::parse(text, Path::new("/etc/portcullis/policy.toml")).unwrap()
    }

    #[test]
    fn trust_root_matters_only_for_keyless_or_tlog_rules() {
        let keys = policy("mode = \"audit\"\n[[rule]]\nname = \"a\"\nimages = [\"r.example/**\"]\n[[rule.signer]]\nkey = \"/k.pub\"\n");
        let keyless = policy("[[rule]]\nname = \"a\"\nimages = [\"r.example/**\"]\n[[rule.signer]]\nissuer = \"https://i\"\nsubject = \"s\"\n");
        assert!(!needs_trust_root(&keys));
        assert!(needs_trust_root(&keyless));
        let p = Path::new("/s/trust/trusted_root.json");
        let missing = || Err((true, "x".to_string()));
        assert_eq!(trust_check(missing(), p, Some(&keys)).status, Status::Warn);
        assert_eq!(
            trust_check(missing(), p, Some(&keyless)).status,
            Status::Fail
        );
        assert_eq!(trust_check(missing(), p, None).status, Status::Fail);
        let fresh = Ok(Duration::from_secs(3600));
        assert_eq!(trust_check(fresh, p, Some(&keyless)).status, Status::Ok);
        let old = Ok(DEFAULT_TRUST_MAX_AGE + Duration::from_secs(1));
        let c = trust_check(old, p, Some(&keyless));
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.unwrap().contains("portcullis trust update"));
        let strict = policy("trust_root_max_age = \"1h\"\n[[rule]]\nname = \"a\"\nimages = [\"r.example/**\"]\n[[rule.signer]]\nissuer = \"https://i\"\nsubject = \"s\"\n");
        let two_hours = Ok(Duration::from_secs(7200));
        assert_eq!(
            trust_check(two_hours, p, Some(&strict)).status,
            Status::Fail
        );
    }

    #[test]
    fn policy_check_reports_invalid_files_with_a_fix() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("policy.toml");
        std::fs::write(&f, "mode = \"sometimes\"\n").unwrap();
        let (c, p) = policy_check(&f);
        assert_eq!(c.status, Status::Fail);
        assert!(p.is_none());
        assert!(c.fix.unwrap().contains("portcullis policy check"));
        std::fs::write(&f, "mode = \"audit\"\n").unwrap();
        let (c, p) = policy_check(&f);
        assert_ne!(c.status, Status::Fail, "{c:?}");
        assert!(c.detail.contains("mode audit"));
        assert!(p.is_some());
        let (c, _) = policy_check(&d.path().join("missing.toml"));
        assert_eq!(c.status, Status::Fail);
    }

    #[test]
    fn state_dir_must_be_writable_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let set =
            |m| std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(m)).unwrap();
        set(0o700);
        assert_eq!(state_dir_check(d.path()).status, Status::Ok);
        set(0o755);
        assert_eq!(state_dir_check(d.path()).status, Status::Warn);
        set(0o777);
        assert_eq!(state_dir_check(d.path()).status, Status::Fail);
        assert_eq!(state_dir_check(&d.path().join("no")).status, Status::Fail);
    }

    #[test]
    fn sync_service_is_unknown_without_systemd() {
        assert_eq!(sync_check(false, None).status, Status::Unknown);
        assert_eq!(sync_check(true, Some("active".into())).status, Status::Ok);
        let c = sync_check(true, Some("inactive".into()));
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("inactive"));
    }

    #[test]
    fn policy_source_reports_serial_age_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let hand = dir.path().join("p.toml");
        std::fs::write(&hand, "").unwrap();
        let now: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        assert_eq!(policy_source_check(&hand, false, now).status, Status::Ok);
        assert_eq!(policy_source_check(&hand, true, now).status, Status::Warn);
        let store =
            crate::state::policy_store::PolicyStore::new(&StateDir::new(dir.path().join("s")));
        let mut r = crate::state::policy_store::Release {
            serial: 4,
            digest: crate::base::testing::digest(4),
            policy_digest: crate::base::testing::digest(5),
            source: "r.io/p:prod".into(),
            signer: "key:k".into(),
            created: "2026-05-31T21:00:00Z".into(),
            expires: "2026-07-01T00:00:00Z".into(),
            installed_at: "2026-05-31T23:59:00Z".into(),
        };
        let files = [crate::formats::policy_artifact::File {
            path: "policy.toml".into(),
            bytes: b"x".to_vec(),
        }];
        store.install(&r, &files, 2).unwrap();
        let c = policy_source_check(&store.policy_path(), true, now);
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(
            c.detail.contains("serial 4") && c.detail.contains("published 3h ago"),
            "{}",
            c.detail
        );
        r.serial = 5;
        r.digest = crate::base::testing::digest(6);
        r.expires = "2026-05-31T23:00:00Z".into();
        store.install(&r, &files, 2).unwrap();
        let c = policy_source_check(&store.policy_path(), true, now);
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.starts_with("EXPIRED"), "{}", c.detail);
    }

    #[test]
    fn journald_check_on_a_missing_socket_fails() {
        let c = journald_check(Path::new("/nonexistent/journal/socket"));
        assert_eq!(c.status, Status::Fail);
    }

    #[test]
    fn enforcement_check_states_digests_and_warns_outside_enforce() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let p = policy("mode = \"audit\"\ndefault = \"allow\"\n");
        let c = enforcement_check(&crate::policy::summary::GateState::of(&p, &state));
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains(&p.digest), "{}", c.detail);
        assert!(c.detail.starts_with("mode audit"), "{}", c.detail);
        let p = policy("mode = \"enforce\"\ndefault = \"deny\"\n");
        let c = enforcement_check(&crate::policy::summary::GateState::of(&p, &state));
        assert_eq!(c.status, Status::Ok);
    }

    #[test]
    fn report_fails_on_any_failure_only() {
        let ok = Check::new("a", Status::Ok, "");
        let unknown = Check::new("b", Status::Unknown, "");
        let warn = Check::new("c", Status::Warn, "");
        assert!(Report::new(vec![ok.clone(), unknown, warn]).ok);
        assert!(!Report::new(vec![ok, Check::new("d", Status::Fail, "")]).ok);
    }
}
