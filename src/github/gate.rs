//! The approval gate on a pull request. The request is one comment, found again by its hidden
//! marker and edited in place. Reviewers answer with labels; the decision is re-derived from
//! GitHub every time (labels, who added them, their permissions, the head commit), never trusted
//! from stored state, and any error leaves the gate closed.
//!
//! Who counts: the label must still be on the pull request and have been added after the gate
//! opened, by a user with write, maintain or admin permission or listed in `approvers`; bots and
//! (unless `allow_author`) the pull request's author never count. A reject from someone who
//! counts wins. An approval is bound to the head commit and a digest of the phase's artifacts:
//! after a push that changes the artifacts, earlier approvals are stale.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::client::{Client, GithubError};
use super::comment::{self, Meta};
use super::context::PrContext;
use crate::config::Workflow;
use crate::executor::Redactor;
use crate::gate::{Gate, GateError, GateFuture, request};
use crate::markup::inline;
use crate::state::{Decision, RunState};

pub struct GitHubGate {
    ctx: PrContext,
    client: Client,
    root: PathBuf,
    /// Secrets never reach the comment, whatever a diff quotes.
    redactor: Redactor,
    /// The login of the token's user, once asked (`None` inside: an app or Actions token).
    identity: tokio::sync::OnceCell<Option<String>>,
}

