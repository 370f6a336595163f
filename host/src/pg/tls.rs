//! TLS for pgclone's own connections, with libpq's semantics: the same
//! `sslmode`s, the same default files under `~/.postgresql`, the same
//! refusal of a private key others can read. OpenSSL (through
//! `postgres-openssl`) is the stack because it is what libpq itself uses, so
//! certificates, keys, CRLs and `sslrootcert=system` behave identically for
//! pgclone, psql, pg_basebackup and the standby.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::store::X509Lookup;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::X509VerifyResult;
use postgres_openssl::MakeTlsConnector;

use super::cert_names::{self, Names};
use super::ConnInfo;
use crate::report::Failure;

/// libpq's `sslmode`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// What a connection needs to know about TLS.
pub struct Tls {
    pub mode: Mode,
    pub direct: bool,
    /// None when TLS is off (`disable`).
    pub connector: Option<MakeTlsConnector>,
    /// Why verify-full refused the server's certificate, when it did.
    pub refused_name: Arc<Mutex<Option<NameRefusal>>>,
}

/// A server certificate that does not name the host asked for.
#[derive(Debug, Clone)]
pub struct NameRefusal {
    /// libpq's own words.
    pub message: String,
    /// The names `host=` could be for this certificate.
    pub usable: Vec<String>,
    pub host: String,
}

impl NameRefusal {
    /// What to do about it.
    pub fn hint(&self) -> String {
        let host = &self.host;
        if self.usable.is_empty() {
            return format!("sslmode=verify-full checks host= against the server's certificate, which names no host: give the server a certificate whose subjectAltName names \"{host}\"");
        }
        if let [only] = self.usable.as_slice() {
            return format!("sslmode=verify-full checks host= against the server's certificate, which is valid for \"{only}\" only: connect with host= set to that name (hostaddr= can still give the address to connect to), or give the server a certificate that names \"{host}\"");
        }
        let names = self
            .usable
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ");
        format!("sslmode=verify-full checks host= against the server's certificate, which is valid for {names}: connect with host= set to one of them (hostaddr= can still give the address to connect to), or give the server a certificate that names \"{host}\"")
    }
}

impl Tls {
    /// No TLS (a Unix socket).
    pub fn off() -> Tls {
        Tls {
            mode: Mode::Disable,
            direct: false,
            connector: None,
            refused_name: Default::default(),
        }
    }

    /// Why the server's certificate was refused for its names, if it was.
    pub fn name_refusal(&self) -> Option<NameRefusal> {
        self.refused_name.lock().ok()?.clone()
    }
}

fn home_file(name: &str) -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql").join(name))
}

fn fail(what: &str, detail: String, hint: &str) -> anyhow::Error {
    Failure::new(what.to_string())
        .detail(detail)
        .hint(hint.to_string())
        .into()
}

/// The `sslmode`, with libpq's rule that `sslrootcert=system` defaults it to
/// (and allows only) `verify-full`.
pub fn mode(p: &ConnInfo) -> anyhow::Result<Mode> {
    let system = p.get("sslrootcert") == Some("system");
    let m = match p.get("sslmode") {
        None if system => Mode::VerifyFull,
        None | Some("prefer") => Mode::Prefer,
        Some("disable") => Mode::Disable,
        Some("allow") => Mode::Allow,
        Some("require") => Mode::Require,
        Some("verify-ca") => Mode::VerifyCa,
        Some("verify-full") => Mode::VerifyFull,
        Some(other) => {
            return Err(fail(
                &format!("invalid sslmode value: \"{other}\""),
                "libpq knows disable, allow, prefer, require, verify-ca and verify-full".into(),
                "fix sslmode in the conninfo, the service file or PGSSLMODE",
            ))
        }
    };
    if system && m != Mode::VerifyFull {
        return Err(fail(
            &format!(
                "weak sslmode \"{}\" may not be used with sslrootcert=system",
                p.get("sslmode").unwrap_or("")
            ),
            "the system's trusted roots vouch for any host they signed, so the host name must be checked too".into(),
            "use sslmode=verify-full",
        ));
    }
    Ok(m)
}

