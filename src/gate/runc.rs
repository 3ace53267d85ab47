//! The OCI runtime gate: `portcullis-runc`, a runc-compatible wrapper.
//!
//! This module owns runc's command line as the runc shim (go-runc) writes it
//! (`runc --root DIR --log FILE --log-format json [--systemd-cgroup] create
//! --bundle DIR --pid-file F [--console-socket S] … ID`), the choice of the
//! real runc behind the gate, the identification of the container from what
//! runc receives (ID, namespace, containerd's socket), the binding checks of
//! what is about to run (the bundle's `config.json` root and the rootfs
//! mounted at `<bundle>/rootfs` against the container's snapshot), and the
//! refusal line in runc's `--log` file, which the runc shim reports to the
//! client as `OCI runtime create failed: portcullis: denied …`.
//!
//! `create`, `run` and `restore` are gated through [`crate::gate::admission`] (the
//! same decision the shim wrapper takes); everything else, and an allowed
//! start, is handed to the real runc unchanged by `exec`.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::base::mounts::{self, normalize, MountedFs};
use crate::containerd::{self, ImageTarget, SnapshotMount};
use crate::gate::admission::{self, Admission, GateKind, StartRequest, Timings};

/// Largest `config.json` read.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// runc's commands that start a container's process.
const GATED: &[&str] = &["create", "run", "restore"];

/// runc's global flags that take a value (runc 1.0 to 1.3).
const GLOBAL_VALUE_FLAGS: &[&str] = &["root", "log", "log-format", "criu", "rootless"];
/// runc's global boolean flags.
const GLOBAL_BOOL_FLAGS: &[&str] = &["debug", "systemd-cgroup", "help", "h", "version", "v"];
/// Flags of `create`, `run` and `restore` that take a value.
const COMMAND_VALUE_FLAGS: &[&str] = &[
    "bundle",
    "b",
    "console-socket",
    "pid-file",
    "preserve-fds",
    "image-path",
    "work-path",
    "manage-cgroups-mode",
    "empty-ns",
    "lsm-profile",
    "lsm-mount-context",
    "parent-path",
    "page-server",
    "status-fd",
];

/// Errors of the runc gate.
#[derive(Debug, thiserror::Error)]
pub enum RuncGateError {
    /// No runc to hand over to.
    #[error("no real runc found on PATH after the gate's own directory ({path}); install runc or set PORTCULLIS_RUNC to its path")]
    NoRealRunc {
        /// The PATH searched.
        path: String,
    },
    /// `PORTCULLIS_RUNC` names the gate itself, or nothing runnable.
    #[error("PORTCULLIS_RUNC={0} is not a runc the gate can hand over to ({1}); point it at the real runc binary")]
    BadOverride(String, String),
    /// The command line cannot be read safely.
    #[error("cannot read runc's command line: {0}")]
    Args(String),
}

/// runc's command line, as far as the gate needs it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RuncArgs {
    /// `--root`.
    pub root: Option<String>,
    /// `--log`.
    pub log: Option<String>,
    /// `--log-format`.
    pub log_format: Option<String>,
    /// The command word (`create`, `state`, `delete` …).
    pub command: Option<String>,
    /// `--bundle` / `-b` of the command.
    pub bundle: Option<String>,
    /// The last argument (the container ID for create/run/restore).
    pub id: Option<String>,
    /// A global flag the gate does not know, when one came before the command.
    pub unknown_global: Option<String>,
    /// Whether a gated word appears anywhere: an unexpected layout must never
    /// route a start around the gate.
    pub mentions_gated: bool,
}

fn split_flag(a: &str) -> Option<(&str, Option<&str>)> {
    let flag = a.strip_prefix("--").or_else(|| a.strip_prefix('-'))?;
    if flag.is_empty() {
        return None;
    }
    Some(match flag.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (flag, None),
    })
}

