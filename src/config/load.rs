//! Reading `.claude/config.yaml` into a validated [`Workflow`], or refusing it with diagnostics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use globset::GlobBuilder;

use super::model::{
    Agent, AgentKind, ArtifactPattern, Consensus, DEFAULT_CHECKLIST, Phase, RetryPolicy, Settings, WaitMode, Workflow,
};
use super::raw::{RawConfig, RawPhase};
use super::span::{Duplicate, SpanIndex};
use crate::diagnostic::{Diagnostic, Pos, did_you_mean};

/// The config file relative to the workspace when none is given.
pub(crate) const DEFAULT_CONFIG: &str = ".claude/config.yaml";
/// The state file relative to the workspace when the config names none.
pub(crate) const DEFAULT_STATE_FILE: &str = ".claude/orchestrator_state.json";

/// A config that was refused: one diagnostic per problem found.
#[derive(Debug)]
pub(crate) struct ConfigError {
    pub diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f, "\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl From<Diagnostic> for ConfigError {
    fn from(d: Diagnostic) -> Self {
        ConfigError { diagnostics: vec![d] }
    }
}

/// Load and validate the config at `config_path` (as the user named it) for workspace `root`.
pub(crate) fn load(root: &Path, config_path: &Path) -> Result<Workflow, ConfigError> {
    let full = if config_path.is_absolute() { config_path.to_path_buf() } else { root.join(config_path) };
    let source = match crate::text_file::read(&full) {
        Ok(s) => s,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "run `orchestrator init` to create one, or pass `--config PATH`"
            } else {
                "check that the file is readable UTF-8 text"
            };
            return Err(Diagnostic::new(format!("cannot read config: {e}"), config_path).help(hint).into());
        }
    };
    parse(root, config_path, &source)
}

/// Validate config `source` read from `config_path`.
pub(crate) fn parse(root: &Path, config_path: &Path, source: &str) -> Result<Workflow, ConfigError> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    // The two parses side by side (a large config's start is otherwise one core's work): the
    // positions index, and serde's. The index is waited for only where it is needed: for an
    // error's position, and at the end, for keys given twice (which come before any other error).
    let spans = Spans::build(source);
    let raw = serde_yaml::from_str::<RawConfig>(source);
    let raw: RawConfig = match raw {
        Ok(raw) => raw,
        Err(e) => {
            return Err(given_twice(spans.duplicates(), config_path, source)
                .unwrap_or_else(|| serde_diagnostic(&e, config_path, source).into()));
        }
    };
    let mut check = Checker { file: config_path, source, spans: &spans, errors: Vec::new() };
    let workflow = check.workflow(root, raw);
    if let Some(twice) = given_twice(spans.duplicates(), config_path, source) {
        return Err(twice);
    }
    if check.errors.is_empty() { Ok(workflow) } else { Err(ConfigError { diagnostics: check.errors }) }
}

/// Keys given twice, reported before anything else: serde keeps one of two equal keys silently
/// (maps) or points at the mapping (fields). The second occurrence, naming the first.
fn given_twice(dups: &[Duplicate], config_path: &Path, source: &str) -> Option<ConfigError> {
    if dups.is_empty() {
        return None;
    }
    // What lies under a repeated key repeats too: only the key itself is reported.
    let inside = |path: &str| {
        dups.iter().any(|(d, ..)| path.strip_prefix(d.as_str()).is_some_and(|r| r.starts_with(['.', '['])))
    };
    let diagnostics = dups
        .iter()
        .filter(|(path, ..)| !inside(path))
        .map(|(path, first, again)| {
            let key = path.rsplit('.').next().unwrap_or(path);
            Diagnostic::new(format!("`{path}` is given twice"), config_path)
                .at(source, Some(*again), key.chars().count())
                .help(format!("it was first given at line {}; keep one of them", first.line))
        })
        .collect();
    Some(ConfigError { diagnostics })
}

