//! Value parsers shared by the subcommands' options: every number a user gives is checked
//! against the range the command can honour, so that no value reaches a panic or an
//! allocation the machine cannot make (issue 15; the hostile suite tries extreme values on
//! every option).

/// A whole number in `MIN..=MAX`, as a `usize`; the error names the range.
pub fn count<const MIN: u64, const MAX: u64>(s: &str) -> Result<usize, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number (use {MIN} to {MAX})"))?;
    if !(MIN..=MAX).contains(&n) {
        return Err(format!("{n} is out of range: use {MIN} to {MAX}"));
    }
    usize::try_from(n).map_err(|_| format!("{n} is too large for this machine"))
}

/// A duration (`30s`, `5m`, `1h 30m`) of at most `MAX_SECS` seconds and at least `MIN_SECS`.
pub fn duration<const MIN_SECS: u64, const MAX_SECS: u64>(
    s: &str,
) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (e.g. 30s, 5m, 1h)"))?;
    let (min, max) = (
        std::time::Duration::from_secs(MIN_SECS),
        std::time::Duration::from_secs(MAX_SECS),
    );
    if d < min || d > max {
        return Err(format!(
            "{s:?} is out of range: use {} to {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::{count, duration};

    #[test]
    fn durations_in_range_only() {
        assert_eq!(
            duration::<1, 60>("30s"),
            Ok(std::time::Duration::from_secs(30))
        );
        assert!(
            duration::<1, 60>("0s")
                .unwrap_err()
                .contains("use 1s to 1m")
        );
        assert!(
            duration::<1, 60>("2m")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(duration::<1, 60>("18446744073709551615s").is_err());
        assert!(duration::<1, 60>("soon").unwrap_err().contains("e.g. 30s"));
    }

    #[test]
    fn counts_in_range_only() {
        assert_eq!(count::<1, 10>("1"), Ok(1));
        assert_eq!(count::<1, 10>(" 10 "), Ok(10));
        assert!(count::<1, 10>("0").unwrap_err().contains("use 1 to 10"));
        assert!(count::<1, 10>("11").unwrap_err().contains("out of range"));
        for bad in ["-1", "nan", "1e3", "", "18446744073709551616"] {
            assert!(
                count::<1, 10>(bad)
                    .unwrap_err()
                    .contains("not a whole number"),
                "{bad}"
            );
        }
    }
}