impl RuncArgs {
    /// Parse runc's argv (without `argv[0]`); never fails.
    pub fn parse(args: &[OsString]) -> RuncArgs {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut out = RuncArgs {
            mentions_gated: args.iter().any(|a| GATED.contains(&a.as_str())),
            ..RuncArgs::default()
        };
        let mut i = 0;
        // Global flags, up to the command word.
        while i < args.len() {
            let a = &args[i];
            let Some((name, inline)) = split_flag(a) else {
                if a == "--" {
                    i += 1;
                    continue;
                }
                out.command = Some(a.clone());
                i += 1;
                break;
            };
            if GLOBAL_VALUE_FLAGS.contains(&name) {
                let value = match inline {
                    Some(v) => Some(v.to_string()),
                    None => {
                        i += 1;
                        args.get(i).cloned()
                    }
                };
                match name {
                    "root" => out.root = value,
                    "log" => out.log = value,
                    "log-format" => out.log_format = value,
                    _ => {}
                }
            } else if !GLOBAL_BOOL_FLAGS.contains(&name) && out.unknown_global.is_none() {
                out.unknown_global = Some(a.clone());
            }
            i += 1;
        }
        // The command's flags: the bundle, and the last argument is the ID.
        let rest = &args[i.min(args.len())..];
        let mut j = 0;
        while j < rest.len() {
            if let Some((name, inline)) = split_flag(&rest[j]) {
                if COMMAND_VALUE_FLAGS.contains(&name) {
                    let value = match inline {
                        Some(v) => Some(v.to_string()),
                        None => {
                            j += 1;
                            rest.get(j).cloned()
                        }
                    };
                    if name == "bundle" || name == "b" {
                        out.bundle = value;
                    }
                }
            }
            j += 1;
        }
        out.id = rest.last().filter(|a| !a.starts_with('-')).cloned();
        out
    }

    /// Does this invocation start a container's process?
    pub fn is_gated(&self) -> bool {
        match self.command.as_deref() {
            Some(c) if GATED.contains(&c) => true,
            // An unknown global flag may have swallowed the command word:
            // when a gated word appears at all, treat it as a start.
            _ => self.unknown_global.is_some() && self.mentions_gated,
        }
    }
}

/// What the gate does with this invocation.
#[derive(Debug)]
pub enum Plan {
    /// Hand over to this runc.
    Exec(PathBuf),
    /// Refuse: write this line to the log (or stderr) and exit 1.
    Refuse(String),
}

/// The real runc: `PORTCULLIS_RUNC` when set, else the first `runc` on
/// `path` that is not this binary (symlinks resolved).
pub fn real_runc(
    self_exe: &Path,
    override_: Option<&OsStr>,
    path: Option<&OsStr>,
) -> Result<PathBuf, RuncGateError> {
    let me = identity(self_exe);
    if let Some(o) = override_.filter(|o| !o.is_empty()) {
        let p = PathBuf::from(o);
        return match identity(&p) {
            None => Err(RuncGateError::BadOverride(
                p.display().to_string(),
                "no such executable file".into(),
            )),
            Some(id) if Some(id) == me => Err(RuncGateError::BadOverride(
                p.display().to_string(),
                "it is the gate itself".into(),
            )),
            Some(_) => Ok(p),
        };
    }
    let path = path.unwrap_or_default();
    for dir in std::env::split_paths(path) {
        if dir.as_os_str().is_empty() {
            continue;
        }
        let cand = dir.join("runc");
        match identity(&cand) {
            Some(id) if Some(id) != me => return Ok(cand),
            _ => continue,
        }
    }
    Err(RuncGateError::NoRealRunc {
        path: path.to_string_lossy().into_owned(),
    })
}

/// (device, inode) of an executable regular file, symlinks followed.
fn identity(p: &Path) -> Option<(u64, u64)> {
    let m = std::fs::metadata(p).ok()?;
    (m.is_file() && m.mode() & 0o111 != 0).then(|| (m.dev(), m.ino()))
}

/// The containerd namespace of a start: from the bundle path
/// (`…/io.containerd.runtime.v2.task/<ns>/<id>`, containerd 1.6 to 2.x) and
/// from `--root` (`…/runc/<ns>`, the runc shim's root joined with the
/// namespace). Both must agree when both are known.
pub fn namespace_of(
    root: Option<&str>,
    bundle: Option<&str>,
    id: &str,
) -> Result<Option<String>, String> {
    let from_bundle = bundle.and_then(|b| {
        let b = Path::new(b);
        let leaf = b.file_name()?.to_str()?;
        let ns_dir = b.parent()?;
        let task = ns_dir.parent()?.file_name()?.to_str()?;
        (task.ends_with(".task") && task.starts_with("io.containerd.runtime.v2")).then_some(())?;
        if leaf != id {
            return Some(Err(format!(
                "the bundle {} is not the container {id}'s",
                b.display()
            )));
        }
        Some(Ok(ns_dir.file_name()?.to_str()?.to_string()))
    });
    let from_root = root.and_then(|r| {
        let r = Path::new(r);
        Some(r.file_name()?.to_str()?.to_string())
    });
    match (from_bundle, from_root) {
        (Some(Err(e)), _) => Err(e),
        (Some(Ok(b)), Some(r)) if b != r => {
            Err(format!("the bundle says namespace {b}, --root says {r}"))
        }
        (Some(Ok(b)), _) => Ok(Some(b)),
        (None, Some(r)) => Ok(Some(r)),
        (None, None) => Ok(None),
    }
}

