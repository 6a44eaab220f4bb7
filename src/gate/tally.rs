//! The decision of one round of a gate, as a pure function of GitHub's record: label events,
//! comment commands and pull-request reviews, the people's permissions, and the rules of the
//! base branch's policy. The GitHub client only fetches; everything that decides is here.
//!
//! Rules, whatever the channel:
//! - only what happened in the round counts: after the round opened (ids above those seen when
//!   it opened, or times from its opening second) and, for a decided round, not after its
//!   decision;
//! - a decision counts from people with write, maintain or admin permission, or listed in
//!   `approvers` (unless the pull request changes the policy); never from bots, the run's own
//!   identity, or (unless `allow_author`) the pull request's author;
//! - each person's latest word counts; a label a person removes withdraws what it said; a
//!   reject label still on the pull request outweighs the same person's approvals;
//! - `min_approvals` counts distinct people across channels; a reject from anyone who counts
//!   wins; `require_checklist` holds approvals until every box is ticked;
//! - a comment edited after it was posted counts for nothing (its first text is not on record);
//! - a review counts only on the current head commit, and a dismissed one not at all.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// The login GitHub shows for a deleted account.
const GHOST: &str = "ghost";

/// Which of the ways to decide count (`consensus.decide_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Channel {
    Labels,
    Comments,
    Reviews,
}

