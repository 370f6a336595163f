//! The one builder of every ssh command line pgclone runs: remote commands,
//! the shared connection (start, stop), `ssh -G`, and the remote shell rsync
//! is given (`-e`).
//!
//! Every command line has the same shape:
//!
//! ```text
//! ssh -o BatchMode=yes [connection sharing] [-G] [cipher] [-p PORT] OPTIONS... -- DEST [REMOTE...]
//! ```
//!
//! - `BatchMode=yes` always: ssh never prompts (no password or passphrase
//!   can be asked for, nor does one ever reach a command line).
//! - pgclone's own options (connection sharing, cipher, port) come before
//!   the caller's `OPTIONS`: ssh takes the first value of an option, so the
//!   connection sharing pgclone set up cannot be redirected by an operator's
//!   `ControlPath`. Among `OPTIONS`, the first given wins too (see
//!   [`SshCommand::options`]).
//! - `--` before the destination: a destination starting with `-` is a host
//!   name to ssh, never an option (OpenSSH then refuses it as a host name).
//! - The remote command is quoted for the remote shell, one word per
//!   argument: ssh joins its arguments into one string that shell parses.

use std::path::{Path, PathBuf};

use super::{shell_quote, FAST_CIPHER};

/// What the ssh does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// Runs the remote command (or, as rsync's remote shell, rsync's).
    Run,
    /// Starts the shared connection at `path` in the background (`-fN`).
    StartMaster { path: PathBuf, persist_secs: u32 },
    /// Asks the shared connection at its path to exit (`-O exit`).
    StopMaster(PathBuf),
    /// Asks the shared connection at its path whether it runs, and its pid
    /// (`-O check`: "Master running (pid=N)" on standard error).
    CheckMaster(PathBuf),
    /// Prints the configuration ssh would use (`-G`), connecting nothing.
    PrintConfig,
}

/// An ssh command line being built; see the module documentation.
#[derive(Debug, Clone)]
pub struct SshCommand {
    /// None for rsync's remote shell: rsync adds the host and its command.
    destination: Option<String>,
    action: Action,
    /// The shared connection a `Run` goes through.
    control_path: Option<PathBuf>,
    fast_cipher: bool,
    port: Option<String>,
    options: Vec<String>,
    remote: Vec<String>,
}

impl SshCommand {
    /// An ssh to `destination` (`host` or `user@host`).
    pub fn new(destination: &str) -> SshCommand {
        SshCommand {
            destination: Some(destination.to_string()),
            ..SshCommand::transport()
        }
    }

    /// The remote shell rsync runs (`-e`): no destination, rsync adds its own.
    pub fn transport() -> SshCommand {
        SshCommand {
            destination: None,
            action: Action::Run,
            control_path: None,
            fast_cipher: false,
            port: None,
            options: Vec::new(),
            remote: Vec::new(),
        }
    }

    /// Appends ssh options (`-o Key=Value`, `-i FILE`, ...), passed as given
    /// after pgclone's own. Where two set the same option the first wins:
    /// append the ones that must take precedence first.
    pub fn options<S: AsRef<str>>(mut self, options: &[S]) -> SshCommand {
        self.options
            .extend(options.iter().map(|o| o.as_ref().to_string()));
        self
    }

    /// `-p PORT`, when given.
    pub fn port(mut self, port: Option<&str>) -> SshCommand {
        self.port = port.map(str::to_string);
        self
    }

    /// Goes through the shared connection at `path`, when given, and never
    /// becomes one (`ControlMaster=no`: with the socket gone, ssh connects on
    /// its own).
    pub fn control_path(mut self, path: Option<&Path>) -> SshCommand {
        self.control_path = path.map(Path::to_path_buf);
        self
    }

    /// Prefers the hardware-accelerated cipher ([`FAST_CIPHER`]): for bulk
    /// transfers and the connections they share.
    pub fn fast_cipher(mut self) -> SshCommand {
        self.fast_cipher = true;
        self
    }

    /// Starts the shared connection at `path` in the background (`-fN`),
    /// kept `persist_secs` after its last use.
    pub fn start_master(mut self, path: &Path, persist_secs: u32) -> SshCommand {
        self.action = Action::StartMaster {
            path: path.to_path_buf(),
            persist_secs,
        };
        self
    }

    /// Asks the shared connection at `path` to exit (`-O exit`).
    pub fn stop_master(mut self, path: &Path) -> SshCommand {
        self.action = Action::StopMaster(path.to_path_buf());
        self
    }

    /// Asks the shared connection at `path` whether it runs (`-O check`).
    pub fn check_master(mut self, path: &Path) -> SshCommand {
        self.action = Action::CheckMaster(path.to_path_buf());
        self
    }

