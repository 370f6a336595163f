//! The plugin guide's own example, followed as a newcomer would: its
//! Cargo.toml and code are taken from `docs/plugin-guide.md`, built as a crate
//! outside the pgclone tree, unit-tested natively, built for wasm32-wasip2
//! and put through `pgclone plugin test`. If the guide's code stops working,
//! this fails.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The first fenced block of `lang` after `marker`.
fn block_after(text: &str, marker: &str, lang: &str) -> String {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("the guide no longer says {marker:?}"));
    let fence = format!("```{lang}\n");
    let start = at + text[at..].find(&fence).unwrap() + fence.len();
    let end = start + text[start..].find("```").unwrap();
    text[start..end].to_string()
}

/// cargo, without what the outer cargo set for this test.
fn cargo(dir: &Path) -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(dir)
        .env("CARGO_TARGET_DIR", root().join("target/guide-trial"));
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
    ] {
        c.env_remove(var);
    }
    c
}

fn ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{c:?} failed:\n{text}");
    text
}

#[test]
fn the_guides_site_policy_builds_passes_its_tests_and_conformance() {
    let guide = std::fs::read_to_string(root().join("docs/plugin-guide.md")).unwrap();
    let manifest = block_after(&guide, "Replace the generated `Cargo.toml` with:", "toml")
        .replace("/path/to/pgclone/sdk", root().join("sdk").to_str().unwrap());
    let code = block_after(&guide, "Replace `src/lib.rs` with this", "rust");
    let tests = block_after(&guide, "Append this to `src/lib.rs`:", "rust");

    // Outside the pgclone tree, as the guide says.
    let dir = tempfile::Builder::new()
        .prefix("pgclone-guide-")
        .tempdir()
        .unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.path().join("src/lib.rs"), format!("{code}\n{tests}")).unwrap();

    let out = ok(cargo(dir.path()).args(["test", "--lib"]));
    assert!(out.contains("test result: ok. 2 passed"), "{out}");
    ok(cargo(dir.path()).args(["build", "--release", "--target", "wasm32-wasip2"]));
    let wasm = root().join("target/guide-trial/wasm32-wasip2/release/my_policy.wasm");
    let out = ok(Command::new(env!("CARGO_BIN_EXE_pgclone"))
        .env("PGCLONE_CONFIG", "/dev/null")
        .env("PGCLONE_CACHE_DIR", dir.path().join("cache"))
        .args(["plugin", "test"])
        .arg(&wasm));
    assert!(out.contains("my-policy: 22 checks, 0 failed"), "{out}");
}
