//! One parity check's result: what was compared, both sides as text, pass or fail, and where
//! a failure is. The view parity (`sluice_sort::parity`) and the bus parity
//! (`sluice_ingest::parity`) both report in this shape, so one table prints either.
//!
//! A failed check is a result, not an error: errors are for inputs that cannot be read.

/// One parity check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// Short stable name, e.g. `row_count`, `order`, `exactly_once`.
    pub name: String,
    pub ok: bool,
    /// The reference side (source files, receipt, views), as text.
    pub expected: String,
    /// The checked side (view files, bus), as text.
    pub actual: String,
    /// Where a failure is (file, part, row, offset); empty when the check passes.
    pub place: String,
}

impl Check {
    /// A check that passes when `expected == actual`.
    pub fn equal(
        name: &str,
        expected: impl ToString,
        actual: impl ToString,
        place: impl FnOnce() -> String,
    ) -> Check {
        let (expected, actual) = (expected.to_string(), actual.to_string());
        let ok = expected == actual;
        Check {
            name: name.to_string(),
            ok,
            expected,
            actual,
            place: if ok { String::new() } else { place() },
        }
    }

    /// A check with an explicit verdict (`place` is dropped when it passes).
    pub fn verdict(
        name: &str,
        ok: bool,
        expected: impl ToString,
        actual: impl ToString,
        place: impl ToString,
    ) -> Check {
        Check {
            name: name.to_string(),
            ok,
            expected: expected.to_string(),
            actual: actual.to_string(),
            place: if ok { String::new() } else { place.to_string() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passing_check_names_no_place() {
        let pass = Check::equal("rows", 3, "3", || "row 9".into());
        assert!(pass.ok && pass.place.is_empty());
        let fail = Check::equal("rows", 3, 4, || "row 9".into());
        assert!(!fail.ok);
        assert_eq!(fail.place, "row 9");
        assert!(Check::verdict("x", true, 1, 2, "here").place.is_empty());
        assert_eq!(Check::verdict("x", false, 1, 1, "here").place, "here");
    }
}
