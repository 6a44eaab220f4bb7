//! What may reach a GitHub Actions runner's log. The runner reads every line a step prints (on
//! stdout and stderr alike) and acts on workflow commands in it: a line whose first non-blank
//! characters are `::` (`::add-mask::`, `::set-output`, `::error`, `::stop-commands::`, …), and
//! the legacy `##[command]` form, recognised anywhere in a line. It splits lines at `\n`, `\r\n`
//! and a bare `\r`, and trims leading Unicode whitespace before looking for `::`.
//!
//! The runner compares with .NET's culture-sensitive `StartsWith` / `IndexOf`, which on Linux
//! (ICU) skip "ignorable" characters: controls, zero-width and other format characters. So a
//! zero-width space in front of `::` does not stop a command there (`"\u{200B}::x".StartsWith("::")`
//! is true), and `#\u{200B}#[` is found as `##[`. Hence the escapes below use visible
//! characters, and invisible ones are shown as escapes first.
//!
//! Everything the tool prints that an agent could have influenced (output lines and tails, file
//! names, artifact paths, error messages quoting a server or an agent, anything read back from a
//! state file an agent could edit) goes through [`neutralize`] (or [`neutralize_json`] for JSON),
//! or [`frame`] for a block of agent output. The tool's own commands are built by [`command`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters a linguistic comparison may skip: controls other than tab and newline (a bare
/// `\r` ends a line for the runner), and Unicode's default-ignorable and format characters.
fn invisible(c: char) -> bool {
    if c.is_control() {
        return c != '\t' && c != '\n';
    }
    matches!(
        c as u32,
        0x00AD
            | 0x034F
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1345F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// `text` without ANSI escape sequences (colours, cursor movement, OSC titles and links).
pub(crate) fn strip_ansi(text: &str) -> Cow<'_, str> {
    if !text.contains('\x1b') {
        return Cow::Borrowed(text);
    }
    static ANSI: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let ansi = ANSI.get_or_init(|| {
        regex::Regex::new(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]")
            .expect("valid regex")
    });
    ansi.replace_all(text, "")
}

/// Text that cannot issue a workflow command wherever it is printed, as long as the tool's own
/// text around it neither ends a line start with `:` or `##` nor continues with `[`:
///
/// - ANSI escapes are removed; other invisible characters are shown as `\u{…}` (a bare `\r` as
///   `\r`), so that no character can end a line or hide between a command's characters;
/// - a line (or the text itself) whose first non-blank character is `:` gets a `\` in front of
///   it: `::error::x` is shown as `\::error::x`;
/// - `##[` is shown as `##\[`.
///
/// Line breaks (`\n`) stay line breaks. Borrowed when nothing needed changing.
pub(crate) fn neutralize(text: &str) -> Cow<'_, str> {
    let stripped = strip_ansi(text);
    if is_plain(&stripped) {
        return stripped;
    }
    let mut out = String::with_capacity(stripped.len() + 8);
    let mut line_start = true;
    for c in stripped.chars() {
        if c == '\n' {
            out.push('\n');
            line_start = true;
            continue;
        }
        if invisible(c) {
            match c {
                '\r' => out.push_str("\\r"),
                _ => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
            }
            line_start = false;
            continue;
        }
        if line_start && !c.is_whitespace() {
            if c == ':' {
                out.push('\\');
            }
            line_start = false;
        }
        if c == '[' && out.ends_with("##") {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Whether `text` needs no change from [`neutralize`]: printable ASCII, tabs and newlines, no
/// line starting with `:`, no `##[`.
fn is_plain(text: &str) -> bool {
    let printable = text.bytes().all(|b| matches!(b, b' '..=b'~' | b'\t' | b'\n'));
    printable && !text.contains("##[") && text.split('\n').all(|l| !l.trim_start_matches([' ', '\t']).starts_with(':'))
}

/// JSON text (as serde_json writes it) made safe the same way, staying the same JSON: inside
/// strings, invisible characters become `\uXXXX` escapes and `##[` becomes `##\u005b`. (Outside
/// strings JSON has neither, and no line of it starts with `:`.)
pub(crate) fn neutralize_json(json: &str) -> Cow<'_, str> {
    if json.bytes().all(|b| matches!(b, b' '..=b'~' | b'\t' | b'\n' | b'\r')) && !json.contains("##[") {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if invisible(c) && !matches!(c, '\r' | '\t' | '\n') {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{u:04x}");
            }
        } else if c == '[' && out.ends_with("##") {
            out.push_str("\\u005b");
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `::name k=v,…::message`, the tool's own workflow command, with GitHub's escaping; the
/// property values and the message are neutralized first (they may quote agent text).
pub(crate) fn command(name: &str, props: &[(&str, String)], message: &str) -> String {
    let props: Vec<String> = props.iter().map(|(k, v)| format!("{k}={}", escape_property(&neutralize(v)))).collect();
    let sep = if props.is_empty() { "" } else { " " };
    format!("::{name}{sep}{}::{}\n", props.join(","), escape_data(&neutralize(message)))
}

/// A workflow command's data: `%`, `\r` and `\n` escaped, so that it stays on its line.
pub(crate) fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// A block of untrusted text (agent output) framed so that the runner processes no workflow
/// command in it: `::stop-commands::TOKEN`, the text (neutralized too), `::TOKEN::`. The token
/// is 128 bits from the operating system's random source, new for every frame, and never one
/// that occurs in the text (which could otherwise end the frame early).
pub(crate) fn frame(text: &str) -> String {
    frame_with(text, random_token)
}

fn frame_with(text: &str, mut token: impl FnMut() -> String) -> String {
    if text.is_empty() {
        return String::new();
    }
    let body = neutralize(text);
    let lower = body.to_ascii_lowercase();
    // The runner compares the token case-insensitively.
    let Some(token) = (0..16).map(|_| token()).find(|t| !t.is_empty() && !lower.contains(&t.to_ascii_lowercase()))
    else {
        // No usable token (only with a broken random source): the neutralized text alone is
        // still safe.
        let mut s = body.into_owned();
        if !s.ends_with('\n') {
            s.push('\n');
        }
        return s;
    };
    let mut s = format!("::stop-commands::{token}\n{body}");
    if !s.ends_with('\n') {
        s.push('\n');
    }
    let _ = writeln!(s, "::{token}::");
    s
}

/// `orchestrator-` and 32 hex digits from the OS random source (a hash keyed by the standard
/// library's OS-seeded keys if that source fails).
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        use std::hash::{BuildHasher, Hasher};
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        for (i, half) in bytes.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(nanos);
            h.write_usize(i);
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    let mut s = String::from("orchestrator-");
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(neutralize("build/writer: exit code 1\n  done: a:b"), Cow::Borrowed(_)));
        assert!(matches!(neutralize_json("{\n  \"a\": \"b#[\"\n}"), Cow::Borrowed(_)));
    }

    #[test]
    fn commands_at_a_line_start_are_escaped_visibly() {
        assert_eq!(neutralize("::error::pwn"), "\\::error::pwn");
        assert_eq!(neutralize("  ::add-mask::x"), "  \\::add-mask::x");
        assert_eq!(neutralize("ok\n\t::set-output name=a::b"), "ok\n\t\\::set-output name=a::b");
        // Unicode whitespace is trimmed by the runner too.
        assert_eq!(neutralize("\u{2003}\u{3000}::warning::y"), "\u{2003}\u{3000}\\::warning::y");
        // A single colon too: the tool's text after it could supply the second.
        assert_eq!(neutralize(":"), "\\:");
    }

    #[test]
    fn line_breaks_the_runner_sees_are_visible() {
        assert_eq!(neutralize("x\r::error::pwn"), "x\\r::error::pwn");
        assert_eq!(neutralize("a\r\nb"), "a\\r\nb");
        assert_eq!(neutralize("\u{85}::error::x"), "\\u{85}::error::x");
    }

    #[test]
    fn invisible_characters_cannot_hide_a_command() {
        // ICU skips these when comparing: shown, they are ordinary characters.
        assert_eq!(neutralize("\u{200B}::error::x"), "\\u{200b}::error::x");
        assert_eq!(neutralize(":\u{200D}:error::x"), "\\:\\u{200d}:error::x");
        assert_eq!(neutralize("#\u{FEFF}#[error]x"), "#\\u{feff}#[error]x");
        assert_eq!(neutralize("\x00::x"), "\\u{0}::x");
        assert_eq!(neutralize("\u{E0041}::x"), "\\u{e0041}::x");
    }

    #[test]
    fn legacy_commands_are_broken_anywhere() {
        assert_eq!(neutralize("see ##[error]pwn and ###[x"), "see ##\\[error]pwn and ###\\[x");
        // An ANSI colour between the characters is removed, then the result is broken up.
        assert_eq!(neutralize("##\x1b[0m[error]x"), "##\\[error]x");
        assert_eq!(neutralize("\x1b[31m::error::x\x1b[0m"), "\\::error::x");
    }

    #[test]
    fn json_stays_json() {
        let value = serde_json::json!({"path": "##[error]x\u{200B}\u{1F600}\u{E0041}", "n": 1});
        let json = serde_json::to_string_pretty(&value).unwrap();
        let safe = neutralize_json(&json);
        assert!(!safe.contains("##["), "{safe}");
        assert!(!safe.contains('\u{200B}'), "{safe}");
        assert!(!safe.contains('\u{E0041}'), "{safe}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), value);
    }

    #[test]
    fn own_commands_neutralize_and_escape() {
        let c = command("error", &[("title", "a: b, c".into()), ("file", "x.yaml".into())], "50%\nnext");
        assert_eq!(c, "::error title=a%3A b%2C c,file=x.yaml::50%25%0Anext\n");
        let c = command("error", &[("title", "t".into())], "x\r##[warning]y\n::add-mask::z");
        assert_eq!(c, "::error title=t::x\\r##\\[warning]y%0A\\::add-mask::z\n");
    }

    #[test]
    fn frames_use_a_fresh_unguessable_token() {
        let q = frame("::add-mask::x\n::set-output name=a::b");
        let first = q.lines().next().unwrap();
        let token = first.strip_prefix("::stop-commands::").unwrap();
        assert_eq!(token.len(), "orchestrator-".len() + 32);
        assert_eq!(q.lines().last().unwrap(), format!("::{token}::"));
        assert!(q.contains("\n\\::add-mask::x\n"), "{q}");
        let again = frame("x");
        assert_ne!(again.lines().next().unwrap(), first, "a new token per frame");
        assert_eq!(frame(""), "");
    }

    #[test]
    fn a_token_found_in_the_text_is_not_used() {
        let mut tokens = vec!["tok-b".to_owned(), "TOK-A".to_owned()];
        let q = frame_with("agent says ::tok-a::", || tokens.pop().unwrap_or_default());
        assert!(q.starts_with("::stop-commands::tok-b\n"), "{q}");
        assert!(q.ends_with("::tok-b::\n"), "{q}");
        // A source that only yields tokens from the text: no frame, still neutralized.
        let q = frame_with("::x::", || "x".to_owned());
        assert_eq!(q, "\\::x::\n");
    }

    #[test]
    fn random_tokens_differ() {
        let a: std::collections::HashSet<String> = (0..100).map(|_| random_token()).collect();
        assert_eq!(a.len(), 100);
    }
}
