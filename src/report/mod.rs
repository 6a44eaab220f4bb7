//! The records a run leaves for people and machines: metrics (JSON and Prometheus), JUnit, the
//! checkpoint validation report, the hygiene summary and phase bundles. Everything here is
//! derived from the run state (plus the workspace), so a crashed run's records can be rebuilt.
//! Agents' text reaches them (outcomes, file names, output tails): the [`Recorder`] redacts
//! every record it writes.

pub(crate) mod bundle;
pub(crate) mod hygiene;
pub(crate) mod junit;
pub(crate) mod metrics;
pub(crate) mod prometheus;
pub(crate) mod validation;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Workflow;
use crate::executor::Redactor;
use crate::state::{RunState, replace_file};

pub(crate) const JUNIT_PATH: &str = "reports/junit.xml";
pub(crate) const HYGIENE_PATH: &str = "reports/hygiene_summary.json";
pub(crate) const PROMETHEUS_PATH: &str = ".claude/metrics/metrics.prom";

pub(crate) fn metrics_path(run_id: &str) -> String {
    format!(".claude/metrics/run_{run_id}.json")
}

/// How often metrics are refreshed at most while agents finish (phase boundaries always refresh).
const METRICS_EVERY: Duration = Duration::from_secs(1);
/// A refresh costs O(agents) (every agent's attempts are in the metrics): it waits this many
/// times its own last cost, so metrics take at most ~1% of a phase however large, and a phase
/// of n agents costs O(n) in metrics rather than a refresh of O(n) every second, O(n^2).
const METRICS_COST_FACTOR: u32 = 100;

#[derive(Debug, thiserror::Error)]
#[error("cannot write `{path}`: {source}")]
pub(crate) struct RecordError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// Writes a run's records into the workspace.
pub(crate) struct Recorder {
    root: PathBuf,
    redactor: Redactor,
    /// When the metrics were last written, and how long that took.
    last_metrics: Mutex<Option<(Instant, Duration)>>,
}

/// Whether a throttled refresh is due: `last` is when the metrics were last written and what it
/// cost, `now` the time now.
fn due(last: Option<(Instant, Duration)>, now: Instant) -> bool {
    last.is_none_or(|(at, cost)| now.saturating_duration_since(at) >= METRICS_EVERY.max(cost * METRICS_COST_FACTOR))
}

/// Write the record `rel` (see [`confined`]), replacing the file at its name atomically.
pub(crate) fn write_record(root: &Path, rel: &str, bytes: &[u8]) -> Result<(), RecordError> {
    replace_file(&confined(root, rel)?, bytes).map_err(|source| RecordError { path: rel.to_owned(), source })
}

/// The real location of `rel`, a folder of the tool's records (`.claude/agent_outputs/<agent>/
/// <phase>`), refused unless it is inside the workspace: the folder or one on the way may be a
/// link a pull request made.
pub(crate) fn confined_dir(root: &Path, rel: &str) -> Result<PathBuf, RecordError> {
    crate::workspace::Confinement::new(root).writable(rel).map(|(real, _)| real).map_err(|why| RecordError {
        path: rel.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, why.to_string()),
    })
}

/// Where the record `rel` really goes: its folder's real location, refused unless that is
/// inside the workspace (`reports/` or `.claude/metrics/` may be a link a pull request or an
/// agent made), and the file by name (a link there is replaced, not followed).
pub(crate) fn confined(root: &Path, rel: &str) -> Result<PathBuf, RecordError> {
    let Some((parent, name)) = rel.rsplit_once('/') else { return Ok(root.join(rel)) };
    let (dir, _) = crate::workspace::Confinement::new(root).writable(parent).map_err(|why| RecordError {
        path: rel.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, format!("its folder {why}")),
    })?;
    Ok(dir.join(name))
}

impl Recorder {
    /// Write `bytes` redacted.
    fn write(&self, rel: &str, bytes: &[u8]) -> Result<(), RecordError> {
        write_record(&self.root, rel, &self.redactor.redact(bytes))
    }

