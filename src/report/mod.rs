//! The records a run leaves for people and machines: metrics (JSON and Prometheus), JUnit, the
//! checkpoint validation report, the hygiene summary and phase bundles. Everything here is
//! derived from the run state (plus the workspace), so a crashed run's records can be rebuilt.
//! Agents' text reaches them (outcomes, file names, output tails): the [`Recorder`] redacts
//! every record it writes.

pub mod bundle;
pub mod hygiene;
pub mod junit;
pub mod metrics;
pub mod prometheus;
pub mod validation;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Workflow;
use crate::executor::Redactor;
use crate::state::{RunState, replace_file};

pub const JUNIT_PATH: &str = "reports/junit.xml";
pub const HYGIENE_PATH: &str = "reports/hygiene_summary.json";
pub const PROMETHEUS_PATH: &str = ".claude/metrics/metrics.prom";

pub fn metrics_path(run_id: &str) -> String {
    format!(".claude/metrics/run_{run_id}.json")
}

/// How often metrics are refreshed while agents finish (phase boundaries always refresh).
const METRICS_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
#[error("cannot write `{path}`: {source}")]
pub struct RecordError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// Writes a run's records into the workspace.
pub struct Recorder {
    root: PathBuf,
    redactor: Redactor,
    last_metrics: Mutex<Option<Instant>>,
}

fn write(root: &Path, rel: &str, bytes: &[u8]) -> Result<(), RecordError> {
    replace_file(&confined(root, rel)?, bytes).map_err(|source| RecordError { path: rel.to_owned(), source })
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
        write(&self.root, rel, &self.redactor.redact(bytes))
    }
}

impl Recorder {
    pub fn new(root: &Path, redactor: Redactor) -> Recorder {
        Recorder { root: root.to_path_buf(), redactor, last_metrics: Mutex::new(None) }
    }

    /// Write the metrics JSON and the Prometheus file.
    pub fn metrics(&self, wf: &Workflow, state: &RunState) -> Result<(), RecordError> {
        let m = metrics::compute(wf, state, chrono::Utc::now());
        let json = serde_json::to_vec_pretty(&m).expect("metrics serialize");
        self.write(&metrics_path(&state.run_id), &json)?;
        self.write(PROMETHEUS_PATH, prometheus::render(&m).as_bytes())?;
        *self.last_metrics.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        Ok(())
    }

    /// Whether the metrics are due (last written a second ago or more); claims the slot, so
    /// concurrent callers write them once.
    pub fn metrics_due(&self) -> bool {
        let mut last = self.last_metrics.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < METRICS_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Everything that describes a finished phase: validation report and bundle.
    pub fn phase(&self, state: &RunState, phase: &str) -> Result<(), RecordError> {
        let Some(ps) = state.phases.get(phase) else { return Ok(()) };
        self.write(&validation::path(phase), validation::render(state, phase, ps).as_bytes())?;
        let target = confined(&self.root, &bundle::path(phase))?;
        bundle::write(&self.root, &target, state, phase, ps, &self.redactor)
            .map_err(|source| RecordError { path: bundle::path(phase), source })?;
        Ok(())
    }

    pub fn hygiene(&self, h: &hygiene::Hygiene) -> Result<(), RecordError> {
        self.write(HYGIENE_PATH, &serde_json::to_vec_pretty(h).expect("hygiene serializes"))
    }

    /// The JUnit report and the metrics: when a command's run ends (finished, failed, gated or
    /// interrupted).
    pub fn run(&self, wf: &Workflow, state: &RunState) -> Result<(), RecordError> {
        let xml = junit::render(wf, state, &self.redactor)
            .map_err(|e| RecordError { path: JUNIT_PATH.into(), source: std::io::Error::other(e.to_string()) })?;
        self.write(JUNIT_PATH, &xml)?;
        self.metrics(wf, state)
    }
}