impl Channel {
    pub(crate) const ALL: [Channel; 3] = [Channel::Labels, Channel::Comments, Channel::Reviews];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Channel::Labels => "labels",
            Channel::Comments => "comments",
            Channel::Reviews => "reviews",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Person {
    pub login: String,
    pub bot: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LabelEvent {
    pub id: u64,
    pub at: DateTime<Utc>,
    pub label: String,
    /// `labeled` (else `unlabeled`).
    pub added: bool,
    pub actor: Person,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Comment {
    pub id: u64,
    pub at: DateTime<Utc>,
    /// Edited after it was posted (`updated_at` later than `created_at`).
    pub edited: bool,
    pub author: Person,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReviewState {
    Approved,
    ChangesRequested,
    Dismissed,
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Review {
    pub id: u64,
    pub at: DateTime<Utc>,
    pub state: ReviewState,
    /// The commit the review was submitted on.
    pub commit: String,
    pub author: Person,
    pub body: String,
}

/// The ids seen when a round opened: only later ones belong to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Seen {
    #[serde(default)]
    pub event: u64,
    #[serde(default)]
    pub comment: u64,
    #[serde(default)]
    pub review: u64,
}

/// One round of a gate.
#[derive(Debug, Clone)]
pub(crate) struct Round {
    /// When the round opened by a record only the run can make (its own reaction on the gate
    /// comment): nothing before it counts, whatever the rest says.
    pub anchor: Option<DateTime<Utc>>,
    pub opened_at: DateTime<Utc>,
    /// Ids seen when the round opened; without them, times from the opening second count.
    pub seen: Option<Seen>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The pull request's head commit now.
    pub head_sha: String,
    /// A push changed the phase's artifacts since the round opened: approvals are stale.
    pub stale: bool,
}

/// The base branch's rules for this gate.
#[derive(Debug, Clone)]
pub(crate) struct Rules<'a> {
    pub phase: &'a str,
    pub approve_label: &'a str,
    pub reject_label: &'a str,
    pub min_approvals: u32,
    pub allow_author: bool,
    /// People who count without write access (ignored while the pull request changes the policy).
    pub approvers: &'a [String],
    pub require_checklist: bool,
    pub checklist_done: bool,
    pub channels: &'a [Channel],
    /// The comment-command prefix (`/`).
    pub prefix: &'a str,
}

/// Who is who: the pull request's author, the run's own identities, and permissions (role
/// names: `admin`, `maintain`, `write`, `triage`, `read`, `none`) by lowercase login.
#[derive(Debug, Clone, Default)]
pub(crate) struct People {
    pub author: String,
    pub own: Vec<String>,
    pub roles: BTreeMap<String, String>,
}

/// What happened to a comment command, for its reaction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ack {
    Applied,
    Refused(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Outcome {
    /// Distinct people whose approval counts, in the order they approved.
    pub approvers: Vec<String>,
    /// The person whose reject wins, and why (a comment's or review's text).
    pub rejected: Option<(String, Option<String>)>,
    /// Why things did not count, for the gate comment.
    pub notes: Vec<String>,
    /// Comment commands addressed to this gate, by comment id.
    pub acks: Vec<(u64, Ack)>,
}

impl Outcome {
    /// The round's decision under `min_approvals`: `Some(true)` approved, `Some(false)` rejected.
    pub(crate) fn decision(&self, rules: &Rules) -> Option<bool> {
        if self.rejected.is_some() {
            Some(false)
        } else if self.approvers.len() >= rules.min_approvals.max(1) as usize {
            Some(true)
        } else {
            None
        }
    }
}

/// A command in a comment: `/approve`, `/approve <phase>`, `/reject <reason>`, `/retry`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    Approve { phase: Option<String> },
    Reject { phase: Option<String>, reason: Option<String> },
    Retry { phase: Option<String> },
}

/// The commands in `body`, each on a line of its own starting with `prefix` — not in a fenced
/// code block or a quote, where a reviewer shows someone else's text.
pub(crate) fn commands(body: &str, prefix: &str) -> Vec<Command> {
    let mut fence: Option<String> = None;
    body.lines()
        .filter(|line| {
            let t = line.trim_start();
            let marker: String = t.chars().take_while(|c| *c == '`' || *c == '~').collect();
            match &fence {
                Some(open) => {
                    if marker.len() >= open.len() && marker.starts_with(&open[..1]) && t.trim() == marker {
                        fence = None;
                    }
                    false
                }
                None if marker.len() >= 3 && (marker.chars().all(|c| c == '`') || marker.chars().all(|c| c == '~')) => {
                    fence = Some(marker);
                    false
                }
                None => !t.starts_with('>') && !line.starts_with("    ") && !line.starts_with('\t'),
            }
        })
        .filter_map(|line| {
            let rest = line.trim().strip_prefix(prefix)?;
            let (word, arg) = match rest.split_once(char::is_whitespace) {
                Some((w, a)) => (w, a.trim()),
                None => (rest, ""),
            };
            let arg = (!arg.is_empty()).then(|| arg.to_owned());
            match word {
                "approve" => Some(Command::Approve { phase: arg }),
                "retry" => Some(Command::Retry { phase: arg }),
                "reject" => Some(Command::Reject { phase: None, reason: arg }),
                _ => None,
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
enum Vote {
    Approve,
    Reject(Option<String>),
}

/// One thing a person said: a vote (from a label when `label` is set), or, without a vote, the
/// removal of `label`.
struct Said {
    at: DateTime<Utc>,
    id: u64,
    who: String,
    vote: Option<Vote>,
    label: Option<String>,
}

struct Tallying<'a> {
    rules: &'a Rules<'a>,
    people: &'a People,
    strict: bool,
    notes: Vec<String>,
    noted: Vec<String>,
}

impl Tallying<'_> {
    /// `None` if `who` counts, else why not.
    fn why_not(&self, who: &Person) -> Option<String> {
        let login = who.login.as_str();
        // An actor GitHub no longer knows (a deleted account: no login, or its `ghost`
        // placeholder) is no one whose permission can be asked.
        if login.is_empty() || login.eq_ignore_ascii_case(GHOST) {
            return Some("is a deleted account".into());
        }
        if who.bot || login.ends_with("[bot]") {
            return Some("is a bot".into());
        }
        if self.people.own.iter().any(|o| o.eq_ignore_ascii_case(login)) {
            return Some("is this run's own identity".into());
        }
        let author_counts = self.rules.allow_author && !self.strict;
        if !author_counts && login.eq_ignore_ascii_case(&self.people.author) {
            return Some("is the pull request's author".into());
        }
        if !self.strict && self.rules.approvers.iter().any(|a| a.eq_ignore_ascii_case(login)) {
            return None;
        }
        let role = self.people.roles.get(&login.to_lowercase()).map(String::as_str).unwrap_or("none");
        if matches!(role, "admin" | "maintain" | "write") {
            None
        } else {
            Some(format!("has `{role}` access, not write"))
        }
    }

    fn note(&mut self, text: String) {
        if !self.noted.contains(&text) {
            self.noted.push(text.clone());
            self.notes.push(text);
        }
    }
}

/// The people GitHub's record shows deciding in this round: the logins whose permissions the
/// caller must look up before calling [`tally`].
pub(crate) fn deciders(
    rules: &Rules,
    round: &Round,
    labels: &[LabelEvent],
    comments: &[Comment],
    reviews: &[Review],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &Person| {
        let l = p.login.to_lowercase();
        if !p.bot && !l.is_empty() && l != GHOST && !out.contains(&l) {
            out.push(l);
        }
    };
    let seen = round.seen.unwrap_or_default();
    for e in labels.iter().filter(|e| in_round(round, e.id, seen.event, e.at)) {
        if e.label == rules.approve_label || e.label == rules.reject_label {
            add(&e.actor);
        }
    }
    for c in comments.iter().filter(|c| in_round(round, c.id, seen.comment, c.at)) {
        if !commands(&c.body, rules.prefix).is_empty() {
            add(&c.author);
        }
    }
    for r in reviews.iter().filter(|r| in_round(round, r.id, seen.review, r.at)) {
        add(&r.author);
    }
    out
}

fn in_round(round: &Round, id: u64, seen: u64, at: DateTime<Utc>) -> bool {
    // GitHub's times are whole seconds.
    let after_open = match round.seen {
        Some(_) => id > seen,
        None => at.timestamp() >= round.opened_at.timestamp(),
    };
    let after_anchor = round.anchor.is_none_or(|a| at.timestamp() >= a.timestamp());
    after_open && after_anchor && round.decided_at.is_none_or(|d| at.timestamp() <= d.timestamp())
}

/// The round's tally. `policy_changed`: the pull request changes the gate's policy, so only
/// write access counts.
pub(crate) fn tally(
    rules: &Rules,
    round: &Round,
    people: &People,
    policy_changed: bool,
    labels: &[LabelEvent],
    comments: &[Comment],
    reviews: &[Review],
) -> Outcome {
    let mut t = Tallying { rules, people, strict: policy_changed, notes: Vec::new(), noted: Vec::new() };
    let seen = round.seen.unwrap_or_default();
    let on = |c: Channel| rules.channels.contains(&c);
    // What each person said, to be put in time order.
    let mut timeline: Vec<Said> = Vec::new();
    let mut acks: Vec<(u64, Ack)> = Vec::new();

    if on(Channel::Labels) {
        for e in labels.iter().filter(|e| in_round(round, e.id, seen.event, e.at)) {
            let vote = if e.label == rules.approve_label {
                Vote::Approve
            } else if e.label == rules.reject_label {
                Vote::Reject(None)
            } else {
                continue;
            };
            if !e.added {
                // Someone who counts removing a label withdraws what it said; the gate's own
                // removals (a bot) and those of people who do not count change nothing.
                if t.why_not(&e.actor).is_none() {
                    timeline.push(Said {
                        at: e.at,
                        id: e.id,
                        who: String::new(),
                        vote: None,
                        label: Some(e.label.clone()),
                    });
                }
                continue;
            }
            if let Some(why) = t.why_not(&e.actor) {
                let login = &e.actor.login;
                t.note(format!("⚠️ `{}` from @{login} is ignored: @{login} {why}.", e.label));
                continue;
            }
            let who = e.actor.login.to_lowercase();
            timeline.push(Said { at: e.at, id: e.id, who, vote: Some(vote), label: Some(e.label.clone()) });
        }
    }
    if on(Channel::Comments) {
        for c in comments.iter().filter(|c| in_round(round, c.id, seen.comment, c.at)) {
            for cmd in commands(&c.body, rules.prefix) {
                let (phase, vote) = match cmd {
                    Command::Approve { phase } => (phase, Vote::Approve),
                    Command::Reject { phase, reason } => (phase, Vote::Reject(reason)),
                    Command::Retry { .. } => continue,
                };
                if phase.as_deref().is_some_and(|p| p != rules.phase) {
                    continue; // addressed to another gate
                }
                let login = &c.author.login;
                let refused = if c.edited {
                    Some("the comment was edited after it was posted; post the command again".to_owned())
                } else {
                    t.why_not(&c.author).map(|why| format!("@{login} {why}"))
                };
                match refused {
                    Some(why) => {
                        t.note(format!("⚠️ The command in @{login}'s comment is refused: {why}."));
                        acks.push((c.id, Ack::Refused(why)));
                    }
                    None => {
                        acks.push((c.id, Ack::Applied));
                        timeline.push(Said {
                            at: c.at,
                            id: c.id,
                            who: login.to_lowercase(),
                            vote: Some(vote),
                            label: None,
                        });
                    }
                }
            }
        }
    }
    if on(Channel::Reviews) {
        for r in reviews.iter().filter(|r| in_round(round, r.id, seen.review, r.at)) {
            let vote = match r.state {
                ReviewState::Approved => Vote::Approve,
                ReviewState::ChangesRequested => Vote::Reject(Some(r.body.trim().to_owned()).filter(|b| !b.is_empty())),
                ReviewState::Dismissed | ReviewState::Other => continue,
            };
            let login = &r.author.login;
            if r.commit != round.head_sha {
                t.note(format!("⚠️ The review from @{login} is on an older commit; it does not count for this one."));
                continue;
            }
            if let Some(why) = t.why_not(&r.author) {
                t.note(format!("⚠️ The review from @{login} is ignored: @{login} {why}."));
                continue;
            }
            timeline.push(Said { at: r.at, id: r.id, who: login.to_lowercase(), vote: Some(vote), label: None });
        }
    }
    timeline.sort_by_key(|s| (s.at.timestamp(), s.id));

    // Each person's standing: their latest vote, and the labels of theirs still active.
    let mut latest: BTreeMap<String, (Vote, String)> = BTreeMap::new();
    let mut label_votes: Vec<(String, String)> = Vec::new(); // (login, label)
    let mut order: Vec<String> = Vec::new();
    let display: BTreeMap<String, String> = labels
        .iter()
        .map(|e| (e.actor.login.to_lowercase(), e.actor.login.clone()))
        .chain(comments.iter().map(|c| (c.author.login.to_lowercase(), c.author.login.clone())))
        .chain(reviews.iter().map(|r| (r.author.login.to_lowercase(), r.author.login.clone())))
        .collect();
    for Said { who, vote, label, .. } in timeline {
        match (vote, label) {
            (None, Some(label)) => {
                label_votes.retain(|(_, l)| *l != label);
                latest.retain(|_, (_, source)| *source != label);
            }
            (Some(vote), source) => {
                if let Some(label) = &source {
                    label_votes.push((who.clone(), label.clone()));
                }
                order.retain(|o| *o != who);
                order.push(who.clone());
                latest.insert(who, (vote, source.unwrap_or_default()));
            }
            (None, None) => {}
        }
    }
    let mut outcome = Outcome { acks, ..Outcome::default() };
    for who in &order {
        let name = display.get(who).cloned().unwrap_or_else(|| who.clone());
        let reject_label_on = label_votes.iter().any(|(l, label)| l == who && label == rules.reject_label);
        let vote = match latest.get(who) {
            _ if reject_label_on => Vote::Reject(None),
            Some((v, _)) => v.clone(),
            None => continue,
        };
        match vote {
            Vote::Reject(reason) => outcome.rejected = Some((name, reason)),
            Vote::Approve if round.stale => t.note(format!(
                "⚠️ The approval from @{name} is stale: commit {} changed the phase's artifacts.",
                crate::markup::prefix(&round.head_sha, 7)
            )),
            Vote::Approve if rules.require_checklist && !rules.checklist_done => {
                t.note(format!("⚠️ The approval from @{name} waits for every checklist box to be ticked."))
            }
            Vote::Approve => outcome.approvers.push(name),
        }
    }
    // A flood of refused decisions must not push the comment past GitHub's limit.
    let shown = 20;
    if t.notes.len() > shown {
        let more = t.notes.len() - shown;
        t.notes.truncate(shown);
        t.notes.push(format!("… and {more} more decisions that did not count."));
    }
    outcome.notes = t.notes;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn person(login: &str) -> Person {
        Person { login: login.into(), bot: login.ends_with("[bot]") }
    }

    fn label(id: u64, s: i64, who: &str, name: &str, added: bool) -> LabelEvent {
        LabelEvent { id, at: at(s), label: name.into(), added, actor: person(who) }
    }

    fn comment(id: u64, s: i64, who: &str, body: &str) -> Comment {
        Comment { id, at: at(s), edited: false, author: person(who), body: body.into() }
    }

    fn review(id: u64, s: i64, who: &str, state: ReviewState, commit: &str) -> Review {
        Review { id, at: at(s), state, commit: commit.into(), author: person(who), body: "needs work".into() }
    }

    const ALL: &[Channel] = &Channel::ALL;

    fn rules() -> Rules<'static> {
        Rules {
            phase: "plan",
            approve_label: "ok",
            reject_label: "no",
            min_approvals: 1,
            allow_author: false,
            approvers: &[],
            require_checklist: false,
            checklist_done: false,
            channels: ALL,
            prefix: "/",
        }
    }

    fn round() -> Round {
        Round {
            anchor: None,
            opened_at: at(10),
            seen: Some(Seen { event: 100, comment: 100, review: 100 }),
            decided_at: None,
            head_sha: "head".into(),
            stale: false,
        }
    }

    fn people() -> People {
        let roles = [
            ("alice", "write"),
            ("bob", "maintain"),
            ("carol", "admin"),
            ("rita", "read"),
            ("tom", "triage"),
            ("author", "write"),
        ];
        People {
            author: "author".into(),
            own: vec!["release-bot".into()],
            roles: roles.iter().map(|(l, r)| (l.to_string(), r.to_string())).collect(),
        }
    }

    fn run(rules: &Rules, round: &Round, labels: &[LabelEvent], comments: &[Comment], reviews: &[Review]) -> Outcome {
        tally(rules, round, &people(), false, labels, comments, reviews)
    }

    #[test]
    fn a_writers_label_approves() {
        let o = run(&rules(), &round(), &[label(101, 11, "alice", "ok", true)], &[], &[]);
        assert_eq!(o.approvers, ["alice"]);
        assert_eq!(o.decision(&rules()), Some(true));
    }

    #[test]
    fn readers_triagers_bots_own_identity_and_the_author_do_not_count() {
        for who in ["rita", "tom", "dependabot[bot]", "release-bot", "author", "stranger"] {
            let o = run(&rules(), &round(), &[label(101, 11, who, "ok", true)], &[], &[]);
            assert!(o.approvers.is_empty(), "{who}");
            assert_eq!(o.notes.len(), 1, "{who}: {:?}", o.notes);
        }
    }

    #[test]
    fn deleted_accounts_never_count_and_are_not_looked_up() {
        let mut roles = people();
        roles.roles.insert(String::new(), "admin".into());
        roles.roles.insert("ghost".into(), "admin".into());
        for who in ["", "ghost", "Ghost"] {
            let labels = [label(101, 11, who, "ok", true)];
            let o = tally(&rules(), &round(), &roles, false, &labels, &[], &[]);
            assert!(o.approvers.is_empty(), "{who:?}");
            assert!(o.notes[0].contains("is a deleted account"), "{:?}", o.notes);
            assert!(deciders(&rules(), &round(), &labels, &[], &[]).is_empty(), "{who:?}");
        }
    }

    #[test]
    fn the_author_counts_with_allow_author_unless_the_policy_changed() {
        let r = Rules { allow_author: true, ..rules() };
        assert_eq!(run(&r, &round(), &[label(101, 11, "author", "ok", true)], &[], &[]).approvers, ["author"]);
        let o = tally(&r, &round(), &people(), true, &[label(101, 11, "author", "ok", true)], &[], &[]);
        assert!(o.approvers.is_empty());
    }

    #[test]
    fn listed_approvers_count_without_write_access_unless_the_policy_changed() {
        let listed = ["rita".to_owned()];
        let r = Rules { approvers: &listed, ..rules() };
        assert_eq!(run(&r, &round(), &[label(101, 11, "rita", "ok", true)], &[], &[]).approvers, ["rita"]);
        assert!(
            tally(&r, &round(), &people(), true, &[label(101, 11, "rita", "ok", true)], &[], &[]).approvers.is_empty()
        );
    }

    #[test]
    fn only_the_round_counts() {
        // Before the round opened (ids seen), and after it was decided.
        let decided = Round { decided_at: Some(at(20)), ..round() };
        let o =
            run(&rules(), &decided, &[label(99, 11, "alice", "ok", true), label(102, 25, "bob", "ok", true)], &[], &[]);
        assert!(o.approvers.is_empty(), "{o:?}");
        // Without ids: times from the opening second.
        let by_time = Round { seen: None, ..round() };
        let o = run(&rules(), &by_time, &[label(1, 9, "alice", "ok", true), label(2, 10, "bob", "ok", true)], &[], &[]);
        assert_eq!(o.approvers, ["bob"]);
        // The run's own mark of the round outweighs ids and times that say otherwise.
        let anchored = Round { anchor: Some(at(30)), seen: Some(Seen::default()), ..round() };
        let o = run(
            &rules(),
            &anchored,
            &[label(101, 20, "alice", "ok", true), label(102, 30, "bob", "ok", true)],
            &[],
            &[],
        );
        assert_eq!(o.approvers, ["bob"]);
    }

    #[test]
    fn a_reject_wins_and_carries_its_reason() {
        let o = run(
            &rules(),
            &round(),
            &[label(101, 11, "alice", "ok", true)],
            &[comment(102, 12, "bob", "Not yet.\n/reject the plan misses tests")],
            &[],
        );
        assert_eq!(o.rejected, Some(("bob".into(), Some("the plan misses tests".into()))));
        assert_eq!(o.decision(&rules()), Some(false));
    }

    #[test]
    fn removing_a_label_withdraws_it_but_the_gates_own_removal_does_not() {
        let o = run(
            &rules(),
            &round(),
            &[label(101, 11, "bob", "no", true), label(102, 12, "carol", "no", false)],
            &[],
            &[],
        );
        assert_eq!(o.rejected, None);
        let o = run(
            &rules(),
            &round(),
            &[label(101, 11, "alice", "ok", true), label(102, 12, "github-actions[bot]", "ok", false)],
            &[],
            &[],
        );
        assert_eq!(o.approvers, ["alice"]);
    }

    #[test]
    fn a_persons_latest_word_counts_but_their_reject_label_outweighs_it() {
        let o = run(
            &rules(),
            &round(),
            &[],
            &[comment(101, 11, "alice", "/reject no"), comment(102, 12, "alice", "/approve")],
            &[],
        );
        assert_eq!((o.approvers.clone(), o.rejected.clone()), (vec!["alice".to_owned()], None));
        let o = run(
            &rules(),
            &round(),
            &[label(101, 11, "alice", "no", true)],
            &[comment(102, 12, "alice", "/approve")],
            &[],
        );
        assert!(o.rejected.is_some());
    }

    #[test]
    fn min_approvals_counts_distinct_people_across_channels() {
        let r = Rules { min_approvals: 2, ..rules() };
        let one =
            run(&r, &round(), &[label(101, 11, "alice", "ok", true)], &[comment(102, 12, "alice", "/approve")], &[]);
        assert_eq!(one.decision(&r), None);
        let two = run(
            &r,
            &round(),
            &[label(101, 11, "alice", "ok", true)],
            &[],
            &[review(101, 12, "bob", ReviewState::Approved, "head")],
        );
        assert_eq!(two.approvers, ["alice", "bob"]);
        assert_eq!(two.decision(&r), Some(true));
    }

    #[test]
    fn the_checklist_holds_approvals_and_staleness_drops_them() {
        let r = Rules { require_checklist: true, ..rules() };
        let o = run(&r, &round(), &[label(101, 11, "alice", "ok", true)], &[], &[]);
        assert!(o.approvers.is_empty() && o.notes[0].contains("checklist"));
        let r = Rules { require_checklist: true, checklist_done: true, ..rules() };
        assert_eq!(run(&r, &round(), &[label(101, 11, "alice", "ok", true)], &[], &[]).approvers, ["alice"]);
        let stale = Round { stale: true, ..round() };
        let o = run(&rules(), &stale, &[label(101, 11, "alice", "ok", true)], &[], &[]);
        assert!(o.approvers.is_empty() && o.notes[0].contains("stale"));
    }

    #[test]
    fn comment_commands_are_acknowledged_and_refused_with_a_reason() {
        let mut edited = comment(103, 13, "carol", "/approve");
        edited.edited = true;
        let o = run(
            &rules(),
            &round(),
            &[],
            &[
                comment(101, 11, "rita", "/approve"),
                comment(102, 12, "alice", "LGTM\n/approve plan"),
                edited,
                comment(104, 14, "bob", "/approve build"),
                comment(105, 15, "bob", "please /approve"),
            ],
            &[],
        );
        assert_eq!(o.approvers, ["alice"]);
        assert_eq!(o.acks.len(), 3, "{:?}", o.acks);
        assert!(matches!(&o.acks[0], (101, Ack::Refused(why)) if why.contains("`read` access")));
        assert_eq!(o.acks[1], (102, Ack::Applied));
        assert!(matches!(&o.acks[2], (103, Ack::Refused(why)) if why.contains("edited")));
    }

    #[test]
    fn reviews_count_on_the_current_head_and_dismissed_ones_not_at_all() {
        let o = run(&rules(), &round(), &[], &[], &[review(101, 11, "alice", ReviewState::Approved, "old")]);
        assert!(o.approvers.is_empty() && o.notes[0].contains("older commit"));
        let o = run(&rules(), &round(), &[], &[], &[review(101, 11, "alice", ReviewState::Dismissed, "head")]);
        assert_eq!(o, Outcome::default());
        let o = run(&rules(), &round(), &[], &[], &[review(101, 11, "bob", ReviewState::ChangesRequested, "head")]);
        assert_eq!(o.rejected, Some(("bob".into(), Some("needs work".into()))));
    }

    #[test]
    fn decide_by_limits_the_channels() {
        let only_labels = [Channel::Labels];
        let r = Rules { channels: &only_labels, ..rules() };
        let o = run(
            &r,
            &round(),
            &[],
            &[comment(101, 11, "alice", "/approve")],
            &[review(101, 11, "bob", ReviewState::Approved, "head")],
        );
        assert_eq!(o, Outcome::default());
    }

    #[test]
    fn commands_in_code_blocks_and_quotes_do_not_count() {
        assert!(commands("look:\n```\n/approve\n```\n", "/").is_empty());
        assert!(commands("~~~text\n/approve\n~~~", "/").is_empty());
        assert!(commands("> /approve\n", "/").is_empty());
        assert!(commands("    /approve\n", "/").is_empty());
        assert_eq!(commands("```\nx\n```\n/approve", "/"), [Command::Approve { phase: None }]);
    }

    #[test]
    fn commands_are_lines_of_their_own_with_the_prefix() {
        assert_eq!(commands("/approve", "/"), [Command::Approve { phase: None }]);
        assert_eq!(commands("  /approve  plan ", "/"), [Command::Approve { phase: Some("plan".into()) }]);
        assert_eq!(
            commands("/reject too big\n/retry", "/"),
            [Command::Reject { phase: None, reason: Some("too big".into()) }, Command::Retry { phase: None }]
        );
        assert!(commands("please /approve", "/").is_empty());
        assert!(commands("/approved", "/").is_empty());
        assert_eq!(commands("!approve", "!"), [Command::Approve { phase: None }]);
    }

    #[test]
    fn deciders_are_the_people_to_look_up() {
        let d = deciders(
            &rules(),
            &round(),
            &[label(101, 11, "Alice", "ok", true), label(102, 11, "x[bot]", "ok", true)],
            &[comment(101, 11, "bob", "/approve"), comment(102, 11, "eve", "hi")],
            &[],
        );
        assert_eq!(d, ["alice", "bob"]);
    }
}
