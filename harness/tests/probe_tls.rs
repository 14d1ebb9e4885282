//! `probe tls` against `openssl s_server` configurations, with `openssl s_client` elimination
//! and sslscan's XML as the truth; every policy violation class has a server that must fail;
//! scripted servers whose answers do not fit make the verdict inconclusive (exit 4), never a
//! pass. All servers run at once.

mod support;
#[path = "support/tls_truth.rs"]
mod tls_truth;

use flux_compat::fips::tls::certs::{Pki, Root};
use flux_compat::fips::tls::clienthello;
use flux_compat::fips::tls::codepoints::TlsVersion;
use flux_compat::fips::tls::policy::{KeyKind, Policy};
use flux_compat::fips::tls::probe::{self, Findings, ProbeConfig};
use flux_compat::fips::tls::probe_report::{self, Verdict};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct SServer(Child, String);

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn s_server(cert: &Path, key: &Path, args: &[&str]) -> SServer {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(support::require("openssl"))
        .args([
            "s_server",
            "-quiet",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
        ])
        .arg(cert)
        .arg("-key")
        .arg(key)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wrapped at once so the process is killed and reaped on every path, panics included.
    let server = SServer(child, format!("127.0.0.1:{port}"));
    for _ in 0..100 {
        if TcpStream::connect(&server.1).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("openssl s_server did not listen on {}", server.1);
}

fn write_leaf(dir: &Path, pki: &Pki, kind: &KeyKind, name: &str) -> (PathBuf, PathBuf) {
    let leaf = pki.leaf(kind, Root::Good).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, leaf.cert.to_pem().unwrap()).unwrap();
    std::fs::write(&k, leaf.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (c, k)
}

fn probe(target: &str) -> Findings {
    probe::probe(&ProbeConfig {
        target: target.into(),
        timeout: Duration::from_secs(20),
        parallel: 8,
    })
    .unwrap_or_else(|e| panic!("probe {target}: {e}"))
}

/// A server configuration, the verdict the policy gives it, and the violation it must show.
struct Case {
    name: &'static str,
    key: &'static str,
    args: &'static [&'static str],
    verdict: Verdict,
    violation: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "one suite (ChaCha20)",
        key: "p256",
        args: &["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"],
        verdict: Verdict::Fail,
        violation: "CHACHA20",
    },
    Case {
        name: "one group (P-384), TLS 1.3",
        key: "p256",
        args: &[
            "-tls1_3",
            "-ciphersuites",
            "TLS_AES_256_GCM_SHA384",
            "-groups",
            "P-384",
        ],
        verdict: Verdict::Pass,
        violation: "",
    },
    Case {
        name: "TLS 1.3 only, defaults",
        key: "p256",
        args: &["-tls1_3"],
        verdict: Verdict::Fail,
        violation: "X25519",
    },
    Case {
        name: "CCM only",
        key: "p256",
        args: &[
            "-no_tls1",
            "-no_tls1_1",
            "-cipher",
            "ECDHE-ECDSA-AES128-CCM:ECDHE-ECDSA-AES256-CCM8",
            "-ciphersuites",
            "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256",
            "-groups",
            "P-256",
        ],
        verdict: Verdict::Fail,
        violation: "CCM",
    },
    Case {
        name: "DHE only",
        key: "rsa2048",
        args: &[
            "-tls1_2",
            "-cipher",
            "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-SHA",
        ],
        verdict: Verdict::Fail,
        violation: "TLS_DHE_RSA",
    },
    Case {
        name: "ffdhe groups, TLS 1.3",
        key: "p256",
        args: &["-tls1_3", "-groups", "ffdhe2048:ffdhe3072:ffdhe4096"],
        verdict: Verdict::Fail,
        violation: "ffdhe2048",
    },
    Case {
        name: "legacy TLS 1.0, every suite",
        key: "rsa2048",
        args: &["-tls1", "-cipher", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
        verdict: Verdict::Fail,
        violation: "TLS 1.0",
    },
    Case {
        name: "TLS 1.1",
        key: "p256",
        args: &["-tls1_1", "-cipher", "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"],
        verdict: Verdict::Fail,
        violation: "TLS 1.1",
    },
    Case {
        name: "SHA-1 signatures",
        key: "rsa2048",
        args: &[
            "-tls1_2",
            "-cipher",
            "ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
            "-sigalgs",
            "RSA+SHA1",
        ],
        verdict: Verdict::Fail,
        violation: "PKCS1WithSHA1",
    },
    Case {
        name: "RSA-2560 certificate",
        key: "rsa2560",
        args: &[
            "-tls1_2",
            "-cipher",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "-sigalgs",
            "RSA-PSS+SHA256",
            "-groups",
            "P-256",
        ],
        verdict: Verdict::Fail,
        violation: "RSA-2560",
    },
    Case {
        name: "FIPS suites, TLS 1.2",
        key: "p256",
        args: &[
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384",
            "-groups",
            "P-256:P-384",
            "-sigalgs",
            "ECDSA+SHA256:ECDSA+SHA384",
        ],
        verdict: Verdict::Pass,
        violation: "",
    },
];