/// Builds the connector for `p`, or None when TLS is off.
pub fn settings(p: &ConnInfo, sslpassword: Option<&str>) -> anyhow::Result<Tls> {
    let mode = mode(p)?;
    let direct = match p.get("sslnegotiation") {
        None | Some("postgres") => false,
        Some("direct") => true,
        Some(other) => {
            return Err(fail(
                &format!("invalid sslnegotiation value: \"{other}\""),
                "libpq knows postgres and direct".into(),
                "fix sslnegotiation in the conninfo, the service file or PGSSLNEGOTIATION",
            ))
        }
    };
    if direct && matches!(mode, Mode::Disable | Mode::Allow | Mode::Prefer) {
        return Err(fail(
            &format!(
                "weak sslmode \"{}\" may not be used with sslnegotiation=direct",
                p.get("sslmode").unwrap_or("prefer")
            ),
            "direct TLS negotiation cannot fall back to an unencrypted connection".into(),
            "use sslmode=require or stricter",
        ));
    }
    if mode == Mode::Disable {
        return Ok(Tls {
            mode,
            direct,
            connector: None,
            refused_name: Default::default(),
        });
    }
    let host = verified_host(p);
    if mode == Mode::VerifyFull && host.is_none() {
        return Err(fail(
            "host name must be specified for a verified SSL connection",
            "sslmode=verify-full checks host= against the server's certificate, and only hostaddr= is given".into(),
            "add host= with a name the server's certificate names; hostaddr= still gives the address to connect to",
        ));
    }
    let refused_name: Arc<Mutex<Option<NameRefusal>>> = Default::default();
    let connector =
        connector(p, sslpassword, mode, direct, host, refused_name.clone()).map_err(|e| {
            match e.downcast::<Failure>() {
                Ok(f) => f.into(),
                Err(e) => fail(
                    "could not set up TLS",
                    e.to_string(),
                    "check sslcert, sslkey, sslrootcert and sslcrl",
                ),
            }
        })?;
    Ok(Tls {
        mode,
        direct,
        connector: Some(connector),
        refused_name,
    })
}

/// The name libpq checks and sends as SNI: `host`, never `hostaddr` (with
/// only hostaddr given, `host` here is the default socket directory).
fn verified_host(p: &ConnInfo) -> Option<String> {
    p.get("host")
        .filter(|h| !h.is_empty() && !h.starts_with('/'))
        .map(str::to_string)
}

fn connector(
    p: &ConnInfo,
    sslpassword: Option<&str>,
    mode: Mode,
    direct: bool,
    host: Option<String>,
    refused: Arc<Mutex<Option<NameRefusal>>>,
) -> anyhow::Result<MakeTlsConnector> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    if direct {
        postgres_openssl::set_postgresql_alpn(&mut b)?;
    }
    b.set_min_proto_version(Some(
        protocol(p, "ssl_min_protocol_version")?.unwrap_or(SslVersion::TLS1_2),
    ))?;
    b.set_max_proto_version(protocol(p, "ssl_max_protocol_version")?)?;
    let verify = root_certs(p, mode, &mut b)?;
    if verify {
        crl(p, &mut b)?;
    } else {
        b.set_verify(SslVerifyMode::NONE);
    }
    client_cert(p, sslpassword, &mut b)?;
    let mut c = MakeTlsConnector::new(b.build());
    // libpq checks the host name only under verify-full, with its own rules
    // (cert_names), not OpenSSL's; and sends SNI by its own rule too.
    let full = mode == Mode::VerifyFull;
    let sni = p.get("sslsni").unwrap_or("1").starts_with('1');
    let host = host.unwrap_or_default();
    c.set_callback(move |cfg, _| {
        cfg.set_verify_hostname(false);
        cfg.set_use_server_name_indication(false);
        if sni && cert_names::wants_sni(&host) {
            cfg.set_hostname(&host)?;
        }
        if full {
            let (host, refused) = (host.clone(), refused.clone());
            cfg.set_verify_callback(SslVerifyMode::PEER, move |chain_ok, ctx| {
                // The names are the leaf's, checked once its chain is good.
                if !chain_ok || ctx.error_depth() != 0 {
                    return chain_ok;
                }
                let Some(cert) = ctx.current_cert() else {
                    return chain_ok;
                };
                let names = Names::of(cert);
                let verdict = cert_names::check(&host, &names);
                let Some(message) = verdict.message(&host) else {
                    return true;
                };
                if let Ok(mut r) = refused.lock() {
                    *r = Some(NameRefusal {
                        message,
                        usable: names.usable(),
                        host: host.clone(),
                    });
                }
                ctx.set_error(X509VerifyResult::APPLICATION_VERIFICATION);
                false
            });
        }
        Ok(())
    });
    Ok(c)
}