/// containerd's gRPC socket: `CONTAINERD_ADDRESS`, else `GRPC_ADDRESS`,
/// else `TTRPC_ADDRESS` without its `.ttrpc` suffix (what containerd puts in
/// every shim's environment, which runc inherits).
pub fn containerd_address(get: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let non_empty = |k: &str| get(k).filter(|v| !v.is_empty());
    non_empty("CONTAINERD_ADDRESS")
        .or_else(|| non_empty("GRPC_ADDRESS"))
        .or_else(|| non_empty("TTRPC_ADDRESS").map(|t| t.trim_end_matches(".ttrpc").to_string()))
}

/// The denial as one runc log entry, in runc's `--log-format`.
pub fn log_line(line: &str, format: Option<&str>, time: &str) -> String {
    if format == Some("text") {
        return format!(
            "time=\"{time}\" level=error msg={}\n",
            serde_json::Value::String(line.to_string())
        );
    }
    let entry = serde_json::json!({"level": "error", "msg": line, "time": time});
    format!("{entry}\n")
}

/// Write the refusal where the runc shim reads it: the `--log` file
/// (appended), or stderr when runc was given no log file.
pub fn report_refusal(args: &RuncArgs, line: &str) {
    let now = jiff::Timestamp::now().to_string();
    let entry = log_line(line, args.log_format.as_deref(), &now);
    if let Some(log) = &args.log {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            if f.write_all(entry.as_bytes()).is_ok() {
                return;
            }
        }
    }
    eprintln!("{line}");
}

/// Decide what to do with `args` (argv without `argv[0]`), and where a
/// gated start's time went (all zero for a pass-through).
pub fn plan(args: &[OsString]) -> (Plan, RuncArgs, Timings) {
    let parsed = RuncArgs::parse(args);
    // The running binary itself, by its inode (the link is followed by
    // stat): no readlink, and still this binary if a package upgrade has
    // replaced the file since it started.
    let runc = real_runc(
        Path::new("/proc/self/exe"),
        std::env::var_os("PORTCULLIS_RUNC").as_deref(),
        std::env::var_os("PATH").as_deref(),
    );
    let runc = match runc {
        Ok(r) => r,
        Err(e) => {
            return (
                Plan::Refuse(format!("portcullis: {e}")),
                parsed,
                Timings::default(),
            )
        }
    };
    if !parsed.is_gated() {
        return (Plan::Exec(runc), parsed, Timings::default());
    }
    let (plan, timings) = match gate_start(&parsed) {
        Ok((Admission::Allow { .. }, timings)) => (Plan::Exec(runc), timings),
        Ok((Admission::Refuse(line), timings)) => (Plan::Refuse(line), timings),
        // refused before the admission: nothing was timed
        Err(line) => (Plan::Refuse(line), Timings::default()),
    };
    (plan, parsed, timings)
}

