#!/usr/bin/env bash
# Offline and edge nodes, on real parts: a private containerd with runc, the
# machine's journald and docker-registry on loopback.
#
# A connected node (state directory A) fetches signatures and writes a bundle
# with `portcullis bundle export`; the registry is then STOPPED, and an edge
# node (state directory B, the one containerd's shims use, enforce mode)
# imports the bundle and starts the signed images through the portcullis
# runtime. Also: unsigned and not-bundled images refused, a tampered bundle
# refused item by item with B intact, a relabelled bundle refused, re-import
# idempotent, a bundled trust root installed only when accepted by digest,
# and images plus signatures carried as an OCI layout through
# `ctr images import` and `portcullis bundle import --from-containerd`.
#
#   PC_WORK=/tmp/x PC_REGISTRY=127.0.0.1:5089 bash integration/offline.sh
#
# TAP-style output, "N passed, N failed", exit 1 if anything failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
export PC_WORK=${PC_WORK:-/tmp/portcullis-offline-it}
export PC_REGISTRY=${PC_REGISTRY:-127.0.0.1:5089}
export PC_NS=${PC_NS:-portcullis-offline}
# The edge node's state: what containerd's shims read.
export PORTCULLIS_STATE_DIR=$PC_WORK/state-b
export PORTCULLIS_POLICY=$PC_WORK/policy.toml
# shellcheck source=integration/env.sh
source "$HERE/env.sh"
# shellcheck source=integration/lib.sh
source "$HERE/lib.sh"
# shellcheck source=integration/images.sh
source "$HERE/images.sh"

PASS=0
FAIL=0
PC="$PC_BIN_DIR/portcullis"
SIGN="$PC_BIN_DIR/portcullis-testsign"
R=$PC_REGISTRY
KEYS=$PC_WORK/keys
A=$PC_WORK/state-a
B=$PORTCULLIS_STATE_DIR
RUNTIME=io.containerd.portcullis.v2
TRUST_FIXTURE=$PC_REPO_ROOT/tests/data/trust-roots/production/trusted_root.json
export CONTAINERD_ADDRESS=$PC_CONTAINERD_SOCK CONTAINERD_NAMESPACE=$PC_NS

finish() {
  echo "$PASS passed, $FAIL failed"
  ((FAIL == 0))
}
trap 'rc=$?; pc_exit_report $rc; pc_stop_all >/dev/null 2>&1; exit $rc' EXIT

# run IMAGE: start IMAGE through the portcullis runtime; sets OUT and RC.
run() {
  local id=off-$SRANDOM
  OUT=$(timeout 60 ctr --address "$PC_CONTAINERD_SOCK" -n "$PC_NS" run --rm \
    --runtime "$RUNTIME" "$1" "$id" /bin/true 2>&1)
  RC=$?
  pc_ctr containers rm "$id" >/dev/null 2>&1 || true
}
expect_run() {
  run "$2"
  if ((RC == 0)); then ok "$1"; else not_ok "$1" "ctr exited $RC: $OUT"; fi
}
expect_refusal() {
  run "$2"
  if ((RC != 0)) && grep -qF "portcullis: denied" <<<"$OUT" && grep -qF -- "$3" <<<"$OUT"; then
    ok "$1 ($3)"
  else
    not_ok "$1" "ctr exited $RC, expected a denial with '$3': $OUT"
  fi
}
entry_of() { printf '%s/cache/sha256/%s.json\n' "$1" "${2#sha256:}"; }
hash_tree() { find "$1" -type f -path '*/cache/*' -print0 2>/dev/null | sort -z | xargs -0r sha256sum; }

echo "# building the workspace"
(cd "$PC_REPO_ROOT" && cargo build --workspace --quiet) || exit 1
pc_start_registry || exit 1
pc_start_containerd || exit 1
mkdir -p "$KEYS" "$A" "$B"

