#!/usr/bin/env bash
# Checks the GitHub Actions workflows: zizmor (the Actions security linter, offline: unpinned
# actions, persisted credentials, cache poisoning, excessive permissions, template injection)
# and the GitHub workflow JSON schema (check-jsonschema's vendored `vendor.github-workflows`).
# Both come from PyPI at pinned versions into a venv under .tools/, so the check is the same
# on every machine. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

ZIZMOR_VERSION=1.32.0
CHECK_JSONSCHEMA_VERSION=0.39.0
venv=".tools/workflow-lint-${ZIZMOR_VERSION}-${CHECK_JSONSCHEMA_VERSION}"

# A venv records its own path, so it is built in place; the stamp marks a complete install, and
# a venv whose tools no longer start (the checkout moved) is built again.
usable() {
  [ -f "$venv/.complete" ] && "$venv/bin/check-jsonschema" --version >/dev/null 2>&1 &&
    "$venv/bin/zizmor" --version >/dev/null 2>&1
}
if ! usable; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  if ! PIP_ROOT_USER_ACTION=ignore "$venv/bin/pip" install -q --disable-pip-version-check \
      "zizmor==${ZIZMOR_VERSION}" "check-jsonschema==${CHECK_JSONSCHEMA_VERSION}"; then
    rm -rf "$venv"
    echo "workflow-lint: could not install zizmor and check-jsonschema from PyPI" >&2
    exit 3
  fi
  touch "$venv/.complete"
fi

shopt -s nullglob
workflows=(.github/workflows/*.yaml .github/workflows/*.yml)
if [ ${#workflows[@]} -eq 0 ]; then
  echo "workflow-lint: no workflows under .github/workflows" >&2
  exit 1
fi

"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
# --offline: no GitHub API calls (pinned SHAs are checked for shape, not looked up); any finding
# fails the check.
"$venv/bin/zizmor" --offline --no-progress "${workflows[@]}"
