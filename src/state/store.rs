//! Keeping the run state on disk so that nothing is lost whatever happens to the process.
//!
//! - The snapshot (`orchestrator_state.json`) is written atomically: a temp file in the same
//!   folder, fsync, rename, fsync of the folder.
//! - Between snapshots, each agent's progress is appended to a journal
//!   (`orchestrator_state.json.journal`, one JSON line per change, numbered). One `write` per
//!   line, so a killed process leaves whole lines (a torn last line is ignored). A resume reads
//!   the snapshot and replays the journal entries numbered after it, so a completed agent is never
//!   lost, and a phase of 500 agents costs 500 appends rather than 500 snapshot rewrites.
//! - An exclusive lock on `orchestrator_state.json.lock` (holding the owner's pid) makes a second
//!   concurrent run on the same state fail fast with a clear message.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::model::{AgentState, RunState, STATE_VERSION};

#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    #[error("another orchestrator run{} holds the lock on `{path}`\nhelp: wait for it to finish, or stop it; the lock is released when that process exits", pid.as_ref().map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Busy { path: PathBuf, pid: Option<String> },
    #[error("no run has been started here: `{path}` does not exist\nhelp: start one with `orchestrator run start`")]
    NoRun { path: PathBuf },
    #[error(
        "state file `{path}` is not valid: {detail}\nhelp: move it aside and start a new run with `orchestrator run start`"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "state file `{path}` has format version {found}, newer than this build understands ({STATE_VERSION})\nhelp: use a newer orchestrator, or move the file aside to start a new run"
    )]
    TooNew { path: PathBuf, found: u32 },
    #[error("cannot {action} `{path}`: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io { action, path: path.to_path_buf(), source }
}

/// Exclusive ownership of a state file for the life of this value.
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
    /// The state's folder, locked too: a deleted lock file cannot let a second run in.
    _dir: File,
}

#[derive(Serialize, Deserialize)]
struct JournalEntry {
    seq: u64,
    run_id: String,
    phase: String,
    agent: String,
    state: AgentState,
}

/// The state of a run, owned under its lock.
#[derive(Debug)]
pub(crate) struct StateStore {
    path: PathBuf,
    journal: Option<File>,
    pub state: RunState,
    _lock: StateLock,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Take the lock for the state file at `path`, creating its folder if needed.
pub(crate) fn lock(path: &Path) -> Result<StateLock, StateError> {
    let lock_path = sibling(path, ".lock");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create folder", dir))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io("open lock file", &lock_path))?;
    let busy = |file: &mut File| {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        let pid = Some(pid.trim().to_owned()).filter(|p| !p.is_empty());
        StateError::Busy { path: path.to_path_buf(), pid }
    };
    // The folder first: its lock holds even if someone deletes the lock file during a run (a
    // path can be unlinked and created anew; the folder holding the state cannot, while it
    // holds it).
    let dir_path = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = File::open(dir_path).map_err(io("open folder", dir_path))?;
    match dir.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(busy(&mut file)),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(StateError::Io { action: "lock", path: dir_path.to_path_buf(), source: e });
        }
    }
    match file.try_lock() {
        Ok(()) => {
            // The pid is only for the message a second run prints.
            let _ = file.set_len(0);
            let _ = writeln!(file, "{}", std::process::id());
            Ok(StateLock { _file: file, _dir: dir })
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(busy(&mut file)),
        Err(std::fs::TryLockError::Error(e)) => Err(StateError::Io { action: "lock", path: lock_path, source: e }),
    }
}

