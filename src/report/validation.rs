//! `reports/checkpoint_validation_<phase>.md`: each required pattern, the files found, the
//! missing patterns, the status.

use std::fmt::Write;

use crate::state::{PhaseState, RunState};

pub(crate) fn path(phase: &str) -> String {
    format!("reports/checkpoint_validation_{phase}.md")
}

pub(crate) fn render(state: &RunState, phase: &str, ps: &PhaseState) -> String {
    let mut s = format!("# Checkpoint Validation: {phase}\n\n**Run ID:** {}\n\n", state.run_id);
    let Some(v) = &ps.validation else {
        let _ = writeln!(s, "**Status:** N/A\n\nThe phase declares no required artifacts.");
        return s;
    };
    let missing: Vec<&str> = v.patterns.iter().filter(|p| p.files.is_empty()).map(|p| p.pattern.as_str()).collect();
    let found: usize = v.patterns.iter().map(|p| p.files.len()).sum();
    let _ = writeln!(s, "**Status:** {}\n", if v.passed { "PASS" } else { "FAIL" });
    let _ = writeln!(
        s,
        "- **Patterns:** {}\n- **Found:** {found} file(s)\n- **Missing:** {} pattern(s)\n",
        v.patterns.len(),
        missing.len()
    );
    let _ = writeln!(s, "| Pattern | Files | Status |\n|---------|-------|--------|");
    for p in &v.patterns {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} |",
            p.pattern,
            p.files.len(),
            if p.files.is_empty() { "❌ missing" } else { "✅ found" }
        );
    }
    let _ = writeln!(s, "\n## Files Found\n");
    for p in v.patterns.iter().filter(|p| !p.files.is_empty()) {
        let _ = writeln!(s, "### `{}`\n", p.pattern);
        for f in &p.files {
            let _ = writeln!(s, "- `{f}`");
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Missing Patterns\n");
    if missing.is_empty() {
        let _ = writeln!(s, "None.");
    }
    for m in missing {
        let _ = writeln!(s, "- `{m}`");
    }
    s
}
