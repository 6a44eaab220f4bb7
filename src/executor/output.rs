//! What happens to an agent's output as it arrives: redacted, written to the transcript a whole
//! line at a time, scanned for `ARTIFACT:` lines and retryable messages, and its tail kept for
//! reports. Memory stays bounded whatever the agent prints.
//!
//! With secrets to redact, the last lines of each stream are held back until enough output
//! follows them ([`Redactor::window`] non-blank bytes), so that a secret, or an encoding of one
//! wrapped over lines, is found even when it straddles two reads. They are written at the latest
//! when the streams close.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};

use memchr::memmem;

/// Lines longer than this are written out in pieces (and scanned in pieces).
const MAX_PENDING: usize = 64 * 1024;
/// Held output this much larger than the redaction window is looked at again only after this
/// many more bytes.
const RESCAN_AFTER: usize = 8 * 1024;
/// Bytes of output kept for reports.
pub(crate) const TAIL_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

pub(crate) use super::redact::Redactor;

/// Consumes an attempt's output.
pub(crate) struct OutputSink<'a> {
    transcript: &'a mut BufWriter<File>,
    redactor: &'a Redactor,
    messages: Vec<memmem::Finder<'a>>,
    message_texts: &'a [String],
    /// Output read but not yet written, per stream.
    pending: [Vec<u8>; 2],
    /// Pending length below which a stream is not looked at again.
    rescan_at: [usize; 2],
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
    pub(crate) fn new(transcript: &'a mut BufWriter<File>, redactor: &'a Redactor, messages: &'a [String]) -> Self {
        OutputSink {
            transcript,
            redactor,
            messages: messages.iter().map(|m| memmem::Finder::new(m.as_bytes())).collect(),
            message_texts: messages,
            pending: [Vec::new(), Vec::new()],
            rescan_at: [0, 0],
            lower: Vec::new(),
            tail: VecDeque::new(),
            artifacts: Vec::new(),
            matched_message: None,
            bytes: 0,
            write_error: None,
        }
    }

    pub(crate) fn feed(&mut self, stream: Stream, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        let i = stream as usize;
        self.pending[i].extend_from_slice(chunk);
        // Nothing is looked at until a line ends or a line grows long, nor again until enough
        // has arrived since a look that had to leave much unwritten (so that held text is not
        // searched over and over: the cost stays linear in the output).
        let len = self.pending[i].len();
        if len >= self.rescan_at[i] && (memchr::memchr(b'\n', chunk).is_some() || len > MAX_PENDING) {
            self.flush(stream, false);
        }
    }

    /// Flush partial last lines; call once the streams are closed.
    pub(crate) fn finish(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = &mut self.pending[stream as usize];
            if !pending.is_empty() && !pending.ends_with(b"\n") {
                pending.push(b'\n');
            }
            self.flush(stream, true);
        }
        if let Err(e) = self.transcript.flush() {
            self.write_error.get_or_insert(e);
        }
    }

    /// Write what of `stream`'s pending output is ready (all of it at the end).
    fn flush(&mut self, stream: Stream, at_end: bool) {
        let i = stream as usize;
        let mut pending = std::mem::take(&mut self.pending[i]);
        let ranges = self.redactor.find(&pending);
        let cut = if at_end { pending.len() } else { ready(&pending, &ranges, self.redactor.window()) };
        if cut > 0 {
            let done: Vec<(usize, usize)> = ranges.iter().copied().filter(|r| r.1 <= cut).collect();
            let text = if done.is_empty() {
                std::borrow::Cow::Borrowed(&pending[..cut])
            } else {
                std::borrow::Cow::Owned(Redactor::apply(&pending[..cut], &done))
            };
            self.emit(stream, &text);
            pending.drain(..cut);
        }
        let held = pending.len();
        self.rescan_at[i] = if held > RESCAN_AFTER + self.redactor.window() { held + RESCAN_AFTER } else { 0 };
        self.pending[i] = pending;
    }

    /// The last [`TAIL_BYTES`] of output, as text.
    pub(crate) fn tail(&self) -> String {
        let (a, b) = self.tail.as_slices();
        let mut bytes = a.to_vec();
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Write redacted `text`: scan its lines, append it to the transcript and the tail.
    fn emit(&mut self, stream: Stream, text: &[u8]) {
        for line in text.split(|b| *b == b'\n') {
            self.scan(stream, line);
        }
        if let Err(e) = self.transcript.write_all(text) {
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

/// A writer that redacts what goes through it, for records written as they are made: text is
/// held only until what follows it can no longer complete a secret (see [`ready`]), so memory
/// stays bounded however much is written. [`Redacting::finish`] writes the rest.
pub(crate) struct Redacting<'a, W: Write> {
    out: W,
    redactor: &'a Redactor,
    pending: Vec<u8>,
    /// Pending length below which nothing is looked at again (see `OutputSink::feed`).
    rescan_at: usize,
}

impl<'a, W: Write> Redacting<'a, W> {
    pub(crate) fn new(out: W, redactor: &'a Redactor) -> Self {
        Redacting { out, redactor, pending: Vec::new(), rescan_at: MAX_PENDING }
    }

    fn drain(&mut self, at_end: bool) -> std::io::Result<()> {
        let ranges = self.redactor.find(&self.pending);
        let cut = if at_end { self.pending.len() } else { ready(&self.pending, &ranges, self.redactor.window()) };
        if cut > 0 {
            let done: Vec<(usize, usize)> = ranges.into_iter().filter(|r| r.1 <= cut).collect();
            if done.is_empty() {
                self.out.write_all(&self.pending[..cut])?;
            } else {
                self.out.write_all(&Redactor::apply(&self.pending[..cut], &done))?;
            }
            self.pending.drain(..cut);
        }
        self.rescan_at = self.pending.len() + MAX_PENDING;
        Ok(())
    }

    /// Write what is held, redacted, and flush.
    pub(crate) fn finish(mut self) -> std::io::Result<W> {
        self.drain(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Redacting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.redactor.is_empty() {
            return self.out.write(buf);
        }
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= self.rescan_at {
            self.drain(false)?;
        }
        Ok(buf.len())
    }

    /// Flushes what was written through; held text waits for [`Redacting::finish`].
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// How much of `pending` can be written now: whole lines, up to where at least `window`
/// non-blank bytes follow (a secret starting earlier is entirely here, so `ranges` is final
/// there), never cutting a range. A line longer than [`MAX_PENDING`] is cut inside; more than
/// twice that is written whatever follows, so memory stays bounded.
fn ready(pending: &[u8], ranges: &[(usize, usize)], window: usize) -> usize {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c');
    let mut limit = pending.len();
    if window > 0 {
        let mut seen = 0;
        limit = 0;
        for (i, b) in pending.iter().enumerate().rev() {
            if !is_space(b) {
                seen += 1;
                if seen >= window {
                    limit = i;
                    break;
                }
            }
        }
    }
    let inside = |cut: usize| ranges.iter().find(|r| r.0 < cut && cut < r.1).copied();
    let line_start = |at: usize| memchr::memrchr(b'\n', &pending[..at]).map_or(0, |i| i + 1);
    let mut cut = line_start(limit);
    while let Some(r) = inside(cut) {
        cut = line_start(r.0);
    }
    if cut == 0 && pending.len() > MAX_PENDING {
        cut = limit;
        if let Some(r) = inside(cut) {
            // A range starting before `limit` is complete.
            cut = if r.0 > 0 { r.0 } else { r.1 };
        }
        if cut == 0 && pending.len() > 2 * MAX_PENDING {
            cut = pending.len();
        }
    }
    cut
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
    fn a_secret_split_over_reads_and_lines_is_found() {
        let secret = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("xy{secret}"));
        let (first, second) = b64.split_at(20);
        // Wrapped over two lines that arrive in separate reads, a partial line in between.
        let (t, _, _, tail) = sink_test(
            &[
                (Stream::Stdout, "before\n"),
                (Stream::Stdout, &format!("{first}\n")),
                (Stream::Stderr, "other stream\n"),
                (Stream::Stdout, &second[..5]),
                (Stream::Stdout, &format!("{}\nafter\n", &second[5..])),
            ],
            &[secret],
        );
        assert!(!t.contains(first) && !t.contains(second), "{t}");
        assert!(t.contains("before\n") && t.contains("***\n***\nafter\n") && t.contains("other stream\n"), "{t}");
        assert!(!tail.contains(first), "{tail}");
    }

    #[test]
    fn held_lines_are_scanned_and_written_in_order() {
        let (t, arts, ..) = sink_test(
            &[(Stream::Stdout, "ARTIFACT: a.txt\n"), (Stream::Stdout, "x\n"), (Stream::Stdout, "ARTIFACT: b.txt")],
            &["some-long-secret-value"],
        );
        assert_eq!(t, "ARTIFACT: a.txt\nx\nARTIFACT: b.txt\n");
        assert_eq!(arts, ["a.txt", "b.txt"]);
    }

    #[test]
    fn long_lines_are_cut_outside_secrets() {
        let secret = "s3cr3t-value-that-is-long";
        let mut chunks = Vec::new();
        let filler = "y".repeat(MAX_PENDING - 10);
        chunks.push((Stream::Stdout, filler.as_str()));
        let rest = format!("{secret}{}\n", "z".repeat(3 * MAX_PENDING));
        for piece in rest.as_bytes().chunks(1000) {
            chunks.push((Stream::Stdout, std::str::from_utf8(piece).unwrap()));
        }
        let (t, ..) = sink_test(&chunks, &[secret]);
        assert!(!t.contains("s3cr3t"), "the secret was cut in two");
        assert_eq!(t.matches("***").count(), 1);
        assert_eq!(t.len(), filler.len() + 3 + 3 * MAX_PENDING + 1);
    }

    #[test]
    fn tail_keeps_only_the_last_bytes() {
        let big = "x".repeat(TAIL_BYTES) + "\nlast\n";
        let (_, _, _, tail) = sink_test(&[(Stream::Stdout, &big)], &[]);
        assert_eq!(tail.len(), TAIL_BYTES);
        assert!(tail.ends_with("\nlast\n"));
    }

    #[test]
    fn a_redacting_writer_finds_secrets_across_any_split_and_holds_little() {
        let secret = "sk-live-0123456789abcdefSECRET";
        let mut red = Redactor::default();
        red.add(secret);
        // A large record with the secret in many places, written in pieces of every size.
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("  \"line {i}\": \"{}\",\n", if i % 997 == 0 { secret } else { "value" }));
        }
        text.push_str(secret);
        for piece in [1, 7, 4096, 65_536, 1 << 20] {
            let mut w = Redacting::new(Vec::new(), &red);
            let mut held = 0;
            for chunk in text.as_bytes().chunks(piece) {
                w.write_all(chunk).unwrap();
                held = held.max(w.pending.len());
            }
            let out = String::from_utf8(w.finish().unwrap()).unwrap();
            assert!(!out.contains(secret) && !out.contains("sk-live-0123"), "piece {piece}");
            assert_eq!(out.matches("***").count(), text.matches(secret).count(), "piece {piece}");
            assert!(out.len() > text.len() / 2, "piece {piece}");
            assert!(held < 3 * MAX_PENDING + piece, "piece {piece}: held {held}");
        }
        // Nothing to redact: written straight through.
        let none = Redactor::default();
        let mut w = Redacting::new(Vec::new(), &none);
        w.write_all(text.as_bytes()).unwrap();
        assert_eq!(w.pending.len(), 0);
        assert_eq!(w.finish().unwrap(), text.as_bytes());
    }
}
