//! Test component: a hostile backup source. `check` describes a backup whose
//! id is the requested `--backup-id`; `plan-clone` returns the hostile plan
//! that id names. The host must refuse every one of them.

use pgclone_plugin_sdk::source::*;
use pgclone_plugin_sdk::{host, testing, PluginInfo};

pgclone_plugin_sdk::manifest! {
    name: "test-escaper",
    version: "0.0.1",
    vendor: "pgclone tests",
    license: "Apache-2.0",
    description: "plans that try to escape the data directory and the grants",
    provides: ["base-backup"],
    needs_upstream: false,
    capabilities: ["local-run:true", "local-run:sleep", "local-run:yes", "remote-run:store:rsync", "remote-run:store:cat"],
}

struct Escaper;

fn at(path: &str) -> LocalPath {
    LocalPath {
        root: PathRoot::DataDirectory,
        path: path.into(),
    }
}

fn staged(path: &str) -> LocalPath {
    LocalPath {
        root: PathRoot::Staging,
        path: path.into(),
    }
}

fn combine(backups: Vec<LocalPath>) -> PlanStep {
    PlanStep::CombineBackups(CombineBackupsStep { backups })
}

fn dir(path: &str) -> PlanStep {
    PlanStep::CreateDir(CreateDirStep {
        path: at(path),
        mode: 0o700,
    })
}

fn run(program: &str, args: &[&str]) -> PlanStep {
    PlanStep::RunLocal(RunLocalStep {
        program: program.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        uses_upstream_password: false,
        description: "hostile".into(),
    })
}

fn unpack(target: &str, remote: &str, local: LocalPath) -> PlanStep {
    PlanStep::UnpackArchive(UnpackArchiveStep {
        target: target.into(),
        remote_path: remote.into(),
        compression: Some(ArchiveCompression::Gzip),
        local,
        size_bytes: 0,
    })
}

fn copy(target: &str, remote: &str, files: &[&str]) -> PlanStep {
    PlanStep::CopyTree(CopyTreeStep {
        target: target.into(),
        remote_path: remote.into(),
        local: at(""),
        files: files.iter().map(|f| f.to_string()).collect(),
        exclude: Vec::new(),
    })
}

/// A copy of `remote` as the WIT describes copy-tree steps: listed files
/// less the excluded paths (`listed`), or the whole tree less them
/// (`whole`); what is excluded is a relative path, not a pattern
/// (`we*rd` is that name).
fn copies(case: &str, remote: &str) -> Option<Vec<PlanStep>> {
    let exclude = ["pg_wal", "postmaster.pid", "we*rd", "base/1/113"]
        .map(String::from)
        .to_vec();
    let files: Vec<String> = match case {
        "listed" => [
            "PG_VERSION",
            "base/1/112",
            "pg_wal/000000010000000000000001",
            "postmaster.pid",
            "we*rd",
            "weXrd",
        ]
        .map(String::from)
        .to_vec(),
        "whole" => Vec::new(),
        _ => return None,
    };
    Some(vec![PlanStep::CopyTree(CopyTreeStep {
        target: "store".into(),
        remote_path: remote.into(),
        local: at(""),
        files,
        exclude,
    })])
}

impl Guest for Escaper {
    fn describe() -> PluginInfo {
        pgclone_plugin_sdk::describe(MANIFEST)
    }

    fn check(request: CloneRequest) -> Result<BackupDescription, PluginError> {
        if request.backup_id.as_deref() == Some("hang") {
            // A program that never finishes (think: ssh to a host that stopped answering).
            host::run_local("sleep", &["3600".to_string()])?;
        }
        if request.backup_id.as_deref() == Some("flood") {
            // A program whose output never ends.
            host::run_local("yes", &[])?;
        }
        let mut backup = testing::backup(request.backup_id.as_deref().unwrap_or("none"));
        if backup.id == "tablespace-grab" {
            // A "tablespace" where the plugin would like to write.
            backup.tablespaces.push(Tablespace {
                oid: 16390,
                name: "grab".into(),
                location: "/tmp/pgclone-grabbed".into(),
            });
        }
        Ok(backup)
    }

