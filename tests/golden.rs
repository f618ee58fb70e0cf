//! The exact bytes of each registry's record, per format version, pinned by
//! the files in tests/golden/ (see its README): a record that may have
//! landed under its key must be resent with the same bytes, also by a
//! later build.

use hoursync::domain::{
    Hours, LearningMode, NationalId, RECORD_FORMAT, RecordDetail, RecordFacts, RegistryKind,
};
use hoursync::registry::adapter::wire_record;

const KEY: &str = "hs1-0123456789abcdef0123456789abcdef01234567";

fn facts(detail: RecordDetail) -> RecordFacts {
    RecordFacts {
        format: 1,
        national_id: NationalId::parse("A123456789").unwrap(),
        course_code: "K-001".into(),
        // Non-ASCII and a quote: both are part of the bytes.
        course_name: r#"環境教育與"永續"發展"#.into(),
        completed_on: "2026-11-20".into(),
        hours: Hours::from_tenths(25).unwrap(),
        detail,
    }
}

fn golden(registry: RegistryKind, format: u8) -> String {
    let path = format!(
        "{}/tests/golden/{registry}.v{format}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

#[test]
fn every_registrys_format_1_record_is_byte_for_byte_its_golden_file() {
    let hours = |t| Hours::from_tenths(t).unwrap();
    let cases = [
        RecordDetail::Lifelong {
            learning_mode: LearningMode::Blended,
            digital: hours(15),
            classroom: hours(10),
            category_code: "A1".into(),
        },
        RecordDetail::Teacher,
        RecordDetail::Enved {
            enved_account: Some("EE-42".into()),
            service_unit_code: Some("376420000A".into()),
        },
    ];
    for detail in cases {
        let registry = detail.registry();
        assert_eq!(
            wire_record(&facts(detail), KEY),
            golden(registry, 1),
            "{registry}, format 1"
        );
    }
}

#[test]
fn this_build_writes_format_1_so_its_records_are_pinned_above() {
    // A new format needs its own golden files before rows are built in it.
    assert_eq!(RECORD_FORMAT, 1);
}