/// Gate a create/run/restore: the admission and its timings, or the
/// denial line for arguments the gate cannot read.
fn gate_start(parsed: &RuncArgs) -> Result<(Admission, Timings), String> {
    if let Some(flag) = &parsed.unknown_global {
        if !parsed
            .command
            .as_deref()
            .is_some_and(|c| GATED.contains(&c))
        {
            return Err(format!(
                "portcullis: denied container start: runc global flag {flag} is unknown to the gate, so the command cannot be read; update portcullis-runc"
            ));
        }
    }
    let id = parsed.id.clone().ok_or_else(|| {
        "portcullis: denied container start: runc was given no container ID".to_string()
    })?;
    let bundle = match &parsed.bundle {
        Some(b) => PathBuf::from(b),
        None => std::env::current_dir().map_err(|e| {
            format!("portcullis: denied container {id}: cannot tell the bundle directory: {e}")
        })?,
    };
    let bundle_s = bundle.display().to_string();
    let namespace = namespace_of(parsed.root.as_deref(), Some(&bundle_s), &id)
        .map_err(|e| format!("portcullis: denied container {id}: {e}"))?;
    let address = containerd_address(&|k| std::env::var(k).ok());
    let req = StartRequest {
        namespace,
        id: Some(id),
        address: address.clone(),
    };
    let binding = |t: &ImageTarget, found: Option<admission::MountsFound>| {
        // The lookup asked for the mounts with the snapshot's record.
        let found = std::cell::Cell::new(found);
        check_binding(
            &bundle,
            t,
            &|snapshotter, key| match found.take() {
                Some(r) => r.map_err(|e| e.to_string()),
                None => containerd::snapshot_mounts(
                    address.as_deref().unwrap_or_default(),
                    req.namespace.as_deref().unwrap_or_default(),
                    snapshotter,
                    key,
                    containerd::lookup_timeout(),
                )
                .map_err(|e| e.to_string()),
            },
            &|p| mounts::mounted_at(p).map_err(|e| e.to_string()),
        )
    };
    Ok(admission::admit(&req, GateKind::Runc, Some(&binding)))
}

/// Replace this process with the real runc. Returns only on failure.
pub fn exec_runc(runc: &Path, args: &[OsString]) -> std::io::Error {
    let mut cmd = std::process::Command::new(runc);
    cmd.args(args);
    // runc re-executes /proc/self/exe; argv[0] stays "runc" for its messages.
    cmd.arg0("runc");
    cmd.exec()
}

/// What the snapshotter says the container's rootfs mounts are.
pub type MountsOf<'a> = &'a dyn Fn(&str, &str) -> Result<Vec<SnapshotMount>, String>;
/// What is mounted at a path (the runc shim's mount namespace, where it
/// mounted the rootfs): [`mounts::mounted_at`] in the gate.
pub type MountedAt<'a> = &'a dyn Fn(&Path) -> Result<Option<MountedFs>, String>;

/// Check that what is about to run is the container's snapshot: the
/// bundle's `config.json` roots the container at `<bundle>/rootfs`, the
/// record has a snapshot, and what is mounted at `<bundle>/rootfs` is that
/// snapshot as the snapshotter mounts it.
pub fn check_binding(
    bundle: &Path,
    target: &ImageTarget,
    mounts_of: MountsOf<'_>,
    mounted_at: MountedAt<'_>,
) -> Result<(), String> {
    check_config_root(bundle)?;
    let (Some(key), Some(snapshotter)) = (&target.snapshot_key, &target.snapshotter) else {
        return Err(format!(
            "the container record names image {} but no snapshot, so its rootfs cannot be tied to the verified image (recreate the container from the image)",
            target.name
        ));
    };
    let expected = mounts_of(snapshotter, key)
        .map_err(|e| format!("cannot read snapshot {key}'s mounts: {e}"))?;
    let rootfs = bundle.join("rootfs");
    let mounted = mounted_at(&rootfs)?.ok_or_else(|| {
        format!(
            "nothing is mounted at {}: the rootfs is not the container's snapshot {key}",
            rootfs.display()
        )
    })?;
    // A bind of the snapshot's directory mounts that very directory: the
    // rootfs and the snapshot's source are one inode on one device.
    let same_dir = |source: &str| -> Result<bool, String> {
        use std::os::unix::fs::MetadataExt;
        let id = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| (m.dev(), m.ino()))
                .map_err(|e| format!("cannot stat {}: {e}", p.display()))
        };
        Ok(id(&rootfs)? == id(Path::new(source))?)
    };
    compare_mount(&mounted, &expected, key, &same_dir)
}

