//! `hoursync import`: JSON Lines files of INTAKE.md into the store.
//!
//! Objects may refer to objects later in the same file, so a file is read
//! twice: the first pass parses every line and learns which keys the file
//! defines; the second checks references (against the file and the
//! database) and applies the valid lines in chunks, each chunk one
//! transaction. With `--strict` the second pass only checks, and a third
//! applies, when no line was rejected. A rejected line is never applied and
//! never touches what is stored.

mod parse;

pub use parse::{Object, parse_line};

use crate::clock::Clock;
use crate::domain::{AccountKind, NationalId};
use crate::store::{IntakeChunk, KeyQuery, KnownKeys, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Valid lines applied per transaction.
const CHUNK_LINES: usize = 5_000;
/// Line errors kept for the report; the count goes on past this.
const MAX_ERRORS_KEPT: usize = 10_000;

#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    pub strict: bool,
    pub progress: bool,
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
    let mut errors: Vec<LineError> = Vec::new();
    let mut defs = Definitions::default();
    let lines = for_each_line(
        path,
        opts.progress,
        "checking",
        |no, line| match parse_line(line) {
            Ok(obj) => defs.learn(&obj),
            Err(reason) => errors.push(LineError {
                file: name.clone(),
                line: no,
                reason,
            }),
        },
    )?;
    report.lines += lines;
    let known = store
        .known_keys(&std::mem::take(&mut defs.wanted).dedup())
        .await?;
    let refs = References::resolve(&defs, &known);
    let bad_lines: HashSet<usize> = errors.iter().map(|e| e.line).collect();

    if opts.strict {
        let mut ref_errors = Vec::new();
        for_each_line(path, false, "checking references", |no, line| {
            if bad_lines.contains(&no) {
                return;
            }
            if let Ok(obj) = parse_line(line)
                && let Err(reason) = refs.check(&obj)
            {
                ref_errors.push(LineError {
                    file: name.clone(),
                    line: no,
                    reason,
                });
            }
        })?;
        errors.extend(ref_errors);
        if !errors.is_empty() {
            report.files_skipped.push(name.clone());
            return finish(report, errors);
        }
    }

    let mut chunk = ChunkBuilder::default();
    let mut lines = LineReader::open(path, opts.progress, "importing")?;
    while let Some((no, line)) = lines.next_line()? {
        if bad_lines.contains(&no) {
            continue;
        }
        let Ok(obj) = parse_line(line) else { continue };
        if let Err(reason) = refs.check(&obj) {
            errors.push(LineError {
                file: name.clone(),
                line: no,
                reason,
            });
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
    finish(report, errors)
}

fn finish(report: &mut ImportReport, mut errors: Vec<LineError>) -> Result<(), ImportError> {
    errors.sort_by_key(|e| e.line);
    report.rejected += errors.len();
    let room = MAX_ERRORS_KEPT.saturating_sub(report.errors.len());
    report.errors.extend(errors.into_iter().take(room));
    Ok(())
}

/// Calls `f` with each non-blank line and its 1-based number.
fn for_each_line(
    path: &Path,
    progress: bool,
    what: &str,
    mut f: impl FnMut(usize, &str),
) -> Result<usize, ImportError> {
    let mut lines = LineReader::open(path, progress, what)?;
    while let Some((no, line)) = lines.next_line()? {
        f(no, line);
    }
    Ok(lines.no)
}

/// Reads a file line by line with numbers, skipping blank lines, with a
/// progress bar on a terminal. A line that is not UTF-8 comes back as a NUL
/// character, which the parser reports.
struct LineReader {
    path: PathBuf,
    reader: BufReader<std::fs::File>,
    buf: Vec<u8>,
    no: usize,
    bar: indicatif::ProgressBar,
}

impl LineReader {
    fn open(path: &Path, progress: bool, what: &str) -> Result<Self, ImportError> {
        let io = |source| ImportError::Io {
            path: path.into(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let bar = progress_bar(progress, size, what);
        Ok(Self {
            path: path.into(),
            reader: BufReader::with_capacity(1 << 16, file),
            buf: Vec::new(),
            no: 0,
            bar,
        })
    }

    fn next_line(&mut self) -> Result<Option<(usize, &str)>, ImportError> {
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| ImportError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            if n == 0 {
                self.bar.finish_and_clear();
                return Ok(None);
            }
            self.no += 1;
            self.bar.inc(n as u64);
            match std::str::from_utf8(&self.buf) {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(_) => {}
                Err(_) => {
                    self.buf.clear();
                    self.buf.push(0);
                }
            }
            let line = std::str::from_utf8(&self.buf).expect("checked above");
            return Ok(Some((self.no, line)));
        }
    }
}

fn progress_bar(show: bool, len: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !show || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>18} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
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
