#!/usr/bin/env python3
"""Crafts hostile material for integration/adversarial.sh.

Every mutation rewrites one cache entry (STATE/cache/sha256/<hex>.json) the
way an attacker who controls the registry (or fetch's input) could make it
look: the entry stays well-formed where the attack needs it to (each blob's
descriptor digest is recomputed, so only the parser under test can refuse
it), and signatures are genuinely made with the key given where the attack
is "a trusted key signed something malformed".

    craft.py mutate ENTRY MUTATION [--key PEM] [--other-digest sha256:HEX]
    craft.py dsse --key PEM --payload-file F --payload-type T --out F [--bare]

Mutations are listed in MUTATIONS below; each names the artifact kind it
changes. Keys are PEM PKCS#8 ECDSA P-256 (as portcullis-testsign makes).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

SIG_ANN = "dev.cosignproject.cosign/signature"
IN_TOTO = "application/vnd.in-toto+json"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sign(key_path: str, data: bytes) -> str:
    key = load_pem_private_key(Path(key_path).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SystemExit("craft.py: only ECDSA keys are supported")
    return b64(key.sign(data, ec.ECDSA(hashes.SHA256())))


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def dsse_envelope(key: str, payload: bytes, payload_type: str, bare: bool = False) -> bytes:
    sig = sign(key, payload if bare else pae(payload_type, payload))
    return json.dumps(
        {"payloadType": payload_type, "payload": b64(payload), "signatures": [{"keyid": "", "sig": sig}]}
    ).encode()


def layer_of(entry: dict, kind: str) -> dict:
    for a in entry["artifacts"]:
        if a["kind"] == kind and a["layers"]:
            return a["layers"][0]
    raise SystemExit(f"craft.py: the entry has no {kind} layer")


def set_blob(layer: dict, blob: bytes) -> None:
    layer["data"] = b64(blob)
    layer["digest"] = "sha256:" + hashlib.sha256(blob).hexdigest()


def blob_of(layer: dict) -> bytes:
    return base64.b64decode(layer["data"])


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- simple-signing payload helpers (cosign-signature layers) ------------


def resign_payload(layer: dict, key: str, text: str) -> None:
    blob = text.encode()
    set_blob(layer, blob)
    layer["annotations"][SIG_ANN] = sign(key, blob)


def payload_dict(layer: dict) -> dict:
    return json.loads(blob_of(layer))


def mutate(entry: dict, how: str, key: str | None, other: str | None) -> dict | bytes:
    sig = lambda: layer_of(entry, "cosign-signature")  # noqa: E731
    att = lambda: layer_of(entry, "cosign-attestation")  # noqa: E731
    bun = lambda: layer_of(entry, "sigstore-bundle")  # noqa: E731
    need_key = lambda: key or sys.exit(f"craft.py: {how} needs --key")  # noqa: E731

    if how == "sig-truncated":
        l = sig()
        l["annotations"][SIG_ANN] = l["annotations"][SIG_ANN][:40]
    elif how == "sig-oversized":
        sig()["annotations"][SIG_ANN] = "A" * 8192
    elif how == "sig-bad-base64":
        sig()["annotations"][SIG_ANN] = "!!not*base64!!"
    elif how == "sig-missing":
        del sig()["annotations"][SIG_ANN]
    elif how == "payload-truncated":
        l = sig()
        b = blob_of(l)
        set_blob(l, b[: len(b) // 2])
    elif how == "payload-oversized":
        # Valid JSON padded with whitespace past the 256 KiB limit, signed.
        l = sig()
        resign_payload(l, need_key(), blob_of(l).decode() + " " * (300 * 1024))
    elif how == "payload-duplicate-digest":
        # A second docker-manifest-digest naming another image, signed by the
        # trusted key: a lenient parser would take the last one.
        l = sig()
        text = blob_of(l).decode()
        real = payload_dict(l)["critical"]["image"]["docker-manifest-digest"]
        dup = f'"docker-manifest-digest":"{real}","docker-manifest-digest":"{other}"'
        text = json.dumps(payload_dict(l), separators=(",", ":")).replace(
            f'"docker-manifest-digest":"{real}"', dup
        )
        resign_payload(l, need_key(), text)
    elif how == "payload-deep-nesting":
        l = sig()
        p = payload_dict(l)
        text = json.dumps(p, separators=(",", ":"))[:-1] + ',"optional":' + nested(100000) + "}"
        # The optional object is replaced by a deeply nested array.
        resign_payload(l, need_key(), text)
    elif how == "payload-wrong-type":
        l = sig()
        p = payload_dict(l)
        p["critical"]["type"] = "cosign container image attestation"
        resign_payload(l, need_key(), json.dumps(p))
    elif how == "payload-unknown-critical":
        l = sig()
        p = payload_dict(l)
        p["critical"]["override"] = {"allow": True}
        resign_payload(l, need_key(), json.dumps(p))
    elif how == "payload-other-digest":
        # A trusted key's genuine signature over a payload naming another image.
        l = sig()
        p = payload_dict(l)
        p["critical"]["image"]["docker-manifest-digest"] = other
        resign_payload(l, need_key(), json.dumps(p))
    elif how == "blob-digest-mismatch":
        # The blob is replaced, its descriptor digest kept.
        l = sig()
        l["data"] = b64(blob_of(l).replace(b"cosign", b"COSIGN"))
    elif how == "envelope-truncated":
        l = att()
        b = blob_of(l)
        set_blob(l, b[: len(b) // 2])
    elif how == "envelope-oversized":
        l = att()
        env = json.loads(blob_of(l))
        env["padding"] = None
        text = json.dumps(env)[:-1] + " " * (3 * 1024 * 1024) + "}"
        set_blob(l, text.encode())
    elif how == "envelope-bad-base64":
        l = att()
        env = json.loads(blob_of(l))
        env["payload"] = "%%%" + env["payload"]
        set_blob(l, json.dumps(env).encode())
    elif how == "envelope-duplicate-payload":
        l = att()
        env = json.loads(blob_of(l))
        text = json.dumps(env)
        evil = b64(b'{"_type":"https://in-toto.io/Statement/v1"}')
        text = text.replace('"payload": ', f'"payload": "{evil}", "payload": ', 1)
        set_blob(l, text.encode())
    elif how == "envelope-deep-nesting":
        l = att()
        env = json.loads(blob_of(l))
        text = json.dumps(env)[:-1] + ', "x": ' + nested(100000) + "}"
        set_blob(l, text.encode())
    elif how == "bundle-truncated":
        l = bun()
        b = blob_of(l)
        set_blob(l, b[: len(b) // 2])
    elif how == "bundle-oversized":
        l = bun()
        text = blob_of(l).decode()
        set_blob(l, (text[:-1] + " " * (9 * 1024 * 1024) + "}").encode())
    elif how == "bundle-duplicate-key":
        l = bun()
        b = json.loads(blob_of(l))
        text = json.dumps(b)
        text = text.replace('"mediaType": ', '"mediaType": "application/x-evil", "mediaType": ', 1)
        set_blob(l, text.encode())
    elif how == "bundle-deep-nesting":
        l = bun()
        text = json.dumps(json.loads(blob_of(l)))
        set_blob(l, (text[:-1] + ', "x": ' + nested(100000) + "}").encode())
    elif how == "entry-duplicate-subject":
        text = json.dumps(entry)
        return text.replace('"subject": ', f'"subject": "{other}", "subject": ', 1).encode()
    elif how == "entry-deep-nesting":
        text = json.dumps(entry)
        return (text[:-1] + ', "x": ' + nested(100000) + "}").encode()
    elif how == "entry-format-2":
        entry["format"] = 2
    elif how == "entry-unknown-field":
        entry["trusted"] = True
    else:
        raise SystemExit(f"craft.py: unknown mutation {how}")
    return entry


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mutate")
    m.add_argument("entry", type=Path)
    m.add_argument("mutation")
    m.add_argument("--key")
    m.add_argument("--other-digest")
    d = sub.add_parser("dsse")
    d.add_argument("--key", required=True)
    d.add_argument("--payload-file", required=True, type=Path)
    d.add_argument("--payload-type", default=IN_TOTO)
    d.add_argument("--bare", action="store_true", help="sign the bare payload, not PAE")
    d.add_argument("--out", required=True, type=Path)
    a = p.parse_args()
    if a.cmd == "dsse":
        a.out.write_bytes(dsse_envelope(a.key, a.payload_file.read_bytes(), a.payload_type, a.bare))
        return 0
    entry = json.loads(a.entry.read_bytes())
    out = mutate(entry, a.mutation, a.key, a.other_digest)
    data = out if isinstance(out, bytes) else json.dumps(out).encode()
    tmp = a.entry.with_name(".craft-" + a.entry.name)
    tmp.write_bytes(data)
    tmp.replace(a.entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
