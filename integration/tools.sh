#!/usr/bin/env bash
# Installs the pinned Go-built components the integration suites run for real
# (never linked into Portcullis, which stays Rust): containerd 2.x beside
# Debian's 1.6, crictl (CRI client), crane and registry, cosign, nerdctl.
#
#   bash integration/tools.sh          # PC_TOOLS (default /opt/portcullis-tools)
#
# Layout:
#   $PC_TOOLS/containerd-vX.Y.Z/{containerd,containerd-shim-runc-v2,ctr}
#   $PC_TOOLS/bin/{crictl,crane,registry,cosign,nerdctl}
#   $PC_TOOLS/.stamps/<name>  "MODULE@VERSION" of what is installed
#
# A tool already installed at its pinned version is skipped (its stamp, or
# `go version -m` of the binary, says which version it is). Go's build cache
# (~/.cache/go-build) keeps a re-install after a version bump fast.
set -euo pipefail

PC_TOOLS=${PC_TOOLS:-/opt/portcullis-tools}

# containerd: v2.4.2 is the newest the Go module proxy serves (its shim start
# takes bootstrap parameters on stdin); v2.2.9 is the newest 2.2, whose shim
# start prints JSON version 3 output.
CONTAINERD_VERSIONS=(v2.4.2 v2.2.9)
CRI_TOOLS_VERSION=v1.37.0
GGCR_VERSION=v0.22.1
# The newest cosign v3 the proxy serves (go list -m -versions github.com/sigstore/cosign/v3).
COSIGN_VERSION=v3.1.3
# nerdctl: the proxy refuses nerdctl's version list (so `go install …@v` fails
# on its deprecation check) and v2's test-only module mod/tigron; v1.7.7 is
# built from a one-line module that requires it (same versions as go install).
NERDCTL_VERSION=v1.7.7

say() { printf 'tools: %s\n' "$*"; }
die() {
  printf 'tools: error: %s\n' "$*" >&2
  exit 1
}

if ! command -v go >/dev/null; then
  for g in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    [[ -x $g ]] && PATH=$(dirname "$g"):$PATH && break
  done
fi
command -v go >/dev/null ||
  die "Go not found; install Go >= 1.26.6 from the tarball at https://go.dev/dl/ (Debian 12's golang-go, 1.19, and bookworm-backports', 1.23, are too old) and put it on PATH: it is needed only to build containerd 2.x, crictl, crane/registry, cosign and nerdctl at pinned versions"

mkdir -p "$PC_TOOLS/bin" "$PC_TOOLS/.stamps"

# installed NAME DIR MODULE VERSION BINARIES...: true when every binary is in
# DIR and the stamp (or the binary's own build info) names MODULE@VERSION.
installed() {
  local name=$1 dir=$2 module=$3 version=$4 b stamp
  shift 4
  stamp=$PC_TOOLS/.stamps/$name
  for b in "$@"; do [[ -x $dir/$b ]] || return 1; done
  if [[ -r $stamp && $(<"$stamp") == "$module@$version" ]]; then
    return 0
  fi
  # Installed before stamps existed: trust the module version Go recorded.
  for b in "$@"; do
    go version -m "$dir/$b" 2>/dev/null | awk '$1 == "mod" { print $2 "@" $3 }' |
      grep -qxF "$module@$version" || return 1
  done
  printf '%s@%s\n' "$module" "$version" >"$stamp"
}

# install NAME DIR MODULE VERSION CMD...: go install MODULE/cmd/CMD@VERSION into DIR.
install() {
  local name=$1 dir=$2 module=$3 version=$4 c t0
  shift 4
  if installed "$name" "$dir" "$module" "$version" "$@"; then
    say "$name $version already installed ($dir)"
    return 0
  fi
  say "installing $name $version into $dir ($*) ..."
  t0=$SECONDS
  local -a pkgs=()
  for c in "$@"; do pkgs+=("$module/cmd/$c@$version"); done
  mkdir -p "$dir"
  GOBIN=$dir go install "${pkgs[@]}" ||
    die "go install ${pkgs[*]} failed (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
  printf '%s@%s\n' "$module" "$version" >"$PC_TOOLS/.stamps/$name"
  say "$name $version installed in $((SECONDS - t0))s"
}

for v in "${CONTAINERD_VERSIONS[@]}"; do
  install "containerd-$v" "$PC_TOOLS/containerd-$v" github.com/containerd/containerd/v2 "$v" \
    containerd containerd-shim-runc-v2 ctr
done
install crictl "$PC_TOOLS/bin" sigs.k8s.io/cri-tools "$CRI_TOOLS_VERSION" crictl
install crane "$PC_TOOLS/bin" github.com/google/go-containerregistry "$GGCR_VERSION" crane registry
install cosign "$PC_TOOLS/bin" github.com/sigstore/cosign/v3 "$COSIGN_VERSION" cosign
# install_required NAME DIR MODULE VERSION CMD: builds MODULE/cmd/CMD at VERSION
# from a throwaway module requiring it, for modules whose version list the
# proxy refuses (go install MODULE@VERSION then stops on its deprecation check).
install_required() {
  local name=$1 dir=$2 module=$3 version=$4 cmd=$5 t0 build
  if installed "$name" "$dir" "$module" "$version" "$cmd"; then
    say "$name $version already installed ($dir)"
    return 0
  fi
  say "installing $name $version into $dir ($cmd, from a module requiring it) ..."
  t0=$SECONDS
  build=$(mktemp -d)
  (
    cd "$build" &&
      go mod init portcullis-tools-build >/dev/null 2>&1 &&
      go get "$module/cmd/$cmd@$version" >/dev/null &&
      go build -o "$dir/$cmd" "$module/cmd/$cmd"
  ) || {
    rm -rf "$build"
    die "building $module/cmd/$cmd@$version failed (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
  }
  rm -rf "$build"
  printf '%s@%s\n' "$module" "$version" >"$PC_TOOLS/.stamps/$name"
  say "$name $version installed in $((SECONDS - t0))s"
}
install_required nerdctl "$PC_TOOLS/bin" github.com/containerd/nerdctl "$NERDCTL_VERSION" nerdctl

say "all pinned tools present under $PC_TOOLS"
