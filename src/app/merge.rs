//! `run merge DIR…`: fold in what other jobs of the same run did. When a workflow spreads a run
//! over jobs (`ci generate --jobs`), each job uploads its workspace records; the next job
//! downloads them into folders and merges them here: phases another job took further replace
//! ours, agents another job finished in a phase we share are added, and the files those agents
//! reported (and their transcripts) are copied into the workspace, confined to it.

use anyhow::Context as _;
use std::path::{Path, PathBuf};

use super::{AppError, Ctx};
use crate::exit_code;
use crate::state::{self, AgentState, AgentStatus, PhaseState, PhaseStatus, RunState, StateStore};
use crate::workspace::Confinement;

/// How far a phase has got, to pick the further of two copies.
fn rank(p: &PhaseState) -> (u32, u8) {
    p.progress()
}

fn finished(a: &AgentState) -> bool {
    matches!(a.status, AgentStatus::Succeeded | AgentStatus::Failed)
}

/// The files an agent leaves that a later job needs: what it reported, and its transcript.
fn agent_files(a: &AgentState) -> impl Iterator<Item = &String> {
    a.artifacts.iter().chain(std::iter::once(&a.transcript))
}

fn phase_files(p: &PhaseState) -> Vec<String> {
    let validated = p.validation.iter().flat_map(|v| v.patterns.iter().flat_map(|pat| pat.files.iter()));
    p.agents.values().flat_map(agent_files).chain(validated).cloned().collect()
}

/// Every file a later job's merge may copy from this workspace (see `crate::file_modes`).
pub(super) fn carried_files(state: &RunState) -> Vec<String> {
    let mut files: Vec<String> = state.phases.values().flat_map(phase_files).collect();
    files.sort();
    files.dedup();
    files
}

#[derive(Default)]
struct Merged {
    phases: Vec<String>,
    agents: Vec<String>,
    files: Vec<String>,
}

/// Merge `theirs` into `mine`; returns what was taken and the files to copy from its folder.
fn merge_state(mine: &mut RunState, theirs: &RunState, merged: &mut Merged) -> Vec<String> {
    let mut files = Vec::new();
    for (name, tp) in &theirs.phases {
        let mp = mine.phases.entry(name.clone()).or_insert_with(PhaseState::pending);
        if rank(tp) > rank(mp) {
            *mp = tp.clone();
            files.extend(phase_files(tp));
            merged.phases.push(name.clone());
        } else if rank(tp) == rank(mp) && mp.status == PhaseStatus::Running {
            for (agent, ta) in tp.agents.iter().filter(|(_, a)| finished(a)) {
                if !mp.agents.get(agent).is_some_and(finished) {
                    mp.agents.insert(agent.clone(), ta.clone());
                    files.extend(agent_files(ta).cloned());
                    merged.agents.push(format!("{name}/{agent}"));
                }
            }
        }
    }
    mine.journal_seq = mine.journal_seq.max(theirs.journal_seq);
    if mine.hygiene.is_none() {
        mine.hygiene = theirs.hygiene.clone();
    }
    files
}