/// Read the state at `path` with its journal applied, without locking (for `status`, dry runs).
pub(crate) fn read(path: &Path) -> Result<RunState, StateError> {
    let text = match crate::text_file::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(StateError::NoRun { path: path.to_path_buf() }),
        // Not a run state: what the documented exit code for a bad state (3) says.
        Err(e) if matches!(e.kind(), ErrorKind::InvalidData | ErrorKind::InvalidInput) => {
            return Err(StateError::Corrupt { path: path.to_path_buf(), detail: e.to_string() });
        }
        Err(e) => return Err(StateError::Io { action: "read", path: path.to_path_buf(), source: e }),
    };
    // Only the version, before the whole state (whose shape may be a newer one's): the rest of
    // the document is skipped, not built.
    #[derive(serde::Deserialize)]
    struct Version {
        version: Option<serde_json::Value>,
    }
    let version = serde_json::from_str::<Version>(&text).ok().and_then(|v| v.version).and_then(|v| v.as_u64());
    if let Some(v) = version
        && v > u64::from(STATE_VERSION)
    {
        return Err(StateError::TooNew { path: path.to_path_buf(), found: u32::try_from(v).unwrap_or(u32::MAX) });
    }
    let mut state: RunState = serde_json::from_str(&text)
        .map_err(|e| StateError::Corrupt { path: path.to_path_buf(), detail: e.to_string() })?;
    // Names and paths become parts of file paths: refused here, before anything uses them.
    state.check_names().map_err(|e| StateError::Corrupt { path: path.to_path_buf(), detail: e.to_string() })?;
    replay_journal(path, &mut state)?;
    Ok(state)
}

/// The run id of the state at `path`, read without building the state (and without its journal,
/// which never changes the id): for replacing a run.
pub(crate) fn read_run_id(path: &Path) -> Result<String, StateError> {
    let text = match crate::text_file::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(StateError::NoRun { path: path.to_path_buf() }),
        Err(e) => return Err(StateError::Corrupt { path: path.to_path_buf(), detail: e.to_string() }),
    };
    let id =
        leading_run_id(&text).map_err(|e| StateError::Corrupt { path: path.to_path_buf(), detail: e.to_string() })?;
    super::model::check_name(|| "the run id".into(), &id)
        .map_err(|e| StateError::Corrupt { path: path.to_path_buf(), detail: e.to_string() })?;
    Ok(id)
}

/// The `run_id` of a state's JSON object, parsed up to it only: the state it names is being
/// replaced, and a large run's state is mostly what follows (its agents).
fn leading_run_id(text: &str) -> Result<String, serde_json::Error> {
    use serde::de::{DeserializeSeed, Error, IgnoredAny, MapAccess, Visitor};
    /// Where the id goes; once found, parsing stops with an error that is not reported.
    struct Seek<'a>(&'a mut Option<String>);
    impl<'de> DeserializeSeed<'de> for Seek<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Seek<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a run's state (a JSON object)")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if key == "run_id" {
                    *self.0 = Some(map.next_value::<String>()?);
                    return Err(A::Error::custom("found"));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }
    let mut found = None;
    let read = Seek(&mut found).deserialize(&mut serde_json::Deserializer::from_str(text));
    match (found, read) {
        (Some(id), _) => Ok(id),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => Err(serde_json::Error::missing_field("run_id")),
    }
}

fn replay_journal(path: &Path, state: &mut RunState) -> Result<(), StateError> {
    let journal_path = sibling(path, ".journal");
    let text = match std::fs::read(&journal_path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StateError::Io { action: "read", path: journal_path, source: e }),
    };
    for (n, line) in text.split(|b| *b == b'\n').enumerate() {
        // A torn last line (the process died mid-write) does not parse and is skipped.
        let Ok(entry) = serde_json::from_slice::<JournalEntry>(line) else { continue };
        if entry.run_id != state.run_id || entry.seq <= state.journal_seq {
            continue;
        }
        if let Some(phase) = state.phases.get_mut(&entry.phase) {
            let at = format!("phases.{}.agents.{}", entry.phase, entry.agent);
            super::model::check_name(|| "the agent name".into(), &entry.agent)
                .and_then(|()| entry.state.check_paths(&at))
                .map_err(|e| format!("line {}: {e}", n + 1))
                .map_err(|detail| StateError::Corrupt { path: journal_path.clone(), detail })?;
            phase.agents.insert(entry.agent, entry.state);
            state.journal_seq = entry.seq;
        }
    }
    Ok(())
}

