#!/usr/bin/env bash
# Process start plus `flux-compat plan` of the default matrix (target < 50 ms), and `validate`
# (configuration only, and with the CRD pass over every planned cell), timed over repeated runs of
# the release binary. Prints a table. The CRD pass reads the Flux install manifests from
# FLUX_COMPAT_FLUX_MANIFESTS, else from ../shared/reference/flux-install beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${FLUX_COMPAT_FLUX_MANIFESTS:-}" ] && [ -d ../shared/reference/flux-install ]; then
  export FLUX_COMPAT_FLUX_MANIFESTS=../shared/reference/flux-install
fi
cargo build --release -q
bin="${CARGO_TARGET_DIR:-target}/release/flux-compat"
python3 - "$bin" <<'PY'
import statistics, subprocess, sys, time
bin = sys.argv[1]
rows = []
for name, args in [("plan (table)", ["plan"]), ("plan --format json", ["plan", "--format", "json"]),
                   ("plan --format github-matrix", ["plan", "--format", "github-matrix"]), ("validate --config-only", ["validate", "--config-only"]),
                   ("validate (CRD pass)", ["validate"])]:
    subprocess.run([bin] + args, check=True, capture_output=True)  # warm the page cache
    samples = []
    for _ in range(50):
        t = time.perf_counter()
        subprocess.run([bin] + args, check=True, capture_output=True)
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    rows.append((name, statistics.median(samples), samples[int(len(samples) * 0.9)], samples[-1]))
print(f"{'command':<30} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}")
for name, med, p90, mx in rows:
    print(f"{name:<30} {med:>10.2f} {p90:>8.2f} {mx:>8.2f}")
PY
