//! TLS for every connection a clone makes, against a real primary that
//! accepts only TLS with client certificates (`hostssl ... cert`,
//! `hostnossl ... reject`), with a CA and certificates made here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

mod names;

const WAIT: Duration = Duration::from_secs(60);

/// Makes a CA in `dir`/`name`.crt/.key.
fn ca(dir: &Path, name: &str) {
    run_ok(Command::new("openssl").current_dir(dir).args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        &format!("{name}.key"),
        "-out",
        &format!("{name}.crt"),
    ]));
}

/// Makes `name`.crt/.key for `cn`, signed by `ca`, with `san` when given.
fn cert(dir: &Path, ca: &str, name: &str, cn: &str, san: Option<&str>) {
    run_ok(Command::new("openssl").current_dir(dir).args([
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        &format!("/CN={cn}"),
        "-keyout",
        &format!("{name}.key"),
        "-out",
        &format!("{name}.csr"),
    ]));
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        san.map(|s| format!("subjectAltName={s}\n"))
            .unwrap_or_default(),
    )
    .unwrap();
    run_ok(Command::new("openssl").current_dir(dir).args([
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        &format!("{name}.csr"),
        "-CA",
        &format!("{ca}.crt"),
        "-CAkey",
        &format!("{ca}.key"),
        "-CAcreateserial",
        "-out",
        &format!("{name}.crt"),
        "-extfile",
        ext.to_str().unwrap(),
    ]));
}

struct Site {
    sc: Scratch,
    p: Pg,
    certs: PathBuf,
}

impl Site {
    fn c(&self, f: &str) -> String {
        self.certs.join(f).display().to_string()
    }
}

/// A running primary that accepts only TLS with a client certificate.
fn tls_primary(name: &str) -> Site {
    let sc = Scratch::new(name);
    let certs = sc.mkdir("certs");
    ca(&certs, "ca");
    ca(&certs, "otherca");
    cert(&certs, "ca", "server", "pgserver", Some("IP:127.0.0.1"));
    cert(&certs, "ca", "client", "postgres", None);
    run_ok(
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&certs),
    );
    run_ok(
        Command::new("sh")
            .arg("-c")
            .arg(format!("chmod 0600 {}/*.key", certs.display())),
    );
    let mut p = Pg::init(&sc, "primary");
    p.append_conf(&format!(
        "ssl = on\nssl_cert_file = '{0}/server.crt'\nssl_key_file = '{0}/server.key'\nssl_ca_file = '{0}/ca.crt'\n",
        certs.display()
    ));
    for line in [
        "hostssl replication all 127.0.0.1/32 cert",
        "hostssl all all 127.0.0.1/32 cert",
        "hostnossl replication all 0.0.0.0/0 reject",
        "hostnossl all all 0.0.0.0/0 reject",
    ] {
        p.hba_prepend(line);
    }
    p.start();
    Site { sc, p, certs }
}

fn clone_with(
    s: &Site,
    conninfo: &str,
    target: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let cfg = s.sc.write("pgclone.conf", "node_id=2\nnode_name='node2'\n");
    let mut args = vec![
        "-f",
        cfg.to_str().unwrap(),
        "standby",
        "clone",
        "-d",
        conninfo,
        "-D",
        target.to_str().unwrap(),
    ];
    args.extend(extra);
    pgclone(&s.sc, &args, env)
}