/// Write `bytes` to `path` atomically and durably: temp file in the same folder, fsync, rename,
/// fsync of the folder. For the run state, which must survive a power cut.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace(path, bytes, true)
}

/// Replace `path` with `bytes` atomically (temp file in the same folder, then rename), without
/// waiting for the disk: readers never see a partial file and a killed process leaves the old or
/// the new one. For records, which can be rebuilt from the state.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace(path, bytes, false)
}

/// A temporary file in `dir` to be renamed over a file the user reads: created with the mode a
/// plain write gives (0666 less the umask), not tempfile's private 0600 — a teammate reads the
/// config, node_exporter the metrics.
pub(crate) fn new_temp(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

fn replace(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    replace_with(path, durable, |w| w.write_all(bytes))
}

/// As [`replace_file`] (or, `durable`, [`write_atomic`]), the contents written by `write` as
/// they are made: a large record (the state, the metrics) is never held whole in memory.
pub(crate) fn replace_with(
    path: &Path,
    durable: bool,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = new_temp(dir)?;
    {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, tmp.as_file_mut());
        write(&mut out)?;
        out.flush()?;
    }
    if durable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if durable && let Ok(d) = File::open(dir) {
        // Not every platform can fsync a directory; the rename is already durable where it can.
        let _ = d.sync_all();
    }
    Ok(())
}

impl StateStore {
    /// Start a new run's state under `lock`, replacing any previous state and journal.
    pub(crate) fn create(path: &Path, lock: StateLock, state: RunState) -> Result<StateStore, StateError> {
        let mut store = StateStore { path: path.to_path_buf(), journal: None, state, _lock: lock };
        store.save()?;
        Ok(store)
    }

    /// Open the existing state under `lock`.
    pub(crate) fn open(path: &Path, lock: StateLock) -> Result<StateStore, StateError> {
        let state = read(path)?;
        Ok(StateStore { path: path.to_path_buf(), journal: None, state, _lock: lock })
    }

