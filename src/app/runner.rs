//! On a GitHub Actions runner: writing what `crate::actions` renders — workflow commands to
//! stdout, step outputs to `$GITHUB_OUTPUT`, the job summary to `$GITHUB_STEP_SUMMARY`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::AppError;
use crate::actions::{self, Renderer};
use crate::config::Workflow;
use crate::diagnostic::Diagnostic;
use crate::executor::Redactor;
use crate::state::RunState;

/// The runner's files, when this process runs on GitHub Actions.
pub(crate) struct Runner {
    output: Option<PathBuf>,
    summary: Option<PathBuf>,
    renderer: Renderer,
}

impl Runner {
    /// The runner, if `GITHUB_ACTIONS` is `true`.
    pub(crate) fn detect() -> Option<Runner> {
        Self::from_env(|k| std::env::var(k).ok())
    }

    fn from_env(var: impl Fn(&str) -> Option<String>) -> Option<Runner> {
        if var("GITHUB_ACTIONS").as_deref() != Some("true") {
            return None;
        }
        let path = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        Some(Runner {
            output: path("GITHUB_OUTPUT"),
            summary: path("GITHUB_STEP_SUMMARY"),
            renderer: Renderer { workspace: path("GITHUB_WORKSPACE") },
        })
    }

    /// `::add-mask::` for each secret value, before anything else is printed.
    pub(crate) fn mask(&self, redactor: &Redactor) {
        print_flushed(&actions::masks(redactor));
    }

    /// Log groups, annotations, step outputs and the job summary of a run that ended with `code`.
    pub(crate) fn finish(&self, wf: &Workflow, state: &RunState, code: i32, since: DateTime<Utc>, redactor: &Redactor) {
        // The HTML report goes with the records (`reports/` is uploaded), so it is written before
        // the upload list is made; into the workspace, where agents write: never through a link
        // out of it.
        let report = crate::timeline::html::default_path(&state.run_id);
        let html = crate::timeline::html::render(wf, state, Utc::now(), redactor);
        if let Err(e) = crate::workspace::Confinement::for_workflow(wf).write(&report, html.as_bytes()) {
            errln!("warning: the HTML report was not written: `{report}` {e}");
        }
        // Uploads drop file modes: the execute bits of the outputs travel in a manifest that a
        // later job's `run merge` reads (`crate::file_modes`).
        let files = super::merge::carried_files(state);
        if let Err(e) = crate::file_modes::record(&wf.root, files.iter().map(String::as_str)) {
            errln!("warning: the outputs' file modes were not recorded: `{}` {e}", crate::file_modes::MANIFEST);
        }
        let done = self.renderer.finish(wf, state, code, since, redactor);
        print_flushed(&done.log);
        self.write_outputs(&done.outputs, redactor);
        if let Some(path) = &self.summary {
            append(path, &done.summary);
        }
    }

    /// A refused command: annotations and the outputs.
    pub(crate) fn failed(&self, root: &Path, err: &AppError, code: i32, redactor: &Redactor) {
        let diags: Vec<&Diagnostic> = match err {
            AppError::Config(c) => c.diagnostics.iter().collect(),
            AppError::Input(d) => d.iter().collect(),
            _ => Vec::new(),
        };
        let (log, outputs) = self.renderer.failed(root, &diags, &err.render(), code, redactor);
        print_flushed(&log);
        self.write_outputs(&outputs, redactor);
    }

    /// A dry run: outputs that say so, and the plan in the job summary.
    pub(crate) fn dry_run(&self, phases: &[&str], plan: &str, redactor: &Redactor) {
        let (outputs, summary) = actions::dry_run(phases, plan, redactor);
        self.write_outputs(&outputs, redactor);
        if let Some(path) = &self.summary {
            append(path, &summary);
        }
    }

    fn write_outputs(&self, outputs: &[(&str, String)], redactor: &Redactor) {
        if let Some(path) = &self.output {
            append(path, &actions::outputs_text(outputs, redactor));
        }
    }
}

fn print_flushed(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Append to a runner file; a runner file that cannot be written loses that text only.
fn append(path: &Path, text: &str) {
    let written =
        std::fs::OpenOptions::new().create(true).append(true).open(path).and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        errln!("warning: cannot write `{}` for the GitHub runner: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_on_a_runner() {
        assert!(Runner::from_env(|_| None).is_none());
        let env = |k: &str| match k {
            "GITHUB_ACTIONS" => Some("true".to_owned()),
            "GITHUB_OUTPUT" => Some("/tmp/out".to_owned()),
            _ => None,
        };
        let r = Runner::from_env(env).unwrap();
        assert_eq!(r.output.as_deref(), Some(Path::new("/tmp/out")));
        assert!(r.summary.is_none());
    }
}
