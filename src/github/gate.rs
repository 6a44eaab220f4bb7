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
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::client::{Client, GithubError};
use super::comment::{self, Meta};
use super::context::PrContext;
use super::timeline::{self, Timeline, time_of};
use crate::config::Workflow;
use crate::executor::Redactor;
use crate::gate::{Answer, Gate, GateError, GateFuture, request, tally};
use crate::markup::inline;
use crate::state::{Decision, GateState, PhaseStatus, RunState};

pub(crate) struct GitHubGate {
    ctx: PrContext,
    /// This process's client for the API and token (its cache and identity shared).
    client: Arc<Client>,
    root: PathBuf,
    /// Secrets never reach the comment, whatever a diff quotes.
    redactor: Redactor,
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

/// The phase's artifacts: what its agents reported and what its patterns matched, sorted.
fn phase_files(state: &RunState, phase: &str) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    if let Some(ps) = state.phases.get(phase) {
        files.extend(ps.agents.values().flat_map(|a| a.artifacts.iter().cloned()));
        if let Some(v) = &ps.validation {
            files.extend(v.patterns.iter().flat_map(|p| p.files.iter().cloned()));
        }
    }
    files.sort();
    files.dedup();
    files
}

/// sha256 over the phase's artifacts: their paths and contents, in path order. The files are
/// read on a blocking thread.
async fn artifact_digest(root: &std::path::Path, state: &RunState, phase: &str) -> Result<String, GateError> {
    let files = phase_files(state, phase);
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut hash = Sha256::new();
        for f in &files {
            let content = std::fs::read(root.join(f)).unwrap_or_default();
            hash.update(f.as_bytes());
            hash.update([0]);
            hash.update(Sha256::digest(&content));
        }
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    })
    .await
    .map_err(|e| GateError::Other(format!("reading the artifacts failed: {e}")))
}

struct Pr {
    head_sha: String,
    head_ref: String,
    author: String,
}

impl GitHubGate {
    pub(crate) fn new(ctx: PrContext, root: PathBuf, redactor: Redactor) -> Result<GitHubGate, GithubError> {
        let client = Client::shared(&ctx.api_url, &ctx.token)?;
        Ok(GitHubGate { ctx, client, root, redactor })
    }

    /// Run `call` with the client's cache kept beside the state of `wf`: read before, written
    /// after a success (a failed check leaves the cache as it was).
    async fn cached<T>(
        &self,
        wf: &Workflow,
        call: impl std::future::Future<Output = Result<T, GateError>>,
    ) -> Result<T, GateError> {
        self.client.keep_cache_in(&super::cache::cache_file(&wf.state_path())).await;
        let answer = call.await;
        if answer.is_ok() {
            self.client.persist().await;
        }
        answer
    }

    fn issue(&self) -> String {
        format!("{}/issues/{}", self.ctx.repo_path(), self.ctx.number)
    }