/// `ssl_min_protocol_version` / `ssl_max_protocol_version` (libpq's minimum
/// is TLSv1.2 by default).
fn protocol(p: &ConnInfo, key: &str) -> anyhow::Result<Option<SslVersion>> {
    Ok(match p.get(key) {
        None | Some("") => None,
        Some("TLSv1") => Some(SslVersion::TLS1),
        Some("TLSv1.1") => Some(SslVersion::TLS1_1),
        Some("TLSv1.2") => Some(SslVersion::TLS1_2),
        Some("TLSv1.3") => Some(SslVersion::TLS1_3),
        Some(v) => {
            return Err(fail(
                &format!("invalid {key} value: \"{v}\""),
                "libpq knows TLSv1, TLSv1.1, TLSv1.2 and TLSv1.3".into(),
                &format!("fix {key}"),
            ))
        }
    })
}

/// Loads the trusted roots; true when the server's certificate is verified
/// (verify-*, or any mode when the root file exists, as in libpq).
fn root_certs(
    p: &ConnInfo,
    mode: Mode,
    b: &mut openssl::ssl::SslConnectorBuilder,
) -> anyhow::Result<bool> {
    if p.get("sslrootcert") == Some("system") {
        b.set_default_verify_paths()?;
        return Ok(true);
    }
    let file = p
        .get("sslrootcert")
        .map(PathBuf::from)
        .or_else(|| home_file("root.crt"));
    match file {
        Some(f) if f.exists() => {
            b.set_ca_file(&f).map_err(|e| {
                fail(
                    &format!("could not read root certificate file \"{}\"", f.display()),
                    e.to_string(),
                    "sslrootcert must name a PEM file of CA certificates",
                )
            })?;
            Ok(true)
        }
        f if matches!(mode, Mode::VerifyCa | Mode::VerifyFull) => Err(fail(
            &format!(
                "root certificate file \"{}\" does not exist",
                f.map(|f| f.display().to_string()).unwrap_or_else(|| "~/.postgresql/root.crt".into())
            ),
            format!("sslmode={} verifies the server's certificate against it", if mode == Mode::VerifyCa { "verify-ca" } else { "verify-full" }),
            "give the CA's certificate with sslrootcert (or ~/.postgresql/root.crt), use the system's trusted roots with sslrootcert=system, or lower sslmode",
        )),
        _ => Ok(false),
    }
}

/// The certificate revocation list (`sslcrl`, default `~/.postgresql/root.crl`
/// when it exists) and directory (`sslcrldir`).
fn crl(p: &ConnInfo, b: &mut openssl::ssl::SslConnectorBuilder) -> anyhow::Result<()> {
    let file = match p.get("sslcrl") {
        Some(f) if !f.is_empty() => Some(PathBuf::from(f)),
        Some(_) => None,
        None => home_file("root.crl").filter(|f| f.exists()),
    };
    let dir = p.get("sslcrldir").filter(|d| !d.is_empty());
    if file.is_none() && dir.is_none() {
        return Ok(());
    }
    let store = b.cert_store_mut();
    if let Some(f) = file.filter(|f| f.exists()) {
        // openssl's lookup takes UTF-8 paths only.
        let name = f
            .to_str()
            .ok_or_else(|| anyhow::anyhow!("sslcrl path is not UTF-8"))?;
        store
            .add_lookup(X509Lookup::file())?
            .load_crl_file(name, SslFiletype::PEM)
            .map_err(|e| {
                fail(
                    &format!(
                        "could not read certificate revocation list \"{}\"",
                        f.display()
                    ),
                    e.to_string(),
                    "sslcrl must name a PEM file of CRLs",
                )
            })?;
    }
    if let Some(d) = dir {
        store
            .add_lookup(X509Lookup::hash_dir())?
            .add_dir(d, SslFiletype::PEM)?;
    }
    store.set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)?;
    Ok(())
}

