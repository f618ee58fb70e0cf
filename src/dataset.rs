//! Synthetic learning data in the intake format, for the demo, benchmarks
//! and tests: deterministic for a seed, with valid (fictitious) national IDs.

use crate::domain::NationalId;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;
use std::io::{BufWriter, Write};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Every account kind, identity and rule of DOMAIN.md, in plausible shares.
    Realistic,
    /// Education-staff civil servants with env-ed accounts and valid units,
    /// courses certified for all three registries: every completion is
    /// eligible everywhere (three records each). For throughput figures.
    AllEligible,
}

#[derive(Debug, Clone, Copy)]
pub struct DatasetSpec {
    pub persons: usize,
    pub completions_per_person: usize,
    pub courses: usize,
    pub seed: u64,
    pub profile: Profile,
    /// Numbering of accounts and completions starts here, so that several
    /// generated files can describe different learners.
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatasetSummary {
    pub lines: usize,
    pub persons: usize,
    pub accounts: usize,
    pub courses: usize,
    pub completions: usize,
}

/// A valid national ID made from a random letter, sex digit and seven
/// digits, with the check digit that fits.
pub fn random_national_id(rng: &mut impl RngExt) -> String {
    let letter = (b'A' + rng.random_range(0..26u8)) as char;
    let sex = if rng.random_bool(0.5) { '1' } else { '2' };
    let body: String = (0..7)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect();
    (0..10)
        .map(|d| format!("{letter}{sex}{body}{d}"))
        .find(|s| NationalId::parse(s).is_ok())
        .expect("one check digit always fits")
}

pub const UNITS: [(&str, &str); 4] = [
    ("313000000G", "行政院人事行政總處"),
    ("301000000A", "教育部"),
    ("376410000A", "臺北市政府教育局"),
    ("A21000000I", "環境部"),
];

/// Writes the data set as JSON Lines to `path`.
pub fn write(spec: DatasetSpec, path: &Path) -> std::io::Result<DatasetSummary> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let mut sum = DatasetSummary::default();
    let mut line =
        |out: &mut BufWriter<std::fs::File>, v: serde_json::Value| -> std::io::Result<()> {
            sum.lines += 1;
            writeln!(out, "{v}")
        };
    for (code, name) in UNITS {
        line(
            &mut out,
            json!({"type": "unit", "code": code, "name": name}),
        )?;
    }
    let courses = spec.courses.max(1);
    for c in 0..courses {
        line(&mut out, course(&mut rng, c, spec.profile))?;
    }
    let mut completion_no = spec.offset * spec.completions_per_person;
    let mut seen_ids = std::collections::HashSet::new();
    for p in 0..spec.persons {
        let nid = loop {
            let id = random_national_id(&mut rng);
            if seen_ids.insert(id.clone()) {
                break id;
            }
        };
        line(&mut out, person(&mut rng, &nid, spec.profile))?;
        let accounts = accounts(&mut rng, spec.offset + p, &nid, spec.profile);
        for a in &accounts {
            line(&mut out, a.clone())?;
        }
        sum.accounts += accounts.len();
        // Distinct courses per learner: the registries refuse the same
        // person, course and date twice (`already_credited`).
        let first_course = rng.random_range(0..courses);
        for i in 0..spec.completions_per_person {
            let account = &accounts[i % accounts.len()];
            completion_no += 1;
            let revoked = spec.profile == Profile::Realistic && rng.random_bool(0.03);
            let day = rng.random_range(1..=27u32);
            let hour = rng.random_range(0..24u32);
            line(
                &mut out,
                json!({
                    "type": "completion",
                    "completion_id": format!("cmp-{completion_no:08}"),
                    "account_id": account["account_id"],
                    "course_code": format!("C-2026-{:04}", (first_course + i) % courses),
                    "completed_at": format!("2026-11-{day:02}T{hour:02}:15:00+08:00"),
                    "status": if revoked { "revoked" } else { "completed" },
                }),
            )?;
        }
    }
    out.flush()?;
    sum.persons = spec.persons;
    sum.courses = courses;
    sum.completions = completion_no - spec.offset * spec.completions_per_person;
    Ok(sum)
}

