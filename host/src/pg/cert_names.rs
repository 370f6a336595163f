//! libpq's check that the server's certificate names the host asked for
//! (`sslmode=verify-full`), rule for rule as PostgreSQL 14 to 18 do it
//! (fe-secure-common.c and fe-secure-openssl.c), so a certificate psql
//! accepts is accepted here and one it refuses is refused here:
//!
//! - the name checked is `host`, never `hostaddr`;
//! - `host` counts as an IP address when inet_aton (so also `127.1`) or
//!   inet_pton for IPv6 accepts it;
//! - every dNSName and iPAddress subjectAltName is compared: a dNSName as a
//!   string, case-insensitively, with a leading `*.` matching exactly one
//!   label; an iPAddress as an address (4 or 16 bytes), to a host that is one;
//! - the first Common Name is compared (as a string, like a dNSName, even for
//!   an IP address) only when no subjectAltName is of the host's kind: an IP
//!   host falls back to the CN when the certificate has dNSNames but no
//!   iPAddress, a DNS host when it has iPAddresses but no dNSName;
//! - a name with an embedded NUL, or an iPAddress of another length than 4
//!   or 16, refuses the certificate.
//!
//! OpenSSL's own host check differs (no CN for an IP, no CN once any SAN
//! exists, `*` inside labels, strict IPv4), so it is not used.

use std::net::{Ipv4Addr, Ipv6Addr};

use openssl::nid::Nid;
use openssl::x509::X509Ref;

/// One subjectAltName libpq looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AltName {
    Dns(String),
    /// The raw octets: 4 for IPv4, 16 for IPv6 (anything else is refused).
    Ip(Vec<u8>),
}

/// The names of a server certificate libpq considers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub alt: Vec<AltName>,
    /// The first Common Name of the subject, raw.
    pub cn: Option<Vec<u8>>,
}

