//! Repository cleanliness: a score from 0 to 100 and a grade from A to F, computed from concrete
//! findings in the workspace after a phase. Each finding names its path and its cost in points.
//!
//! | rule | finding | cost | at most |
//! |---|---|---|---|
//! | `undeclared-change` | a file the phase added or modified that no agent reported and no artifact pattern of the phase matches | 5 | 30 |
//! | `stray-file` | a temp, backup or merge leftover (`*.orig`, `*.rej`, `*.bak`, `*.tmp`, `*.swp`, `*~`, `.#*`, `#*#`, `.DS_Store`) | 3 | 15 |
//! | `oversized-file` | a file over 5 MiB | 5 | 20 |
//! | `possible-secret` | a file named like a key or credentials (`.env`, `id_rsa`, `*.pem`, `*.key`, …), or a file the phase changed whose text looks like a private key or an access token | 20 | 40 |
//!
//! Grades: A ≥ 90, B ≥ 80, C ≥ 70, D ≥ 60, F below. Files ignored by `.gitignore` and the
//! orchestrator's own outputs are not looked at.

use std::path::Path;
use std::sync::OnceLock;

use regex::bytes::RegexSet;
use serde::Serialize;

use crate::config::Phase;
use crate::state::{ChangeSet, HygieneSummary};
use crate::workspace::Snapshot;

pub(crate) const OVERSIZED_BYTES: u64 = 5 * 1024 * 1024;

/// (rule, cost per finding, most points the rule can cost, description)
pub(crate) const RULES: [(&str, f64, f64, &str); 4] = [
    (
        "undeclared-change",
        5.0,
        30.0,
        "changed by the phase, but reported by no agent and matched by no artifact pattern",
    ),
    ("stray-file", 3.0, 15.0, "temporary, backup or merge leftover"),
    ("oversized-file", 5.0, 20.0, "larger than 5 MiB"),
    ("possible-secret", 20.0, 40.0, "looks like a private key, credentials or an access token"),
];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Finding {
    pub rule: &'static str,
    pub path: String,
    pub detail: String,
    /// Points this finding costs (0 once its rule's cap is reached).
    pub cost: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Hygiene {
    pub run_id: String,
    pub phase: String,
    pub cleanliness_score: f64,
    pub grade: String,
    pub findings: Vec<Finding>,
    pub rules: Vec<RuleDoc>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct RuleDoc {
    pub rule: &'static str,
    pub cost: f64,
    pub max: f64,
    pub description: &'static str,
}

impl Hygiene {
    pub(crate) fn summary(&self) -> HygieneSummary {
        HygieneSummary { score: self.cleanliness_score, grade: self.grade.clone(), phase: self.phase.clone() }
    }
}

pub(crate) fn grade(score: f64) -> &'static str {
    match score {
        s if s >= 90.0 => "A",
        s if s >= 80.0 => "B",
        s if s >= 70.0 => "C",
        s if s >= 60.0 => "D",
        _ => "F",
    }
}

fn stray(name: &str) -> bool {
    const SUFFIXES: [&str; 6] = [".orig", ".rej", ".bak", ".tmp", ".swp", "~"];
    SUFFIXES.iter().any(|s| name.ends_with(s))
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#') && name.len() > 1)
        || name == ".DS_Store"
}

fn secret_name(name: &str) -> bool {
    const NAMES: [&str; 8] =
        [".env", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "credentials.json", ".netrc", ".pgpass"];
    const SUFFIXES: [&str; 5] = [".pem", ".key", ".p12", ".pfx", ".keystore"];
    NAMES.contains(&name)
        || (name.starts_with(".env.") && name != ".env.example")
        || SUFFIXES.iter().any(|s| name.ends_with(s))
}

fn secret_patterns() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        RegexSet::new([
            r"-----BEGIN (RSA |EC |DSA |OPENSSH |PGP )?PRIVATE KEY( BLOCK)?-----",
            r"\bAKIA[0-9A-Z]{16}\b",
            r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b",
            r"\bgithub_pat_[A-Za-z0-9_]{60,}",
            r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
            r"\bsk-ant-[A-Za-z0-9_-]{20,}",
            r"\bsk-[A-Za-z0-9]{32,}",
        ])
        .expect("secret patterns are valid")
    })
}

