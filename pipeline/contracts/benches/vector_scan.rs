//! How fast the fast scanners can check a vector's bytes, and what a stricter check would cost:
//! `cargo bench -p atenex-contracts --bench vector_scan`. A 1,536-float vector as OpenAI writes
//! it; GB/s of the character table alone (`numeric_run`), of what the scanners use
//! (`numeric_list`: the table and no empty element), and of two stricter checks kept here only to
//! measure them: adjacent pairs of character classes, and the exact JSON number grammar as a
//! DFA (docs/analytics.md, Decoding). Under `cargo test --all-targets` it runs a few rounds as a
//! smoke test, and checks that the four agree on what they should.

use atenex_contracts::raw_envelope::{numeric_list, numeric_run};
use std::time::Instant;

/// Classes of the exact check: other, `0`, `1`–`9`, `-`, `+`, `.`, `e`/`E`, `,`.
const fn class(c: u8) -> u8 {
    match c {
        b'0' => 1,
        b'1'..=b'9' => 2,
        b'-' => 3,
        b'+' => 4,
        b'.' => 5,
        b'e' | b'E' => 6,
        b',' => 7,
        _ => 0,
    }
}
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = class(i as u8);
        i += 1;
    }
    t
};
const X: u8 = 9;
/// States: element start, after `-`, `0`, integer, `.`, fraction, `e`, exponent sign, exponent,
/// error.
static NEXT: [[u8; 8]; 10] = [
    [X, 2, 3, 1, X, X, X, X],
    [X, 2, 3, X, X, X, X, X],
    [X, X, X, X, X, 4, 6, 0],
    [X, 3, 3, X, X, 4, 6, 0],
    [X, 5, 5, X, X, X, X, X],
    [X, 5, 5, X, X, X, 6, 0],
    [X, 8, 8, 7, 7, X, X, X],
    [X, 8, 8, X, X, X, X, X],
    [X, 8, 8, X, X, X, X, 0],
    [X; 8],
];

fn exact(b: &[u8]) -> bool {
    b.is_empty()
        || matches!(
            b.iter()
                .fold(0u8, |s, &c| NEXT[s as usize][CLASS[c as usize] as usize]),
            2 | 3 | 5 | 8
        )
}

/// Pair classes: other, digit, `-`, `+`, `.`, `e`, `,`; allowed (previous, next) pairs.
static PAIR: [bool; 64] = {
    let mut t = [false; 64];
    let ok: [(usize, usize); 10] = [
        (1, 1),
        (1, 4),
        (1, 5),
        (1, 6),
        (2, 1),
        (3, 1),
        (4, 1),
        (5, 1),
        (5, 2),
        (5, 3),
    ];
    let mut i = 0;
    while i < ok.len() {
        t[ok[i].0 * 8 + ok[i].1] = true;
        i += 1;
    }
    t[6 * 8 + 1] = true;
    t[6 * 8 + 2] = true;
    t
};
/// The pairs check's classes: the exact check's, with `0` and `1`–`9` as one digit class.
static PCLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match CLASS[i] {
            0 => 0,
            1 | 2 => 1,
            k => k - 1,
        };
        i += 1;
    }
    t
};

fn pairs(b: &[u8]) -> bool {
    b.windows(2).fold(true, |ok, w| {
        ok & PAIR[PCLASS[w[0] as usize] as usize * 8 + PCLASS[w[1] as usize] as usize]
    })
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rounds = if bench { 20_000 } else { 10 };
    let vector: Vec<String> = (0..1536)
        .map(|i| format!("{:.8}", (f64::from(i) * 0.37).sin() * 0.05))
        .collect();
    let vector = vector.join(",");
    let b = vector.as_bytes();
    for (name, check) in [
        ("numeric_run", numeric_run as fn(&[u8]) -> bool),
        ("numeric_list", numeric_list),
        ("pairs", pairs),
        ("exact", exact),
    ] {
        assert!(check(b), "{name} takes a vector");
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let mut taken = 0;
            for _ in 0..rounds {
                taken += usize::from(check(std::hint::black_box(b)));
            }
            assert_eq!(taken, rounds);
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{name:13} {:.2} GB/s ({} bytes, best of 3 x {rounds})",
            (b.len() * rounds) as f64 / best / 1e9,
            b.len()
        );
    }
    assert!(!numeric_list(b"1,,2") && !pairs(b"1,,2") && !exact(b"1,,2"));
    assert!(!numeric_list(b"1,") && !exact(b"1,"));
    for grammar in [&b"1.2.3"[..], b"01", b"1e5e5"] {
        assert!(numeric_list(grammar) && !exact(grammar));
    }
}
