//! Shell-style name patterns (`dr-*`, `node?`), for policies that treat some
//! nodes differently.

/// True when `name` matches `pattern`: `*` is any run of characters, `?`
/// exactly one; everything else matches itself.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // The classic two-pointer match with backtracking to the last `*`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("dr-*", "dr-1"));
        assert!(matches("dr-*", "dr-"));
        assert!(!matches("dr-*", "node-dr-1"));
        assert!(matches("*-dr", "east-dr"));
        assert!(matches("node?", "node7"));
        assert!(!matches("node?", "node17"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        // A star in the name is just a character for a star in the pattern.
        assert!(matches("a*", "a*b"));
    }
}
