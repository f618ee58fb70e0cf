//! A small data set with every account kind and every rule of DOMAIN.md,
//! and, written out by hand, what each (completion, registry) must become.

use serde_json::json;

/// A valid, fictitious national ID numbered `n` (letter B, sex digit 1).
pub fn id(n: u32) -> String {
    (0..10)
        .map(|d| format!("B1{n:07}{d}"))
        .find(|s| hoursync::domain::NationalId::parse(s).is_ok())
        .unwrap()
}

pub const UNIT: &str = "313000000G";

fn person(n: u32, category: Option<&str>, enved: bool, unit: Option<&str>) -> String {
    json!({"type": "person", "national_id": id(n), "personnel_category": category,
           "enved_account": enved.then(|| format!("EE-{n}")), "service_unit_code": unit})
    .to_string()
}

pub fn account(acc: &str, n: u32, kind: &str, identity: Option<&str>) -> String {
    let mut v = json!({"type": "account", "account_id": acc, "national_id": id(n), "kind": kind});
    if let Some(i) = identity {
        v["identity"] = i.into();
    }
    v.to_string()
}

fn certificate(acc: &str, n: u32, bound_to: Option<&str>) -> String {
    json!({"type": "account", "account_id": acc, "national_id": id(n), "kind": "certificate", "bound_to": bound_to}).to_string()
}

pub fn completion(cmp: &str, acc: &str, course: &str, at: &str, status: &str) -> String {
    json!({"type": "completion", "completion_id": cmp, "account_id": acc, "course_code": course,
           "completed_at": at, "status": status})
    .to_string()
}

pub const AT: &str = "2026-11-20T10:15:00+08:00";

/// Unit `U1`, `course_line` (course `K1`), and `count` civil servants
/// (IDs 1…`count`, personnel category 10, an environmental-education
/// account) who each completed `K1` (completion `c{n}`, account `a{n}`).
pub fn learners(count: u32, course_line: String) -> Vec<String> {
    let mut lines = vec![
        json!({"type": "unit", "code": "U1", "name": "單位"}).to_string(),
        course_line,
    ];
    for n in 1..=count {
        lines.push(
            json!({"type": "person", "national_id": id(n), "personnel_category": "10",
                   "enved_account": format!("EE-{n}"), "service_unit_code": "U1"})
            .to_string(),
        );
        lines.push(account(&format!("a{n}"), n, "ecpa", Some("civil_servant")));
        lines.push(completion(
            &format!("c{n}"),
            &format!("a{n}"),
            "K1",
            "2026-11-20T10:00:00+08:00",
            "completed",
        ));
    }
    lines
}

/// The data set. Courses: `ALL` certified 2.0 everywhere (digital);
/// `LL` lifelong only, blended 1.0 + 1.5 = 2.5; `NONE` certified nowhere.
pub fn lines() -> Vec<String> {
    let mut l = vec![
        json!({"type": "unit", "code": UNIT, "name": "行政院人事行政總處"}).to_string(),
        json!({"type": "course", "course_code": "ALL", "name": "淨零生活", "learning_mode": 1, "category_code": "A1",
               "digital_hours": "2.0", "classroom_hours": "0.0",
               "certified": {"lifelong": "2.0", "teacher": "2.0", "enved": "2.0"}}).to_string(),
        json!({"type": "course", "course_code": "LL", "name": "公文寫作", "learning_mode": 3, "category_code": "B2",
               "digital_hours": "1.0", "classroom_hours": "1.5",
               "certified": {"lifelong": "2.5", "teacher": null, "enved": null}}).to_string(),
        json!({"type": "course", "course_code": "NONE", "name": "休閒", "learning_mode": 1, "category_code": "Z9",
               "digital_hours": "1.0", "classroom_hours": "0.0", "certified": {}}).to_string(),
    ];
    l.extend([
        person(1, Some("10"), true, Some(UNIT)),
        account("a1", 1, "ecpa", Some("civil_servant")),
        completion("c1", "a1", "ALL", AT, "completed"),
        completion("c2", "a1", "LL", "2026-11-20T23:30:00+08:00", "completed"),
        completion("c3", "a1", "ALL", "2026-11-18T10:15:00+08:00", "revoked"),
        completion("c3b", "a1", "NONE", AT, "completed"),
        person(2, Some("01"), false, None),
        account("a2", 2, "mygov", Some("civil_servant")),
        // 17:30 UTC is the next day in Taipei.
        completion("c4", "a2", "ALL", "2026-11-20T17:30:00Z", "completed"),
        person(3, Some("10"), true, Some("999999999X")),
        account("a3", 3, "mygov", Some("natural_person")),
        completion("c5", "a3", "ALL", AT, "completed"),
        person(4, Some("10"), true, Some(UNIT)),
        account("a4", 4, "mygov", Some("pending_conversion")),
        completion("c6", "a4", "ALL", AT, "completed"),
        person(5, Some("10"), true, Some(UNIT)),
        account("a5", 5, "member", None),
        completion("c7", "a5", "ALL", AT, "completed"),
        person(6, Some("10"), true, Some(UNIT)),
        account("a6f", 6, "facebook", None),
        account("a6g", 6, "google", None),
        completion("c8", "a6f", "ALL", AT, "completed"),
        completion("c9", "a6g", "ALL", AT, "completed"),
        person(7, Some("10"), true, Some(UNIT)),
        account("a7", 7, "ecpa", Some("civil_servant")),
        certificate("a7c", 7, Some("a7")),
        certificate("a7u", 7, None),
        completion("c10", "a7c", "ALL", AT, "completed"),
        completion(
            "c11",
            "a7u",
            "ALL",
            "2026-11-19T10:15:00+08:00",
            "completed",
        ),
        person(8, Some("10"), true, Some(UNIT)),
        account("a8", 8, "mygov", Some("natural_person")),
        certificate("a8c", 8, Some("a8")),
        completion("c12", "a8c", "ALL", AT, "completed"),
    ]);
    l
}

