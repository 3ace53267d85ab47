#!/usr/bin/env python3
"""Push one layer as cosign's legacy attestation image, through the registry
HTTP API: REGISTRY REPO TAG ENVELOPE.json ANNOTATIONS.json.

The image is what cosign's classic `attest` pushes at `sha256-<hex>.att`: an
OCI image manifest with an empty JSON config and one layer of media type
application/vnd.dsse.envelope.v1+json (the envelope bytes unchanged) carrying
the given annotations (see legacy-att.sh). Replaces the tag.
"""
import hashlib
import json
import sys
import urllib.error
import urllib.request


def call(method, url, data=None, headers=None):
    r = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def push_blob(reg, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    st, h, body = call("POST", f"http://{reg}/v2/{repo}/blobs/uploads/")
    if st != 202:
        sys.exit(f"push-legacy-att: starting an upload: HTTP {st} {body[:200]!r}")
    loc = h["Location"]
    if not loc.startswith("http"):
        loc = f"http://{reg}{loc}"
    sep = "&" if "?" in loc else "?"
    st, _, body = call("PUT", f"{loc}{sep}digest={digest}", data,
                       {"Content-Type": "application/octet-stream"})
    if st != 201:
        sys.exit(f"push-legacy-att: uploading {digest}: HTTP {st} {body[:200]!r}")
    return digest


def main():
    reg, repo, tag, envelope_path, annotations_path = sys.argv[1:6]
    with open(envelope_path, "rb") as f:
        envelope = f.read()
    with open(annotations_path, encoding="utf-8") as f:
        annotations = json.load(f)
    config = b"{}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "size": len(config), "digest": push_blob(reg, repo, config)},
        "layers": [{"mediaType": "application/vnd.dsse.envelope.v1+json",
                    "size": len(envelope), "digest": push_blob(reg, repo, envelope),
                    "annotations": annotations}],
    }
    body = json.dumps(manifest).encode()
    st, _, resp = call("PUT", f"http://{reg}/v2/{repo}/manifests/{tag}", body,
                       {"Content-Type": manifest["mediaType"]})
    if st != 201:
        sys.exit(f"push-legacy-att: manifest: HTTP {st} {resp[:300]!r}")
    print(f"pushed {reg}/{repo}:{tag}")


if __name__ == "__main__":
    main()
