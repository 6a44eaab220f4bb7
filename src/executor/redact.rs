//! Secret values, and their common encodings, replaced with `***` in everything the tool writes.
//!
//! For each secret the redactor looks for the value itself and, for values of at least
//! [`MIN_ENCODED`] bytes, its hex (lower and upper case), its base64 (standard and URL-safe
//! alphabets; the stable inner part of the encoding at each of the three byte alignments, so the
//! secret is found inside a longer base64 stream, padded or not), its percent-encoding (reserved
//! bytes only, or every byte; upper- and lower-case hex) and its JSON-escaped forms when they
//! differ from the value.
//!
//! Matching ignores ASCII whitespace, in the text and in the patterns: a value wrapped over lines
//! (`base64` breaks at 76 columns, `xxd -p` at 60) or spaced out (`od -An -tx1`) is found too.
//! Each line's part of a match becomes `***`; line breaks stay. All patterns are searched in one
//! pass (Aho-Corasick, leftmost-longest), so the cost does not grow with the number of secrets.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use base64::Engine as _;

/// Environment variables whose values are never written anywhere.
pub(crate) const SECRET_VARS: [&str; 5] =
    ["GITHUB_TOKEN", "GH_TOKEN", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ACTIONS_RUNTIME_TOKEN"];

/// Values shorter than this (whitespace aside) are not secrets worth redacting: they would
/// replace ordinary words and protect nothing.
pub(crate) const MIN_PLAIN: usize = 6;

/// Encodings are registered only for values of at least this many bytes. A short value's
/// encodings are short too, and common: the hex of a 6-byte value is 12 hex digits (a prefix of
/// many a commit id or hash), and the stable inner part of its base64 at the worst alignment is 5
/// characters, which ordinary base64 data contains by chance. From 8 bytes on, the shortest
/// pattern is 10 characters.
pub(crate) const MIN_ENCODED: usize = 8;

/// Up to this many pattern bytes, the automaton is a DFA.
const DFA_PATTERN_BYTES: usize = 32 * 1024;

/// Replaces secret values (and their encodings) with `***`.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// The values as given, for `::add-mask::`.
    secrets: Vec<String>,
    /// What is searched for, ASCII whitespace removed.
    patterns: Vec<Vec<u8>>,
    /// Built on first use after the last [`add`](Self::add).
    matcher: std::sync::OnceLock<Option<Arc<AhoCorasick>>>,
    /// The longest pattern (non-whitespace bytes).
    max_len: usize,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values themselves.
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

const fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

fn squeeze(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = squeeze_into(bytes, &mut out);
    out.truncate(n);
    out
}

/// `bytes` without ASCII whitespace, into the first bytes of `out` (grown as needed, never
/// cleared); returns how many. Branch-free: every byte is stored, and the position advances
/// past the ones kept.
fn squeeze_into(bytes: &[u8], out: &mut Vec<u8>) -> usize {
    const SPACE: [bool; 256] = {
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            t[i] = is_space(i as u8);
            i += 1;
        }
        t
    };
    if out.len() < bytes.len() {
        out.resize(bytes.len(), 0);
    }
    let out = &mut out[..bytes.len()];
    let mut n = 0;
    for &b in bytes {
        out[n] = b;
        n += usize::from(!SPACE[b as usize]);
    }
    n
}

impl Redactor {
    /// Redact the values of the known secret variables set in this process's environment.
    pub(crate) fn from_env() -> Redactor {
        let mut r = Redactor::default();
        for var in SECRET_VARS {
            if let Ok(v) = std::env::var(var) {
                r.add(&v);
            }
        }
        r
    }

    /// Redact `secret` (and its encodings, if it is long enough) from now on.
    pub(crate) fn add(&mut self, secret: &str) {
        if squeeze(secret.as_bytes()).len() < MIN_PLAIN || self.secrets.iter().any(|s| s == secret) {
            return;
        }
        self.secrets.push(secret.to_owned());
        let mut variants = vec![secret];
        if secret.trim() != secret {
            // `echo $TOKEN | base64` and `printf %s "$TOKEN" | base64` differ when the value
            // ends with a line break.
            variants.push(secret.trim());
        }
        for v in variants {
            let mut found = vec![v.as_bytes().to_vec()];
            if v.len() >= MIN_ENCODED {
                found.extend(encodings(v));
            }
            for p in found {
                let p = squeeze(&p);
                if p.len() >= MIN_PLAIN && !self.patterns.contains(&p) {
                    self.patterns.push(p);
                }
            }
        }
        self.max_len = self.patterns.iter().map(Vec::len).max().unwrap_or(0);
        self.matcher = std::sync::OnceLock::new();
    }

