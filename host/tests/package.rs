//! The Debian package, as an operator meets it: scripts/package.sh packages
//! the release build these tests run, dpkg installs it into this machine, the
//! installed /usr/bin/pgclone shows its version, man pages and completions
//! and clones a standby that streams, and dpkg removes it leaving nothing
//! behind but what Debian policy keeps until a purge (the conffile).

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::*;

const WAIT: Duration = Duration::from_secs(60);
/// Marks a package this test installed, so that a run killed before its
/// clean-up is repaired by the next run, never a package an operator installed.
const MARK: &str = "/var/tmp/pgclone-package-test.installed";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// dpkg, waiting while another dpkg or apt holds its lock.
fn dpkg(args: &[&str]) -> Output {
    let start = Instant::now();
    loop {
        let out = run(Command::new("dpkg").args(args));
        if out.status.success() || !stderr(&out).contains("lock") || start.elapsed() > WAIT {
            return out;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The package's state: "install ok installed", "deinstall ok config-files", or
/// "" when dpkg does not know it.
fn status() -> String {
    let out = run(Command::new("dpkg-query").args(["-W", "-f=${Status}", "pgclone"]));
    stdout(&out).trim().to_string()
}

/// Removes a package a killed earlier run left; refuses to touch anything an
/// operator installed.
fn refuse_an_operators_pgclone() {
    let ours = Path::new(MARK).exists();
    if ours && !status().is_empty() {
        let out = dpkg(&["-P", "pgclone"]);
        assert!(
            out.status.success(),
            "purging the last run's package: {}",
            text(&out)
        );
    }
    let _ = std::fs::remove_file(MARK);
    let st = status();
    assert!(
        st.is_empty() || st == "unknown ok not-installed",
        "pgclone's package is on this machine ({st}): this test installs and purges its own; \
         remove it first (dpkg -P pgclone) or run the tests on another machine"
    );
    for p in ["/usr/bin/pgclone", "/etc/pgclone"] {
        assert!(
            !Path::new(p).exists(),
            "{p} exists on this machine: this test installs pgclone's package there and purges it; \
             move it away first or run the tests on another machine"
        );
    }
}

/// Purges the package when the test ends, passed or failed.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        if !status().is_empty() {
            let _ = dpkg(&["-P", "pgclone"]);
        }
        let _ = std::fs::remove_file(MARK);
    }
}

