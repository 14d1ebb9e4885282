//! Independent truth for `probe tls`: what `openssl s_client` (a different client, its own
//! ClientHellos) and sslscan's XML say a server accepts. Used by `fips_tls` and `probe_tls`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub const TLS13_SUITES: &str = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256";

/// OpenSSL's groups with their code points.
pub const OPENSSL_GROUPS: &[(&str, u16)] = &[
    ("P-256", 0x17),
    ("P-384", 0x18),
    ("P-521", 0x19),
    ("X25519", 0x1d),
    ("X448", 0x1e),
    ("ffdhe2048", 0x100),
    ("ffdhe3072", 0x101),
    ("ffdhe4096", 0x102),
    ("ffdhe6144", 0x103),
    ("ffdhe8192", 0x104),
];

/// Every suite this OpenSSL knows: name → (code, is TLS 1.3).
pub fn openssl_suites() -> &'static BTreeMap<String, (u16, bool)> {
    static S: OnceLock<BTreeMap<String, (u16, bool)>> = OnceLock::new();
    S.get_or_init(|| {
        let o = Command::new("openssl")
            .args(["ciphers", "-V", "-ciphersuites", TLS13_SUITES])
            .arg("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
            .output()
            .expect("run openssl ciphers");
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| {
                let t: Vec<&str> = l.split_whitespace().collect();
                let (hi, lo) = t.first()?.split_once(',')?;
                let b = |x: &str| u8::from_str_radix(x.trim_start_matches("0x"), 16).ok();
                let code = u16::from_be_bytes([b(hi)?, b(lo)?]);
                Some((t.get(2)?.to_string(), (code, t.get(3)? == &"TLSv1.3")))
            })
            .collect()
    })
}

/// One `openssl s_client -brief` handshake: (cipher name, temp key line) when it completed.
pub fn s_client(addr: &str, args: &[&str]) -> Option<(String, String)> {
    let o = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-brief"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() || !err.contains("CONNECTION ESTABLISHED") {
        return None;
    }
    let field = |k: &str| {
        err.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    Some((field("Ciphersuite:"), field("Server Temp Key:")))
}

fn flag(v: u16) -> &'static str {
    match v {
        0x0301 => "-tls1",
        0x0302 => "-tls1_1",
        0x0303 => "-tls1_2",
        _ => "-tls1_3",
    }
}

/// Suites accepted at version `v` by s_client elimination: offer all remaining, note the
/// choice, remove it, until the server refuses.
pub fn s_client_suites(addr: &str, v: u16) -> BTreeSet<u16> {
    let is13 = v == 0x0304;
    let mut left: Vec<&String> = openssl_suites()
        .iter()
        .filter(|(_, (_, t13))| *t13 == is13)
        .map(|(n, _)| n)
        .collect();
    let groups = OPENSSL_GROUPS
        .iter()
        .map(|g| g.0)
        .collect::<Vec<_>>()
        .join(":");
    let mut found = BTreeSet::new();
    while !left.is_empty() {
        let list = left
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(":");
        let args: Vec<String> = if is13 {
            vec!["-tls1_3".into(), "-ciphersuites".into(), list]
        } else {
            vec![
                flag(v).into(),
                "-cipher".into(),
                format!("{list}:@SECLEVEL=0"),
            ]
        };
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["-groups", &groups]);
        let Some((name, _)) = s_client(addr, &args) else {
            break;
        };
        let Some((code, _)) = openssl_suites().get(&name) else {
            panic!("s_client negotiated {name}, which `openssl ciphers` does not list")
        };
        found.insert(*code);
        left.retain(|s| **s != name);
    }
    found
}

/// The group an s_client temp-key line names, if it is an OpenSSL group.
fn temp_key_group(line: &str) -> Option<u16> {
    let l = line.to_ascii_lowercase();
    [
        ("x25519", 0x1d),
        ("x448", 0x1e),
        ("prime256v1", 0x17),
        ("p-256", 0x17),
        ("secp384r1", 0x18),
        ("p-384", 0x18),
        ("secp521r1", 0x19),
        ("p-521", 0x19),
    ]
    .iter()
    .find(|(n, _)| l.contains(n))
    .map(|(_, c)| *c)
}