/// `config.json`'s `root.path` must be the bundle's `rootfs`.
pub fn check_config_root(bundle: &Path) -> Result<(), String> {
    let path = bundle.join("config.json");
    let bytes = crate::base::fsio::read_bounded(&path, MAX_CONFIG_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .ok_or_else(|| format!("{} is larger than {MAX_CONFIG_BYTES} bytes", path.display()))?;
    // Only `root` is kept: the rest of the spec (mounts, process, linux:
    // most of its bytes) is skipped by the parser without being built.
    #[derive(serde::Deserialize)]
    struct Spec {
        root: Option<serde_json::Value>,
    }
    let v: Spec = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let root = v
        .root
        .as_ref()
        .and_then(|r| r.get("path"))
        .and_then(|p| p.as_str())
        .unwrap_or_default();
    let rootfs = bundle.join("rootfs");
    let root_path = if Path::new(root).is_absolute() {
        PathBuf::from(root)
    } else {
        bundle.join(root)
    };
    if normalize(&root_path) != normalize(&rootfs) {
        return Err(format!(
            "config.json root.path is {root:?}, not the bundle's rootfs {}: the container would not run its snapshot",
            rootfs.display()
        ));
    }
    Ok(())
}

fn option<'a>(opts: &'a [String], name: &str) -> Option<&'a str> {
    opts.iter()
        .rev()
        .find_map(|o| o.strip_prefix(name)?.strip_prefix('='))
}

/// The mounted rootfs against the snapshotter's mounts for the key;
/// `same_dir(source)` says whether the rootfs is the directory `source`
/// (asked of a bind mount only).
pub fn compare_mount(
    mounted: &MountedFs,
    expected: &[SnapshotMount],
    key: &str,
    same_dir: &dyn Fn(&str) -> Result<bool, String>,
) -> Result<(), String> {
    let [exp] = expected else {
        return Err(format!(
            "snapshot {key} mounts as {} mounts; the gate checks exactly one",
            expected.len()
        ));
    };
    let mismatch = |what: &str| {
        Err(format!(
            "the rootfs mounted for this task is not the container's snapshot {key} ({what}): refusing a rootfs the verified image does not describe"
        ))
    };
    match exp.kind.as_str() {
        "overlay" => {
            if mounted.fstype != "overlay" {
                return mismatch(&format!("a {} mount, not overlay", mounted.fstype));
            }
            for dirs in ["lowerdir", "upperdir"] {
                let want = option(&exp.options, dirs).unwrap_or_default();
                let got = option(&mounted.options, dirs).unwrap_or_default();
                if !same_dirs(got, want) {
                    return mismatch(&format!("{dirs} is {got:?}, the snapshot's is {want:?}"));
                }
            }
            Ok(())
        }
        "bind" | "rbind" => {
            // A bind mount shows the source's path inside its filesystem as
            // the mount's root: it must end with the snapshot's directory.
            if mounted.root != exp.source && !exp.source.ends_with(&mounted.root) {
                return mismatch(&format!(
                    "bind of {:?}, the snapshot is {:?}",
                    mounted.root, exp.source
                ));
            }
            if mounted.root == "/" {
                return mismatch("a bind of a whole filesystem");
            }
            // The path within its filesystem is not enough: a directory of
            // the same name on another filesystem (a tmpfs) ends the same.
            match same_dir(&exp.source) {
                Ok(true) => Ok(()),
                Ok(false) => mismatch(&format!(
                    "a bind of another directory than {:?} (another inode or device)",
                    exp.source
                )),
                Err(e) => mismatch(&e),
            }
        }
        other => mismatch(&format!(
            "snapshot mount type {other} is not one the gate can compare"
        )),
    }
}

/// Colon-separated directory lists; a relative entry mounted from a
/// directory containerd changed into (long option strings) matches an
/// absolute one ending with it.
fn same_dirs(got: &str, want: &str) -> bool {
    let g: Vec<&str> = got.split(':').collect();
    let w: Vec<&str> = want.split(':').collect();
    g.len() == w.len()
        && !want.is_empty()
        && g.iter()
            .zip(&w)
            .all(|(g, w)| g == w || (!g.starts_with('/') && w.ends_with(&format!("/{g}"))))
}