    /// The pull request: the one this command's policy lookup just read, or read now.
    async fn pr(&self) -> Result<Pr, GithubError> {
        let path = format!("{}/pulls/{}", self.ctx.repo_path(), self.ctx.number);
        let pr = self.client.get_shared_or_new(&path).await?;
        Ok(Pr {
            head_sha: pr["head"]["sha"].as_str().unwrap_or_default().to_owned(),
            head_ref: pr["head"]["ref"].as_str().unwrap_or_default().to_owned(),
            author: pr["user"]["login"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// The gate comment of this run's phase, if it exists, and the pull request's timeline.
    /// Only a comment the run itself posted can be it (anyone can write the marker into a
    /// comment of their own), and only with the marker in its hidden trailer.
    async fn find(&self, marker: &str) -> Result<(Option<Value>, Timeline), GithubError> {
        let tl = timeline::read(&self.client, &self.ctx).await?;
        let comments = &tl.comments;
        let me = self.own().await?.to_vec();
        let own = |c: &Value| c["user"]["login"].as_str().is_some_and(|l| super::client::is_own(&me, l));
        let ours = comments
            .iter()
            .find(|c| own(c) && c["body"].as_str().is_some_and(|b| comment::has_marker(b, marker)))
            .cloned();
        if ours.is_none() {
            // A bot posted this run's gate comment, and it is not one the run knows as itself:
            // most likely the workflow's token is a GitHub App's. Posting another comment on
            // every check would never end; say what to set instead.
            let stranger = comments.iter().find(|c| {
                c["user"]["type"] == "Bot"
                    && c["body"].as_str().is_some_and(|b| comment::has_marker(b, marker))
                    && !own(c)
            });
            if let Some(c) = stranger {
                let login = c["user"]["login"].as_str().unwrap_or_default();
                return Err(GithubError::Identity(format!(
                    "the gate comment of this run on pull request #{} was posted by `{login}`, which orchestrator does not know as itself (`GET /user` does not answer for a GitHub App's token)\nhelp: set `ORCHESTRATOR_BOT_LOGIN={login}` (the action's `bot-login` input) if that is the token the workflow gives orchestrator",
                    self.ctx.number
                )));
            }
        }
        Ok((ours, tl))
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

    /// The logins the run posts as (see `client::own_identities`), asked once: what they add
    /// never counts as a person's, and only what they post is the gate's.
    async fn own(&self) -> Result<Vec<String>, GithubError> {
        super::client::own_identities(&self.client).await
    }

    /// The role of `login` on the repository (`none` for a stranger).
    async fn role(&self, login: &str) -> Result<String, GithubError> {
        let path = format!("{}/collaborators/{}/permission", self.ctx.repo_path(), segment(login));
        match self.client.get(&path).await {
            Ok(v) => Ok(v["role_name"].as_str().or(v["permission"].as_str()).unwrap_or("none").to_owned()),
            Err(GithubError::Status { status: 404, .. }) => Ok("none".to_owned()),
            Err(e) => Err(e),
        }
    }

    /// The round of `phase`'s gate in `state`: how many times the phase has run.
    fn round(state: &RunState, phase: &str) -> u32 {
        state.phases.get(phase).map(|p| p.runs).unwrap_or(0)
    }

    /// GitHub's record of what people did on the pull request, from its timeline: label events,
    /// comments (not the run's own) and reviews.
    async fn record(&self, tl: &Timeline) -> Result<Record, GithubError> {
        let me = self.own().await?;
        let own = |login: &str| super::client::is_own(&me, login);
        let id = |v: &Value| v["id"].as_u64().unwrap_or(0);
        let comments = tl
            .comments
            .iter()
            .filter(|c| !own(c["user"]["login"].as_str().unwrap_or_default()))
            .filter_map(|c| {
                let at = time_of(&c["created_at"])?;
                Some(tally::Comment {
                    id: id(c),
                    at,
                    edited: time_of(&c["updated_at"]).is_some_and(|u| u.timestamp() > at.timestamp()),
                    author: timeline::person(&c["user"]),
                    body: c["body"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect();
        Ok(Record { labels: tl.labels.clone(), comments, reviews: tl.reviews.clone() })
    }

    /// Who is who for `logins`: the author, the run's own identity, and each one's role.
    async fn people(&self, pr: &Pr, logins: &[String]) -> Result<tally::People, GithubError> {
        let mut people = tally::People { author: pr.author.clone(), own: self.own().await?, roles: Default::default() };
        for login in logins {
            let role = self.role(login).await?;
            people.roles.insert(login.to_lowercase(), role);
        }
        Ok(people)
    }

    /// The tally of `round` under the base branch's rules.
    async fn count(
        &self,
        wf: &Workflow,
        phase: &str,
        round: &tally::Round,
        pr: &Pr,
        record: &Record,
        checklist_done: bool,
    ) -> Result<tally::Outcome, GithubError> {
        let (approve, reject) = wf.labels(phase);
        let rules = rules(wf, phase, &approve, &reject, checklist_done);
        let round = round.clone();
        let logins = tally::deciders(&rules, &round, &record.labels, &record.comments, &record.reviews);
        let people = self.people(pr, &logins).await?;
        Ok(tally::tally(
            &rules,
            &round,
            &people,
            !wf.policy_changes.is_empty(),
            &record.labels,
            &record.comments,
            &record.reviews,
        ))
    }

    /// The ids GitHub has given so far: what a new round does not count.
    fn seen_now(tl: &Timeline) -> tally::Seen {
        tally::Seen {
            event: tl.last_event,
            comment: tl.comments.iter().filter_map(|c| c["id"].as_u64()).max().unwrap_or(0),
            review: tl.reviews.iter().map(|r| r.id).max().unwrap_or(0),
        }
    }

    async fn open_gate(&self, wf: &Workflow, state: &RunState, phase: &str) -> Result<String, GateError> {
        let mut pr = self.pr().await?;
        let mut pushed_now = None;
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
                pr.head_sha = sha.clone();
                pushed_now = Some(sha);
            }
        }
        let marker = comment::marker(&state.run_id, phase);
        let (existing, tl) = self.find(&marker).await?;
        let digest = artifact_digest(&self.root, state, phase).await?;
        let round = Self::round(state, phase);
        let previous = existing.as_ref().and_then(|c| comment::parse_meta(c["body"].as_str().unwrap_or_default()));
        if let (Some(m), Some(c)) = (&previous, &existing)
            && m.digest == digest
            && m.round == round
            && m.decided_at.is_some()
        {
            // This round was decided already (a state carried from before the decision): the
            // decision stands, re-derived by `decide`.
            let url = c["html_url"].as_str().unwrap_or_default().to_owned();
            return Ok(if url.is_empty() { format!("pull request #{} comment", self.ctx.number) } else { url });
        }
        // Every opening is a new round, in which only what comes after counts: what is in the
        // comment now (hidden lines, ticks) may have been put there by anyone who can edit it.
        let mut history = previous.as_ref().map(|m| m.history.clone()).unwrap_or_default();
        if let Some(m) = &previous {
            history.push(m.decision.clone().unwrap_or_else(|| comment::RoundRecord {
                round: m.round,
                outcome: "superseded".into(),
                by: String::new(),
                at: Utc::now(),
                commit: m.head_sha.clone(),
            }));
        }
        let keep = history.len().saturating_sub(10);
        history.drain(..keep);
        let mut pushed = previous.as_ref().map(|m| m.pushed.clone()).unwrap_or_default();
        pushed.extend(pushed_now);
        let keep = pushed.len().saturating_sub(MAX_PUSHED);
        pushed.drain(..keep);
        let meta = Meta {
            run_id: state.run_id.clone(),
            phase: phase.to_owned(),
            head_sha: pr.head_sha.clone(),
            digest,
            opened_at: Utc::now(),
            round,
            seen: Some(Self::seen_now(&tl)),
            history,
            pushed,
            ..Meta::default()
        };
        // The state carried on already holds its open gate, so that a fresh runner decides it
        // instead of opening it again.
        let mut carried = state.clone();
        if let Some(ps) = carried.phases.get_mut(phase) {
            let request = existing
                .as_ref()
                .and_then(|c| c["html_url"].as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| format!("pull request #{} comment", self.ctx.number));
            ps.gate.get_or_insert(GateState { requested_at: meta.opened_at, request, decision: None });
        }
        let state = &carried;
        self.save_carried(state, phase)?;
        let files = crate::review::phase_diffs_blocking(&self.root, state, phase).await;
        let body =
            comment::render(wf, state, phase, &self.ctx, &meta, &[], &[WAITING.to_owned()], &files, &self.redactor);
        let written = self.write_comment(existing.as_ref(), &body).await?;
        let url = written["html_url"].as_str().unwrap_or_default().to_owned();
        if let Some(id) = written["id"].as_u64() {
            self.anchor_round(id).await?;
        }
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

    /// Whether GitHub's record holds the approval of `phase` that the state claims: the run's
    /// own gate comment for this round, and enough approvals in it from people who count.
    async fn confirm_approval(&self, wf: &Workflow, state: &RunState, phase: &str) -> Result<bool, GateError> {
        let marker = comment::marker(&state.run_id, phase);
        let (ours, tl) = self.find(&marker).await?;
        let Some(ours) = ours else { return Ok(false) };
        let body = ours["body"].as_str().unwrap_or_default();
        let Some(meta) = comment::parse_meta(body) else { return Ok(false) };
        if meta.round != Self::round(state, phase) {
            return Ok(false);
        }
        // The run's own marks say when the round opened and when it was approved; without
        // them, GitHub's record holds no approval the run gave.
        let anchors = self.anchors(ours["id"].as_u64().unwrap_or(0)).await?;
        let (Some((_, opened)), Some((_, approved))) = (anchors.opened, anchors.approved) else { return Ok(false) };
        let pr = self.pr().await?;
        let record = self.record(&tl).await?;
        let checklist_done = request::ticked(body, &wf.consensus.checklist).len() == wf.consensus.checklist.len();
        // Later pushes (the next phases' outputs among them) do not undo an approval given on
        // the commit it was bound to.
        let decided_on = meta.decision.as_ref().map(|d| d.commit.clone()).unwrap_or_else(|| pr.head_sha.clone());
        let round = tally::Round {
            anchor: Some(opened),
            opened_at: meta.opened_at,
            seen: meta.seen,
            decided_at: Some(approved),
            head_sha: decided_on.clone(),
            stale: false,
        };
        let head_now = pr.head_sha.clone();
        let at_decision = Pr { head_sha: decided_on.clone(), ..pr };
        let outcome = self.count(wf, phase, &round, &at_decision, &record, checklist_done).await?;
        let (approve, reject) = wf.labels(phase);
        if outcome.decision(&rules(wf, phase, &approve, &reject, checklist_done)) != Some(true) {
            return Ok(false);
        }
        // Pushed since, by someone other than the run: an approval does not cover what it
        // never saw.
        if !decided_on.is_empty() && decided_on != head_now {
            let artifacts = phase_files(state, phase);
            let own = self.own_pushes(&tl, &state.run_id).await?;
            if self.changed_by_others(&decided_on, &head_now, &artifacts, &own).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The commits run `run_id` pushed, as its own gate comments record them (see
    /// `Meta::pushed`): only the run's identity (and people with write access) can write there.
    async fn own_pushes(&self, tl: &Timeline, run_id: &str) -> Result<Vec<String>, GithubError> {
        let me = self.own().await?;
        Ok(tl
            .comments
            .iter()
            .filter(|c| c["user"]["login"].as_str().is_some_and(|l| super::client::is_own(&me, l)))
            .filter_map(|c| comment::parse_meta(c["body"].as_str().unwrap_or_default()))
            .filter(|m| m.run_id == run_id)
            .flat_map(|m| m.pushed)
            .collect())
    }

    /// Whether commits between `base` and `head` that the run did not make change any of
    /// `files`. The run's own are the commits it recorded pushing (`own`), with its author: an
    /// author email alone is whatever a commit's author wrote.
    async fn changed_by_others(
        &self,
        base: &str,
        head: &str,
        files: &[String],
        own: &[String],
    ) -> Result<bool, GithubError> {
        let path = format!("{}/compare/{}...{}", self.ctx.repo_path(), segment(base), segment(head));
        let cmp = match self.client.get(&path).await {
            Ok(v) => v,
            // The approved commit is gone (a force push): nothing vouches for the outputs now.
            Err(GithubError::Status { status: 404, .. }) => return Ok(true),
            Err(e) => return Err(e),
        };
        // GitHub lists at most 250 commits and 300 files of a comparison: what it leaves out
        // could be anyone's and change anything.
        let listed = cmp["commits"].as_array().map_or(0, Vec::len) as u64;
        if cmp["total_commits"].as_u64().is_some_and(|total| total > listed)
            || cmp["files"].as_array().is_some_and(|f| f.len() >= 300)
        {
            return Ok(true);
        }
        let others = cmp["commits"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                let recorded = c["sha"].as_str().is_some_and(|sha| own.iter().any(|o| o.eq_ignore_ascii_case(sha)));
                !recorded || c["commit"]["author"]["email"].as_str() != Some(super::outputs::AUTHOR_EMAIL)
            })
        });
        if !others {
            return Ok(false);
        }
        let changed: Vec<&str> =
            cmp["files"].as_array().into_iter().flatten().filter_map(|f| f["filename"].as_str()).collect();
        Ok(files.iter().any(|f| changed.contains(&f.as_str())))
    }

    /// The run's own reactions on its gate comment `id`: the trusted record of the round.
    async fn anchors(&self, id: u64) -> Result<Anchors, GithubError> {
        let list = self.client.get_all(&format!("{}/issues/comments/{id}/reactions", self.ctx.repo_path())).await?;
        let me = self.own().await?;
        let own = |r: &&Value| r["user"]["login"].as_str().is_some_and(|l| super::client::is_own(&me, l));
        let mut anchors = Anchors::default();
        for r in list.iter().filter(own) {
            let (Some(rid), Some(at)) = (r["id"].as_u64(), time_of(&r["created_at"])) else { continue };
            match r["content"].as_str() {
                Some(OPENED) => anchors.opened = Some((rid, at)),
                Some(APPROVED) => anchors.approved = Some((rid, at)),
                Some(REJECTED) => anchors.rejected = Some((rid, at)),
                _ => {}
            }
        }
        Ok(anchors)
    }

    /// Mark a new round on comment `id`: the run's earlier round marks go, a new 🚀 comes, and
    /// GitHub's time of it is when the round opened.
    async fn anchor_round(&self, id: u64) -> Result<(), GithubError> {
        let old = self.anchors(id).await?;
        for (rid, _) in [old.opened, old.approved, old.rejected].into_iter().flatten() {
            self.client.delete(&format!("{}/issues/comments/{id}/reactions/{rid}", self.ctx.repo_path())).await?;
        }
        let path = format!("{}/issues/comments/{id}/reactions", self.ctx.repo_path());
        self.client.post(&path, &json!({"content": OPENED})).await.map(drop)
    }

    /// Answer comment commands with reactions: 👀 read, then 👍 applied or 😕 refused.
    async fn react(&self, acks: &[(u64, tally::Ack)], meta: &mut Meta) -> Result<(), GithubError> {
        // Bounded, so that a flood of commands neither stalls a check nor grows the comment
        // past GitHub's limit: the newest commands first, a few per check; GitHub keeps one
        // reaction per person and kind, so answering one again is harmless.
        let oldest = if meta.acked.len() >= 100 { meta.acked.iter().min().copied().unwrap_or(0) } else { 0 };
        let new: Vec<&(u64, tally::Ack)> =
            acks.iter().rev().filter(|(id, _)| *id > oldest && !meta.acked.contains(id)).take(20).collect();
        for (id, ack) in new {
            let path = format!("{}/issues/comments/{id}/reactions", self.ctx.repo_path());
            self.client.post(&path, &json!({"content": "eyes"})).await?;
            let content = if *ack == tally::Ack::Applied { "+1" } else { "confused" };
            self.client.post(&path, &json!({"content": content})).await?;
            meta.acked.push(*id);
        }
        // The hundred newest answered commands are remembered.
        meta.acked.sort_unstable();
        let keep = meta.acked.len().saturating_sub(100);
        meta.acked.drain(..keep);
        Ok(())
    }

    async fn decide(&self, wf: &Workflow, state: &RunState, phase: &str) -> Result<Answer, GateError> {
        let marker = comment::marker(&state.run_id, phase);
        let (ours, tl) = self.find(&marker).await?;
        let found = ours.and_then(|c| {
            let meta = comment::parse_meta(c["body"].as_str().unwrap_or_default())?;
            Some((c, meta))
        });
        let Some((ours, mut meta)) = found.filter(|(_, m)| m.round == Self::round(state, phase)) else {
            // Someone deleted the request or edited away its hidden lines, or it belongs to an
            // earlier round: post it again and keep waiting (what was said before counts for
            // nothing).
            self.open_gate(wf, state, phase).await?;
            return Ok(Answer::Waiting);
        };
        let body = ours["body"].as_str().unwrap_or_default();
        let comment_id = ours["id"].as_u64().unwrap_or(0);
        let anchors = self.anchors(comment_id).await?;
        let Some((_, opened)) = anchors.opened else {
            // The run's mark of the round is gone: when it opened is not on record, so it
            // opens again (what was said before counts for nothing).
            self.open_gate(wf, state, phase).await?;
            return Ok(Answer::Waiting);
        };
        let pr = self.pr().await?;
        let (approve, reject) = wf.labels(phase);
        // The labels on the pull request now, from its label events.
        let labels = &tl.current_labels;
        let record = self.record(&tl).await?;
        let stale = pr.head_sha != meta.head_sha && artifact_digest(&self.root, state, phase).await? != meta.digest;
        if stale && meta.decided_at.is_none() {
            // A push changed the outputs under review: what was said is dismissed, and the
            // commit waits again (or the phase runs again for the new head).
            let url = ours["html_url"].as_str().unwrap_or_default();
            self.set_status(wf, &pr.head_sha, phase, "pending", "outputs changed by a push; waiting for approval", url)
                .await?;
            if wf.consensus.rerun_on_push {
                // How this round ended: the next round's opening moves it into the history.
                meta.decision = Some(comment::RoundRecord {
                    round: meta.round,
                    outcome: "dismissed by a push".into(),
                    by: String::new(),
                    at: Utc::now(),
                    commit: meta.head_sha.clone(),
                });
                let status = vec![format!(
                    "🔁 A push (commit `{}`) changed the phase's outputs: the phase runs again for it.",
                    crate::markup::prefix(&pr.head_sha, 7)
                )];
                let ticked = request::ticked(body, &wf.consensus.checklist);
                let files = crate::review::phase_diffs_blocking(&self.root, state, phase).await;
                let new_body =
                    comment::render(wf, state, phase, &self.ctx, &meta, &ticked, &status, &files, &self.redactor);
                self.write_comment(Some(&ours), &new_body).await?;
                return Ok(Answer::Rerun);
            }
        }
        let ticked = request::ticked(body, &wf.consensus.checklist);
        let checklist_done = ticked.len() == wf.consensus.checklist.len();
        let round = tally::Round {
            anchor: Some(opened),
            opened_at: meta.opened_at,
            seen: meta.seen,
            // A decided round stands as decided: up to the run's own mark of the decision.
            decided_at: anchors.approved.or(anchors.rejected).map(|(_, t)| t).or(meta.decided_at),
            head_sha: pr.head_sha.clone(),
            stale,
        };
        let outcome = self.count(wf, phase, &round, &pr, &record, checklist_done).await?;
        let verdict = outcome.decision(&rules(wf, phase, &approve, &reject, checklist_done));
        let tally::Outcome { approvers, rejected, notes, acks } = outcome;

        let now = Utc::now();
        let short = crate::markup::prefix(&pr.head_sha, 7);
        let last_comment = tl.comments.iter().filter_map(|c| c["id"].as_u64()).max();
        let decision = match (verdict, &rejected) {
            (Some(false), Some((login, reason))) => Some(Decision {
                approved: false,
                by: login.clone(),
                at: now,
                reason: reason.clone().or_else(|| {
                    // A label carries no reason: the rejecter's latest comment says why.
                    record
                        .comments
                        .iter()
                        .rfind(|c| c.author.login.eq_ignore_ascii_case(login))
                        .map(|c| c.body.trim().to_owned())
                }),
                commit: Some(pr.head_sha.clone()),
                last_comment,
            }),
            (Some(true), _) => Some(Decision {
                approved: true,
                by: approvers.join(", "),
                at: now,
                reason: None,
                commit: Some(pr.head_sha.clone()),
                last_comment,
            }),
            _ => None,
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
            // Nothing said yet: as the request opened, so that a check with nothing new
            // leaves the comment as it is (no edit, no request).
            None if approvers.is_empty() && notes.is_empty() => vec![WAITING.to_owned()],
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
        self.react(&acks, &mut meta).await?;
        if let Some(d) = &decision {
            let mark = if d.approved { APPROVED } else { REJECTED };
            if !(if d.approved { anchors.approved.is_some() } else { anchors.rejected.is_some() }) {
                let path = format!("{}/issues/comments/{comment_id}/reactions", self.ctx.repo_path());
                self.client.post(&path, &json!({"content": mark})).await?;
            }
            meta.decided_at = Some(now);
            meta.decision = Some(comment::RoundRecord {
                round: meta.round,
                outcome: if d.approved { "approved" } else { "rejected" }.into(),
                by: d.by.clone(),
                at: now,
                commit: pr.head_sha.clone(),
            });
        }
        // The state carried on is the one after the decision, so that a fresh runner continues
        // from it (its approvals are confirmed with GitHub again all the same).
        let mut after = state.clone();
        if let (Some(d), Some(ps)) = (&decision, after.phases.get_mut(phase)) {
            ps.status = if d.approved { PhaseStatus::Approved } else { PhaseStatus::Rejected };
            let url = ours["html_url"].as_str().unwrap_or_default().to_owned();
            let g = ps.gate.get_or_insert(GateState { requested_at: meta.opened_at, request: url, decision: None });
            g.decision = Some(d.clone());
        }
        let state = &after;
        self.save_carried(state, phase)?;
        let files = crate::review::phase_diffs_blocking(&self.root, state, phase).await;
        let new_body = comment::render(wf, state, phase, &self.ctx, &meta, &ticked, &status, &files, &self.redactor);
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
        Ok(match decision {
            Some(d) => Answer::Decided(d),
            None => Answer::Waiting,
        })
    }

    /// Whether someone who counts asked, after `phase` ended (rejected or failed), to run it
    /// again with a `/retry` comment; the comment gets its reactions.
    async fn retry_asked(&self, wf: &Workflow, state: &RunState, phase: &str) -> Result<bool, GateError> {
        if !wf.consensus.decide_by.contains(&tally::Channel::Comments) {
            return Ok(false);
        }
        // A retry answers the decision (or the failure): only one asked for after it counts.
        let Some(ps) = state.phases.get(phase) else { return Ok(false) };
        let decision = ps.gate.as_ref().and_then(|g| g.decision.as_ref());
        let after_comment = decision.and_then(|d| d.last_comment);
        let Some(ended) = decision.map(|d| d.at).or(ps.finished_at) else { return Ok(false) };
        let tl = timeline::read(&self.client, &self.ctx).await?;
        let pr = self.pr().await?;
        let record = self.record(&tl).await?;
        let prefix = &wf.consensus.command_prefix;
        let asks: Vec<&tally::Comment> = record
            .comments
            .iter()
            .filter(|c| match after_comment {
                Some(last) => c.id > last,
                None => c.at.timestamp() > ended.timestamp(),
            })
            .filter(|c| !c.edited)
            .filter(|c| {
                tally::commands(&c.body, prefix).iter().any(
                    |cmd| matches!(cmd, tally::Command::Retry { phase: p } if p.as_deref().is_none_or(|p| p == phase)),
                )
            })
            .collect();
        for c in asks {
            let people = self.people(&pr, std::slice::from_ref(&c.author.login)).await?;
            let (approve, reject) = wf.labels(phase);
            let rules = rules(wf, phase, &approve, &reject, true);
            // Reuse the tally's rules of who counts: a retry is asked like an approval.
            let probe = tally::Comment { body: format!("{prefix}approve"), ..c.clone() };
            let round = tally::Round {
                anchor: None,
                opened_at: ended,
                seen: None,
                decided_at: None,
                head_sha: pr.head_sha.clone(),
                stale: false,
            };
            let outcome = tally::tally(&rules, &round, &people, !wf.policy_changes.is_empty(), &[], &[probe], &[]);
            let mut meta = Meta::default();
            self.react(&outcome.acks, &mut meta).await?;
            if !outcome.approvers.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The most pushed commits a gate comment remembers (see `Meta::pushed`).
const MAX_PUSHED: usize = 50;

/// The status line of a round in which nothing has been said yet.
const WAITING: &str = "⏳ **Waiting for approval.**";

/// The run's own reactions on its gate comment mark a round: 🚀 when it opened, 🎉 when it was
/// approved, 👎 when it was rejected. Only the run's identity can add them — people react as
/// themselves, and agents get no token — so, unlike the comment's text, which anyone with write
/// access can edit, they are a trusted record of when a round opened and was decided. The
/// hidden metadata can only narrow what they say.
const OPENED: &str = "rocket";
const APPROVED: &str = "hooray";
const REJECTED: &str = "-1";

/// The round marks found on a gate comment: (reaction id, GitHub's time).
#[derive(Default)]
struct Anchors {
    opened: Option<(u64, DateTime<Utc>)>,
    approved: Option<(u64, DateTime<Utc>)>,
    rejected: Option<(u64, DateTime<Utc>)>,
}

/// What GitHub's record holds about a pull request: label events, comments and reviews.
struct Record {
    labels: Vec<tally::LabelEvent>,
    comments: Vec<tally::Comment>,
    reviews: Vec<tally::Review>,
}

fn rules<'a>(
    wf: &'a Workflow,
    phase: &'a str,
    approve: &'a str,
    reject: &'a str,
    checklist_done: bool,
) -> tally::Rules<'a> {
    let c = &wf.consensus;
    tally::Rules {
        phase,
        approve_label: approve,
        reject_label: reject,
        min_approvals: c.min_approvals,
        allow_author: c.allow_author,
        approvers: &c.approvers,
        require_checklist: c.require_checklist,
        checklist_done,
        channels: &c.decide_by,
        prefix: &c.command_prefix,
    }
}

impl Gate for GitHubGate {
    fn open<'a>(&'a self, wf: &'a Workflow, state: &'a RunState, phase: &'a str) -> GateFuture<'a, String> {
        Box::pin(self.cached(wf, self.open_gate(wf, state, phase)))
    }

    fn decision<'a>(&'a self, wf: &'a Workflow, state: &'a RunState, phase: &'a str) -> GateFuture<'a, Answer> {
        Box::pin(self.cached(wf, self.decide(wf, state, phase)))
    }

    fn confirm<'a>(&'a self, wf: &'a Workflow, state: &'a RunState, phase: &'a str) -> GateFuture<'a, bool> {
        Box::pin(self.cached(wf, self.confirm_approval(wf, state, phase)))
    }

    fn retry_requested<'a>(&'a self, wf: &'a Workflow, state: &'a RunState, phase: &'a str) -> GateFuture<'a, bool> {
        Box::pin(self.cached(wf, self.retry_asked(wf, state, phase)))
    }
}
