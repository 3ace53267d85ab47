#!/usr/bin/python3
"""Run a command under the kernel confinement a shipped systemd unit asks for.

    unit-seccomp.py UNIT_FILE -- COMMAND [ARG...]

The test machines have no systemd as PID 1, so nothing there runs our units.
This applies the parts of a unit's [Service] section that are seccomp filters
and capability sets, as systemd 252 builds them, then executes COMMAND:

- SystemCallFilter= (allow-list or deny-list, in the unit's order, `@default`
  added to an allow-list as systemd does), with the groups expanded by this
  machine's `systemd-analyze syscall-filter`, and SystemCallErrorNumber= as
  the action for what the filter refuses (else the process is killed);
- RestrictAddressFamilies= (socket(2) of another family: EAFNOSUPPORT);
- MemoryDenyWriteExecute= (writable and executable mappings: EPERM);
- CapabilityBoundingSet= (only the empty set is supported: every capability
  leaves the bounding set, so the command runs with none) and
  NoNewPrivileges= (libseccomp sets it when it loads a filter).

The filters are built and loaded by libseccomp (Debian's python3-seccomp).
Mount and namespace settings (ProtectSystem=, PrivateNetwork=, ...) are not
applied: they need systemd itself.
"""

import ctypes
import errno
import os
import socket
import subprocess
import sys

import seccomp

PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4


def die(msg):
    print(f"unit-seccomp: {msg}", file=sys.stderr)
    sys.exit(2)


def service_settings(path):
    """The [Service] section's assignments, in order, as (key, value)."""
    out, section = [], None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                continue
            if section == "Service" and "=" in line:
                key, value = line.split("=", 1)
                out.append((key.strip(), value.strip()))
    return out


_groups = {}


def expand(name):
    """A syscall name, or every syscall of a group (recursively)."""
    if not name.startswith("@"):
        return {name}
    if name not in _groups:
        text = subprocess.run(
            ["systemd-analyze", "syscall-filter", "--no-pager", name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        members = set()
        for line in text.splitlines()[1:]:
            item = line.strip()
            if item and not item.startswith("#"):
                members |= expand(item)
        if not members:
            die(f"systemd-analyze knows no syscall group {name}")
        _groups[name] = members
    return _groups[name]


def syscall_filter(settings):
    """(allow_list, names) after every SystemCallFilter= in order."""
    allow_list, names = None, set()
    for key, value in settings:
        if key != "SystemCallFilter":
            continue
        if not value:
            allow_list, names = None, set()
            continue
        invert = value.startswith("~")
        items = value[1:].split() if invert else value.split()
        if allow_list is None:
            allow_list = not invert
            if allow_list:
                names |= expand("@default")
        for item in items:
            add = invert != allow_list
            for n in expand(item.split(":", 1)[0]):
                if add:
                    names.add(n)
                else:
                    names.discard(n)
    return allow_list, names


def last_value(settings, key):
    values = [v for k, v in settings if k == key]
    return values[-1] if values else None


def rule(flt, action, name, *args):
    """Add a rule; a name this libseccomp does not know is skipped, as systemd does."""
    try:
        flt.add_rule(action, name, *args)
    except (RuntimeError, ValueError, OSError):
        pass


def main(argv):
    if len(argv) < 4 or argv[2] != "--":
        die("usage: unit-seccomp.py UNIT_FILE -- COMMAND [ARG...]")
    unit, command = argv[1], argv[3:]
    settings = service_settings(unit)

    bounding = last_value(settings, "CapabilityBoundingSet")
    libc = ctypes.CDLL(None, use_errno=True)
    if bounding is not None:
        if bounding:
            die(f"{unit}: CapabilityBoundingSet={bounding}: only the empty set is supported")
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
            last = int(f.read())
        for cap in range(last + 1):
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                die(f"cannot drop capability {cap}: {os.strerror(ctypes.get_errno())}")
        libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)

    families = last_value(settings, "RestrictAddressFamilies")
    if families:
        invert = families.startswith("~")
        listed = {getattr(socket, f) for f in families.lstrip("~").split()}
        flt = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        nope = seccomp.ERRNO(errno.EAFNOSUPPORT)
        for af in range(64):
            if (af in listed) == invert:
                rule(flt, nope, "socket", seccomp.Arg(0, seccomp.EQ, af))
        if not invert:
            rule(flt, nope, "socket", seccomp.Arg(0, seccomp.GE, 64))
        flt.load()

    if last_value(settings, "MemoryDenyWriteExecute") in ("yes", "true", "1", "on"):
        prot_exec, prot_write, shm_exec = 0x4, 0x2, 0o100000
        wx = prot_exec | prot_write
        flt = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        eperm = seccomp.ERRNO(errno.EPERM)
        rule(flt, eperm, "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, wx, wx))
        rule(flt, eperm, "mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, prot_exec, prot_exec))
        rule(flt, eperm, "pkey_mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, prot_exec, prot_exec))
        rule(flt, eperm, "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, shm_exec, shm_exec))
        flt.load()

    # The system-call filter goes last: once it is loaded, seccomp(2) itself
    # is refused (it is in no group a unit allows).
    errno_name = last_value(settings, "SystemCallErrorNumber")
    refuse = seccomp.ERRNO(getattr(errno, errno_name)) if errno_name else seccomp.KILL_PROCESS
    allow_list, names = syscall_filter(settings)
    if allow_list is not None:
        flt = seccomp.SyscallFilter(defaction=refuse if allow_list else seccomp.ALLOW)
        for n in sorted(names):
            rule(flt, seccomp.ALLOW if allow_list else refuse, n)
        flt.load()

    try:
        os.execvp(command[0], command)
    except OSError as e:
        die(f"cannot run {command[0]}: {e}")


if __name__ == "__main__":
    main(sys.argv)
