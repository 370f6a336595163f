//! The `pgclone` binary as an operator runs it: output, exit status, messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pgclone::plugin::catalog::sha256_hex;

/// An isolated environment: its own HOME (cache), an empty node config and the
/// given plugins.toml.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new(plugins_toml: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pgclone.conf"), "node_id=1\n").unwrap();
        std::fs::write(dir.path().join("plugins.toml"), plugins_toml).unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        Env { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_pgclone"))
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("XDG_CACHE_HOME")
            .env_remove("PGCLONE_CACHE_DIR")
            .env("PGCLONE_CONFIG", self.path("pgclone.conf"))
            .env("PGCLONE_PLUGINS_CONFIG", self.path("plugins.toml"))
            .output()
            .unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn guest(name: &str) -> PathBuf {
    crate::support::component(name)
}

#[test]
fn plugin_list_shows_the_first_party_plugins() {
    let env = Env::new("");
    let out = env.run(&["plugin", "list"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for name in ["recovery-standard", "pg-basebackup", "barman"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{stdout}"));
        assert!(
            line.contains("1.3.0") && line.contains("built in"),
            "{line}"
        );
    }
    assert!(
        stdout.contains("remote-run:barman:barman (granted)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("local-run:pg_basebackup (granted)"),
        "{stdout}"
    );
    // The second run uses the compiled cache.
    assert!(env.path(".cache/pgclone/components").is_dir());
}

#[test]
fn plugin_list_reports_refused_and_unpinned_plugins() {
    let bytes = std::fs::read(guest("test_echo")).unwrap();
    let pin = sha256_hex(&bytes);
    let env = Env::new(&format!(
        "[plugin.test-echo]\nfile = \"echo.wasm\"\nsha256 = \"{pin}\"\n"
    ));
    let mut altered = bytes.clone();
    let n = altered.len() - 1;
    altered[n] ^= 1;
    std::fs::write(env.path("plugins/echo.wasm"), &altered).unwrap();
    std::fs::copy(guest("test_spin"), env.path("plugins/stray.wasm")).unwrap();
    let out = env.run(&["plugin", "list"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("test-echo            REFUSED"), "{stdout}");
    assert!(stdout.contains("changed since it was pinned"), "{stdout}");
    assert!(
        stdout.contains("IGNORED") && stdout.contains("stray.wasm"),
        "{stdout}"
    );
}

#[test]
fn plugin_check_shows_what_a_plugin_requests_and_what_is_missing() {
    let env = Env::new("");
    let out = env.run(&["plugin", "check", guest("test_greedy").to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("name:         test-greedy"), "{stdout}");
    assert!(
        stdout.contains("contract:     pgclone:plugin@1.3.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("remote-run:primary:rm (NOT GRANTED)"),
        "{stdout}"
    );
    assert!(stdout.contains("refused until granted"), "{stdout}");
}

#[test]
fn plugin_check_of_a_hostile_plugin_fails_cleanly() {
    // describe() itself is fine for spin; check() would loop, but `plugin check`
    // only calls describe. A file that is not a component fails with a message.
    let env = Env::new("");
    std::fs::write(env.path("junk.wasm"), b"junk").unwrap();
    let out = env.run(&["plugin", "check", env.path("junk.wasm").to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.starts_with("ERROR: plugin"), "{stderr}");
    assert!(
        stderr.contains("not a valid WebAssembly component"),
        "{stderr}"
    );
    assert!(
        stderr.contains("HINT: build plugins for the wasm32-wasip2 target"),
        "{stderr}"
    );
}

#[test]
fn plugin_inspect_of_an_unknown_name_lists_the_known_ones() {
    let env = Env::new("");
    let out = env.run(&["plugin", "inspect", "nosuch"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("ERROR: no plugin named \"nosuch\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("DETAIL: known plugins: recovery-standard, pg-basebackup, barman"),
        "{stderr}"
    );
    assert!(stderr.contains("HINT:"), "{stderr}");
}

#[test]
fn malformed_configuration_is_an_error_with_file_and_line() {
    let env = Env::new("[plugin.x]\ngrants = [\"everything\"]\n");
    let out = env.run(&["plugin", "list"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("invalid grant for plugin \"x\""),
        "{stderr}"
    );
    assert!(stderr.contains("plugins.toml"), "{stderr}");

    let env = Env::new("");
    std::fs::write(env.path("pgclone.conf"), "node_id=1\nnode_name='oops\n").unwrap();
    let out = env.run(&["plugin", "list"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("pgclone.conf\" line 2: unterminated"),
        "{stderr}"
    );
}

#[test]
fn unknown_configuration_keys_are_warned_about() {
    let env = Env::new("");
    std::fs::write(env.path("pgclone.conf"), "node_id=1\nbarman_sever=pg\n").unwrap();
    let out = env.run(&["plugin", "list"]);
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("WARNING: unknown configuration key \"barman_sever\""),
        "{stderr}"
    );
    assert!(stderr.contains("line 2"), "{stderr}");
}

#[test]
fn a_mistyped_configuration_key_is_warned_with_the_key_it_resembles() {
    let env = Env::new("");
    std::fs::write(
        env.path("pgclone.conf"),
        "node_id=1\nuse_replication_slot=yes\nfrobnicate_widgets=1\n",
    )
    .unwrap();
    let out = env.run(&["plugin", "list"]);
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("unknown configuration key \"use_replication_slot\""))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(lines[at].starts_with("WARNING: "), "{stderr}");
    assert_eq!(
        lines.get(at + 1).copied(),
        Some("HINT: did you mean \"use_replication_slots\"?"),
        "{stderr}"
    );
    // A key that resembles none is still warned about, with no guess.
    let at = lines
        .iter()
        .position(|l| l.contains("\"frobnicate_widgets\""))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        lines
            .get(at + 1)
            .is_none_or(|l| !l.contains("did you mean")),
        "{stderr}"
    );
}

#[test]
fn help_is_there_at_every_level() {
    let env = Env::new("");
    for args in [
        vec!["--help"],
        vec!["plugin", "--help"],
        vec!["plugin", "list", "--help"],
        vec!["plugin", "inspect", "--help"],
        vec!["plugin", "check", "--help"],
    ] {
        let out = env.run(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage: pgclone"), "{args:?}");
    }
}

#[test]
fn plugin_test_exits_non_zero_when_a_host_would_refuse_something() {
    let env = Env::new("");
    let out = env.run(&["plugin", "test", guest("test_escaper").to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  locate-wal"), "{stdout}");
    assert!(stdout.contains("FAIL  locate-wal-archive"), "{stdout}");
    assert!(
        stdout.contains("test-escaper: 15 checks, 8 failed"),
        "{stdout}"
    );
    let out = env.run(&[
        "plugin",
        "test",
        guest("example_site_policy").to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("site-policy: 22 checks, 0 failed"),
        "{stdout}"
    );
}

/// Gives `path` to the `nobody` user (a real second user).
fn give_to_nobody(path: &Path) {
    let st = Command::new("chown")
        .arg("nobody")
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success(), "chown nobody {}", path.display());
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// plugins.toml, a pinned plugin file and its directory decide what pgclone
/// runs: if another user could change one of them, it is refused (as the
/// component cache is), with what to do, and nothing is changed.
#[test]
fn plugin_files_another_user_could_change_are_refused() {
    let file = guest("test_echo");
    let sha = sha256_hex(&std::fs::read(&file).unwrap());
    let toml = format!(
        "[plugin.test-echo]\nfile = \"test-echo.wasm\"\nsha256 = \"{sha}\"\ngrants = [\"read-config:barman_server\"]\n"
    );
    let env = Env::new(&toml);
    let wasm = env.path("plugins/test-echo.wasm");
    std::fs::copy(&file, &wasm).unwrap();
    chmod(&wasm, 0o644);
    chmod(&env.path("plugins.toml"), 0o644);
    let verify = |env: &Env| env.run(&["plugin", "verify"]);
    let out = verify(&env);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let toml_path = env.path("plugins.toml");
    let plugin_dir = env.path("plugins");
    for (what, path, setup, want_detail, want_hint) in [
        (
            "plugins.toml of another user",
            &toml_path,
            0,
            "is owned by uid",
            "chown root",
        ),
        (
            "world-writable plugins.toml",
            &toml_path,
            0o666,
            "mode is 0666",
            "chmod go-w",
        ),
        (
            "plugin file of another user",
            &wasm,
            0,
            "is owned by uid",
            "chown root",
        ),
        (
            "group-writable plugin file",
            &wasm,
            0o664,
            "mode is 0664",
            "chmod go-w",
        ),
        (
            "world-writable plugin directory",
            &plugin_dir,
            0o777,
            "mode is 0777",
            "chmod go-w",
        ),
    ] {
        if setup == 0 {
            give_to_nobody(path);
        } else {
            chmod(path, setup);
        }
        let out = verify(&env);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{what}: {all}");
        assert!(
            all.contains("another user could change it"),
            "{what}: {all}"
        );
        assert!(all.contains(path.to_str().unwrap()), "{what}: {all}");
        assert!(
            all.contains(want_detail) && all.contains(want_hint),
            "{what}: {all}"
        );
        assert!(
            all.contains("DETAIL:") && all.contains("HINT:"),
            "{what}: {all}"
        );
        if path == &toml_path {
            // Nothing is installed through a configuration that is not trusted.
            let before = std::fs::read(&toml_path).unwrap();
            let echo = guest("test_echo");
            let out = env.run(&["plugin", "install", echo.to_str().unwrap(), "--grant-all"]);
            assert_eq!(out.status.code(), Some(1), "{what}");
            assert!(text(&out.stderr).contains("another user could change it"));
            assert_eq!(std::fs::read(&toml_path).unwrap(), before, "{what}");
            assert_eq!(std::fs::read_dir(&plugin_dir).unwrap().count(), 1, "{what}");
        }
        // Put it right again: accepted.
        let st = Command::new("chown")
            .arg("root")
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success());
        chmod(path, if path == &plugin_dir { 0o755 } else { 0o644 });
        let out = verify(&env);
        assert!(
            out.status.success(),
            "{what} put right: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

/// A policy needs no capability to make PostgreSQL run commands: inspect (and
/// check, and install) say so; a source's inspection does not.
#[test]
fn inspecting_a_policy_says_its_settings_can_run_commands() {
    let env = Env::new("");
    let out = env.run(&["plugin", "inspect", "recovery-standard"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for word in [
        "NOTE: a recovery policy needs no capability",
        "restore_command",
        "archive_cleanup_command",
        "recovery_end_command",
    ] {
        assert!(stdout.contains(word), "{word}: {stdout}");
    }
    let out = env.run(&[
        "plugin",
        "check",
        guest("example_site_policy").to_str().unwrap(),
    ]);
    assert!(
        text(&out.stdout).contains("NOTE: a recovery policy"),
        "{}",
        text(&out.stdout)
    );
    let out = env.run(&["plugin", "inspect", "barman"]);
    assert!(
        !text(&out.stdout).contains("NOTE: a recovery policy"),
        "{}",
        text(&out.stdout)
    );
}

// ---------------------------------------------------------------------------
// repmgr's command lines, verbatim.

use crate::support;

use support::{Pg, Scratch};

/// Runs the binary without a configuration (the command line is what is tested).
fn bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgclone"))
        .args(args)
        .env("PGCLONE_CONFIG", "/nonexistent/pgclone.conf")
        .env_remove("PGCLONE_PLUGINS_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn no_command_or_standby_without_clone_is_a_usage_error_not_help() {
    for args in [
        vec![],
        vec!["standby"],
        vec!["-f", "/etc/repmgr.conf"],
        vec!["-h", "node1", "-U", "repmgr", "-d", "repmgr", "standby"],
    ] {
        let out = bare(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        assert!(err.starts_with("error: no "), "{args:?}: {err}");
        assert!(err.contains("Usage: pgclone"), "{args:?}: {err}");
    }
}

#[test]
fn help_is_dash_question_mark_or_dash_dash_help_and_h_is_never_help() {
    for args in [
        vec!["-?"],
        vec!["--help"],
        vec!["help"],
        vec!["standby", "clone", "-?"],
        vec!["-h", "node1", "standby", "clone", "--help"],
        vec!["help", "standby", "clone"],
        vec!["wal-restore", "-?"],
    ] {
        let out = bare(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(text(&out.stdout).contains("Usage: pgclone"), "{args:?}");
    }
    let out = bare(&["standby", "clone", "-?"]);
    let help = text(&out.stdout);
    assert!(help.contains("-h, --host <HOST>"), "{help}");
    assert!(help.contains("-t, --terse"), "{help}");
    let out = bare(&["--help"]);
    assert!(
        text(&out.stdout).contains("work in any position"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn unknown_options_stray_arguments_and_missing_values_are_errors() {
    for args in [
        vec!["standby", "clone", "--bogus"],
        vec!["--bogus", "standby", "clone"],
        vec!["standby", "clone", "node1", "node2"],
        vec!["standby", "promote"],
        vec!["primary", "register"],
        vec!["standby", "clone", "-h"],
        vec!["-h"],
        vec!["-U", "repmgr", "-h"],
        vec!["standby", "clone", "-h", "--dry-run"],
        vec!["--node-id=3", "standby", "clone", "--dry-run"],
        vec!["standby", "clone", "--copy-external-config-files=elsewhere"],
        vec!["standby", "clone", "-L", "LOUD"],
        vec!["standby", "clone", "--upstream-node-id=two"],
    ] {
        let out = bare(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
    // repmgr's `standby clone HOST` and -h together: which one was meant?
    let out = bare(&["-h", "node1", "standby", "clone", "node2"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("host name provided both with -h/--host and as an extra parameter"),
        "{err}"
    );
}

#[test]
fn options_that_mean_nothing_to_a_command_are_errors() {
    for (args, flag) in [
        (
            vec!["-p", "5432", "wal-restore", "h", "s", "f", "p"],
            "-p/--port",
        ),
        (
            vec!["-U", "repmgr", "wal-restore", "h", "s", "f", "p"],
            "-U/--username",
        ),
        (
            vec!["-c", "wal-restore", "h", "s", "f", "p"],
            "-c/--fast-checkpoint",
        ),
        (vec!["-t", "wal-restore", "h", "s", "f", "p"], "-t/--terse"),
        (vec!["wal-restore", "-q", "h", "s", "f", "p"], "-q/--quiet"),
        (
            vec!["-L", "DEBUG", "wal-restore", "h", "s", "f", "p"],
            "-L/--log-level",
        ),
        (vec!["-F", "plugin", "list"], "-F/--force"),
        (vec!["plugin", "list", "--log-to-file"], "--log-to-file"),
        (vec!["-h", "node1", "plugin", "list"], "-h/--host"),
        // standby clone's options (the full list: the unit tests of main.rs),
        // a long-only one, one by its alias, one with an optional value.
        (
            vec!["--dry-run", "wal-restore", "h", "s", "f", "p"],
            "--dry-run",
        ),
        (
            vec!["--data-dir", "/x", "wal-restore", "h", "s", "f", "p"],
            "-D/--pgdata",
        ),
        (
            vec![
                "--copy-external-config-files",
                "wal-restore",
                "h",
                "s",
                "f",
                "p",
            ],
            "--copy-external-config-files",
        ),
        (vec!["-F", "patroni-replica", "--scope=x"], "-F/--force"),
        (
            vec!["--log-to-file", "patroni-replica", "--scope=x"],
            "--log-to-file",
        ),
    ] {
        let out = bare(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("takes no {flag}")), "{args:?}: {err}");
    }
}

/// A primary as in repmgr's quick start: a `repmgr` superuser and database,
/// reached as host "node1" (PGHOSTADDR points the name at this server, so
/// repmgr's documented command lines run unchanged), trusted over TCP.
struct Node1 {
    sc: Scratch,
    pg: Pg,
}

impl Node1 {
    fn start(name: &str) -> Node1 {
        let sc = Scratch::new(name);
        let mut pg = Pg::init(&sc, "node1");
        pg.hba_prepend("host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust");
        pg.start();
        pg.sql("CREATE ROLE repmgr SUPERUSER REPLICATION LOGIN");
        pg.sql("CREATE DATABASE repmgr OWNER repmgr");
        Node1 { sc, pg }
    }

    /// repmgr.conf for node2, as in the quick start; `extra` is appended.
    fn conf(&self, extra: &str) -> PathBuf {
        self.sc.write(
            "repmgr.conf",
            &format!(
                "node_id=2\nnode_name='node2'\n\
                 conninfo='host=node2 user=repmgr dbname=repmgr connect_timeout=2'\n\
                 data_directory='{}'\n{extra}",
                self.standby().display()
            ),
        )
    }

    fn standby(&self) -> PathBuf {
        self.sc.path("standby")
    }

    /// Runs a command line from repmgr's documentation with pgclone in place of
    /// repmgr and the test's file for /etc/repmgr.conf, as the postgres user;
    /// every other word is as documented.
    fn run(&self, line: &str, cfg: &Path) -> Output {
        let words = shell_words::split(line).unwrap();
        assert_eq!(words[0], "repmgr");
        let args: Vec<String> = words[1..]
            .iter()
            .map(|w| w.replace("/etc/repmgr.conf", cfg.to_str().unwrap()))
            .collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let port = self.pg.port.to_string();
        support::pgclone(
            &self.sc,
            &refs,
            &[
                ("PGHOSTADDR", "127.0.0.1"),
                ("PGPORT", &port),
                ("PGCLONE_CONFIG", cfg.to_str().unwrap()),
            ],
        )
    }
}

fn ok(out: &Output) -> (String, String) {
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{o}\n{e}");
    (o, e)
}

fn plan_conninfo(plan: &str) -> &str {
    plan.lines()
        .find(|l| l.contains("primary_conninfo"))
        .unwrap_or_else(|| panic!("no primary_conninfo in the plan:\n{plan}"))
}

#[test]
fn repmgr_quick_start_lines_verbatim_dry_run_then_clone() {
    if !support::is_root() {
        return;
    }
    let n = Node1::start("argv-quickstart");
    n.pg.sql("CREATE TABLE t(i int); INSERT INTO t SELECT generate_series(1, 100)");
    let cfg = n.conf("");

    let out = n.run(
        "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone --dry-run",
        &cfg,
    );
    let (plan, err) = ok(&out);
    assert!(err.contains("connecting to upstream node"), "{err}");
    assert!(err.contains("as user \"repmgr\""), "{err}");
    assert!(
        plan.contains("run ") && plan.contains("pg_basebackup"),
        "{plan}"
    );
    assert!(!plan.contains("--checkpoint"), "{plan}");
    let conninfo = plan_conninfo(&plan);
    assert!(
        conninfo.contains("host=node1") && conninfo.contains("user=repmgr"),
        "{conninfo}"
    );
    assert!(
        !n.standby().exists(),
        "a dry run created the data directory"
    );

    let out = n.run(
        "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone",
        &cfg,
    );
    let (_, err) = ok(&out);
    assert!(
        err.contains("standby clone (using pg_basebackup) complete"),
        "{err}"
    );
    let mut st = Pg::existing(&n.sc, n.standby());
    st.start();
    st.wait_for(
        "SELECT status FROM pg_stat_wal_receiver",
        "streaming",
        std::time::Duration::from_secs(60),
    );
    n.pg.sql("INSERT INTO t VALUES (101)");
    st.wait_for(
        "SELECT count(*) FROM t",
        "101",
        std::time::Duration::from_secs(60),
    );
}

#[test]
fn repmgr_force_line_verbatim_reclones_over_a_populated_directory() {
    if !support::is_root() {
        return;
    }
    let n = Node1::start("argv-force");
    n.pg.sql("CREATE DATABASE pgbench");
    let cfg = n.conf("");
    let stale = n.sc.mkdir("standby");
    n.sc.write("standby/stale-file", "from an earlier standby");
    assert!(stale.join("stale-file").exists());
    // Without -F the populated directory is refused...
    let out = n.run(
        "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone",
        &cfg,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(stale.join("stale-file").exists());
    // ...with it (repmgr's README: options before the command, -R, --verbose,
    // --force, and the upstream's host as the last word) it is replaced.
    let line = format!(
        "repmgr -D {} -d pgbench -p {} -U repmgr -R postgres --verbose --force standby clone node1",
        n.standby().display(),
        n.pg.port
    );
    let out = n.run(&line, &cfg);
    let (_, err) = ok(&out);
    assert!(
        err.contains("standby clone (using pg_basebackup) complete"),
        "{err}"
    );
    assert!(!stale.join("stale-file").exists());
    assert!(n.standby().join("standby.signal").exists());
    let auto = std::fs::read_to_string(n.standby().join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("host=node1"), "{auto}");
    // And -F after `standby clone`, with -c, on the clone just made.
    let out = n.run(
        "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone -F -c",
        &cfg,
    );
    let (_, err) = ok(&out);
    assert!(err.contains("complete"), "{err}");
    let mut st = Pg::existing(&n.sc, n.standby());
    st.start();
    st.wait_for(
        "SELECT status FROM pg_stat_wal_receiver",
        "streaming",
        std::time::Duration::from_secs(60),
    );
}

#[test]
fn repmgr_option_lines_verbatim_reach_the_upstream_and_shape_the_plan() {
    if !support::is_root() {
        return;
    }
    let n = Node1::start("argv-options");
    n.pg.sql("CREATE ROLE repl REPLICATION LOGIN");
    let ext = n.sc.mkdir("etc");
    n.sc.write("etc/extra.conf", "work_mem = '5MB'\n");
    n.pg.append_conf(&format!("include = '{}/extra.conf'\n", ext.display()));
    n.pg.reload();
    let cfg = n.conf("");

    // -c/--fast-checkpoint, before and after the command.
    for line in [
        "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone -c --dry-run",
        "repmgr -c -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone --dry-run",
        "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone --fast-checkpoint --dry-run",
    ] {
        let (plan, _) = ok(&n.run(line, &cfg));
        assert!(plan.contains("--checkpoint fast"), "{line}:\n{plan}");
    }

    // --replication-user: the replication connection and primary_conninfo.
    let (plan, err) = ok(&n.run(
        "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone --replication-user repl --dry-run",
        &cfg,
    ));
    assert!(
        err.contains("replication connection as \"repl\" works"),
        "{err}"
    );
    assert!(plan_conninfo(&plan).contains("user=repl "), "{plan}");

    // --upstream-conninfo: primary_conninfo as given.
    let (plan, _) = ok(&n.run(
        "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone --upstream-conninfo='host=node9 port=5439 user=repl' --dry-run",
        &cfg,
    ));
    let conninfo = plan_conninfo(&plan);
    assert!(
        conninfo.contains("host=node9") && conninfo.contains("port=5439"),
        "{conninfo}"
    );

    // --copy-external-config-files, to the same path (default) or into PGDATA.
    let (plan, _) = ok(&n.run(
        "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone --copy-external-config-files --dry-run",
        &cfg,
    ));
    // "node1" is this machine (PGHOSTADDR=127.0.0.1): pgclone finds the
    // upstream's postmaster here, whatever the host is called, and reads the
    // files locally.
    let want = format!(
        "copy external configuration file {0}/extra.conf from this host to {0}/extra.conf",
        ext.display()
    );
    assert!(plan.contains(&want), "{plan}");
    let (plan, _) = ok(&n.run(
        "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf -R postgres standby clone --copy-external-config-files=pgdata --dry-run",
        &cfg,
    ));
    let want = format!("from this host to {}/extra.conf", n.standby().display());
    assert!(plan.contains(&want), "{plan}");

    // Logging options in any position: -L NOTICE hides INFO, -t the hints.
    let (_, err) = ok(&n.run(
        "repmgr -L NOTICE -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone --dry-run --terse",
        &cfg,
    ));
    assert!(!err.contains("INFO:"), "{err}");

    // -b/--pg_bindir and --recovery-min-apply-delay override those keys.
    let bin = n.sc.mkdir("bin");
    std::os::unix::fs::symlink(
        support::pg_bindir().join("pg_basebackup"),
        bin.join("pg_basebackup"),
    )
    .unwrap();
    let line = format!(
        "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf -b {} standby clone --recovery-min-apply-delay=5min --dry-run",
        bin.display()
    );
    let (plan, _) = ok(&n.run(&line, &cfg));
    assert!(
        plan.contains(&format!("run {}/pg_basebackup ", bin.display())),
        "{plan}"
    );
    assert!(plan.contains("recovery_min_apply_delay = '5min'"), "{plan}");

    // --log-to-file: the messages go to log_file.
    let log = n.sc.path("repmgr.log");
    let cfg = n.conf(&format!("log_file='{}'\n", log.display()));
    let (_, err) = ok(&n.run(
        "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone --dry-run --log-to-file",
        &cfg,
    ));
    assert!(err.is_empty(), "{err}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("NOTICE: dry run complete"), "{logged}");
    assert!(!n.standby().exists());
}

#[test]
fn repmgr_barman_lines_verbatim_go_to_barman_or_not() {
    if !support::is_root() {
        return;
    }
    let n = Node1::start("argv-barman");
    // The chapter's settings: a Barman host that this test machine does not have.
    let cfg = n.conf(
        "barman_host=barmansrv.invalid\nbarman_server=somedb\n\
         restore_command='/usr/bin/barman-wal-restore barmansrv somedb %f %p'\n",
    );
    let out = n.run(
        "repmgr -f /etc/repmgr.conf -h node1 -U repmgr -d repmgr standby clone",
        &cfg,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("INFO:") || err.starts_with("NOTICE:"),
        "{err}"
    );
    assert!(err.contains("barmansrv.invalid"), "{err}");
    assert!(!n.standby().exists());

    let (plan, _) = ok(&n.run(
        "repmgr -f /etc/repmgr.conf -h node1 -U repmgr -d repmgr standby clone --without-barman --dry-run",
        &cfg,
    ));
    assert!(plan.contains("pg_basebackup"), "{plan}");
    assert!(!plan.contains("barmansrv.invalid"), "{plan}");
}

/// `-D` with a configuration file that sets another data_directory: repmgr
/// would ignore -D; pgclone clones into -D, says so and says what to change
/// (as its `--help` states).
#[test]
fn pgdata_given_with_a_configured_data_directory_is_used_with_a_warning() {
    if !support::is_root() {
        return;
    }
    let n = Node1::start("argv-pgdata");
    let cfg = n.conf("");
    let other = n.sc.path("elsewhere");
    let line = format!(
        "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone -c -D {}",
        other.display()
    );
    let (_, err) = ok(&n.run(&format!("{line} --dry-run"), &cfg));
    let warning = format!(
        "WARNING: -D/--pgdata \"{}\" is used instead of data_directory \"{}\" from \"{}\" (repmgr would ignore -D)",
        other.display(),
        n.standby().display(),
        cfg.display()
    );
    assert!(err.contains(&warning), "{err}");
    assert!(
        err.contains(&format!(
            "HINT: set data_directory to \"{}\"",
            other.display()
        )),
        "{err}"
    );
    let (_, err) = ok(&n.run(&line, &cfg));
    assert!(err.contains(&warning), "{err}");
    assert!(other.join("PG_VERSION").exists(), "{err}");
    assert!(!n.standby().exists(), "{err}");
    // The same directory in both: nothing to say.
    let cfg = n.conf("");
    let (_, err) = ok(&n.run(
        &format!(
            "repmgr -h node1 -U repmgr -d repmgr -f /etc/repmgr.conf standby clone -D {} --dry-run",
            n.standby().display()
        ),
        &cfg,
    ));
    assert!(!err.contains("-D/--pgdata"), "{err}");

    let help = text(&n.run("repmgr standby clone --help", &cfg).stdout);
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        help.contains("Unlike repmgr, which ignores -D when the configuration file sets data_directory, -D is used"),
        "{help}"
    );
}

/// The ssh user rule and the words of `plugin test` are in `--help`.
#[test]
fn help_states_the_barman_user_rule_and_what_plugin_test_does() {
    let env = Env::new("");
    let flat = |args: &[&str]| {
        let out = env.run(args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let help = flat(&["wal-restore", "--help"]);
    assert!(
        help.contains("Default: the User your ssh configuration sets for BARMAN_HOST (as `ssh -G` shows it), else barman, as with barman-wal-restore; the clone uses the same rule."),
        "{help}"
    );
    let help = flat(&["plugin", "test", "--help"]);
    for words in [
        "grants it every capability it requests (no program is run",
        "(ok, WARN or FAIL)",
        "The configuration values the plugin sees (a file in repmgr.conf syntax). Without it, every key the plugin may read is `conformance-test`",
    ] {
        assert!(help.contains(words), "{words}: {help}");
    }
}

/// `standby clone --dry-run` from `host`:`port` into a scratch directory, as
/// postgres, with nothing but the command line (no -f, no $PGCLONE_CONFIG).
fn clone_from_nowhere(sc: &Scratch, host: &str, port: &str) -> String {
    let data = sc.path("data");
    let out = support::pgclone(
        sc,
        &[
            "-h",
            host,
            "-p",
            port,
            "-U",
            "repmgr",
            "-d",
            "repmgr",
            "-D",
            data.to_str().unwrap(),
            "standby",
            "clone",
            "--dry-run",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    text(&out.stderr)
}

#[test]
fn without_a_configuration_file_the_files_looked_for_are_named() {
    let defaults = ["/etc/pgclone.conf", "/etc/repmgr.conf"];
    if defaults.iter().any(|p| Path::new(p).exists()) {
        eprintln!("skipped: this machine has {defaults:?}");
        return;
    }
    let sc = Scratch::new("no-config");
    let err = clone_from_nowhere(&sc, "127.0.0.1", "1");
    assert!(
        err.contains(
            "NOTICE: no configuration file found (looked for \"/etc/pgclone.conf\" and \"/etc/repmgr.conf\")"
        ),
        "{err}"
    );
    assert!(
        err.contains("HINT: give one with -f/--config-file"),
        "{err}"
    );
    // With -f, the file used is said instead.
    let cfg = sc.write("node.conf", "node_id=2\n");
    let out = support::pgclone(
        &sc,
        &[
            "-f",
            cfg.to_str().unwrap(),
            "-h",
            "127.0.0.1",
            "-p",
            "1",
            "-D",
            sc.path("data").to_str().unwrap(),
            "standby",
            "clone",
            "--dry-run",
        ],
        &[],
    );
    let err = text(&out.stderr);
    assert!(err.contains("using configuration file"), "{err}");
    assert!(!err.contains("no configuration file found"), "{err}");
}

#[test]
fn a_refused_connection_asks_whether_the_server_is_running_as_psql_does() {
    let sc = Scratch::new("refused");
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let err = clone_from_nowhere(&sc, "127.0.0.1", &port);
    assert!(err.contains("Connection refused"), "{err}");
    assert!(
        err.contains(
            "\nHINT: Is the server running on that host and accepting TCP/IP connections?"
        ),
        "{err}"
    );
    // A socket directory with no socket in it: psql's words for a socket.
    let dir = sc.mkdir("sockets");
    let err = clone_from_nowhere(&sc, dir.to_str().unwrap(), &port);
    assert!(
        err.contains(
            "\nHINT: Is the server running locally and accepting connections on that socket?"
        ),
        "{err}"
    );
}

#[test]
fn counts_of_one_are_singular() {
    // plugin verify: one pinned plugin, no problem.
    let bytes = std::fs::read(guest("test_echo")).unwrap();
    let env = Env::new(&format!(
        "[plugin.test-echo]\nfile = \"echo.wasm\"\nsha256 = \"{}\"\n\
         grants = [\"read-config:barman_server\"]\n",
        sha256_hex(&bytes)
    ));
    std::fs::write(env.path("plugins/echo.wasm"), &bytes).unwrap();
    let out = env.run(&["plugin", "verify"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("1 pinned plugin checked, 0 problems"),
        "{stdout}"
    );

    // A target directory holding one file: "1 entry", not "1 entries".
    let sc = Scratch::new("one-entry");
    let mut up = Pg::init(&sc, "up");
    up.start();
    sc.mkdir("data");
    sc.write("data/stray.txt", "x");
    let socket = up.socket_dir.to_str().unwrap().to_string();
    let port = up.port.to_string();
    let data = sc.path("data");
    let out = support::pgclone(
        &sc,
        &[
            "-h",
            &socket,
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-D",
            data.to_str().unwrap(),
            "standby",
            "clone",
            "--dry-run",
        ],
        &[],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("(1 entry)"), "{err}");
    assert!(!err.contains("entries"), "{err}");
}

#[test]
fn a_file_that_is_not_a_component_is_named_by_its_file_name() {
    let env = Env::new("");
    let broken = env.path("broken.wasm");
    std::fs::write(&broken, b"\0asm this is not a component").unwrap();
    for command in ["check", "test"] {
        let out = env.run(&["plugin", command, broken.to_str().unwrap()]);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!out.status.success(), "{command}: {all}");
        assert!(all.contains("plugin \"broken.wasm\""), "{command}: {all}");
        assert!(
            all.contains("not a valid WebAssembly component"),
            "{command}: {all}"
        );
        assert!(!all.contains("plugin \"\""), "{command}: {all}");
    }
}

#[test]
fn double_v_adds_debug_lines_to_what_v_shows() {
    let env = Env::new("");
    let echo = guest("test_echo");
    let run = |v: &str| {
        let out = env.run(&[v, "plugin", "check", echo.to_str().unwrap()]);
        assert!(out.status.success(), "{v}: {}", text(&out.stderr));
        text(&out.stderr)
    };
    let (v, vv) = (run("-v"), run("-vv"));
    assert!(
        vv.contains("DEBUG: reading configuration file \"")
            && vv.contains(": describe() returned after "),
        "{vv}"
    );
    assert!(!v.contains("describe() returned"), "{v}");
    // Debug lines are pgclone's own, plain: no colour codes.
    assert!(!vv.contains('\u{1b}'), "{vv:?}");
    // -vv shows everything -v shows.
    for line in v.lines() {
        assert!(vv.contains(line), "{line} missing from -vv:\n{vv}");
    }
}

/// Issue 26, 2.8: a command's help lists only the options it takes.
#[test]
fn a_command_s_help_lists_only_the_options_it_takes() {
    let help = |args: &[&str]| {
        let out = bare(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let wal = help(&["wal-restore", "--help"]);
    for taken in [
        "--spool-dir",
        "--config-file",
        "--plugins-config",
        "--parallel",
        // -v: who holds the spool.
        "--verbose",
    ] {
        assert!(wal.contains(taken), "{taken}: {wal}");
    }
    for refused in [
        "--log-level",
        "--quiet",
        "--log-to-file",
        "not for wal-restore",
    ] {
        assert!(!wal.contains(refused), "{refused}: {wal}");
    }
    for args in [
        &["plugin", "list", "--help"][..],
        &["patroni-replica", "--help"],
    ] {
        let h = help(args);
        assert!(h.contains("--verbose"), "{args:?}: {h}");
        assert!(!h.contains("--log-to-file"), "{args:?}: {h}");
    }
    // standby clone takes them all.
    assert!(help(&["standby", "clone", "--help"]).contains("--log-to-file"));
}

/// Issue 26, 2.8: an option of standby clone after another command is not a
/// value to pass with `--` (clap's tip): the error says who takes it.
#[test]
fn a_standby_clone_option_after_another_command_names_the_command_that_takes_it() {
    for (args, said) in [
        (
            vec!["wal-restore", "--upstream-node-id", "3", "h", "s", "f", "p"],
            "wal-restore takes no --upstream-node-id: it is an option of standby clone (pgclone standby clone --upstream-node-id ...)",
        ),
        (
            vec!["plugin", "list", "--upstream-node-id=3"],
            "plugin list takes no --upstream-node-id: it is an option of standby clone",
        ),
        (
            vec!["wal-restore", "-D", "/x", "h", "s", "f", "p"],
            "wal-restore takes no -D/--pgdata: it is an option of standby clone (pgclone standby clone -D ...)",
        ),
    ] {
        let out = bare(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
        assert!(!err.contains("tip:") && !err.contains("'-- "), "{args:?}: {err}");
    }
    // repmgr's options of its other commands: which commands take them.
    for (args, said) in [
        (
            vec!["standby", "clone", "--node-id", "3"],
            "standby clone takes no --node-id: it is an option of other repmgr commands (repmgr standby unregister,",
        ),
        (
            vec!["-f", "/x.conf", "standby", "clone", "--force-rewind"],
            "standby clone takes no --force-rewind: it is an option of other repmgr commands (repmgr node rejoin)",
        ),
        (
            vec!["wal-restore", "--wait", "h", "s", "f", "p"],
            "wal-restore takes no --wait: it is an option of other repmgr commands (repmgr standby follow)",
        ),
    ] {
        let out = bare(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
        assert!(!err.contains("tip:") && !err.contains("'-- "), "{args:?}: {err}");
    }
    // An option nobody takes keeps clap's own error.
    let out = bare(&["wal-restore", "--no-such-option", "h", "s", "f", "p"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unexpected argument '--no-such-option'"));
}

/// Issue 26, 2.8: a first-party plugin answers to its directory's name too.
#[test]
fn a_first_party_plugin_answers_to_its_source_directory_s_name() {
    let env = Env::new("");
    let by_name = env.run(&["plugin", "inspect", "barman"]);
    let by_dir = env.run(&["plugin", "inspect", "source-barman"]);
    assert!(by_dir.status.success(), "{}", text(&by_dir.stderr));
    assert_eq!(text(&by_name.stdout), text(&by_dir.stdout));
    let out = env.run(&["plugin", "inspect", "source-nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no plugin named \"source-nosuch\""));
}

/// Issue 26, 2.8: `plugin test` calls a plugin dozens of times; a notice
/// it causes is said once.
#[test]
fn plugin_test_says_a_repeated_notice_once() {
    let env = Env::new("");
    let policy = guest("example_site_policy");
    let out = env.run(&["plugin", "test", policy.to_str().unwrap()]);
    let err = text(&out.stderr);
    let said = err
        .lines()
        .filter(|l| l.contains("sets archive_cleanup_command"))
        .count();
    assert_eq!(said, 1, "{err}");
}