/// Assess the workspace after `phase`: `after` is its snapshot, `changes` what the phase did,
/// `reported` the artifacts its agents reported.
pub(crate) fn assess(
    root: &Path,
    run_id: &str,
    phase: &Phase,
    changes: &ChangeSet,
    reported: &[String],
    after: &Snapshot,
) -> Hygiene {
    let mut found: Vec<(&'static str, String, String)> = Vec::new();
    for path in changes.added.iter().chain(&changes.modified) {
        let declared = reported.contains(path) || phase.artifacts.iter().any(|a| a.matcher.is_match(path));
        if !declared {
            found.push((
                "undeclared-change",
                path.clone(),
                "not reported by an agent nor matched by the phase's artifacts".into(),
            ));
        }
    }
    for (path, size) in after.sizes() {
        let name = path.rsplit('/').next().unwrap_or(path);
        if stray(name) {
            found.push(("stray-file", path.to_owned(), "temporary, backup or merge leftover".into()));
        }
        if size > OVERSIZED_BYTES {
            found.push(("oversized-file", path.to_owned(), format!("{:.1} MiB", size as f64 / (1024.0 * 1024.0))));
        }
        if secret_name(name) {
            found.push(("possible-secret", path.to_owned(), "file name of a key or credentials file".into()));
        }
    }
    for path in changes.added.iter().chain(&changes.modified) {
        let name = path.rsplit('/').next().unwrap_or(path);
        if secret_name(name) {
            continue; // already listed by name
        }
        let full = root.join(path);
        let small = std::fs::metadata(&full).map(|m| m.len() <= 1024 * 1024).unwrap_or(false);
        if small
            && let Ok(bytes) = std::fs::read(&full)
            && secret_patterns().is_match(&bytes)
        {
            found.push(("possible-secret", path.clone(), "contents look like a private key or an access token".into()));
        }
    }
    found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut spent: std::collections::HashMap<&str, f64> = Default::default();
    let findings: Vec<Finding> = found
        .into_iter()
        .map(|(rule, path, detail)| {
            let (_, cost, max, _) = RULES.iter().find(|r| r.0 == rule).expect("every rule is documented");
            let used = spent.entry(rule).or_default();
            let cost = cost.min(max - *used).max(0.0);
            *used += cost;
            Finding { rule, path, detail, cost }
        })
        .collect();
    let score = (100.0 - findings.iter().map(|f| f.cost).sum::<f64>()).max(0.0);
    Hygiene {
        run_id: run_id.to_owned(),
        phase: phase.name.clone(),
        cleanliness_score: score,
        grade: grade(score).to_owned(),
        findings,
        rules: RULES.iter().map(|&(rule, cost, max, description)| RuleDoc { rule, cost, max, description }).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified() {
        assert!(stray("x.orig") && stray("a~") && stray(".#lock") && stray("#x#") && stray(".DS_Store"));
        assert!(!stray("main.rs") && !stray("#"));
        assert!(secret_name(".env") && secret_name("id_rsa") && secret_name("server.pem") && secret_name(".env.local"));
        assert!(!secret_name(".env.example") && !secret_name("keys.rs"));
    }

    #[test]
    fn token_shapes_are_recognised() {
        let set = secret_patterns();
        assert!(set.is_match(b"-----BEGIN OPENSSH PRIVATE KEY-----"));
        assert!(set.is_match(b"aws = AKIAABCDEFGHIJKLMNOP"));
        assert!(set.is_match(format!("t=ghp_{}", "a".repeat(36)).as_bytes()));
        assert!(!set.is_match(b"just some text about keys"));
    }

    #[test]
    fn grades_follow_the_documented_bands() {
        assert_eq!(
            [grade(100.0), grade(90.0), grade(85.0), grade(70.0), grade(60.0), grade(59.9)],
            ["A", "A", "B", "C", "D", "F"]
        );
    }
}
