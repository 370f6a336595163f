//! The plugin host against real components: the first-party plugins and the
//! hostile test components under `tests/components/`. Each misbehaviour must end
//! in a precise error, and the host must go on working afterwards.

use crate::support;

use std::path::PathBuf;
use std::sync::Arc;

use pgclone::config::ConfFile;
use pgclone::contract::capability::Refusal;
use pgclone::contract::source::BackupSource;
use pgclone::contract::{Capability, PluginFailure};
use pgclone::environment::HostEnv;
use pgclone::plugin::catalog::{self, sha256_hex, Candidate};
use pgclone::plugin::{Plugin, Runtime};

fn guest(name: &str) -> PathBuf {
    support::component(name)
}

/// A pinned candidate for a test component.
fn pinned(name: &str, file: &str) -> Candidate {
    let path = guest(file);
    let sha = sha256_hex(&std::fs::read(&path).unwrap());
    Candidate::from_file(name, path, Some(sha))
}

fn runtime() -> Runtime {
    Runtime::new(None).unwrap()
}

fn env_with(config: &str) -> Arc<HostEnv> {
    Arc::new(HostEnv {
        config: ConfFile::parse(std::path::Path::new("test.conf"), config).unwrap(),
        ..Default::default()
    })
}

/// The well-behaved echo component still works on `rt`.
fn host_still_works(rt: &Runtime) {
    let mut cand = pinned("test-echo", "test_echo");
    cand.grants = Some(vec![Capability::ReadConfig("barman_server".into())]);
    let p = Plugin::load(rt, &cand).unwrap();
    let b = p
        .session(rt, env_with("barman_server=pg\n"))
        .unwrap()
        .check(&support::plugin_request())
        .unwrap();
    assert_eq!(b.id, "echo-pg");
}

#[test]
fn first_party_plugins_load_with_the_current_contract() {
    let rt = runtime();
    let cands = catalog::candidates(&Default::default());
    let names: Vec<&str> = cands.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "recovery-standard",
            "pg-basebackup",
            "barman",
            "barman-cloud"
        ]
    );
    for c in &cands {
        let p = Plugin::load(&rt, c).unwrap();
        assert_eq!(p.name, c.name);
        assert_eq!(p.contract.version.to_string(), "1.3.0");
        p.ensure_granted().unwrap();
    }
}

