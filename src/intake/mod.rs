//! `hoursync import`: JSON Lines files of INTAKE.md into the store.
//!
//! Objects may refer to objects later in the same file, so a file is read
//! twice: the first pass parses every line and learns which keys the file
//! defines; the second checks references (against the file and the
//! database) and applies the valid lines in chunks, each chunk one
//! transaction. With `--strict` the second pass only checks, and a third
//! applies, when no line was rejected. A rejected line is never applied and
//! never touches what is stored.

mod lines;
mod parse;

pub use lines::MAX_LINE_BYTES;
pub use parse::{LineRules, MAX_KEY_CHARS, MAX_NAME_CHARS, Object, parse_line};

use crate::clock::Clock;
use crate::domain::{AccountKind, NationalId};
use crate::store::{IntakeChunk, KeyQuery, KnownKeys, Store, StoreError};
use lines::{Line, LineReader};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Valid lines applied per transaction.
const CHUNK_LINES: usize = 5_000;
/// Line errors kept for the report; the count goes on past this, so a file
/// of a million bad lines costs no more memory than one of ten thousand.
pub const MAX_ERRORS_KEPT: usize = 10_000;
/// Longest reason kept for a line error, in characters: a reason may quote
/// the line's values, which may be long.
const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    pub strict: bool,
    pub progress: bool,
    /// `intake.max_future_days`: how far after the import's time a
    /// completion may be dated.
    pub max_future_days: u32,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            strict: false,
            progress: false,
            max_future_days: crate::config::IntakeConfig::default().max_future_days,
        }
    }
}

/// A rejected line: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub lines: usize,
    /// Valid lines applied (identical content included).
    pub applied: usize,
    /// Rows whose stored content changed.
    pub changed: u64,
    pub rejected: usize,
    pub errors: Vec<LineError>,
    /// Files left untouched because `--strict` found a bad line in them.
    pub files_skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Imports `files` in order (a later file may refer to an earlier one).
pub async fn import_files(
    store: &dyn Store,
    clock: &dyn Clock,
    files: &[PathBuf],
    opts: ImportOptions,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    for path in files {
        import_file(store, clock, path, opts, &mut report).await?;
    }
    // A bulk change: refresh the planner's statistics for the scan to come.
    if report.changed >= crate::scan::ANALYZE_AFTER_ROWS as u64 {
        store.analyze().await?;
    }
    Ok(report)
}

/// What the first pass learns about a file.
#[derive(Default)]
struct Definitions {
    persons: HashSet<NationalId>,
    /// account id → (kind, national id, bound_to), the last valid line's.
    accounts: HashMap<String, (AccountKind, NationalId, Option<String>)>,
    courses: HashSet<String>,
    wanted: KeyQuery,
}

async fn import_file(
    store: &dyn Store,
    clock: &dyn Clock,
    path: &Path,
    opts: ImportOptions,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let name = path.display().to_string();
    let rules = LineRules::at(clock.now_ms(), opts.max_future_days);
    let room = MAX_ERRORS_KEPT.saturating_sub(report.errors.len());
    // Parse errors are found by the first pass, reference errors by a later
    // one; each pass meets its lines in order, so each list keeps its first.
    let mut parse_errors = Errors::new(&name, room);
    let mut ref_errors = Errors::new(&name, room);
    let mut defs = Definitions::default();
    let lines = for_each_line(path, opts.progress, "checking", |no, line| match line {
        Line::Text(text) => match parse_line(text, &rules) {
            Ok(obj) => defs.learn(&obj),
            Err(reason) => parse_errors.push(no, reason),
        },
        Line::Refused(reason) => parse_errors.push(no, reason),
    })?;
    report.lines += lines;
    let known = store
        .known_keys(&std::mem::take(&mut defs.wanted).dedup())
        .await?;
    let refs = References::resolve(&defs, &known);

    if opts.strict {
        // A line that failed the first pass fails to parse again: parsing
        // is a pure function of the line, so no list of bad lines is kept.
        for_each_line(path, false, "checking references", |no, line| {
            if let Line::Text(text) = line
                && let Ok(obj) = parse_line(text, &rules)
                && let Err(reason) = refs.check(&obj)
            {
                ref_errors.push(no, reason);
            }
        })?;
        if parse_errors.count + ref_errors.count > 0 {
            report.files_skipped.push(name.clone());
            return finish(report, parse_errors, ref_errors);
        }
    }

    let mut chunk = ChunkBuilder::default();
    let mut lines = LineReader::open(path, opts.progress, "importing")?;
    while let Some((no, line)) = lines.next_line()? {
        let Line::Text(text) = line else { continue };
        let Ok(obj) = parse_line(text, &rules) else {
            continue;
        };
        if let Err(reason) = refs.check(&obj) {
            ref_errors.push(no, reason);
            continue;
        }
        chunk.push(obj);
        report.applied += 1;
        if chunk.lines >= CHUNK_LINES {
            report.changed += store
                .apply_intake(&std::mem::take(&mut chunk).build(), clock.now_ms())
                .await?;
        }
    }
    if chunk.lines > 0 {
        report.changed += store.apply_intake(&chunk.build(), clock.now_ms()).await?;
    }
    finish(report, parse_errors, ref_errors)
}