impl Names {
    /// The names of `cert`. Other kinds of subjectAltName (e-mail, URI) are
    /// skipped, as libpq skips them.
    pub fn of(cert: &X509Ref) -> Names {
        let alt = cert
            .subject_alt_names()
            .map(|sans| {
                sans.iter()
                    .filter_map(|n| {
                        n.dnsname()
                            .map(|d| AltName::Dns(d.to_string()))
                            .or_else(|| n.ipaddress().map(|ip| AltName::Ip(ip.to_vec())))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let cn = cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .map(|e| e.data().as_slice().to_vec());
        Names { alt, cn }
    }

    /// The names `host=` could be set to for this certificate to pass: every
    /// subjectAltName, and the CN when no subjectAltName of its kind hides it.
    pub fn usable(&self) -> Vec<String> {
        let mut out: Vec<String> = self.alt.iter().filter_map(|a| shown(a).ok()).collect();
        if let Some(cn) = self.cn.as_deref().filter(|c| !c.contains(&0)) {
            let cn = String::from_utf8_lossy(cn).into_owned();
            let cn_is_ip = is_ip_address(&cn);
            let hidden = self
                .alt
                .iter()
                .any(|a| matches!(a, AltName::Ip(_)) == cn_is_ip);
            if !hidden && !out.contains(&cn) {
                out.push(cn);
            }
        }
        out
    }
}

/// What libpq concludes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Match,
    /// No name matched: libpq's message names the first name compared and
    /// counts the others.
    Mismatch {
        first: Option<String>,
        examined: usize,
    },
    /// The certificate cannot be checked (libpq's message).
    Invalid(String),
}

impl Verdict {
    /// libpq's message for a refusal, word for word.
    pub fn message(&self, host: &str) -> Option<String> {
        match self {
            Verdict::Match => None,
            Verdict::Invalid(m) => Some(m.clone()),
            Verdict::Mismatch { first: None, .. } => {
                Some("could not get server's host name from server certificate".into())
            }
            Verdict::Mismatch {
                first: Some(first),
                examined,
            } => Some(match examined.saturating_sub(1) {
                0 => format!("server certificate for \"{first}\" does not match host name \"{host}\""),
                1 => format!("server certificate for \"{first}\" (and 1 other name) does not match host name \"{host}\""),
                n => format!("server certificate for \"{first}\" (and {n} other names) does not match host name \"{host}\""),
            }),
        }
    }
}

/// libpq's verdict on `names` for `host` (which must not be empty).
pub fn check(host: &str, names: &Names) -> Verdict {
    let host_is_ip = is_ip_address(host);
    let mut check_cn = true;
    let mut examined = 0;
    let mut first = None;
    for a in &names.alt {
        if matches!(a, AltName::Ip(_)) == host_is_ip {
            // A SAN of the host's kind: the CN no longer counts.
            check_cn = false;
        }
        examined += 1;
        let r = match a {
            AltName::Dns(d) => name_matches(d.as_bytes(), host),
            AltName::Ip(ip) => ip_matches(ip, host),
        };
        match r {
            Err(why) => return Verdict::Invalid(why),
            Ok((true, _)) => return Verdict::Match,
            Ok((false, name)) => {
                first.get_or_insert(name);
            }
        }
    }
    if check_cn {
        if let Some(cn) = &names.cn {
            examined += 1;
            match name_matches(cn, host) {
                Err(why) => return Verdict::Invalid(why),
                Ok((true, _)) => return Verdict::Match,
                Ok((false, name)) => {
                    first.get_or_insert(name);
                }
            }
        }
    }
    Verdict::Mismatch { first, examined }
}

/// A dNSName or CN against the host: equal ignoring ASCII case, or a `*.`
/// wildcard; with the name as shown in messages.
fn name_matches(name: &[u8], host: &str) -> Result<(bool, String), String> {
    if name.contains(&0) {
        return Err("SSL certificate's name contains embedded null".into());
    }
    let hit = name.eq_ignore_ascii_case(host.as_bytes()) || wildcard(name, host.as_bytes());
    Ok((hit, String::from_utf8_lossy(name).into_owned()))
}

/// libpq's wildcard: the pattern starts with `*.`, the host ends with the
/// rest of it, and the `*` covers no dot (one label, never an empty one
/// unless the host starts with a dot).
fn wildcard(pattern: &[u8], host: &[u8]) -> bool {
    if pattern.len() < 3 || pattern[0] != b'*' || pattern[1] != b'.' {
        return false;
    }
    if pattern.len() > host.len() {
        return false;
    }
    let star = host.len() - pattern.len();
    if !pattern[1..].eq_ignore_ascii_case(&host[star + 1..]) {
        return false;
    }
    // The host's first dot is not left of where the `*` stands.
    host.iter()
        .position(|&c| c == b'.')
        .is_some_and(|d| d >= star)
}

/// An iPAddress against the host, compared as addresses (IPv4 read the way
/// inet_aton reads it).
fn ip_matches(ip: &[u8], host: &str) -> Result<(bool, String), String> {
    match ip.len() {
        4 => {
            let a = [ip[0], ip[1], ip[2], ip[3]];
            Ok((inet_aton(host) == Some(a), Ipv4Addr::from(a).to_string()))
        }
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(ip);
            let hit = host.parse::<Ipv6Addr>().is_ok_and(|h| h.octets() == a);
            Ok((hit, Ipv6Addr::from(a).to_string()))
        }
        n => Err(format!(
            "certificate contains IP address with invalid length {n}"
        )),
    }
}

/// A subjectAltName as messages show it (an error for a broken one).
fn shown(a: &AltName) -> Result<String, String> {
    match a {
        AltName::Dns(d) => name_matches(d.as_bytes(), "").map(|(_, n)| n),
        AltName::Ip(ip) => ip_matches(ip, "").map(|(_, n)| n),
    }
}

/// Whether libpq takes `host` for an IP address (and not a DNS name).
pub fn is_ip_address(host: &str) -> bool {
    inet_aton(host).is_some() || host.parse::<Ipv6Addr>().is_ok()
}

/// glibc's inet_aton: one to four parts, each decimal, octal (leading 0) or
/// hex (0x); the last fills the remaining bytes; anything after a
/// whitespace is ignored.
fn inet_aton(s: &str) -> Option<[u8; 4]> {
    let b = s.as_bytes();
    let mut parts: Vec<u64> = Vec::new();
    let mut i = 0;
    let last = loop {
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let mut base = 10;
        if b[i] == b'0' {
            base = 8;
            if matches!(b.get(i + 1), Some(b'x' | b'X'))
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            {
                base = 16;
                i += 2;
            }
        }
        let mut val: u64 = 0;
        while let Some(d) = b.get(i).and_then(|&c| (c as char).to_digit(base)) {
            val = val * u64::from(base) + u64::from(d);
            if val > 0xffff_ffff {
                return None;
            }
            i += 1;
        }
        if b.get(i) == Some(&b'.') {
            if parts.len() > 2 || val > 0xff {
                return None;
            }
            parts.push(val);
            i += 1;
        } else {
            break val;
        }
    };
    if b.get(i)
        .is_some_and(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
    {
        return None;
    }
    let max = [0xffff_ffff, 0xff_ffff, 0xffff, 0xff][parts.len()];
    if last > max {
        return None;
    }
    let mut v = last;
    for (k, p) in parts.iter().enumerate() {
        v |= p << (24 - 8 * k);
    }
    Some((v as u32).to_be_bytes())
}

/// libpq sends the host as SNI unless it looks like an IP address (only
/// digits and dots, or a colon).
pub fn wants_sni(host: &str) -> bool {
    !(host.is_empty()
        || host.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        || host.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(d: &str) -> AltName {
        AltName::Dns(d.into())
    }
    fn ip(a: &str) -> AltName {
        match a.parse::<std::net::IpAddr>().unwrap() {
            std::net::IpAddr::V4(v) => AltName::Ip(v.octets().to_vec()),
            std::net::IpAddr::V6(v) => AltName::Ip(v.octets().to_vec()),
        }
    }
    fn names(alt: Vec<AltName>, cn: Option<&str>) -> Names {
        Names {
            alt,
            cn: cn.map(|c| c.as_bytes().to_vec()),
        }
    }
    fn ok(host: &str, n: &Names) -> bool {
        check(host, n) == Verdict::Match
    }

    #[test]
    fn a_cn_alone_is_compared_as_a_string_even_for_an_ip() {
        let n = names(vec![], Some("127.0.0.1"));
        assert!(ok("127.0.0.1", &n), "the issue's certificate");
        assert!(!ok("127.1", &n), "a CN is a string, not an address");
        let n = names(vec![], Some("DB.Example.COM"));
        assert!(ok("db.example.com", &n));
        assert!(!ok("db.example.org", &n));
        let n = names(vec![], Some("::1"));
        assert!(ok("::1", &n));
        assert!(!ok("0:0::1", &n));
    }

    #[test]
    fn a_san_of_the_hosts_kind_hides_the_cn() {
        // DNS host, dNSName SAN: the CN does not count.
        let n = names(vec![dns("other")], Some("db"));
        assert!(!ok("db", &n));
        assert!(ok("other", &n));
        // DNS host, only iPAddress SANs: the CN counts.
        let n = names(vec![ip("127.0.0.1")], Some("db"));
        assert!(ok("db", &n));
        assert!(ok("127.0.0.1", &n));
        // IP host, only dNSName SANs: the CN counts (libpq, against RFC 6125).
        let n = names(vec![dns("db")], Some("127.0.0.1"));
        assert!(ok("127.0.0.1", &n));
        // IP host, an iPAddress SAN: the CN does not count.
        let n = names(vec![ip("10.0.0.1")], Some("127.0.0.1"));
        assert!(!ok("127.0.0.1", &n));
    }

    #[test]
    fn ip_sans_are_compared_as_addresses() {
        let n = names(vec![ip("127.0.0.1"), ip("::1")], None);
        for h in [
            "127.0.0.1",
            "127.1",
            "0x7f.0.0.1",
            "2130706433",
            "::1",
            "0:0::1",
            "0000::0001",
        ] {
            assert!(ok(h, &n), "{h}");
        }
        for h in ["127.0.0.2", "localhost", "::2", "::ffff:127.0.0.1"] {
            assert!(!ok(h, &n), "{h}");
        }
        // A dNSName holding an address is a string.
        let n = names(vec![dns("127.0.0.1")], None);
        assert!(ok("127.0.0.1", &n));
        assert!(!ok("127.1", &n));
    }

    #[test]
    fn a_wildcard_covers_one_label() {
        let n = names(vec![dns("*.example.com")], None);
        assert!(ok("db.example.com", &n));
        assert!(ok("DB.EXAMPLE.com", &n));
        assert!(!ok("a.db.example.com", &n));
        assert!(!ok("example.com", &n));
        assert!(!ok(".example.com", &n));
        assert!(!ok("dbexample.com", &n));
        // Only a leading "*." is a wildcard; in a CN too.
        assert!(!ok(
            "db.example.com",
            &names(vec![dns("db*.example.com")], None)
        ));
        assert!(!ok(
            "db.example.com",
            &names(vec![dns("*db.example.com")], None)
        ));
        assert!(ok("db.example.com", &names(vec![], Some("*.example.com"))));
        // No public-suffix rule in libpq.
        assert!(ok("example.com", &names(vec![dns("*.com")], None)));
    }

    #[test]
    fn broken_names_refuse_the_certificate() {
        let n = names(vec![dns("a\0.example.com")], None);
        assert_eq!(
            check("a", &n),
            Verdict::Invalid("SSL certificate's name contains embedded null".into())
        );
        let n = names(vec![AltName::Ip(vec![1, 2, 3])], None);
        assert!(matches!(check("a", &n), Verdict::Invalid(m) if m.contains("invalid length 3")));
        // A match before the broken name wins, as libpq stops at it.
        let n = names(vec![dns("a"), AltName::Ip(vec![1, 2, 3])], None);
        assert!(ok("a", &n));
    }

    #[test]
    fn messages_are_libpqs() {
        let n = names(vec![ip("127.0.0.1")], Some("pgserver"));
        assert_eq!(
            check("localhost", &n).message("localhost").unwrap(),
            "server certificate for \"127.0.0.1\" (and 1 other name) does not match host name \"localhost\""
        );
        let n = names(vec![dns("a"), dns("b"), dns("c")], Some("x"));
        assert_eq!(
            check("d", &n).message("d").unwrap(),
            "server certificate for \"a\" (and 2 other names) does not match host name \"d\""
        );
        let n = names(vec![], Some("x"));
        assert_eq!(
            check("d", &n).message("d").unwrap(),
            "server certificate for \"x\" does not match host name \"d\""
        );
        assert_eq!(
            check("d", &names(vec![], None)).message("d").unwrap(),
            "could not get server's host name from server certificate"
        );
        assert_eq!(
            check("::1", &names(vec![ip("::2")], None))
                .message("::1")
                .unwrap(),
            "server certificate for \"::2\" does not match host name \"::1\""
        );
    }

    #[test]
    fn usable_names_are_those_host_could_be() {
        let n = names(vec![ip("127.0.0.1")], Some("pgserver"));
        assert_eq!(n.usable(), ["127.0.0.1", "pgserver"]);
        let n = names(vec![dns("db")], Some("pgserver"));
        assert_eq!(n.usable(), ["db"]);
        let n = names(vec![dns("db")], Some("10.1.1.1"));
        assert_eq!(n.usable(), ["db", "10.1.1.1"]);
        for h in n.usable() {
            assert!(ok(&h, &n), "{h}");
        }
    }

    #[test]
    fn inet_aton_reads_what_glibc_reads() {
        let a = |s| inet_aton(s).map(Ipv4Addr::from);
        assert_eq!(a("127.0.0.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(a("127.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(a("10.1.2"), Some(Ipv4Addr::new(10, 1, 0, 2)));
        assert_eq!(a("0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(a("0177.0.0.01"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(a("2130706433"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(a("127.0.0.1 trailing"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        for bad in [
            "",
            "localhost",
            "256.0.0.1",
            "1.2.3.4.5",
            "08.0.0.1",
            "1.2.3.256",
            "1..2",
            "1.2.",
            "0x",
            "4294967296",
            "1.2.3.4x",
            " 1.2.3.4",
        ] {
            assert_eq!(a(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sni_is_sent_for_names_only() {
        assert!(wants_sni("db.example.com"));
        assert!(!wants_sni("127.0.0.1"));
        assert!(!wants_sni("127.1"));
        assert!(!wants_sni("::1"));
        assert!(!wants_sni(""));
    }

    #[test]
    fn names_are_read_from_a_certificate() {
        use openssl::x509::extension::SubjectAlternativeName;
        let key = openssl::pkey::PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "first").unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "second").unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509::builder().unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        let san = SubjectAlternativeName::new()
            .dns("db.example.com")
            .email("dba@example.com")
            .ip("::1")
            .ip("127.0.0.1")
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(san).unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let n = Names::of(&b.build());
        assert_eq!(
            n,
            Names {
                alt: vec![dns("db.example.com"), ip("::1"), ip("127.0.0.1")],
                cn: Some(b"first".to_vec()),
            }
        );
    }
}
