//! The `pgclone` binary as an operator runs it: output, exit status, messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pgclone::plugin::catalog::{sha256_hex, GUEST_DIR};

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
    Path::new(GUEST_DIR).join(format!("{name}.wasm"))
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
            line.contains("1.0.0") && line.contains("built in"),
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
        stdout.contains("contract:     pgclone:plugin@1.0.0"),
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
    let dir = std::path::Path::new(pgclone::plugin::catalog::GUEST_DIR);
    let out = env.run(&[
        "plugin",
        "test",
        dir.join("test_escaper.wasm").to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  locate-wal"), "{stdout}");
    assert!(
        stdout.contains("test-escaper: 14 checks, 7 failed"),
        "{stdout}"
    );
    let out = env.run(&[
        "plugin",
        "test",
        dir.join("example_site_policy.wasm").to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("site-policy: 22 checks, 0 failed"),
        "{stdout}"
    );
}