"$SIGN" keygen --scheme ecdsa-p256 --private "$KEYS/release.key" --public "$KEYS/release.pub" >/dev/null
cat >"$PORTCULLIS_POLICY" <<EOF
mode = "enforce"
default = "deny"

[[rule]]
name = "edge"
images = ["$R/edge/*"]
[[rule.signer]]
key = "$KEYS/release.pub"
EOF

echo "# images: signed, unsigned, signed but not bundled, an index signed on its platform manifest, one for the OCI layout"
declare -A DIGEST
for spec in edge/signed:1 edge/unsigned:1 edge/notbundled:1 edge/layout:1; do
  DIGEST[$spec]=$(pc_push_image "$spec" "off-${spec//[:\/]/-}" | tail -n 1)
done
DIGEST[edge/multi:1]=$(pc_push_index edge/multi:1 off-multi | tail -n 1)
PLATFORM_MULTI=$(pc_platform_digest edge/multi:1)
for spec in edge/signed:1 edge/notbundled:1 edge/layout:1; do
  "$SIGN" sign --plain-http --key "$KEYS/release.key" "$R/$spec" >/dev/null
done
"$SIGN" sign --plain-http --key "$KEYS/release.key" --digest "$PLATFORM_MULTI" "$R/edge/multi:1" >/dev/null
for spec in edge/signed:1 edge/unsigned:1 edge/notbundled:1 edge/multi:1; do
  pc_pull "$spec" >/dev/null 2>&1 || not_ok "pull $spec"
done

echo "# the connected node: fetch into state A, export"
for spec in edge/signed:1 edge/multi:1; do
  "$PC" fetch --plain-http --state-dir "$A" "$R/$spec" >/dev/null 2>&1 || not_ok "fetch $spec into A"
done
"$PC" trust import --state-dir "$A" "$TRUST_FIXTURE" >/dev/null 2>&1 || not_ok "trust import into A"
BUNDLE=$PC_WORK/edge.bundle
if out=$("$PC" bundle export --json --state-dir "$A" -o "$BUNDLE" "$R/edge/signed:1" "$R/edge/multi:1" 2>"$PC_WORK/export.err") &&
  [[ $(jq '[.items[] | select(.kind == "cosign-signature")] | length' <<<"$out") == 2 ]] &&
  [[ $(jq '[.items[] | select(.kind == "image-index")] | length' <<<"$out") == 1 ]] &&
  [[ $(jq -r '.images[] | select(.reference | endswith("multi:1")) | .platform_digest' <<<"$out") == "$PLATFORM_MULTI" ]] &&
  [[ $(jq -r .sha256 <<<"$out") == "sha256:$(sha256sum "$BUNDLE" | cut -d' ' -f1)" ]]; then
  ok "bundle export: 2 signatures, the index tying the platform manifest, file digest reported"
else
  not_ok "bundle export" "$out" "$(cat "$PC_WORK/export.err")"
fi
if grep -q "collecting" "$PC_WORK/export.err"; then ok "export reports progress on stderr"; else not_ok "export progress on stderr" "$(cat "$PC_WORK/export.err")"; fi
if [[ $(tar -tf "$BUNDLE" | sed -n 1p) == manifest.json ]] && [[ $(tar -xOf "$BUNDLE" manifest.json | jq -r '.format + " " + (.version|tostring)') == "portcullis-offline-bundle 1" ]]; then
  ok "the bundle is a tar with manifest.json first (format portcullis-offline-bundle, version 1)"
else
  not_ok "bundle file format" "$(tar -tvf "$BUNDLE" 2>&1)"
fi
out=$("$PC" bundle export --state-dir "$A" -o "$PC_WORK/none.bundle" "$R/edge/unsigned:1" 2>&1)
rc=$?
if ((rc == 1)) && grep -q "nothing cached" <<<"$out" && [[ ! -e $PC_WORK/none.bundle ]]; then
  ok "export of an image with nothing cached: exit 1, no file, names the fetch to run"
else
  not_ok "export with nothing cached" "exit $rc" "$out"
