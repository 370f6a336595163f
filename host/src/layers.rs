//! The host's layers, and the test that keeps every import pointing down.
//!
//! A module may use modules of a lower layer and of its own layer, never of a
//! higher one, and no two modules may use each other through any chain
//! (checked both among the crate's top-level modules and among the clone's
//! own). The test reads the sources as text: `crate::…` and `super::…` paths,
//! `use` groups included; a module's own `tests` are not counted.

/// The crate's top-level modules, lowest first. What each layer is:
/// reporting (the command lines hints suggest, the JSON document); processes, PostgreSQL's
/// protocols, WAL arithmetic and the contract as the host's types; ssh and
/// object stores; file
/// trust; configuration; the site's environment; the WebAssembly sandbox;
/// recovery configuration and wal-restore; the clone; the `plugin test`
/// checks; the commands.
const CRATE_LAYERS: &[&[&str]] = &[
    &["report", "invocation", "output", "fuzz", "layers"],
    &["child", "pg", "wal", "contract"],
    &["remote", "store"],
    &["trust"],
    &["config"],
    &["environment"],
    &["plugin"],
    &["recovery", "walrestore"],
    &["clone"],
    &["conformance"],
    &["commands"],
];

/// The clone's modules, lowest first: mechanisms, then the phases in the
/// order they run (`clone/mod.rs` is above them all).
const CLONE_LAYERS: &[&[&str]] = &[
    &[
        "checks",
        "outcome",
        "interrupt",
        "progress",
        "safety",
        "space",
        "links",
    ],
    &["steps", "upstream", "settings"],
    &[
        "leftover",
        "target",
        "connect",
        "ssh_master",
        "external",
        "verify",
        "warm_wal",
    ],
    &["resolve"],
    &["catchup", "preflight"],
    &["source_plan", "recovery_plan"],
    &["plan"],
    &["configure", "rollback"],
    &["execute"],
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// `(module, module it uses)` for every source file below `src`.
    fn uses(src: &Path) -> Vec<(Vec<String>, Vec<String>)> {
        let mut out = Vec::new();
        for file in rust_files(src) {
            let rel = file.strip_prefix(src).unwrap().with_extension("");
            let mut module: Vec<String> = rel
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            let text = std::fs::read_to_string(&file).unwrap();
            let text = match text.find("#[cfg(test)]\nmod tests") {
                Some(i) => &text[..i],
                None => &text[..],
            };
            for path in paths(text) {
                let target = match path.first().map(String::as_str) {
                    Some("crate") => path[1..].to_vec(),
                    Some("super") => {
                        let ups = path.iter().take_while(|p| *p == "super").count();
                        let base = &module[..module.len().saturating_sub(ups)];
                        base.iter().chain(&path[ups..]).cloned().collect()
                    }
                    _ => continue,
                };
                out.push((module.clone(), target));
            }
        }
        out
    }

    fn rust_files(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files.extend(rust_files(&p));
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
        files
    }

    /// Every `crate::a::b` / `super::a` path in `text`, `use` groups
    /// (`use crate::{a, b::{c, d}}`) expanded one level.
    fn paths(text: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut rest = text;
        while let Some(i) = rest.find(['c', 's']) {
            let at = &rest[i..];
            let boundary = i == 0 || !rest[..i].ends_with(ident);
            let head = ["crate::", "super::"]
                .into_iter()
                .find(|h| boundary && at.starts_with(h));
            let Some(_) = head else {
                rest = &at[1..];
                continue;
            };
            let mut segs = Vec::new();
            let mut p = at;
            loop {
                let end = p.find(|c: char| !ident(c)).unwrap_or(p.len());
                segs.push(p[..end].to_string());
                p = &p[end..];
                if let Some(next) = p.strip_prefix("::") {
                    p = next;
                    if let Some(group) = p.strip_prefix('{') {
                        let close = group.find('}').unwrap_or(group.len());
                        for item in group[..close].split(',') {
                            let first = item.trim().split("::").next().unwrap_or("");
                            let first = first.split_whitespace().next().unwrap_or("");
                            if !first.is_empty() && first != "self" {
                                let mut s = segs.clone();
                                s.push(first.to_string());
                                out.push(s);
                            }
                        }
                        break;
                    }
                    continue;
                }
                out.push(segs.clone());
                break;
            }
            rest = p;
        }
        out
    }

    fn rank(layers: &[&[&str]], name: &str) -> Option<usize> {
        layers.iter().position(|l| l.contains(&name))
    }

    /// Edges between the children of `parent` (named by their first path
    /// segment below it), each checked against `layers`.
    fn check(
        edges: &[(Vec<String>, Vec<String>)],
        parent: &[&str],
        layers: &[&[&str]],
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        // Items of `parent` itself (its mod.rs: `clone::CloneOptions`) are
        // not a child's layer; only names that are modules count.
        let dir = parent.iter().fold(src(), |d, p| d.join(p));
        let is_module = |n: &str| {
            !n.is_empty() && (dir.join(format!("{n}.rs")).exists() || dir.join(n).is_dir())
        };
        let below = |m: &[String]| -> Option<String> {
            (m.len() > parent.len() && m.iter().zip(parent).all(|(a, b)| a == b))
                .then(|| m[parent.len()].clone())
                .filter(|n| is_module(n))
        };
        for (from, to) in edges {
            let (Some(a), Some(b)) = (below(from), below(to)) else {
                continue;
            };
            if a == b {
                continue;
            }
            let (Some(ra), Some(rb)) = (rank(layers, &a), rank(layers, &b)) else {
                // A module not in the table (a file added without a place).
                for m in [&a, &b] {
                    if rank(layers, m).is_none() {
                        problems.push(format!("{}::{m} has no layer", parent.join("::")));
                    }
                }
                continue;
            };
            if rb > ra {
                problems.push(format!(
                    "{} uses {}, a higher layer",
                    from.join("::"),
                    to.join("::")
                ));
            }
            graph.entry(a).or_default().insert(b);
        }
        problems.extend(cycles(&graph));
        problems.sort();
        problems.dedup();
        problems
    }

    fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
        fn reaches(
            g: &BTreeMap<String, BTreeSet<String>>,
            from: &str,
            to: &str,
            seen: &mut BTreeSet<String>,
        ) -> bool {
            g.get(from)
                .into_iter()
                .flatten()
                .any(|n| n == to || (seen.insert(n.clone()) && reaches(g, n, to, seen)))
        }
        let mut out = Vec::new();
        for (a, next) in graph {
            for b in next {
                if reaches(graph, b, a, &mut BTreeSet::new()) {
                    out.push(format!("{a} and {b} use each other"));
                }
            }
        }
        out
    }

    fn src() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    #[test]
    fn crate_imports_point_down() {
        let problems = check(&uses(&src()), &[], CRATE_LAYERS);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn clone_imports_point_down() {
        let problems = check(&uses(&src()), &["clone"], CLONE_LAYERS);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// The checker sees what it must: an upward use, a group, a `super`
    /// chain, and a circle.
    #[test]
    fn the_checker_finds_upward_uses_and_circles() {
        let p =
            paths("use crate::{plugin::Plugin, report};\nlet x = super::super::clone::plan::f();");
        assert_eq!(p[0], ["crate", "plugin"]);
        assert_eq!(p[1], ["crate", "report"]);
        assert_eq!(p[2], ["super", "super", "clone", "plan", "f"]);
        let m = |s: &str| s.split("::").map(str::to_string).collect::<Vec<_>>();
        let edges = vec![
            (m("report"), m("clone::plan")),
            (m("pg"), m("child")),
            (m("child"), m("pg")),
        ];
        let problems = check(&edges, &[], CRATE_LAYERS);
        assert!(
            problems
                .iter()
                .any(|p| p == "report uses clone::plan, a higher layer"),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p == "child and pg use each other"),
            "{problems:?}"
        );
    }
}
