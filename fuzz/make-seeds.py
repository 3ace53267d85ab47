#!/usr/bin/env python3
"""Regenerate fuzz/seeds/<target>/ from the repository's fixtures and
tests/data. The seeds are committed; run this only to refresh them.

    python3 fuzz/make-seeds.py      (from the repository root or fuzz/)
"""
import base64
import hashlib
import json
import os
import re
import shutil

FUZZ = os.path.dirname(os.path.abspath(__file__))
MAIN = os.path.dirname(FUZZ)
SHARED = os.path.join(MAIN, "tests", "data")
SEEDS = os.path.join(FUZZ, "seeds")
BV = os.path.join(SHARED, "sigstore-conformance", "test", "assets", "bundle-verify")
PROV = os.path.join(MAIN, "tests", "fixtures", "provenance")
VECTORS = os.path.join(SHARED, "in-toto-vectors", "vectors")

DIGEST = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
HEX = DIGEST.split(":")[1]


def put(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------- policy
README = read(os.path.join(MAIN, "README.md")).decode()
for i, block in enumerate(re.findall(r"```toml\n(.*?)```", README, re.S)):
    put("policy", f"readme-{i}.toml", block)
put("policy", "full.toml", """version = 1
mode = "warn"
default = "allow"
shim = "/usr/bin/containerd-shim-runc-v2"

[[rule]]
name = "apps"
images = ["registry.example.com/apps/**", "docker.io/library/nginx"]
mode = "enforce"

[[rule.signer]]
key = "keys/release.pub"

[[rule.signer]]
issuer_regex = "^https://token\\\\.actions\\\\.githubusercontent\\\\.com$"
subject = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1"
[rule.signer.extensions]
github_workflow_repository = "acme/app"

[rule.provenance]
builder_ids = ["https://builder.example/slsa/v1"]
source_uris = ["git+https://git.example/acme/*"]
source_refs = ["refs/tags/v*"]
max_age = "90d"

[[rule.provenance.signer]]
key = "/etc/portcullis/keys/builder.pub"

[[rule]]
name = "shadowed"
images = ["registry.example.com/apps/web:*"]
action = "allow"
""")
put("policy", "empty.toml", "")
put("policy", "bad-unknown-key.toml", 'mode = "enforce"\nfrobnicate = 1\n[[rule]]\nname = "x"\nimages = ["nginx"]\n')
put("policy", "bad-syntax.toml", '[[rule]\nname = "x\nimages = [\n')
put("policy", "bad-types.toml", 'version = 2\nmode = 3\ndefault = "maybe"\n[[rule]]\nname = ""\nimages = []\n[[rule.signer]]\nkey = ""\nissuer = "x"\n[rule.provenance]\nmax_age = "-1y"\n')
put("policy", "multibyte.toml", '[[rule]]\nname = "\u00e9\u00e9\u4e2d"\nimages = ["reg\u00e9.example/\u4e2d*"]\naction = "deny"\n')

# -------------------------------------------------------- simple_signing
def payload(digest, ref="registry.example.com/apps/web", optional=None, kind="cosign container image signature"):
    o = {"critical": {"identity": {"docker-reference": ref},
                      "image": {"docker-manifest-digest": digest},
                      "type": kind}}
    if optional is not False:
        o["optional"] = optional
    return json.dumps(o, separators=(",", ":"))

put("simple_signing", "valid.json", payload(DIGEST))
put("simple_signing", "valid-optional.json", payload(DIGEST, optional={"creator": "cosign", "timestamp": 1689177396}))
put("simple_signing", "valid-no-optional.json", payload(DIGEST, optional=False))
put("simple_signing", "bad-digest.json", payload("sha256:ABC"))
put("simple_signing", "bad-type.json", payload(DIGEST, kind="atomic container signature"))
put("simple_signing", "duplicate-key.json",
    '{"critical":{"identity":{"docker-reference":"a"},"image":{"docker-manifest-digest":"%s","docker-manifest-digest":"%s"},"type":"cosign container image signature"}}' % (DIGEST, DIGEST))
put("simple_signing", "signature.b64", "MEQCIFOpaXKWvvBDwThDjTHX7tFF8liRoSxLZIsSeoUM/6D4AiBxV9/RnTMMw1t6nniX0rAAAAAAAAAAAAAAAAAAAAAAAAAA")
put("simple_signing", "signature-bad.b64", "MEQ=CIF==\n")

# ------------------------------------------------------------------ dsse
for f in sorted(os.listdir(PROV)):
    if f.startswith("dsse-") and f.endswith(".json"):
        put("dsse", f, read(os.path.join(PROV, f)))
env = json.loads(read(os.path.join(PROV, "dsse-ed25519.json")))
e2 = dict(env); e2["payloadType"] = "text/plain"
put("dsse", "bad-payload-type.json", json.dumps(e2))
e3 = dict(env); e3["signatures"] = []
put("dsse", "no-signatures.json", json.dumps(e3))
e4 = dict(env); e4["signatures"] = [{"keyid": "", "sig": "_-_-"}, {"sig": "AA"}]
put("dsse", "urlsafe-sigs.json", json.dumps(e4))
put("dsse", "sigstore-dsse.json", json.dumps(json.loads(read(os.path.join(BV, "happy-path-intoto-in-dsse-v3", "bundle.sigstore.json")))["dsseEnvelope"]))

# ------------------------------------------------------------- statement
for f in sorted(os.listdir(PROV)):
    if f.endswith(".json") and not f.startswith("dsse-"):
        data = read(os.path.join(PROV, f))
        put("statement", f, data)
        # the same statement about the fuzz target's fixed digest
        s = json.loads(data)
        if isinstance(s.get("subject"), list) and s["subject"]:
            s["subject"][0]["digest"] = {"sha256": HEX}
            put("statement", "fixed-digest-" + f, json.dumps(s, indent=1))
for f in sorted(os.listdir(VECTORS)):
    if f.startswith("statement-") or f.startswith("slsa-"):
        put("statement", "vector-" + f, read(os.path.join(VECTORS, f)))
put("statement", "duplicate-key.json", '{"_type":"https://in-toto.io/Statement/v1","_type":"x","subject":[],"predicateType":"p","predicate":{}}')

# ---------------------------------------------------------------- bundle
BUNDLES = ["happy-path-v0.1", "happy-path-v0.2", "happy-path-v0.3", "happy-path-intoto-in-dsse-v3",
           "rekor2-happy-path", "rekor2-timestamp-with-embedded-cert", "managed-key-happy-path",
           "bundle-negative-log-index_fail", "bundle-invalid-base64-signature_fail",
           "dsse-mismatch-sig_fail", "checkpoint-wrong-roothash_fail"]
for name in BUNDLES:
    p = os.path.join(BV, name, "bundle.sigstore.json")
    if os.path.exists(p):
        put("bundle", name + ".json", read(p))


def pem(der_b64):
    lines = [der_b64[i:i + 64] for i in range(0, len(der_b64), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


# A legacy cosign layer (payload NUL signature NUL certificate NUL chain NUL
# Rekor bundle) built from a hashedrekord bundle: signs a.txt, so the
# converted bundle verifies for those bytes.
b = json.loads(read(os.path.join(BV, "happy-path-v0.1", "bundle.sigstore.json")))
vm = b["verificationMaterial"]
certs = vm["x509CertificateChain"]["certificates"]
t = vm["tlogEntries"][0]
rekor = {"SignedEntryTimestamp": t["inclusionPromise"]["signedEntryTimestamp"],
         "Payload": {"body": t["canonicalizedBody"], "integratedTime": int(t["integratedTime"]),
                     "logIndex": int(t["logIndex"]), "logID": base64.b64decode(t["logId"]["keyId"]).hex()}}
artifact = read(os.path.join(BV, "a.txt"))
assert "sha256:" + hashlib.sha256(artifact).hexdigest() == DIGEST
chain = "".join(pem(c["rawBytes"]) for c in certs[1:])
legacy = [artifact, b["messageSignature"]["signature"].encode(), pem(certs[0]["rawBytes"]).encode(),
          chain.encode(), json.dumps(rekor).encode()]
put("bundle", "legacy-keyless.bin", b"\0".join(legacy))
put("bundle", "legacy-no-chain.bin", b"\0".join(legacy[:3] + [b""] + legacy[4:]))
put("bundle", "legacy-key-only.bin", b"\0".join([legacy[0], legacy[1], b"", b"", legacy[4]]))
put("bundle", "legacy-no-rekor.bin", b"\0".join(legacy[:3]))
put("bundle", "legacy-simple-signing.bin", b"\0".join([payload(DIGEST).encode()] + legacy[1:]))
put("bundle", "empty.json", "{}")

# ----------------------------------------------------------- cache_entry
def layer(media_type, blob, annotations=None):
    return {"media_type": media_type, "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
            "annotations": annotations or {}, "data": base64.b64encode(blob).decode()}

sig_payload = payload(DIGEST).encode()
entry = {"format": 1, "subject": DIGEST, "repository": "registry.example.com/apps/web",
         "fetched_at": "2026-11-25T00:00:00Z",
         "artifacts": [
             {"kind": "cosign-signature", "source": "registry.example.com/apps/web:sha256-%s.sig" % HEX,
              "manifest_digest": "sha256:" + hashlib.sha256(b"m").hexdigest(),
              "layers": [layer("application/vnd.dev.cosign.simplesigning.v1+json", sig_payload,
                               {"dev.cosignproject.cosign/signature": "MEQCIA=="})]},
             {"kind": "cosign-attestation", "source": "registry.example.com/apps/web:sha256-%s.att" % HEX,
              "manifest_digest": "sha256:" + hashlib.sha256(b"a").hexdigest(),
              "layers": [layer("application/vnd.dsse.envelope.v1+json", read(os.path.join(PROV, "dsse-ed25519.json")))]},
             {"kind": "sigstore-bundle", "source": "registry.example.com/apps/web@sha256:" + "1" * 64,
              "manifest_digest": "sha256:" + "1" * 64, "layers": []}]}
put("cache_entry", "valid.json", json.dumps(entry))
put("cache_entry", "valid-empty.json", json.dumps(dict(entry, artifacts=[])))
put("cache_entry", "other-subject.json", json.dumps(dict(entry, subject="sha256:" + "0" * 64)))
put("cache_entry", "bad-format.json", json.dumps(dict(entry, format=2)))
bad = json.loads(json.dumps(entry)); bad["artifacts"][0]["layers"][0]["data"] = "bm90IGl0"
put("cache_entry", "bad-layer-digest.json", json.dumps(bad))
bad = json.loads(json.dumps(entry)); bad["artifacts"][0]["layers"][0]["data"] = "!!"
put("cache_entry", "bad-layer-base64.json", json.dumps(bad))
put("cache_entry", "unknown-field.json", json.dumps(dict(entry, extra=True)))

# ------------------------------------------------------------- reference
for i, r in enumerate([
        "busybox", "library/busybox:1.36", "docker.io/library/busybox:latest",
        "index.docker.io/acme/app", "localhost/app", "localhost:5000/a/b/c:v1.2",
        "127.0.0.1:5000/demo/app@" + DIGEST, "registry.example.com/apps/web:1@" + DIGEST,
        "ghcr.io/acme/app__x.y-z/w---v:_tag", "gcr.io/p/a@sha512:" + "ab" * 64,
        "Busybox", "a/b:", "a@sha256:12", ":tag", "host:port/app", "a..b/c", "x" * 300]):
    put("reference", f"ref-{i:02}", r)