/// `Ok(hours)` or `Err(reason)`, per (completion, registry).
pub type Expect = (
    &'static str,
    &'static str,
    Result<&'static str, &'static str>,
);

pub fn expected() -> Vec<Expect> {
    vec![
        ("c1", "lifelong", Ok("2.0")),
        ("c1", "teacher", Ok("2.0")),
        ("c1", "enved", Ok("2.0")),
        ("c2", "lifelong", Ok("2.5")),
        ("c2", "teacher", Err("course_not_certified")),
        ("c2", "enved", Err("course_not_certified")),
        ("c3", "lifelong", Err("course_not_completed")),
        ("c3", "teacher", Err("course_not_completed")),
        ("c3", "enved", Err("course_not_completed")),
        ("c3b", "lifelong", Err("course_not_certified")),
        ("c3b", "teacher", Err("course_not_certified")),
        ("c3b", "enved", Err("course_not_certified")),
        ("c4", "lifelong", Ok("2.0")),
        ("c4", "teacher", Err("personnel_category_not_10")),
        ("c4", "enved", Err("no_enved_account")),
        ("c5", "lifelong", Err("not_civil_servant")),
        ("c5", "teacher", Err("not_civil_servant")),
        ("c5", "enved", Err("service_unit_invalid")),
        ("c6", "lifelong", Err("not_civil_servant")),
        ("c6", "teacher", Err("not_civil_servant")),
        ("c6", "enved", Ok("2.0")),
        ("c7", "lifelong", Err("member_account")),
        ("c7", "teacher", Err("member_account")),
        ("c7", "enved", Err("member_account")),
        ("c8", "lifelong", Err("social_login")),
        ("c8", "teacher", Err("social_login")),
        ("c8", "enved", Err("social_login")),
        ("c9", "lifelong", Err("social_login")),
        ("c9", "teacher", Err("social_login")),
        ("c9", "enved", Err("social_login")),
        ("c10", "lifelong", Ok("2.0")),
        ("c10", "teacher", Ok("2.0")),
        ("c10", "enved", Ok("2.0")),
        ("c11", "lifelong", Err("certificate_unbound")),
        ("c11", "teacher", Err("certificate_unbound")),
        ("c11", "enved", Err("certificate_unbound")),
        ("c12", "lifelong", Err("not_civil_servant")),
        ("c12", "teacher", Err("not_civil_servant")),
        ("c12", "enved", Ok("2.0")),
    ]
}

/// The person number of each completion, to look its status up.
pub fn person_of(completion: &str) -> u32 {
    match completion {
        "c1" | "c2" | "c3" | "c3b" => 1,
        "c4" => 2,
        "c5" => 3,
        "c6" => 4,
        "c7" => 5,
        "c8" | "c9" => 6,
        "c10" | "c11" => 7,
        "c12" => 8,
        other => panic!("unknown completion {other}"),
    }
}

/// The course and Taipei date of each completion, to find its record.
pub fn course_and_date(completion: &str) -> (&'static str, &'static str) {
    match completion {
        "c2" => ("LL", "2026-11-20"),
        "c3" => ("ALL", "2026-11-18"),
        "c3b" => ("NONE", "2026-11-20"),
        "c4" => ("ALL", "2026-11-21"),
        "c11" => ("ALL", "2026-11-19"),
        _ => ("ALL", "2026-11-20"),
    }
}