/// Where the package puts `runc -> /usr/bin/portcullis-runc`.
pub const NODE_WIDE_DIR: &str = "/usr/lib/portcullis/runtime-bin";
/// The gate's binary name.
pub const GATE_BINARY: &str = "portcullis-runc";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    const B16: &str = "/run/containerd/io.containerd.runtime.v2.task/default/web";

    #[test]
    fn parses_containerd_1_6_create() {
        // go-runc as the containerd 1.6 runc shim writes it.
        let p = RuncArgs::parse(&args(&format!(
            "--root /run/containerd/runc/default --log {B16}/log.json --log-format json create --bundle {B16} --pid-file {B16}/init.pid web"
        )));
        assert_eq!(p.command.as_deref(), Some("create"));
        assert_eq!(p.root.as_deref(), Some("/run/containerd/runc/default"));
        assert_eq!(p.log.as_deref(), Some(&*format!("{B16}/log.json")));
        assert_eq!(p.log_format.as_deref(), Some("json"));
        assert_eq!(p.bundle.as_deref(), Some(B16));
        assert_eq!(p.id.as_deref(), Some("web"));
        assert!(p.is_gated());
        assert_eq!(
            namespace_of(p.root.as_deref(), p.bundle.as_deref(), "web").unwrap(),
            Some("default".into())
        );
    }

    #[test]
    fn parses_containerd_2x_create_with_equals_and_booleans() {
        let p = RuncArgs::parse(&args(
            "--root=/run/containerd/runc/k8s.io --log=/b/log.json --log-format=json --systemd-cgroup create --bundle=/var/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc --pid-file /p --console-socket /s --no-pivot --no-new-keyring abc",
        ));
        assert_eq!(p.command.as_deref(), Some("create"));
        assert_eq!(p.id.as_deref(), Some("abc"));
        assert_eq!(p.unknown_global, None);
        assert_eq!(
            namespace_of(p.root.as_deref(), p.bundle.as_deref(), "abc").unwrap(),
            Some("k8s.io".into())
        );
        let p = RuncArgs::parse(&args(
            "--debug --criu /usr/sbin/criu restore --image-path /i --work-path /w --bundle /b x",
        ));
        assert!(p.is_gated());
        assert_eq!(p.id.as_deref(), Some("x"));
        let p = RuncArgs::parse(&args("run -d -b /b x"));
        assert!(p.is_gated());
        assert_eq!(p.bundle.as_deref(), Some("/b"));
    }

    #[test]
    fn other_commands_are_not_gated() {
        for c in [
            "--root /r state x",
            "--root /r delete --force x",
            "--root /r start x",
            "--root /r exec --process /p x",
            "--version",
            "--root /r kill x 9",
        ] {
            assert!(!RuncArgs::parse(&args(c)).is_gated(), "{c}");
        }
        // an exec whose process args say "run" is not a start
        assert!(!RuncArgs::parse(&args("--root /r exec x sh -c run")).is_gated());
        // a container named "create" being deleted is not a start
        assert!(!RuncArgs::parse(&args("--root /r delete create")).is_gated());
    }

    #[test]
    fn an_unknown_global_flag_cannot_hide_a_start() {
        let p = RuncArgs::parse(&args("--newflag value create --bundle /b x"));
        assert_eq!(p.unknown_global.as_deref(), Some("--newflag"));
        assert_eq!(p.command.as_deref(), Some("value"));
        assert!(p.is_gated());
        assert!(gate_start(&p).unwrap_err().contains("--newflag is unknown"));
    }

    #[test]
    fn namespace_and_id_from_the_bundle_and_root() {
        // a bundle of another container is refused
        assert!(namespace_of(None, Some(B16), "other").is_err());
        // bundle and root disagree
        assert!(namespace_of(Some("/run/containerd/runc/other"), Some(B16), "web").is_err());
        // only the root known (custom bundle layout)
        assert_eq!(
            namespace_of(Some("/run/containerd/runc/ns1"), Some("/tmp/b"), "web").unwrap(),
            Some("ns1".into())
        );
        assert_eq!(namespace_of(None, Some("/tmp/b"), "web").unwrap(), None);
    }

    #[test]
    fn containerd_socket_from_the_shim_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let get = env(&[("TTRPC_ADDRESS", "/run/containerd/containerd.sock.ttrpc")]);
        assert_eq!(
            containerd_address(&get).as_deref(),
            Some("/run/containerd/containerd.sock")
        );
        let get = env(&[
            ("TTRPC_ADDRESS", "/a.sock.ttrpc"),
            ("GRPC_ADDRESS", "/g.sock"),
        ]);
        assert_eq!(containerd_address(&get).as_deref(), Some("/g.sock"));
        let get = env(&[
            ("TTRPC_ADDRESS", "/a.sock.ttrpc"),
            ("CONTAINERD_ADDRESS", "/o.sock"),
        ]);
        assert_eq!(containerd_address(&get).as_deref(), Some("/o.sock"));
        assert_eq!(containerd_address(&env(&[])), None);
    }

    #[test]
    fn real_runc_skips_the_gate_itself() {
        let d = tempfile::tempdir().unwrap();
        let gate_dir = d.path().join("gate");
        let real_dir = d.path().join("real");
        std::fs::create_dir_all(&gate_dir).unwrap();
        std::fs::create_dir_all(&real_dir).unwrap();
        let gate = d.path().join("portcullis-runc");
        std::fs::write(&gate, "#!/bin/sh\n").unwrap();
        let real = real_dir.join("runc");
        std::fs::write(&real, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        for f in [&gate, &real] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::os::unix::fs::symlink(&gate, gate_dir.join("runc")).unwrap();
        let path = std::env::join_paths([&gate_dir, &real_dir]).unwrap();
        assert_eq!(real_runc(&gate, None, Some(&path)).unwrap(), real);
        // only the gate: refused, saying why
        let only = std::env::join_paths([&gate_dir]).unwrap();
        let e = real_runc(&gate, None, Some(&only)).unwrap_err();
        assert!(e.to_string().contains("no real runc found"), "{e}");
        assert!(real_runc(&gate, None, None).is_err());
        // the override wins, but never names the gate
        assert_eq!(
            real_runc(&gate, Some(real.as_os_str()), Some(&only)).unwrap(),
            real
        );
        let e = real_runc(&gate, Some(gate_dir.join("runc").as_os_str()), Some(&path)).unwrap_err();
        assert!(e.to_string().contains("the gate itself"), "{e}");
        assert!(real_runc(&gate, Some(OsStr::new("/nonexistent/runc")), Some(&path)).is_err());
    }

    #[test]
    fn the_refusal_is_one_runc_json_log_entry() {
        let l = log_line(
            "portcullis: denied a@sha256:1: \"why\"",
            Some("json"),
            "2026-01-01T00:00:00Z",
        );
        assert!(l.ends_with('\n') && l.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(l.trim()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "portcullis: denied a@sha256:1: \"why\"");
        assert_eq!(v["time"], "2026-01-01T00:00:00Z");
        let t = log_line("portcullis: denied x", Some("text"), "T");
        assert_eq!(t, "time=\"T\" level=error msg=\"portcullis: denied x\"\n");
    }

    /// An overlay comparison never asks whether a directory is the rootfs.
    fn never(source: &str) -> Result<bool, String> {
        panic!("asked about {source}")
    }

    fn overlay(lower: &str, upper: &str) -> SnapshotMount {
        SnapshotMount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "index=off".into(),
                "workdir=/s/9/work".into(),
                format!("upperdir={upper}"),
                format!("lowerdir={lower}"),
            ],
        }
    }

    #[test]
    fn the_mounted_rootfs_must_be_the_snapshot() {
        let info = "\
100 20 0:50 / /b/rootfs rw,relatime - overlay overlay rw,lowerdir=/s/2/fs:/s/1/fs,upperdir=/s/9/fs,workdir=/s/9/work
101 20 0:51 / /b/rootfs\\040x rw - tmpfs tmpfs rw
";
        let m = mounts::mount_at(info, Path::new("/b/rootfs/")).unwrap();
        assert_eq!(m.fstype, "overlay");
        assert!(compare_mount(&m, &[overlay("/s/2/fs:/s/1/fs", "/s/9/fs")], "k", &never).is_ok());
        // another snapshot's upper, another chain, a shorter chain
        for (l, u) in [
            ("/s/2/fs:/s/1/fs", "/s/8/fs"),
            ("/s/3/fs:/s/1/fs", "/s/9/fs"),
            ("/s/2/fs", "/s/9/fs"),
        ] {
            let e = compare_mount(&m, &[overlay(l, u)], "k", &never).unwrap_err();
            assert!(e.contains("is not the container's snapshot k"), "{e}");
        }
        // relative lower dirs (containerd's long-option form) match by suffix
        let rel = "102 20 0:52 / /c/rootfs rw - overlay overlay rw,lowerdir=2/fs:1/fs,upperdir=/s/9/fs,workdir=/s/9/work\n";
        let m = mounts::mount_at(rel, Path::new("/c/rootfs")).unwrap();
        assert!(compare_mount(&m, &[overlay("/s/2/fs:/s/1/fs", "/s/9/fs")], "k", &never).is_ok());
        // escaped mount points, topmost mount wins, nothing mounted
        assert_eq!(
            mounts::mount_at(info, Path::new("/b/rootfs x"))
                .unwrap()
                .fstype,
            "tmpfs"
        );
        let stacked = format!("{info}103 20 0:53 / /b/rootfs rw - tmpfs tmpfs rw\n");
        let m = mounts::mount_at(&stacked, Path::new("/b/rootfs")).unwrap();
        assert!(compare_mount(&m, &[overlay("/s/2/fs:/s/1/fs", "/s/9/fs")], "k", &never).is_err());
        assert!(mounts::mount_at(info, Path::new("/elsewhere")).is_none());
        // no mounts or several: refused
        assert!(compare_mount(&m, &[], "k", &never).is_err());
    }

    #[test]
    fn config_root_must_be_the_bundle_rootfs() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("config.json");
        for (root, ok) in [
            ("rootfs", true),
            ("./rootfs/", true),
            (&*d.path().join("rootfs").display().to_string(), true),
            ("/var/lib/elsewhere", false),
            ("rootfs/../other", false),
            ("", false),
        ] {
            std::fs::write(
                &cfg,
                serde_json::json!({"root": {"path": root}}).to_string(),
            )
            .unwrap();
            assert_eq!(check_config_root(d.path()).is_ok(), ok, "{root}");
        }
        std::fs::write(&cfg, "{not json").unwrap();
        assert!(check_config_root(d.path()).is_err());
        std::fs::remove_file(&cfg).unwrap();
        assert!(check_config_root(d.path()).is_err());
    }

    /// A container record of image r/app:1, with snapshot `k` of
    /// `snapshotter` when one is given.
    fn bundle_target(snapshotter: Option<&str>) -> ImageTarget {
        ImageTarget {
            name: "r/app:1".into(),
            target_digest: "sha256:1".into(),
            target_media_type: String::new(),
            platform_digest: None,
            snapshot_key: snapshotter.map(|_| "k".into()),
            snapshotter: snapshotter.map(Into::into),
            chain_id: None,
            snapshot_parent: None,
            platform_ambiguity: None,
        }
    }

    #[test]
    fn a_record_without_snapshot_is_refused() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("config.json"),
            r#"{"root":{"path":"rootfs"}}"#,
        )
        .unwrap();
        let t = bundle_target(None);
        let e = check_binding(d.path(), &t, &|_, _| Ok(vec![]), &|_| Ok(None)).unwrap_err();
        assert!(e.contains("no snapshot"), "{e}");
    }

    /// A bind-mounted snapshot (the native snapshotter) must be that very
    /// directory: one whose path within its filesystem ends the same, on
    /// another filesystem (a tmpfs holding `/12`), is refused.
    #[test]
    fn a_bound_rootfs_must_be_the_snapshot_directory_itself() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("config.json"),
            r#"{"root":{"path":"rootfs"}}"#,
        )
        .unwrap();
        let rootfs = d.path().join("rootfs");
        let snapshots = d.path().join("native/snapshots");
        std::fs::create_dir_all(&rootfs).unwrap();
        std::fs::create_dir_all(snapshots.join("12")).unwrap();
        let t = bundle_target(Some("native"));
        let bind = |source: &Path| {
            let source = source.display().to_string();
            move |_: &str, _: &str| {
                Ok(vec![SnapshotMount {
                    kind: "bind".into(),
                    source: source.clone(),
                    options: vec!["rbind".into(), "rw".into()],
                }])
            }
        };
        // What the kernel reports for a bind of a tmpfs's /12.
        let mounted = |_: &Path| {
            Ok(Some(MountedFs {
                fstype: "tmpfs".into(),
                root: "/12".into(),
                options: vec!["rw".into()],
            }))
        };
        let e = check_binding(d.path(), &t, &bind(&snapshots.join("12")), &mounted).unwrap_err();
        assert!(e.contains("another inode or device"), "{e}");
        // The snapshot's directory itself (here the rootfs path is it).
        let m = |_: &Path| {
            Ok(Some(MountedFs {
                fstype: "ext4".into(),
                root: rootfs.display().to_string(),
                options: vec!["rw".into()],
            }))
        };
        check_binding(d.path(), &t, &bind(&rootfs), &m).unwrap();
    }
}