/// Groups OpenSSL can offer that the server accepts at `v`, one s_client per group. TLS 1.2
/// also lists the NIST curves after the group (an OpenSSL server with an ECDSA certificate
/// needs its curve listed) and reads which group the key exchange used.
pub fn s_client_groups(addr: &str, v: u16) -> BTreeSet<u16> {
    let mut found = BTreeSet::new();
    for (name, code) in OPENSSL_GROUPS {
        if v == 0x0304 {
            let args = ["-tls1_3", "-ciphersuites", TLS13_SUITES, "-groups", name];
            if s_client(addr, &args).is_some() {
                found.insert(*code);
            }
        } else if *code < 0x100 {
            let mut list = vec![*name];
            list.extend(["P-256", "P-384", "P-521"].iter().filter(|n| *n != name));
            let list = list.join(":");
            let args = [flag(v), "-cipher", "ECDHE:@SECLEVEL=0", "-groups", &list];
            if let Some((_, key)) = s_client(addr, &args)
                && temp_key_group(&key) == Some(*code)
            {
                found.insert(*code);
            }
        }
    }
    found
}

/// TLS 1.3 signature schemes OpenSSL 3.0 can offer alone, by name.
pub const SIGALGS13: &[(&str, u16)] = &[
    ("ecdsa_secp256r1_sha256", 0x0403),
    ("ecdsa_secp384r1_sha384", 0x0503),
    ("ecdsa_secp521r1_sha512", 0x0603),
    ("rsa_pss_rsae_sha256", 0x0804),
    ("rsa_pss_rsae_sha384", 0x0805),
    ("rsa_pss_rsae_sha512", 0x0806),
    ("ed25519", 0x0807),
    ("ed448", 0x0808),
    ("rsa_pss_pss_sha256", 0x0809),
    ("rsa_pss_pss_sha384", 0x080a),
    ("rsa_pss_pss_sha512", 0x080b),
];

/// TLS 1.3 signature schemes the server completes a handshake with, one s_client each.
pub fn s_client_sigalgs13(addr: &str) -> BTreeSet<u16> {
    SIGALGS13
        .iter()
        .filter(|(name, _)| {
            let args = ["-tls1_3", "-ciphersuites", TLS13_SUITES, "-sigalgs", name];
            s_client(addr, &args).is_some()
        })
        .map(|(_, c)| *c)
        .collect()
}

/// What sslscan's XML lists.
#[derive(Debug, Default)]
pub struct Sslscan {
    /// (version code, suite code)
    pub suites: BTreeSet<(u16, u16)>,
    pub groups: BTreeMap<u16, BTreeSet<u16>>,
    pub sigalgs13: BTreeSet<u16>,
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let i = line.find(&format!(" {name}=\""))? + name.len() + 3;
    line[i..].split('"').next()
}

fn version_code(s: &str) -> u16 {
    match s {
        "TLSv1.0" => 0x0301,
        "TLSv1.1" => 0x0302,
        "TLSv1.2" => 0x0303,
        "TLSv1.3" => 0x0304,
        other => panic!("sslscan version {other}"),
    }
}

fn hex(s: &str) -> u16 {
    u16::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex id")
}

/// Run sslscan against `addr` and read its XML.
pub fn sslscan(addr: &str) -> Sslscan {
    let o = Command::new("sslscan")
        .args([
            "--xml=-",
            "--no-colour",
            "--no-heartbleed",
            "--no-renegotiation",
        ])
        .args(["--no-compression", "--no-fallback", "--show-sigs", addr])
        .stdin(Stdio::null())
        .output()
        .expect("run sslscan");
    let xml = String::from_utf8_lossy(&o.stdout);
    let mut s = Sslscan::default();
    for l in xml.lines().map(str::trim) {
        let (Some(v), Some(id)) = (attr(l, "sslversion"), attr(l, "id")) else {
            continue;
        };
        let (v, id) = (version_code(v), hex(id));
        if l.starts_with("<cipher ") {
            s.suites.insert((v, id));
        } else if l.starts_with("<group ") {
            s.groups.entry(v).or_default().insert(id);
        } else if l.starts_with("<connection-signature-algorithm ") && v == 0x0304 {
            s.sigalgs13.insert(id);
        }
    }
    s
}

