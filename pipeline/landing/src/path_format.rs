//! Joda-Time `DateTimeFormat` patterns, as Connect's `path.format` uses them
//! (`'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH`): pattern letters, quoted literals (`'...'`, `''`
//! for a quote) and any other character as itself. Formatting is in a given time zone.
//!
//! Supported letters: `y` year, `Y` year of era, `x` week year, `w` week of week year, `M` month
//! (`MM` number, `MMM` `Jan`, `MMMM` `January`), `d` day of month, `D` day of year, `e` day of week
//! (1 = Monday), `E` day name (`Mon`, `EEEE` `Monday`), `a` AM/PM, `H` hour 0–23, `k` 1–24, `K` 0–11,
//! `h` 1–12, `m` minute, `s` second, `S` fraction of second, `Z` offset (`+0100`, `ZZ` `+01:00`,
//! `ZZZ` the zone id). Names are English, whatever the locale. Other letters (`G`, `C`, `z`) are
//! refused with the letter named.

use chrono::{DateTime, Datelike, Offset, TimeZone, Timelike};
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Field { letter: char, count: usize },
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathFormat {
    tokens: Vec<Token>,
}

const SUPPORTED: &str = "yYxwMdDeEaHkKhmsSZ";
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Why a pattern is refused; each kind has its fix ([`PathFormatError::fix`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathFormatError {
    /// Not a pattern: an unsupported letter, an unterminated quote.
    #[error("{0}")]
    Syntax(String),
    /// A pattern some formatted path of which would leave `<topics.dir>/<topic>`.
    #[error("{0}")]
    Escapes(String),
}

impl PathFormatError {
    pub fn fix(&self) -> &'static str {
        match self {
            PathFormatError::Syntax(_) => {
                "quote literal text and use Joda pattern letters, e.g. 'year'=YYYY/'month'=MM"
            }
            PathFormatError::Escapes(_) => {
                "name directories under the topic only: no '.' or '..' segment, no leading '/', e.g. 'year'=YYYY/'month'=MM"
            }
        }
    }
}

impl PathFormat {
    /// A pattern proven to stay under its directory (see `confined`), or why not.
    pub fn parse(pattern: &str) -> Result<Self, PathFormatError> {
        let tokens = tokens(pattern).map_err(PathFormatError::Syntax)?;
        confined(&tokens).map_err(|why| {
            PathFormatError::Escapes(format!(
                "path.format {pattern:?}: {why}: every directory it names must stay under <topics.dir>/<topic>"
            ))
        })?;
        Ok(Self { tokens })
    }

    /// The smallest unit the pattern shows, in ms (for a sanity check against
    /// `partition.duration.ms`): hour for `HH`, day for `dd`, ...
    pub fn finest_field_ms(&self) -> Option<i64> {
        self.tokens
            .iter()
            .filter_map(|t| match t {
                Token::Field { letter, .. } => Some(match letter {
                    'S' => 1,
                    's' => 1_000,
                    'm' => 60_000,
                    'H' | 'k' | 'K' | 'h' => 3_600_000,
                    'a' => 43_200_000,
                    'd' | 'D' | 'e' | 'E' => 86_400_000,
                    'w' => 7 * 86_400_000,
                    'M' => 28 * 86_400_000,
                    _ => 365 * 86_400_000,
                }),
                Token::Literal(_) => None,
            })
            .min()
    }

    pub fn format<Tz: TimeZone>(&self, t: &DateTime<Tz>) -> String {
        let mut out = String::new();
        for token in &self.tokens {
            match token {
                Token::Literal(s) => out.push_str(s),
                Token::Field { letter, count } => field(&mut out, t, *letter, *count),
            }
        }
        out
    }
}

/// The tokens of a pattern, or the syntax error.
fn tokens(pattern: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens: Vec<Token> = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // '' is a quote; otherwise text up to the closing quote, where '' is a quote too.
            if chars.get(i + 1) == Some(&'\'') {
                literal.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(format!("unterminated quote in path.format {pattern:?}"));
                    }
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        literal.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&q) => {
                        literal.push(q);
                        i += 1;
                    }
                }
            }
        } else if c.is_ascii_alphabetic() {
            if !SUPPORTED.contains(c) {
                return Err(format!(
                    "path.format {pattern:?}: pattern letter '{c}' is not supported (supported: {SUPPORTED}); quote literal text, e.g. 'year'=YYYY"
                ));
            }
            let count = chars[i..].iter().take_while(|&&x| x == c).count();
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            tokens.push(Token::Field { letter: c, count });
            i += count;
        } else {
            literal.push(c);
            i += 1;
        }
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

