//! Which server certificates `sslmode=verify-full` accepts for which `host`:
//! psql (the real libpq) decides, and pgclone must decide the same, case by
//! case, against one real server whose certificate is switched with a reload.
//! Each case also says what libpq's rules predict, so a row that stops
//! testing its rule (psql changed, or the setup broke) fails too.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{ca, cert, clone_with, Site};
use crate::support::*;

/// A server certificate: its Common Name and subjectAltName.
struct Cert {
    name: &'static str,
    cn: &'static str,
    san: Option<&'static str>,
}

/// One connection: host, hostaddr, sslmode, and libpq's expected verdict.
struct Row {
    host: &'static str,
    hostaddr: Option<&'static str>,
    mode: &'static str,
    accept: bool,
    rule: &'static str,
}

fn row(host: &'static str, accept: bool, rule: &'static str) -> Row {
    Row {
        host,
        hostaddr: None,
        mode: "verify-full",
        accept,
        rule,
    }
}

/// A name that resolves nowhere, reached at 127.0.0.1 through hostaddr.
fn named(host: &'static str, accept: bool, rule: &'static str) -> Row {
    Row {
        hostaddr: Some("127.0.0.1"),
        ..row(host, accept, rule)
    }
}

fn cases() -> Vec<(Cert, Vec<Row>)> {
    let c = |name, cn, san| Cert { name, cn, san };
    vec![
        (
            c("cn-ip", "127.0.0.1", None),
            vec![
                row("127.0.0.1", true, "the issue: CN=127.0.0.1, no SAN"),
                row("localhost", false, "CN names another host"),
                row("127.1", false, "a CN is a string, not an address"),
            ],
        ),
        (
            c("cn-dns", "localhost", None),
            vec![
                row("localhost", true, "CN only"),
                row("LOCALHOST", true, "CN compared ignoring case"),
                row("127.0.0.1", false, "CN names another host"),
            ],
        ),
        (
            c("san-dns", "127.0.0.1", Some("DNS:localhost")),
            vec![
                row("localhost", true, "dNSName SAN"),
                row("127.0.0.1", true, "IP host, no iPAddress SAN: CN counts"),
                named("pgserver", false, "no name matches"),
            ],
        ),
        (
            c("san-ip", "pgserver", Some("IP:127.0.0.1")),
            vec![
                row("127.0.0.1", true, "iPAddress SAN"),
                row("127.1", true, "iPAddress compared as an address"),
                named("pgserver", true, "DNS host, no dNSName SAN: CN counts"),
                row("localhost", false, "no name matches"),
            ],
        ),
        (
            c("dns-hides-cn", "localhost", Some("DNS:db.example.test")),
            vec![
                row("localhost", false, "a dNSName SAN hides the CN"),
                named("db.example.test", true, "dNSName SAN"),
            ],
        ),
        (
            c("ip-hides-cn", "127.0.0.1", Some("IP:10.9.9.9")),
            vec![row("127.0.0.1", false, "an iPAddress SAN hides the CN")],
        ),
        (
            c(
                "san-both",
                "unused",
                Some("DNS:localhost,IP:127.0.0.1,IP:::1"),
            ),
            vec![
                row("localhost", true, "dNSName SAN"),
                row("127.0.0.1", true, "iPAddress SAN"),
                row("::1", true, "IPv6 iPAddress SAN"),
                row("0:0::1", true, "IPv6 compared as an address"),
                named("unused", false, "SANs of both kinds hide the CN"),
            ],
        ),
        (
            c("wildcard", "x", Some("DNS:*.example.test")),
            vec![
                named("db.example.test", true, "*. covers one label"),
                named("DB.EXAMPLE.TEST", true, "wildcard ignoring case"),
                named("a.db.example.test", false, "*. covers only one label"),
                named("example.test", false, "*. needs a label"),
            ],
        ),
        (
            c("cn-wildcard", "*.example.test", None),
            vec![named("db.example.test", true, "a wildcard CN")],
        ),
        (
            c("cn-ipv6", "::1", None),
            vec![
                row("::1", true, "IPv6 CN as a string"),
                row("0:0::1", false, "a CN is a string, not an address"),
            ],
        ),
        (
            c("wrong", "pgserver", Some("DNS:elsewhere.test,IP:10.0.0.1")),
            vec![
                row("127.0.0.1", false, "no name matches"),
                row("localhost", false, "no name matches"),
                Row {
                    mode: "verify-ca",
                    ..row("localhost", true, "verify-ca checks no name")
                },
                Row {
                    host: "",
                    hostaddr: Some("127.0.0.1"),
                    mode: "verify-full",
                    accept: false,
                    rule: "hostaddr only: no name to check",
                },
            ],
        ),
    ]
}

