//! GitHub's record of what people did on a pull request, read in one paginated list: the
//! issue's timeline (`GET /repos/{owner}/{repo}/issues/{number}/timeline`) holds its comments
//! (`commented`), label events (`labeled`, `unlabeled`, with the actor) and reviews
//! (`reviewed`), oldest first. One list instead of the comments, events, labels and reviews
//! endpoints makes a gate check one request (a 304 when nothing changed) instead of four.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::client::{Client, GithubError};
use super::context::PrContext;
use crate::gate::tally;

/// The pull request's timeline, sorted out.
#[derive(Default)]
pub(crate) struct Timeline {
    /// Issue comments, as the comments API gives them (`id`, `user`, `body`, `created_at`,
    /// `updated_at`, `html_url`), oldest first.
    pub comments: Vec<Value>,
    pub labels: Vec<tally::LabelEvent>,
    pub reviews: Vec<tally::Review>,
    /// The highest id of an issue event (label events and every other kind): a new round
    /// counts only label events above it.
    pub last_event: u64,
    /// The labels on the pull request now: its label events, replayed in order.
    pub current_labels: Vec<String>,
}

/// GitHub's time in `v`.
pub(crate) fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

/// Who `v` (a user object) is.
pub(crate) fn person(v: &Value) -> tally::Person {
    tally::Person {
        login: v["login"].as_str().unwrap_or_default().to_owned(),
        bot: v["type"] == "Bot" || v["login"].as_str().is_some_and(|l| l.ends_with("[bot]")),
    }
}

/// The timeline of the pull request of `ctx`.
pub(crate) async fn read(client: &Client, ctx: &PrContext) -> Result<Timeline, GithubError> {
    let items = client.get_all(&format!("{}/issues/{}/timeline", ctx.repo_path(), ctx.number)).await?;
    Ok(parse(items))
}