    /// Prints the configuration ssh would use for the destination (`-G`).
    pub fn print_config(mut self) -> SshCommand {
        self.action = Action::PrintConfig;
        self
    }

    /// The remote command: each argument arrives as one literal word.
    pub fn remote<S: AsRef<str>>(mut self, argv: &[S]) -> SshCommand {
        self.remote
            .extend(argv.iter().map(|a| shell_quote(a.as_ref())));
        self
    }

    /// The arguments of `ssh` (without the program name).
    pub fn args(&self) -> Vec<String> {
        let mut v: Vec<String> = vec!["-o".into(), "BatchMode=yes".into()];
        let control_path = |p: &Path| format!("ControlPath={}", p.display());
        match &self.action {
            Action::Run => {
                if let Some(p) = &self.control_path {
                    v.extend(["-o".into(), "ControlMaster=no".into()]);
                    v.extend(["-o".into(), control_path(p)]);
                }
            }
            Action::StartMaster { path, persist_secs } => {
                v.extend(["-o", "ControlMaster=yes", "-f", "-N"].map(String::from));
                v.extend(["-o".into(), format!("ControlPersist={persist_secs}s")]);
                v.extend(["-o".into(), control_path(path)]);
            }
            Action::StopMaster(path) => {
                v.extend(["-o".into(), control_path(path)]);
                v.extend(["-O".into(), "exit".into()]);
            }
            Action::CheckMaster(path) => {
                v.extend(["-o".into(), control_path(path)]);
                v.extend(["-O".into(), "check".into()]);
            }
            Action::PrintConfig => v.push("-G".into()),
        }
        if self.fast_cipher {
            v.extend(FAST_CIPHER.map(String::from));
        }
        if let Some(p) = &self.port {
            v.extend(["-p".into(), p.clone()]);
        }
        v.extend(self.options.iter().cloned());
        if let Some(d) = &self.destination {
            v.extend(["--".into(), d.clone()]);
            v.extend(self.remote.iter().cloned());
        }
        v
    }

    /// The command, to run.
    pub fn command(&self) -> std::process::Command {
        let mut c = std::process::Command::new("ssh");
        c.args(self.args());
        c
    }

    /// The command, to run under tokio.
    pub fn tokio_command(&self) -> tokio::process::Command {
        self.command().into()
    }