/// Copy `rel` from the job folder `dir` into the workspace, refusing anything that would land
/// outside it, in git's folders or on the orchestrator's own files (see [`Confinement`]), and
/// anything in the job folder that is not a plain file reached without a symlink. The copy gets
/// the execute bits the job folder's file has or `recorded` (its manifest's, see
/// `crate::file_modes`), where it is readable. `Ok(false)`: the job folder does not have it.
fn copy_in(ws: &Confinement, dir: &Path, rel: &str, recorded: u32) -> Result<bool, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = dir.canonicalize().map_err(|e| format!("cannot resolve the job folder: {e}"))?;
    let src = Confinement::new(&dir);
    // The job folder's copy is taken only as it is written: a symlink anywhere on its way could
    // lead to any file of this machine.
    let real = match src.exact(rel) {
        Ok(real) => real,
        Err(crate::workspace::Refused::Missing) => return Ok(false),
        Err(why) => return Err(format!("the job folder's copy {why}")),
    };
    // Never waiting on a FIFO for a writer.
    let mut from = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(&real)
        .map_err(|e| format!("cannot be read from the job folder: {e}"))?;
    let meta = from.metadata().map_err(|e| format!("cannot be read from the job folder: {e}"))?;
    if !meta.is_file() {
        return Err("is not a plain file".into());
    }
    let (mut to, _) = ws.create(rel).map_err(|why| why.to_string())?;
    std::io::copy(&mut from, &mut to).map_err(|e| format!("cannot be copied: {e}"))?;
    // An executable output (a script an agent built) stays executable: the next phase may run
    // it. Artifact uploads drop modes, so the bits come from the part's manifest too. Only the
    // execute bits travel, where the copy is readable, set through the handle written (never a
    // path), and no setuid, setgid or sticky bit survives.
    use std::os::unix::fs::PermissionsExt;
    let execute = (meta.permissions().mode() | recorded) & 0o111;
    if let Ok(m) = to.metadata() {
        let mode = m.permissions().mode() & 0o7777;
        let wanted = (mode & 0o777) | (execute & (mode & 0o444) >> 2);
        if wanted != mode {
            to.set_permissions(std::fs::Permissions::from_mode(wanted))
                .map_err(|e| format!("cannot be given its mode: {e}"))?;
        }
    }
    Ok(true)
}