use flux_compat::fips::tls::codepoints::TlsVersion;
use flux_compat::fips::tls::probe::Findings;

fn pairs(p: &[(TlsVersion, u16)], v: TlsVersion) -> BTreeSet<u16> {
    p.iter().filter(|(x, _)| *x == v).map(|(_, c)| *c).collect()
}

/// Every way the probe's findings differ from s_client's and sslscan's (`scan`) for `addr`.
/// Groups and TLS 1.3 signatures are compared on what OpenSSL 3.0 can offer; sslscan offers
/// one group at a time, so against an ECDSA certificate in TLS 1.2 it sees only the
/// certificate's curve: its TLS 1.2 groups must be a subset.
pub fn compare(f: &Findings, addr: &str, scan: &Sslscan) -> Vec<String> {
    let mut bad = vec![];
    let mut expect = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    expect(f.gaps.is_empty(), format!("gaps {:?}", f.gaps));
    let mut versions = BTreeSet::new();
    for v in TlsVersion::ALL {
        let probed = pairs(&f.suites, v);
        let truth = s_client_suites(addr, v.0);
        if !truth.is_empty() {
            versions.insert(v);
        }
        expect(
            probed == truth,
            format!("{v} suites {probed:x?} != s_client {truth:x?}"),
        );
        let scanned: BTreeSet<u16> = scan
            .suites
            .iter()
            .filter(|(x, _)| *x == v.0)
            .map(|(_, s)| *s)
            .collect();
        expect(
            probed == scanned,
            format!("{v} suites {probed:x?} != sslscan {scanned:x?}"),
        );
    }
    let got: BTreeSet<_> = f.versions.iter().copied().collect();
    expect(
        got == versions,
        format!("versions {got:?} != s_client {versions:?}"),
    );
    let known: BTreeSet<u16> = OPENSSL_GROUPS.iter().map(|g| g.1).collect();
    for v in [TlsVersion::TLS12, TlsVersion::TLS13] {
        if !f.versions.contains(&v) {
            continue;
        }
        let probed = pairs(&f.groups, v);
        let in_openssl: BTreeSet<u16> = probed.intersection(&known).copied().collect();
        let truth = s_client_groups(addr, v.0);
        expect(
            in_openssl == truth,
            format!("{v} groups {probed:x?} != s_client {truth:x?}"),
        );
        let scanned = scan.groups.get(&v.0).cloned().unwrap_or_default();
        let scanned_known: BTreeSet<u16> = scanned.intersection(&known).copied().collect();
        let ok =
            scanned.is_subset(&probed) && (v == TlsVersion::TLS12 || scanned_known == in_openssl);
        expect(
            ok,
            format!("{v} groups {probed:x?} vs sslscan {scanned:x?}"),
        );
    }
    if f.versions.contains(&TlsVersion::TLS13) {
        let probed = pairs(&f.sigalgs, TlsVersion::TLS13);
        let nameable: BTreeSet<u16> = SIGALGS13.iter().map(|x| x.1).collect();
        let truth = s_client_sigalgs13(addr);
        let mine: BTreeSet<u16> = probed.intersection(&nameable).copied().collect();
        expect(
            mine == truth,
            format!("TLS 1.3 signatures {probed:x?} != s_client {truth:x?}"),
        );
        // sslscan reads only the ServerHello; a server that answers it whatever the schemes
        // offered is listed as "ANY" (0xfdff), which says nothing about what it signs with.
        if !scan.sigalgs13.contains(&0xfdff) {
            expect(
                probed == scan.sigalgs13,
                format!(
                    "TLS 1.3 signatures {probed:x?} != sslscan {:x?}",
                    scan.sigalgs13
                ),
            );
        }
    }
    bad
}