    /// The remote shell as rsync's `-e` takes it: one string rsync splits
    /// itself (on spaces; `'` or `"` quote, and inside quotes a doubled quote
    /// is a literal one; no backslashes). Not a shell's quoting: `'\''` would
    /// leave rsync with an unterminated quote.
    pub fn rsync_shell(&self) -> String {
        debug_assert!(
            self.destination.is_none() && self.action == Action::Run,
            "rsync adds the destination and the command"
        );
        std::iter::once("ssh".to_string())
            .chain(self.args().iter().map(|a| rsync_quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Quotes `arg` as one word for rsync's `-e` (see [`SshCommand::rsync_shell`]).
fn rsync_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+^".contains(c))
    {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const CIPHER: &str = "Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com";

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn a_remote_command_through_a_shared_connection() {
        let args = SshCommand::new("barman@backup")
            .control_path(Some(Path::new("/run/pgclone/ssh-master")))
            .fast_cipher()
            .port(Some("2222"))
            .options(&["-o", "ConnectTimeout=5"])
            .options(&["-i", "/k"])
            .remote(&["cat", "--", "/backups/base/data.tar"])
            .args();
        let mut want =
            words("-o BatchMode=yes -o ControlMaster=no -o ControlPath=/run/pgclone/ssh-master -o");
        want.push(CIPHER.into());
        want.extend(words(
            "-p 2222 -o ConnectTimeout=5 -i /k -- barman@backup cat -- /backups/base/data.tar",
        ));
        assert_eq!(args, want);
    }

    #[test]
    fn without_a_shared_connection_or_cipher_only_batch_mode_is_added() {
        let args = SshCommand::new("node1")
            .control_path(None)
            .remote(&["true"])
            .args();
        assert_eq!(args, words("-o BatchMode=yes -- node1 true"));
    }

    #[test]
    fn the_shared_connection_starts_and_stops_at_its_path() {
        let p = Path::new("/s/ssh-barman");
        let start = SshCommand::new("barman@b")
            .start_master(p, 60)
            .fast_cipher()
            .options(&["-o", "ConnectTimeout=3"])
            .args();
        let mut want = words(
            "-o BatchMode=yes -o ControlMaster=yes -f -N -o ControlPersist=60s -o ControlPath=/s/ssh-barman -o",
        );
        want.push(CIPHER.into());
        want.extend(words("-o ConnectTimeout=3 -- barman@b"));
        assert_eq!(start, want);
        let stop = SshCommand::new("pgclone-master")
            .stop_master(p)
            .options(&["-o", "ControlPath=/elsewhere"])
            .args();
        assert_eq!(
            stop,
            words("-o BatchMode=yes -o ControlPath=/s/ssh-barman -O exit -o ControlPath=/elsewhere -- pgclone-master")
        );
    }

    #[test]
    fn print_config_connects_nothing() {
        let args = SshCommand::new("backup")
            .print_config()
            .port(Some("22"))
            .options(&["-l", "x"])
            .args();
        assert_eq!(args, words("-o BatchMode=yes -G -p 22 -l x -- backup"));
    }

    #[test]
    fn a_destination_starting_with_a_dash_is_never_an_option() {
        let hostile = "-oProxyCommand=touch /tmp/pgclone-pwned";
        let args = SshCommand::new(hostile).remote(&["true"]).args();
        let i = args.iter().position(|a| a == hostile).unwrap();
        assert_eq!(args[i - 1], "--");
        assert_eq!(args.iter().filter(|a| *a == "--").count(), 1);
        // A real ssh takes it as a host name: OpenSSH 9 refuses it as one,
        // older ones would look it up; neither reads an option from it.
        let Ok(out) = SshCommand::new(hostile).print_config().command().output() else {
            return; // no ssh on this host
        };
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(!stderr.contains("usage:"), "{stderr}");
        if out.status.success() {
            let host = format!("hostname {}", hostile.to_lowercase());
            assert!(stdout.lines().any(|l| l == host), "{stdout}");
        } else {
            assert!(stderr.contains("hostname"), "{stderr}");
        }
    }

    #[test]
    fn the_remote_command_arrives_word_for_word() {
        let hostile = [
            "pg;touch$IFS/tmp/x;",
            "a b",
            "it's",
            "$(id)",
            "`id`",
            "",
            "x\ny",
            "'\"\\",
            "--",
            "-rf",
        ];
        let mut argv = vec!["printf", "%s\\0"];
        argv.extend(hostile);
        let args = SshCommand::new("h").remote(&argv).args();
        let at = args.iter().position(|a| a == "h").unwrap() + 1;
        // What the remote shell gets: ssh joins the words with spaces.
        let line = args[at..].join(" ");
        let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
        let want: Vec<u8> = hostile
            .iter()
            .flat_map(|h| format!("{h}\0").into_bytes())
            .collect();
        assert_eq!(out.stdout, want);
    }

    #[test]
    fn rsync_shell_shares_the_connection_and_quotes_for_rsync() {
        let e = SshCommand::transport()
            .control_path(Some(Path::new("/tmp/scratch dir/ssh-master")))
            .fast_cipher()
            .options(&["-o", "ProxyCommand=ssh -W %h:%p jump", "-o", "User=o'brien"])
            .rsync_shell();
        assert_eq!(
            e,
            format!(
                "ssh -o BatchMode=yes -o ControlMaster=no -o 'ControlPath=/tmp/scratch dir/ssh-master' -o {CIPHER} \
                 -o 'ProxyCommand=ssh -W %h:%p jump' -o 'User=o''brien'"
            )
        );
        let plain = SshCommand::transport().fast_cipher().rsync_shell();
        assert_eq!(plain, format!("ssh -o BatchMode=yes -o {CIPHER}"));
    }

    #[test]
    fn rsync_splits_the_shell_back_into_the_same_words() {
        // A remote shell that records its arguments: rsync itself splits `-e`.
        let dir = std::env::temp_dir().join(format!("pgclone-rsync-e-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("ssh");
        let record = dir.join("argv");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf '%s\\0' \"$@\" > '{}'\nexit 1\n",
                record.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let options = [
            "-o",
            "ProxyCommand=ssh -W %h:%p jump",
            "-o",
            "User=o'brien",
            "-i",
            "/keys/a \"b\"",
            "-o",
            "SetEnv=A=\\x",
            "",
        ];
        let cmd = SshCommand::transport()
            .control_path(Some(&dir.join("ssh master")))
            .fast_cipher()
            .options(&options);
        let e = cmd.rsync_shell();
        let e = e.replacen("ssh", &script.to_string_lossy(), 1);
        let ran = Command::new("rsync")
            .arg("-e")
            .arg(&e)
            .arg("somehost:/x/")
            .arg(dir.join("dst"))
            .output();
        if ran.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
            return; // no rsync on this host
        }
        let got = std::fs::read(&record).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let got: Vec<String> = got
            .split(|b| *b == 0)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        let want = cmd.args();
        assert_eq!(&got[..want.len()], &want[..], "{got:?}");
        assert_eq!(got[want.len()], "somehost");
    }
}
