//! The lines of an intake file, read with bounded memory: a line longer
//! than [`MAX_LINE_BYTES`] is refused by number while it is skipped, never
//! held whole, so a file of any shape costs at most one line of buffer.

use super::ImportError;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The longest line accepted, in bytes, without its line end. The longest
/// valid object (a course with a 1,000-character name and 200-character
/// keys, all written as `\uXXXX` escapes) fits several times over.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The UTF-8 byte-order mark some editors put at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One non-blank line: its text, or why it is refused before parsing.
pub enum Line<'a> {
    Text(&'a str),
    Refused(String),
}

/// Reads a file line by line with numbers, skipping blank lines, with a
/// progress bar on a terminal.
pub struct LineReader {
    path: PathBuf,
    reader: BufReader<std::fs::File>,
    buf: Vec<u8>,
    no: usize,
    bar: indicatif::ProgressBar,
}

impl LineReader {
    pub fn open(path: &Path, progress: bool, what: &str) -> Result<Self, ImportError> {
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

    /// Lines read so far, blank ones included.
    pub fn count(&self) -> usize {
        self.no
    }

    /// The next non-blank line and its 1-based number. A byte-order mark
    /// opening the file is dropped, as UTF-8 readers do; one opening a later
    /// line (files concatenated) is refused with that explanation.
    pub fn next_line(&mut self) -> Result<Option<(usize, Line<'_>)>, ImportError> {
        loop {
            let Some(too_long) = self.read_bounded()? else {
                self.bar.finish_and_clear();
                return Ok(None);
            };
            self.no += 1;
            if too_long {
                return Ok(Some((
                    self.no,
                    Line::Refused(format!(
                        "line is longer than {MAX_LINE_BYTES} bytes, the longest line hoursync reads; \
                         no valid object needs that much (names at most {} characters, keys {})",
                        super::MAX_NAME_CHARS,
                        super::MAX_KEY_CHARS
                    )),
                )));
            }
            let mut start = 0;
            if self.buf.starts_with(BOM) {
                if self.no > 1 {
                    return Ok(Some((
                        self.no,
                        Line::Refused(
                            "line starts with a byte-order mark (U+FEFF), which only a file's \
                             first line may carry: were two files joined into one?"
                                .into(),
                        ),
                    )));
                }
                start = BOM.len();
            }
            match std::str::from_utf8(&self.buf[start..]) {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(_) => {}
                Err(_) => return Ok(Some((self.no, Line::Refused(not_utf8(&self.buf))))),
            }
            // Checked above; read again because a borrow returned from inside
            // the loop would hold `self` across the `continue`.
            let line = std::str::from_utf8(&self.buf[start..]).expect("checked above");
            return Ok(Some((self.no, Line::Text(line))));
        }
    }

    /// Reads one line into `buf`, line end removed, keeping at most
    /// [`MAX_LINE_BYTES`]: the rest of a longer line is consumed and
    /// dropped. `None` at the end of the file, else whether the line was
    /// too long.
    fn read_bounded(&mut self) -> Result<Option<bool>, ImportError> {
        self.buf.clear();
        let (mut read, mut too_long) = (0usize, false);
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ImportError::Io {
                        path: self.path.clone(),
                        source,
                    });
                }
            };
            if available.is_empty() {
                break;
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let content = &available[..newline.unwrap_or(available.len())];
            if !too_long {
                if self.buf.len() + content.len() > MAX_LINE_BYTES + 1 {
                    // One byte of slack for a `\r` before the `\n`.
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(content);
                }
            }
            let used = newline.map_or(available.len(), |i| i + 1);
            self.reader.consume(used);
            read += used;
            if newline.is_some() {
                break;
            }
        }
        self.bar.inc(read as u64);
        if read == 0 {
            return Ok(None);
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some(too_long || self.buf.len() > MAX_LINE_BYTES))
    }
}

/// Why a line is not UTF-8, with the likely cause.
fn not_utf8(bytes: &[u8]) -> String {
    let utf16 = bytes.starts_with(b"\xFF\xFE")
        || bytes.starts_with(b"\xFE\xFF")
        || bytes.iter().take(64).filter(|&&b| b == 0).count() > 8;
    if utf16 {
        "line is not UTF-8 text: the file looks like UTF-16; save it as UTF-8".into()
    } else {
        "line is not valid UTF-8 text (a legacy encoding such as Big5?); save the file as UTF-8"
            .into()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(content: &[u8]) -> Vec<(usize, Result<String, String>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        std::fs::write(&path, content).unwrap();
        let mut r = LineReader::open(&path, false, "test").unwrap();
        let mut out = Vec::new();
        while let Some((no, line)) = r.next_line().unwrap() {
            out.push((
                no,
                match line {
                    Line::Text(t) => Ok(t.to_string()),
                    Line::Refused(why) => Err(why),
                },
            ));
        }
        out
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused_by_number_and_the_next_is_read() {
        let mut content = b"first\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE_BYTES));
        content.extend(b"\nlast\r\n");
        let lines = read_all(&content);
        assert_eq!(lines[0], (1, Ok("first".into())));
        assert_eq!(lines[1].0, 2);
        assert!(
            lines[1]
                .1
                .as_ref()
                .unwrap_err()
                .contains("longer than 65536 bytes")
        );
        assert_eq!(lines[2], (3, Ok("last".into())));
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_read() {
        let mut content = vec![b'y'; MAX_LINE_BYTES];
        content.extend(b"\r\n");
        content.extend(vec![b'z'; MAX_LINE_BYTES + 1]);
        let lines = read_all(&content);
        assert_eq!(lines[0].1.as_ref().map(String::len), Ok(MAX_LINE_BYTES));
        assert!(lines[1].1.is_err(), "one byte over, without a line end");
    }

    #[test]
    fn a_byte_order_mark_opening_the_file_is_dropped_and_explained_elsewhere() {
        let lines = read_all(b"\xEF\xBB\xBF{}\n\n\xEF\xBB\xBF{}\n");
        assert_eq!(lines[0], (1, Ok("{}".into())));
        assert_eq!(lines[1].0, 3);
        assert!(lines[1].1.as_ref().unwrap_err().contains("byte-order mark"));
    }

    #[test]
    fn a_line_that_is_not_utf8_is_refused_with_the_likely_cause() {
        let lines = read_all(b"\xFF\xFE{\x00}\x00\n\xA4\xA4\xA4\xE5\n");
        assert!(lines[0].1.as_ref().unwrap_err().contains("UTF-16"));
        assert!(lines[1].1.as_ref().unwrap_err().contains("not valid UTF-8"));
    }
}
