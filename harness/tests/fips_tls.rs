//! FIPS TLS checks against real peers: Go clients (plain, boring+fipsonly, GOFIPS140, an older
//! toolchain) against the challenge endpoints, the probe against Go and `openssl s_server`
//! servers, and bad input to the endpoints. Go variants are built once per test binary.

mod support;
#[path = "support/tls_truth.rs"]
mod tls_truth;

use flux_compat::fips::tls::certs::{Pki, Root};
use flux_compat::fips::tls::challenge::{ChallengeConfig, ChallengeId, ChallengeSet, Outcome};
use flux_compat::fips::tls::codepoints::TlsVersion;
use flux_compat::fips::tls::policy::{Family, GoVersion, KeyKind, Policy};
use flux_compat::fips::tls::probe::{self, ProbeConfig};
use flux_compat::fips::tls::probe_report::{self, Verdict as ProbeVerdict};
use flux_compat::fips::tls::verdict::{self, Observed, Side, Verdict};
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

struct Variant {
    name: &'static str,
    go: &'static str,
    /// Key in `fips-data/clienthellos.json`.
    reference: &'static str,
    family: Family,
    env: &'static [(&'static str, &'static str)],
    tags: &'static str,
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "plain-1.27",
        go: "1.27.3",
        reference: "1.27.3 | plain",
        family: Family::None,
        env: &[("CGO_ENABLED", "0")],
        tags: "",
    },
    Variant {
        name: "boringfips-1.27",
        go: "1.27.3",
        reference: "1.27.3 | boring+fipsonly",
        family: Family::BoringFipsOnly,
        env: &[("CGO_ENABLED", "1"), ("GOEXPERIMENT", "boringcrypto")],
        tags: "fipsonly",
    },
    Variant {
        name: "gofips140-1.27",
        go: "1.27.3",
        // GOFIPS140=latest uses the in-tree module, as GODEBUG=fips140=on on a plain build does.
        reference: "1.27.3 | GODEBUG=fips140=on",
        family: Family::NativeOn,
        env: &[("CGO_ENABLED", "0"), ("GOFIPS140", "latest")],
        tags: "",
    },
    Variant {
        // TLS 1.3 allowed, static RSA refused, but EMS not yet required (Go < 1.25).
        name: "boringfips-1.24",
        go: "1.24.11",
        reference: "1.24.11 | boring+fipsonly",
        family: Family::BoringFipsOnly,
        env: &[("CGO_ENABLED", "1"), ("GOEXPERIMENT", "boringcrypto")],
        tags: "fipsonly",
    },
    Variant {
        name: "boringfips-1.23",
        go: "1.23.9",
        reference: "1.23.9 | boring+fipsonly",
        family: Family::BoringFipsOnly,
        env: &[("CGO_ENABLED", "1"), ("GOEXPERIMENT", "boringcrypto")],
        tags: "fipsonly",
    },
];

fn variant(name: &str) -> &'static Variant {
    VARIANTS
        .iter()
        .find(|v| v.name == name)
        .expect("known variant")
}

fn policy(v: &Variant) -> Policy {
    Policy::new(v.family, v.go.parse::<GoVersion>().unwrap()).unwrap()
}

