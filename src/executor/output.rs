//! What happens to an agent's output as it arrives: redacted, written to the transcript a whole
//! line at a time, scanned for `ARTIFACT:` lines and retryable messages, and its tail kept for
//! reports. Memory stays bounded whatever the agent prints.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};

use memchr::memmem;

/// Lines longer than this are written out in pieces (and scanned in pieces).
const MAX_PENDING: usize = 64 * 1024;
/// Bytes of output kept for reports.
pub const TAIL_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Replaces secret values with `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<Vec<u8>>,
}

/// Environment variables whose values are never written anywhere.
pub const SECRET_VARS: [&str; 5] =
    ["GITHUB_TOKEN", "GH_TOKEN", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ACTIONS_RUNTIME_TOKEN"];

impl Redactor {
    /// Redact the values of the known secret variables set in this process's environment.
    pub fn from_env() -> Redactor {
        let mut r = Redactor::default();
        for var in SECRET_VARS {
            if let Ok(v) = std::env::var(var) {
                r.add(&v);
            }
        }
        r
    }

    pub fn add(&mut self, secret: &str) {
        // Very short values would redact ordinary text and protect nothing.
        if secret.len() >= 6 && !self.secrets.iter().any(|s| s == secret.as_bytes()) {
            self.secrets.push(secret.as_bytes().to_vec());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The secret values (for `::add-mask::` on a GitHub runner).
    pub fn values(&self) -> impl Iterator<Item = String> + '_ {
        self.secrets.iter().map(|s| String::from_utf8_lossy(s).into_owned())
    }

    /// `text` with every secret replaced; borrowed when there is nothing to replace.
    pub fn redact<'a>(&self, text: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        let mut out: std::borrow::Cow<'a, [u8]> = std::borrow::Cow::Borrowed(text);
        for s in &self.secrets {
            if memmem::find(&out, s).is_some() {
                let mut replaced = Vec::with_capacity(out.len());
                let mut rest: &[u8] = &out;
                while let Some(i) = memmem::find(rest, s) {
                    replaced.extend_from_slice(&rest[..i]);
                    replaced.extend_from_slice(b"***");
                    rest = &rest[i + s.len()..];
                }
                replaced.extend_from_slice(rest);
                out = std::borrow::Cow::Owned(replaced);
            }
        }
        out
    }

    pub fn redact_str(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.redact(text.as_bytes())).into_owned()
    }
}

/// Consumes an attempt's output.
pub struct OutputSink<'a> {
    transcript: &'a mut BufWriter<File>,
    redactor: &'a Redactor,
    messages: Vec<memmem::Finder<'a>>,
    message_texts: &'a [String],
    pending: [Vec<u8>; 2],
    lower: Vec<u8>,
    tail: VecDeque<u8>,
    /// Paths from `ARTIFACT:` / `ARTIFACTS:` lines, as the agent wrote them.
    pub artifacts: Vec<String>,
    /// The first retryable message seen in the output.
    pub matched_message: Option<String>,
    pub bytes: u64,
    /// The first error writing the transcript, if any.
    pub write_error: Option<std::io::Error>,
}

impl<'a> OutputSink<'a> {
    pub fn new(transcript: &'a mut BufWriter<File>, redactor: &'a Redactor, messages: &'a [String]) -> Self {
        OutputSink {
            transcript,
            redactor,
            messages: messages.iter().map(|m| memmem::Finder::new(m.as_bytes())).collect(),
            message_texts: messages,
            pending: [Vec::new(), Vec::new()],
            lower: Vec::new(),
            tail: VecDeque::new(),
            artifacts: Vec::new(),
            matched_message: None,
            bytes: 0,
            write_error: None,
        }
    }

    pub fn feed(&mut self, stream: Stream, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        let i = stream as usize;
        let mut pending = std::mem::take(&mut self.pending[i]);
        match memchr::memrchr(b'\n', chunk) {
            Some(end) => {
                pending.extend_from_slice(&chunk[..=end]);
                self.emit(stream, &pending);
                pending.clear();
                pending.extend_from_slice(&chunk[end + 1..]);
            }
            None => pending.extend_from_slice(chunk),
        }
        if pending.len() > MAX_PENDING {
            self.emit(stream, &pending);
            pending.clear();
        }
        self.pending[i] = pending;
    }

    /// Flush partial last lines; call once the streams are closed.
    pub fn finish(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let mut pending = std::mem::take(&mut self.pending[stream as usize]);
            if !pending.is_empty() {
                pending.push(b'\n');
                self.emit(stream, &pending);
            }
        }
        if let Err(e) = self.transcript.flush() {
            self.write_error.get_or_insert(e);
        }
    }

    /// The last [`TAIL_BYTES`] of output, as text.
    pub fn tail(&self) -> String {
        let (a, b) = self.tail.as_slices();
        let mut bytes = a.to_vec();
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn emit(&mut self, stream: Stream, text: &[u8]) {
        let text = self.redactor.redact(text);
        for line in text.split(|b| *b == b'\n') {
            self.scan(stream, line);
        }
        if let Err(e) = self.transcript.write_all(&text) {
            self.write_error.get_or_insert(e);
        }
        let keep = text.len().min(TAIL_BYTES);
        let overflow = (self.tail.len() + keep).saturating_sub(TAIL_BYTES);
        self.tail.drain(..overflow.min(self.tail.len()));
        self.tail.extend(&text[text.len() - keep..]);
    }

    fn scan(&mut self, stream: Stream, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if stream == Stream::Stdout {
            let trimmed = line.trim_ascii_start();
            if let Some(rest) = trimmed.strip_prefix(b"ARTIFACTS:") {
                let rest = String::from_utf8_lossy(rest);
                self.artifacts.extend(rest.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned));
            } else if let Some(rest) = trimmed.strip_prefix(b"ARTIFACT:") {
                let p = String::from_utf8_lossy(rest).trim().to_owned();
                if !p.is_empty() {
                    self.artifacts.push(p);
                }
            }
        }
        if self.matched_message.is_none() && !self.messages.is_empty() {
            self.lower.clear();
            self.lower.extend(line.iter().map(u8::to_ascii_lowercase));
            if let Some(i) = self.messages.iter().position(|f| f.find(&self.lower).is_some()) {
                self.matched_message = Some(self.message_texts[i].clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink_test(chunks: &[(Stream, &str)], secrets: &[&str]) -> (String, Vec<String>, Option<String>, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        let mut w = BufWriter::new(File::create(&path).unwrap());
        let mut red = Redactor::default();
        for s in secrets {
            red.add(s);
        }
        let messages = vec!["rate limit".to_owned()];
        let mut sink = OutputSink::new(&mut w, &red, &messages);
        for (s, c) in chunks {
            sink.feed(*s, c.as_bytes());
        }
        sink.finish();
        let (arts, matched, tail) = (sink.artifacts.clone(), sink.matched_message.clone(), sink.tail());
        drop(w);
        (std::fs::read_to_string(&path).unwrap(), arts, matched, tail)
    }

    #[test]
    fn lines_stay_whole_when_streams_interleave() {
        let (t, ..) =
            sink_test(&[(Stream::Stdout, "hel"), (Stream::Stderr, "err line\n"), (Stream::Stdout, "lo\n")], &[]);
        assert_eq!(t, "err line\nhello\n");
    }

    #[test]
    fn artifact_lines_are_parsed_from_stdout_only() {
        let (_, arts, ..) = sink_test(
            &[
                (Stream::Stdout, "ARTIFACT: a.txt\n  ARTIFACTS: b, c ,\nARTIFACT:\n"),
                (Stream::Stderr, "ARTIFACT: d\n"),
                (Stream::Stdout, "ARTIFACT: e"),
            ],
            &[],
        );
        assert_eq!(arts, ["a.txt", "b", "c", "e"]);
    }

    #[test]
    fn retryable_message_matches_case_insensitively() {
        let (_, _, matched, _) = sink_test(&[(Stream::Stderr, "Error: Rate Limit exceeded\n")], &[]);
        assert_eq!(matched.as_deref(), Some("rate limit"));
    }

    #[test]
    fn secrets_never_reach_the_transcript_or_tail() {
        let (t, _, _, tail) = sink_test(&[(Stream::Stdout, "token=s3cr3t-value ok\n")], &["s3cr3t-value"]);
        assert_eq!(t, "token=*** ok\n");
        assert_eq!(tail, "token=*** ok\n");
    }

    #[test]
    fn tail_keeps_only_the_last_bytes() {
        let big = "x".repeat(TAIL_BYTES) + "\nlast\n";
        let (_, _, _, tail) = sink_test(&[(Stream::Stdout, &big)], &[]);
        assert_eq!(tail.len(), TAIL_BYTES);
        assert!(tail.ends_with("\nlast\n"));
    }
}