#[test]
fn a_verify_full_clone_with_a_client_certificate_streams_over_tls() {
    let s = tls_primary("tls-ok");
    s.p.sql("CREATE TABLE t(i int); INSERT INTO t SELECT generate_series(1, 100)");
    let ci = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
        s.p.port, s.c("ca.crt"), s.c("client.crt"), s.c("client.key")
    );
    let target = s.sc.path("standby");
    let out = clone_with(&s, &ci, &target, &[], &[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let auto = std::fs::read_to_string(target.join("postgresql.auto.conf")).unwrap();
    for want in ["sslmode=verify-full", "sslrootcert=", "sslcert=", "sslkey="] {
        assert!(
            auto.contains(want),
            "{want} missing from primary_conninfo:\n{auto}"
        );
    }
    let mut st = Pg::existing(&s.sc, target);
    st.start();
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
    s.p.wait_for(
        "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.application_name = 'node2'",
        "t",
        WAIT,
    );
    s.p.sql("INSERT INTO t VALUES (101)");
    st.wait_for("SELECT count(*) FROM t", "101", WAIT);
}

#[test]
fn pgssl_variables_and_home_defaults_and_an_encrypted_key_work() {
    let s = tls_primary("tls-env");
    // ~/.postgresql/postgresql.crt and an encrypted postgresql.key.
    let home = s.sc.mkdir(".postgresql");
    std::fs::copy(s.certs.join("client.crt"), home.join("postgresql.crt")).unwrap();
    run_ok(
        Command::new("openssl")
            .args(["pkey", "-aes256", "-passout", "pass:s3cret", "-in"])
            .arg(s.certs.join("client.key"))
            .arg("-out")
            .arg(home.join("postgresql.key")),
    );
    run_ok(
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&home),
    );
    run_ok(
        Command::new("chmod")
            .arg("0600")
            .arg(home.join("postgresql.key")),
    );
    let ci = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslpassword=s3cret",
        s.p.port
    );
    let target = s.sc.path("standby");
    let env = [
        ("PGSSLMODE", "verify-full"),
        ("PGSSLROOTCERT", &*s.c("ca.crt")),
    ];
    let out = clone_with(&s, &ci, &target, &["--dry-run"], &env);
    let (err, so) = (stderr(&out), stdout(&out));
    assert!(out.status.success(), "{err}\n{so}");
    assert!(
        !err.contains("s3cret") && !so.contains("s3cret"),
        "{err}\n{so}"
    );
    // The plan's pg_basebackup gets the same TLS parameters.
    assert!(so.contains("sslmode=verify-full"), "{so}");
    assert!(!target.exists());
    // For real: pg_basebackup can only copy if it decrypts the key, with the
    // passphrase it gets from pgclone without it being on its command line.
    let out = clone_with(&s, &ci, &target, &[], &env);
    let (err, so) = (stderr(&out), stdout(&out));
    assert!(out.status.success(), "{err}\n{so}");
    assert!(
        !err.contains("s3cret") && !so.contains("s3cret"),
        "{err}\n{so}"
    );
    assert!(target.join("PG_VERSION").exists());
    std::fs::remove_dir_all(&target).unwrap();

    // The wrong passphrase: an error naming the key.
    let ci = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslpassword=n0tit",
        s.p.port
    );
    let out = clone_with(&s, &ci, &target, &["--dry-run"], &env);
    let err = stderr(&out);
    assert!(err.contains("could not load private key file"), "{err}");
    assert!(!err.contains("n0tit"), "{err}");

    // A key others can read is refused, as libpq does.
    run_ok(
        Command::new("chmod")
            .arg("0644")
            .arg(home.join("postgresql.key")),
    );
    let ci = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslpassword=s3cret",
        s.p.port
    );
    let out = clone_with(&s, &ci, &target, &[], &env);
    let err = stderr(&out);
    assert!(err.contains("has group or world access"), "{err}");
    assert!(err.contains("HINT: "), "{err}");
    assert!(!target.exists());
}

#[test]
fn an_upstream_conninfo_sslmode_binds_pg_basebackup_too() {
    let s = tls_primary("tls-upstream");
    let ci = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslcert={} sslkey={}",
        s.p.port,
        s.c("client.crt"),
        s.c("client.key")
    );
    let up = format!(
        "host=127.0.0.1 port={} sslmode=verify-full sslrootcert={}",
        s.p.port,
        s.c("otherca.crt")
    );
    let target = s.sc.path("standby");
    // verify-full against the wrong CA, given only in --upstream-conninfo:
    // pgclone's own connection is held to it and refuses.
    let out = clone_with(&s, &ci, &target, &["--upstream-conninfo", &up], &[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("certificate verify failed"), "{err}");
    assert!(!target.exists());
}