/// Percent-encode a path segment (label names hold `:` and spaces).
pub(crate) fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// sha256 over the phase's artifacts: their paths and contents, in path order.
pub fn artifact_digest(root: &std::path::Path, state: &RunState, phase: &str) -> String {
    let mut files: Vec<String> = Vec::new();
    if let Some(ps) = state.phases.get(phase) {
        files.extend(ps.agents.values().flat_map(|a| a.artifacts.iter().cloned()));
        if let Some(v) = &ps.validation {
            files.extend(v.patterns.iter().flat_map(|p| p.files.iter().cloned()));
        }
    }
    files.sort();
    files.dedup();
    let mut hash = Sha256::new();
    for f in &files {
        let content = std::fs::read(root.join(f)).unwrap_or_default();
        hash.update(f.as_bytes());
        hash.update([0]);
        hash.update(Sha256::digest(&content));
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

struct Pr {
    head_sha: String,
    head_ref: String,
    author: String,
}

/// Why a label did not count, for the comment.
fn bot(actor: &Value) -> bool {
    actor["type"] == "Bot" || actor["login"].as_str().is_some_and(|l| l.ends_with("[bot]"))
}

fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

/// What the people who count said in one round of a gate.
struct Tally {
    /// Distinct approvers whose approval counts.
    approvers: Vec<String>,
    /// The last reject from someone who counts.
    rejecter: Option<String>,
    /// Why labels did not count, for the comment.
    notes: Vec<String>,
}

/// The GitHub login that posts as the workflow's token.
const ACTIONS_BOT: &str = "github-actions[bot]";

impl GitHubGate {
    pub fn new(ctx: PrContext, root: PathBuf, redactor: Redactor) -> Result<GitHubGate, GithubError> {
        let client = Client::new(&ctx.api_url, &ctx.token)?;
        Ok(GitHubGate { ctx, client, root, redactor, identity: tokio::sync::OnceCell::new() })
    }

    fn issue(&self) -> String {
        format!("{}/issues/{}", self.ctx.repo_path(), self.ctx.number)
    }

    async fn pr(&self) -> Result<Pr, GithubError> {
        let pr = self.client.get(&format!("{}/pulls/{}", self.ctx.repo_path(), self.ctx.number)).await?;
        Ok(Pr {
            head_sha: pr["head"]["sha"].as_str().unwrap_or_default().to_owned(),
            head_ref: pr["head"]["ref"].as_str().unwrap_or_default().to_owned(),
            author: pr["user"]["login"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// The gate comment of this run's phase, if it exists, and all comments. Only a comment the
    /// run itself posted can be it (anyone can write the marker into a comment of their own),
    /// and only with the marker in its hidden trailer.
    async fn find(&self, marker: &str) -> Result<(Option<Value>, Vec<Value>), GithubError> {
        let comments = self.client.get_all(&format!("{}/comments", self.issue())).await?;
        let me = self.identity().await.map(str::to_owned);
        let own = |c: &Value| {
            c["user"]["login"].as_str().is_some_and(|l| {
                l.eq_ignore_ascii_case(ACTIONS_BOT) || me.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(l))
            })
        };
        let ours = comments
            .iter()
            .find(|c| own(c) && c["body"].as_str().is_some_and(|b| comment::has_marker(b, marker)))
            .cloned();
        Ok((ours, comments))
    }

    async fn write_comment(&self, existing: Option<&Value>, body: &str) -> Result<Value, GithubError> {
        match existing.and_then(|c| c["id"].as_u64()) {
            Some(id) => {
                self.client
                    .patch(&format!("{}/issues/comments/{id}", self.ctx.repo_path()), &json!({"body": body}))
                    .await
            }
            None => self.client.post(&format!("{}/comments", self.issue()), &json!({"body": body})).await,
        }
    }

    async fn set_status(
        &self,
        wf: &Workflow,
        sha: &str,
        phase: &str,
        state: &str,
        description: &str,
        url: &str,
    ) -> Result<(), GithubError> {
        if !wf.consensus.commit_status || sha.is_empty() {
            return Ok(());
        }
        let body = json!({"state": state, "context": format!("orchestrator/{phase}"), "description": description, "target_url": url});
        self.client.post(&format!("{}/statuses/{sha}", self.ctx.repo_path()), &body).await.map(drop)
    }

    /// The run's own identity: labels it adds never count. `GET /user` answers for a personal
    /// token; an Actions or app token is refused there (and is a bot anyway).
    async fn identity(&self) -> Option<&str> {
        self.identity
            .get_or_init(|| async {
                self.client.get("/user").await.ok().and_then(|u| u["login"].as_str().map(str::to_owned))
            })
            .await
            .as_deref()
    }

    /// Whether `login` may decide: listed in `approvers`, or write, maintain or admin permission.
    /// While the pull request changes the gate's policy, only write access counts.
    async fn authorized(&self, wf: &Workflow, login: &str) -> Result<Result<(), String>, GithubError> {
        if wf.policy_changes.is_empty() && wf.consensus.approvers.iter().any(|a| a.eq_ignore_ascii_case(login)) {
            return Ok(Ok(()));
        }
        let path = format!("{}/collaborators/{}/permission", self.ctx.repo_path(), segment(login));
        let role = match self.client.get(&path).await {
            Ok(v) => v["role_name"].as_str().or(v["permission"].as_str()).unwrap_or("none").to_owned(),
            Err(GithubError::Status { status: 404, .. }) => "none".to_owned(),
            Err(e) => return Err(e),
        };
        Ok(if matches!(role.as_str(), "admin" | "maintain" | "write") {
            Ok(())
        } else {
            Err(format!("has `{role}` access, not write"))
        })
    }

    /// The round of `phase`'s gate in `state`: how many times the phase has run.
    fn round(state: &RunState, phase: &str) -> u32 {
        state.phases.get(phase).map(|p| p.runs).unwrap_or(0)
    }

    async fn open_gate(&self, wf: &Workflow, state: &RunState, phase: &str) -> Result<String, GateError> {
        let mut pr = self.pr().await?;
        if wf.consensus.commit_outputs {
            let branch = match &self.ctx.head_ref {
                Some(b) => b.clone(),
                None => pr.head_ref.clone(),
            };
            let root = self.root.clone();
            let (state_copy, phase_name) = (state.clone(), phase.to_owned());
            let pushed = tokio::task::spawn_blocking(move || {
                super::outputs::commit_and_push(&root, &state_copy, &phase_name, &branch)
            })
            .await
            .map_err(|e| GateError::Other(e.to_string()))?
            .map_err(|e| GateError::Other(format!("cannot commit the outputs to the pull request's branch: {e}")))?;
            if let Some(sha) = pushed {
                // The approval binds to exactly the commit that holds the outputs.
                pr.head_sha = sha;
            }
        }
        let marker = comment::marker(&state.run_id, phase);
        let (existing, _) = self.find(&marker).await?;
        let digest = artifact_digest(&self.root, state, phase);
        let round = Self::round(state, phase);
        let previous = existing.as_ref().and_then(|c| comment::parse_meta(c["body"].as_str().unwrap_or_default()));
        // Reopening the same request (a resumed step, a reposted comment) keeps its time, so
        // labels added meanwhile still count; a new round or new artifacts start a new request.
        let opened_at = previous
            .filter(|m| m.digest == digest && m.round == round && m.decided_at.is_none())
            .map(|m| m.opened_at)
            .unwrap_or_else(Utc::now);
        let meta = Meta {
            run_id: state.run_id.clone(),
            phase: phase.to_owned(),
            head_sha: pr.head_sha.clone(),
            digest,
            opened_at,
            round,
            decided_at: None,
        };
        let body = existing.as_ref().and_then(|c| c["body"].as_str()).unwrap_or_default();
        let ticked = request::ticked(body, &wf.consensus.checklist);
        self.save_carried(state, phase)?;
        let body = comment::render(
            wf,
            state,
            phase,
            &self.ctx,
            &meta,
            &ticked,
            &["⏳ **Waiting for approval.**".to_owned()],
            &self.redactor,
        );
        let written = self.write_comment(existing.as_ref(), &body).await?;
        let url = written["html_url"].as_str().unwrap_or_default().to_owned();
        self.set_status(wf, &pr.head_sha, phase, "pending", "waiting for approval", &url).await?;
        Ok(if url.is_empty() { format!("pull request #{} comment", self.ctx.number) } else { url })
    }

    /// A state too large for the comment goes where the step's artifact picks it up; the comment
    /// points there (see `carry`).
    fn save_carried(&self, state: &RunState, phase: &str) -> Result<(), GateError> {
        if super::carry::block(state, &self.redactor).is_some() {
            return Ok(());
        }
        let path = self.root.join(super::carry::carried_file(phase));
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| crate::state::replace_file(&path, &super::carry::encode(state, &self.redactor)));
        written.map_err(|e| GateError::Other(format!("cannot write `{}`: {e}", path.display())))
    }

    /// Count the decision labels of one round: added from `meta.opened_at` (and, for a decided
    /// round, up to `meta.decided_at`), by people who count under the base branch's policy.
    #[allow(clippy::too_many_arguments)]
    async fn tally(
        &self,
        wf: &Workflow,
        phase: &str,
        meta: &Meta,
        pr: &Pr,
        events: &[Value],
        stale: bool,
        checklist_done: bool,
    ) -> Result<Tally, GithubError> {
        let (approve, reject) = wf.labels(phase);
        // GitHub's times are whole seconds.
        let from = meta.opened_at.timestamp();
        let until = meta.decided_at.map(|t| t.timestamp()).unwrap_or(i64::MAX);
        // Labels added in the round, in order; a person removing a label withdraws what it said
        // (the gate's own removals, by a bot, do not).
        let mut active: Vec<(String, Value)> = Vec::new();
        for ev in events {
            let label = ev["label"]["name"].as_str().unwrap_or_default();
            if label != approve && label != reject {
                continue;
            }
            let Some(at) = time_of(&ev["created_at"]).map(|t| t.timestamp()) else { continue };
            if at < from || at > until {
                continue;
            }
            match ev["event"].as_str() {
                Some("labeled") => active.push((label.to_owned(), ev["actor"].clone())),
                Some("unlabeled") if !bot(&ev["actor"]) => active.retain(|(l, _)| l != label),
                _ => {}
            }
        }
        let mut tally = Tally { approvers: Vec::new(), rejecter: None, notes: Vec::new() };
        let mut seen: Vec<(String, String)> = Vec::new();
        let allow_author = wf.consensus.allow_author && wf.policy_changes.is_empty();
        for (label, actor) in &active {
            let login = actor["login"].as_str().unwrap_or_default().to_owned();
            if seen.contains(&(login.clone(), label.clone())) {
                continue;
            }
            seen.push((login.clone(), label.clone()));
            let why_not = if bot(actor) {
                Some("is a bot".to_owned())
            } else if self.identity().await.is_some_and(|me| me.eq_ignore_ascii_case(&login)) {
                Some("is this run's own identity".to_owned())
            } else if login.eq_ignore_ascii_case(&pr.author) && !allow_author {
                Some("is the pull request's author".to_owned())
            } else {
                self.authorized(wf, &login).await?.err()
            };
            if let Some(why) = why_not {
                tally.notes.push(format!("⚠️ `{label}` from @{login} is ignored: @{login} {why}."));
                continue;
            }
            if *label == reject {
                tally.rejecter = Some(login);
            } else if stale {
                tally.notes.push(format!(
                    "⚠️ The approval from @{login} is stale: commit {} changed the phase's artifacts.",
                    &pr.head_sha[..pr.head_sha.len().min(7)]
                ));
            } else if wf.consensus.require_checklist && !checklist_done {
                tally.notes.push(format!("⚠️ The approval from @{login} waits for every checklist box to be ticked."));
            } else if !tally.approvers.contains(&login) {
                tally.approvers.push(login);
            }
        }
        Ok(tally)
    }

    /// Whether GitHub's record holds the approval of `phase` that the state claims: the run's
    /// own gate comment for this round, and enough approvals in it from people who count.
    async fn confirm_approval(&self, wf: &Workflow, state: &RunState, phase: &str) -> Result<bool, GateError> {
        let marker = comment::marker(&state.run_id, phase);
        let (ours, _) = self.find(&marker).await?;
        let Some(ours) = ours else { return Ok(false) };
        let body = ours["body"].as_str().unwrap_or_default();
        let Some(meta) = comment::parse_meta(body) else { return Ok(false) };
        if meta.round != Self::round(state, phase) {
            return Ok(false);
        }
        let pr = self.pr().await?;
        let events = self.client.get_all(&format!("{}/events", self.issue())).await?;
        let checklist_done = request::ticked(body, &wf.consensus.checklist).len() == wf.consensus.checklist.len();
        // Later pushes (the next phases' outputs among them) do not undo an approval given on
        // the commit it was bound to.
        let tally = self.tally(wf, phase, &meta, &pr, &events, false, checklist_done).await?;
        Ok(tally.rejecter.is_none() && tally.approvers.len() >= wf.consensus.min_approvals.max(1) as usize)
    }

    async fn decide(&self, wf: &Workflow, state: &RunState, phase: &str) -> Result<Option<Decision>, GateError> {
        let marker = comment::marker(&state.run_id, phase);
        let (ours, comments) = self.find(&marker).await?;
        let found = ours.and_then(|c| {
            let meta = comment::parse_meta(c["body"].as_str().unwrap_or_default())?;
            Some((c, meta))
        });
        let Some((ours, mut meta)) = found.filter(|(_, m)| m.round == Self::round(state, phase)) else {
            // Someone deleted the request or edited away its hidden lines, or it belongs to an
            // earlier round: post it again and keep waiting (labels added before count for
            // nothing).
            self.open_gate(wf, state, phase).await?;
            return Ok(None);
        };
        let body = ours["body"].as_str().unwrap_or_default();
        let pr = self.pr().await?;
        let (approve, reject) = wf.labels(phase);
        let labels: Vec<String> = self
            .client
            .get_all(&format!("{}/labels", self.issue()))
            .await?
            .iter()
            .filter_map(|l| l["name"].as_str().map(str::to_owned))
            .collect();
        let events = self.client.get_all(&format!("{}/events", self.issue())).await?;
        let stale = pr.head_sha != meta.head_sha && artifact_digest(&self.root, state, phase) != meta.digest;
        let ticked = request::ticked(body, &wf.consensus.checklist);
        let checklist_done = ticked.len() == wf.consensus.checklist.len();
        let Tally { approvers, rejecter, notes } =
            self.tally(wf, phase, &meta, &pr, &events, stale, checklist_done).await?;

        let now = Utc::now();
        let short = &pr.head_sha[..pr.head_sha.len().min(7)];
        let decision = if let Some(login) = &rejecter {
            let reason = comments
                .iter()
                .filter(|c| {
                    c["user"]["login"].as_str() == Some(login.as_str())
                        && !c["body"].as_str().is_some_and(|b| comment::has_marker(b, &marker))
                })
                .filter_map(|c| c["body"].as_str())
                .next_back()
                .map(|b| b.trim().to_owned());
            Some(Decision { approved: false, by: login.clone(), at: now, reason, commit: Some(pr.head_sha.clone()) })
        } else if approvers.len() >= wf.consensus.min_approvals as usize {
            Some(Decision {
                approved: true,
                by: approvers.join(", "),
                at: now,
                reason: None,
                commit: Some(pr.head_sha.clone()),
            })
        } else {
            None
        };

        let mut status = match &decision {
            Some(d) if d.approved => vec![format!(
                "✅ **Approved** by {} at {} on commit `{short}`.",
                d.by.split(", ").map(|b| format!("@{b}")).collect::<Vec<_>>().join(", "),
                d.at.format("%Y-%m-%d %H:%M UTC")
            )],
            Some(d) => vec![format!(
                "❌ **Rejected** by @{} at {} on commit `{short}`{}",
                d.by,
                d.at.format("%Y-%m-%d %H:%M UTC"),
                d.reason
                    .as_ref()
                    .map(|r| format!(": {}", inline(r.lines().next().unwrap_or_default())))
                    .unwrap_or_else(|| ".".into())
            )],
            None => vec![format!(
                "⏳ **Waiting for approval** ({} of {} so far{}).",
                approvers.len(),
                wf.consensus.min_approvals,
                if approvers.is_empty() {
                    String::new()
                } else {
                    format!(": {}", approvers.iter().map(|a| format!("@{a}")).collect::<Vec<_>>().join(", "))
                }
            )],
        };
        status.extend(notes);
        if decision.is_some() {
            meta.decided_at = Some(now);
        }
        self.save_carried(state, phase)?;
        let new_body = comment::render(wf, state, phase, &self.ctx, &meta, &ticked, &status, &self.redactor);
        // The carried state's timestamps move on every resume; only a visible change is written.
        if decision.is_some() || super::carry::strip(&new_body) != super::carry::strip(body) {
            self.write_comment(Some(&ours), &new_body).await?;
        }
        if decision.is_none() && !approvers.is_empty() && labels.contains(&approve) {
            // More approvals are needed: free the label so the next reviewer can add it.
            self.client.delete(&format!("{}/labels/{}", self.issue(), segment(&approve))).await?;
        }
        if let Some(d) = &decision {
            // Consumed: the next gate starts clean.
            for label in [&approve, &reject] {
                if labels.iter().any(|l| l == label) {
                    self.client.delete(&format!("{}/labels/{}", self.issue(), segment(label))).await?;
                }
            }
            let url = ours["html_url"].as_str().unwrap_or_default();
            let (state_name, text) = if d.approved { ("success", "approved") } else { ("failure", "rejected") };
            self.set_status(wf, &pr.head_sha, phase, state_name, text, url).await?;
        }
        Ok(decision)
    }
}

impl Gate for GitHubGate {
    fn open<'a>(&'a self, wf: &'a Workflow, state: &'a RunState, phase: &'a str) -> GateFuture<'a, String> {
        Box::pin(self.open_gate(wf, state, phase))
    }

    fn decision<'a>(
        &'a self,
        wf: &'a Workflow,
        state: &'a RunState,
        phase: &'a str,
    ) -> GateFuture<'a, Option<Decision>> {
        Box::pin(self.decide(wf, state, phase))
    }

    fn confirm<'a>(&'a self, wf: &'a Workflow, state: &'a RunState, phase: &'a str) -> GateFuture<'a, bool> {
        Box::pin(self.confirm_approval(wf, state, phase))
    }
}