/// Probe, s_client elimination and sslscan for one server, then every comparison.
fn check(case: &Case, s: &SServer, policy: &Policy) -> Vec<String> {
    let addr = s.1.as_str();
    let (f, scan) = std::thread::scope(|sc| {
        let scan = sc.spawn(|| tls_truth::sslscan(addr));
        (probe(addr), scan.join().unwrap())
    });
    let mut bad: Vec<String> = tls_truth::compare(&f, addr, &scan)
        .into_iter()
        .map(|b| format!("{}: {b}", case.name))
        .collect();
    let r = probe_report::judge(f, Some(policy));
    if r.verdict != case.verdict {
        bad.push(format!(
            "{}: verdict {:?}:\n{}",
            case.name,
            r.verdict,
            probe_report::render_table(&r)
        ));
    }
    let shown = r
        .rows
        .iter()
        .any(|x| x.allowed == Some(false) && x.item.contains(case.violation));
    if !case.violation.is_empty() && !shown {
        bad.push(format!(
            "{}: no violation naming {}",
            case.name, case.violation
        ));
    }
    bad
}

#[test]
fn probe_equals_s_client_and_sslscan_and_every_violation_class_fails() {
    support::require("sslscan");
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&["localhost".into()]).unwrap();
    let keys = [
        ("p256", KeyKind::Ecdsa("P-256".into())),
        ("rsa2048", KeyKind::Rsa(2048)),
        ("rsa2560", KeyKind::Rsa(2560)),
    ];
    let files: Vec<_> = keys
        .iter()
        .map(|(n, k)| (*n, write_leaf(dir.path(), &pki, k, n)))
        .collect();
    // boring+fipsonly 1.24: TLS 1.3 allowed and EMS not yet required, so OpenSSL servers can pass.
    let policy: Policy = "boring-fipsonly@1.24".parse().unwrap();
    let servers: Vec<SServer> = CASES
        .iter()
        .map(|c| {
            let (cert, key) = &files.iter().find(|(n, _)| *n == c.key).unwrap().1;
            s_server(cert, key, c.args)
        })
        .collect();
    let problems: Vec<String> = std::thread::scope(|sc| {
        let hs: Vec<_> = CASES
            .iter()
            .zip(&servers)
            .map(|(c, s)| sc.spawn(|| check(c, s, &policy)))
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );

    // EMS class: OpenSSL 3.0 cannot require EMS, so the FIPS TLS 1.2 server fails Go ≥ 1.25's rule.
    let fips12 = &servers[CASES.len() - 1];
    let r = probe_report::judge(
        probe(&fips12.1),
        Some(&"boring-fipsonly@1.27".parse().unwrap()),
    );
    let bad: Vec<_> = r
        .rows
        .iter()
        .filter(|x| x.allowed == Some(false))
        .map(|x| x.item.as_str())
        .collect();
    assert_eq!(bad, ["TLS 1.2 without Extended Master Secret"]);
    assert_eq!(r.findings.ems_supported, Some(true));
}

/// A scripted server: answers each ClientHello with `answer(hello)` and closes.
fn scripted(answer: fn(&clienthello::ClientHello) -> Vec<u8>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let (_, h) = clienthello::read_client_hello(&mut c);
                let out = match h {
                    Ok(h) => answer(&h),
                    Err(_) => vec![21, 3, 3, 0, 2, 2, 50],
                };
                let _ = c.write_all(&out);
            });
        }
    });
    addr
}

