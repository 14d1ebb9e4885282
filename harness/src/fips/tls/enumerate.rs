//! Complete enumeration by elimination over hand-written ClientHellos: per version, offer every
//! remaining candidate, record what the server chose, remove it, repeat until the server
//! refuses (N accepted items cost N+1 hellos). Anything that does not read as a choice or a
//! refusal is a gap, never silently "not accepted". No policy here.

use super::codepoints::{self, TlsVersion};
use super::iana;
use super::wire::{self, Flight, Offer, Reply};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Where to probe and until when.
pub struct Target {
    pub addr: SocketAddr,
    pub sni: Option<String>,
    /// One limit for the whole probe: a silent server cannot stretch it per handshake.
    pub deadline: Instant,
    /// Connections made, for the report.
    pub hellos: AtomicUsize,
}

impl Target {
    pub fn connect(&self) -> std::io::Result<TcpStream> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the probe's time limit is reached",
            ));
        }
        self.hellos.fetch_add(1, Ordering::Relaxed);
        let s = TcpStream::connect_timeout(&self.addr, left)?;
        s.set_read_timeout(Some(left))?;
        s.set_write_timeout(Some(left))?;
        s.set_nodelay(true)?;
        Ok(s)
    }

    /// Send one hand-written ClientHello and read the answer.
    pub fn ask(&self, offer: &Offer) -> Reply {
        match self.connect() {
            Ok(mut s) => wire::exchange(&mut s, &wire::client_hello(offer)),
            Err(e) => Reply::Broken(format!("connect: {e}")),
        }
    }
}

/// The signalling suites, which are not parameters a server can choose.
const SIGNALLING: [u16; 2] = [0x00ff, 0x5600];

/// Every suite a ClientHello of version `v` can carry.
pub fn suites_for(v: TlsVersion) -> Vec<u16> {
    let is13 = v == TlsVersion::TLS13;
    iana::SUITES
        .iter()
        .map(|s| s.0)
        .filter(|s| !SIGNALLING.contains(s) && codepoints::is_tls13_suite(*s) == is13)
        .collect()
}

/// Every named group.
pub fn all_groups() -> Vec<u16> {
    iana::GROUPS.iter().map(|g| g.0).collect()
}

/// Every signature scheme.
pub fn all_sigalgs() -> Vec<u16> {
    iana::SIGALGS.iter().map(|s| s.0).collect()
}

/// TLS 1.0–1.2 suites whose ServerKeyExchange names a curve (ECDHE) or a signature ((EC)DHE).
fn kx_suites(elliptic_only: bool) -> Vec<u16> {
    suites_for(TlsVersion::TLS12)
        .into_iter()
        .filter(|s| match wire::kx_kind(*s) {
            Some((elliptic, signed)) => (elliptic || !elliptic_only) && (signed || elliptic_only),
            None => false,
        })
        .collect()
}

/// What one elimination chain found.
#[derive(Debug, Default)]
pub struct Chain {
    /// Chosen items, in the order the server chose them.
    pub found: Vec<u16>,
    /// The flight of every accepted hello.
    pub flights: Vec<Flight>,
    /// Why the chain could not finish: the enumeration is incomplete.
    pub gap: Option<String>,
    /// Whether the server refused the very first hello (nothing of this kind is accepted).
    pub refused_first: bool,
    /// Whether the server answered any hello with a ServerHello at this version, chosen item
    /// identified or not.
    pub answered: bool,
}

/// The reading of one reply during a chain.
enum Step {
    Chose(u16, Box<Flight>),
    Refused,
    Gap(String),
}

fn read_reply(
    reply: Reply,
    v: TlsVersion,
    what: &str,
    pick: &dyn Fn(&Flight) -> Option<u16>,
) -> Step {
    match reply {
        Reply::Hello(f) if f.version != v => {
            // A lower version in the ServerHello is the server's way of declining `v`.
            if f.version < v && f.version >= TlsVersion(0x0300) {
                Step::Refused
            } else {
                Step::Gap(format!(
                    "{v}: the server answered with version {}",
                    f.version
                ))
            }
        }
        Reply::Hello(f) => match pick(&f) {
            Some(x) => Step::Chose(x, f),
            None => Step::Gap(format!(
                "{v}: the server accepted a hello but its reply names no {what}"
            )),
        },
        // handshake_failure and insufficient_security say "nothing you offered"; protocol_version
        // says "not this version".
        Reply::Alert(40 | 70 | 71) => Step::Refused,
        Reply::Alert(d) => Step::Gap(format!(
            "{v}: while enumerating {what}s the server sent alert {} ({d}), which is not a refusal",
            wire::alert_name(d)
        )),
        Reply::Closed(n) => Step::Gap(format!(
            "{v}: while enumerating {what}s the server closed the connection without an alert after {n} byte(s)"
        )),
        Reply::Broken(e) => Step::Gap(format!("{v}: while enumerating {what}s: {e}")),
    }
}

