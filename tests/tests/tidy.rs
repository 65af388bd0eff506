//! Tidy: workspace-wide rules that neither rustc nor clippy checks.
//!
//! Walks every `.rs` file (and crate manifest) under the workspace root,
//! skipping `target/`, `fuzz/target/` and hidden directories, and fails with
//! one `path:line: rule: text` line per offence:
//!
//! - `unsafe-outside-sys`: the `unsafe` keyword (in code, not in comments or
//!   strings) outside the `sys` modules of `ipcd/src` and `ipc-client/src` and
//!   the bench's descriptor helper (`fds.rs` under a `bench` directory, or
//!   `bench/src/sys.rs`).
//! - `unsafe-without-safety`: an `unsafe {` block without a `// SAFETY:`
//!   comment within the 3 lines above it (a longer comment counts when its
//!   block reaches into those 3 lines).
//! - `missing-module-doc`: a file whose first non-empty line is not `//!`.
//! - `bincode-outside-protocol`: `bincode` named in code outside
//!   `protocol/src`, or in a crate manifest other than the root's and
//!   `protocol/Cargo.toml`.
//! - `file-too-long`: more than 600 lines, outside tests and fixtures.
//! - `kind-match-wildcard`: in `ipcd/src`, a `_ =>` arm in a `match` whose
//!   arms name a kind enum (`Kind::`, `KindParams::`, … any `Kind*::`), so a new
//!   kind would be swallowed instead of failing to compile.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

const UNSAFE_OUTSIDE_SYS: &str = "unsafe-outside-sys";
const UNSAFE_WITHOUT_SAFETY: &str = "unsafe-without-safety";
const MISSING_MODULE_DOC: &str = "missing-module-doc";
const BINCODE_OUTSIDE_PROTOCOL: &str = "bincode-outside-protocol";
const FILE_TOO_LONG: &str = "file-too-long";
const KIND_MATCH_WILDCARD: &str = "kind-match-wildcard";

/// Offences that predate this test, in files the tidy change did not touch.
/// Temporary: each entry silences one rule for one file; an entry that no
/// longer matches an offence fails the test, so the list only shrinks.
const KNOWN_OFFENDERS: &[(&str, &str)] = &[];

/// Most lines a non-test source file may have.
const MAX_LINES: usize = 600;

/// How many lines above an `unsafe {` its `// SAFETY:` comment may start (or reach).
const SAFETY_WINDOW: usize = 3;

/// One broken rule.
#[derive(Debug)]
struct Offence {
    path: String,
    line: usize,
    rule: &'static str,
    text: String,
}

impl fmt::Display for Offence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.path, self.line, self.rule, self.text
        )
    }
}

/// A source file: its path relative to the root (`/`-separated), its lines, and
/// the same lines with comments and literals blanked out.
struct Source {
    path: String,
    lines: Vec<String>,
    code: Vec<String>,
}

impl Source {
    fn new(path: String, text: &str) -> Self {
        Source {
            path,
            lines: text.lines().map(str::to_owned).collect(),
            code: code_only(text).lines().map(str::to_owned).collect(),
        }
    }

    /// An offence at 0-based line `n`, quoting that line.
    fn offence(&self, n: usize, rule: &'static str) -> Offence {
        Offence {
            path: self.path.clone(),
            line: n + 1,
            rule,
            text: self.lines[n].trim().to_owned(),
        }
    }
}

#[test]
fn workspace_is_tidy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut offences = Vec::new();
    for path in files(&root, ".rs") {
        let text = fs::read_to_string(&path).expect("readable source");
        let source = Source::new(relative(&root, &path), &text);
        offences.extend(check_unsafe(&source));
        offences.extend(check_module_doc(&source));
        offences.extend(check_bincode(&source));
        offences.extend(check_length(&source));
        offences.extend(check_kind_matches(&source));
    }
    for path in files(&root, "Cargo.toml") {
        let text = fs::read_to_string(&path).expect("readable manifest");
        offences.extend(check_manifest(&relative(&root, &path), &text));
    }
    report(offences);
}