/// Build every Go variant once, in parallel; returns name → binary.
fn binaries() -> &'static HashMap<&'static str, PathBuf> {
    static BUILT: OnceLock<HashMap<&'static str, PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = support::root().join("target/go-fixtures");
        let handles: Vec<_> = VARIANTS
            .iter()
            .map(|v| {
                let target = target.clone();
                std::thread::spawn(move || (v.name, build(v, &target)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("build thread"))
            .collect()
    })
}

fn build(v: &Variant, target: &Path) -> PathBuf {
    let go = support::go(v.go);
    let src = target.join("src").join(v.name);
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src).unwrap();
    let fixture = support::root().join("fixtures/go/tlspeer");
    for f in ["main.go", "fipsonly.go"] {
        std::fs::copy(fixture.join(f), src.join(f)).unwrap();
    }
    // The toolchain's own go line gives its default GODEBUGs, as the reference data was recorded.
    std::fs::write(
        src.join("go.mod"),
        format!("module tlspeer\n\ngo {}\n", v.go),
    )
    .unwrap();
    let out = target.join("bin").join(v.name);
    let mut cmd = Command::new(go);
    cmd.current_dir(&src)
        .args(["build", "-o"])
        .arg(&out)
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", target.join("cache"))
        .env("GOPATH", target.join("path"))
        .env_remove("GOEXPERIMENT")
        .env_remove("GOFIPS140")
        .env_remove("GODEBUG");
    if !v.tags.is_empty() {
        cmd.args(["-tags", v.tags]);
    }
    cmd.arg(".");
    for (k, val) in v.env {
        cmd.env(k, val);
    }
    let o = cmd.output().expect("run go build");
    assert!(
        o.status.success(),
        "go build {} failed:\n{}",
        v.name,
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

fn reference() -> serde_json::Value {
    let p = support::root().join("fixtures/fips-data/clienthellos.json");
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())),
    )
    .unwrap()
}

