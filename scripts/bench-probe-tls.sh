#!/usr/bin/env bash
# Side-by-side benchmark (not run in CI): `flux-compat probe tls` against sslscan, nmap
# ssl-enum-ciphers and testssl.sh on the same loopback servers — a Go 1.27 boring+fipsonly
# server, nginx with its default TLS configuration, and a legacy `openssl s_server` accepting
# every suite OpenSSL has at TLS 1.0–1.2. Prints median wall times, the ratio of each tool's
# median to flux-compat's, and whether each tool's accepted suites equal the truth (an
# `openssl s_client` elimination per version).
#
# Needs: the Go fixture binaries from `cargo test --test fips_tls` (target/go-fixtures/bin),
# openssl, sslscan, nmap, nginx, testssl (Debian package testssl.sh; scripts/setup-test-deps.sh installs them).
# RUNS (default 5) runs per tool; testssl.sh, which takes tens of seconds, runs TESTSSL_RUNS (1).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${FLUX_COMPAT_BIN:-$ROOT/target/release/flux-compat}
[ -x "$BIN" ] || BIN=$ROOT/target/debug/flux-compat
GO_SERVER=${GO_SERVER:-$ROOT/target/go-fixtures/bin/boringfips-1.27}
[ -x "$GO_SERVER" ] || { echo "missing $GO_SERVER: run cargo test --test fips_tls first" >&2; exit 3; }
for t in openssl sslscan nmap nginx testssl; do
  command -v "$t" >/dev/null || { echo "missing $t: run scripts/setup-test-deps.sh" >&2; exit 3; }
done

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not listening" >&2; exit 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ec.key" \
  -out "$WORK/ec.pem" -subj /CN=localhost -days 1 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/rsa.key" -out "$WORK/rsa.pem" \
  -subj /CN=localhost -days 1 2>/dev/null

# Go boring+fipsonly 1.27.
mkfifo "$WORK/go.stdin"
"$GO_SERVER" server 127.0.0.1:0 "$WORK/ec.pem" "$WORK/ec.key" <"$WORK/go.stdin" >"$WORK/go.addr" &
PIDS+=($!)
exec 9>"$WORK/go.stdin"
for _ in $(seq 100); do grep -q listening "$WORK/go.addr" 2>/dev/null && break; sleep 0.05; done
GO_ADDR=$(sed -n 's/^listening //p' "$WORK/go.addr")

# nginx with its default TLS settings (only a certificate configured).
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_certificate $WORK/rsa.pem;
    ssl_certificate_key $WORK/rsa.key;
  }
}
CONF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>/dev/null &
PIDS+=($!)
wait_port "$NGINX_PORT"

# Legacy: every suite OpenSSL has, TLS 1.0–1.2, security level 0.
LEGACY_PORT=$(free_port)
openssl s_server -quiet -accept "127.0.0.1:$LEGACY_PORT" -cert "$WORK/rsa.pem" -key "$WORK/rsa.key" \
  -no_tls1_3 -cipher 'ALL:COMPLEMENTOFALL:@SECLEVEL=0' </dev/null >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$LEGACY_PORT"

python3 - "$BIN" "$WORK" "${RUNS:-5}" "${TESTSSL_RUNS:-1}" \
  "go-boringfips-1.27=$GO_ADDR" "nginx-default=127.0.0.1:$NGINX_PORT" "legacy-s_server=127.0.0.1:$LEGACY_PORT" <<'PY'
import json, os, re, statistics, subprocess, sys, time
bin, work, runs, tl_runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
servers = [a.split("=", 1) for a in sys.argv[5:]]
VERS = {"TLSv1.0": 0x301, "TLSv1.1": 0x302, "TLSv1.2": 0x303, "TLSv1.3": 0x304}
T13 = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"