/// Fails listing every offence not in [`KNOWN_OFFENDERS`] and every stale entry.
fn report(offences: Vec<Offence>) {
    let is_known = |o: &Offence| KNOWN_OFFENDERS.contains(&(o.path.as_str(), o.rule));
    let (known, new): (Vec<_>, Vec<_>) = offences.into_iter().partition(is_known);
    let mut problems: Vec<String> = new.iter().map(Offence::to_string).collect();
    for (path, rule) in KNOWN_OFFENDERS {
        if !known.iter().any(|o| o.path == *path && o.rule == *rule) {
            problems.push(format!(
                "{path}: {rule}: listed in KNOWN_OFFENDERS but no longer offends; remove the entry"
            ));
        }
    }
    for o in &known {
        eprintln!("known (KNOWN_OFFENDERS): {o}");
    }
    assert!(
        problems.is_empty(),
        "tidy: {} problem(s):\n{}\n",
        problems.len(),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------- the walk

/// Files under `root` whose name ends with `suffix`, sorted, skipping build
/// output and hidden directories.
fn files(root: &Path, suffix: &str) -> Vec<PathBuf> {
    let skip = [root.join("target"), root.join("fuzz").join("target")];
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("readable directory") {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap_or_default();
            let name = name.to_string_lossy().into_owned();
            if name.starts_with('.') || skip.contains(&path) {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if name.ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `path` relative to `root`, with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).expect("under the root");
    let parts: Vec<_> = rel.iter().map(|p| p.to_string_lossy()).collect();
    parts.join("/")
}

// ---------------------------------------------------------------- rule 1: unsafe

fn check_unsafe(source: &Source) -> Vec<Offence> {
    let mut out = Vec::new();
    for (n, line) in source.code.iter().enumerate() {
        let uses = word_positions(line, "unsafe");
        if uses.is_empty() {
            continue;
        }
        if !unsafe_allowed(&source.path) {
            out.push(source.offence(n, UNSAFE_OUTSIDE_SYS));
        }
        let opens_block = uses
            .iter()
            .any(|&at| line[at + "unsafe".len()..].trim_start().starts_with('{'));
        if opens_block && !has_safety_comment(&source.lines, n) {
            out.push(source.offence(n, UNSAFE_WITHOUT_SAFETY));
        }
    }
    out
}

/// The places `unsafe` may live.
fn unsafe_allowed(path: &str) -> bool {
    let in_sys = (path.starts_with("ipcd/src/") || path.starts_with("ipc-client/src/"))
        && (path.ends_with("/sys.rs") || path.contains("/sys/"));
    let bench_fds = path.ends_with("/fds.rs") && path.rsplit('/').skip(1).any(|d| d == "bench");
    in_sys || bench_fds || path == "bench/src/sys.rs"
}

/// Whether a `// SAFETY:` line sits within [`SAFETY_WINDOW`] lines above line
/// `n`, or heads a comment block that reaches into that window.
fn has_safety_comment(lines: &[String], n: usize) -> bool {
    let window = n.saturating_sub(SAFETY_WINDOW)..n;
    let mut in_comment_block = false;
    for i in window.clone().rev().chain((0..window.start).rev()) {
        let line = lines[i].trim_start();
        let is_comment = line.starts_with("//");
        let reachable = window.contains(&i) || (in_comment_block && is_comment);
        if !reachable {
            return false;
        }
        if line.starts_with("// SAFETY:") {
            return true;
        }
        in_comment_block = is_comment;
    }
    false
}

// ---------------------------------------------------------------- rule 2: module doc

fn check_module_doc(source: &Source) -> Option<Offence> {
    let Some(n) = source.lines.iter().position(|l| !l.trim().is_empty()) else {
        return Some(Offence {
            path: source.path.clone(),
            line: 1,
            rule: MISSING_MODULE_DOC,
            text: "empty file; it should open with a //! line".into(),
        });
    };
    let opens_with_doc = source.lines[n].trim_start().starts_with("//!");
    (!opens_with_doc).then(|| source.offence(n, MISSING_MODULE_DOC))
}

// ---------------------------------------------------------------- rule 3: bincode

fn check_bincode(source: &Source) -> Vec<Offence> {
    if source.path.starts_with("protocol/src/") {
        return Vec::new();
    }
    (0..source.code.len())
        .filter(|&n| !word_positions(&source.code[n], "bincode").is_empty())
        .map(|n| source.offence(n, BINCODE_OUTSIDE_PROTOCOL))
        .collect()
}

/// Only the workspace manifest (which pins the version) and the protocol crate's
/// may name bincode; every other crate reaches it through `protocol`.
fn check_manifest(path: &str, text: &str) -> Vec<Offence> {
    if path == "Cargo.toml" || path == "protocol/Cargo.toml" {
        return Vec::new();
    }
    let names_bincode = |line: &str| {
        line.split('#')
            .next()
            .is_some_and(|v| v.contains("bincode"))
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| names_bincode(line))
        .map(|(n, line)| Offence {
            path: path.to_owned(),
            line: n + 1,
            rule: BINCODE_OUTSIDE_PROTOCOL,
            text: line.trim().to_owned(),
        })
        .collect()
}

// ---------------------------------------------------------------- rule 4: length

fn check_length(source: &Source) -> Option<Offence> {
    let lines = source.lines.len();
    (lines > MAX_LINES && !is_test_file(&source.path)).then(|| Offence {
        path: source.path.clone(),
        line: MAX_LINES + 1,
        rule: FILE_TOO_LONG,
        text: format!("{lines} lines; the limit outside tests is {MAX_LINES}"),
    })
}

/// Tests and fixtures: under a `tests` or `fixtures` directory, or a
/// `tests.rs`/`proptests.rs` module.
fn is_test_file(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    let name = parts.next().unwrap_or_default();
    let in_test_dir = parts.any(|d| d == "tests" || d == "fixtures");
    in_test_dir || name == "tests.rs" || name == "proptests.rs"
}

// ---------------------------------------------------------------- rule 5: kind matches

fn check_kind_matches(source: &Source) -> Vec<Offence> {
    if !source.path.starts_with("ipcd/src/") {
        return Vec::new();
    }
    let code = source.code.join("\n");
    kind_wildcard_lines(&code)
        .into_iter()
        .map(|n| source.offence(n, KIND_MATCH_WILDCARD))
        .collect()
}

/// 0-based lines of `_ =>` arms in matches with an arm naming a kind enum.
/// `code` must have comments and literals blanked ([`code_only`]).
fn kind_wildcard_lines(code: &str) -> Vec<usize> {
    wildcard_arms(code)
        .filter(|&at| {
            enclosing_match_body(code, at).is_some_and(|body| arm_patterns(body).any(names_kind))
        })
        .map(|at| code[..at].matches('\n').count())
        .collect()
}

/// Byte offsets of every `_` that is a whole pattern followed by `=>`.
fn wildcard_arms(code: &str) -> impl Iterator<Item = usize> + '_ {
    word_positions(code, "_")
        .into_iter()
        .filter(move |&at| code[at + 1..].trim_start().starts_with("=>"))
}

/// The body (between the braces) of the `match` whose arm is at `at`: the
/// nearest unclosed `{` before it, if the text leading up to that brace is a
/// `match` head.
fn enclosing_match_body(code: &str, at: usize) -> Option<&str> {
    let bytes = code.as_bytes();
    let mut depth = 0;
    let open = (0..at).rev().find(|&i| match bytes[i] {
        b'}' => {
            depth += 1;
            false
        }
        b'{' if depth == 0 => true,
        b'{' => {
            depth -= 1;
            false
        }
        _ => false,
    })?;
    let head_start = code[..open].rfind([';', '{', '}']).map_or(0, |i| i + 1);
    if word_positions(&code[head_start..open], "match").is_empty() {
        return None;
    }
    let close = matching_close(code, open)?;
    Some(&code[open + 1..close])
}

/// The offset of the bracket closing the `{` at `open`.
fn matching_close(code: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, b) in code.bytes().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' if depth == 1 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// The pattern (and guard) of each arm of a match body: the text before each
/// top-level `=>`, back to the end of the previous arm (a top-level `,`, or the
/// `}` closing a block arm).
fn arm_patterns(body: &str) -> impl Iterator<Item = &str> {
    let bytes = body.as_bytes();
    let (mut depth, mut start, mut in_arm_body) = (0i32, 0, false);
    let mut patterns = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' => depth -= 1,
            b'}' => {
                depth -= 1;
                if depth == 0 && in_arm_body {
                    (start, in_arm_body) = (i + 1, false);
                }
            }
            b',' if depth == 0 => (start, in_arm_body) = (i + 1, false),
            b'=' if depth == 0 && bytes.get(i + 1) == Some(&b'>') && !in_arm_body => {
                patterns.push(&body[start..i]);
                in_arm_body = true;
            }
            _ => {}
        }
    }
    patterns.into_iter()
}