#[test]
fn a_plugin_that_loops_forever_is_stopped_at_its_deadline() {
    let rt = runtime();
    let mut cand = pinned("test-spin", "test_spin");
    cand.timeout_ms = 200;
    let p = Plugin::load(&rt, &cand).unwrap();
    let started = std::time::Instant::now();
    let err = p
        .session(&rt, env_with(""))
        .unwrap()
        .check(&support::plugin_request())
        .unwrap_err();
    assert!(
        matches!(
            err,
            PluginFailure::Timeout {
                call: "check",
                limit_ms: 200,
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let text = err.to_string();
    assert!(
        text.contains("\"test-spin\"") && text.contains("check()"),
        "{text}"
    );
    host_still_works(&rt);
}

/// The babbler, granted what it asks for, with a deadline of `timeout_ms`.
fn babbler(rt: &Runtime, timeout_ms: u64) -> Plugin {
    let mut cand = pinned("test-babbler", "test_babbler");
    cand.timeout_ms = timeout_ms;
    cand.grants = Some(vec![
        Capability::LocalRun("true".into()),
        Capability::LocalRun("sleep".into()),
    ]);
    Plugin::load(rt, &cand).unwrap()
}

#[test]
fn a_plugin_asleep_in_a_wasi_call_is_stopped_at_its_deadline() {
    let rt = runtime();
    let p = babbler(&rt, 1000);
    let mut req = support::plugin_request();
    req.backup_id = Some("wasi-sleep".into());
    let mut session = p.session(&rt, env_with("")).unwrap();
    let started = std::time::Instant::now();
    let err = session.check(&req).unwrap_err();
    let took = started.elapsed();
    // It sleeps for an hour; the epoch check cannot see it, the deadline does.
    assert!(took < std::time::Duration::from_secs(2), "{took:?}: {err}");
    assert!(took >= std::time::Duration::from_secs(1), "{took:?}: {err}");
    assert!(
        matches!(
            err,
            PluginFailure::Timeout {
                call: "check",
                limit_ms: 1000,
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("\"test-babbler\"") && text.contains("check()"),
        "{text}"
    );
    // The abandoned instance is not called again; the host goes on working.
    let again = session.check(&support::plugin_request()).unwrap_err();
    assert!(
        again.to_string().contains("cannot be called again"),
        "{again}"
    );
    host_still_works(&rt);
}

#[test]
fn programs_run_one_after_another_cannot_stretch_a_call() {
    let rt = runtime();
    let p = babbler(&rt, 1000);
    let env = Arc::new(HostEnv {
        program_timeout: Some(std::time::Duration::from_secs(2)),
        ..Default::default()
    });
    let mut req = support::plugin_request();
    req.backup_id = Some("programs".into());
    let started = std::time::Instant::now();
    // 60 programs of 1 s each, every one shorter than plugin_program_timeout:
    // together they get plugin_program_timeout, not 60 s.
    let err = p.session(&rt, env).unwrap().check(&req).unwrap_err();
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(4), "{took:?}: {err}");
    let text = err.to_string();
    assert!(text.contains("plugin_program_timeout"), "{text}");
    assert!(
        text.contains("test-babbler") && text.contains("check()"),
        "{text}"
    );
    host_still_works(&rt);
}

#[test]
fn a_plugin_that_allocates_without_bound_hits_its_memory_limit() {
    let rt = runtime();
    let mut cand = pinned("test-hog", "test_hog");
    cand.memory_mib = 16;
    let p = Plugin::load(&rt, &cand).unwrap();
    let err = p
        .session(&rt, env_with(""))
        .unwrap()
        .check(&support::plugin_request())
        .unwrap_err();
    assert!(
        matches!(
            err,
            PluginFailure::Memory {
                call: "check",
                limit_mib: 16,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("memory_mib"), "{err}");
    host_still_works(&rt);
}

#[test]
fn a_plugin_calling_an_undeclared_capability_fails_even_if_it_ignores_the_denial() {
    let rt = runtime();
    let p = Plugin::load(&rt, &pinned("test-sneaky", "test_sneaky")).unwrap();
    let err = p
        .session(&rt, env_with("barman_host=localhost\n"))
        .unwrap()
        .check(&support::plugin_request())
        .unwrap_err();
    match &err {
        PluginFailure::Denied {
            plugin,
            call,
            function,
            capability,
            refusal,
        } => {
            assert_eq!(plugin, "test-sneaky");
            assert_eq!(*call, "check");
            assert_eq!(*function, "run-remote");
            assert_eq!(capability.to_string(), "remote-run:barman:sh");
            assert_eq!(*refusal, Refusal::NotDeclared);
        }
        other => panic!("expected a denial, got {other}"),
    }
    assert!(err.to_string().contains("remote-run:barman:sh"), "{err}");
    host_still_works(&rt);
}

#[test]
fn a_plugin_requesting_an_ungranted_capability_is_refused_before_any_call() {
    let rt = runtime();
    let p = Plugin::load(&rt, &pinned("test-greedy", "test_greedy")).unwrap();
    let err = p.ensure_granted().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PluginFailure::Refused { .. }), "{text}");
    assert!(text.contains("\"test-greedy\""), "{text}");
    assert!(text.contains("remote-run:primary:rm"), "{text}");
    assert!(
        text.contains("grants = [\"remote-run:primary:rm\"]"),
        "{text}"
    );
    host_still_works(&rt);
}

#[test]
fn a_declared_but_ungranted_config_read_is_denied_at_the_call() {
    let rt = runtime();
    // Declared, but the operator granted nothing.
    let mut cand = pinned("test-echo", "test_echo");
    cand.grants = Some(Vec::new());
    let p = Plugin::load(&rt, &cand).unwrap();
    let err = p
        .session(&rt, env_with("barman_server=pg\n"))
        .unwrap()
        .check(&support::plugin_request())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            PluginFailure::Denied {
                refusal: Refusal::NotGranted,
                function: "config-get",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("read-config:barman_server"),
        "{err}"
    );
}

#[test]
fn a_file_altered_after_pinning_is_refused() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.wasm");
    let mut bytes = std::fs::read(guest("test_echo")).unwrap();
    let pin = sha256_hex(&bytes);
    // Flip a byte in the last custom section's data: still a valid component.
    let last = bytes.len() - 1;
    bytes[last] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let err = Plugin::load(
        &rt,
        &Candidate::from_file("test-echo", path.clone(), Some(pin.clone())),
    )
    .err()
    .expect("an altered file must be refused");
    let text = err.to_string();
    assert!(text.contains("changed since it was pinned"), "{text}");
    assert!(text.contains(&pin), "{text}");

    let err = Plugin::load(&rt, &Candidate::from_file("test-echo", path, None))
        .err()
        .expect("an unpinned file must be refused");
    assert!(err.to_string().contains("is not pinned"), "{err}");
    assert!(err.to_string().contains(&sha256_hex(&bytes)), "{err}");
    host_still_works(&rt);
}

/// Rewrites the contract version inside a component's names (same length, so
/// the binary stays valid): what a plugin built against another version has.
fn with_contract_version(version: &str) -> Vec<u8> {
    let bytes = std::fs::read(guest("test_echo")).unwrap();
    let from = b"pgclone:plugin/";
    let mut out = bytes.clone();
    let mut i = 0;
    while i + from.len() < out.len() {
        if &out[i..i + from.len()] == from {
            let mut j = i + from.len();
            while out[j] != b'@' && j < i + 64 {
                j += 1;
            }
            if out[j] == b'@' && &out[j + 1..j + 6] == b"1.3.0" {
                out[j + 1..j + 6].copy_from_slice(version.as_bytes());
            }
            i = j;
        }
        i += 1;
    }
    assert_ne!(out, bytes);
    out
}

#[test]
fn a_plugin_for_another_major_version_is_refused_naming_both_versions() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.wasm");
    let bytes = with_contract_version("2.0.0");
    std::fs::write(&path, &bytes).unwrap();
    let cand = Candidate::from_file("test-echo", path, Some(sha256_hex(&bytes)));
    let err = Plugin::load(&rt, &cand).err().expect("must be refused");
    let text = err.to_string();
    assert!(text.contains("pgclone:plugin@2.0.0"), "{text}");
    assert!(text.contains("supports pgclone:plugin@1.0.0"), "{text}");
}

#[test]
fn a_plugin_for_another_patch_release_of_the_contract_loads() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patch.wasm");
    let bytes = with_contract_version("1.3.9");
    std::fs::write(&path, &bytes).unwrap();
    let mut cand = Candidate::from_file("test-echo", path, Some(sha256_hex(&bytes)));
    cand.grants = Some(vec![Capability::ReadConfig("barman_server".into())]);
    let p = Plugin::load(&rt, &cand).unwrap();
    assert_eq!(p.contract.version.to_string(), "1.3.9");
    let b = p
        .session(&rt, env_with("barman_server=x\n"))
        .unwrap()
        .check(&support::plugin_request())
        .unwrap();
    assert_eq!(b.id, "echo-x");
}

#[test]
fn something_that_is_not_a_component_is_refused() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.wasm");
    std::fs::write(&path, b"\0asm not really").unwrap();
    let cand = Candidate::from_file("junk", path, Some(sha256_hex(b"\0asm not really")));
    let err = Plugin::load(&rt, &cand).err().unwrap();
    assert!(
        err.to_string()
            .contains("not a valid WebAssembly component"),
        "{err}"
    );
}

#[test]
fn a_warm_start_compiles_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let cands = catalog::candidates(&Default::default());
    let cold = Runtime::new(Some(cache.path())).unwrap();
    for c in &cands {
        Plugin::load(&cold, c).unwrap();
    }
    assert_eq!(cold.compiled_count(), cands.len());
    let cached = std::fs::read_dir(cache.path().join("components"))
        .unwrap()
        .count();
    assert_eq!(cached, cands.len());

    let warm = Runtime::new(Some(cache.path())).unwrap();
    for c in &cands {
        Plugin::load(&warm, c).unwrap();
    }
    assert_eq!(warm.compiled_count(), 0);
}

#[test]
fn a_cache_writable_by_others_is_not_trusted() {
    use std::os::unix::fs::PermissionsExt;
    let cache = tempfile::tempdir().unwrap();
    let cands = catalog::candidates(&Default::default());
    let first = Runtime::new(Some(cache.path())).unwrap();
    Plugin::load(&first, &cands[0]).unwrap();
    let dir = cache.path().join("components");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let second = Runtime::new(Some(cache.path())).unwrap();
    Plugin::load(&second, &cands[0]).unwrap();
    assert_eq!(second.compiled_count(), 1);
}