/// Proves, once for every instant, that a formatted path stays under its base directory: it does
/// not start with `/`, holds no NUL, and none of its `/`-separated segments is `.` or `..`.
/// A field formats to digits, English names, `+hh:mm` offsets or zone names, never to a
/// segment of dots, so only a segment of literal text alone can be `.` or `..`: checking the
/// literal segments checks every path the pattern will ever format.
fn confined(tokens: &[Token]) -> Result<(), String> {
    // Each segment as (its literal text, whether a field is in it).
    let mut segments = vec![(String::new(), false)];
    for token in tokens {
        match token {
            Token::Field { .. } => segments.last_mut().expect("one at least").1 = true,
            Token::Literal(text) if text.contains('\0') => {
                return Err("it holds a NUL character".to_owned());
            }
            Token::Literal(text) => {
                for (i, part) in text.split('/').enumerate() {
                    if i > 0 {
                        segments.push((String::new(), false));
                    }
                    segments.last_mut().expect("one at least").0.push_str(part);
                }
            }
        }
    }
    if segments.len() > 1 && segments[0] == (String::new(), false) {
        return Err("it starts with '/'".to_owned());
    }
    match segments
        .iter()
        .find(|(text, has_field)| !has_field && (text == "." || text == ".."))
    {
        Some((text, _)) => Err(format!("it has a {text:?} directory")),
        None => Ok(()),
    }
}

fn num(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        let _ = write!(out, "-{:0width$}", -v, width = width);
    } else {
        let _ = write!(out, "{v:0width$}");
    }
}

fn year(out: &mut String, y: i64, count: usize) {
    if count == 2 {
        num(out, y.rem_euclid(100), 2);
    } else {
        num(out, y, count);
    }
}

