//! Confinement: what a plan writes stays in the clone's directories.
use super::*;

#[test]
fn a_symlink_inside_the_copy_cannot_lead_outside() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, data.join("evil")).unwrap();
    let ts = t.path().join("ts");
    std::fs::create_dir_all(&ts).unwrap();
    let roots = vec![data.clone(), ts.clone()];
    assert!(confined(&data.join("base/1"), &roots).is_ok());
    assert!(confined(&ts.join("PG_15/16384"), &roots).is_ok());
    // A link to the root directory cannot reach an ancestor of a root.
    std::os::unix::fs::symlink("/", data.join("slash")).unwrap();
    assert!(confined(&data.join("slash/tmp/new-file"), &roots).is_err());
    assert!(confined(&t.path().join("elsewhere"), &roots).is_err());
    let e = confined(&data.join("evil/passwd"), &roots).unwrap_err();
    assert!(e.to_string().contains("outside the data directory"), "{e}");
    assert!(confined(&data.join("evil"), &roots).is_err());

    // And the steps themselves refuse to write through it.
    let ctx = ExecContext {
        roots,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let step = Step::WriteFile(kinds::write_file::WriteFile {
        path: data.join("evil/passwd"),
        contents: "x".into(),
        mode: 0o600,
    });
    assert!(rt.block_on(execute(&[step], &ctx)).is_err());
    let step = Step::CreateDir(kinds::create_dir::CreateDir {
        path: data.join("evil/sub"),
        mode: 0o700,
    });
    assert!(rt.block_on(execute(&[step], &ctx)).is_err());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

/// A chain of links whose real path is longer than PATH_MAX: the kernel
/// follows it, realpath() cannot resolve it. Such a path must be refused,
/// not checked as given (which looks inside the data directory).
#[test]
fn a_path_that_cannot_be_resolved_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let out = t.path().join("out");
    std::fs::create_dir_all(&data).unwrap();
    // 12 levels of 250-byte names, twice: over 6000 bytes when resolved.
    let deep: PathBuf = std::iter::repeat_n("a".repeat(250), 12).collect();
    std::fs::create_dir_all(out.join(&deep)).unwrap();
    std::os::unix::fs::symlink(&deep, out.join("s1")).unwrap();
    std::fs::create_dir_all(out.join("s1").join(&deep)).unwrap();
    std::os::unix::fs::symlink(&deep, out.join("s1/s2")).unwrap();
    std::os::unix::fs::symlink(out.join("s1/s2"), data.join("evil")).unwrap();
    // The kernel gets there; realpath() does not.
    assert!(std::fs::metadata(data.join("evil")).unwrap().is_dir());
    assert!(std::fs::canonicalize(data.join("evil")).is_err());
    // A dangling link cannot be checked either.
    std::os::unix::fs::symlink(t.path().join("nothing"), data.join("dangling")).unwrap();

    let roots = vec![data.clone()];
    let e = confined(&data.join("evil/authorized_keys"), &roots).unwrap_err();
    assert!(e.to_string().contains("cannot be resolved"), "{e}");
    assert!(e.hint.is_some() && e.detail.is_some(), "{e}");
    assert!(confined(&data.join("dangling/x"), &roots).is_err());
    assert!(confined(&data.join("base/1"), &roots).is_ok());

    let ctx = ExecContext {
        roots,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for step in [
        Step::WriteFile(kinds::write_file::WriteFile {
            path: data.join("evil/authorized_keys"),
            contents: "ssh-ed25519 AAAA attacker".into(),
            mode: 0o600,
        }),
        Step::CreateDir(kinds::create_dir::CreateDir {
            path: data.join("evil/sub"),
            mode: 0o700,
        }),
    ] {
        let e = rt.block_on(execute(&[step], &ctx)).unwrap_err();
        assert!(
            crate::report::render(&e).contains("cannot be resolved"),
            "{e}"
        );
    }
    let written = data.join("evil/authorized_keys");
    assert!(!written.exists() && !data.join("evil/sub").exists());
}
