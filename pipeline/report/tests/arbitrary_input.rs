//! Arbitrary bytes as a landed file: rows, or an error with file and line — never a panic, with
//! or without skipping bad lines, whatever the line limit (issue 15).

use atenex_report::extract::{Columns, scan_file};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_file_is_scanned_or_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        skip in any::<bool>(),
        max_line in 0usize..500,
    ) {
        let mut cols = Columns::default();
        let _ = scan_file("f.json", &bytes, skip, max_line, &mut cols);
    }
}
