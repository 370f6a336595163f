//! The example site policy (`examples/site-policy`), as an operator uses it:
//! `plugin install --chain`, `plugin verify`, then clones of a real
//! PostgreSQL 15 primary that it refuses or configures.

use crate::support;

use std::path::{Path, PathBuf};

use support::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn example() -> PathBuf {
    component("example_site_policy")
}

#[test]
fn the_site_policy_is_installed_verified_and_enforced() {
    let sc = Scratch::new("sitepolicy");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    let plugins = sc.path("etc/plugins.toml");
    // A copy the postgres user can read, as an operator would download it.
    let wasm = sc.path("site-policy-1.0.0.wasm");
    std::fs::copy(example(), &wasm).unwrap();
    run_ok(
        std::process::Command::new("chown")
            .arg("postgres")
            .arg(&wasm),
    );
    let cfg = sc.write(
        "pgclone.conf",
        &format!(
            "node_id=3\nnode_name='dr-1'\nuse_primary_conninfo_password=true\nplugins_config='{}'\n\
             site_policy_wal_archive='/srv/wal archive/main'\n",
            plugins.display()
        ),
    );

    let out = pgclone(
        &sc,
        &[
            "-f",
            s(&cfg),
            "plugin",
            "install",
            s(&wasm),
            "--chain",
            "--grant",
            "read-config:site_policy_wal_archive",
        ],
        &[],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    assert!(text.contains("plugin:       site-policy 1.0.0"), "{text}");
    // Its one capability: the setting that names the archive to clean.
    assert!(
        text.contains("read the configuration key \"site_policy_wal_archive\""),
        "{text}"
    );
    assert!(
        text.contains("granted:      everything it requests"),
        "{text}"
    );
    // ... but as a policy, its settings can make PostgreSQL run commands: said.
    assert!(
        text.contains(
            "NOTE: a recovery policy needs no capability to make PostgreSQL run commands"
        ) && text.contains("archive_cleanup_command"),
        "{text}"
    );
    let toml = std::fs::read_to_string(&plugins).unwrap();
    assert!(toml.contains("policies = [\"site-policy\"]"), "{toml}");
    assert!(toml.contains("[plugin.site-policy]"), "{toml}");
    let out = pgclone(&sc, &["-f", s(&cfg), "plugin", "verify"], &[]);
    assert!(out.status.success(), "{}", stdout(&out));

    let target = sc.path("standby");
    let clone =
        |extra: &[&str]| standby_clone(&sc, &cfg, &p, &target, extra, &[("PGPASSWORD", "s3cret")]);

    // Without verify-full: refused before anything is touched.
    let out = clone(&[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("must connect with sslmode=verify-full"),
        "{err}"
    );
    assert!(err.contains("--upstream-conninfo"), "{err}");
    assert!(!target.exists(), "{err}");

    // With it: the password is gone, the DR delay and archive cleanup are set.
    let upstream = format!(
        "host={} port={} user=postgres sslmode=verify-full",
        p.socket_dir.display(),
        p.port
    );
    let used = format!(
        "INFO: plugins from \"{}\"; recovery policies: recovery-standard, site-policy",
        plugins.display()
    );
    let out = clone(&["--upstream-conninfo", &upstream, "--dry-run"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&used), "{err}");
    let out = clone(&["--upstream-conninfo", &upstream]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("NOTICE: recovery policy \"site-policy\" sets archive_cleanup_command = '"),
        "{err}"
    );
    let auto = std::fs::read_to_string(target.join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("sslmode=verify-full"), "{auto}");
    assert!(!auto.contains("s3cret"), "{auto}");
    assert!(auto.contains("recovery_min_apply_delay = '4h'"), "{auto}");
    // The archive comes from site_policy_wal_archive, quoted for the shell.
    assert!(
        auto.contains("archive_cleanup_command = 'pg_archivecleanup ''/srv/wal archive/main'' %r'"),
        "{auto}"
    );
    // The clone names the plugins.toml and the chain it used.
    assert!(err.contains(&used), "{err}");

    // A changed plugin file is refused by verify and by a clone.
    let installed = std::fs::read_dir(sc.path("etc/plugins"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("site-policy-"))
        .expect("the installed file, named after the plugin and its sha256");
    assert!(toml.contains(&format!(
        "file = \"{}\"",
        installed.file_name().unwrap().to_string_lossy()
    )));
    let mut bytes = std::fs::read(&installed).unwrap();
    bytes.extend_from_slice(b"\0");
    std::fs::write(&installed, bytes).unwrap();
    let out = pgclone(&sc, &["-f", s(&cfg), "plugin", "verify"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("changed since it was pinned"),
        "{}",
        stdout(&out)
    );
    // The command that re-pins it, with the configuration that was used.
    assert!(
        stdout(&out).contains(&format!(
            "to review and pin this file: pgclone --plugins-config {} plugin install {}",
            plugins.display(),
            installed.display()
        )),
        "{}",
        stdout(&out)
    );
    let target2 = sc.path("standby2");
    let out = standby_clone(
        &sc,
        &cfg,
        &p,
        &target2,
        &["--upstream-conninfo", &upstream],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("changed since it was pinned"), "{err}");
    assert!(!target2.exists());
}

#[test]
fn hints_name_the_plugin_configuration_that_was_given() {
    // A changed plugin under a --plugins-config that is not the default:
    // every pgclone command a hint suggests reads that same configuration.
    let sc = Scratch::new("hint-plugins-config");
    let plugins = sc.path("etc/plugins.toml");
    let wasm = sc.path("site-policy-1.0.0.wasm");
    std::fs::copy(example(), &wasm).unwrap();
    run_ok(
        std::process::Command::new("chown")
            .arg("postgres")
            .arg(&wasm),
    );
    let given = ["--plugins-config", s(&plugins)];
    let out = pgclone(
        &sc,
        &[&given[..], &["plugin", "install", s(&wasm), "--chain"]].concat(),
        &[],
    );
    assert!(out.status.success(), "{}{}", stderr(&out), stdout(&out));
    let installed = std::fs::read_dir(sc.path("etc/plugins"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("site-policy-"))
        .unwrap();
    let mut bytes = std::fs::read(&installed).unwrap();
    bytes.extend_from_slice(b"\0");
    std::fs::write(&installed, bytes).unwrap();

    let out = pgclone(
        &sc,
        &[&given[..], &["plugin", "inspect", "site-policy"]].concat(),
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("changed since it was pinned"), "{err}");
    let verify = format!(
        "pgclone --plugins-config {} plugin verify",
        plugins.display()
    );
    let install = format!(
        "pgclone --plugins-config {} plugin install FILE",
        plugins.display()
    );
    assert!(err.contains(&format!("`{install}`")), "{err}");
    assert!(err.contains(&format!("`{verify}`")), "{err}");

    // The suggested command, run as given, finds the same problem.
    let args: Vec<&str> = verify.split_whitespace().skip(1).collect();
    let out = pgclone(&sc, &args, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("changed since it was pinned"), "{text}");
    assert!(!text.contains("0 problem(s)"), "{text}");
    assert!(
        text.contains(&format!(
            "to review and pin this file: pgclone --plugins-config {} plugin install {}",
            plugins.display(),
            installed.display()
        )),
        "{text}"
    );
}

#[test]
fn on_a_terminal_install_asks_for_each_capability() {
    let sc = Scratch::new("askinstall");
    let wasm = sc.path("pgbackrest-source.wasm");
    std::fs::copy(component("example_source_pgbackrest"), &wasm).unwrap();
    run_ok(
        std::process::Command::new("chown")
            .arg("postgres")
            .arg(&wasm),
    );
    let plugins = sc.path("etc/plugins.toml");
    let cfg = sc.write(
        "pgclone.conf",
        &format!("plugins_config='{}'\n", plugins.display()),
    );
    // Yes to running pgbackrest and reading the stanza, no to the rest
    // (the repository host's key and its ssh target included).
    let out = pgclone_on_terminal_with_input(
        &sc,
        &["-f", s(&cfg), "plugin", "install", s(&wasm)],
        "y\ny\nn\nn\nn\nn\nn\n",
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("grant local-run:pgbackrest? [y/N]"), "{text}");
    assert!(
        text.contains("NOT granted:  read-config:pgbackrest_config"),
        "{text}"
    );
    let toml = std::fs::read_to_string(&plugins).unwrap();
    assert!(
        toml.contains("grants = [\"local-run:pgbackrest\", \"read-config:pgbackrest_stanza\"]"),
        "{toml}"
    );
}

#[test]
fn a_backup_source_that_is_not_one_is_refused_before_anything_happens() {
    let sc = Scratch::new("badsource");
    let target = sc.path("standby");
    for (source, want) in [
        ("nosuch", "plugin \"nosuch\" is not configured"),
        ("recovery-standard", "does not provide base backups"),
    ] {
        let cfg = sc.write(
            "pgclone.conf",
            &format!("node_id=2\nnode_name=node2\nbackup_source={source}\n"),
        );
        let out = pgclone(
            &sc,
            &[
                "-f",
                s(&cfg),
                "standby",
                "clone",
                "-h",
                "/nonexistent",
                "-D",
                s(&target),
            ],
            &[],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{source}: {err}");
        assert!(err.contains(want), "{source}: {err}");
        assert!(err.contains("HINT:"), "{source}: {err}");
        assert!(!target.exists(), "{source}: {err}");
    }
}

#[test]
fn an_install_that_could_not_be_written_is_refused_before_the_review() {
    let _etc = support::system_paths::reading();
    let sc = Scratch::new("install-readonly");
    let wasm = sc.path("site-policy-1.0.0.wasm");
    std::fs::copy(example(), &wasm).unwrap();
    run_ok(
        std::process::Command::new("chown")
            .arg("postgres")
            .arg(&wasm),
    );
    // No plugins_config: the default /etc/pgclone/plugins.toml, which the
    // postgres user cannot write.
    let cfg = sc.write("pgclone.conf", "node_id=3\nnode_name=node3\n");
    let out = pgclone(&sc, &["-f", s(&cfg), "plugin", "install", s(&wasm)], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is not writable by this user"), "{err}");
    assert!(
        err.contains("HINT: ") && err.contains("--plugins-config"),
        "{err}"
    );
    // Refused before anything of the plugin was shown or run.
    assert!(!stdout(&out).contains("contract:"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("plugin:"), "{}", stdout(&out));
}