/// psql's verdict: None when it connects, else its message.
fn psql(s: &Site, conninfo: &str) -> Option<String> {
    let bindir = std::env::var_os("PGCLONE_TEST_PG18_BINDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(pg_bindir);
    let out = run(as_pg("env")
        .arg("-i")
        .arg(format!("HOME={}", s.sc.dir.display()))
        .arg(bindir.join("psql"))
        .args(["-X", "-A", "-t", "-c", "SELECT 1", conninfo]));
    if out.status.success() {
        return None;
    }
    let err = stderr(&out);
    // "psql: error: connection to server at ... failed: <libpq's message>"
    Some(
        err.lines()
            .find_map(|l| l.split_once(" failed: ").map(|(_, m)| m.trim().to_string()))
            .unwrap_or_else(|| err.trim().to_string()),
    )
}

/// pgclone's verdict (a dry run, which connects first): None when it gets
/// past the connection, else its DETAIL line.
fn pgclone_verdict(s: &Site, conninfo: &str) -> Option<String> {
    let target = s.sc.path("standby");
    let out = clone_with(s, conninfo, &target, &["--dry-run"], &[]);
    let err = stderr(&out);
    if out.status.success() {
        return None;
    }
    assert!(
        err.contains("could not connect") || err.contains("host name must be specified"),
        "{conninfo}: pgclone failed for another reason:\n{err}\n{}",
        stdout(&out)
    );
    Some(err)
}

/// Makes `c` the server's certificate and waits until new connections use it.
fn serve(s: &Site, c: &Cert) {
    let file = s.c(&format!("{}.crt", c.name));
    let key = s.c(&format!("{}.key", c.name));
    s.p.sql(&format!("ALTER SYSTEM SET ssl_cert_file = '{file}'"));
    s.p.sql(&format!("ALTER SYSTEM SET ssl_key_file = '{key}'"));
    s.p.sql("SELECT pg_reload_conf()");
    // A new backend shows the setting once the postmaster has reloaded (and
    // with it, built its new TLS context).
    s.p.wait_for("SHOW ssl_cert_file", &file, Duration::from_secs(30));
}

#[test]
fn verify_full_accepts_and_refuses_the_names_psql_does() {
    let started = Instant::now();
    let sc = Scratch::new("tls-names");
    let certs = sc.mkdir("certs");
    ca(&certs, "ca");
    ca(&certs, "otherca");
    let all = cases();
    for (c, _) in &all {
        cert(&certs, "ca", c.name, c.cn, c.san);
    }
    own(&certs);
    let mut p = Pg::init(&sc, "primary");
    p.append_conf(&format!(
        "listen_addresses = '127.0.0.1,::1'\nssl = on\nssl_cert_file = '{0}/cn-ip.crt'\nssl_key_file = '{0}/cn-ip.key'\n",
        certs.display()
    ));
    for line in [
        "hostssl all all 127.0.0.1/32 trust",
        "hostssl all all ::1/128 trust",
        "hostssl replication all 127.0.0.1/32 trust",
        "hostssl replication all ::1/128 trust",
    ] {
        p.hba_prepend(line);
    }
    p.start();
    let s = Site { sc, p, certs };
    let ca_file = s.c("ca.crt");

    let mut table = vec![format!(
        "{:<13} {:<44} {:<20} {:<11} {:<6} {:<7} {}",
        "certificate", "CN / subjectAltName", "host", "sslmode", "psql", "pgclone", "rule"
    )];
    let mut disagree = Vec::new();
    let mut worded = 0;
    let verdict = |v: &Option<String>| if v.is_none() { "ok" } else { "refuse" };
    let mut check = |c: &Cert, r: &Row, root: &str| {
        let mut ci = format!(
            "port={} user=postgres dbname=postgres sslmode={} sslrootcert={root}",
            s.p.port, r.mode
        );
        if !r.host.is_empty() {
            ci = format!("host={} {ci}", r.host);
        }
        if let Some(a) = r.hostaddr {
            ci = format!("hostaddr={a} {ci}");
        }
        let (lib, ours) = (psql(&s, &ci), pgclone_verdict(&s, &ci));
        let shown_host = match (r.host, r.hostaddr) {
            ("", Some(a)) => format!("(hostaddr={a})"),
            (h, _) => h.to_string(),
        };
        table.push(format!(
            "{:<13} {:<44} {:<20} {:<11} {:<6} {:<7} {}",
            c.name,
            format!("CN={} {}", c.cn, c.san.unwrap_or("")),
            shown_host,
            r.mode,
            verdict(&lib),
            verdict(&ours),
            r.rule
        ));
        if lib.is_none() != r.accept {
            disagree.push(format!(
                "{ci}: libpq's rule ({}) predicts {}, psql says {lib:?}",
                r.rule,
                if r.accept { "ok" } else { "refuse" }
            ));
        }
        match (&lib, &ours) {
            (None, None) => {}
            (Some(m), Some(err)) => {
                // A name refused: pgclone says it in libpq's words, with a hint.
                if m.starts_with("server certificate for") || m.starts_with("host name must") {
                    worded += 1;
                    if worded == 1 {
                        eprintln!("pgclone's refusal, for example ({ci}):\n{err}");
                    }
                    if !err.contains(m.as_str()) || !err.contains("HINT: ") {
                        disagree.push(format!("{ci}: psql says {m:?}, pgclone:\n{err}"));
                    }
                }
            }
            _ => disagree.push(format!("{ci}: psql {lib:?}, pgclone {ours:?}")),
        }
    };
    for (c, rows) in &all {
        serve(&s, c);
        for r in rows {
            check(c, r, &ca_file);
        }
    }
    // sslmode=require with a root certificate file verifies the chain (as
    // verify-ca), and checks no name.
    let wrong = &all.iter().find(|(c, _)| c.name == "wrong").unwrap().0;
    serve(&s, wrong);
    let req = |accept, rule| Row {
        mode: "require",
        ..row("localhost", accept, rule)
    };
    check(wrong, &req(true, "require checks no name"), &ca_file);
    check(
        wrong,
        &req(false, "require with a root file checks the chain"),
        &s.c("otherca.crt"),
    );
    eprintln!("{}", table.join("\n"));
    eprintln!(
        "{} cases ({worded} refusals of a name, in libpq's words) in {:.1?}",
        table.len() - 1,
        started.elapsed()
    );
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
    assert!(worded >= 10, "too few name refusals compared: {worded}");
}

/// The certificates belong to the postgres user; keys 0600.
fn own(dir: &Path) {
    run_ok(
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir),
    );
    run_ok(
        Command::new("sh")
            .arg("-c")
            .arg(format!("chmod 0600 {}/*.key", dir.display())),
    );
}