/// Whether `pattern` names a path into an enum called `Kind…` (`KindParams::Mq`).
fn names_kind(pattern: &str) -> bool {
    identifiers(pattern)
        .any(|(at, word)| word.starts_with("Kind") && pattern[at + word.len()..].starts_with("::"))
}

// ---------------------------------------------------------------- tokens

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Identifiers (and keywords, and `_`) in `code`, with their byte offsets.
fn identifiers(code: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in code.char_indices().chain([(code.len(), ' ')]) {
        match (start, is_ident(c)) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                words.push((s, &code[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    words.into_iter()
}

/// Offsets of `word` as a whole identifier in `code`.
fn word_positions(code: &str, word: &str) -> Vec<usize> {
    identifiers(code)
        .filter(|(_, w)| *w == word)
        .map(|(at, _)| at)
        .collect()
}

/// `text` with every comment and string, byte-string and char literal replaced
/// by spaces (newlines kept, so lines still line up).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let len = non_code_len(&chars, i).min(chars.len() - i);
        if len == 0 {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        for &c in &chars[i..i + len] {
            out.push(if c == '\n' { '\n' } else { ' ' });
        }
        i += len;
    }
    out
}

/// Length of the comment or literal starting at `i`; 0 if code starts there.
fn non_code_len(c: &[char], i: usize) -> usize {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let starts_token = i == 0 || !is_ident(c[i - 1]);
    match (at(i), at(i + 1)) {
        ('/', '/') => (i..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len()) - i,
        ('/', '*') => block_comment_len(c, i),
        ('"', _) => quoted_len(c, i),
        ('\'', _) => char_literal_len(c, i),
        ('b', '\'') if starts_token => prefixed(char_literal_len(c, i + 1)),
        ('b' | 'c', '"') if starts_token => prefixed(quoted_len(c, i + 1)),
        ('b' | 'c', 'r') if starts_token => prefixed(raw_string_len(c, i + 1)),
        ('r', _) if starts_token => raw_string_len(c, i),
        _ => 0,
    }
}

/// A literal's length with its one-letter prefix (`b`, `c`), if there is a literal.
fn prefixed(len: usize) -> usize {
    if len == 0 { 0 } else { len + 1 }
}

/// `/* … */`, nested.
fn block_comment_len(c: &[char], i: usize) -> usize {
    let (mut depth, mut k) = (0, i);
    while k + 1 < c.len() {
        match (c[k], c[k + 1]) {
            ('/', '*') => (depth, k) = (depth + 1, k + 2),
            ('*', '/') if depth == 1 => return k + 2 - i,
            ('*', '/') => (depth, k) = (depth - 1, k + 2),
            _ => k += 1,
        }
    }
    c.len() - i
}

/// `"…"` with backslash escapes, starting at the opening quote.
fn quoted_len(c: &[char], i: usize) -> usize {
    let mut k = i + 1;
    while k < c.len() {
        match c[k] {
            '\\' => k += 2,
            '"' => return k + 1 - i,
            _ => k += 1,
        }
    }
    c.len() - i
}

/// `r"…"`, `r#"…"#`, … starting at the `r`; 0 for a raw identifier or plain `r`.
fn raw_string_len(c: &[char], i: usize) -> usize {
    let hashes = c[i + 1..].iter().take_while(|&&ch| ch == '#').count();
    if c.get(i + 1 + hashes) != Some(&'"') {
        return 0;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain("#".repeat(hashes).chars())
        .collect();
    let body = i + 2 + hashes;
    (body..c.len())
        .find(|&k| c[k..].starts_with(&close))
        .map_or(c.len() - i, |k| k + close.len() - i)
}

/// `'x'` or `'\n'`, starting at the quote; 0 for a lifetime or label (`'a`).
fn char_literal_len(c: &[char], i: usize) -> usize {
    match (c.get(i + 1), c.get(i + 2)) {
        (Some('\\'), _) => (i + 3..c.len())
            .find(|&k| c[k] == '\'')
            .map_or(0, |k| k + 1 - i),
        (Some(_), Some('\'')) => 3,
        _ => 0,
    }
}

// ---------------------------------------------------------------- the checker's own tests

#[cfg(test)]
mod checker {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_wildcard_in_a_kind_match_is_caught() {
        let src = code_only(
            "fn f(p: &KindParams) -> u8 {\n\
             \x20   match p {\n\
             \x20       KindParams::Mq(_) => 1,\n\
             \x20       _ => 0,\n\
             \x20   }\n\
             }\n",
        );
        assert_eq!(kind_wildcard_lines(&src), [3]);
    }

    #[test]
    fn a_wildcard_in_another_match_is_not() {
        let src = code_only(
            "fn f(a: Access, k: Kind) -> u8 {\n\
             \x20   let x = match a { Access::Read => 1, _ => 2 };\n\
             \x20   match k {\n\
             \x20       Kind::Mq => match a {\n\
             \x20           Access::Write => { 3 }\n\
             \x20           _ => 4,\n\
             \x20       },\n\
             \x20       Kind::Pipe | Kind::Fifo => x,\n\
             \x20   }\n\
             }\n",
        );
        assert_eq!(kind_wildcard_lines(&src), Vec::<usize>::new());
    }

    #[test]
    fn a_kind_match_nested_in_another_is_caught_after_block_arms() {
        let src = code_only(
            "match a {\n\
             \x20   Access::Read => {\n\
             \x20       match op { KindOp::Pipe(PipeOp::Close { .. }) => {} _ => {} }\n\
             \x20   }\n\
             \x20   _ => {}\n\
             }\n",
        );
        assert_eq!(kind_wildcard_lines(&src), [2]);
    }

    #[test]
    fn comments_and_literals_are_not_code() {
        let code = code_only(
            "let s = \"unsafe { }\"; // unsafe {\n\
             let r = r#\"a \" unsafe\"#; /* unsafe /* nested */ unsafe */ let c = '\"';\n\
             let b = b'\\''; fn f<'a>(x: &'a u8) {} unsafe { x }\n",
        );
        let found: Vec<usize> = code
            .lines()
            .enumerate()
            .filter(|(_, l)| !word_positions(l, "unsafe").is_empty())
            .map(|(n, _)| n)
            .collect();
        assert_eq!(found, [2]);
        assert!(code.contains("fn f<'a>(x: &'a u8)"), "{code}");
        assert!(word_positions("#![deny(unsafe_code)]", "unsafe").is_empty());
    }

    #[test]
    fn safety_comments_count_within_three_lines_or_through_their_block() {
        let src = lines(
            "// SAFETY: a\n\
             x();\n\
             y();\n\
             unsafe { a }\n\
             z();\n\
             unsafe { b }\n\
             // SAFETY: c\n\
             // and more\n\
             // and more\n\
             // and more\n\
             unsafe { c }\n",
        );
        assert!(has_safety_comment(&src, 3));
        assert!(!has_safety_comment(&src, 5));
        assert!(has_safety_comment(&src, 10));
    }

    #[test]
    fn unsafe_is_allowed_in_sys_and_the_bench_fd_helper_only() {
        for ok in [
            "ipcd/src/sys/fd.rs",
            "ipc-client/src/sys.rs",
            "ipc-client/src/bin/ipcctl/bench/fds.rs",
            "ipcctl/src/bench/fds.rs",
            "bench/src/fds.rs",
            "bench/src/sys.rs",
        ] {
            assert!(unsafe_allowed(ok), "{ok}");
        }
        for bad in [
            "ipcd/src/registry.rs",
            "protocol/src/sys.rs",
            "ipc-client/src/bin/ipcctl/fds.rs",
            "bench/src/main.rs",
        ] {
            assert!(!unsafe_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn test_files_are_recognised() {
        assert!(is_test_file("tests/tests/e2e/pipe.rs"));
        assert!(is_test_file("ipc-client/src/mq/tests.rs"));
        assert!(is_test_file("protocol/src/proptests.rs"));
        assert!(!is_test_file("ipc-client/src/stream.rs"));
    }
}