/// Each TLS problem: a clear error naming it, a hint, nothing changed.
#[test]
fn tls_problems_are_named_and_change_nothing() {
    let s = tls_primary("tls-errors");
    let base = format!("port={} user=postgres dbname=postgres", s.p.port);
    let (ca, other) = (s.c("ca.crt"), s.c("otherca.crt"));
    let (crt, key) = (s.c("client.crt"), s.c("client.key"));
    let cases = [
        (
            format!("host=127.0.0.1 {base} sslmode=verify-full sslrootcert={other} sslcert={crt} sslkey={key}"),
            vec!["certificate verify failed", "HINT: check sslrootcert"],
        ),
        (
            format!("host=localhost hostaddr=127.0.0.1 {base} sslmode=verify-full sslrootcert={ca} sslcert={crt} sslkey={key}"),
            vec![
                "server certificate for \"127.0.0.1\" (and 1 other name) does not match host name \"localhost\"",
                "HINT: sslmode=verify-full checks host= against the server's certificate, which is valid for \"127.0.0.1\", \"pgserver\"",
            ],
        ),
        (
            format!("host=127.0.0.1 {base} sslmode=verify-full sslrootcert={ca}"),
            vec!["client certificate", "HINT: give the client's certificate and key"],
        ),
        (
            format!("host=127.0.0.1 {base} sslmode=disable sslcert={crt} sslkey={key}"),
            vec!["no encryption", "HINT: the server accepts only TLS"],
        ),
        (
            format!("host=127.0.0.1 {base} sslmode=verify-ca sslrootcert={}", s.c("nonexistent.crt")),
            vec!["root certificate file", "does not exist", "HINT: "],
        ),
    ];
    // A server without TLS at all, and sslmode=require.
    let mut plain = Pg::init(&s.sc, "plain");
    plain.start();
    let cases = cases.into_iter().chain([(
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=require",
            plain.port
        ),
        vec![
            "server does not support TLS",
            "HINT: enable ssl on the server",
        ],
    )]);
    let target = s.sc.path("standby");
    for (ci, wants) in cases {
        let out = clone_with(&s, &ci, &target, &[], &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{ci}: {err}");
        for w in wants {
            assert!(err.contains(w), "{ci}: expected {w:?} in:\n{err}");
        }
        assert!(!target.exists(), "{ci}");
    }
}

/// The default `prefer` and `allow` reach a TLS-only primary (`allow` after
/// the plain attempt is refused); `prefer` falls back to plain text only when
/// TLS fails, and then both failures are reported.
#[test]
fn prefer_and_allow_reach_a_tls_only_primary() {
    let s = tls_primary("tls-prefer");
    let (crt, key) = (s.c("client.crt"), s.c("client.key"));
    let target = s.sc.path("standby");
    for mode in ["", " sslmode=prefer", " sslmode=allow", " sslmode=require"] {
        let ci = format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres sslcert={crt} sslkey={key}{mode}",
            s.p.port
        );
        let out = clone_with(&s, &ci, &target, &["--dry-run"], &[]);
        assert!(out.status.success(), "{ci}: {}", stderr(&out));
        assert!(stdout(&out).contains("sslcert="), "{}", stdout(&out));
    }
    // ~/.postgresql/root.crt makes prefer verify the chain, as in libpq: the
    // wrong CA there fails TLS, and the plain retry is refused by pg_hba.
    let home = s.sc.mkdir(".postgresql");
    std::fs::copy(s.certs.join("otherca.crt"), home.join("root.crt")).unwrap();
    let ci = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslcert={crt} sslkey={key}",
        s.p.port
    );
    let out = clone_with(&s, &ci, &target, &["--dry-run"], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("certificate verify failed"), "{err}");
    assert!(err.contains("no encryption"), "{err}");
    assert!(!target.exists());
}
