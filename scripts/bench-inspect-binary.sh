#!/usr/bin/env bash
# Side-by-side benchmark (not run in CI): `flux-compat inspect binary` against `go version -m`
# on large real Go binaries built here with the Go toolchain (fixtures/go/bigblob with a 110 MB
# and a 60 MB embedded blob, GOFIPS140=latest) and kubectl when it is installed. Prints median
# wall time, the ratio of medians, and peak RSS (GNU time) of each tool, plus whether both
# report the same Go version.
#
# Needs: Go 1.27.3 in .tools (scripts/setup-test-deps.sh), /usr/bin/time; RUNS (default 15).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-15}
BIN=${FLUX_COMPAT_BIN:-$ROOT/target/release/flux-compat}
[ -x "$BIN" ] || BIN=$ROOT/target/debug/flux-compat
[ -x "$BIN" ] || { echo "build flux-compat first (cargo build --release)" >&2; exit 3; }
GO=${GO:-$ROOT/.tools/go-1.27.3/go/bin/go}
[ -x "$GO" ] || { echo "missing $GO: run scripts/setup-test-deps.sh" >&2; exit 3; }
OUT=$ROOT/target/bench-go/inspect
mkdir -p "$OUT"

build_blob() { # name, MiB of embedded data
  local dir=$OUT/src-$1
  mkdir -p "$dir"
  cp fixtures/go/bigblob/main.go fixtures/go/bigblob/go.mod "$dir/"
  [ -s "$dir/blob.bin" ] || head -c "$(( $2 << 20 ))" /dev/urandom >"$dir/blob.bin"
  [ -x "$OUT/$1" ] || (cd "$dir" && GOTOOLCHAIN=local GOPROXY=off CGO_ENABLED=0 GOFIPS140=latest \
    GOCACHE=$OUT/cache GOPATH=$OUT/path "$GO" build -trimpath -o "$OUT/$1" .)
  echo "$OUT/$1"
}

BINS=("$(build_blob bigblob-110m 110)" "$(build_blob bigblob-60m 60)")
command -v kubectl >/dev/null && BINS+=("$(command -v kubectl)")

python3 - "$BIN" "$GO" "$RUNS" "${BINS[@]}" <<'PY'
import json, os, statistics, subprocess, sys
bin, go, runs, paths = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]

def measure(cmd):
    """Median wall ms and max peak RSS (MiB) over `runs` runs, and the last stdout."""
    walls, rss, out = [], [], ""
    subprocess.run(cmd, capture_output=True)  # warm the page cache
    for _ in range(runs):
        p = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + cmd, capture_output=True, text=True)
        e, m = p.stderr.strip().splitlines()[-1].split()
        walls.append(float(e) * 1000)
        rss.append(int(m) / 1024)
        out = p.stdout
    # GNU time prints wall time in 10 ms steps; time the runs again for resolution.
    import time
    fine = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True)
        fine.append((time.perf_counter() - t) * 1000)
    return statistics.median(fine), max(rss), out

print(f"{'binary':<16} {'MB':>6} {'tool':<22} {'median ms':>10} {'ratio':>6} {'peak RSS MiB':>13}  go version")
for path in paths:
    size = os.path.getsize(path) / 1e6
    name = os.path.basename(path)
    f_ms, f_rss, f_out = measure([bin, "inspect", "binary", "--format", "json", path])
    g_ms, g_rss, g_out = measure([go, "version", "-m", path])
    f_ver = json.loads(f_out)[0].get("goVersionRaw", "?") if f_out else "?"
    g_ver = g_out.split(":", 1)[1].split()[0] if ":" in g_out else "?"
    print(f"{name:<16} {size:>6.1f} {'flux-compat inspect':<22} {f_ms:>10.2f} {f_ms / g_ms:>5.2f}x {f_rss:>13.1f}  {f_ver}")
    print(f"{'':<16} {'':>6} {'go version -m':<22} {g_ms:>10.2f} {1:>5.2f}x {g_rss:>13.1f}  {g_ver}{'' if f_ver.startswith(g_ver) else '  (DIFFERS)'}")
PY
