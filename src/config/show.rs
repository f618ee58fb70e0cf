//! `hoursync config show`: the effective configuration, secrets hidden,
//! and where each value came from (built-in default, the file, or an
//! environment variable), so "which database does this command read?" has
//! one answer on screen.

use super::{Layered, redact_url};
use figment::Source;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where one value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ValueSource {
    Default,
    File { path: PathBuf },
    Env { name: String },
}

impl std::fmt::Display for ValueSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueSource::Default => write!(f, "default"),
            ValueSource::File { path } => write!(f, "file {}", path.display()),
            ValueSource::Env { name } => write!(f, "env {name}"),
        }
    }
}

/// The file read and why, as `config show --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct FileShown {
    pub path: Option<PathBuf>,
    pub origin: super::Origin,
}

/// The effective configuration with secrets hidden and each dotted key's
/// source.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub file: FileShown,
    pub config: Value,
    pub sources: BTreeMap<String, ValueSource>,
}

/// What `config show` prints of `layered`.
pub fn show(layered: &Layered) -> Shown {
    let mut config = serde_json::to_value(&layered.config).expect("a configuration serializes");
    hide_secrets(&mut config);
    let mut sources = BTreeMap::new();
    collect_sources(layered, "", &config, &mut sources);
    Shown {
        file: FileShown {
            path: layered.located.path.clone(),
            origin: layered.located.origin,
        },
        config,
        sources,
    }
}

/// Every URL loses its password (the database URL may carry one; a
/// registry URL could). Token and password *files* are paths, shown as is.
fn hide_secrets(value: &mut Value) {
    if let Value::Object(map) = value {
        for (key, v) in map.iter_mut() {
            match v {
                Value::String(s) if key.ends_with("url") => *s = redact_url(s),
                _ => hide_secrets(v),
            }
        }
    }
}

fn collect_sources(
    layered: &Layered,
    prefix: &str,
    value: &Value,
    out: &mut BTreeMap<String, ValueSource>,
) {
    let Value::Object(map) = value else { return };
    for (key, v) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if v.is_object() {
            collect_sources(layered, &path, v, out);
        } else {
            out.insert(path.clone(), source_of(layered, &path));
        }
    }
}

fn source_of(layered: &Layered, key: &str) -> ValueSource {
    let Some(meta) = layered.figment.find_metadata(key) else {
        return ValueSource::Default;
    };
    match &meta.source {
        Some(Source::File(path)) => ValueSource::File { path: path.clone() },
        _ if meta.name.contains("environment") => ValueSource::Env {
            name: format!("HOURSYNC_{}", key.to_ascii_uppercase().replace('.', "__")),
        },
        _ => ValueSource::Default,
    }
}

impl Shown {
    /// The configuration as TOML a file could hold, each value followed by
    /// its source as a comment.
    pub fn to_toml(&self) -> String {
        let mut out = format!(
            "# Effective configuration of hoursync {} (URL passwords hidden).\n",
            env!("CARGO_PKG_VERSION")
        );
        match &self.file.path {
            Some(p) => {
                out += &format!(
                    "# File: {} ({})\n",
                    p.display(),
                    self.file.origin.describe()
                )
            }
            None => out += &format!("# File: none ({})\n", self.file.origin.describe()),
        }
        out += "# After each value: where it came from (default, file PATH, env VARIABLE).\n";
        if let Value::Object(map) = &self.config {
            self.table(&mut out, "", map);
        }
        out
    }

    fn table(&self, out: &mut String, prefix: &str, map: &Map<String, Value>) {
        let scalars: Vec<_> = map.iter().filter(|(_, v)| !v.is_object()).collect();
        if !scalars.is_empty() {
            if !prefix.is_empty() {
                *out += &format!("\n[{prefix}]\n");
            }
            let lines: Vec<(String, String)> = scalars
                .iter()
                .map(|(k, v)| {
                    let key = join(prefix, k);
                    let source = self.sources.get(&key).map(ToString::to_string);
                    let line = if v.is_null() {
                        // TOML has no null: an unset optional key stays a comment.
                        format!("# {k} (not set)")
                    } else {
                        format!("{k} = {}", toml_scalar(v))
                    };
                    (line, source.unwrap_or_default())
                })
                .collect();
            let width = lines
                .iter()
                .map(|(l, _)| l.chars().count())
                .max()
                .unwrap_or(0);
            for (line, source) in lines {
                *out += &format!("{line:width$}  # {source}\n");
            }
        }
        for (k, v) in map {
            if let Value::Object(inner) = v {
                self.table(out, &join(prefix, k), inner);
            }
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// A JSON scalar as TOML: JSON's string escapes and numbers are TOML's.
fn toml_scalar(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            let items: Vec<_> = items.iter().map(toml_scalar).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}