def ciphers():
    out = subprocess.run(["openssl", "ciphers", "-V", "-stdname", "-ciphersuites", T13, "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
                         capture_output=True, text=True).stdout
    m = {}
    for l in out.splitlines():
        t = l.split()
        hi, lo = t[0].split(",")
        code = int(hi, 16) << 8 | int(lo, 16)
        m[t[2]] = code              # IANA name
        m[t[4]] = code              # OpenSSL name
        m.setdefault(("v13" if t[5] == "TLSv1.3" else "old"), []).append(t[4])
    return m
C = ciphers()

def truth(addr):
    """Accepted (version, code) pairs by openssl s_client elimination."""
    acc = set()
    for flag, v in [("-tls1", 0x301), ("-tls1_1", 0x302), ("-tls1_2", 0x303), ("-tls1_3", 0x304)]:
        left = list(C["v13" if v == 0x304 else "old"])
        while left:
            lst = ":".join(left)
            args = ["-ciphersuites", lst] if v == 0x304 else ["-cipher", lst + ":@SECLEVEL=0"]
            p = subprocess.run(["openssl", "s_client", "-connect", addr, "-brief", flag] + args,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True)
            m = re.search(r"Ciphersuite: (\S+)", p.stderr)
            if p.returncode != 0 or not m:
                break
            acc.add((v, C[m.group(1)]))
            left.remove(m.group(1))
    return acc

def timed(cmd, n):
    ts, out = [], ""
    for _ in range(n):
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        ts.append((time.perf_counter() - t) * 1000)
        out = p.stdout
    return statistics.median(ts), out

def parse_probe(out):
    d = json.loads(out)
    return {(v["version"]["code"], s["code"]) for v in d["versions"] for s in v["suites"]}, len(d["gaps"])

def parse_sslscan(out):
    return {(VERS[v], int(i, 16)) for v, i in re.findall(r'<cipher [^>]*sslversion="([^"]+)"[^>]* id="0x([0-9A-Fa-f]+)"', out)}, None

def parse_nmap(out):
    acc, v = set(), None
    for l in out.splitlines():
        m = re.search(r"\|\s+(TLSv1\.[0-3]):", l)
        if m:
            v = VERS[m.group(1)]
            continue
        m = re.search(r"\|\s+(TLS_\w+)", l)
        if m and v and m.group(1) in C:
            acc.add((v, C[m.group(1)]))
    return acc, None

def parse_testssl(path):
    acc = set()
    for e in json.load(open(path)):
        m = re.match(r"cipher-tls1(?:_(\d))?_x([0-9a-f]+)$", e.get("id", ""))
        if m:
            acc.add((0x301 + (int(m.group(1)) if m.group(1) else 0), int(m.group(2), 16)))
    return acc, None

print(f"{'server':<18} {'tool':<24} {'median ms':>10} {'ratio':>7}  enumeration vs s_client truth")
for name, addr in servers:
    host, port = addr.rsplit(":", 1)
    want = truth(addr)
    rows = []
    ms, out = timed([bin, "probe", "tls", addr, "--format", "json", "--timeout", "30s"], runs)
    got, gaps = parse_probe(out)
    rows.append(("flux-compat probe tls", ms, got, f", {gaps} gap(s)"))
    ms, out = timed(["sslscan", "--no-colour", "--xml=-", addr], runs)
    rows.append(("sslscan", ms, parse_sslscan(out)[0], ""))
    ms, out = timed(["nmap", "-Pn", "-p", port, "--script", "ssl-enum-ciphers", host], runs)
    rows.append(("nmap ssl-enum-ciphers", ms, parse_nmap(out)[0], ""))
    jf = f"{work}/testssl.json"
    def testssl():
        subprocess.run(["rm", "-f", jf])
        return ["testssl", "--quiet", "--color", "0", "-e", "--warnings", "off", "--openssl-timeout", "10", "--jsonfile", jf, addr]
    ms, _ = timed(testssl(), tl_runs)
    try:
        got, note = parse_testssl(jf)[0], ""
    except (OSError, ValueError) as e:
        got, note = set(), f", no result: {e}"
    problems = [e.get("finding", "") for e in (json.load(open(jf)) if os.path.exists(jf) else []) if e.get("id") in ("scanProblem",)]
    rows.append(("testssl.sh -e", ms, got, note + (f", scanProblem: {problems[0][:60]}" if problems else "")))
    base = rows[0][1]
    for tool, ms, got, extra in rows:
        verdict = "equal" if got == want else f"DIFFERS (missing {len(want - got)}, extra {len(got - want)})"
        print(f"{name:<18} {tool:<24} {ms:>10.0f} {ms / base:>6.2f}x  {verdict} ({len(got)} suites{extra})")
    print(f"{name:<18} {'(truth: s_client)':<24} {'':>10} {'':>7}  {len(want)} suites")
PY