    /// Write a snapshot of the whole state, then empty the journal it folded in.
    pub(crate) fn save(&mut self) -> Result<(), StateError> {
        self.state.updated_at = chrono::Utc::now();
        // Streamed to the file: a large run's state is not held twice in memory.
        replace_with(&self.path, true, |w| serde_json::to_writer_pretty(w, &self.state).map_err(std::io::Error::other))
            .map_err(io("write", &self.path))?;
        let journal_path = sibling(&self.path, ".journal");
        // Entries up to `journal_seq` are in the snapshot now; replay skips them even if the
        // truncation below never happens.
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&journal_path)
            .map_err(io("truncate", &journal_path))?;
        self.journal = Some(file);
        Ok(())
    }

    /// Record one agent's state: in memory, and durably in the journal.
    pub(crate) fn record_agent(&mut self, phase: &str, agent: &str, agent_state: AgentState) -> Result<(), StateError> {
        self.state.journal_seq += 1;
        let entry = JournalEntry {
            seq: self.state.journal_seq,
            run_id: self.state.run_id.clone(),
            phase: phase.to_owned(),
            agent: agent.to_owned(),
            state: agent_state,
        };
        let mut line = serde_json::to_vec(&entry).expect("journal entry serializes");
        line.push(b'\n');
        if let Some(p) = self.state.phases.get_mut(phase) {
            p.agents.insert(agent.to_owned(), entry.state);
        }
        let journal_path = sibling(&self.path, ".journal");
        if self.journal.is_none() {
            let f =
                OpenOptions::new().create(true).append(true).open(&journal_path).map_err(io("open", &journal_path))?;
            self.journal = Some(f);
        }
        let file = self.journal.as_mut().expect("journal opened above");
        file.write_all(&line).map_err(io("append to", &journal_path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::model::{AgentStatus, PhaseState};

    fn state() -> RunState {
        RunState::for_test("r1", [("build".to_owned(), PhaseState::pending())].into())
    }

    fn agent(status: AgentStatus) -> AgentState {
        AgentState {
            status,
            command: "true".into(),
            transcript: "t.log".into(),
            attempts: vec![],
            artifacts: vec![],
            refused_artifacts: vec![],
            pgid: None,
            pgid_leader: None,
            attempt_started_at: None,
            duration_s: None,
            changes: None,
        }
    }

    #[test]
    fn journal_entries_survive_without_a_snapshot_and_stale_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut store = StateStore::create(&path, lock(&path).unwrap(), state()).unwrap();
        store.record_agent("build", "a", agent(AgentStatus::Running)).unwrap();
        store.record_agent("build", "a", agent(AgentStatus::Succeeded)).unwrap();
        store.record_agent("build", "b", agent(AgentStatus::Running)).unwrap();
        let read_back = read(&path).unwrap();
        assert_eq!(read_back.phases["build"].agents["a"].status, AgentStatus::Succeeded);
        assert_eq!(read_back.phases["build"].agents["b"].status, AgentStatus::Running);

        // A snapshot folds the journal in; an old journal left behind must not regress it.
        let old_journal = std::fs::read(sibling(&path, ".journal")).unwrap();
        store.state.phases.get_mut("build").unwrap().agents.get_mut("b").unwrap().status = AgentStatus::Failed;
        store.save().unwrap();
        std::fs::write(sibling(&path, ".journal"), old_journal).unwrap();
        assert_eq!(read(&path).unwrap().phases["build"].agents["b"].status, AgentStatus::Failed);
    }

    #[test]
    fn torn_journal_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut store = StateStore::create(&path, lock(&path).unwrap(), state()).unwrap();
        store.record_agent("build", "a", agent(AgentStatus::Succeeded)).unwrap();
        let mut f = OpenOptions::new().append(true).open(sibling(&path, ".journal")).unwrap();
        f.write_all(b"{\"seq\":2,\"run_id\":\"r1\",\"pha").unwrap();
        assert_eq!(read(&path).unwrap().phases["build"].agents["a"].status, AgentStatus::Succeeded);
    }

    #[test]
    fn second_lock_is_refused_with_the_owner_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let _held = lock(&path).unwrap();
        let err = lock(&path).unwrap_err().to_string();
        assert!(err.contains(&format!("(pid {})", std::process::id())), "{err}");
    }

    #[test]
    fn newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, r#"{"version": 99}"#).unwrap();
        assert!(matches!(read(&path), Err(StateError::TooNew { found: 99, .. })));
    }

    #[test]
    fn the_run_id_is_read_alone_and_checked_like_the_whole_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(matches!(read_run_id(&path), Err(StateError::NoRun { .. })));
        std::fs::write(&path, serde_json::to_vec_pretty(&state()).unwrap()).unwrap();
        assert_eq!(read_run_id(&path).unwrap(), "r1");
        // Found after other keys, never inside them; what follows it is not read.
        for (text, id) in [
            (r#"{"version": 1, "phases": {"p": {"run_id": "inner"}}, "run_id": "r2", "more": 1}"#, "r2"),
            (r#"{"run_id": "r\u0033", "phases": {"#, "r3"),
        ] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(read_run_id(&path).unwrap(), id, "{text}");
        }
        for bad in [
            r#"{"run_id": "../../etc"}"#,
            r#"{"run_id": 3}"#,
            "not json",
            r#"{"phases": {}}"#,
            r#"["run_id", "r1"]"#,
            r#"{"phases": {"#,
            "",
        ] {
            std::fs::write(&path, bad).unwrap();
            assert!(matches!(read_run_id(&path), Err(StateError::Corrupt { .. })), "{bad}");
        }
    }
}