    /// Write what `write` makes, redacted as it goes (a large record is never held whole).
    fn write_with(
        &self,
        rel: &str,
        write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<(), RecordError> {
        crate::state::replace_with(&confined(&self.root, rel)?, false, |out| {
            let mut redacting = crate::executor::Redacting::new(out, &self.redactor);
            write(&mut redacting)?;
            redacting.finish().map(|_| ())
        })
        .map_err(|source| RecordError { path: rel.to_owned(), source })
    }
}

impl Recorder {
    pub(crate) fn new(root: &Path, redactor: Redactor) -> Recorder {
        Recorder { root: root.to_path_buf(), redactor, last_metrics: Mutex::new(None) }
    }

    /// Write the metrics JSON and the Prometheus file.
    pub(crate) fn metrics(&self, wf: &Workflow, state: &RunState) -> Result<(), RecordError> {
        let start = Instant::now();
        let m = metrics::compute(wf, state, chrono::Utc::now());
        self.write_with(&metrics_path(&state.run_id), |w| {
            serde_json::to_writer_pretty(w, &m).map_err(std::io::Error::other)
        })?;
        self.write(PROMETHEUS_PATH, prometheus::render(&m).as_bytes())?;
        *self.last_metrics.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), start.elapsed()));
        Ok(())
    }

    /// Whether the metrics are due: last written a second ago or more, and a hundred times
    /// what that write cost (the copy of the state the caller makes is of the same order); claims
    /// the slot, so concurrent callers write them once.
    pub(crate) fn metrics_due(&self) -> bool {
        let mut last = self.last_metrics.lock().unwrap_or_else(|e| e.into_inner());
        if !due(*last, Instant::now()) {
            return false;
        }
        let cost = last.map(|(_, cost)| cost).unwrap_or_default();
        *last = Some((Instant::now(), cost));
        true
    }

    /// Everything that describes a finished phase: validation report and bundle.
    pub(crate) fn phase(&self, state: &RunState, phase: &str) -> Result<(), RecordError> {
        let Some(ps) = state.phases.get(phase) else { return Ok(()) };
        self.write(&validation::path(phase), validation::render(state, phase, ps).as_bytes())?;
        let target = confined(&self.root, &bundle::path(phase))?;
        bundle::write(&self.root, &target, state, phase, ps, &self.redactor)
            .map_err(|source| RecordError { path: bundle::path(phase), source })?;
        Ok(())
    }

    pub(crate) fn hygiene(&self, h: &hygiene::Hygiene) -> Result<(), RecordError> {
        self.write(HYGIENE_PATH, &serde_json::to_vec_pretty(h).expect("hygiene serializes"))
    }

    /// The JUnit report and the metrics: when a command's run ends (finished, failed, gated or
    /// interrupted).
    pub(crate) fn run(&self, wf: &Workflow, state: &RunState) -> Result<(), RecordError> {
        // Side by side: both read the whole state (JUnit every transcript's tail too), and the
        // run waits for them before it exits.
        std::thread::scope(|s| {
            let junit = s.spawn(|| self.junit(wf, state));
            let metrics = self.metrics(wf, state);
            let junit = junit.join().unwrap_or_else(|_| {
                Err(RecordError { path: JUNIT_PATH.into(), source: std::io::Error::other("writing it panicked") })
            });
            junit.and(metrics)
        })
    }

    /// The JUnit report, which only a run's end writes.
    pub(crate) fn junit(&self, wf: &Workflow, state: &RunState) -> Result<(), RecordError> {
        self.write_with(JUNIT_PATH, |w| {
            junit::write(wf, state, &self.redactor, w).map_err(|e| std::io::Error::other(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_refresh_waits_a_second_or_a_hundred_times_its_cost() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(due(None, t0));
        // A cheap refresh: once a second.
        let cheap = Some((t0, Duration::from_millis(2)));
        assert!(!due(cheap, at(999)));
        assert!(due(cheap, at(1000)));
        // An expensive one (a large phase): a hundred times its cost, so refreshing stays ~1% of
        // the run however many agents there are.
        let costly = Some((t0, Duration::from_millis(40)));
        assert!(!due(costly, at(3999)));
        assert!(due(costly, at(4000)));
        // A clock that went backwards is not a reason to refresh.
        assert!(!due(Some((at(10), Duration::ZERO)), t0));
    }
}
