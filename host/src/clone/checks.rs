//! The preflight checklist: every check runs, all results are shown, and the
//! first failure listed (with the count of others) becomes the error.
//! [`Checks::views`] is the list as it is shown: the text and `--output
//! json` are both rendered from it.

use serde::Serialize;

use crate::report::{self, Failure};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail(Failure),
    /// A refusal -F never overrides (a running server in the target, an
    /// unsafe directory): listed first, so it heads the error whatever phase
    /// found it.
    FailFirst(Failure),
}

/// The results of the preflight checks, in order, each with the area it
/// belongs to.
#[derive(Debug, Default)]
pub struct Checks {
    items: Vec<(Status, String)>,
    areas: Vec<&'static str>,
    area: &'static str,
}

/// One check as it is listed.
#[derive(Debug, Clone, Serialize)]
pub struct CheckView {
    /// The area it belongs to (upstream, replication, target, ...); several
    /// checks share one.
    pub name: &'static str,
    /// ok, warn or fail.
    pub verdict: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl Checks {
    /// The area the checks recorded from now on belong to.
    pub fn area(&mut self, name: &'static str) {
        self.area = name;
    }

    fn push(&mut self, s: Status, what: String) {
        self.items.push((s, what));
        self.areas.push(self.area);
    }

    pub fn ok(&mut self, what: String) {
        self.push(Status::Ok, what);
    }

    pub fn warn(&mut self, what: String) {
        self.push(Status::Warn, what);
    }

    pub fn fail(&mut self, what: String) {
        let first = what.lines().next().unwrap_or("").to_string();
        let mut f = Failure::new(first.clone());
        // A DETAIL or HINT of several lines keeps all of them.
        let add = |part: &mut Option<String>, line: &str| match part {
            Some(p) => {
                p.push('\n');
                p.push_str(line);
            }
            None => *part = Some(line.to_string()),
        };
        let mut in_hint = false;
        for line in what.lines().skip(1) {
            if let Some(d) = line.strip_prefix("DETAIL: ") {
                in_hint = false;
                add(&mut f.detail, d);
            } else if let Some(h) = line.strip_prefix("HINT: ") {
                in_hint = true;
                add(&mut f.hint, h);
            } else if in_hint {
                add(&mut f.hint, line);
            } else {
                add(&mut f.detail, line);
            }
        }
        self.push(Status::Fail(f), first);
    }

    pub fn fail_hint(&mut self, what: String, hint: impl Into<String>) {
        self.push(Status::Fail(Failure::new(what.clone()).hint(hint)), what);
    }

    /// Records an error (keeping its DETAIL and HINT).
    pub fn fail_error(&mut self, e: &anyhow::Error) {
        self.fail(report::render(e).replacen("ERROR: ", "", 1));
    }

    /// Records an error that heads the list of failures (see [`Status::FailFirst`]).
    pub fn fail_error_first(&mut self, e: &anyhow::Error) {
        self.fail_error(e);
        if let Some((s @ Status::Fail(_), _)) = self.items.last_mut() {
            if let Status::Fail(f) = s.clone() {
                *s = Status::FailFirst(f);
            }
        }
    }

    /// What passed, in order (for tests of the phases that check).
    #[cfg(test)]
    pub fn passed(&self) -> Vec<String> {
        self.items
            .iter()
            .filter(|(s, _)| *s == Status::Ok)
            .map(|(_, what)| what.clone())
            .collect()
    }

    pub fn failures(&self) -> usize {
        self.items
            .iter()
            .filter(|(s, _)| matches!(s, Status::Fail(_) | Status::FailFirst(_)))
            .count()
    }

    /// The first failure in the order [`Checks::print`] lists them: the
    /// error is the first FAIL line the operator reads.
    pub fn first_failure(&self) -> Option<Failure> {
        self.listed().find_map(|(s, _, _)| match s {
            Status::Fail(f) | Status::FailFirst(f) => Some(f.clone()),
            _ => None,
        })
    }

    /// The items in the order they are listed: the refusals -F never
    /// overrides first, then every other result in the order it was found.
    fn listed(&self) -> impl Iterator<Item = (&Status, &String, &'static str)> {
        let first = |s: &Status| matches!(s, Status::FailFirst(_));
        let all = || {
            self.items
                .iter()
                .zip(self.areas.iter())
                .map(|((s, what), area)| (s, what, *area))
        };
        all()
            .filter(move |(s, _, _)| first(s))
            .chain(all().filter(move |(s, _, _)| !first(s)))
    }

    /// The checks in the order they are listed, as they are shown.
    pub fn views(&self) -> Vec<CheckView> {
        self.listed()
            .map(|(s, what, area)| {
                let (verdict, f) = match s {
                    Status::Ok => ("ok", None),
                    Status::Warn => ("warn", None),
                    Status::Fail(f) | Status::FailFirst(f) => ("fail", Some(f)),
                };
                CheckView {
                    name: area,
                    verdict,
                    message: what.clone(),
                    detail: f.and_then(|f| f.detail.clone()),
                    hint: f.and_then(|f| f.hint.clone()),
                }
            })
            .collect()
    }

    /// Prints the checklist on standard error.
    pub fn print(&self) {
        let views = self.views();
        if report::shown(report::Level::Info) {
            print_list(&views);
        }
        for v in views.iter().filter(|v| v.verdict == "warn") {
            report::warning(&v.message, None);
        }
    }
}

fn print_list(views: &[CheckView]) {
    eprintln!("INFO: preflight checks:");
    for v in views {
        let tag = match v.verdict {
            "ok" => "ok  ",
            "warn" => "warn",
            _ => "FAIL",
        };
        // Checks quote what plugins said (names, locations): escaped.
        eprintln!("  {tag}  {}", report::escape(&v.message));
        // Every failure with its reason, not only the one that heads the error.
        if let Some(why) = &v.detail {
            eprintln!(
                "          {}",
                report::escape_block(why).replace("\n  ", "\n          ")
            );
        }
    }
}

impl Failure {
    /// Notes how many checks failed in all; nothing was changed.
    pub fn context_failure(self, failures: usize) -> anyhow::Error {
        let note = if failures > 1 {
            format!("{failures} preflight checks failed (listed above); nothing was changed")
        } else {
            "nothing was changed".to_string()
        };
        // On the DETAIL's own line: no bare line between DETAIL and HINT.
        let detail = match self.detail.clone() {
            Some(d) => format!("{d}; {note}"),
            None => note,
        };
        let mut f = self;
        f.detail = Some(detail);
        f.into()
    }
}