fn field<Tz: TimeZone>(out: &mut String, t: &DateTime<Tz>, letter: char, count: usize) {
    let hour = i64::from(t.hour());
    match letter {
        'y' | 'Y' => year(out, i64::from(t.year()), count),
        'x' => year(out, i64::from(t.iso_week().year()), count),
        'w' => num(out, i64::from(t.iso_week().week()), count),
        'M' if count >= 4 => out.push_str(MONTHS[t.month0() as usize]),
        'M' if count == 3 => out.push_str(&MONTHS[t.month0() as usize][..3]),
        'M' => num(out, i64::from(t.month()), count),
        'd' => num(out, i64::from(t.day()), count),
        'D' => num(out, i64::from(t.ordinal()), count),
        'e' => num(out, i64::from(t.weekday().number_from_monday()), count),
        'E' if count >= 4 => out.push_str(DAYS[t.weekday().num_days_from_monday() as usize]),
        'E' => out.push_str(&DAYS[t.weekday().num_days_from_monday() as usize][..3]),
        'a' => out.push_str(if hour < 12 { "AM" } else { "PM" }),
        'H' => num(out, hour, count),
        'k' => num(out, if hour == 0 { 24 } else { hour }, count),
        'K' => num(out, hour % 12, count),
        'h' => num(out, if hour % 12 == 0 { 12 } else { hour % 12 }, count),
        'm' => num(out, i64::from(t.minute()), count),
        's' => num(out, i64::from(t.second()), count),
        'S' => {
            // The fraction of the second to `count` digits, truncated (as Joda).
            let millis = format!("{:03}", t.timestamp_subsec_millis());
            let digits: String = millis
                .chars()
                .chain(std::iter::repeat('0'))
                .take(count)
                .collect();
            out.push_str(&digits);
        }
        'Z' => {
            let secs = t.offset().fix().local_minus_utc();
            let sign = if secs < 0 { '-' } else { '+' };
            let (h, m) = (secs.abs() / 3600, secs.abs() % 3600 / 60);
            match count {
                1 => {
                    let _ = write!(out, "{sign}{h:02}{m:02}");
                }
                2 => {
                    let _ = write!(out, "{sign}{h:02}:{m:02}");
                }
                _ => {
                    let _ = write!(out, "{:?}", t.offset());
                }
            }
        }
        _ => unreachable!("letters are checked when parsing"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use chrono_tz::Tz;

    fn at(ms: i64, tz: Tz) -> DateTime<Tz> {
        Utc.timestamp_millis_opt(ms).unwrap().with_timezone(&tz)
    }

    #[test]
    fn the_atenex_path_format() {
        let f = PathFormat::parse("'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH").unwrap();
        // 2026-11-27T23:59:59.999Z
        assert_eq!(
            f.format(&at(1_795_823_999_999, chrono_tz::UTC)),
            "year=2026/month=11/day=27/hour=23"
        );
        assert_eq!(
            f.format(&at(1_795_823_999_999, chrono_tz::Europe::Madrid)),
            "year=2026/month=11/day=28/hour=00"
        );
        assert_eq!(f.finest_field_ms(), Some(3_600_000));
    }

    #[test]
    fn letters_quotes_and_errors() {
        let t = at(1_772_323_205_007, chrono_tz::America::New_York); // 2026-02-28T19:00:05.007-05:00
        let f =
            PathFormat::parse("yy-M-d D e EEE EEEE MMM MMMM a h K k H:mm:ss.SSS S ZZ Z 'it''s' ''")
                .unwrap();
        assert_eq!(
            f.format(&t),
            "26-2-28 59 6 Sat Saturday Feb February PM 7 7 19 19:00:05.007 0 -05:00 -0500 it's '"
        );
        assert_eq!(
            PathFormat::parse("xxxx-'W'ww")
                .unwrap()
                .format(&at(1_767_225_600_000, chrono_tz::UTC)),
            "2026-W01"
        );
        let e = PathFormat::parse("yyyy/G").unwrap_err().to_string();
        assert!(e.contains("pattern letter 'G' is not supported"), "{e}");
        let e = PathFormat::parse("year=yyyy").unwrap_err().to_string();
        assert!(e.contains("'r'"), "unquoted text is read as letters: {e}");
        assert!(
            PathFormat::parse("'open")
                .unwrap_err()
                .to_string()
                .contains("unterminated")
        );
    }

    #[test]
    fn a_pattern_that_could_leave_its_directory_is_refused() {
        for (pattern, why) in [
            ("'..'/yyyy", "\"..\" directory"),
            ("yyyy/'..'", "\"..\" directory"),
            ("yyyy/../MM", "\"..\" directory"),
            ("'year'=yyyy/'.'/HH", "\".\" directory"),
            ("'../..'/'x'", "\"..\" directory"),
            ("'.'.", "\"..\" directory"),
            ("/yyyy", "starts with '/'"),
            ("'/tmp/x'", "starts with '/'"),
            ("yyyy/'a\0b'", "NUL"),
        ] {
            let e = PathFormat::parse(pattern).unwrap_err();
            assert!(matches!(e, PathFormatError::Escapes(_)), "{pattern}: {e:?}");
            let e = e.to_string();
            assert!(
                e.contains(why) && e.contains("stay under"),
                "{pattern}: {e}"
            );
        }
        // Dots beside a field, or more than two, name a real directory.
        let t = at(1_795_823_999_999, chrono_tz::UTC);
        for (pattern, path) in [
            ("'..'yyyy", "..2026"),
            ("yyyy'..'", "2026.."),
            ("'...'/MM", ".../11"),
            ("'.hidden'/dd", ".hidden/27"),
            ("yyyy/", "2026/"),
            ("ZZZ/HH", "UTC/23"),
        ] {
            assert_eq!(
                PathFormat::parse(pattern).unwrap().format(&t),
                path,
                "{pattern}"
            );
        }
    }
}
