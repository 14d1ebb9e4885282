#!/usr/bin/env bash
# Fuzzing campaign: runs every `cargo fuzz` target under fuzz/ for a set time, one after another,
# seeded from the committed fixtures, and prints a table of time, executions and crashes.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 600 s, every target)
#
# Not part of .ci/run (it takes as long as you give it). cargo-fuzz needs nightly compiler
# features (`-Zsanitizer=address`); this project uses the stable toolchain, so the script sets
# RUSTC_BOOTSTRAP=1, which lets a stable rustc accept them. Crashing inputs land in
# fuzz/artifacts/<target>/; each one found is fixed and kept as a regression test under
# harness/tests/ (see fuzz_regressions.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-600}"
shift || true
all=(matrix scenario template fixture_requests clienthello go_buildinfo)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "error: cargo-fuzz is missing: install it with \`cargo install cargo-fuzz --locked\`" >&2
  exit 3
fi
export RUSTC_BOOTSTRAP=1

seed() {
  local t="$1" dir="fuzz/corpus/$1"
  mkdir -p "$dir"
  case "$t" in
    matrix)
      cp matrix.yaml "$dir/default.yaml"
      for f in fixtures/invalid/*/matrix.yaml; do cp "$f" "$dir/$(basename "$(dirname "$f")").yaml"; done ;;
    scenario)
      for f in scenarios/*.yaml fixtures/invalid/*/scenarios/*.yaml fixtures/invalid/_common/scenarios/*.yaml; do
        [ -f "$f" ] && cp "$f" "$dir/$(echo "$f" | tr '/' '_')"
      done ;;
    template)
      grep -h '\${{' scenarios/*.yaml | head -200 > "$dir/lines.txt" || true
      printf 'a ${{ namespace }} b ${{ nope }}\n${{ unclosed\n${{ fixtures.gitUrl }}/x' > "$dir/mixed.txt" ;;
    fixture_requests)
      printf '\x00{"schemaVersion":2,"config":{"digest":"sha256:%064d"},"layers":[{"digest":"sha256:%064d"}]}' 0 1 > "$dir/manifest.json"
      printf '\x01{"schemaVersion":2,"manifests":[{"digest":"sha256:%064d"}]}' 2 > "$dir/index.json"
      printf '\x04x/manifests/blobs/sha256:1' > "$dir/route.txt"
      printf '\x02app.git/info/refs\nStatus: 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\n\r\n' > "$dir/git.txt"
      printf '\x03Basic Zmx1eDpzM2NyZXQ=' > "$dir/auth.txt"
      printf '\x03service=git-upload-pack&n=1%%2F2&x=%%zz' > "$dir/query.txt" ;;
    clienthello) cp fixtures/clienthello-corpus/*.bin "$dir/" ;;
    go_buildinfo) find fixtures/inspect-corpus -type f ! -name '*.py' -exec cp {} "$dir/" \; ;;
  esac
}

echo "building the fuzz targets (release, address sanitizer) ..." >&2
cargo fuzz build >&2

load=$(cut -d' ' -f1 /proc/loadavg)
# One target at a time by default (-jobs=1: one libFuzzer process). FUZZ_PARALLEL=N runs N
# targets side by side, each still single-process, when the campaign must fit a time window.
parallel="${FUZZ_PARALLEL:-1}"
echo "load average $load; ${parallel} target(s) at a time, each with -jobs=1" >&2

fuzz_one() {
  local t="$1" log="fuzz/artifacts/$1.log"
  seed "$t"
  mkdir -p "fuzz/artifacts/$t"
  local before start took execs crashes
  before=$(find "fuzz/artifacts/$t" -type f | wc -l)
  start=$(date +%s)
  cargo fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -jobs=1 -workers=1 \
    -rss_limit_mb=2048 -max_len=65536 -timeout=10 -print_final_stats=1 >"$log" 2>&1 || true
  took=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  crashes=$(( $(find "fuzz/artifacts/$t" -type f | wc -l) - before ))
  printf '| %s | %s | %s | %s |\n' "$t" "$took" "${execs:-?}" "$crashes" > "fuzz/artifacts/$t.row"
}

printf '| target | seconds | executions | crashes |\n|---|---|---|---|\n'
i=0
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  i=$((i + 1))
  if [ $((i % parallel)) -eq 0 ]; then wait; fi
done
wait
failed=0
for t in "${targets[@]}"; do
  cat "fuzz/artifacts/$t.row"
  grep -q '| 0 |$' "fuzz/artifacts/$t.row" || failed=1
done
exit "$failed"