fn course(rng: &mut StdRng, c: usize, profile: Profile) -> serde_json::Value {
    let tenths: u32 = rng.random_range(5..=60);
    let mode = rng.random_range(1..=3u8);
    let (digital, classroom) = match mode {
        1 => (tenths, 0),
        2 => (0, tenths),
        _ => (tenths / 2, tenths - tenths / 2),
    };
    let h = |t: u32| format!("{}.{}", t / 10, t % 10);
    let certified = |p: f64, rng: &mut StdRng| match profile {
        Profile::AllEligible => Some(h(tenths)),
        Profile::Realistic => rng.random_bool(p).then(|| h(tenths)),
    };
    json!({
        "type": "course",
        "course_code": format!("C-2026-{c:04}"),
        "name": format!("課程 {c}: 公務人員數位學習"),
        "learning_mode": mode,
        "category_code": format!("A{}", c % 9 + 1),
        "digital_hours": h(digital),
        "classroom_hours": h(classroom),
        "certified": {
            "lifelong": certified(0.9, rng),
            "teacher": certified(0.4, rng),
            "enved": certified(0.3, rng),
        },
    })
}

fn person(rng: &mut StdRng, nid: &str, profile: Profile) -> serde_json::Value {
    let (category, enved, unit) = match profile {
        Profile::AllEligible => (Some("10"), true, Some(UNITS[0].0)),
        Profile::Realistic => {
            let category = if rng.random_bool(0.3) {
                Some("10")
            } else {
                Some(["01", "20", "30"][rng.random_range(0..3)])
            };
            let unit = match rng.random_range(0..20) {
                0 => None,
                1 => Some("999999999X"),
                _ => Some(UNITS[rng.random_range(0..UNITS.len())].0),
            };
            (category, rng.random_bool(0.6), unit)
        }
    };
    json!({
        "type": "person",
        "national_id": nid,
        "personnel_category": category,
        "enved_account": enved.then(|| format!("EE-{}", &nid[5..])),
        "service_unit_code": unit,
    })
}

fn accounts(rng: &mut StdRng, p: usize, nid: &str, profile: Profile) -> Vec<serde_json::Value> {
    let acc = |suffix: &str, kind: &str, identity: Option<&str>| json!({"type": "account", "account_id": format!("acc-{p}-{suffix}"), "national_id": nid, "kind": kind, "identity": identity});
    if profile == Profile::AllEligible {
        return vec![acc("e", "ecpa", Some("civil_servant"))];
    }
    let main = match rng.random_range(0..100) {
        0..55 => acc("e", "ecpa", Some("civil_servant")),
        55..70 => acc("g", "mygov", Some("civil_servant")),
        70..82 => acc("g", "mygov", Some("natural_person")),
        82..85 => acc("g", "mygov", Some("pending_conversion")),
        85..90 => acc("m", "member", None),
        90..94 => acc("f", "facebook", None),
        94..96 => acc("o", "google", None),
        _ => {
            json!({"type": "account", "account_id": format!("acc-{p}-c"), "national_id": nid, "kind": "certificate", "bound_to": null})
        }
    };
    let mut out = vec![main.clone()];
    if rng.random_bool(0.05) && matches!(main["kind"].as_str(), Some("ecpa" | "mygov")) {
        out.push(json!({"type": "account", "account_id": format!("acc-{p}-c"), "national_id": nid, "kind": "certificate", "bound_to": main["account_id"]}));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_national_ids_pass_their_check_digit() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..200 {
            assert!(NationalId::parse(&random_national_id(&mut rng)).is_ok());
        }
    }

    #[test]
    fn every_generated_line_parses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        let spec = DatasetSpec {
            persons: 300,
            completions_per_person: 3,
            courses: 20,
            seed: 1,
            profile: Profile::Realistic,
            offset: 0,
        };
        let sum = write(spec, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), sum.lines);
        for l in text.lines() {
            crate::intake::parse_line(l, &crate::intake::LineRules::content_only())
                .unwrap_or_else(|e| panic!("{l}: {e}"));
        }
    }
}