fn server_hello(suite: u16) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&[7; 32]);
    b.push(0);
    b.extend_from_slice(&suite.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0]);
    let mut hs = vec![2, 0, 0, b.len() as u8];
    hs.extend_from_slice(&b);
    let mut rec = vec![22, 3, 3, 0, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

const ALERT_PROTOCOL_VERSION: [u8; 7] = [21, 3, 3, 0, 2, 2, 70];

#[test]
fn answers_that_do_not_fit_are_gaps_and_inconclusive_never_pass() {
    // Chooses a suite nobody offered.
    let rogue = scripted(|h| {
        if h.versions == [TlsVersion::TLS12] {
            server_hello(0x1337)
        } else {
            ALERT_PROTOCOL_VERSION.to_vec()
        }
    });
    // Accepts one suite, then answers with internal_error instead of a refusal.
    let flaky = scripted(|h| {
        if h.versions != [TlsVersion::TLS12] {
            ALERT_PROTOCOL_VERSION.to_vec()
        } else if h.suites.contains(&0xc02f) {
            server_hello(0xc02f)
        } else {
            vec![21, 3, 3, 0, 2, 2, 80]
        }
    });
    let policy: Policy = "boring-fipsonly@1.24".parse().unwrap();
    let f = probe(&rogue);
    assert!(
        f.gaps
            .iter()
            .any(|g| g.contains("0x1337, which was not offered")),
        "{:?}",
        f.gaps
    );
    assert_eq!(f.versions, vec![TlsVersion::TLS12]);
    assert_eq!(
        probe_report::judge(f, Some(&policy)).verdict,
        Verdict::Inconclusive
    );

    let f = probe(&flaky);
    assert_eq!(f.suites, vec![(TlsVersion::TLS12, 0xc02f)]);
    assert!(
        f.gaps.iter().any(|g| g.contains("internal_error (80)")),
        "{:?}",
        f.gaps
    );
    assert!(
        f.gaps.iter().any(|g| g.contains("no certificate")),
        "{:?}",
        f.gaps
    );
    let r = probe_report::judge(f, Some(&policy));
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(probe_report::render_table(&r).contains("GAP: "));

    let o = Command::new(support::binary())
        .args([
            "probe",
            "tls",
            &flaky,
            "--policy",
            "boring-fipsonly@1.24",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["verdict"], "inconclusive");
    assert!(!j["gaps"].as_array().unwrap().is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a pass"));
}

#[test]
fn json_lists_versions_suites_groups_and_signatures_by_iana_name_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&["localhost".into()]).unwrap();
    let (cert, key) = write_leaf(dir.path(), &pki, &KeyKind::Ecdsa("P-256".into()), "leaf");
    let s = s_server(
        &cert,
        &key,
        &[
            "-ciphersuites",
            "TLS_AES_128_GCM_SHA256",
            "-cipher",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "-groups",
            "P-256:X25519",
            "-sigalgs",
            "ECDSA+SHA256",
        ],
    );
    let o = Command::new(support::binary())
        .args([
            "probe",
            "tls",
            &s.1,
            "--policy",
            "native@1.27",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // X25519 is not allowed in FIPS mode; OpenSSL also accepts TLS 1.2 without EMS.
    assert_eq!(o.status.code(), Some(1), "{j:#}");
    let names = |v: usize, k: &str| -> Vec<String> {
        j["versions"][v][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                format!(
                    "{}={}",
                    x["hex"].as_str().unwrap(),
                    x["name"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(j["versions"][0]["version"]["name"], "TLS 1.2");
    assert_eq!(
        names(0, "suites"),
        ["0xc02b=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]
    );
    assert_eq!(
        names(0, "signatureSchemes"),
        ["0x0403=ecdsa_secp256r1_sha256"]
    );
    assert_eq!(j["versions"][1]["version"]["code"], 0x0304);
    assert_eq!(names(1, "suites"), ["0x1301=TLS_AES_128_GCM_SHA256"]);
    let mut g = names(1, "groups");
    g.sort();
    assert_eq!(g, ["0x0017=secp256r1", "0x001d=x25519"]);
    assert_eq!(j["extendedMasterSecret"]["required"], false);
    assert_eq!(j["gaps"], serde_json::json!([]));
}
