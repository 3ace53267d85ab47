# shellcheck shell=bash
# Portcullis integration-test environment. Source it from a bash test script:
#
#   source integration/env.sh
#   trap pc_stop_all EXIT
#   pc_start_registry
#   pc_start_containerd
#   pc_ctr images pull --plain-http "$PC_REGISTRY/app:1"
#
# Sourcing only sets variables and defines functions (and does not change the
# caller's shell options). Functions return non-zero with a message on stderr
# when they fail, with or without `set -e` in the caller. Run setup.sh once
# before (packages, journald).
#
# The first pc_start_* call of a shell session (per PC_WORK) first stops and
# wipes whatever a previous run with the same PC_WORK left behind. Later
# calls don't wipe, so `pc_stop_containerd; pc_start_containerd` is a restart
# that keeps images, containers and running shims. Call pc_start_* directly,
# not inside $(...), or that bookkeeping is lost with the subshell.

PC_INTEGRATION_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
PC_REPO_ROOT=${PC_REPO_ROOT:-$(dirname "$PC_INTEGRATION_DIR")}

# Where cargo puts our binaries (honours an absolute CARGO_TARGET_DIR).
if [[ -z ${PC_BIN_DIR:-} ]]; then
  if [[ ${CARGO_TARGET_DIR:-} == /* ]]; then
    PC_BIN_DIR=$CARGO_TARGET_DIR/debug
  else
    PC_BIN_DIR=$PC_REPO_ROOT/target/debug
  fi
fi

PC_WORK=${PC_WORK:-/tmp/portcullis-it}
PC_REGISTRY=${PC_REGISTRY:-127.0.0.1:5000}
PC_NS=${PC_NS:-portcullis-test}
PC_CONTAINERD_SOCK=${PC_CONTAINERD_SOCK:-$PC_WORK/containerd/containerd.sock}
PORTCULLIS_POLICY=${PORTCULLIS_POLICY:-$PC_WORK/policy.toml}
PORTCULLIS_STATE_DIR=${PORTCULLIS_STATE_DIR:-$PC_WORK/state}
# Bounded waits, in seconds.
PC_START_TIMEOUT=${PC_START_TIMEOUT:-20}
PC_STOP_TIMEOUT=${PC_STOP_TIMEOUT:-10}

export PC_REPO_ROOT PC_BIN_DIR PC_WORK PC_REGISTRY PC_NS PC_CONTAINERD_SOCK \
  PORTCULLIS_POLICY PORTCULLIS_STATE_DIR

# The journal's MESSAGE_IDs (PC_MID_*), one definition for every suite.
# shellcheck source=integration/message-ids.sh
source "$PC_INTEGRATION_DIR/message-ids.sh"

# ---------------------------------------------------------------- internals

_pc_log() { printf 'pc: %s\n' "$*" >&2; }
_pc_err() { printf 'pc: error: %s\n' "$*" >&2; }

# Refuses PC_WORK values that would make `rm -rf` dangerous.
_pc_check_work() {
  case $PC_WORK in
    /*/*) ;;
    *)
      _pc_err "PC_WORK must be an absolute path at least two levels deep (got '$PC_WORK')"
      return 1
      ;;
  esac
  case $PC_WORK in
    *//* | */./* | */../* | */. | */.. | */ | *[[:space:]\"\\]*)
      _pc_err "PC_WORK must be a plain normalised path (got '$PC_WORK')"
      return 1
      ;;
  esac
  case $PC_WORK in
    /usr/* | /etc/* | /bin/* | /sbin/* | /lib*/* | /boot/* | /proc/* | /sys/* | /dev/*)
      _pc_err "PC_WORK under a system directory: '$PC_WORK'"
      return 1
      ;;
  esac
  # A foreign non-empty directory is never ours to wipe.
  if [[ -d $PC_WORK && ! -e $PC_WORK/.portcullis-it ]] &&
    [[ -n $(ls -A "$PC_WORK" 2>/dev/null) ]]; then
    _pc_err "$PC_WORK exists, is not empty and is not a portcullis test dir (no .portcullis-it marker)"
    return 1
  fi
}

_pc_prepare_work() {
  _pc_check_work || return 1
  mkdir -p "$PC_WORK/logs" "$PC_WORK/run" || return 1
  : >"$PC_WORK/.portcullis-it"
}

# True while PID is a live (non-zombie) process.
_pc_alive() {
  local pid=$1 stat
  [[ -r /proc/$pid/stat ]] || return 1
  { stat=$(<"/proc/$pid/stat"); } 2>/dev/null || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# Prints the pids of processes whose command name (/proc/PID/comm, 15 chars
# at most) matches the glob COMM and whose command line contains SUBSTRING
# followed by a space or its end (so ".../a.sock" does not match ".../a.sock2").
_pc_pids_matching() {
  local comm_glob=$1 substring=$2 pattern pid comm
  # pgrep -f takes an extended regex; escape the substring.
  # shellcheck disable=SC2001,SC2016
  pattern=$(sed 's/[][\.*^$(){}?+|]/\\&/g' <<<"$substring")
  for pid in $(pgrep -f -- "$pattern( |\$)" 2>/dev/null); do
    { comm=$(<"/proc/$pid/comm"); } 2>/dev/null || continue
    # shellcheck disable=SC2053
    [[ $comm == $comm_glob ]] || continue
    _pc_alive "$pid" && printf '%s\n' "$pid"
  done
  return 0
}

# _pc_kill_wait SIGNAL TIMEOUT PID...: signals the pids, waits until they are
# gone; SIGKILLs what survives TIMEOUT seconds. Returns 1 if any survives that.
_pc_kill_wait() {
  local sig=$1 timeout=$2 pid deadline left
  shift 2
  (($# > 0)) || return 0
  kill "-$sig" "$@" 2>/dev/null
  deadline=$((SECONDS + timeout))
  while :; do
    left=()
    for pid in "$@"; do _pc_alive "$pid" && left+=("$pid"); done
    ((${#left[@]} == 0)) && return 0
    if ((SECONDS >= deadline)); then
      [[ $sig == KILL ]] && {
        _pc_err "still alive after SIGKILL: ${left[*]}"
        return 1
      }
      _pc_log "SIGKILL to ${left[*]} (did not stop on SIG$sig in ${timeout}s)"
      sig=KILL
      kill -KILL "${left[@]}" 2>/dev/null
      deadline=$((SECONDS + 5))
    fi
    set -- "${left[@]}"
    sleep 0.1
  done
}

# _pc_pidfile_pid FILE COMM: the pid recorded in FILE if that process is
# alive and still named COMM (a recycled pid is not ours to signal).
_pc_pidfile_pid() {
  local f=$1 want=$2 pid comm
  [[ -r $f ]] || return 0
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  { comm=$(<"/proc/$pid/comm"); } 2>/dev/null || return 0
  [[ $comm == "$want" ]] && _pc_alive "$pid" && printf '%s\n' "$pid"
  return 0
}

_pc_registry_config() { printf '%s\n' "$PC_WORK/registry.yml"; }
_pc_containerd_config() { printf '%s\n' "$PC_WORK/containerd/config.toml"; }

_pc_registry_pids() {
  {
    _pc_pidfile_pid "$PC_WORK/run/registry.pid" docker-registry
    _pc_pids_matching docker-registry "$(_pc_registry_config)"
  } | sort -u
}

_pc_containerd_pids() {
  {
    _pc_pidfile_pid "$PC_WORK/run/containerd.pid" containerd
    _pc_pids_matching containerd "--config $(_pc_containerd_config)"
  } | sort -u
}

# Shims (runc's, or ours before it execs runc's) started by our containerd:
# their command line carries `-address $PC_CONTAINERD_SOCK`.
_pc_shim_pids() {
  _pc_pids_matching 'containerd-shim*' "-address $PC_CONTAINERD_SOCK" | sort -u
}

# Mount points under PC_WORK (not PC_WORK itself), deepest first.
_pc_mounts_under_work() {
  local _a _b _c _d mp _rest
  while read -r _a _b _c _d mp _rest; do
    mp=$(printf '%b' "$mp") # mountinfo escapes spaces etc. as \040
    [[ $mp == "$PC_WORK"/* ]] && printf '%s\n' "$mp"
  done </proc/self/mountinfo | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

_pc_umount_work() {
  local mp _pass
  local -a mps
  for _pass in 1 2 3; do
    mapfile -t mps < <(_pc_mounts_under_work)
    ((${#mps[@]} == 0)) && return 0
    _pc_log "unmounting ${#mps[@]} mount(s) under $PC_WORK"
    for mp in "${mps[@]}"; do
      umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
    done
  done
  mapfile -t mps < <(_pc_mounts_under_work)
  ((${#mps[@]} == 0)) && return 0
  _pc_err "mounts left under $PC_WORK: ${mps[*]}"
  return 1
}

_pc_tcp_in_use() {
  local host=${1%:*} port=${1##*:}
  host=${host#[}
  host=${host%]}
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

_pc_tail_log() {
  [[ -r $1 ]] || return 0
  _pc_log "last lines of $1:"
  tail -n "${2:-20}" "$1" | sed 's/^/  | /' >&2
}

# Once per shell session and PC_WORK: stop and wipe a previous run's leftovers.
_pc_fresh_once() {
  [[ ${_PC_FRESH_FOR:-} == "$PC_WORK" ]] && return 0
  _pc_check_work || return 1
  PC_KEEP_WORK='' pc_stop_all --purge || return 1
  _PC_FRESH_FOR=$PC_WORK
  export _PC_FRESH_FOR
}

# Kills every task and deletes every container (with its snapshot) in all
# namespaces of our containerd, while it still answers.
_pc_ctr_cleanup() {
  local ns id
  local -a base=(timeout 15 ctr --address "$PC_CONTAINERD_SOCK")
  [[ -S $PC_CONTAINERD_SOCK ]] || return 0
  timeout 5 ctr --address "$PC_CONTAINERD_SOCK" version >/dev/null 2>&1 || return 0
  for ns in $("${base[@]}" namespaces ls -q 2>/dev/null); do
    for id in $("${base[@]}" -n "$ns" tasks ls -q 2>/dev/null); do
      "${base[@]}" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 || true
    done
    for id in $("${base[@]}" -n "$ns" containers ls -q 2>/dev/null); do
      "${base[@]}" -n "$ns" containers delete "$id" >/dev/null 2>&1 || true
    done
  done
}

# Kills shims left by our containerd, their containers' processes, the runc
# state they leave in runc's default root and their sockets in
# /run/containerd/s (named sha256("ADDRESS/NS/ID") by containerd 1.6 shims).
_pc_kill_shims() {
  local -a pids sockets=()
  local pid ns id arg prev child
  mapfile -t pids < <(_pc_shim_pids)
  ((${#pids[@]} > 0)) || return 0
  _pc_log "killing leftover shims: ${pids[*]}"
  for pid in "${pids[@]}"; do
    ns='' id='' prev=''
    while IFS= read -r -d '' arg; do
      case $prev in
        -namespace) ns=$arg ;;
        -id) id=$arg ;;
      esac
      prev=$arg
    done 2>/dev/null <"/proc/$pid/cmdline" || true
    if [[ -n $ns && -n $id ]]; then
      sockets+=("/run/containerd/s/$(printf '%s' "$PC_CONTAINERD_SOCK/$ns/$id" | sha256sum | cut -d' ' -f1)")
    fi
    if [[ -n $ns && -n $id && -d /run/containerd/runc/$ns/$id ]]; then
      timeout 10 runc --root "/run/containerd/runc/$ns" delete --force "$id" \
        >/dev/null 2>&1 || true
    fi
    # Whatever is still below the shim (container processes).
    for child in $(pgrep -P "$pid"); do kill -KILL "$child" 2>/dev/null || true; done
  done
  _pc_kill_wait KILL "$PC_STOP_TIMEOUT" "${pids[@]}" || return 1
  ((${#sockets[@]} == 0)) || rm -f -- "${sockets[@]}"
}

# ----------------------------------------------------------------- registry

# Starts a private docker-registry on PC_REGISTRY, storage in $PC_WORK/registry.
pc_start_registry() {
  _pc_fresh_once || return 1
  _pc_prepare_work || return 1
  pc_stop_registry || return 1
  if _pc_tcp_in_use "$PC_REGISTRY"; then
    _pc_err "something else listens on $PC_REGISTRY (the system docker-registry? try: invoke-rc.d docker-registry stop)"
    return 1
  fi
  local cfg log pid secret deadline
  cfg=$(_pc_registry_config)
  log=$PC_WORK/logs/registry.log
  mkdir -p "$PC_WORK/registry" || return 1
  secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  cat >"$cfg" <<EOF || return 1
version: 0.1
log:
  level: info
  fields:
    service: portcullis-it-registry
storage:
  filesystem:
    rootdirectory: $PC_WORK/registry
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $PC_REGISTRY
  secret: $secret
EOF
  docker-registry serve "$cfg" </dev/null >>"$log" 2>&1 &
  pid=$!
  disown "$pid" 2>/dev/null || true
  printf '%s\n' "$pid" >"$PC_WORK/run/registry.pid"
  deadline=$((SECONDS + PC_START_TIMEOUT))
  until curl -fsS -o /dev/null --max-time 2 "http://$PC_REGISTRY/v2/" 2>/dev/null; do
    if ! _pc_alive "$pid"; then
      _pc_err "docker-registry exited during start"
      _pc_tail_log "$log"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      _pc_err "docker-registry did not answer on http://$PC_REGISTRY/v2/ within ${PC_START_TIMEOUT}s"
      _pc_tail_log "$log"
      return 1
    fi
    sleep 0.1
  done
  _pc_log "registry up on $PC_REGISTRY (pid $pid)"
}

pc_stop_registry() {
  local -a pids
  mapfile -t pids < <(_pc_registry_pids)
  _pc_kill_wait TERM "$PC_STOP_TIMEOUT" "${pids[@]}" || return 1
  rm -f "$PC_WORK/run/registry.pid"
}

# --------------------------------------------------------------- containerd

# Starts a private containerd on PC_CONTAINERD_SOCK with PC_BIN_DIR first on
# its PATH and PORTCULLIS_POLICY / PORTCULLIS_STATE_DIR in its environment
# (which its shims inherit). Images, containers and snapshots live under
# $PC_WORK/containerd.
pc_start_containerd() {
  _pc_fresh_once || return 1
  _pc_prepare_work || return 1
  pc_stop_containerd || return 1
  if ((${#PC_CONTAINERD_SOCK} > 100)); then
    _pc_err "socket path too long for a unix socket: $PC_CONTAINERD_SOCK"
    return 1
  fi
  local dir=$PC_WORK/containerd cfg log pid deadline
  cfg=$(_pc_containerd_config)
  log=$PC_WORK/logs/containerd.log
  mkdir -p "$dir/root" "$dir/state" "$(dirname "$PC_CONTAINERD_SOCK")" || return 1
  rm -f "$PC_CONTAINERD_SOCK" "$PC_CONTAINERD_SOCK.ttrpc"
  # Disabled: CRI (not needed, slow to start); snapshotters that cannot work
  # here (noise); and "opt", which would put its own (empty) bin dir ahead of
  # PC_BIN_DIR on PATH (by default /opt/containerd/bin).
  # PC_CONTAINERD_IMPORTS (files, space-separated): containerd `imports`,
  # e.g. the installed drop-in; PC_CONTAINERD_CRI=1 keeps the CRI plugin
  # (restrict_oom_score_adj, sandbox image PC_CRI_SANDBOX_IMAGE, which the
  # caller pulls into namespace k8s.io). PC_CONTAINERD_VERSION (2.2.9,
  # 2.4.2...: a containerd from integration/tools.sh; empty or 1.6: the
  # system's) picks the binary, its runc shim and config version 3.
  local bin cfgver imports="" cri_off='  "io.containerd.grpc.v1.cri",' cri_cfg="" f shimdir=""
  bin=$(pc_containerd_bin) || return 1
  [[ $bin != containerd ]] && shimdir=$(dirname "$bin")
  cfgver=$([[ -n $shimdir ]] && echo 3 || echo 2)
  for f in ${PC_CONTAINERD_IMPORTS:-}; do imports+="${imports:+, }\"$f\""; done
  if [[ -n ${PC_CONTAINERD_CRI:-} ]]; then
    cri_off=
    if [[ -z ${PC_CRI_SANDBOX_IMAGE:-} ]]; then
      : # the CRI plugin's own defaults (package-test.sh: the drop-in's)
    elif ((cfgver == 2)); then
      cri_cfg="[plugins.\"io.containerd.grpc.v1.cri\"]
  restrict_oom_score_adj = true
  sandbox_image = \"${PC_CRI_SANDBOX_IMAGE:-}\""
    else
      cri_cfg="[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = \"${PC_CRI_SANDBOX_IMAGE:-}\""
    fi
  fi
  cat >"$cfg" <<EOF || return 1
${imports:+imports = [$imports]}
version = $cfgver
root = "$dir/root"
state = "$dir/state"
disabled_plugins = [
$cri_off
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$PC_CONTAINERD_SOCK"

[ttrpc]
  address = "$PC_CONTAINERD_SOCK.ttrpc"

[debug]
  level = "${PC_CONTAINERD_LOG_LEVEL:-info}"

[metrics]
  address = ""
$cri_cfg
EOF
  if [[ ! -x $PC_BIN_DIR/containerd-shim-portcullis-v2 ]]; then
    _pc_log "note: $PC_BIN_DIR/containerd-shim-portcullis-v2 not built yet (runtime io.containerd.portcullis.v2 will fail)"
  fi
  # PC_CONTAINERD_PATH_PREPEND: directories put first on containerd's PATH
  # (e.g. one holding runc -> portcullis-runc: node-wide enforcement).
  env PATH="${PC_CONTAINERD_PATH_PREPEND:+$PC_CONTAINERD_PATH_PREPEND:}$PC_BIN_DIR${shimdir:+:$shimdir}:$PATH" \
    PORTCULLIS_POLICY="$PORTCULLIS_POLICY" \
    PORTCULLIS_STATE_DIR="$PORTCULLIS_STATE_DIR" \
    "$bin" --config "$cfg" </dev/null >>"$log" 2>&1 &
  pid=$!
  disown "$pid" 2>/dev/null || true
  printf '%s\n' "$pid" >"$PC_WORK/run/containerd.pid"
  deadline=$((SECONDS + PC_START_TIMEOUT))
  until timeout 5 ctr --address "$PC_CONTAINERD_SOCK" version >/dev/null 2>&1; do
    if ! _pc_alive "$pid"; then
      _pc_err "containerd exited during start"
      _pc_tail_log "$log"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      _pc_err "containerd did not answer on $PC_CONTAINERD_SOCK within ${PC_START_TIMEOUT}s"
      _pc_tail_log "$log"
      return 1
    fi
    sleep 0.1
  done
  _pc_log "containerd up on $PC_CONTAINERD_SOCK (pid $pid)"
}

# The containerd binary PC_CONTAINERD_VERSION names: `containerd` (the
# system's, 1.6 on Debian 12) when empty or 1.*, else
# $PC_TOOLS/containerd-vX.Y.Z/containerd (installed by integration/tools.sh).
pc_containerd_bin() {
  local v=${PC_CONTAINERD_VERSION:-}
  case $v in
    '' | 1.*) echo containerd ;;
    *)
      local b=${PC_TOOLS:-/opt/portcullis-tools}/containerd-v${v#v}/containerd
      if [[ ! -x $b ]]; then
        _pc_err "$b missing for PC_CONTAINERD_VERSION=$v (run integration/tools.sh)"
        return 1
      fi
      echo "$b"
      ;;
  esac
}

# pc_use_containerd_tools: with PC_CONTAINERD_VERSION naming a 2.x release,
# puts that release's directory (its ctr, runc shim) first on PATH; nothing
# for Debian's 1.6.
pc_use_containerd_tools() {
  if [[ -n ${PC_CONTAINERD_VERSION:-} && $PC_CONTAINERD_VERSION != 1.* ]]; then
    local bin
    bin=$(pc_containerd_bin) || return 1
    PATH="$(dirname "$bin"):$PATH"
    export PATH
  fi
}

# Stops our containerd only: tasks and their shims keep running, data is kept
# (a containerd restart).
pc_stop_containerd() {
  local -a pids
  mapfile -t pids < <(_pc_containerd_pids)
  _pc_kill_wait TERM "$PC_STOP_TIMEOUT" "${pids[@]}" || return 1
  rm -f "$PC_WORK/run/containerd.pid"
}

# ctr against our containerd, in namespace PC_NS.
pc_ctr() {
  ctr --address "$PC_CONTAINERD_SOCK" --namespace "$PC_NS" "$@"
}

# pc_pull REPO:TAG [ctr pull options...]: pulls $PC_REGISTRY/REPO:TAG over http.
pc_pull() {
  local ref=$1
  shift
  pc_ctr images pull --plain-http "$@" "$PC_REGISTRY/$ref"
}

# ---------------------------------------------------------------- stop all

# pc_stop_all [--purge]: stops everything started under PC_WORK: tasks and
# containers of our containerd, containerd, leftover shims and container
# processes, the registry; unmounts whatever is mounted under PC_WORK; then
# deletes PC_WORK except logs/ (--purge: everything; PC_KEEP_WORK=1: nothing).
# Suitable for `trap pc_stop_all EXIT` (the script keeps its exit status).
# pc_node ARGS...: node, its standard error through a pipe of its own (its
# standard output is the caller's). Node makes the pipes it is given
# non-blocking while it runs, and leaves them so when killed; the suite's
# standard error is one open file shared with every other writer, whose
# writes would then fail with EAGAIN whenever the reader lags.
pc_node() {
  { node "$@" 2>&1 1>&3 3>&- | cat >&2 3>&-; } 3>&1
}

# pc_start_standin DIR: starts the local Sigstore stand-in (integration/keyless,
# mock Fulcio/Rekor/TSA) in the background, its URL in DIR/url and its trusted
# root in DIR/trusted_root.json; sets STANDIN_PID and STANDIN_URL. Each try
# waits up to 30 s; a try that exits or stalls is reported (exit status, or
# the process state and kernel wait channel, and its log) and the stand-in is
# started again, up to 3 tries. The stand-in is up in under a second here; a
# CI run once saw it neither up nor logging after 60 s, cause not found, so
# the report says what the process was doing.
pc_start_standin() {
  local dir=$1 log=$PC_WORK/logs/standin.log try _ rc t0 state
  mkdir -p "$dir" "$PC_WORK/logs"
  for try in 1 2 3; do
    rm -f "$dir/url" "$dir/trusted_root.json"
    t0=$SECONDS
    node "$PC_REPO_ROOT/integration/keyless/standin.mjs" --url-file "$dir/url" \
      --trusted-root-out "$dir/trusted_root.json" >"$log" 2>&1 &
    STANDIN_PID=$!
    for _ in $(seq 1 300); do
      [[ -s $dir/url && -s $dir/trusted_root.json ]] && break
      kill -0 "$STANDIN_PID" 2>/dev/null || break
      sleep 0.1
    done
    if [[ -s $dir/url && -s $dir/trusted_root.json ]]; then
      STANDIN_URL=$(cat "$dir/url")
      ((try == 1)) || _pc_log "the Sigstore stand-in is up on try $try"
      return 0
    fi
    if kill -0 "$STANDIN_PID" 2>/dev/null; then
      state="still running after $((SECONDS - t0)) s: $(grep -E '^State:' "/proc/$STANDIN_PID/status" 2>/dev/null | tr -s '\t ' ' '), wchan $(cat "/proc/$STANDIN_PID/wchan" 2>/dev/null)"
      kill -KILL "$STANDIN_PID" 2>/dev/null || true
      wait "$STANDIN_PID" 2>/dev/null || true
    else
      rc=0
      wait "$STANDIN_PID" 2>/dev/null || rc=$?
      state="exited with status $rc after $((SECONDS - t0)) s"
    fi
    _pc_err "the Sigstore stand-in (pid $STANDIN_PID, try $try of 3) is not up: $state; its log: $(tail -n 20 "$log" | tr '\n' ' ')"
  done
  STANDIN_PID=
  return 1
}

pc_stop_all() {
  local purge=0 rc=0
  [[ ${1:-} == --purge ]] && purge=1
  _pc_check_work || return 1
  _pc_ctr_cleanup
  pc_stop_containerd || rc=1
  _pc_kill_shims || rc=1
  pc_stop_registry || rc=1
  if [[ -d $PC_WORK ]]; then
    _pc_umount_work || rc=1
    if ((rc == 0)) && [[ -z ${PC_KEEP_WORK:-} ]]; then
      local entry
      for entry in "$PC_WORK"/* "$PC_WORK"/.[!.]*; do
        [[ -e $entry || -L $entry ]] || continue
        ((purge == 0)) && [[ $entry == "$PC_WORK/logs" || $entry == "$PC_WORK/.portcullis-it" ]] && continue
        rm -rf --one-file-system -- "$entry" || rc=1
      done
      ((purge == 1)) && { rmdir -- "$PC_WORK" 2>/dev/null || true; }
    elif ((rc != 0)); then
      _pc_err "not deleting $PC_WORK: stop or unmount failed"
    fi
  fi
  return "$rc"
}

# pc_exit_report STATUS: for an EXIT trap. When the script ends with a
# non-zero STATUS, says which command it ended at and through which calls:
# `set -e` ends a script silently, and in a trap BASH_COMMAND is still the
# command that was running when the script began to exit. Silent for an
# `exit N` and for lib.sh's `summary`, which end a script on purpose after
# saying why.
pc_exit_report() {
  local rc=$1 i calls=""
  ((rc != 0)) || return 0
  [[ $BASH_COMMAND == exit* || " ${FUNCNAME[*]} " == *" summary "* ]] && return 0
  for ((i = 1; i < ${#FUNCNAME[@]}; i++)); do
    [[ ${FUNCNAME[i]} == pc_exit_trap || ${FUNCNAME[i]} == main ]] && continue
    calls+=" < ${FUNCNAME[i]} (called at ${BASH_SOURCE[i + 1]##*/}:${BASH_LINENO[i]})"
  done
  _pc_err "${0##*/} ends with status $rc at \`$BASH_COMMAND\`${calls}"
}

# pc_exit_trap STATUS [HOOK...]: an EXIT trap, as `trap 'pc_exit_trap $?' EXIT`
# (or with the suite's own clean-up functions as HOOKs, run first): reports
# how the script ended (pc_exit_report), stops everything under PC_WORK
# (pc_stop_all) and keeps the script's status.
pc_exit_trap() {
  local rc=$1 hook
  shift
  set +e
  pc_exit_report "$rc"
  for hook in "$@"; do "$hook"; done
  pc_stop_all || echo "# cleanup of $PC_WORK failed (see pc: messages)" >&2
  exit "$rc"
}
