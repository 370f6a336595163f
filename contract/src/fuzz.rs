//! Shared by the property tests of every parser of untrusted input (this
//! crate's, the host's and the Barman plugin's, which include this file with
//! `#[path]`): one configuration and one way to damage a realistic sample.
//!
//! The properties run in the normal suite, so they must be quick and give the
//! same answer on every run: 256 cases each, a fixed seed, no persistence
//! files. For a longer hunt, set `PROPTEST_CASES` and `PROPTEST_RNG_SEED`.

#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};

/// 256 cases (or `PROPTEST_CASES`), a fixed seed (or `PROPTEST_RNG_SEED`),
/// no failure persistence: a found case is kept as a plain unit test instead.
pub fn config() -> Config {
    let env = |k: &str| std::env::var(k).ok();
    Config {
        cases: env("PROPTEST_CASES")
            .and_then(|c| c.parse().ok())
            .unwrap_or(256),
        rng_seed: env("PROPTEST_RNG_SEED")
            .and_then(|s| s.parse().ok())
            .map_or(RngSeed::Fixed(0x9c10_e5ee), RngSeed::Fixed),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Text that breaks parsers: multibyte characters (2, 3 and 4 bytes, a
/// character boundary trap for byte slicing), separators the formats use,
/// control characters, non-ASCII whitespace, huge numbers.
const NASTY: &[&str] = &[
    "é",
    "€",
    "𝄞",
    "\u{a0}",
    "\u{85}",
    "\u{2028}",
    "\0",
    "\r",
    "\n",
    "\t",
    " ",
    ":",
    "=",
    "'",
    "\"",
    "\\",
    "#",
    "/",
    "..",
    "%",
    "%zz",
    "@",
    "[",
    "]",
    "(",
    ")",
    "-",
    ".",
    ",",
    "18446744073709551616",
    "99999999999999999999999",
    "-1",
    "NaN",
    "inf",
    "1e308",
];

/// One change to a text.
#[derive(Debug, Clone)]
enum Edit {
    DropLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    /// Cut at any byte (the rest of a multibyte character becomes U+FFFD).
    Truncate(Index),
    /// Insert at a character boundary.
    Insert(Index, String),
    /// Overwrite one byte (invalid UTF-8 becomes U+FFFD).
    SetByte(Index, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    let insert = prop_oneof![
        proptest::sample::select(NASTY).prop_map(str::to_string),
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ];
    prop_oneof![
        1 => any::<Index>().prop_map(Edit::DropLine),
        1 => any::<Index>().prop_map(Edit::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        3 => (any::<Index>(), insert).prop_map(|(i, s)| Edit::Insert(i, s)),
        1 => any::<(Index, u8)>().prop_map(|(i, b)| Edit::SetByte(i, b)),
    ]
}

fn apply(text: &str, e: &Edit) -> String {
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    match e {
        Edit::DropLine(i) if !lines.is_empty() => {
            lines.remove(i.index(lines.len()));
            lines.concat()
        }
        Edit::DuplicateLine(i) if !lines.is_empty() => {
            let i = i.index(lines.len());
            lines.insert(i, lines[i]);
            lines.concat()
        }
        Edit::SwapLines(a, b) if !lines.is_empty() => {
            let n = lines.len();
            lines.swap(a.index(n), b.index(n));
            lines.concat()
        }
        Edit::Truncate(i) => {
            let b = text.as_bytes();
            String::from_utf8_lossy(&b[..i.index(b.len() + 1)]).into_owned()
        }
        Edit::Insert(i, s) => {
            let bounds: Vec<usize> = text
                .char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect();
            let at = bounds[i.index(bounds.len())];
            format!("{}{s}{}", &text[..at], &text[at..])
        }
        Edit::SetByte(i, v) if !text.is_empty() => {
            let mut b = text.as_bytes().to_vec();
            let n = b.len();
            b[i.index(n)] = *v;
            String::from_utf8_lossy(&b).into_owned()
        }
        _ => text.to_string(),
    }
}

/// `sample` with one to eight random edits: lines dropped, repeated or
/// swapped, a cut at any byte, nasty text inserted, a byte overwritten.
pub fn mutated(sample: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(edit(), 1..8)
        .prop_map(move |edits| edits.iter().fold(sample.to_string(), |t, e| apply(&t, e)))
}

/// One of `samples`, mutated.
pub fn mutated_any(samples: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        proptest::sample::select(samples),
        proptest::collection::vec(edit(), 0..8),
    )
        .prop_map(|(s, edits)| edits.iter().fold(s.to_string(), |t, e| apply(&t, e)))
}

/// Any text: arbitrary characters, or arbitrary bytes read as lossy UTF-8,
/// or a sequence of the format's own separators and nasty words.
pub fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..256)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        proptest::collection::vec(proptest::sample::select(NASTY), 0..32).prop_map(|v| v.concat()),
    ]
}

/// A sequence of `vocab` words and nasty text: closer to the format than
/// [`any_text`], so the parser gets past its first check more often.
pub fn words(vocab: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            3 => proptest::sample::select(vocab),
            1 => proptest::sample::select(NASTY),
        ],
        0..24,
    )
    .prop_map(|v| v.concat())
}