/// Sort the timeline's `items` out. Items of other kinds (commits, references, renames…) only
/// move `last_event` on; an item without the fields its kind needs is left out.
pub(crate) fn parse(items: Vec<Value>) -> Timeline {
    let mut t = Timeline::default();
    let mut dismissed: Vec<u64> = Vec::new();
    let id = |v: &Value| v["id"].as_u64().unwrap_or(0);
    for item in items {
        match item["event"].as_str().unwrap_or_default() {
            "commented" => t.comments.push(item),
            kind @ ("labeled" | "unlabeled") => {
                t.last_event = t.last_event.max(id(&item));
                let (Some(at), Some(label)) = (time_of(&item["created_at"]), item["label"]["name"].as_str()) else {
                    continue;
                };
                let added = kind == "labeled";
                t.current_labels.retain(|l| l != label);
                if added {
                    t.current_labels.push(label.to_owned());
                }
                t.labels.push(tally::LabelEvent {
                    id: id(&item),
                    at,
                    label: label.to_owned(),
                    added,
                    actor: person(&item["actor"]),
                });
            }
            "reviewed" => {
                // The timeline spells review states in lower case; the reviews API in upper.
                let state = match item["state"].as_str().map(str::to_ascii_lowercase).as_deref() {
                    Some("approved") => tally::ReviewState::Approved,
                    Some("changes_requested") => tally::ReviewState::ChangesRequested,
                    Some("dismissed") => tally::ReviewState::Dismissed,
                    _ => tally::ReviewState::Other,
                };
                let Some(at) = time_of(&item["submitted_at"]) else { continue };
                t.reviews.push(tally::Review {
                    id: id(&item),
                    at,
                    state,
                    commit: item["commit_id"].as_str().unwrap_or_default().to_owned(),
                    author: person(&item["user"]),
                    body: item["body"].as_str().unwrap_or_default().to_owned(),
                });
            }
            "review_dismissed" => {
                t.last_event = t.last_event.max(id(&item));
                if let Some(review) = item["dismissed_review"]["review_id"].as_u64() {
                    dismissed.push(review);
                }
            }
            // Comments on lines and commits have ids of their own kinds.
            "line-commented" | "commit-commented" => {}
            _ => t.last_event = t.last_event.max(id(&item)),
        }
    }
    // A dismissal is an event of its own: the review it names is dismissed, whatever state its
    // own item still shows.
    for r in t.reviews.iter_mut().filter(|r| dismissed.contains(&r.id)) {
        r.state = tally::ReviewState::Dismissed;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(login: &str, kind: &str) -> Value {
        json!({"login": login, "type": kind})
    }

    #[test]
    fn comments_labels_and_reviews_come_from_one_list() {
        let t = parse(vec![
            json!({"event": "labeled", "id": 10, "actor": user("alice", "User"), "label": {"name": "ok"}, "created_at": "2026-01-01T00:00:01Z"}),
            json!({"event": "commented", "id": 900, "user": user("bob", "User"), "actor": user("bob", "User"), "body": "/approve",
                   "created_at": "2026-01-01T00:00:02Z", "updated_at": "2026-01-01T00:00:02Z"}),
            json!({"event": "reviewed", "id": 55, "user": user("carol", "User"), "state": "changes_requested", "commit_id": "abc",
                   "body": "no", "submitted_at": "2026-01-01T00:00:03Z"}),
            json!({"event": "reviewed", "id": 56, "user": user("dave", "User"), "state": "APPROVED", "commit_id": "abc",
                   "body": "", "submitted_at": "2026-01-01T00:00:04Z"}),
            json!({"event": "renamed", "id": 12, "actor": user("alice", "User"), "created_at": "2026-01-01T00:00:05Z"}),
            json!({"event": "committed", "sha": "abc", "author": {"email": "x"}}),
            json!({"event": "labeled", "id": 13, "actor": user("ci[bot]", "User"), "label": {"name": "other"}, "created_at": "2026-01-01T00:00:06Z"}),
            json!({"event": "unlabeled", "id": 14, "actor": user("alice", "User"), "label": {"name": "ok"}, "created_at": "2026-01-01T00:00:07Z"}),
        ]);
        assert_eq!(t.comments.len(), 1);
        assert_eq!(t.comments[0]["id"], 900);
        let labels: Vec<(u64, &str, bool, &str, bool)> =
            t.labels.iter().map(|e| (e.id, e.label.as_str(), e.added, e.actor.login.as_str(), e.actor.bot)).collect();
        assert_eq!(
            labels,
            [(10, "ok", true, "alice", false), (13, "other", true, "ci[bot]", true), (14, "ok", false, "alice", false)]
        );
        assert_eq!(t.current_labels, ["other"]);
        assert_eq!(t.last_event, 14, "every issue event counts, comments and reviews do not");
        assert_eq!(t.reviews.len(), 2);
        assert_eq!(t.reviews[0].state, tally::ReviewState::ChangesRequested);
        assert_eq!(t.reviews[1].state, tally::ReviewState::Approved);
        assert_eq!((t.reviews[0].id, t.reviews[0].commit.as_str(), t.reviews[0].body.as_str()), (55, "abc", "no"));
    }

    #[test]
    fn items_without_what_they_need_are_left_out_without_a_panic() {
        let t = parse(vec![
            json!({"event": "labeled", "id": 3}),
            json!({"event": "labeled", "id": "x", "label": {"name": 5}, "created_at": "yesterday"}),
            json!({"event": "reviewed", "id": 4, "state": "approved"}),
            json!({"event": 7}),
            json!(null),
            json!([1, 2]),
            json!({"event": "line-commented", "id": 99999}),
        ]);
        assert!(t.labels.is_empty() && t.reviews.is_empty() && t.comments.is_empty() && t.current_labels.is_empty());
        assert_eq!(t.last_event, 3);
    }

    #[test]
    fn a_review_named_by_a_dismissal_is_dismissed_whatever_its_item_says() {
        let review = |id: u64, state: &str| {
            json!({"event": "reviewed", "id": id, "user": user("alice", "User"), "state": state,
            "commit_id": "abc", "body": "", "submitted_at": "2026-01-01T00:00:01Z"})
        };
        let t = parse(vec![
            review(55, "approved"),
            review(56, "approved"),
            json!({"event": "review_dismissed", "id": 70, "actor": user("bob", "User"), "created_at": "2026-01-01T00:00:02Z",
                   "dismissed_review": {"state": "approved", "review_id": 55, "dismissal_message": "stale"}}),
        ]);
        let states: Vec<(u64, tally::ReviewState)> = t.reviews.iter().map(|r| (r.id, r.state)).collect();
        assert_eq!(states, [(55, tally::ReviewState::Dismissed), (56, tally::ReviewState::Approved)]);
        assert_eq!(t.last_event, 70);
    }

    #[test]
    fn a_label_removed_and_added_again_is_on_once() {
        let ev = |id: u64, kind: &str| json!({"event": kind, "id": id, "actor": user("a", "User"), "label": {"name": "ok"}, "created_at": "2026-01-01T00:00:01Z"});
        let t = parse(vec![ev(1, "labeled"), ev(2, "labeled"), ev(3, "unlabeled"), ev(4, "labeled")]);
        assert_eq!(t.current_labels, ["ok"]);
        let t = parse(vec![ev(1, "labeled"), ev(2, "unlabeled")]);
        assert!(t.current_labels.is_empty());
    }
}
