//! Upgrading a database in place keeps its data: a database at migration
//! 0007, whose courses hold their certified hours in a column per
//! registry, is migrated to 0008 and every course keeps its figures, in
//! `course_hours`, unstamped.

mod common;

use common::*;
use hoursync::store::{CopyTable, PageKey};
use serde_json::json;

/// The last migration with a column per registry.
const BEFORE_COURSE_HOURS: i64 = 7;

/// Three courses as 0007 stored them: all three figures (a zero among
/// them), lifelong only, none.
const OLD_COURSES: &str = "
INSERT INTO courses (course_code, name, learning_mode, category_code, digital_tenths, classroom_tenths,
                     lifelong_tenths, teacher_tenths, enved_tenths, seq, changed_at)
VALUES ('K1', 'All three', 1, 'A1', 20, 0, 20, 15, 0, 3, 1000),
       ('K2', 'Lifelong only', 2, 'A1', 0, 30, 30, NULL, NULL, 4, 2000),
       ('K3', 'Not certified', 1, 'A1', 10, 0, NULL, NULL, NULL, 5, 3000)";

async fn a_database_upgraded_in_place_keeps_every_courses_certified_hours(backend: Backend) {
    let env = TestEnv::new(backend).await;
    env.migrate_to(BEFORE_COURSE_HOURS, Some(OLD_COURSES)).await;
    // Opening the store applies 0008.
    let store = env.store().await;

    let hours = store
        .export_page(CopyTable::CourseHours, &PageKey::Start, 100)
        .await
        .unwrap();
    let row = |k: &str, r: &str, t: i64| json!({"course_code": k, "registry": r, "tenths": t});
    assert_eq!(
        hours,
        vec![
            row("K1", "enved", 0),
            row("K1", "lifelong", 20),
            row("K1", "teacher", 15),
            row("K2", "lifelong", 30),
        ]
    );
    let courses = store
        .export_page(CopyTable::Courses, &PageKey::Start, 100)
        .await
        .unwrap();
    let stamps: Vec<_> = courses
        .iter()
        .map(|c| {
            (
                c["course_code"].clone(),
                c["seq"].clone(),
                c["changed_at"].clone(),
            )
        })
        .collect();
    assert_eq!(
        stamps,
        vec![
            (json!("K1"), json!(3), json!(1000)),
            (json!("K2"), json!(4), json!(2000)),
            (json!("K3"), json!(5), json!(3000)),
        ],
        "the upgrade stamps nothing"
    );
    assert!(
        courses.iter().all(|c| c.get("lifelong_tenths").is_none()),
        "the per-registry columns are gone: {courses:?}"
    );

    // The same courses imported again are the same data: nothing changes.
    let course = |code: &str, digital: &str, classroom: &str, mode: i64, name: &str, certified| {
        json!({"type": "course", "course_code": code, "name": name, "learning_mode": mode,
               "category_code": "A1", "digital_hours": digital, "classroom_hours": classroom,
               "certified": certified})
        .to_string()
    };
    let same = env.write(
        "same.jsonl",
        &[
            course(
                "K1",
                "2.0",
                "0.0",
                1,
                "All three",
                json!({"lifelong": "2.0", "teacher": "1.5", "enved": "0.0"}),
            ),
            course(
                "K2",
                "0.0",
                "3.0",
                2,
                "Lifelong only",
                json!({"lifelong": "3.0"}),
            ),
            course("K3", "1.0", "0.0", 1, "Not certified", json!({})),
        ],
    );
    let report = import(&store, &[same]).await;
    assert_eq!((report.applied, report.changed), (3, 0), "{report:?}");
}

backend_tests!(a_database_upgraded_in_place_keeps_every_courses_certified_hours);
