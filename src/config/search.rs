//! Which configuration file is read: the one named on the command line,
//! else the one `HOURSYNC_CONFIG` names, else `./config/hoursync.toml` (a
//! checkout), else `/etc/hoursync/hoursync.toml` (the Debian package), else
//! none (built-in defaults). An operator on a host with the package and a
//! checkout can thus always tell, and `hoursync config show` says, which
//! database a command reads.

use super::ConfigError;
use std::path::{Path, PathBuf};

/// The file read when no file is named and the working directory has none.
pub const SYSTEM_CONFIG_PATH: &str = "/etc/hoursync/hoursync.toml";

/// How the file was chosen, for `hoursync config show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `--config PATH`.
    Flag,
    /// `HOURSYNC_CONFIG=PATH`.
    EnvVar,
    /// `./config/hoursync.toml` in the working directory.
    WorkingDir,
    /// [`SYSTEM_CONFIG_PATH`].
    System,
    /// No file: built-in defaults (and the environment).
    Defaults,
}

impl Origin {
    pub fn describe(self) -> &'static str {
        match self {
            Origin::Flag => "named by --config",
            Origin::EnvVar => "named by HOURSYNC_CONFIG",
            Origin::WorkingDir => "in the working directory: no --config, no HOURSYNC_CONFIG",
            Origin::System => {
                "the system file: no --config, no HOURSYNC_CONFIG, no ./config/hoursync.toml"
            }
            Origin::Defaults => {
                "no --config, no HOURSYNC_CONFIG, no ./config/hoursync.toml, \
                 no /etc/hoursync/hoursync.toml"
            }
        }
    }
}

/// The chosen file (if any) and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: Option<PathBuf>,
    pub origin: Origin,
}

/// Chooses the file from what was named (`--config` or `HOURSYNC_CONFIG`;
/// clap already lets the flag win) and which files exist. A named file
/// that does not exist is an error, never a silent fall back to another
/// database.
pub fn locate(
    named: Option<(&Path, Origin)>,
    exists: impl Fn(&Path) -> bool,
) -> Result<Located, ConfigError> {
    if let Some((path, origin)) = named {
        if !exists(path) {
            return Err(ConfigError::Missing(path.to_path_buf()));
        }
        return Ok(Located {
            path: Some(path.to_path_buf()),
            origin,
        });
    }
    for (candidate, origin) in [
        (super::DEFAULT_CONFIG_PATH, Origin::WorkingDir),
        (SYSTEM_CONFIG_PATH, Origin::System),
    ] {
        if exists(Path::new(candidate)) {
            return Ok(Located {
                path: Some(PathBuf::from(candidate)),
                origin,
            });
        }
    }
    Ok(Located {
        path: None,
        origin: Origin::Defaults,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(files: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |p| files.iter().any(|f| Path::new(f) == p)
    }

    #[test]
    fn a_named_file_wins_over_both_default_places() {
        let both = with(&["x.toml", "config/hoursync.toml", SYSTEM_CONFIG_PATH]);
        for origin in [Origin::Flag, Origin::EnvVar] {
            let found = locate(Some((Path::new("x.toml"), origin)), &both).unwrap();
            assert_eq!(found.path.as_deref(), Some(Path::new("x.toml")));
            assert_eq!(found.origin, origin);
        }
    }

    #[test]
    fn a_named_file_that_is_missing_is_an_error_not_a_fall_back() {
        let both = with(&["config/hoursync.toml", SYSTEM_CONFIG_PATH]);
        let err = locate(Some((Path::new("gone.toml"), Origin::EnvVar)), both).unwrap_err();
        assert!(err.to_string().contains("gone.toml"), "{err}");
    }

    #[test]
    fn the_working_directory_file_wins_over_the_system_file() {
        let found = locate(None, with(&["config/hoursync.toml", SYSTEM_CONFIG_PATH])).unwrap();
        assert_eq!(found.origin, Origin::WorkingDir);
        assert_eq!(
            found.path.as_deref(),
            Some(Path::new("config/hoursync.toml"))
        );
    }

    #[test]
    fn the_system_file_is_read_when_the_working_directory_has_none() {
        let found = locate(None, with(&[SYSTEM_CONFIG_PATH])).unwrap();
        assert_eq!(found.origin, Origin::System);
        assert_eq!(found.path.as_deref(), Some(Path::new(SYSTEM_CONFIG_PATH)));
    }

    #[test]
    fn without_any_file_the_defaults_apply() {
        let found = locate(None, with(&[])).unwrap();
        assert_eq!(found.origin, Origin::Defaults);
        assert_eq!(found.path, None);
    }
}