/// The client certificate (`sslcert`, default `~/.postgresql/postgresql.crt`)
/// and its key: as in libpq, no certificate file means none is sent.
fn client_cert(
    p: &ConnInfo,
    sslpassword: Option<&str>,
    b: &mut openssl::ssl::SslConnectorBuilder,
) -> anyhow::Result<()> {
    match p.get("sslcertmode") {
        // libpq: never send a client certificate.
        Some("disable") => return Ok(()),
        None | Some("allow") | Some("require") => {}
        Some(other) => {
            return Err(fail(
                &format!("invalid sslcertmode value: \"{other}\""),
                "libpq knows disable, allow and require".into(),
                "fix sslcertmode in the conninfo, the service file or PGSSLCERTMODE",
            ))
        }
    }
    let Some(cert) = p
        .get("sslcert")
        .map(PathBuf::from)
        .or_else(|| home_file("postgresql.crt"))
    else {
        return Ok(());
    };
    if !cert.exists() {
        return Ok(());
    }
    b.set_certificate_chain_file(&cert).map_err(|e| {
        fail(
            &format!("could not read certificate file \"{}\"", cert.display()),
            e.to_string(),
            "sslcert must name the client's certificate in PEM",
        )
    })?;
    let key = p
        .get("sslkey")
        .map(PathBuf::from)
        .or_else(|| home_file("postgresql.key"))
        .unwrap_or_default();
    check_key_file(&key)?;
    let pem = std::fs::read(&key)?;
    let pkey = match sslpassword {
        Some(pw) => PKey::private_key_from_pem_passphrase(&pem, pw.as_bytes()),
        None => PKey::private_key_from_pem_callback(&pem, |_| Ok(0)),
    }
    .map_err(|e| {
        fail(
            &format!("could not load private key file \"{}\"", key.display()),
            e.to_string(),
            if sslpassword.is_some() {
                "check that sslpassword is the key's passphrase"
            } else {
                "an encrypted key needs its passphrase in sslpassword"
            },
        )
    })?;
    b.set_private_key(&pkey)?;
    b.check_private_key().map_err(|e| {
        fail(
            &format!(
                "private key file \"{}\" does not match certificate \"{}\"",
                key.display(),
                cert.display()
            ),
            e.to_string(),
            "give the key that belongs to sslcert",
        )
    })?;
    Ok(())
}

/// libpq's rule: a key is refused if others can read it (unless owned by root
/// with at most u=rw,g=r), so a leaked key is noticed, not used.
fn check_key_file(key: &Path) -> anyhow::Result<()> {
    let md = std::fs::metadata(key).map_err(|e| {
        fail(
            &format!(
                "certificate present, but not private key file \"{}\"",
                key.display()
            ),
            e.to_string(),
            "give the client's key with sslkey (default ~/.postgresql/postgresql.key)",
        )
    })?;
    if !md.is_file() {
        return Err(fail(
            &format!(
                "private key file \"{}\" is not a regular file",
                key.display()
            ),
            String::new(),
            "sslkey must name a file",
        ));
    }
    let mode = md.mode();
    let euid = unsafe { libc::geteuid() };
    if (md.uid() == euid && mode & 0o077 != 0) || (md.uid() == 0 && mode & 0o037 != 0) {
        return Err(fail(
            &format!("private key file \"{}\" has group or world access", key.display()),
            format!("its permissions are {:04o}", mode & 0o7777),
            "the file must have permissions u=rw (0600) or less if owned by the current user, or u=rw,g=r (0640) or less if owned by root: chmod 0600 it",
        ));
    }
    Ok(())
}

