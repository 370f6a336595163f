//! Filling in a connection's parameters as libpq does: service file, `PG*`
//! environment variables, compiled-in defaults, then the password from
//! `password`, `PGPASSWORD` or the password file.

use std::path::PathBuf;

use super::passfile;
use super::ConnInfo;

/// libpq keywords and the environment variables that default them.
const ENV_DEFAULTS: &[(&str, &str)] = &[
    ("host", "PGHOST"),
    ("hostaddr", "PGHOSTADDR"),
    ("port", "PGPORT"),
    ("dbname", "PGDATABASE"),
    ("user", "PGUSER"),
    ("passfile", "PGPASSFILE"),
    ("sslmode", "PGSSLMODE"),
    ("sslnegotiation", "PGSSLNEGOTIATION"),
    ("sslcompression", "PGSSLCOMPRESSION"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
    ("sslcertmode", "PGSSLCERTMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcrl", "PGSSLCRL"),
    ("sslcrldir", "PGSSLCRLDIR"),
    ("sslsni", "PGSSLSNI"),
    ("ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION"),
    ("ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("application_name", "PGAPPNAME"),
    ("options", "PGOPTIONS"),
    ("target_session_attrs", "PGTARGETSESSIONATTRS"),
];

/// Debian's libpq looks for the server's socket here by default.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// A connection's parameters with every default applied, and the password
/// that libpq would use (kept apart so it is never displayed).
#[derive(Clone)]
pub struct Resolved {
    /// Everything but the password.
    pub params: ConnInfo,
    pub password: Option<String>,
    /// Where the password came from, for messages ("PGPASSWORD", a file, ...).
    pub password_source: Option<String>,
    /// The client key's passphrase, as secret as the password.
    pub sslpassword: Option<String>,
    /// The password-file keys (`host:port:db:user`) of the other connections
    /// the same command makes that found no password either: a missing
    /// password's hint names them all, so one edit makes every connection work.
    pub others_without_password: Vec<String>,
}

impl Resolved {
    /// For a libpq child: a service file (mode 0600, in `dir`) that gives it
    /// `sslpassword`, which libpq takes from no environment variable and
    /// which must never be on argv. Set PGSERVICEFILE to it and PGSERVICE
    /// to `pgclone`.
    pub fn child_service_file(&self, dir: &std::path::Path) -> anyhow::Result<Option<PathBuf>> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let Some(pw) = &self.sslpassword else {
            return Ok(None);
        };
        let path = dir.join("pgclone-tls.conf");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(format!("[pgclone]\nsslpassword={pw}\n").as_bytes())?;
        Ok(Some(path))
    }
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("params", &self.params)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field(
                "sslpassword",
                &self.sslpassword.as_ref().map(|_| "********"),
            )
            .finish()
    }
}

/// The password-file lines that make this connection and the command's other
/// ones without a password work: one line each, and the single `*` line
/// when they differ only in the database.
fn missing_password_hint(key: &str, others: &[String], file: &str) -> String {
    let mut lines = vec![key.to_string()];
    for o in others {
        if !lines.contains(o) {
            lines.push(o.clone());
        }
    }
    let line = |k: &str| format!("{k}:PASSWORD");
    let mut hint = format!("add the line {} to \"{file}\" (mode 0600)", line(key));
    if lines.len() > 1 {
        let rest: Vec<String> = lines[1..].iter().map(|k| line(k)).collect();
        hint.push_str(&format!(
            " and, for the other connections the command makes, {}",
            rest.join(" and ")
        ));
        // host:port:db:user, read from the right (a host may hold colons).
        let any_db = |k: &str| {
            let f: Vec<&str> = k.rsplitn(3, ':').collect();
            (f.len() == 3).then(|| format!("{}:*:{}", f[2], f[0]))
        };
        match any_db(key) {
            Some(w) if lines.iter().all(|k| any_db(k).as_ref() == Some(&w)) => {
                hint.push_str(&format!(" (or the one line {} for them all)", line(&w)));
            }
            _ => {}
        }
    }
    hint.push_str("; or name another file with passfile in the configuration");
    hint
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// The current OS user's name (libpq's default user).
pub fn os_user() -> String {
    let uid = unsafe { libc::geteuid() };
    let pw = unsafe { libc::getpwuid(uid) };
    if pw.is_null() {
        return std::env::var("USER").unwrap_or_else(|_| "postgres".into());
    }
    unsafe { std::ffi::CStr::from_ptr((*pw).pw_name) }
        .to_string_lossy()
        .into_owned()
}

/// Applies the service named by `service` / `PGSERVICE` (per-user file first,
/// then the system one), filling only keys that are not set.
fn apply_service(c: &mut ConnInfo) -> anyhow::Result<()> {
    let Some(name) = c
        .get("service")
        .map(str::to_string)
        .or_else(|| std::env::var("PGSERVICE").ok())
    else {
        return Ok(());
    };
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(f) = std::env::var_os("PGSERVICEFILE") {
        files.push(f.into());
    } else if let Some(h) = home() {
        files.push(h.join(".pg_service.conf"));
    }
    let sysconf = std::env::var_os("PGSYSCONFDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/postgresql-common"));
    files.push(sysconf.join("pg_service.conf"));
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let mut in_section = false;
        let mut found = false;
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if let Some(section) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                in_section = section == name;
                found |= in_section;
                continue;
            }
            if in_section {
                if let Some((k, v)) = l.split_once('=') {
                    c.set_default(k.trim(), v.trim());
                }
            }
        }
        if found {
            return Ok(());
        }
    }
    Err(
        crate::report::Failure::new(format!("definition of service \"{name}\" not found"))
            .hint("define it in ~/.pg_service.conf or PGSERVICEFILE, as for psql")
            .into(),
    )
}

