//! The preflight checklist: every check runs, all results are shown, and the
//! first failure listed (with the count of others) becomes the error.

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

/// The results of the preflight checks, in order.
#[derive(Debug, Default)]
pub struct Checks {
    items: Vec<(Status, String)>,
}

impl Checks {
    pub fn ok(&mut self, what: String) {
        self.items.push((Status::Ok, what));
    }

    pub fn warn(&mut self, what: String) {
        self.items.push((Status::Warn, what));
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
        self.items.push((Status::Fail(f), first));
    }

    pub fn fail_hint(&mut self, what: String, hint: impl Into<String>) {
        self.items
            .push((Status::Fail(Failure::new(what.clone()).hint(hint)), what));
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
        self.listed().find_map(|(s, _)| match s {
            Status::Fail(f) | Status::FailFirst(f) => Some(f.clone()),
            _ => None,
        })
    }

    /// The items in the order they are listed: the refusals -F never
    /// overrides first, then every other result in the order it was found.
    fn listed(&self) -> impl Iterator<Item = &(Status, String)> {
        let first = |s: &Status| matches!(s, Status::FailFirst(_));
        let (a, b) = (self.items.iter(), self.items.iter());
        a.filter(move |(s, _)| first(s))
            .chain(b.filter(move |(s, _)| !first(s)))
    }

    /// Prints the checklist on standard error.
    pub fn print(&self) {
        if report::shown(report::Level::Info) {
            self.print_list();
        }
        for (s, what) in &self.items {
            if *s == Status::Warn {
                report::warning(what, None);
            }
        }
    }

    fn print_list(&self) {
        eprintln!("INFO: preflight checks:");
        for (s, what) in self.listed() {
            let (tag, why) = match s {
                Status::Ok => ("ok  ", None),
                Status::Warn => ("warn", None),
                Status::Fail(f) | Status::FailFirst(f) => ("FAIL", f.detail.as_deref()),
            };
            // Checks quote what plugins said (names, locations): escaped.
            eprintln!("  {tag}  {}", report::escape(what));
            // Every failure with its reason, not only the one that heads the error.
            if let Some(why) = why {
                eprintln!(
                    "          {}",
                    report::escape_block(why).replace("\n  ", "\n          ")
                );
            }
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
