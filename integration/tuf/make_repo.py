#!/usr/bin/env python3
"""Build and change a small local TUF repository, for the `trust update` tests.

The repository is made with python-tuf's Metadata API (an implementation
independent of Portcullis and of sigstore-rust): one ed25519 key per top-level
role, consistent snapshots (as Sigstore's repositories use), and one target,
`trusted_root.json`. DIR holds:

    keys/<role>.pem                 the private keys (PKCS#8 PEM)
    root.json                       the root to pin (`trust update --root`)
    www/                            what the test serves over HTTP:
      1.root.json  N.snapshot.json  N.targets.json  timestamp.json
      targets/<sha256>.trusted_root.json
    history/timestamp.N.json        every timestamp ever signed
    state.json                      the current versions

Commands:

    init DIR --target FILE          a new repository, every role at version 1
    publish DIR --target FILE       a new target: targets, snapshot and
                                    timestamp each one version up
    timestamp DIR [--expired] [--snapshot-version N]
                                    sign a new timestamp (one version up),
                                    already expired, or pinning an older
                                    snapshot (a rollback attack)
    serve-timestamp DIR N           serve timestamp version N again (an older
                                    one is a rollback attack)

Serve DIR/www with `python3 -m http.server --bind 127.0.0.1 PORT --directory DIR/www`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import (
    MetaFile,
    Metadata,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

ROLES = ("root", "targets", "snapshot", "timestamp")
TARGET = "trusted_root.json"
SERIALIZER = JSONSerializer(compact=False)


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def signer(d: Path, role: str) -> CryptoSigner:
    pem = (d / "keys" / f"{role}.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    return CryptoSigner(key, SSlibKey.from_crypto(key.public_key()))


def write(md: Metadata, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    md.to_file(str(path), SERIALIZER)


def load_state(d: Path) -> dict:
    return json.loads((d / "state.json").read_text())


def save_state(d: Path, state: dict) -> None:
    (d / "state.json").write_text(json.dumps(state, indent=1) + "\n")


def sign_targets(d: Path, version: int, target: bytes) -> None:
    tf = TargetFile.from_data(TARGET, target, ["sha256"])
    sha = tf.hashes["sha256"]
    (d / "www" / "targets").mkdir(parents=True, exist_ok=True)
    (d / "www" / "targets" / f"{sha}.{TARGET}").write_bytes(target)
    md = Metadata(
        Targets(version=version, expires=now() + timedelta(days=7), targets={TARGET: tf})
    )
    md.sign(signer(d, "targets"))
    write(md, d / "www" / f"{version}.targets.json")


def sign_snapshot(d: Path, version: int, targets_version: int) -> None:
    md = Metadata(
        Snapshot(
            version=version,
            expires=now() + timedelta(days=7),
            meta={"targets.json": MetaFile(version=targets_version)},
        )
    )
    md.sign(signer(d, "snapshot"))
    write(md, d / "www" / f"{version}.snapshot.json")


def sign_timestamp(d: Path, version: int, snapshot_version: int, expired: bool) -> None:
    expires = now() - timedelta(hours=1) if expired else now() + timedelta(days=1)
    md = Metadata(
        Timestamp(
            version=version,
            expires=expires,
            snapshot_meta=MetaFile(version=snapshot_version),
        )
    )
    md.sign(signer(d, "timestamp"))
    write(md, d / "history" / f"timestamp.{version}.json")
    shutil.copyfile(d / "history" / f"timestamp.{version}.json", d / "www" / "timestamp.json")


def init(d: Path, target: bytes) -> None:
    if (d / "state.json").exists():
        sys.exit(f"{d} already holds a repository")
    (d / "keys").mkdir(parents=True, exist_ok=True)
    root = Root(expires=now() + timedelta(days=365), consistent_snapshot=True)
    for role in ROLES:
        key = Ed25519PrivateKey.generate()
        (d / "keys" / f"{role}.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        root.add_key(SSlibKey.from_crypto(key.public_key()), role)
    md = Metadata(root)
    md.sign(signer(d, "root"))
    write(md, d / "www" / "1.root.json")
    shutil.copyfile(d / "www" / "1.root.json", d / "root.json")
    sign_targets(d, 1, target)
    sign_snapshot(d, 1, 1)
    sign_timestamp(d, 1, 1, expired=False)
    save_state(d, {"targets": 1, "snapshot": 1, "timestamp": 1})


def publish(d: Path, target: bytes) -> None:
    s = load_state(d)
    s["targets"] += 1
    s["snapshot"] += 1
    s["timestamp"] += 1
    sign_targets(d, s["targets"], target)
    sign_snapshot(d, s["snapshot"], s["targets"])
    sign_timestamp(d, s["timestamp"], s["snapshot"], expired=False)
    save_state(d, s)


def timestamp(d: Path, expired: bool, snapshot_version: int | None) -> None:
    s = load_state(d)
    s["timestamp"] += 1
    sign_timestamp(d, s["timestamp"], snapshot_version or s["snapshot"], expired)
    save_state(d, s)


def serve_timestamp(d: Path, version: int) -> None:
    src = d / "history" / f"timestamp.{version}.json"
    if not src.exists():
        sys.exit(f"no timestamp version {version} in {d / 'history'}")
    shutil.copyfile(src, d / "www" / "timestamp.json")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Build and change a local TUF repository (test tool).")
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("init", "publish"):
        c = sub.add_parser(name)
        c.add_argument("dir", type=Path)
        c.add_argument("--target", required=True, type=Path, help=f"the new {TARGET}")
    c = sub.add_parser("timestamp")
    c.add_argument("dir", type=Path)
    c.add_argument("--expired", action="store_true", help="expired an hour ago")
    c.add_argument("--snapshot-version", type=int, help="pin this snapshot version")
    c = sub.add_parser("serve-timestamp")
    c.add_argument("dir", type=Path)
    c.add_argument("version", type=int)
    a = p.parse_args(argv)
    if a.command == "init":
        init(a.dir, a.target.read_bytes())
    elif a.command == "publish":
        publish(a.dir, a.target.read_bytes())
    elif a.command == "timestamp":
        timestamp(a.dir, a.expired, a.snapshot_version)
    else:
        serve_timestamp(a.dir, a.version)


if __name__ == "__main__":
    main()
