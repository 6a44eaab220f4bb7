//! The third-party actions that generated workflows use, pinned to a commit: a tag can be moved
//! by whoever controls the action's repository, and these steps run with write tokens. The
//! version travels as a YAML comment (`uses: owner/repo@SHA # vX.Y.Z`), where Dependabot and
//! reviewers read it. The same pins appear in `action.yml` and `.github/workflows/` (a test keeps
//! them in step).

/// An action at one commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pin {
    /// `owner/repo`.
    pub name: &'static str,
    /// The commit the version's tag pointed at (40 hex digits).
    pub sha: &'static str,
    /// The tag, for people and Dependabot.
    pub version: &'static str,
}

impl Pin {
    /// What goes after `uses:` (without the comment).
    pub(crate) fn reference(&self) -> String {
        format!("{}@{}", self.name, self.sha)
    }
}

pub(crate) const CHECKOUT: Pin =
    Pin { name: "actions/checkout", sha: "fbc6f3992d24b796d5a048ff273f7fcc4a7b6c09", version: "v5.1.0" };
pub(crate) const DOWNLOAD_ARTIFACT: Pin =
    Pin { name: "actions/download-artifact", sha: "37930b1c2abaa49bbe596cd826c3c89aef350131", version: "v7.0.0" };
pub(crate) const JUNIT_REPORT: Pin =
    Pin { name: "mikepenz/action-junit-report", sha: "3585e9575db828022551b4231f165eb59a0e74e3", version: "v5.6.2" };

/// Every pin generated workflows may use.
pub(crate) const ALL: [Pin; 3] = [CHECKOUT, DOWNLOAD_ARTIFACT, JUNIT_REPORT];

/// `yaml` with ` # VERSION` after each `uses: owner/repo@SHA` of a known pin (serde_yaml writes
/// no comments, so they are added to the text).
pub(crate) fn annotate(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() + 64);
    for line in yaml.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let pin = ALL.iter().find(|p| {
            body.trim_start().trim_start_matches("- ").strip_prefix("uses: ").is_some_and(|r| r == p.reference())
        });
        match pin {
            Some(p) => {
                out.push_str(body);
                out.push_str(" # ");
                out.push_str(p.version);
                if line.ends_with('\n') {
                    out.push('\n');
                }
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_full_commit_shas_with_a_version() {
        for p in ALL {
            assert_eq!(p.sha.len(), 40, "{p:?}");
            assert!(p.sha.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{p:?}");
            assert!(p.version.starts_with('v'), "{p:?}");
        }
    }

    #[test]
    fn annotate_adds_the_version_to_pinned_uses_lines_only() {
        let yaml = format!(
            "steps:\n- uses: {}\n  with:\n    x: 1\n- uses: ./\n- name: a\n  uses: {}\nrun: uses: {}",
            CHECKOUT.reference(),
            JUNIT_REPORT.reference(),
            CHECKOUT.reference()
        );
        let out = annotate(&yaml);
        assert!(out.contains(&format!("- uses: {} # v5.1.0\n", CHECKOUT.reference())), "{out}");
        assert!(out.contains(&format!("  uses: {} # {}\n", JUNIT_REPORT.reference(), JUNIT_REPORT.version)), "{out}");
        assert!(out.contains("- uses: ./\n"));
        // Not a `uses:` key: left alone.
        assert!(out.ends_with(&format!("run: uses: {}", CHECKOUT.reference())), "{out}");
    }
}