/// OpenSSL's error stack shortened to what libpq says: "certificate verify
/// failed: <why>" (the file and line of OpenSSL's source help no one).
pub fn tidy(text: &str) -> String {
    const FAILED: &str = "certificate verify failed";
    if !text.contains(FAILED) {
        return text.to_string();
    }
    // postgres-openssl appends the verification result after ":: ".
    let why = text
        .split_once(":: ")
        .map(|(_, rest)| rest.split(": error:").next().unwrap_or(rest).trim());
    match why {
        Some(w) if !w.is_empty() => format!("TLS handshake failed: {FAILED}: {w}"),
        _ => format!("TLS handshake failed: {FAILED}"),
    }
}

/// A hint for a failed connection whose message says what TLS went wrong.
pub fn hint_for(text: &str) -> Option<&'static str> {
    let t = text.to_ascii_lowercase();
    if t.contains("hostname mismatch") || t.contains("ip address mismatch") {
        Some("sslmode=verify-full checks that the host name given is in the server's certificate: connect with a name (or address) the certificate names")
    } else if t.contains("certificate verify failed")
        || t.contains("unable to get local issuer")
        || t.contains("self-signed certificate")
    {
        Some("check sslrootcert: it must hold the CA that signed the server's certificate")
    } else if t.contains("server does not support tls") {
        Some("enable ssl on the server, or use a weaker sslmode")
    } else if t.contains("client certificate") || t.contains("certificate authentication failed") {
        Some("give the client's certificate and key with sslcert and sslkey (defaults ~/.postgresql/postgresql.crt and .key)")
    } else if t.contains("no encryption") {
        Some("the server accepts only TLS connections (hostssl) here: use sslmode=prefer or stricter")
    } else if t.contains("tls") || t.contains("ssl") {
        Some("check sslmode, sslrootcert, sslcert and sslkey against the server's TLS settings")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci(s: &str) -> ConnInfo {
        ConnInfo::parse(s).unwrap()
    }

    #[test]
    fn sslmodes_as_libpq_reads_them() {
        assert_eq!(mode(&ci("host=a")).unwrap(), Mode::Prefer);
        assert_eq!(mode(&ci("sslmode=verify-ca")).unwrap(), Mode::VerifyCa);
        assert_eq!(mode(&ci("sslrootcert=system")).unwrap(), Mode::VerifyFull);
        assert!(mode(&ci("sslrootcert=system sslmode=require")).is_err());
        assert!(mode(&ci("sslmode=verify")).is_err());
        assert!(settings(&ci("sslmode=prefer sslnegotiation=direct"), None).is_err());
        assert!(settings(&ci("sslnegotiation=sometimes"), None).is_err());
        assert!(settings(&ci("sslcertmode=maybe"), None).is_err());
        assert!(settings(&ci("sslmode=require ssl_min_protocol_version=TLSv9"), None).is_err());
    }

    #[test]
    fn openssl_noise_is_trimmed() {
        let raw = "error performing TLS handshake: error:0A000086:SSL routines:tls_post_process_server_certificate:certificate verify failed:../ssl/statem/statem_clnt.c:1889:: hostname mismatch: error:0A000086:SSL routines:x";
        assert_eq!(
            tidy(raw),
            "TLS handshake failed: certificate verify failed: hostname mismatch"
        );
        assert_eq!(
            tidy("server does not support TLS"),
            "server does not support TLS"
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::fuzz;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(fuzz::config())]

        /// A server's or OpenSSL's error text: shortened or kept, no panic.
        #[test]
        fn any_error_text_is_tidied(
            s in prop_oneof![
                fuzz::mutated("error performing TLS handshake: certificate verify failed: error:0A000086:SSL routines::certificate verify failed:: self-signed certificate in certificate chain"),
                fuzz::any_text(),
            ]
        ) {
            let _ = tidy(&s);
            let _ = hint_for(&s);
        }
    }
}