/// Where the config's nodes sit. The keys given twice, which every load checks, are found on a
/// thread of their own beside serde's parse and waited for on first use; the index of every
/// node's position, which only an error needs, is built when one asks for it.
struct Spans<'a> {
    source: &'a str,
    finding: std::sync::Mutex<Option<std::thread::JoinHandle<Vec<Duplicate>>>>,
    duplicates: std::sync::OnceLock<Vec<Duplicate>>,
    index: std::sync::OnceLock<SpanIndex>,
}

impl<'a> Spans<'a> {
    fn build(source: &'a str) -> Spans<'a> {
        let owned = source.to_owned();
        let finding = std::thread::Builder::new().spawn(move || SpanIndex::duplicates_in(&owned)).ok();
        let spans = Spans {
            source,
            finding: std::sync::Mutex::new(finding),
            duplicates: std::sync::OnceLock::new(),
            index: std::sync::OnceLock::new(),
        };
        if spans.finding.lock().map(|b| b.is_none()).unwrap_or(true) {
            // No thread to be had: found here.
            let _ = spans.duplicates.set(SpanIndex::duplicates_in(source));
        }
        spans
    }

    /// Keys given twice; none if their thread panicked.
    fn duplicates(&self) -> &[Duplicate] {
        self.duplicates.get_or_init(|| {
            let handle = self.finding.lock().ok().and_then(|mut b| b.take());
            handle.and_then(|h| h.join().ok()).unwrap_or_default()
        })
    }

    /// Every node's position, indexed on first use.
    fn get(&self) -> &SpanIndex {
        self.index.get_or_init(|| SpanIndex::build(self.source))
    }
}

/// Turn a serde_yaml error into a diagnostic, with "did you mean" for unknown keys.
pub(crate) fn serde_diagnostic(e: &serde_yaml::Error, file: &Path, source: &str) -> Diagnostic {
    let pos = e.location().map(|l| Pos { line: l.line(), col: l.column() });
    let msg = strip_positions(&e.to_string());
    let (path, detail) = match msg.split_once(": ") {
        Some((p, d)) if !p.contains(' ') => (Some(p.to_owned()), d.to_owned()),
        _ => (None, msg.clone()),
    };
    if let Some(rest) = detail.strip_prefix("unknown field `")
        && let Some((key, expected)) = rest.split_once('`')
    {
        let expected: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let place = path.as_deref().map(|p| format!(" in `{p}`")).unwrap_or_default();
        let help = match did_you_mean(key, expected.iter().copied()) {
            Some(dym) => dym,
            None => format!("expected one of: {}", expected.join(", ")),
        };
        return Diagnostic::new(format!("unknown key `{key}`{place}"), file)
            .at(source, pos, key.chars().count())
            .help(help);
    }
    let place = path.map(|p| format!("`{p}`: ")).unwrap_or_default();
    let width = pos.map(|p| token_width(source, p)).unwrap_or(1);
    let (message, help) = if detail.starts_with("missing field") {
        (format!("{place}{detail}"), Some("see the config reference, docs/configuration.md".to_owned()))
    } else {
        (format!("{place}{detail}"), None)
    };
    Diagnostic::new(message, file).at(source, pos, width).maybe_help(help)
}

/// `msg` without serde_yaml's "at line N column M" fragments (the diagnostic shows the position).
fn strip_positions(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(" at line ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + " at line ".len()..];
        let skip = tail.find(|c: char| !(c.is_ascii_digit() || c == ' ' || "column".contains(c))).unwrap_or(tail.len());
        rest = &tail[skip..];
    }
    out.push_str(rest);
    out
}

/// The width of the token starting at `pos`, for the caret underline.
fn token_width(source: &str, pos: Pos) -> usize {
    source
        .lines()
        .nth(pos.line.saturating_sub(1))
        .map(|l| {
            l.chars()
                .skip(pos.col.saturating_sub(1))
                .take_while(|c| !matches!(c, ',' | ']' | '}' | '#') && !c.is_whitespace())
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

/// Bounds on an artifact glob (see `phase_artifacts`).
const MAX_GLOB_LEN: usize = 1024;
const MAX_GLOB_NESTING: i32 = 8;
const MAX_GLOB_ALTERNATIVES: usize = 256;

/// Whether `name` can safely be part of a file name.
pub(crate) fn is_safe_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether `name` is an environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub(super) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `p` is relative and stays inside the directory it is relative to.
fn stays_inside(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

pub(super) struct Checker<'a> {
    file: &'a Path,
    source: &'a str,
    spans: &'a Spans<'a>,
    errors: Vec<Diagnostic>,
}

impl Checker<'_> {
    /// Record an error at the value found at `path` in the document.
    pub(super) fn error(&mut self, path: &str, message: String, help: Option<String>) {
        // A value the file does not spell out (an implicit `needs`) is shown at its parent.
        let mut at = path;
        let mut pos = None;
        while pos.is_none() {
            pos = self.spans.get().value(at).or_else(|| self.spans.get().key(at));
            match at.rfind(['.', '[']) {
                Some(i) if pos.is_none() => at = &at[..i],
                _ => break,
            }
        }
        let width = pos.map(|p| token_width(self.source, p)).unwrap_or(1);
        self.errors.push(Diagnostic::new(message.to_string(), self.file).at(self.source, pos, width).maybe_help(help));
    }

    /// Record an error at the key of the entry at `path`.
    fn key_error(&mut self, path: &str, key: &str, message: String, help: Option<String>) {
        let pos = self.spans.get().key(path);
        self.errors.push(
            Diagnostic::new(message.to_string(), self.file).at(self.source, pos, key.chars().count()).maybe_help(help),
        );
    }

    /// A timeout in minutes: positive and at most a year.
    fn positive(&mut self, path: &str, value: Option<f64>, default: f64) -> f64 {
        match value {
            Some(v) if !(v.is_finite() && v > 0.0 && v <= MAX_MINUTES) => {
                self.error(
                    path,
                    format!("`{path}` must be a positive number of minutes up to {MAX_MINUTES}, got {v}"),
                    None,
                );
                default
            }
            Some(v) => v,
            None => default,
        }
    }

    fn workflow(&mut self, root: &Path, raw: RawConfig) -> Workflow {
        let settings = self.settings(&raw);
        let consensus = self.consensus(&raw);
        let phase_names: Vec<&str> = raw.phases.iter().map(|p| p.name.as_str()).collect();
        let agents = self.agents(&raw, &phase_names);
        let phases = self.phases(&raw, &agents);
        let secrets = self.secrets(&raw);
        Workflow {
            root: root.to_path_buf(),
            config_path: self.file.to_path_buf(),
            settings,
            consensus,
            agents,
            phases,
            policy_changes: Vec::new(),
            secrets,
        }
    }

    /// `secrets:` names environment variables: `[A-Za-z_][A-Za-z0-9_]*`.
    fn secrets(&mut self, raw: &RawConfig) -> Vec<String> {
        let names = raw.secrets.clone().unwrap_or_default();
        for (i, name) in names.iter().enumerate() {
            if !is_env_name(name) {
                self.error(
                    &format!("secrets[{i}]"),
                    format!("`{name}` in `secrets` is not an environment variable name"),
                    Some("list the names of the variables that hold secrets (letters, digits and `_`, not starting with a digit), e.g. `secrets: [DEPLOY_KEY]`, not their values".into()),
                );
            }
        }
        names
    }

    fn settings(&mut self, raw: &RawConfig) -> Settings {
        let o = &raw.orchestrator;
        let state_file = o.state_file.clone().unwrap_or_else(|| DEFAULT_STATE_FILE.to_owned());
        if !stays_inside(&state_file) {
            self.error(
                "orchestrator.state_file",
                format!("`orchestrator.state_file` must be a relative path inside the workspace, got `{state_file}`"),
                None,
            );
        }
        let max_parallel_agents = match o.max_parallel_agents {
            Some(0) => {
                self.error(
                    "orchestrator.max_parallel_agents",
                    "`orchestrator.max_parallel_agents` must be at least 1".into(),
                    None,
                );
                1
            }
            Some(n) => n as usize,
            None => 2,
        };
        let timeout = self.positive("orchestrator.timeout_minutes", o.timeout_minutes, 30.0);
        let kill_grace = match o.kill_grace_seconds {
            Some(v) if !(v.is_finite() && (0.0..=3600.0).contains(&v)) => {
                self.error(
                    "orchestrator.kill_grace_seconds",
                    format!("`orchestrator.kill_grace_seconds` must be between 0 and 3600 seconds, got {v}"),
                    None,
                );
                5.0
            }
            Some(v) => v,
            None => 5.0,
        };
        let r = &o.retry;
        let d = RetryPolicy::default();
        let mut retry = RetryPolicy {
            retries: r.retries.unwrap_or(d.retries),
            base_delay: r.base_delay.unwrap_or(d.base_delay),
            backoff: r.backoff.unwrap_or(d.backoff),
            jitter: r.jitter.unwrap_or(d.jitter),
            retryable_exit_codes: r.retryable_exit_codes.clone().unwrap_or(d.retryable_exit_codes),
            retryable_messages: r.retryable_messages.clone().unwrap_or(d.retryable_messages),
        };
        if retry.retries > 100 {
            self.error(
                "orchestrator.retry.retries",
                format!("`orchestrator.retry.retries` must be at most 100, got {}", retry.retries),
                None,
            );
        }
        if !(retry.base_delay.is_finite() && (0.0..=3600.0).contains(&retry.base_delay)) {
            self.error(
                "orchestrator.retry.base_delay",
                format!("`orchestrator.retry.base_delay` must be between 0 and 3600 seconds, got {}", retry.base_delay),
                None,
            );
        }
        if !(retry.backoff.is_finite() && (1.0..=100.0).contains(&retry.backoff)) {
            self.error(
                "orchestrator.retry.backoff",
                format!("`orchestrator.retry.backoff` must be between 1 and 100, got {}", retry.backoff),
                None,
            );
        }
        if !(retry.jitter.is_finite() && (0.0..=1.0).contains(&retry.jitter)) {
            self.error(
                "orchestrator.retry.jitter",
                format!("`orchestrator.retry.jitter` must be between 0 and 1, got {}", retry.jitter),
                None,
            );
        }
        for (i, m) in retry.retryable_messages.iter().enumerate() {
            if m.trim().is_empty() {
                self.error(
                    &format!("orchestrator.retry.retryable_messages[{i}]"),
                    "a retryable message must not be empty (it would match every line)".into(),
                    None,
                );
            }
        }
        retry.retryable_messages = retry.retryable_messages.iter().map(|m| m.to_lowercase()).collect();
        Settings {
            state_file: PathBuf::from(state_file),
            max_parallel_agents,
            timeout: Duration::from_secs_f64(timeout * 60.0),
            kill_grace: Duration::from_secs_f64(kill_grace),
            retry,
        }
    }

    fn consensus(&mut self, raw: &RawConfig) -> Consensus {
        let c = &raw.consensus;
        let mut label = |key: &str, value: &Option<String>, default: &str| -> String {
            match value {
                Some(v) if v.trim().is_empty() => {
                    self.error(&format!("consensus.{key}"), format!("`consensus.{key}` must not be empty"), None);
                    default.to_owned()
                }
                Some(v) => v.clone(),
                None => default.to_owned(),
            }
        };
        let approve_label = label("approve_label", &c.approve_label, "orchestrator:approved");
        let reject_label = label("reject_label", &c.reject_label, "orchestrator:rejected");
        if approve_label == reject_label {
            self.error(
                "consensus.reject_label",
                "`consensus.reject_label` must differ from `consensus.approve_label`".into(),
                None,
            );
        }
        let checklist = match &c.checklist {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    if item.trim().is_empty() {
                        self.error(
                            &format!("consensus.checklist[{i}]"),
                            "a checklist item must not be empty".into(),
                            None,
                        );
                    }
                }
                items.clone()
            }
            None => DEFAULT_CHECKLIST.iter().map(|s| s.to_string()).collect(),
        };
        let min_approvals = c.min_approvals.unwrap_or(1);
        if !(1..=100).contains(&min_approvals) {
            self.error(
                "consensus.min_approvals",
                format!("`consensus.min_approvals` must be between 1 and 100, got {min_approvals}"),
                None,
            );
        }
        let approvers = c.approvers.clone().unwrap_or_default();
        for (i, a) in approvers.iter().enumerate() {
            if a.trim().is_empty() || a.contains(char::is_whitespace) {
                self.error(&format!("consensus.approvers[{i}]"), format!("`{a}` is not a GitHub login"), None);
            }
        }
        let wait = match c.wait.as_deref() {
            None | Some("event") => WaitMode::Event,
            Some("poll") => WaitMode::Poll,
            Some(other) => {
                let help = did_you_mean(other, ["event", "poll"]).or_else(|| {
                    Some("`event` ends the step and resumes on a later event; `poll` keeps checking".into())
                });
                self.error(
                    "consensus.wait",
                    format!("`consensus.wait` must be `event` or `poll`, got `{other}`"),
                    help,
                );
                WaitMode::Event
            }
        };
        let poll_interval = match c.poll_interval_seconds {
            Some(v) if !(v.is_finite() && (1.0..=3600.0).contains(&v)) => {
                self.error(
                    "consensus.poll_interval_seconds",
                    format!("`consensus.poll_interval_seconds` must be between 1 and 3600, got {v}"),
                    None,
                );
                30.0
            }
            Some(v) => v,
            None => 30.0,
        };
        let poll_timeout = self.positive("consensus.poll_timeout_minutes", c.poll_timeout_minutes, 60.0);
        use crate::gate::tally::Channel;
        let decide_by = match &c.decide_by {
            None => Channel::ALL.to_vec(),
            Some(list) => {
                let mut out = Vec::new();
                for (i, name) in list.iter().enumerate() {
                    match Channel::ALL.iter().find(|ch| ch.as_str() == name.as_str()) {
                        Some(ch) if !out.contains(ch) => out.push(*ch),
                        Some(_) => {}
                        None => {
                            let help = did_you_mean(name, Channel::ALL.iter().map(|c| c.as_str()))
                                .or_else(|| Some("expected `labels`, `comments` or `reviews`".into()));
                            self.error(
                                &format!("consensus.decide_by[{i}]"),
                                format!("`{name}` is not a way to decide"),
                                help,
                            );
                        }
                    }
                }
                if list.is_empty() {
                    self.error(
                        "consensus.decide_by",
                        "`consensus.decide_by` is empty: no one could ever decide".into(),
                        Some("list one or more of `labels`, `comments`, `reviews`".into()),
                    );
                }
                out
            }
        };
        let command_prefix = match c.command_prefix.as_deref() {
            None => "/".to_owned(),
            Some(p) if p.is_empty() || p.len() > 8 || p.chars().any(|c| c.is_whitespace() || c.is_alphanumeric()) => {
                self.error(
                    "consensus.command_prefix",
                    format!("`consensus.command_prefix` must be 1 to 8 symbols, got `{p}`"),
                    Some("for example `/` (`/approve`) or `!` (`!approve`)".into()),
                );
                "/".to_owned()
            }
            Some(p) => p.to_owned(),
        };
        Consensus {
            approve_label,
            reject_label,
            checklist,
            approvers,
            min_approvals,
            require_checklist: c.require_checklist.unwrap_or(false),
            allow_author: c.allow_author.unwrap_or(false),
            allow_forks: c.allow_forks.unwrap_or(false),
            commit_status: c.commit_status.unwrap_or(false),
            commit_outputs: c.commit_outputs.unwrap_or(false),
            wait,
            poll_interval: Duration::from_secs_f64(poll_interval),
            poll_timeout: Duration::from_secs_f64(poll_timeout * 60.0),
            decide_by,
            command_prefix,
            rerun_on_push: c.rerun_on_push.unwrap_or(false),
        }
    }

    fn agents(&mut self, raw: &RawConfig, phase_names: &[&str]) -> BTreeMap<String, Agent> {
        if raw.agents.is_empty() {
            self.error("agents", "`agents` is empty: define at least one agent".into(), None);
        }
        let mut agents = BTreeMap::new();
        for (name, a) in &raw.agents {
            let path = format!("agents.{name}");
            if !is_safe_name(name) {
                self.key_error(
                    &path,
                    name,
                    format!("agent name `{name}` cannot be used in file names"),
                    Some(NAME_RULE.into()),
                );
            }
            let kind = match (&a.entrypoints, &a.llm) {
                (Some(_), Some(_)) => {
                    self.key_error(
                        &path,
                        name,
                        format!("agent `{name}` has both `entrypoints` and `llm`"),
                        Some("an agent is either a shell command or a language model: keep one".into()),
                    );
                    AgentKind::Subprocess { entrypoints: BTreeMap::new() }
                }
                (None, Some(llm)) => AgentKind::Llm(self.llm(&path, name, llm)),
                (e, None) => {
                    let entrypoints = match e {
                        Some(e) if !e.is_empty() => e.clone(),
                        _ => {
                            self.key_error(&path, name, format!("agent `{name}` has no `entrypoints` and no `llm`"), Some("give a shell command per phase, or `default: <command>`, e.g. `entrypoints: {default: \"make build\"}`; or an `llm:` block".into()));
                            BTreeMap::new()
                        }
                    };
                    for (key, command) in &entrypoints {
                        let epath = format!("{path}.entrypoints.{key}");
                        if key != "default" && !phase_names.contains(&key.as_str()) {
                            let help = did_you_mean(key, phase_names.iter().copied().chain(["default"]))
                                .or_else(|| Some("entrypoint keys are phase names or `default`".into()));
                            self.key_error(
                                &epath,
                                key,
                                format!("entrypoint `{key}` of agent `{name}` is not a phase"),
                                help,
                            );
                        }
                        if command.trim().is_empty() {
                            self.error(
                                &epath,
                                format!("entrypoint `{key}` of agent `{name}` is an empty command"),
                                None,
                            );
                        }
                    }
                    AgentKind::Subprocess { entrypoints }
                }
            };
            let prompt = match &a.prompt {
                Some(p) if !stays_inside(p) => {
                    self.error(
                        &format!("{path}.prompt"),
                        format!("prompt of agent `{name}` must be a relative path inside the workspace, got `{p}`"),
                        None,
                    );
                    None
                }
                Some(p) => Some(PathBuf::from(p)),
                None => None,
            };
            agents.insert(name.clone(), Agent { name: name.clone(), description: a.description.clone(), kind, prompt });
        }
        agents
    }

    fn phases(&mut self, raw: &RawConfig, agents: &BTreeMap<String, Agent>) -> Vec<Phase> {
        if raw.phases.is_empty() {
            self.error("phases", "`phases` is empty: define at least one phase".into(), None);
        }
        let names: Vec<&str> = raw.phases.iter().map(|p| p.name.as_str()).collect();
        let mut seen = HashSet::new();
        let mut phases = Vec::new();
        for (i, p) in raw.phases.iter().enumerate() {
            let path = format!("phases[{i}]");
            if !is_safe_name(&p.name) || p.name == "default" {
                let help = if p.name == "default" {
                    "`default` is reserved for the fallback entrypoint".into()
                } else {
                    NAME_RULE.into()
                };
                self.error(&format!("{path}.name"), format!("phase name `{}` cannot be used", p.name), Some(help));
            }
            if !seen.insert(p.name.as_str()) {
                self.error(&format!("{path}.name"), format!("phase `{}` is defined twice", p.name), None);
            }
            self.phase_agents(&path, p, agents);
            let needs = self.phase_needs(&path, i, p, &names);
            let artifacts = self.phase_artifacts(&path, p);
            let timeout =
                p.timeout_minutes.map(|_| self.positive(&format!("{path}.timeout_minutes"), p.timeout_minutes, 30.0));
            phases.push(Phase {
                name: p.name.clone(),
                description: p.description.clone(),
                agents: p.agents.clone(),
                parallel: p.parallel,
                needs,
                requires_consensus: p.requires_consensus,
                artifacts,
                timeout: timeout.map(|m| Duration::from_secs_f64(m * 60.0)),
                approve_label: self.phase_label(&path, "approve_label", &p.approve_label),
                reject_label: self.phase_label(&path, "reject_label", &p.reject_label),
            });
        }
        self.check_cycles(&phases);
        phases
    }

    fn phase_label(&mut self, path: &str, key: &str, label: &Option<String>) -> Option<String> {
        match label {
            Some(l) if l.trim().is_empty() => {
                self.error(&format!("{path}.{key}"), format!("`{key}` must not be empty"), None);
                None
            }
            other => other.clone(),
        }
    }

    fn phase_agents(&mut self, path: &str, p: &RawPhase, agents: &BTreeMap<String, Agent>) {
        if p.agents.is_empty() {
            self.error(&format!("{path}.agents"), format!("phase `{}` has no agents", p.name), None);
        }
        let mut seen = HashSet::new();
        for (j, a) in p.agents.iter().enumerate() {
            let apath = format!("{path}.agents[{j}]");
            match agents.get(a) {
                None => {
                    let help = did_you_mean(a, agents.keys().map(String::as_str));
                    self.error(&apath, format!("unknown agent `{a}` in phase `{}`", p.name), help);
                }
                Some(agent) => {
                    if let AgentKind::Subprocess { entrypoints } = &agent.kind
                        && !entrypoints.is_empty()
                        && !entrypoints.contains_key(&p.name)
                        && !entrypoints.contains_key("default")
                    {
                        self.error(
                            &apath,
                            format!("agent `{a}` has no entrypoint for phase `{}` and no `default`", p.name),
                            Some(format!(
                                "add `{}: <command>` or `default: <command>` under `agents.{a}.entrypoints`",
                                p.name
                            )),
                        );
                    }
                }
            }
            if !seen.insert(a.as_str()) {
                self.error(&apath, format!("agent `{a}` is listed twice in phase `{}`", p.name), None);
            }
        }
    }

    fn phase_needs(&mut self, path: &str, i: usize, p: &RawPhase, names: &[&str]) -> Vec<String> {
        let Some(needs) = &p.needs else {
            // Without `needs`, phases run in the order they are declared.
            return if i == 0 { Vec::new() } else { vec![names[i - 1].to_owned()] };
        };
        let mut seen = HashSet::new();
        for (j, n) in needs.iter().enumerate() {
            let npath = format!("{path}.needs[{j}]");
            if n == &p.name {
                self.error(&npath, format!("phase `{n}` needs itself"), None);
            } else if !names.contains(&n.as_str()) {
                let help = did_you_mean(n, names.iter().copied());
                self.error(&npath, format!("phase `{}` needs unknown phase `{n}`", p.name), help);
            }
            if !seen.insert(n.as_str()) {
                self.error(&npath, format!("phase `{}` lists `{n}` twice in `needs`", p.name), None);
            }
        }
        needs.clone()
    }

    fn phase_artifacts(&mut self, path: &str, p: &RawPhase) -> Vec<ArtifactPattern> {
        let mut out = Vec::new();
        for (j, pattern) in p.artifacts.iter().enumerate() {
            let apath = format!("{path}.artifacts[{j}]");
            if !stays_inside(pattern.trim_start_matches("./")) || pattern.contains("..") {
                self.error(
                    &apath,
                    format!("artifact pattern `{pattern}` must be relative and stay inside the workspace"),
                    None,
                );
                continue;
            }
            // globset recurses on nested `{…}` and its regex grows with every alternative: a
            // pattern past these bounds is refused here rather than overflow the stack there.
            let depth = pattern
                .chars()
                .scan(0i32, |d, c| {
                    *d += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    Some(*d)
                })
                .max()
                .unwrap_or(0);
            let alternatives = pattern.matches(',').count();
            if pattern.len() > MAX_GLOB_LEN || depth > MAX_GLOB_NESTING || alternatives > MAX_GLOB_ALTERNATIVES {
                self.error(
                    &apath,
                    format!(
                        "artifact pattern in phase `{}` is too complex: {} characters, `{{…}}` nested {depth} deep, {alternatives} alternatives",
                        p.name,
                        pattern.len()
                    ),
                    Some(format!(
                        "keep a pattern under {MAX_GLOB_LEN} characters, with `{{…}}` nested at most {MAX_GLOB_NESTING} deep and at most {MAX_GLOB_ALTERNATIVES} alternatives; list several patterns instead"
                    )),
                );
                continue;
            }
            match GlobBuilder::new(pattern).literal_separator(true).build() {
                Ok(glob) => out.push(ArtifactPattern { pattern: pattern.clone(), matcher: glob.compile_matcher() }),
                Err(e) => {
                    let detail = e.kind().to_string();
                    self.error(
                        &apath,
                        format!("invalid glob `{pattern}` in phase `{}`: {detail}", p.name),
                        Some("globs use `*`, `**`, `?`, `[abc]` and `{a,b}`".into()),
                    );
                }
            }
        }
        out
    }

    /// Refuse cycles in `needs`, naming the cycle and pointing at the edge that closes it.
    fn check_cycles(&mut self, phases: &[Phase]) {
        let index: HashMap<&str, usize> = phases.iter().enumerate().map(|(i, p)| (p.name.as_str(), i)).collect();
        // 0 = unvisited, 1 = on the stack, 2 = done
        let mut mark = vec![0u8; phases.len()];
        let mut stack: Vec<usize> = Vec::new();
        for start in 0..phases.len() {
            if mark[start] == 0
                && let Some((from, to)) = visit(start, phases, &index, &mut mark, &mut stack)
            {
                let pos = stack.iter().position(|&s| s == to).unwrap_or(0);
                let mut cycle: Vec<&str> = stack[pos..].iter().map(|&s| phases[s].name.as_str()).collect();
                cycle.push(&phases[to].name);
                let j = phases[from].needs.iter().position(|n| n == &phases[to].name).unwrap_or(0);
                let mut at = format!("phases[{from}].needs[{j}]");
                if self.spans.get().value(&at).is_none() {
                    at = format!("phases[{from}].name");
                }
                self.error(
                    &at,
                    format!("phases depend on each other in a cycle: {}", cycle.join(" → ")),
                    Some("remove one of these `needs` entries (a phase without `needs` follows the phase declared before it)".into()),
                );
                return;
            }
        }
    }
}

/// Depth-first search; returns the edge (from, to) that closes a cycle, leaving the path in `stack`.
fn visit(
    node: usize,
    phases: &[Phase],
    index: &HashMap<&str, usize>,
    mark: &mut [u8],
    stack: &mut Vec<usize>,
) -> Option<(usize, usize)> {
    mark[node] = 1;
    stack.push(node);
    for need in &phases[node].needs {
        let Some(&next) = index.get(need.as_str()) else { continue };
        if mark[next] == 1 {
            return Some((node, next));
        }
        if mark[next] == 0
            && let Some(edge) = visit(next, phases, index, mark, stack)
        {
            return Some(edge);
        }
    }
    stack.pop();
    mark[node] = 2;
    None
}

/// The longest timeout accepted: a year, in minutes.
const MAX_MINUTES: f64 = 525_600.0;

const NAME_RULE: &str =
    "names start with a letter or digit and use only letters, digits, `_` and `-` (at most 64 characters)";
