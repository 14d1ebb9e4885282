#!/usr/bin/env bash
# Side-by-side benchmark (not run in CI): `flux-compat probe tls` against sslscan, nmap
# ssl-enum-ciphers and sslyze on the same loopback endpoint, a Go 1.27 boring+fipsonly server
# (the case where sslyze reports a false negative). Prints a table of median wall times, the
# ratios to flux-compat, and what each tool concluded about TLS 1.2.
#
# Needs: the Go fixture binaries built by `cargo test --test fips_tls` (target/go-fixtures/bin),
# openssl, sslscan, nmap; installs sslyze into a venv under target/ when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-5}
BIN=${FLUX_COMPAT_BIN:-$ROOT/target/release/flux-compat}
[ -x "$BIN" ] || BIN=$ROOT/target/debug/flux-compat
SERVER_BIN=${SERVER_BIN:-$ROOT/target/go-fixtures/bin/boringfips-1.27}
[ -x "$SERVER_BIN" ] || { echo "missing $SERVER_BIN: run cargo test --test fips_tls first" >&2; exit 3; }

VENV=$ROOT/target/bench-venv
if [ ! -x "$VENV/bin/sslyze" ]; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet sslyze >&2
fi

WORK=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/k.pem" \
  -out "$WORK/c.pem" -subj /CN=localhost -addext subjectAltName=DNS:localhost -days 1 2>/dev/null
mkfifo "$WORK/stdin"
"$SERVER_BIN" server 127.0.0.1:0 "$WORK/c.pem" "$WORK/k.pem" <"$WORK/stdin" >"$WORK/addr" &
SERVER_PID=$!
exec 9>"$WORK/stdin"
for _ in $(seq 50); do grep -q listening "$WORK/addr" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's/^listening //p' "$WORK/addr")
PORT=${ADDR##*:}
echo "endpoint: $ADDR ($(basename "$SERVER_BIN")), $RUNS runs each, binary $BIN" >&2

median_ms() { # command... ; prints the median wall time in ms, keeps the last output in $WORK/out
  local ts=()
  for _ in $(seq "$RUNS"); do
    local s e
    s=$(date +%s%N)
    "$@" >"$WORK/out" 2>&1 || true
    e=$(date +%s%N)
    ts+=($(( (e - s) / 1000000 )))
  done
  printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

F=$(median_ms "$BIN" probe tls "$ADDR" --policy boring-fipsonly@1.27 --format json)
F_TLS12=$(python3 -c "import json,sys; d=json.load(open('$WORK/out')); print(len([s for v,s in d['findings']['suites'] if v==0x0303]), 'suites, EMS required' if d['findings']['ems_required'] else '')")
F_VERDICT=$(python3 -c "import json; print(json.load(open('$WORK/out'))['verdict'])")

S=$(median_ms sslscan --no-colour "$ADDR")
S_TLS12=$(grep -cE "^(Preferred|Accepted) +TLSv1.2" "$WORK/out" || true)

N=$(median_ms nmap -Pn -p "$PORT" --script ssl-enum-ciphers 127.0.0.1)
N_TLS12=$(awk '/TLSv1.2:/{f=1;next} /TLSv1.3:|compressors/{f=0} f&&/TLS_/{c++} END{print c+0}' "$WORK/out")

Y=$(median_ms "$VENV/bin/sslyze" --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 --elliptic_curves "$ADDR")
Y_TLS12=$(grep -A3 'TLS 1.2 Cipher Suites' "$WORK/out" | grep -E 'rejected all|Attempted' | head -1 | sed 's/^ *//')

ratio() { awk -v a="$1" -v b="$F" 'BEGIN{ if (b>0) printf "%.1fx", a/b; else print "-" }'; }
printf '%-28s %10s %8s  %s\n' tool median_ms ratio "TLS 1.2 finding"
printf '%-28s %10s %8s  %s\n' "flux-compat probe tls" "$F" "1.0x" "$F_TLS12 (verdict $F_VERDICT)"
printf '%-28s %10s %8s  %s\n' "sslscan" "$S" "$(ratio "$S")" "$S_TLS12 TLSv1.2 suite lines"
printf '%-28s %10s %8s  %s\n' "nmap ssl-enum-ciphers" "$N" "$(ratio "$N")" "$N_TLS12 TLSv1.2 suites"
printf '%-28s %10s %8s  %s\n' "sslyze" "$Y" "$(ratio "$Y")" "$Y_TLS12"
