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
