//! The gate's policy in a pull request comes from the base branch.
//!
//! A pull request can change `.claude/config.yaml` like any other file, so the config checked
//! out from its head is the author's. What the agents do may come from there; who may approve,
//! how many approvals, which labels, the checklist and which phases are gated may not. The
//! caller fetches the base branch's config at the pull request's base commit (through the API,
//! never from the checkout) and [`apply`] puts its policy into the workflow, noting every
//! difference so that the gate comment can say the pull request changes the policy.

use super::{Consensus, Workflow};

/// Replace the gate policy of `head` with that of `base` (the base branch's config; `None` when
/// the base branch has none, so every phase is gated and only write access counts). Returns the
/// differences, also kept in `head.policy_changes`.
pub(crate) fn apply(head: &mut Workflow, base: Option<&Workflow>, config_path: &str) -> Vec<String> {
    let mut changes = Vec::new();
    match base {
        None => {
            // Nothing on the base branch says what the gate may allow: the defaults (one
            // approval from write access, no author, no forks, no listed approvers), and every
            // phase gated. The pull request's own `consensus` block decides nothing.
            changes.push(format!(
                "the base branch has no `{config_path}`, so every phase is gated under the default policy"
            ));
            let defaults = default_consensus();
            changes.extend(consensus_changes(&defaults, &head.consensus));
            head.consensus = defaults;
            for p in &mut head.phases {
                p.requires_consensus = true;
                p.approve_label = None;
                p.reject_label = None;
            }
        }
        Some(base) => {
            changes.extend(consensus_changes(&base.consensus, &head.consensus));
            head.consensus = base.consensus.clone();
            for p in &mut head.phases {
                match base.phase(&p.name) {
                    Some(b) => {
                        if b.requires_consensus != p.requires_consensus {
                            changes.push(format!(
                                "phase `{}`: `requires_consensus` {} → {}",
                                p.name, b.requires_consensus, p.requires_consensus
                            ));
                        }
                        for (key, theirs, ours) in [
                            ("approve_label", &b.approve_label, &mut p.approve_label),
                            ("reject_label", &b.reject_label, &mut p.reject_label),
                        ] {
                            if theirs != ours {
                                changes.push(format!("phase `{}`: `{key}` changed", p.name));
                                ours.clone_from(theirs);
                            }
                        }
                        p.requires_consensus = b.requires_consensus;
                    }
                    None => {
                        // A phase the base branch does not know is gated, whatever it says.
                        if !p.requires_consensus {
                            changes.push(format!("phase `{}` is new and not gated in the pull request", p.name));
                        }
                        p.requires_consensus = true;
                    }
                }
            }
        }
    }
    head.policy_changes.clone_from(&changes);
    changes
}

/// The gate policy of a config that says nothing about it.
fn default_consensus() -> Consensus {
    let minimal = "agents:\n  a: {entrypoints: {default: \"true\"}}\nphases:\n  - {name: p, agents: [a]}\n";
    match super::parse(std::path::Path::new("/"), std::path::Path::new("defaults.yaml"), minimal) {
        Ok(wf) => wf.consensus,
        // Unreachable: the minimal config is valid. Stay closed all the same.
        Err(_) => unreachable_defaults(),
    }
}

fn unreachable_defaults() -> Consensus {
    Consensus {
        approve_label: "orchestrator:approved".into(),
        reject_label: "orchestrator:rejected".into(),
        checklist: super::DEFAULT_CHECKLIST.iter().map(|s| s.to_string()).collect(),
        approvers: Vec::new(),
        min_approvals: 1,
        require_checklist: false,
        allow_author: false,
        commit_status: false,
        commit_outputs: false,
        allow_forks: false,
        wait: super::WaitMode::Event,
        poll_interval: std::time::Duration::from_secs(30),
        poll_timeout: std::time::Duration::from_secs(3600),
        decide_by: crate::gate::tally::Channel::ALL.to_vec(),
        command_prefix: "/".into(),
        rerun_on_push: false,
    }
}

