//! Builds the first-party plugins for `wasm32-wasip2` with a nested cargo, so
//! that `cargo build` alone yields a `pgclone` with them embedded. The examples
//! and the test components are not built here: the tests build them
//! (`host/tests/support`, `support::component`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The crates built as components, all embedded in the binary.
const GUESTS: &[&str] = &[
    "pgclone-recovery-standard",
    "pgclone-source-barman",
    "pgclone-source-barman-cloud",
    "pgclone-source-pg-basebackup",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    for dir in ["wit", "contract", "sdk", "plugins", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }

    // A target directory of its own: the outer cargo holds a lock on ours.
    let target_dir = std::env::var_os("PGCLONE_GUEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("guests"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "guest"])
        .arg("--target-dir")
        .arg(&target_dir);
    for guest in GUESTS {
        cmd.args(["-p", guest]);
    }
    // What the outer cargo sets for its own compilation must not leak into the
    // guests' (clippy's wrapper, host rustflags, the jobserver).
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .output()
        .expect("cannot run cargo to build the wasm guests");
    if !out.status.success() {
        panic!(
            "building the wasm guests failed ({}):\n{}\nHINT: is the wasm32-wasip2 target installed? (rustup target add wasm32-wasip2)",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let guest_dir = target_dir.join("wasm32-wasip2").join("guest");
    for guest in GUESTS {
        let file = wasm_file(&guest_dir, guest);
        assert!(file.exists(), "{} was not built", file.display());
    }
    println!("cargo:rustc-env=PGCLONE_GUEST_DIR={}", guest_dir.display());
}

fn wasm_file(dir: &Path, krate: &str) -> PathBuf {
    dir.join(format!("{}.wasm", krate.replace('-', "_")))
}