fn run_client(bin: &Path, addr: std::net::SocketAddr, ca: &Path) -> serde_json::Value {
    let o = Command::new(bin)
        .args(["client", &addr.to_string()])
        .arg(ca)
        .arg("localhost")
        .output()
        .unwrap();
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "client output {:?}: {e}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

#[test]
fn go_clients_get_exactly_the_policy_outcomes_and_reference_hellos() {
    let bins = binaries();
    let set = ChallengeSet::start(&ChallengeConfig::default()).expect("start challenges");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, set.ca_pem()).unwrap();
    let reference = reference();

    // Every (variant, challenge) client runs concurrently; the client's local address ties it to
    // the server-side record.
    let runs: Vec<(&Variant, ChallengeId, serde_json::Value)> = std::thread::scope(|s| {
        let hs: Vec<_> = VARIANTS
            .iter()
            .flat_map(|v| ChallengeId::ALL.iter().map(move |c| (v, *c)))
            .map(|(v, c)| {
                let (bin, addr, ca) = (&bins[v.name], set.addr(c).unwrap(), &ca);
                s.spawn(move || (v, c, run_client(bin, addr, ca)))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut problems = vec![];
    let mut observed: HashMap<(&str, ChallengeId), Observed> = HashMap::new();
    for (v, c, client) in &runs {
        let local = client["local"]
            .as_str()
            .unwrap_or_else(|| panic!("{} {}: no local address: {client}", v.name, c.id()));
        // Every variant connected to every challenge exactly once.
        let attempts = set
            .wait_for(*c, VARIANTS.len(), Duration::from_secs(10))
            .unwrap();
        let attempt = attempts
            .into_iter()
            .find(|a| a.peer.to_string() == local)
            .unwrap_or_else(|| panic!("{} {}: no server record from {local}", v.name, c.id()));
        let expected = policy(v).expect(&c.offer());
        let accepted = matches!(attempt.outcome, Outcome::Accepted { .. });
        if accepted != expected.accepts() || client["ok"].as_bool() != Some(expected.accepts()) {
            problems.push(format!(
                "{} × {}: expected {expected:?}, server saw {:?}, client said {client}",
                v.name,
                c.id(),
                attempt.outcome
            ));
        }
        let hello = attempt
            .client_hello
            .as_ref()
            .expect("a ClientHello was captured");
        let got = hello.fingerprint();
        let want = &reference[v.reference];
        for key in ["versions", "suites", "groups", "sigalgs"] {
            if got[key] != want[key] {
                problems.push(format!(
                    "{} × {}: {key} {} != reference {}",
                    v.name,
                    c.id(),
                    got[key],
                    want[key]
                ));
            }
        }
        let set_of = |x: &serde_json::Value| {
            x.as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_u64().unwrap())
                .collect::<BTreeSet<_>>()
        };
        if set_of(&got["extensions"]) != set_of(&want["extensions"]) {
            problems.push(format!(
                "{} × {}: extensions {} != reference {}",
                v.name,
                c.id(),
                got["extensions"],
                want["extensions"]
            ));
        }
        if v.family.is_fips() {
            let bad = verdict::hello_violations(&policy(v), hello);
            if !bad.is_empty() {
                problems.push(format!(
                    "{} × {}: FIPS ClientHello offers forbidden {bad:?}",
                    v.name,
                    c.id()
                ));
            }
        }
        observed.insert(
            (v.name, *c),
            Observed::from_attempts(std::slice::from_ref(&attempt)),
        );
    }
    // The plain client must be flagged by the same hello check (the check can fail).
    let plain_hello = set
        .attempts(ChallengeId::ControlTls13)
        .into_iter()
        .find_map(|a| {
            let h = a.client_hello?;
            h.groups.contains(&0x001d).then_some(h)
        });
    assert!(
        !verdict::hello_violations(
            &policy(variant("boringfips-1.27")),
            &plain_hello.expect("plain hello")
        )
        .is_empty()
    );

    // Differential: each FIPS variant against the plain build never fails or is inconclusive.
    let plain = variant("plain-1.27");
    for v in VARIANTS.iter().filter(|v| v.family.is_fips()) {
        for c in ChallengeId::ALL {
            let fips = Side {
                expected: policy(v).expect(&c.offer()),
                observed: observed[&(v.name, c)].clone(),
            };
            let other = Side {
                expected: policy(plain).expect(&c.offer()),
                observed: observed[&(plain.name, c)].clone(),
            };
            match verdict::differential(&fips, Some(&other)) {
                Verdict::Pass | Verdict::Skip { .. } => {}
                bad => problems.push(format!(
                    "{} × {}: differential verdict {bad:?}",
                    v.name,
                    c.id()
                )),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// A Go server (a tlspeer variant) on a free port; killed on drop.
struct GoServer {
    child: Child,
    addr: String,
}

impl Drop for GoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_leaf(dir: &Path) -> (PathBuf, PathBuf) {
    let pki = Pki::new(&["localhost".into()]).unwrap();
    let leaf = pki
        .leaf(&KeyKind::Ecdsa("P-256".into()), Root::Good)
        .unwrap();
    let (c, k) = (dir.join("leaf.pem"), dir.join("leaf.key"));
    std::fs::write(&c, leaf.cert.to_pem().unwrap()).unwrap();
    std::fs::write(&k, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (c, k)
}

fn go_server(name: &str, cert: &Path, key: &Path) -> GoServer {
    let mut child = Command::new(&binaries()[name])
        .args(["server", "127.0.0.1:0"])
        .arg(cert)
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("server said {line:?}"))
        .to_string();
    GoServer { child, addr }
}

fn probe(target: &str) -> probe::Findings {
    probe::probe(&ProbeConfig {
        target: target.into(),
        timeout: Duration::from_secs(20),
        parallel: 16,
    })
    .unwrap()
}

fn suites(f: &probe::Findings) -> BTreeSet<u16> {
    f.suites.iter().map(|(_, s)| *s).collect()
}

const PROBED: [&str; 5] = [
    "boringfips-1.27",
    "gofips140-1.27",
    "plain-1.27",
    "boringfips-1.24",
    "boringfips-1.23",
];

#[test]
fn probe_on_go_servers_equals_s_client_and_sslscan_and_known_answers() {
    support::require("sslscan");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_leaf(dir.path());
    let p = |s: &str| s.parse::<Policy>().unwrap();
    let servers: Vec<GoServer> = PROBED.iter().map(|n| go_server(n, &cert, &key)).collect();
    let (found, problems): (Vec<probe::Findings>, Vec<Vec<String>>) = std::thread::scope(|sc| {
        let hs: Vec<_> = servers
            .iter()
            .zip(PROBED)
            .map(|(s, name)| {
                sc.spawn(move || {
                    let scan = tls_truth::sslscan(&s.addr);
                    let f = probe(&s.addr);
                    let bad = tls_truth::compare(&f, &s.addr, &scan);
                    (f, bad.into_iter().map(|b| format!("{name}: {b}")).collect())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).unzip()
    });
    let problems: Vec<String> = problems.into_iter().flatten().collect();
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    let mut found = found.into_iter();

    let f = found.next().unwrap();
    assert_eq!(f.versions, vec![TlsVersion::TLS12, TlsVersion::TLS13]);
    assert_eq!(suites(&f), BTreeSet::from([0x1301, 0x1302, 0xc02b, 0xc02c]));
    assert_eq!(
        f.group_set().into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([0x17, 0x18, 0x19])
    );
    assert_eq!(
        f.ems_required,
        Some(true),
        "Go ≥1.25 FIPS servers require EMS (sslyze misses this)"
    );
    assert_eq!(
        probe_report::judge(f.clone(), Some(&p("boring-fipsonly@1.27"))).verdict,
        ProbeVerdict::Pass
    );
    assert_eq!(
        probe_report::judge(f, Some(&p("native@1.27"))).verdict,
        ProbeVerdict::Pass
    );

    let f = found.next().unwrap();
    // CBC-SHA256 is allowed in native mode but not among Go's default suites, so it is not served.
    assert_eq!(suites(&f), BTreeSet::from([0x1301, 0x1302, 0xc02b, 0xc02c]));
    let groups = f.group_set();
    assert!(groups.contains(&0x11ec) && groups.contains(&0x11eb) && !groups.contains(&0x1d));
    assert_eq!(f.ems_required, Some(true));
    assert_eq!(
        probe_report::judge(f.clone(), Some(&p("native@1.27"))).verdict,
        ProbeVerdict::Pass
    );
    let r = probe_report::judge(f, Some(&p("boring-fipsonly@1.27")));
    assert_eq!(r.verdict, ProbeVerdict::Fail);
    assert!(
        r.rows
            .iter()
            .any(|row| row.allowed == Some(false) && row.item.contains("X25519MLKEM768"))
    );

    let f = found.next().unwrap();
    assert!(
        suites(&f).contains(&0xcca9)
            && suites(&f).contains(&0xc009)
            && suites(&f).contains(&0x1303)
    );
    assert!(f.group_set().contains(&0x1d) && f.group_set().contains(&0x11ec));
    assert_eq!(f.ems_required, Some(false));
    assert_eq!(
        probe_report::judge(f.clone(), Some(&p("boring-fipsonly@1.27"))).verdict,
        ProbeVerdict::Fail
    );
    assert_eq!(
        probe_report::judge(f, Some(&p("plain@1.27"))).verdict,
        ProbeVerdict::Pass
    );

    let f = found.next().unwrap();
    assert_eq!(f.versions, vec![TlsVersion::TLS12, TlsVersion::TLS13]);
    assert_eq!(
        f.ems_required,
        Some(false),
        "EMS is required only from Go 1.25"
    );
    assert_eq!(
        probe_report::judge(f.clone(), Some(&p("boring-fipsonly@1.24"))).verdict,
        ProbeVerdict::Pass
    );
    assert_eq!(
        probe_report::judge(f, Some(&p("boring-fipsonly@1.27"))).verdict,
        ProbeVerdict::Fail
    );

    let f = found.next().unwrap();
    assert_eq!(
        f.versions,
        vec![TlsVersion::TLS12],
        "boring+fipsonly before Go 1.24 is TLS 1.2-only"
    );
    assert_eq!(f.ems_required, Some(false));
    assert_eq!(
        probe_report::judge(f.clone(), Some(&p("boring-fipsonly@1.23"))).verdict,
        ProbeVerdict::Pass
    );
    assert_eq!(
        probe_report::judge(f, Some(&p("boring-fipsonly@1.27"))).verdict,
        ProbeVerdict::Fail
    );
}

#[test]
fn endpoints_report_bad_input_per_connection_and_keep_serving() {
    let cfg = ChallengeConfig {
        timeout: Duration::from_millis(800),
        only: vec![
            ChallengeId::ControlTls13,
            ChallengeId::CbcSha1,
            ChallengeId::Tls11,
        ],
        ..Default::default()
    };
    let set = ChallengeSet::start(&cfg).unwrap();
    let control = set.addr(ChallengeId::ControlTls13).unwrap();

    let mut g = TcpStream::connect(control).unwrap();
    g.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let a = set
        .wait_for(ChallengeId::ControlTls13, 1, Duration::from_secs(5))
        .unwrap();
    assert!(
        matches!(&a[0].outcome, Outcome::Error { cause } if cause.contains("not a handshake record")),
        "{:?}",
        a[0]
    );

    let mut t = TcpStream::connect(set.addr(ChallengeId::CbcSha1).unwrap()).unwrap();
    t.write_all(&[22, 3, 1, 0x02, 0x00, 1, 0, 1]).unwrap();
    drop(t);
    let a = set
        .wait_for(ChallengeId::CbcSha1, 1, Duration::from_secs(5))
        .unwrap();
    assert!(
        matches!(&a[0].outcome, Outcome::Error { cause } if cause.contains("closed the connection after 8 byte(s)")),
        "{:?}",
        a[0]
    );

    let started = std::time::Instant::now();
    let _silent = TcpStream::connect(set.addr(ChallengeId::Tls11).unwrap()).unwrap();
    let a = set
        .wait_for(ChallengeId::Tls11, 1, Duration::from_secs(5))
        .unwrap();
    assert!(
        matches!(&a[0].outcome, Outcome::Error { cause } if cause.contains("timed out")),
        "{:?}",
        a[0]
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "silent peer held the endpoint for {:?}",
        started.elapsed()
    );

    // The listeners still serve real clients after all that.
    let f = probe(&control.to_string());
    assert_eq!(f.versions, vec![TlsVersion::TLS13]);
    let ok = set
        .attempts(ChallengeId::ControlTls13)
        .iter()
        .any(|a| matches!(a.outcome, Outcome::Accepted { .. }));
    assert!(
        ok,
        "the control endpoint accepted no handshake after bad input"
    );
    assert!(
        set.wait_for(ChallengeId::StaticRsa, 1, Duration::from_millis(10))
            .is_err()
    );
}

#[test]
fn probe_gives_up_on_silent_and_non_tls_servers_within_its_time_limit() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let started = std::time::Instant::now();
    let cfg = ProbeConfig {
        target: addr,
        timeout: Duration::from_millis(700),
        parallel: 16,
    };
    let err = probe::probe(&cfg).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, probe::ProbeError::NoTls { .. }), "{err}");

    // A server that answers with HTTP instead of TLS.
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = http.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut c in http.incoming().flatten() {
            let _ = c.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let cfg = ProbeConfig {
        target: addr,
        timeout: Duration::from_secs(3),
        parallel: 16,
    };
    let err = probe::probe(&cfg).unwrap_err();
    assert!(matches!(err, probe::ProbeError::NoTls { .. }), "{err}");
    drop(silent);
}

#[test]
fn probe_cli_exit_codes_and_json() {
    let bin = support::binary();
    let run = |args: &[&str]| Command::new(&bin).args(args).output().unwrap();
    assert_eq!(run(&["probe", "tls", "no-port"]).status.code(), Some(2));
    assert_eq!(
        run(&["probe", "tls", "127.0.0.1:1", "--policy", "fips@1.27"])
            .status
            .code(),
        Some(2)
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = run(&["probe", "tls", &closed.to_string(), "--timeout", "1s"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("connect to"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let set = ChallengeSet::start(&ChallengeConfig {
        only: vec![ChallengeId::Tls12Chacha20],
        ..Default::default()
    })
    .unwrap();
    let addr = set.addr(ChallengeId::Tls12Chacha20).unwrap().to_string();
    let o = run(&[
        "probe",
        "tls",
        &addr,
        "--policy",
        "native@1.26",
        "--format",
        "json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["verdict"], "fail");
    assert_eq!(j["versions"][0]["suites"][0]["code"], 0xcca9);
    assert_eq!(j["versions"].as_array().unwrap().len(), 1);
    let o = run(&["probe", "tls", &addr]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256")
    );
}