fn consensus_changes(base: &Consensus, head: &Consensus) -> Vec<String> {
    let mut out = Vec::new();
    let mut diff = |key: &str, changed: bool, detail: String| {
        if changed {
            out.push(format!("`consensus.{key}`{detail}"));
        }
    };
    diff(
        "min_approvals",
        base.min_approvals != head.min_approvals,
        format!(" {} → {}", base.min_approvals, head.min_approvals),
    );
    diff(
        "allow_author",
        base.allow_author != head.allow_author,
        format!(" {} → {}", base.allow_author, head.allow_author),
    );
    diff("allow_forks", base.allow_forks != head.allow_forks, format!(" {} → {}", base.allow_forks, head.allow_forks));
    diff(
        "require_checklist",
        base.require_checklist != head.require_checklist,
        format!(" {} → {}", base.require_checklist, head.require_checklist),
    );
    diff("approvers", base.approvers != head.approvers, " changed".into());
    diff("approve_label", base.approve_label != head.approve_label, " changed".into());
    diff("reject_label", base.reject_label != head.reject_label, " changed".into());
    diff("checklist", base.checklist != head.checklist, " changed".into());
    diff("commit_status", base.commit_status != head.commit_status, " changed".into());
    diff("commit_outputs", base.commit_outputs != head.commit_outputs, " changed".into());
    diff("decide_by", base.decide_by != head.decide_by, " changed".into());
    diff("command_prefix", base.command_prefix != head.command_prefix, " changed".into());
    diff("rerun_on_push", base.rerun_on_push != head.rerun_on_push, " changed".into());
    diff(
        "wait",
        base.wait != head.wait || base.poll_interval != head.poll_interval || base.poll_timeout != head.poll_timeout,
        " changed".into(),
    );
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn wf(src: &str) -> Workflow {
        crate::config::parse(Path::new("/w"), Path::new(".claude/config.yaml"), src).unwrap()
    }

    const BASE: &str = "agents:\n  a: {entrypoints: {default: \"true\"}}\nphases:\n  - {name: plan, agents: [a], requires_consensus: true}\n  - {name: build, agents: [a]}\nconsensus: {min_approvals: 2}\n";

    #[test]
    fn the_base_policy_applies_and_every_difference_is_named() {
        let mut head = wf(
            "agents:\n  a: {entrypoints: {default: \"true\"}}\nphases:\n  - {name: plan, agents: [a], requires_consensus: false, approve_label: ok}\n  - {name: build, agents: [a]}\n  - {name: extra, agents: [a]}\nconsensus: {min_approvals: 1, allow_author: true, approvers: [mallory]}\n",
        );
        let changes = apply(&mut head, Some(&wf(BASE)), ".claude/config.yaml");
        assert_eq!(head.consensus.min_approvals, 2);
        assert!(!head.consensus.allow_author && head.consensus.approvers.is_empty());
        assert!(head.phase("plan").unwrap().requires_consensus);
        assert_eq!(head.phase("plan").unwrap().approve_label, None);
        assert!(!head.phase("build").unwrap().requires_consensus);
        assert!(head.phase("extra").unwrap().requires_consensus, "a new phase is gated");
        for needle in ["min_approvals", "allow_author", "approvers", "requires_consensus", "approve_label", "`extra`"] {
            assert!(changes.iter().any(|c| c.contains(needle)), "{needle} missing from {changes:?}");
        }
        assert_eq!(head.policy_changes, changes);
    }

    #[test]
    fn the_same_policy_changes_nothing_and_no_base_gates_everything() {
        let mut head = wf(BASE);
        assert!(apply(&mut head, Some(&wf(BASE)), ".claude/config.yaml").is_empty());
        let mut head = wf(BASE);
        let changes = apply(&mut head, None, ".claude/config.yaml");
        assert!(changes[0].contains("the base branch has no"), "{changes:?}");
        assert!(head.phases.iter().all(|p| p.requires_consensus));
        assert_eq!(head.consensus.min_approvals, 1, "the default policy, not the pull request's");
    }
}