/// What `bash` prints after loading the installed completion and asking it to
/// complete `words` (the last one is being typed).
fn bash_completes(words: &str) -> String {
    let script = format!(
        "source /usr/share/bash-completion/completions/pgclone && complete -p pgclone && \
         COMP_WORDS=({words}) && COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)) && \
         COMP_LINE=\"${{COMP_WORDS[*]}}\" && COMP_POINT=${{#COMP_LINE}} && \
         _pgclone pgclone \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\" && \
         printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    run_ok(Command::new("bash").args(["--norc", "--noprofile", "-c", &script]))
}

/// A man page as `man` shows it, plain text.
fn man_page(name: &str) -> String {
    let out = run(Command::new("man")
        .args(["-P", "cat", name])
        .env("MANWIDTH", "200")
        .env("MAN_KEEP_FORMATTING", "0"));
    assert!(out.status.success(), "man {name}: {}", text(&out));
    // groff may still mark bold and underline with backspaces.
    let mut plain = String::new();
    for c in stdout(&out).chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    plain
}

#[test]
fn the_package_installs_clones_and_purges_cleanly() {
    if !is_root() {
        panic!("this test installs a package with dpkg: run the suite as root, as scripts/test.sh does");
    }
    let _etc = system_paths::changing();
    refuse_an_operators_pgclone();
    let started = Instant::now();

    // The package, from the release build these tests run (no second build).
    let out = run(Command::new(root().join("scripts/package.sh")).args(["--no-build", "--fast"]));
    assert!(out.status.success(), "scripts/package.sh: {}", text(&out));
    let deb = PathBuf::from(stdout(&out).trim());
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        deb.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("pgclone_{version}-1_")),
        "{}",
        deb.display()
    );
    let built = started.elapsed();

    // Its declared dependencies: the shared libraries the binary links
    // (dpkg-shlibdeps) and the programs it runs.
    let depends = run_ok(
        Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .arg("Depends"),
    );
    for dep in [
        "libc6",
        "libssl3",
        "openssh-client",
        "rsync",
        "postgresql-client",
    ] {
        assert!(depends.contains(dep), "Depends: {depends}");
    }
    let listing = run_ok(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let files: Vec<String> = listing
        .lines()
        .filter(|l| l.starts_with('-'))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .unwrap()
                .trim_start_matches('.')
                .to_string()
        })
        .collect();
    for f in [
        "/usr/bin/pgclone",
        "/usr/share/man/man1/pgclone.1.gz",
        "/usr/share/bash-completion/completions/pgclone",
        "/usr/share/zsh/vendor-completions/_pgclone",
        "/usr/share/fish/vendor_completions.d/pgclone.fish",
        "/etc/pgclone/plugins.toml",
    ] {
        assert!(
            files.iter().any(|x| x == f),
            "{f} not in the package:\n{listing}"
        );
    }
    // A page per command, every level, and none for the hidden generators.
    for cmd in [
        "standby-clone",
        "wal-restore",
        "barman-cloud-wal-restore",
        "patroni-replica",
        "plugin",
        "plugin-list",
        "plugin-inspect",
        "plugin-check",
        "plugin-install",
        "plugin-verify",
        "plugin-test",
    ] {
        let page = format!("/usr/share/man/man1/pgclone-{cmd}.1.gz");
        assert!(
            files.contains(&page),
            "{page} not in the package:\n{listing}"
        );
    }
    assert!(!listing.contains("generate"), "{listing}");

    let out = dpkg(&["-i", deb.to_str().unwrap()]);
    let _installed = Installed;
    std::fs::write(MARK, deb.to_string_lossy().as_bytes()).unwrap();
    assert!(out.status.success(), "dpkg -i: {}", text(&out));
    assert_eq!(status(), "install ok installed");

    let v = run_ok(Command::new("/usr/bin/pgclone").arg("--version"));
    assert_eq!(v.trim(), format!("pgclone {version}"));

    // Man pages where man finds them, saying what --help says.
    let w = run_ok(Command::new("man").args(["-w", "pgclone"]));
    assert_eq!(w.trim(), "/usr/share/man/man1/pgclone.1.gz");
    let w = run_ok(Command::new("man").args(["-w", "pgclone-standby-clone"]));
    assert_eq!(w.trim(), "/usr/share/man/man1/pgclone-standby-clone.1.gz");
    let page = man_page("pgclone-standby-clone");
    let help = run_ok(Command::new("/usr/bin/pgclone").args(["standby", "clone", "--help"]));
    for option in [
        "--fast-checkpoint",
        "--upstream-node-id",
        "--copy-external-config-files",
    ] {
        assert!(
            page.contains(option),
            "{option} not in man pgclone-standby-clone:\n{page}"
        );
        assert!(help.contains(option), "{option} not in --help:\n{help}");
    }
    // The first sentence of the command's description, in both.
    let about = "Clone a standby from the upstream (pg_basebackup), from Barman";
    assert!(page.contains(about), "{page}");
    assert!(help.contains(about), "{help}");
    let page = man_page("pgclone");
    assert!(page.contains("/etc/pgclone/plugins.toml"), "{page}");
    assert!(!page.contains("generate-man"), "{page}");

    // The bash completion: registered, and completing commands and options.
    let c = bash_completes("pgclone plugin ve");
    assert!(
        c.starts_with("complete ") && c.contains(" -F _pgclone pgclone\n"),
        "{c}"
    );
    assert!(c.lines().any(|l| l == "verify"), "{c}");
    let c = bash_completes("pgclone standby clone --fast-");
    assert!(c.lines().any(|l| l == "--fast-checkpoint"), "{c}");
    let c = bash_completes("pgclone ge");
    assert!(
        !c.contains("generate"),
        "a hidden generator is completed: {c}"
    );

    // The example plugins.toml: a conffile, root's and writable by nobody
    // else (pgclone refuses it otherwise), and what pgclone reads by default.
    let conffiles = run_ok(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "pgclone"]));
    assert!(
        conffiles.contains("/etc/pgclone/plugins.toml"),
        "{conffiles}"
    );
    let st = run_ok(Command::new("stat").args([
        "-c",
        "%U:%G %a",
        "/etc/pgclone/plugins.toml",
        "/etc/pgclone",
    ]));
    assert_eq!(st, "root:root 644\nroot:root 755\n");

    // A clone with the installed binary, as a DBA runs it: as postgres, with
    // the client programs the package depends on from PATH.
    let sc = Scratch::new("package");
    let mut p = Pg::init(&sc, "primary");
    p.start();
    p.sql("CREATE TABLE t(i int); INSERT INTO t SELECT generate_series(1, 100)");
    let installed = |args: &[&str]| {
        run(as_pg("env")
            .arg("-i")
            .arg(format!("HOME={}", sc.dir.display()))
            .arg("PATH=/usr/bin:/bin")
            .arg(format!("PGCLONE_CACHE_DIR={}", sc.path("cache").display()))
            .arg("pgclone")
            .args(args))
    };
    let out = installed(&["plugin", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        stdout(&out).trim(),
        "0 pinned plugins checked, 0 problems (/etc/pgclone/plugins.toml)"
    );
    let cfg = sc.write("pgclone.conf", "node_id=2\nnode_name='node2'\n");
    let target = sc.path("standby");
    let args = clone_args(&cfg, &p, &target, &["--fast-checkpoint"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = installed(&args);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("INFO: plugins from \"/etc/pgclone/plugins.toml\""),
        "{err}"
    );
    assert!(
        err.contains("NOTICE: standby clone (using pg_basebackup) complete"),
        "{err}"
    );
    let mut st = Pg::existing(&sc, target);
    st.start();
    st.wait_for("SELECT status FROM pg_stat_wal_receiver", "streaming", WAIT);
    st.wait_for("SELECT count(*) FROM t", "100", WAIT);
    drop(st);

    // Removed: every file but the conffile; purged: that too.
    let out = dpkg(&["-r", "pgclone"]);
    assert!(out.status.success(), "dpkg -r: {}", text(&out));
    assert_eq!(status(), "deinstall ok config-files");
    for f in &files {
        let kept = f == "/etc/pgclone/plugins.toml";
        assert_eq!(Path::new(f).exists(), kept, "{f} after dpkg -r");
    }
    let out = dpkg(&["-P", "pgclone"]);
    assert!(out.status.success(), "dpkg -P: {}", text(&out));
    assert!(
        status().is_empty() || status() == "unknown ok not-installed",
        "{}",
        status()
    );
    for f in files
        .iter()
        .map(String::as_str)
        .chain(["/etc/pgclone", "/usr/share/doc/pgclone"])
    {
        assert!(!Path::new(f).exists(), "{f} after dpkg -P");
    }
    let out = run(Command::new("man").args(["-w", "pgclone"]));
    assert!(!out.status.success(), "{}", text(&out));
    eprintln!(
        "package: built in {:.1?}, whole test {:.1?}",
        built,
        started.elapsed()
    );
}