    fn matcher(&self) -> Option<&AhoCorasick> {
        self.matcher
            .get_or_init(|| {
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    // A DFA scans fastest; its memory grows with the patterns (a few MiB for a
                    // handful of tokens), so very long secrets (keys in PEM) get the NFA.
                    .kind(
                        (self.patterns.iter().map(Vec::len).sum::<usize>() <= DFA_PATTERN_BYTES)
                            .then_some(AhoCorasickKind::DFA),
                    )
                    .build(&self.patterns)
                    .ok()
                    .map(Arc::new)
            })
            .as_deref()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The secret values as given (for `::add-mask::` on a GitHub runner; the runner masks
    /// their usual encodings itself).
    pub(crate) fn values(&self) -> impl Iterator<Item = &str> + '_ {
        self.secrets.iter().map(String::as_str)
    }

    /// The longest pattern, in non-whitespace bytes: a stream redactor that keeps this much
    /// unwritten text can find a secret that straddles two reads.
    pub(crate) fn window(&self) -> usize {
        self.max_len
    }

    /// The byte ranges of `text` that hold a secret (or an encoding of one), in order and
    /// disjoint. A range starts and ends on non-whitespace bytes and may span lines.
    pub(crate) fn find(&self, text: &[u8]) -> Vec<(usize, usize)> {
        if self.patterns.is_empty() || text.is_empty() {
            return Vec::new();
        }
        // The view is built in a buffer reused by the thread (the sink calls this per read).
        thread_local! {
            static VIEW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let found: Vec<(usize, usize)> = VIEW.with(|cell| {
            let mut owned = Vec::new();
            let mut borrowed = cell.try_borrow_mut();
            let view = match borrowed.as_deref_mut() {
                Ok(v) => v,
                Err(_) => &mut owned,
            };
            let n = squeeze_into(text, view);
            let found = match self.matcher() {
                Some(m) => m.find_iter(&view[..n]).map(|m| (m.start(), m.end())).collect(),
                None => self.find_slowly(&view[..n]),
            };
            if view.len() > 1 << 20 {
                // Not kept for a rare large text.
                *view = Vec::new();
            }
            found
        });
        if found.is_empty() {
            return Vec::new();
        }
        // Map the view's positions back to `text`: one forward walk, as matches come in order.
        let mut ranges: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        let (mut at, mut seen) = (0usize, 0usize); // text position, view bytes before it
        let advance = |target: usize, at: &mut usize, seen: &mut usize| {
            // To the text position of view byte `target`.
            while *at < text.len() && (is_space(text[*at]) || *seen < target) {
                if !is_space(text[*at]) {
                    *seen += 1;
                }
                *at += 1;
            }
        };
        for (s, e) in found {
            advance(s, &mut at, &mut seen);
            let start = at;
            advance(e - 1, &mut at, &mut seen);
            let end = (at + 1).min(text.len());
            match ranges.last_mut() {
                Some(last) if last.1 >= start => last.1 = end,
                _ => ranges.push((start, end)),
            }
        }
        ranges
    }

    /// Leftmost-longest matches without the automaton (only if it could not be built).
    fn find_slowly(&self, view: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < view.len() {
            let hit = self
                .patterns
                .iter()
                .filter_map(|p| memchr::memmem::find(&view[i..], p).map(|at| (i + at, i + at + p.len())))
                .min_by_key(|&(s, e)| (s, std::cmp::Reverse(e)));
            let Some((s, e)) = hit else { break };
            out.push((s, e));
            i = e;
        }
        out
    }

    /// `text` with every range from [`find`](Self::find) replaced: each line's part becomes
    /// `***`, line breaks stay.
    pub(crate) fn apply(text: &[u8], ranges: &[(usize, usize)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        for &(s, e) in ranges {
            out.extend_from_slice(&text[at..s]);
            let mut fresh = true;
            for &b in &text[s..e] {
                if b == b'\n' || b == b'\r' {
                    out.push(b);
                    fresh = true;
                } else if fresh {
                    out.extend_from_slice(b"***");
                    fresh = false;
                }
            }
            at = e;
        }
        out.extend_from_slice(&text[at..]);
        out
    }

    /// `text` with every secret replaced; borrowed when there is nothing to replace.
    pub(crate) fn redact<'a>(&self, text: &'a [u8]) -> Cow<'a, [u8]> {
        let ranges = self.find(text);
        if ranges.is_empty() { Cow::Borrowed(text) } else { Cow::Owned(Self::apply(text, &ranges)) }
    }

    /// `text` with every secret replaced; borrowed when there is nothing to replace.
    pub(crate) fn redact_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let ranges = self.find(text.as_bytes());
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        // Ranges start and end on whole characters (the patterns are UTF-8, and only ASCII
        // whitespace is skipped), so this stays valid UTF-8; lossy only as a safeguard.
        Cow::Owned(String::from_utf8_lossy(&Self::apply(text.as_bytes(), &ranges)).into_owned())
    }