fi
TRUSTED_BUNDLE=$PC_WORK/edge-trust.bundle
tout=$("$PC" bundle export --json --with-trust-root --state-dir "$A" -o "$TRUSTED_BUNDLE" "$R/edge/signed:1" 2>/dev/null)
ROOT_SHA=$(jq -r '.items[] | select(.kind == "trust-root") | .sha256' <<<"$tout")
if [[ $ROOT_SHA == "sha256:$(sha256sum "$TRUST_FIXTURE" | cut -d' ' -f1)" ]]; then
  ok "export --with-trust-root carries the node's trust root and reports its digest"
else
  not_ok "export --with-trust-root" "$tout"
fi

echo "# the OCI layout: the image and its .sig tag, written by skopeo"
LAYOUT=$PC_WORK/layout
layout_key=edge/layout:1
hex=${DIGEST[$layout_key]#sha256:}
if skopeo copy -q --src-tls-verify=false "docker://$R/edge/layout:1" "oci:$LAYOUT:1" &&
  skopeo copy -q --src-tls-verify=false "docker://$R/edge/layout:sha256-$hex.sig" "oci:$LAYOUT:sha256-$hex.sig" &&
  tar -C "$LAYOUT" -cf "$PC_WORK/layout.tar" .; then
  ok "skopeo wrote an OCI layout holding edge/layout:1 and its sha256-<hex>.sig"
else
  not_ok "OCI layout written"
fi

echo "# the edge node: no registry from here on"
pc_stop_registry || not_ok "stopping the registry"
if curl -s -o /dev/null --max-time 2 "http://$R/v2/"; then
  not_ok "registry is down" "http://$R/v2/ still answers"
else
  ok "registry stopped (http://$R/v2/ unreachable)"
fi

expect_refusal "before the import, state B holds nothing: signed image refused" "$R/edge/signed:1" "no signatures cached"
if out=$("$PC" bundle import --json "$BUNDLE" 2>"$PC_WORK/import.err") &&
  [[ $(jq .stored <<<"$out") == 2 && $(jq .refused <<<"$out") == 0 ]] &&
  [[ -s $(entry_of "$B" "${DIGEST[edge/signed:1]}") && -s $(entry_of "$B" "$PLATFORM_MULTI") ]]; then
  ok "bundle import into empty state B: 2 stored, 0 refused, index checked"
else
  not_ok "bundle import" "$out" "$(cat "$PC_WORK/import.err")"
fi
expect_run "signed image starts with the imported signature (enforce, no registry)" "$R/edge/signed:1"
expect_run "index image starts: the signature on its platform manifest, tied by the bundled index" "$R/edge/multi:1"
expect_refusal "unsigned image refused" "$R/edge/unsigned:1" "no signatures cached"
expect_refusal "a signed image not in the bundle is refused (a bundle for X does not start Y)" "$R/edge/notbundled:1" "no signatures cached"

before=$(hash_tree "$B")
out=$("$PC" bundle import --json "$BUNDLE" 2>/dev/null)
rc=$?
if ((rc == 0)) && [[ $(jq .stored <<<"$out") == 0 && $(jq .unchanged <<<"$out") == 2 ]] && [[ $(hash_tree "$B") == "$before" ]]; then
  ok "re-import is idempotent: 2 unchanged, cache files byte-identical"
else
  not_ok "re-import idempotent" "exit $rc" "$out"
fi

echo "# tampering"
TAMPERED=$PC_WORK/tampered.bundle
cp "$BUNDLE" "$TAMPERED"
off=$(grep -abo '"source":"' "$TAMPERED" | head -n 1 | cut -d: -f1)
orig=$(dd if="$TAMPERED" bs=1 skip=$((off + 10)) count=1 2>/dev/null)
flip=X
[[ $orig == X ]] && flip=Y
printf '%s' "$flip" | dd of="$TAMPERED" bs=1 seek=$((off + 10)) conv=notrunc 2>/dev/null
out=$("$PC" bundle import "$TAMPERED" 2>/dev/null)
rc=$?
if ((rc == 1)) && grep -qE '^refused +items/[0-9]+\.json: content hashes to .*altered after export' <<<"$out" &&
  grep -q "1 refused" <<<"$out" && [[ $(hash_tree "$B") == "$before" ]]; then
  ok "one byte flipped in an item: that item refused with its reason, exit 1, B unchanged"
else
  not_ok "tampered bundle" "exit $rc" "$out"
fi
expect_run "after the tampered import the signed image still starts" "$R/edge/signed:1"

# Consistent tampering: the signature altered AND the manifest's digest of
# the item updated, so only signature verification can catch it.
FORGED=$PC_WORK/forged.bundle
python3 - "$BUNDLE" "$FORGED" <<'PY' || not_ok "forging a bundle (python)"
import base64, hashlib, io, json, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
members = {}
with tarfile.open(src) as t:
    for m in t.getmembers():
        members[m.name] = t.extractfile(m).read()
man = json.loads(members["manifest.json"])
for item in man["items"]:
    if item["kind"] != "cosign-signature":
        continue
    art = json.loads(members[item["path"]])
    ann = art["layers"][0]["annotations"]
    sig = bytearray(base64.b64decode(ann["dev.cosignproject.cosign/signature"]))
    sig[-3] ^= 0x01
    ann["dev.cosignproject.cosign/signature"] = base64.b64encode(bytes(sig)).decode()
    data = json.dumps(art).encode()
    members[item["path"]] = data
    item["size"] = len(data)
    item["sha256"] = "sha256:" + hashlib.sha256(data).hexdigest()
members["manifest.json"] = json.dumps(man).encode()
with tarfile.open(dst, "w", format=tarfile.USTAR_FORMAT) as t:
    for name in ["manifest.json"] + [i["path"] for i in man["items"]]:
        info = tarfile.TarInfo(name)
        info.size = len(members[name])
        t.addfile(info, io.BytesIO(members[name]))
PY
C=$PC_WORK/state-c
out=$("$PC" bundle import --state-dir "$C" "$FORGED" 2>/dev/null)
rc=$?
if ((rc == 1)) && [[ $(grep -c '^refused ' <<<"$out") -ge 2 ]] && grep -q 'rule "edge"' <<<"$out" &&
  [[ -z $(hash_tree "$C") ]]; then
  ok "signatures altered with the manifest digests rewritten: refused by signature verification, nothing stored"
else
  not_ok "forged signatures refused" "exit $rc" "$out" "$(hash_tree "$C")"
fi

# Relabelled: edge/signed's signature presented as edge/notbundled's.
RELABEL=$PC_WORK/relabel.bundle
python3 - "$BUNDLE" "$RELABEL" "${DIGEST[edge/signed:1]}" "${DIGEST[edge/notbundled:1]}" "$R" <<'PY' || not_ok "relabelling a bundle (python)"
import io, json, sys, tarfile
src, dst, old, new, reg = sys.argv[1:6]
members = {}
with tarfile.open(src) as t:
    for m in t.getmembers():
        members[m.name] = t.extractfile(m).read()
man = json.loads(members["manifest.json"])
for img in man["images"]:
    if img["digest"] == old:
        img["digest"] = new
        img["reference"] = reg + "/edge/notbundled:1"
for item in man["items"]:
    if item.get("subject") == old:
        item["subject"] = new
        item["image"] = reg + "/edge/notbundled:1"
members["manifest.json"] = json.dumps(man).encode()
with tarfile.open(dst, "w", format=tarfile.USTAR_FORMAT) as t:
    for name in ["manifest.json"] + [i["path"] for i in man["items"]]:
        info = tarfile.TarInfo(name)
        info.size = len(members[name])
        t.addfile(info, io.BytesIO(members[name]))
PY
out=$("$PC" bundle import "$RELABEL" 2>/dev/null)
rc=$?
if ((rc == 1)) && grep -q "^refused .*never counts" <<<"$out" && [[ ! -e $(entry_of "$B" "${DIGEST[edge/notbundled:1]}") ]]; then
  ok "X's signature relabelled as Y's: refused (the signature names X), nothing filed under Y"
else
  not_ok "relabelled bundle refused" "exit $rc" "$out"
fi
expect_refusal "and Y still does not start" "$R/edge/notbundled:1" "no signatures cached"

echo "# trust root"
D=$PC_WORK/state-d
ROOT_FILE=$D/trust/trusted_root.json
out=$("$PC" bundle import --state-dir "$D" "$TRUSTED_BUNDLE" 2>/dev/null)
rc=$?
if ((rc == 0)) && grep -q "^skipped .*--accept-trust-root $ROOT_SHA" <<<"$out" && [[ ! -e $ROOT_FILE ]]; then
  ok "a bundled trust root is not installed without --accept-trust-root (signatures still imported)"
else
  not_ok "bundled trust root skipped" "exit $rc" "$out"
fi
out=$("$PC" bundle import --state-dir "$PC_WORK/state-e" --accept-trust-root "sha256:$(printf '0%.0s' {1..64})" "$TRUSTED_BUNDLE" 2>&1)
rc=$?
if ((rc != 0)) && grep -q "no trust root with that digest" <<<"$out" && [[ -z $(hash_tree "$PC_WORK/state-e") && ! -e $PC_WORK/state-e/trust ]]; then
  ok "--accept-trust-root with another digest: refused, nothing imported"
else
  not_ok "--accept-trust-root wrong digest" "exit $rc" "$out"
fi
out=$("$PC" bundle import --state-dir "$D" --accept-trust-root "$ROOT_SHA" "$TRUSTED_BUNDLE" 2>/dev/null)
rc=$?
if ((rc == 0)) && cmp -s "$ROOT_FILE" "$TRUST_FIXTURE" && "$PC" trust show --state-dir "$D" >/dev/null 2>&1; then
  ok "--accept-trust-root DIGEST installs the bundled root (trust show reads it)"
else
  not_ok "--accept-trust-root installs" "exit $rc" "$out"
fi

echo "# OCI layout through ctr images import (no registry)"
if grep -q "^$R/edge/layout" <<<"$(pc_ctr images ls -q)"; then not_ok "edge/layout is not in containerd before the import"; else ok "edge/layout is not in containerd before the import"; fi
# (No `ctr … ls | grep -q` under pipefail: grep exits at the first match and
# ctr, still writing a line per image, dies of SIGPIPE.)
if out=$(pc_ctr images import --no-unpack --base-name "$R/edge/layout" "$PC_WORK/layout.tar" 2>&1) &&
  grep -qx "$R/edge/layout:sha256-$hex.sig" <<<"$(pc_ctr images ls -q)"; then
  ok "ctr images import of the layout: the image and its signature image are in containerd"
else
  not_ok "ctr images import" "$out" "images: $(pc_ctr images ls -q | tr '\n' ' ')"
fi
expect_refusal "imported image without its signatures in the cache: refused" "$R/edge/layout:1" "no signatures cached"
if out=$("$PC" bundle import --json --from-containerd "$R/edge/layout:1" 2>/dev/null) &&
  [[ $(jq .stored <<<"$out") == 1 && $(jq .refused <<<"$out") == 0 ]]; then
  ok "bundle import --from-containerd: the signature verified and cached from the content store"
else
  not_ok "bundle import --from-containerd" "$out"
fi
expect_run "the layout's image starts through the portcullis runtime" "$R/edge/layout:1"
out=$("$PC" bundle import --from-containerd "$R/edge/unsigned:1" 2>&1)
rc=$?
if ((rc != 0)) && grep -q "holds no signature images" <<<"$out"; then
  ok "--from-containerd for an image without signature images: refused with the ctr command to run"
else
  not_ok "--from-containerd without signatures" "exit $rc" "$out"
fi

finish
