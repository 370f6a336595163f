//! Remote commands over ssh. ssh joins its arguments into one string that the
//! remote shell parses, so every argument is quoted here.

pub mod ssh;

pub use ssh::SshCommand;

/// ssh options pgclone adds for bulk transfers: AES-GCM first (hardware
/// accelerated, much cheaper than chacha20 on the CPUs this runs on); `^`
/// only moves it to the front of the defaults, so any server still negotiates.
pub const FAST_CIPHER: [&str; 2] = [
    "-o",
    "Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com",
];

/// ssh options that bound the time to reach a host (`ConnectTimeout` covers
/// the TCP connection and the server's banner) and notice one that stops
/// answering (four missed keepalives 15 s apart).
pub fn liveness_options(connect_timeout_secs: u32) -> Vec<String> {
    vec![
        "-o".into(),
        format!("ConnectTimeout={connect_timeout_secs}"),
        "-o".into(),
        "ServerAliveInterval=15".into(),
        "-o".into(),
        "ServerAliveCountMax=4".into(),
    ]
}

/// The command that starts a shared ssh connection to `dest` in the
/// background (`-fN`): later ssh commands reach it through `control_path`
/// with `ControlMaster=no` and skip the handshake. Its standard streams are
/// detached (a master holding a caller's pipe open would make the caller
/// wait for it); its messages go to `log`.
pub fn master_command(
    dest: &str,
    port: Option<&str>,
    ssh_options: &[String],
    control_path: &std::path::Path,
    persist_secs: u32,
    log: std::fs::File,
) -> std::process::Command {
    let mut c = SshCommand::new(dest)
        .start_master(control_path, persist_secs)
        .fast_cipher()
        .port(port)
        .options(ssh_options)
        .command();
    c.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log);
    c
}

/// barman-wal-restore's default user on the Barman host (its `-U`).
pub const BARMAN_DEFAULT_USER: &str = "barman";

/// The user a logical ssh target's host is customarily reached as, when
/// neither the destination nor ssh's configuration names one: `barman` for
/// the Barman host (barman-wal-restore's `-U` default); none for any other
/// target (ssh's own default, the login name).
pub fn customary_user(target: &str) -> Option<&'static str> {
    CUSTOMARY_USERS
        .iter()
        .find(|(t, _)| *t == target)
        .map(|(_, u)| *u)
}

/// The targets that have a customary user, and that user.
pub const CUSTOMARY_USERS: &[(&str, &str)] = &[("barman", BARMAN_DEFAULT_USER)];

/// The ssh destination of a logical target's `host`, the same for a clone
/// and for `wal-restore`, for every target: `host` as given when it names a
/// user (`user@host`); else `user@host` when a user is given (`wal-restore
/// -U`); else, for a target with a customary user (see [`customary_user`]),
/// `host` alone when the ssh configuration sets a User for it (as `ssh -G`
/// reports it: one other than the login name), else `customary@host`;
/// else `host` as given.
pub fn destination(
    target: &str,
    host: &str,
    user: Option<&str>,
    port: Option<&str>,
    ssh_options: &[String],
) -> String {
    if host.contains('@') {
        return host.to_string();
    }
    if let Some(u) = user {
        return format!("{u}@{host}");
    }
    let Some(customary) = customary_user(target) else {
        return host.to_string();
    };
    match configured_user(host, port, ssh_options) {
        Some(u) if u != crate::pg::libpq::os_user() => host.to_string(),
        _ => format!("{customary}@{host}"),
    }
}

/// The ssh destination of the Barman host ([`destination`] of `barman`).
pub fn barman_destination(
    host: &str,
    user: Option<&str>,
    port: Option<&str>,
    ssh_options: &[String],
) -> String {
    destination("barman", host, user, port, ssh_options)
}

/// The user ssh would log in as on `host` (`ssh -G`: its configuration
/// evaluated, nothing connected); none when ssh cannot say.
pub fn configured_user(host: &str, port: Option<&str>, ssh_options: &[String]) -> Option<String> {
    let mut c = SshCommand::new(host)
        .print_config()
        .port(port)
        .options(ssh_options)
        .command();
    c.stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    crate::child::dies_with_parent(&mut c);
    crate::report::running(&c);
    let out = c.output().ok().filter(|o| o.status.success())?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("user "))
        .map(|u| u.trim().to_string())
}

/// Quotes `arg` for a POSIX shell: one literal word, whatever it contains.
pub fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn every_target_s_destination_follows_one_rule() {
        // A user given, with the host or apart, is used as given.
        for target in ["barman", "repo"] {
            assert_eq!(destination(target, "u@h", Some("x"), None, &[]), "u@h");
            assert_eq!(destination(target, "h", Some("x"), None, &[]), "x@h");
        }
        // Without one: a target with no customary user is ssh's own
        // business (nothing is asked of ssh); Barman's is barman.
        assert_eq!(destination("repo", "h", None, None, &[]), "h");
        assert_eq!(customary_user("repo"), None);
        assert_eq!(customary_user("barman"), Some("barman"));
    }

    #[test]
    fn plain_words_stay_plain() {
        assert_eq!(shell_quote("barman"), "barman");
        assert_eq!(
            shell_quote("--config=/etc/barman.conf"),
            "--config=/etc/barman.conf"
        );
    }

    #[test]
    fn hostile_words_stay_one_literal_argument() {
        // Checked against a real shell: each value comes back unchanged and alone.
        for hostile in [
            "pg;touch$IFS/tmp/x;",
            "a b",
            "it's",
            "$(id)",
            "`id`",
            "",
            "x\ny",
            "'\"\\",
        ] {
            let script = format!("printf '%s\\0' {}", shell_quote(hostile));
            let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
            assert_eq!(
                out.stdout,
                format!("{hostile}\0").into_bytes(),
                "{hostile:?}"
            );
        }
    }
}