    fn plan_clone(
        _r: CloneRequest,
        backup: BackupDescription,
    ) -> Result<Vec<PlanStep>, PluginError> {
        // The copy-tree tests (host/tests/copy_tree.rs): `CASE:REMOTE-DIR`.
        if let Some((case, remote)) = backup.id.split_once(':') {
            if let Some(plan) = copies(case, remote) {
                return Ok(plan);
            }
        }
        Ok(match backup.id.as_str() {
            "dotdot" => vec![dir("base"), dir("../escaped")],
            "absolute" => vec![PlanStep::WriteFile(WriteFileStep {
                path: at("/tmp/pgclone-escaped"),
                contents: "x".into(),
                mode: 0o600,
            })],
            "other-tablespace" => vec![PlanStep::CreateDir(CreateDirStep {
                path: LocalPath {
                    root: PathRoot::Tablespace(999),
                    path: "x".into(),
                },
                mode: 0o700,
            })],
            "program-path" => vec![run("/bin/sh", &["-c", "touch /tmp/pgclone-escaped"])],
            "undeclared-program" => vec![run("rm", &["-rf", "/"])],
            "ungranted-target" => vec![copy("elsewhere", "/srv", &["PG_VERSION"])],
            "option-injection" => vec![copy("store", "-e sh", &["PG_VERSION"])],
            "dotdot-file" => vec![copy("store", "/srv/backup", &["../../etc/shadow"])],
            "empty" => Vec::new(),
            "huge-plan" => (0..20_000).map(|i| dir(&format!("d{i}"))).collect(),
            "huge-file" => vec![PlanStep::WriteFile(WriteFileStep {
                path: at("big"),
                contents: "x".repeat(8 << 20),
                mode: 0o600,
            })],
            "panic" => panic!("the plugin panicked on purpose"),
            // unpack-archive (1.1.0): the same rules as every other step.
            "unpack-ungranted" => vec![unpack("elsewhere", "/srv/base.tar.gz", at(""))],
            "unpack-relative" => vec![unpack("store", "base.tar.gz", at(""))],
            "unpack-dotdot" => vec![unpack("store", "/srv/base.tar.gz", at("../up"))],
            "unpack-tablespace" => vec![unpack(
                "store",
                "/srv/16390.tar.gz",
                LocalPath {
                    root: PathRoot::Tablespace(999),
                    path: String::new(),
                },
            )],
            "unpack-ok" => vec![unpack("store", "/srv/b/base.tar.gz", at(""))],
            // The staging directory (1.1.0): only with a combine-backups step,
            // and nothing outside it.
            "staging-without-combine" => vec![PlanStep::CreateDir(CreateDirStep {
                path: staged("a"),
                mode: 0o700,
            })],
            "staging-dotdot" => vec![
                PlanStep::CreateDir(CreateDirStep {
                    path: staged("../a"),
                    mode: 0o700,
                }),
                combine(vec![staged("a"), staged("b")]),
            ],
            "combine-outside" => vec![combine(vec![staged("a"), at("b")])],
            "combine-root" => vec![combine(vec![staged("a"), staged("")])],
            "combine-one" => vec![combine(vec![staged("a")])],
            "combine-twice" => vec![combine(vec![staged("a"), staged("a")])],
            "combine-escape" => vec![combine(vec![staged("a"), staged("b/../../x")])],
            "combine-ok" => vec![combine(vec![staged("a"), staged("b")])],
            // Control characters: a carriage return that rsync's --files-from
            // would read as two names, a line break, a tab, an escape
            // sequence, DEL, a C1 control; in every kind of step.
            "cr-file" => vec![copy(
                "store",
                "/srv/backup",
                &["base/1\r../../etc/cron.d/x"],
            )],
            "cr-exclude" => vec![PlanStep::CopyTree(CopyTreeStep {
                exclude: vec!["pg_wal\u{85}x".into()],
                ..match copy("store", "/srv/backup", &["PG_VERSION"]) {
                    PlanStep::CopyTree(c) => c,
                    _ => unreachable!(),
                }
            })],
            "del-remote" => vec![copy("store", "/srv/backup\x7f", &["PG_VERSION"])],
            "newline-dir" => vec![dir("base\nx")],
            "tab-write" => vec![PlanStep::WriteFile(WriteFileStep {
                path: at("tablespace_map\t"),
                contents: "x".into(),
                mode: 0o600,
            })],
            "c1-local" => vec![PlanStep::CopyTree(CopyTreeStep {
                local: at("base\u{9b}2J"),
                ..match copy("store", "/srv/backup", &["PG_VERSION"]) {
                    PlanStep::CopyTree(c) => c,
                    _ => unreachable!(),
                }
            })],
            "escape-arg" => vec![run("true", &["\x1b]0;owned\x07"])],
            "tablespace-grab" => vec![PlanStep::WriteFile(WriteFileStep {
                path: LocalPath {
                    root: PathRoot::Tablespace(16390),
                    path: "authorized_keys".into(),
                },
                contents: "ssh-ed25519 AAAA attacker".into(),
                mode: 0o600,
            })],
            _ => vec![run("true", &["; touch /tmp/pgclone-escaped", "$(reboot)"])],
        })
    }

    fn locate_wal(name: String) -> Result<WalLocation, PluginError> {
        Ok(WalLocation::RemoteFile(RemoteWalFile {
            target: "elsewhere".into(),
            path: format!("../{name}"),
            compression: None,
        }))
    }

    /// A WAL archive outside every rule: a relative directory on a target it
    /// never declared, and a remote fetch command that writes to a local path.
    fn locate_wal_archive() -> Result<WalArchive, PluginError> {
        Ok(WalArchive {
            directory: Some(WalDirectory {
                target: "elsewhere".into(),
                path: "../../wals".into(),
                layout: WalLayout::Flat,
            }),
            fetch: Some(WalFetchCommand {
                target: Some("store".into()),
                argv: vec!["cat".into(), "%f".into(), "%p".into()],
                partial_argv: None,
                missing_status: Some(1),
            }),
            store: None,
        })
    }
}

pgclone_plugin_sdk::export_source!(Escaper);
