//! Printing: a stdout writer that treats a closed pipe as "stop", tables, and JSON shapes.

use std::fmt::Write as _;
use std::io::{self, BufWriter, StdoutLock, Write};
use std::time::{Duration, UNIX_EPOCH};

use ipc_client::{Lifetime, ObjectInfo};
use serde_json::{Value, json};

/// Standard output was closed by its reader (`ipcctl recv … | head -1`): not an
/// error, the command just stops.
#[derive(Debug, thiserror::Error)]
#[error("standard output is closed")]
pub struct StdoutClosed;

/// Buffered standard output whose errors say whether the reader went away.
pub struct Out(BufWriter<StdoutLock<'static>>);

impl Out {
    /// Locks standard output.
    pub fn new() -> Self {
        Out(BufWriter::new(io::stdout().lock()))
    }

    /// Writes bytes as they are.
    pub fn bytes(&mut self, b: &[u8]) -> anyhow::Result<()> {
        self.0.write_all(b).map_err(stdout_error)
    }

    /// Writes a line of text.
    pub fn line(&mut self, s: impl AsRef<str>) -> anyhow::Result<()> {
        self.bytes(s.as_ref().as_bytes())?;
        self.bytes(b"\n")
    }

    /// Writes a JSON value on one line (compact: one document, one line).
    pub fn json(&mut self, v: &Value) -> anyhow::Result<()> {
        self.line(v.to_string())
    }

    /// Pushes buffered output to the reader.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.0.flush().map_err(stdout_error)
    }
}

/// Prints a command's result: with `json`, the one compact JSON document
/// `doc` makes; else the text `text` makes, as a line.
pub fn print(
    json: bool,
    doc: impl FnOnce() -> Value,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let mut out = Out::new();
    if json {
        out.json(&doc())?;
    } else {
        out.line(text())?;
    }
    out.flush()
}

/// Prints the JSON document of a command that prints nothing as text.
pub fn print_json_only(json: bool, doc: impl FnOnce() -> Value) -> anyhow::Result<()> {
    if !json {
        return Ok(());
    }
    let mut out = Out::new();
    out.json(&doc())?;
    out.flush()
}

/// What a `send` sent: `{"sent":ADDRESS,"messages":N,"bytes":B}`;
/// `messages` is `null` for a `--raw` byte stream, which has no messages.
pub fn sent_json(address: &str, messages: Option<u64>, bytes: u64) -> Value {
    json!({ "sent": address, "messages": messages, "bytes": bytes })
}

/// An object's name in the kernel; an anonymous pipe has none (the daemon
/// says `(anonymous pipe)` or nothing).
pub fn kernel_name(o: &ObjectInfo) -> Option<&str> {
    match o.kernel_name.as_str() {
        "" | "(anonymous pipe)" => None,
        name => Some(name),
    }
}

/// A write error on standard output: [`StdoutClosed`] if its reader went away.
pub fn stdout_error(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        anyhow::Error::new(e).context("cannot write to standard output")
    }
}

/// Permission bits as `0660`.
pub fn mode(m: u32) -> String {
    format!("{m:04o}")
}

/// A received message or line as JSON: `{"message": TEXT}` when the bytes are
/// UTF-8, else `{"message_base64": BASE64}`; plus `"priority"` for a queue's.
pub fn message_json(msg: &[u8], priority: Option<u32>) -> Value {
    let mut v = match std::str::from_utf8(msg) {
        Ok(text) => json!({ "message": text }),
        Err(_) => json!({ "message_base64": base64(msg) }),
    };
    if let Some(p) = priority {
        v["priority"] = p.into();
    }
    v
}

/// Standard base64 (RFC 4648, section 4: `+/` and `=` padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `persistent` or `session`.
pub fn lifetime(l: Lifetime) -> &'static str {
    match l {
        Lifetime::Persistent => "persistent",
        Lifetime::Session => "session",
    }
}

/// A millisecond Unix timestamp as RFC 3339 (UTC, whole seconds).
pub fn timestamp(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A duration in milliseconds, to the second: `1h 2m 3s`.
pub fn uptime(ms: u64) -> String {
    humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
}

/// `label: value` lines with the values aligned.
pub fn fields(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    let mut s = String::new();
    for (k, v) in rows {
        let _ = writeln!(s, "{:<width$} {v}", format!("{k}:"));
    }
    s.pop();
    s
}

/// A plain-text table; `right[i]` right-aligns column `i` (numbers).
pub fn table(headers: &[&str], rows: &[Vec<String>], right: &[bool]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            if right.get(i).copied().unwrap_or(false) {
                let _ = write!(line, "{cell:>w$}");
            } else {
                let _ = write!(line, "{cell:<w$}");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_numbers_right() {
        let t = table(
            &["NAME", "N"],
            &[
                vec!["a".into(), "5".into()],
                vec!["long".into(), "100".into()],
            ],
            &[false, true],
        );
        assert_eq!(t, "NAME    N\na       5\nlong  100");
    }

    #[test]
    fn fields_align_values() {
        assert_eq!(
            fields(&[("a", "1".into()), ("long", "2".into())]),
            "a:    1\nlong: 2"
        );
    }

    #[test]
    fn base64_is_the_standard_one() {
        // RFC 4648, section 10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd, 0x00]), "//79AA==");
    }

    #[test]
    fn messages_are_text_when_they_can_be() {
        assert_eq!(
            message_json(b"x", Some(3)).to_string(),
            r#"{"message":"x","priority":3}"#
        );
        assert_eq!(
            message_json(b"a\xff\x00b", Some(0)).to_string(),
            r#"{"message_base64":"Yf8AYg==","priority":0}"#
        );
        assert_eq!(
            message_json(b"line", None).to_string(),
            r#"{"message":"line"}"#
        );
        assert_eq!(
            message_json("\u{e9}\0".as_bytes(), None).to_string(),
            "{\"message\":\"\u{e9}\\u0000\"}"
        );
    }

    #[test]
    fn uptime_is_rounded_to_seconds() {
        assert_eq!(uptime(3_723_456), "1h 2m 3s");
        assert_eq!(mode(0o7), "0007");
    }
}