pub(super) fn merge(ctx: &Ctx, dirs: &[PathBuf]) -> Result<i32, AppError> {
    let inv = super::invocation::Invocation::load(ctx)?;
    let wf = &inv.wf;
    let path = wf.state_path();
    // Every part is read before anything is written. A folder without a state of its own but
    // with subfolders that have one (downloaded artifacts, one folder each) stands for them.
    let mut folders = Vec::new();
    for dir in dirs {
        let dir = if dir.is_absolute() { dir.clone() } else { ctx.root.join(dir) };
        if !dir.is_dir() {
            return Err(AppError::Usage(format!("`{}` is not a folder", dir.display())));
        }
        if dir.join(&wf.settings.state_file).exists() {
            folders.push(dir);
            continue;
        }
        let mut subs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read `{}`", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(&wf.settings.state_file).is_file())
            .collect();
        subs.sort();
        if subs.is_empty() {
            folders.push(dir);
        } else {
            folders.extend(subs);
        }
    }
    let mut parts = Vec::new();
    for dir in folders {
        let file = dir.join(&wf.settings.state_file);
        let part = state::read(&file).map_err(|e| match e {
            state::StateError::NoRun { .. } => AppError::Usage(format!(
                "`{}` holds no run state (expected `{}`)\nhelp: give the folders the jobs' artifacts were downloaded into",
                dir.display(),
                file.display()
            )),
            other => other.into(),
        })?;
        // The part's record of its executables: untrusted, ignored entry by entry.
        let (modes, warnings) = crate::file_modes::read(&dir);
        for w in warnings {
            errln!("warning: {} (in `{}`)", crate::runner_log::neutralize(&w), dir.display());
        }
        parts.push((dir, part, modes));
    }
    let Some(first_run) = parts.first().map(|(_, p, _)| p.run_id.clone()) else {
        return Err(AppError::Usage("nothing to merge: give at least one folder".into()));
    };
    let local = match state::read(&path) {
        Ok(s) => Some(s),
        Err(state::StateError::NoRun { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    // A run is its id and its start (ids are per second; two runs can share one).
    let (ours, started) = match &local {
        Some(s) => (s.run_id.clone(), s.started_at),
        None => (first_run.clone(), parts[0].1.started_at),
    };
    if let Some((dir, p, _)) = parts.iter().find(|(_, p, _)| p.run_id != ours || p.started_at != started) {
        return Err(AppError::Usage(format!(
            "`{}` holds run {} (started {}), but this workspace's run is {ours} (started {started}){}",
            dir.display(),
            p.run_id,
            p.started_at,
            if local.is_some() { "" } else { " (from an earlier folder)" }
        )));
    }
    let lock = state::lock(&path)?;
    let mut store = match local {
        Some(_) => StateStore::open(&path, lock)?,
        None => {
            let mut base = parts[0].1.clone();
            base.phases.values_mut().for_each(|p| *p = PhaseState::pending());
            StateStore::create(&path, lock, base)?
        }
    };
    let ws = Confinement::for_workflow(wf);
    let mut merged = Merged::default();
    for (dir, part, modes) in &parts {
        let files = merge_state(&mut store.state, part, &mut merged);
        for rel in files {
            match copy_in(&ws, dir, &rel, modes.execute_bits(&rel)) {
                Ok(true) => merged.files.push(rel),
                Ok(false) => {}
                Err(why) => errln!(
                    "warning: not copying `{}` from `{}`: {}",
                    crate::runner_log::neutralize(&rel),
                    dir.display(),
                    crate::runner_log::neutralize(&why.to_string())
                ),
            }
        }
    }
    store.save()?;
    crate::report::Recorder::new(&wf.root, inv.redactor.clone())
        .run(wf, &store.state)
        .map_err(crate::engine::EngineError::from)?;
    merged.files.sort();
    merged.files.dedup();
    let line = format!(
        "merged into run {ours}: {} phase{} ({}), {} agent result{} ({}), {} file{}",
        merged.phases.len(),
        if merged.phases.len() == 1 { "" } else { "s" },
        merged.phases.join(", "),
        merged.agents.len(),
        if merged.agents.len() == 1 { "" } else { "s" },
        merged.agents.join(", "),
        merged.files.len(),
        if merged.files.len() == 1 { "" } else { "s" },
    );
    outln!("{}", crate::runner_log::neutralize(&line));
    Ok(exit_code::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(status: AgentStatus, artifact: &str) -> AgentState {
        AgentState {
            status,
            command: "true".into(),
            transcript: format!(".claude/logs/agents/r_{artifact}.log"),
            attempts: vec![],
            artifacts: vec![artifact.into()],
            refused_artifacts: vec![],
            pgid: None,
            pgid_leader: None,
            attempt_started_at: None,
            duration_s: None,
            changes: None,
        }
    }

    fn state(phases: Vec<(&str, PhaseState)>) -> RunState {
        RunState::for_test("r", phases.into_iter().map(|(n, p)| (n.to_owned(), p)).collect())
    }

    fn running(agents: Vec<(&str, AgentState)>) -> PhaseState {
        let mut p = PhaseState::pending();
        p.status = PhaseStatus::Running;
        p.runs = 1;
        p.agents = agents.into_iter().map(|(n, a)| (n.to_owned(), a)).collect();
        p
    }

    #[test]
    fn agents_of_a_shared_open_phase_are_combined() {
        let mut mine = state(vec![("dev", running(vec![("a", agent(AgentStatus::Succeeded, "a.txt"))]))]);
        let theirs = state(vec![(
            "dev",
            running(vec![("a", agent(AgentStatus::Pending, "x")), ("b", agent(AgentStatus::Failed, "b.txt"))]),
        )]);
        let mut m = Merged::default();
        let files = merge_state(&mut mine, &theirs, &mut m);
        assert_eq!(m.agents, vec!["dev/b"]);
        assert_eq!(mine.phases["dev"].agents["a"].status, AgentStatus::Succeeded, "ours is kept");
        assert_eq!(mine.phases["dev"].agents["b"].status, AgentStatus::Failed);
        assert_eq!(files, vec!["b.txt", ".claude/logs/agents/r_b.txt.log"]);
    }

    #[test]
    fn a_phase_taken_further_replaces_ours() {
        let mut done = running(vec![("a", agent(AgentStatus::Succeeded, "a.txt"))]);
        done.status = PhaseStatus::Succeeded;
        let mut mine = state(vec![("plan", PhaseState::pending())]);
        let theirs = state(vec![("plan", done.clone())]);
        let mut m = Merged::default();
        merge_state(&mut mine, &theirs, &mut m);
        assert_eq!(mine.phases["plan"], done);
        // And never the other way round.
        let mut m = Merged::default();
        let older = state(vec![("plan", PhaseState::pending())]);
        assert!(merge_state(&mut mine, &older, &mut m).is_empty());
        assert_eq!(mine.phases["plan"].status, PhaseStatus::Succeeded);
    }

    #[test]
    fn copies_stay_in_the_workspace() {
        let root = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ws = Confinement::new(root.path());
        std::fs::create_dir_all(dir.path().join("docs")).unwrap();
        std::fs::write(dir.path().join("docs/a.md"), "a").unwrap();
        assert_eq!(copy_in(&ws, dir.path(), "docs/a.md", 0), Ok(true));
        assert_eq!(std::fs::read_to_string(root.path().join("docs/a.md")).unwrap(), "a");
        assert_eq!(copy_in(&ws, dir.path(), "missing.md", 0), Ok(false));
        {
            use std::os::unix::fs::PermissionsExt;
            let script = dir.path().join("docs/run.sh");
            std::fs::write(&script, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
            assert_eq!(copy_in(&ws, dir.path(), "docs/run.sh", 0), Ok(true));
            let mode = std::fs::metadata(root.path().join("docs/run.sh")).unwrap().permissions().mode();
            assert!(mode & 0o100 != 0, "the script is no longer executable: {mode:o}");
            let plain = std::fs::metadata(root.path().join("docs/a.md")).unwrap().permissions().mode();
            assert_eq!(plain & 0o111, 0, "{plain:o}");
        }
        assert!(copy_in(&ws, dir.path(), "../escape.md", 0).is_err());
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        assert!(copy_in(&ws, dir.path(), "link", 0).is_err());
        std::os::unix::fs::symlink("docs", dir.path().join("docs-link")).unwrap();
        assert_eq!(
            copy_in(&ws, dir.path(), "docs-link/a.md", 0),
            Err("the job folder's copy is reached through a symlink".into())
        );
        assert!(!root.path().join("docs-link").exists());
    }

    #[test]
    fn recorded_execute_bits_come_back_and_nothing_else() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let root = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ws = Confinement::new(root.path());
        // As an artifact download leaves it: no execute bit; the manifest says 0o100 only.
        std::fs::write(dir.path().join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(dir.path().join("run.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(copy_in(&ws, dir.path(), "run.sh", 0o100), Ok(true));
        assert_eq!(mode(&root.path().join("run.sh")), 0o744);
        // The workspace's own copy had setuid, setgid or sticky bits: the copy keeps none,
        // executable or not.
        std::fs::write(dir.path().join("tool"), "x").unwrap();
        std::fs::write(root.path().join("tool"), "old").unwrap();
        std::fs::set_permissions(root.path().join("tool"), std::fs::Permissions::from_mode(0o3640)).unwrap();
        assert_eq!(copy_in(&ws, dir.path(), "tool", 0o111), Ok(true));
        assert_eq!(mode(&root.path().join("tool")), 0o750, "execute only where readable");
        std::fs::write(dir.path().join("plain"), "x").unwrap();
        std::fs::write(root.path().join("plain"), "old").unwrap();
        std::fs::set_permissions(root.path().join("plain"), std::fs::Permissions::from_mode(0o4644)).unwrap();
        assert_eq!(copy_in(&ws, dir.path(), "plain", 0), Ok(true));
        assert_eq!(mode(&root.path().join("plain")), 0o644);
        // Nothing recorded, nothing executable.
        std::fs::write(dir.path().join("data"), "x").unwrap();
        assert_eq!(copy_in(&ws, dir.path(), "data", 0), Ok(true));
        assert_eq!(mode(&root.path().join("data")) & 0o111, 0);
    }
}