/// One elimination chain. `anchors` are re-offered after the pool once the pool alone is
/// refused: an OpenSSL server with an ECDSA certificate refuses TLS 1.2 ECDHE unless the
/// client also lists the certificate's curve, which elimination has already removed.
fn eliminate(
    v: TlsVersion,
    what: &str,
    mut pool: Vec<u16>,
    anchors: &dyn Fn(&[u16]) -> Vec<u16>,
    offer: &dyn Fn(&[u16]) -> Reply,
    pick: &dyn Fn(&Flight) -> Option<u16>,
) -> Chain {
    let mut c = Chain::default();
    let mut anchored: Vec<u16> = vec![];
    while !pool.is_empty() {
        let mut list = pool.clone();
        list.extend(anchored.iter().copied());
        let reply = offer(&list);
        let first_alert = match &reply {
            Reply::Alert(d) => Some(*d),
            _ => None,
        };
        c.answered |= matches!(&reply, Reply::Hello(f) if f.version == v);
        match read_reply(reply, v, what, pick) {
            Step::Chose(x, _) if anchored.contains(&x) => break,
            Step::Chose(x, f) if pool.contains(&x) => {
                pool.retain(|p| *p != x);
                c.found.push(x);
                c.flights.push(*f);
            }
            Step::Chose(x, _) => {
                c.gap = Some(format!(
                    "{v}: the server chose {what} 0x{x:04x}, which was not offered"
                ));
                break;
            }
            Step::Refused if c.found.is_empty() => {
                c.refused_first = true;
                break;
            }
            Step::Refused => {
                let more = anchors(&c.found);
                if !anchored.is_empty() || more.is_empty() {
                    break;
                }
                anchored = more;
            }
            // OpenSSL answers a version it has no protocol for with internal_error; on the
            // first hello that is its refusal. The OpenSSL cross-check in `probe` catches a
            // version wrongly dropped this way.
            Step::Gap(_) if first_alert == Some(80) && c.found.is_empty() && !c.answered => {
                c.refused_first = true;
                break;
            }
            Step::Gap(g) => {
                c.gap = Some(g);
                break;
            }
        }
    }
    c
}

fn no_anchors(_: &[u16]) -> Vec<u16> {
    vec![]
}

/// Suites accepted at `v`, each with the flight that chose it.
pub fn suites(t: &Target, v: TlsVersion) -> Chain {
    let (groups, sigalgs) = (all_groups(), all_sigalgs());
    let offer = |s: &[u16]| {
        t.ask(&Offer {
            version: v,
            suites: s,
            groups: &groups,
            sigalgs: &sigalgs,
            ems: true,
            sni: t.sni.as_deref(),
        })
    };
    eliminate(
        v,
        "cipher suite",
        suites_for(v),
        &no_anchors,
        &offer,
        &|f| Some(f.suite),
    )
}

/// Groups accepted at `v`: TLS 1.3 reads the HelloRetryRequest's group (an empty key_share
/// forces one), TLS 1.0–1.2 the ECDHE ServerKeyExchange's curve.
pub fn groups(t: &Target, v: TlsVersion) -> Chain {
    let sigalgs = all_sigalgs();
    let tls13 = v == TlsVersion::TLS13;
    let suites = if tls13 {
        suites_for(v)
    } else {
        kx_suites(true)
    };
    let offer = |g: &[u16]| {
        t.ask(&Offer {
            version: v,
            suites: &suites,
            groups: g,
            sigalgs: &sigalgs,
            ems: true,
            sni: t.sni.as_deref(),
        })
    };
    if tls13 {
        return eliminate(v, "group", all_groups(), &no_anchors, &offer, &|f| f.group);
    }
    // Only elliptic groups appear in a TLS 1.0–1.2 ServerKeyExchange.
    let pool: Vec<u16> = all_groups().into_iter().filter(|g| *g < 0x0100).collect();
    let anchors = |found: &[u16]| {
        found
            .iter()
            .copied()
            .filter(|g| matches!(g, 0x0017..=0x0019))
            .collect()
    };
    eliminate(v, "group", pool, &anchors, &offer, &|f| {
        f.kx.as_ref().and_then(|k| k.group)
    })
}

/// Signature schemes the server signs its TLS 1.2 key exchange with.
pub fn tls12_sigalgs(t: &Target) -> Chain {
    let (suites, groups) = (kx_suites(false), all_groups());
    let v = TlsVersion::TLS12;
    let offer = |s: &[u16]| {
        t.ask(&Offer {
            version: v,
            suites: &suites,
            groups: &groups,
            sigalgs: s,
            ems: true,
            sni: t.sni.as_deref(),
        })
    };
    eliminate(
        v,
        "signature scheme",
        all_sigalgs(),
        &no_anchors,
        &offer,
        &|f| f.kx.as_ref().and_then(|k| k.sigalg),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_sets_cover_the_registry() {
        assert_eq!(suites_for(TlsVersion::TLS13).len(), 5);
        let s12 = suites_for(TlsVersion::TLS12);
        assert!(s12.contains(&0xc09e) && s12.contains(&0x009e) && !s12.contains(&0x00ff));
        let ecdhe = kx_suites(true);
        assert!(ecdhe.contains(&0xc02b) && !ecdhe.contains(&0x009e));
        let signed = kx_suites(false);
        assert!(signed.contains(&0x009e) && signed.contains(&0xc030) && !signed.contains(&0x009c));
    }
}