/// The line errors of one pass over a file: the first `room` kept, in line
/// order, and how many there were.
struct Errors<'a> {
    file: &'a str,
    room: usize,
    kept: Vec<LineError>,
    count: usize,
}

impl<'a> Errors<'a> {
    fn new(file: &'a str, room: usize) -> Self {
        Self {
            file,
            room,
            kept: Vec::new(),
            count: 0,
        }
    }

    /// Counts an error, keeping it while there is room. Its reason is
    /// masked (it may quote any value of the line) and cut to
    /// [`MAX_REASON_CHARS`].
    fn push(&mut self, line: usize, reason: String) {
        self.count += 1;
        if self.kept.len() >= self.room {
            return;
        }
        let head: String = reason.chars().take(MAX_REASON_CHARS + 10).collect();
        let mut reason: String = crate::domain::mask_ids_in_text(&head)
            .chars()
            .take(MAX_REASON_CHARS)
            .collect();
        if head.chars().count() > MAX_REASON_CHARS {
            reason.push('…');
        }
        self.kept.push(LineError {
            file: self.file.to_string(),
            line,
            reason,
        });
    }
}

fn finish(report: &mut ImportReport, a: Errors, b: Errors) -> Result<(), ImportError> {
    report.rejected += a.count + b.count;
    let room = MAX_ERRORS_KEPT.saturating_sub(report.errors.len());
    let mut errors = a.kept;
    errors.extend(b.kept);
    // Stable: a line's parse error before its reference error (never both).
    errors.sort_by_key(|e| e.line);
    report.errors.extend(errors.into_iter().take(room));
    Ok(())
}

/// Calls `f` with each non-blank line and its 1-based number; returns the
/// number of lines read.
fn for_each_line(
    path: &Path,
    progress: bool,
    what: &str,
    mut f: impl FnMut(usize, Line<'_>),
) -> Result<usize, ImportError> {
    let mut lines = LineReader::open(path, progress, what)?;
    while let Some((no, line)) = lines.next_line()? {
        f(no, line);
    }
    Ok(lines.count())
}

impl Definitions {
    fn learn(&mut self, obj: &Object) {
        match obj {
            Object::Person(p) => {
                self.persons.insert(p.national_id.clone());
            }
            Object::Account(a) => {
                self.wanted.persons.push(a.national_id.clone());
                if let Some(b) = &a.bound_to {
                    self.wanted.accounts.push(b.clone());
                }
                self.accounts.insert(
                    a.account_id.clone(),
                    (a.kind, a.national_id.clone(), a.bound_to.clone()),
                );
            }
            Object::Course(c) => {
                self.courses.insert(c.course_code.clone());
            }
            Object::Completion(c) => {
                self.wanted.accounts.push(c.account_id.clone());
                self.wanted.courses.push(c.course_code.clone());
            }
            Object::Unit(_) => {}
        }
        // Keep the wanted lists from growing with repeated keys.
        if self.wanted.accounts.len() + self.wanted.courses.len() + self.wanted.persons.len()
            > 200_000
        {
            self.wanted = std::mem::take(&mut self.wanted).dedup();
        }
    }
}

impl KeyQuery {
    fn dedup(self) -> KeyQuery {
        fn d<T: Eq + std::hash::Hash>(v: Vec<T>) -> Vec<T> {
            v.into_iter().collect::<HashSet<_>>().into_iter().collect()
        }
        KeyQuery {
            persons: d(self.persons),
            accounts: d(self.accounts),
            courses: d(self.courses),
        }
    }
}

/// What a reference may resolve to: the file's valid definitions and the
/// stored objects.
struct References<'a> {
    defs: &'a Definitions,
    known: &'a KnownKeys,
    /// Accounts of the file whose own references resolve.
    valid_accounts: HashMap<&'a str, (AccountKind, &'a NationalId)>,
}