/// Resolves `given` like libpq would for a normal (`replication = false`) or a
/// replication connection.
pub fn resolve(given: &ConnInfo, replication: bool) -> anyhow::Result<Resolved> {
    let mut c = given.clone();
    apply_service(&mut c)?;
    for (key, var) in ENV_DEFAULTS {
        if c.get(key).is_none() {
            if let Ok(v) = std::env::var(var) {
                if !v.is_empty() {
                    c.set(key, &v);
                }
            }
        }
    }
    c.remove("service");
    c.set_default("host", DEFAULT_SOCKET_DIR);
    c.set_default("port", "5432");
    c.set_default("user", &os_user());
    let user = c.get("user").unwrap().to_string();
    c.set_default("dbname", &user);

    let mut password = c.get("password").map(str::to_string);
    let mut source = password
        .as_ref()
        .map(|_| "the connection string".to_string());
    c.remove("password");
    let sslpassword = c.get("sslpassword").map(str::to_string);
    c.remove("sslpassword");
    if password.is_none() {
        if let Ok(p) = std::env::var("PGPASSWORD") {
            password = Some(p);
            source = Some("PGPASSWORD".into());
        }
    }
    if password.is_none() {
        let file = c
            .get("passfile")
            .map(PathBuf::from)
            .or_else(|| home().map(|h| h.join(".pgpass")));
        if let Some(file) = file {
            let host = c.get("host").unwrap();
            // libpq matches socket connections against "localhost".
            let host = if host.starts_with('/') {
                "localhost"
            } else {
                host
            };
            let db = if replication {
                "replication"
            } else {
                c.get("dbname").unwrap()
            };
            if let Some(p) = passfile::lookup(&file, host, c.get("port").unwrap(), db, &user) {
                password = Some(p);
                source = Some(format!("password file \"{}\"", file.display()));
            }
        }
    }
    Ok(Resolved {
        params: c,
        password,
        password_source: source,
        sslpassword,
        others_without_password: Vec::new(),
    })
}

impl Resolved {
    /// The password file libpq reads for this connection.
    pub fn password_file(&self) -> Option<PathBuf> {
        self.params
            .get("passfile")
            .map(PathBuf::from)
            .or_else(|| home().map(|h| h.join(".pgpass")))
    }

    /// This connection's key in a password file, `host:port:db:user`, as
    /// libpq looks it up (a socket connection is "localhost"; a replication
    /// connection's database is "replication").
    pub fn password_key(&self, replication: bool) -> String {
        let db = if replication {
            "replication"
        } else {
            self.params.get("dbname").unwrap_or("*")
        };
        let host = match self.params.get("host") {
            Some(h) if h.starts_with('/') => "localhost",
            Some(h) => h,
            None => "*",
        };
        let port = self.params.get("port").unwrap_or("*");
        let user = self.params.get("user").unwrap_or("");
        format!("{host}:{port}:{db}:{user}")
    }

    /// For a connection refused over its password: what was seen and what
    /// to do, naming the user and where the password came from (never the
    /// password). `None` when `error` is not about the password.
    pub fn password_problem(&self, error: &str, replication: bool) -> Option<(String, String)> {
        let user = self.params.get("user").unwrap_or("");
        let file = self
            .password_file()
            .map(|f| f.display().to_string())
            .unwrap_or_else(|| "~/.pgpass".into());
        let key = self.password_key(replication);
        let refused = error.contains("password authentication failed")
            || error.contains("authentication failed for user");
        let missing = error.contains("password missing") || error.contains("no password supplied");
        match (&self.password_source, refused, missing) {
            (Some(src), true, _) => Some((
                format!("the server refused the password of user \"{user}\" taken from {src}"),
                format!("correct the password for \"{user}\" in {src} (or the user's password on the upstream)"),
            )),
            (None, _, true) | (None, true, _) => Some((
                format!(
                    "the server asks user \"{user}\" for a password and none was found: not in the connection string, not in PGPASSWORD, not in the password file \"{file}\" for {key}"
                ),
                missing_password_hint(&key, &self.others_without_password, &file),
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::missing_password_hint;

    #[test]
    fn a_missing_password_hint_covers_every_connection() {
        let f = "/p";
        assert_eq!(
            missing_password_hint("h:5432:repmgr:repmgr", &[], f),
            "add the line h:5432:repmgr:repmgr:PASSWORD to \"/p\" (mode 0600); or name another file with passfile in the configuration"
        );
        let both = missing_password_hint(
            "h:5432:repmgr:repmgr",
            &["h:5432:replication:repmgr".into()],
            f,
        );
        assert!(
            both.starts_with("add the line h:5432:repmgr:repmgr:PASSWORD to \"/p\""),
            "{both}"
        );
        assert!(
            both.contains("h:5432:replication:repmgr:PASSWORD"),
            "{both}"
        );
        assert!(
            both.contains("(or the one line h:5432:*:repmgr:PASSWORD for them all)"),
            "{both}"
        );
        // Another user: two lines, no single one covers them.
        let two = missing_password_hint(
            "::1:5432:repmgr:repmgr",
            &["::1:5432:replication:repl".into()],
            f,
        );
        assert!(two.contains("::1:5432:replication:repl:PASSWORD"), "{two}");
        assert!(!two.contains("the one line"), "{two}");
    }
}