    /// `text` with every secret replaced.
    pub(crate) fn redact_str(&self, text: &str) -> String {
        self.redact_text(text).into_owned()
    }

    /// Every string in `value` redacted, object keys included (keys that become equal merge).
    pub(crate) fn redact_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(r) = self.redact_text(s) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                if map.keys().any(|k| !self.find(k.as_bytes()).is_empty()) {
                    *map = std::mem::take(map).into_iter().map(|(k, v)| (self.redact_str(&k), v)).collect();
                }
                map.values_mut().for_each(|v| self.redact_json(v));
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// The encodings of `value` worth looking for (duplicates and the value itself are dropped by
/// the caller).
fn encodings(value: &str) -> Vec<Vec<u8>> {
    let bytes = value.as_bytes();
    let mut out: Vec<Vec<u8>> = Vec::new();
    let hex: String = bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    out.push(hex.to_ascii_uppercase().into_bytes());
    out.push(hex.into_bytes());
    // base64: after `a` unknown bytes, the first characters depend on them and are left out; at
    // the end, the characters of a partial group that take only the value's bits are kept.
    for engine in [base64::engine::general_purpose::STANDARD_NO_PAD, base64::engine::general_purpose::URL_SAFE_NO_PAD] {
        for (a, skip) in [(0usize, 0usize), (1, 2), (2, 3)] {
            let mut input = vec![0u8; a];
            input.extend_from_slice(bytes);
            let encoded = engine.encode(&input);
            let total = input.len();
            let end = total / 3 * 4 + total % 3;
            if end > skip {
                out.push(encoded.as_bytes()[skip..end].to_vec());
            }
        }
    }
    // Percent-encoding: reserved bytes only (URLs, forms) or every byte.
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    for upper in [true, false] {
        let (mut reserved, mut every, mut form) = (String::new(), String::new(), String::new());
        for &b in bytes {
            let pct = if upper { format!("%{b:02X}") } else { format!("%{b:02x}") };
            every.push_str(&pct);
            if unreserved(b) {
                reserved.push(b as char);
                form.push(b as char);
            } else {
                reserved.push_str(&pct);
                form.push_str(if b == b' ' { "+" } else { &pct });
            }
        }
        out.extend([reserved.into_bytes(), every.into_bytes(), form.into_bytes()]);
    }
    // JSON string contents: as serde_json writes them, with `\/`, and ASCII-only (`\u00e9`).
    if let Ok(json) = serde_json::to_string(value) {
        let inner = &json[1..json.len() - 1];
        let mut ascii = String::new();
        for c in inner.chars() {
            if c.is_ascii() {
                ascii.push(c);
            } else {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(ascii, "\\u{u:04x}");
                }
            }
        }
        for form in [inner, ascii.as_str()] {
            out.push(form.as_bytes().to_vec());
            out.push(form.replace('/', "\\/").into_bytes());
        }
    }
    out.retain(|p| p.as_slice() != bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    const SECRET: &str = "ghp_Secr3t/Value+With?Odd=chars~xyz";

    fn red() -> Redactor {
        let mut r = Redactor::default();
        r.add(SECRET);
        r
    }

    fn gone(text: &str) {
        let out = red().redact_str(text);
        assert!(out.contains("***"), "not redacted: {text:?} → {out:?}");
        assert!(!out.contains("Secr3t"), "{out:?}");
    }

    #[test]
    fn the_plain_value_anywhere() {
        assert_eq!(red().redact_str(&format!("token={SECRET} ok")), "token=*** ok");
        assert_eq!(red().redact_str("nothing here"), "nothing here");
        assert!(matches!(red().redact_text("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn base64_at_every_alignment_and_in_both_alphabets() {
        let r = red();
        for prefix in ["", "x", "xy", "xyz", "Authorization: Basic "] {
            for engine in [STANDARD, URL_SAFE_NO_PAD] {
                let input = format!("{prefix}{SECRET}\n");
                let encoded = base64::Engine::encode(&engine, input.as_bytes());
                let out = r.redact_str(&format!("b64: {encoded} end"));
                assert!(out.contains("***") && out.ends_with(" end"), "{prefix:?}: {encoded} → {out}");
                // What is left cannot be decoded back to the secret.
                assert!(!out.contains(&encoded), "{out}");
            }
        }
        // Also found when the header is encoded with the secret (`user:token`).
        let basic = base64::Engine::encode(&STANDARD, format!("x-access-token:{SECRET}"));
        assert!(r.redact_str(&basic).contains("***"));
    }

    #[test]
    fn hex_percent_and_json() {
        let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
        gone(&hex);
        gone(&hex.to_uppercase());
        gone("ghp_Secr3t%2FValue%2BWith%3FOdd%3Dchars~xyz");
        gone("ghp_Secr3t%2fValue%2bWith%3fOdd%3dchars~xyz");
        let every: String = SECRET.bytes().map(|b| format!("%{b:02X}")).collect();
        gone(&every);
        let mut r = Redactor::default();
        r.add("pa\"ss/wörd-long");
        let json = serde_json::to_string(&serde_json::json!({"k": "pa\"ss/wörd-long"})).unwrap();
        assert_eq!(r.redact_str(&json), "{\"k\":\"***\"}");
        assert_eq!(r.redact_str("pa\\\"ss\\/w\\u00f6rd-long"), "***");
    }

    #[test]
    fn wrapped_and_spaced_encodings() {
        let encoded = base64::Engine::encode(&STANDARD, format!("{}{SECRET}", "p".repeat(40)));
        let wrapped: String =
            encoded.as_bytes().chunks(20).map(|c| format!("{}\n", String::from_utf8_lossy(c))).collect();
        let out = red().redact_str(&wrapped);
        assert!(out.contains("***"), "{out}");
        assert_eq!(out.lines().count(), wrapped.lines().count(), "line breaks stay: {out}");
        let od: String = SECRET
            .bytes()
            .map(|b| format!(" {b:02x}"))
            .collect::<Vec<_>>()
            .chunks(16)
            .map(|c| c.concat() + "\n")
            .collect();
        let out = red().redact_str(&od);
        assert!(!out.contains(" 53 65 63 72"), "{out}");
        assert_eq!(out.lines().count(), od.lines().count());
    }

    #[test]
    fn short_values_are_redacted_plainly_or_not_at_all() {
        let mut r = Redactor::default();
        r.add("abc");
        assert!(r.is_empty(), "too short to be worth redacting");
        r.add("hunter2");
        assert_eq!(r.redact_str("pw hunter2"), "pw ***");
        // No encodings below MIN_ENCODED: the hex of `hunter2` stays.
        assert_eq!(r.redact_str("68756e74657232"), "68756e74657232");
    }

    #[test]
    fn matches_are_found_whatever_the_number_of_secrets() {
        let mut r = Redactor::default();
        for i in 0..200 {
            r.add(&format!("secret-number-{i:04}-abcdefgh"));
        }
        assert_eq!(r.redact_str("a secret-number-0150-abcdefgh b"), "a *** b");
        assert!(r.window() >= "secret-number-0150-abcdefgh".len() * 3);
    }

    #[test]
    fn ranges_map_back_over_whitespace() {
        let mut r = Redactor::default();
        r.add("abcdefgh");
        let text = b"x ab\ncd\r\nef gh y";
        assert_eq!(r.find(text), vec![(2, 14)]);
        assert_eq!(Redactor::apply(text, &r.find(text)), b"x ***\n***\r\n*** y");
    }

    #[test]
    fn json_values_are_redacted_in_place() {
        let mut v = serde_json::json!({"a": [format!("x {SECRET}"), 1], "b": {"c": SECRET}, "d": null, SECRET: 2});
        red().redact_json(&mut v);
        assert_eq!(v, serde_json::json!({"a": ["x ***", 1], "b": {"c": "***"}, "d": null, "***": 2}));
    }

    #[test]
    fn debug_output_shows_no_value() {
        assert!(!format!("{:?}", red()).contains("Secr3t"));
    }
}