impl<'a> References<'a> {
    fn resolve(defs: &'a Definitions, known: &'a KnownKeys) -> Self {
        let mut r = References {
            defs,
            known,
            valid_accounts: HashMap::new(),
        };
        // Plain accounts first, then certificates, which bind to them.
        for pass_certificates in [false, true] {
            for (id, (kind, nid, bound)) in &defs.accounts {
                if (*kind == AccountKind::Certificate) != pass_certificates {
                    continue;
                }
                if r.account_ok(*kind, nid, bound.as_deref()).is_ok() {
                    r.valid_accounts.insert(id.as_str(), (*kind, nid));
                }
            }
        }
        r
    }

    fn person_known(&self, nid: &NationalId) -> bool {
        self.defs.persons.contains(nid) || self.known.persons.contains(nid)
    }

    fn account(&self, id: &str) -> Option<(AccountKind, &NationalId)> {
        if let Some(a) = self.valid_accounts.get(id) {
            return Some(*a);
        }
        if self.defs.accounts.contains_key(id) {
            // Defined in this file, but its own references do not resolve.
            return None;
        }
        let k = self.known.accounts.get(id)?;
        Some((AccountKind::parse(&k.kind)?, &k.national_id))
    }

    fn account_ok(
        &self,
        kind: AccountKind,
        nid: &NationalId,
        bound_to: Option<&str>,
    ) -> Result<(), String> {
        if !self.person_known(nid) {
            return Err(format!(
                "national_id {nid} refers to no person (import the person first, or in the same file)",
            ));
        }
        if let (AccountKind::Certificate, Some(b)) = (kind, bound_to) {
            match self.account(b) {
                None => return Err(format!("bound_to {b:?} refers to no valid account")),
                Some((bk, _)) if !matches!(bk, AccountKind::Ecpa | AccountKind::Mygov) => {
                    return Err(format!(
                        "bound_to {b:?} is a {} account; a certificate binds to an ecpa or mygov account",
                        bk.as_str()
                    ));
                }
                Some((_, bnid)) if bnid != nid => {
                    return Err(format!("bound_to {b:?} belongs to another person"));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn check(&self, obj: &Object) -> Result<(), String> {
        match obj {
            Object::Account(a) => self.account_ok(a.kind, &a.national_id, a.bound_to.as_deref()),
            Object::Completion(c) => {
                if self.account(&c.account_id).is_none() {
                    return Err(format!(
                        "account_id {:?} refers to no valid account",
                        c.account_id
                    ));
                }
                if !(self.defs.courses.contains(&c.course_code)
                    || self.known.courses.contains(&c.course_code))
                {
                    return Err(format!(
                        "course_code {:?} refers to no course",
                        c.course_code
                    ));
                }
                Ok(())
            }
            Object::Unit(_) | Object::Person(_) | Object::Course(_) => Ok(()),
        }
    }
}

/// Collects valid objects for one transaction; a key seen twice keeps its
/// last line, as a later upsert would.
#[derive(Default)]
struct ChunkBuilder {
    lines: usize,
    chunk: IntakeChunk,
    seen: HashMap<(u8, String), usize>,
}

impl ChunkBuilder {
    fn push(&mut self, obj: Object) {
        self.lines += 1;
        macro_rules! put {
            ($tag:expr, $key:expr, $vec:ident, $val:expr) => {{
                let k = ($tag, $key);
                match self.seen.get(&k) {
                    Some(&i) => self.chunk.$vec[i] = $val,
                    None => {
                        self.seen.insert(k, self.chunk.$vec.len());
                        self.chunk.$vec.push($val);
                    }
                }
            }};
        }
        match obj {
            Object::Unit(u) => put!(0, u.code.clone(), units, u),
            Object::Person(p) => put!(1, p.national_id.expose().to_string(), persons, p),
            Object::Account(a) => put!(2, a.account_id.clone(), accounts, a),
            Object::Course(c) => put!(3, c.course_code.clone(), courses, c),
            Object::Completion(c) => put!(4, c.completion_id.clone(), completions, c),
        }
    }

    fn build(self) -> IntakeChunk {
        self.chunk
    }
}
