//! A stateful stand-in for the GitHub REST API on 127.0.0.1, served under `/api/v3` as GitHub
//! Enterprise Server does: one pull request (#7 of octo/app) with its comments (paginated),
//! labels, label events with their actors, reviews, the timeline that lists them together,
//! collaborator permissions, commit statuses, and injectable failures. Every request is recorded.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

pub(crate) const TOKEN: &str = "ghs_faketoken0123456789";
pub(crate) const AUTHOR: &str = "pr-author";

#[derive(Default)]
pub(crate) struct Gh {
    pub head_sha: String,
    pub comments: Vec<Value>,
    pub labels: Vec<String>,
    pub events: Vec<Value>,
    pub permissions: HashMap<String, String>,
    pub statuses: Vec<Value>,
    /// (method, path without the prefix)
    pub requests: Vec<(String, String)>,
    /// Answers to give before serving normally: (status, retry-after).
    pub failures: VecDeque<(u16, Option<String>)>,
    /// Headers sent with every answer (GitHub sends `x-ratelimit-*` on all of them).
    pub always_headers: Vec<(String, String)>,
    /// Requests whose path ends so are answered only after this long (a slow GitHub).
    pub stall: Option<(String, std::time::Duration)>,
    /// The token's user, for a personal token; `None` answers `GET /user` as an Actions token does.
    pub identity: Option<String>,
    /// How many conditional GETs were answered 304.
    pub not_modified: usize,
    /// Files served outside the API (release assets), by path.
    pub files: HashMap<String, Vec<u8>>,
    /// Paths of the file downloads asked for.
    pub downloads: Vec<String>,
    /// Whether each file download carried an Authorization header.
    pub download_auth: Vec<bool>,
    /// Workflow artifacts: `{"id", "name", "expired", "workflow_run": {"id"}}`; the zip of
    /// artifact N is served from the file `/blob/N.zip`.
    pub artifacts: Vec<Value>,
    /// The base branch's files at the pull request's base commit, by path (the contents API).
    pub base_files: HashMap<String, String>,
    /// Pull-request reviews: `{"id", "user", "state", "commit_id", "body", "submitted_at"}`.
    pub reviews: Vec<Value>,
    /// Reactions added: (comment id, content).
    pub reactions: Vec<(u64, String)>,
    /// Answer nothing 304 (Prism's proxy turns a 304 into a 500).
    pub no_conditional: bool,
    /// The last time given to a record (see `stamp`).
    pub clock: i64,
    /// Reactions as GitHub lists them, by comment id: `{"id", "content", "user", "created_at"}`.
    pub reaction_list: Vec<(u64, Value)>,
    /// The repository the pull request's head lives in (default: this one).
    pub head_repo: Option<String>,
    /// `GET /user` refuses the token even with an `identity` (a GitHub App's installation token).
    pub refuse_user: bool,
    /// What `compare` answers between any two commits: the commits (author emails) and files.
    pub compare: (Vec<String>, Vec<String>),
    /// The ids of `compare`'s commits, in order (default: made-up ones).
    pub compare_shas: Vec<String>,
    /// The pull request's base when it is not the default branch (`main`, at `BASE_SHA`, whose
    /// files are `base_files`): its branch, its commit and the files at that commit.
    pub retargeted: Option<(String, String, HashMap<String, String>)>,
    /// Where the timeline's next-page links point instead of the API (a misbehaving server).
    pub timeline_links_to: Option<String>,
    /// A GET of this path (without the prefix) is answered with a redirect to this location.
    pub redirect: Option<(String, String)>,
    next_id: u64,
}

/// The pull request's base commit.
pub(crate) const BASE_SHA: &str = "ba5e0000000000000000000000000000000000ba";

pub(crate) struct FakeGithub {
    pub api_url: String,
    /// The web side (`GITHUB_SERVER_URL`): release downloads.
    pub server_url: String,
    pub state: Arc<Mutex<Gh>>,
}

impl Gh {
    /// GitHub's time for a new record. People and runners act seconds apart, never within the
    /// same second as the record before: the fake's clock moves on by at least a second per
    /// record (GitHub's times are whole seconds).
    fn stamp(&mut self) -> String {
        let t = chrono::Utc::now().timestamp().max(self.clock + 1);
        self.clock = t;
        chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
}

fn user(login: &str, kind: &str) -> Value {
    json!({"login": login, "type": kind})
}

impl Gh {
    /// An issue event with the next id.
    fn add_event(&mut self, mut event: Value) {
        self.next_id += 1;
        event["id"] = json!(self.next_id);
        self.events.push(event);
    }

    fn add_comment(&mut self, login: &str, body: &str) -> Value {
        let at = self.stamp();
        self.next_id += 1;
        let id = self.next_id;
        let c = json!({"id": id, "user": user(login, if login.ends_with("[bot]") { "Bot" } else { "User" }), "body": body,
                       "html_url": format!("https://github.example/octo/app/pull/7#issuecomment-{id}"), "created_at": at, "updated_at": at});
        self.comments.push(c.clone());
        c
    }
}

impl FakeGithub {
    pub(crate) fn start(head_sha: &str) -> FakeGithub {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
        let port = server.server_addr().to_ip().unwrap().port();
        let state = Arc::new(Mutex::new(Gh { head_sha: head_sha.to_owned(), ..Gh::default() }));
        let shared = Arc::clone(&state);
        let base = format!("http://127.0.0.1:{port}/api/v3");
        let link_base = base.clone();
        std::thread::spawn(move || {
            for mut req in server.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let header = |name: &'static str| {
                    req.headers().iter().find(|h| h.field.equiv(name)).map(|h| h.value.to_string()).unwrap_or_default()
                };
                let auth = header("authorization");
                let if_none_match = header("if-none-match");
                let method = req.method().to_string();
                let url = req.url().to_owned();
                if !url.starts_with("/api/v3") {
                    let file = {
                        let mut g = shared.lock().unwrap();
                        g.downloads.push(url.clone());
                        g.download_auth.push(!auth.is_empty());
                        g.files.get(&url).cloned()
                    };
                    let resp = match file {
                        Some(bytes) => tiny_http::Response::from_data(bytes).with_status_code(200),
                        None => tiny_http::Response::from_data(b"Not Found".to_vec()).with_status_code(404),
                    };
                    let _ = req.respond(resp);
                    continue;
                }
                let stall = shared.lock().unwrap().stall.clone();
                if let Some((end, wait)) = stall
                    && url.split('?').next().unwrap_or_default().ends_with(&end)
                {
                    shared.lock().unwrap().requests.push(("STALLED".into(), url.clone()));
                    std::thread::sleep(wait);
                }
                let (status, reply, mut headers) =
                    handle(&shared, &link_base, &method, &url, &auth, &if_none_match, &body);
                headers.extend(shared.lock().unwrap().always_headers.clone());
                let mut resp = tiny_http::Response::from_string(reply).with_status_code(status);
                resp.add_header(tiny_http::Header::from_bytes("content-type", "application/json").unwrap());
                for (k, v) in headers {
                    resp.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
                }
                let _ = req.respond(resp);
            }
        });
        FakeGithub { api_url: base, server_url: format!("http://127.0.0.1:{port}"), state }
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Gh) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// `login` (a "User" or "Bot") adds `label`.
    pub(crate) fn label(&self, login: &str, kind: &str, label: &str) {
        self.with(|g| {
            if !g.labels.iter().any(|l| l == label) {
                g.labels.push(label.to_owned());
            }
            let at = g.stamp();
            g.add_event(
                json!({"event": "labeled", "label": {"name": label}, "actor": user(login, kind), "created_at": at}),
            );
        });
    }

    pub(crate) fn comment(&self, login: &str, body: &str) -> u64 {
        self.with(|g| g.add_comment(login, body)["id"].as_u64().unwrap())
    }

    /// `login` submits a review (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`) on `commit`.
    pub(crate) fn review(&self, login: &str, state: &str, commit: &str, body: &str) -> u64 {
        self.with(|g| {
            g.next_id += 1;
            let id = g.next_id;
            let at = g.stamp();
            g.reviews.push(json!({"id": id, "user": user(login, "User"), "state": state, "commit_id": commit,
                                  "body": body, "submitted_at": at}));
            id
        })
    }

    /// The reactions on comment `id`, in order.
    pub(crate) fn reactions_on(&self, id: u64) -> Vec<String> {
        self.with(|g| g.reactions.iter().filter(|(c, _)| *c == id).map(|(_, r)| r.clone()).collect())
    }

    /// The base branch's copy of `path`.
    pub(crate) fn base_file(&self, path: &str, text: &str) {
        self.with(|g| g.base_files.insert(path.to_owned(), text.to_owned()));
    }

    pub(crate) fn permission(&self, login: &str, role: &str) {
        self.with(|g| g.permissions.insert(login.to_owned(), role.to_owned()));
    }

    /// The bodies of the orchestrator's gate comments.
    pub(crate) fn gate_comments(&self) -> Vec<String> {
        self.with(|g| {
            g.comments
                .iter()
                .filter_map(|c| c["body"].as_str())
                .filter(|b| b.contains("<!-- orchestrator:gate "))
                .map(str::to_owned)
                .collect()
        })
    }
}

fn page(items: &[Value], query: &str, base: &str, path: &str) -> (u16, String, Vec<(String, String)>) {
    let page: usize =
        query.split('&').find_map(|kv| kv.strip_prefix("page=")).and_then(|p| p.parse().ok()).unwrap_or(1);
    let start = (page - 1) * 100;
    let slice: Vec<Value> = items.iter().skip(start).take(100).cloned().collect();
    let mut headers = vec![];
    if items.len() > start + 100 {
        headers.push(("link".to_owned(), format!("<{base}{path}?per_page=100&page={}>; rel=\"next\"", page + 1)));
    }
    (200, Value::Array(slice).to_string(), headers)
}

/// The pull request's timeline as GitHub lists it: comments (`commented`), label events and
/// reviews (`reviewed`, their state in lower case), in the order they happened (by id: the fake
/// numbers every record from one counter).
fn timeline(g: &Gh) -> Vec<Value> {
    let mut items: Vec<Value> = g.events.clone();
    items.extend(g.comments.iter().map(|c| {
        let mut c = c.clone();
        c["event"] = json!("commented");
        c["actor"] = c["user"].clone();
        c
    }));
    items.extend(g.reviews.iter().map(|r| {
        let mut r = r.clone();
        r["event"] = json!("reviewed");
        r["state"] = json!(r["state"].as_str().unwrap_or_default().to_lowercase());
        r
    }));
    items.sort_by_key(|v| v["id"].as_u64().unwrap_or(0));
    items
}

fn handle(
    state: &Arc<Mutex<Gh>>,
    base: &str,
    method: &str,
    url: &str,
    auth: &str,
    if_none_match: &str,
    body: &str,
) -> (u16, String, Vec<(String, String)>) {
    let (status, reply, mut headers) = route(state, base, method, url, auth, body);
    // Conditional GETs, as GitHub answers them: an unchanged answer is a 304 without a body.
    if method == "GET" && status == 200 {
        let etag = format!(
            "\"{:x}\"",
            reply.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
        );
        if if_none_match == etag && !state.lock().unwrap().no_conditional {
            state.lock().unwrap().not_modified += 1;
            return (304, String::new(), vec![("etag".into(), etag)]);
        }
        headers.push(("etag".into(), etag));
    }
    (status, reply, headers)
}

fn route(
    state: &Arc<Mutex<Gh>>,
    base: &str,
    method: &str,
    url: &str,
    auth: &str,
    body: &str,
) -> (u16, String, Vec<(String, String)>) {
    let mut g = state.lock().unwrap();
    let url = url.strip_prefix("/api/v3").unwrap_or(url);
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    g.requests.push((method.to_owned(), path.to_owned()));
    if let Some((status, retry_after)) = g.failures.pop_front() {
        let headers = retry_after.map(|r| vec![("retry-after".to_owned(), r)]).unwrap_or_default();
        return (status, json!({"message": "injected failure"}).to_string(), headers);
    }
    if auth != format!("Bearer {TOKEN}") && auth != format!("token {TOKEN}") {
        return (401, json!({"message": "Bad credentials"}).to_string(), vec![]);
    }
    if let Some((_, to)) = g.redirect.clone().filter(|(from, _)| method == "GET" && from == path) {
        return (301, String::new(), vec![("location".to_owned(), to)]);
    }
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let ok = |v: Value| (200, v.to_string(), vec![]);
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["user"]) => match g.identity.clone().filter(|_| !g.refuse_user) {
            Some(login) => ok(user(&login, "User")),
            None => (403, json!({"message": "Resource not accessible by integration"}).to_string(), vec![]),
        },
        ("GET", ["repos", "octo", "app", "pulls", "7"]) => {
            let (base_ref, base_sha) = match &g.retargeted {
                Some((r, sha, _)) => (r.clone(), sha.clone()),
                None => ("main".to_owned(), BASE_SHA.to_owned()),
            };
            ok(
                json!({"number": 7, "head": {"sha": g.head_sha, "ref": "feature", "repo": {"full_name": g.head_repo.clone().unwrap_or_else(|| "octo/app".into())}},
                   "base": {"sha": base_sha, "ref": base_ref, "repo": {"full_name": "octo/app", "default_branch": "main"}}, "user": user(AUTHOR, "User")}),
            )
        }
        ("GET", ["repos", "octo", "app", "contents", rest @ ..]) => {
            let file = rest.join("/").replace("%2E", ".").replace("%2F", "/");
            let at = |r: &str| query.split('&').any(|kv| kv == format!("ref={r}"));
            let files = match &g.retargeted {
                Some((_, sha, files)) if at(sha) => Some(files),
                _ if at(BASE_SHA) || at("main") => Some(&g.base_files),
                _ => None,
            };
            match files.and_then(|f| f.get(&file)) {
                Some(text) => {
                    use base64::Engine as _;
                    let content = base64::engine::general_purpose::STANDARD.encode(text);
                    ok(json!({"type": "file", "encoding": "base64", "path": file, "sha": "f11e", "content": content}))
                }
                None => (404, json!({"message": "Not Found"}).to_string(), vec![]),
            }
        }
        ("GET", ["repos", "octo", "app", "issues", "7", "comments"]) => page(&g.comments, query, base, path),
        ("POST", ["repos", "octo", "app", "issues", "7", "comments"]) => {
            let who = g.identity.clone().unwrap_or_else(|| "github-actions[bot]".to_owned());
            let c = g.add_comment(&who, body["body"].as_str().unwrap_or_default());
            (201, c.to_string(), vec![])
        }
        ("PATCH", ["repos", "octo", "app", "issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let identity = g.identity.clone().unwrap_or_else(|| "github-actions[bot]".to_owned());
            match g.comments.iter_mut().find(|c| c["id"] == id) {
                // As GitHub does: a token edits only its own user's comments.
                Some(c) if c["user"]["login"] != identity.as_str() => {
                    (403, json!({"message": "Resource not accessible by integration"}).to_string(), vec![])
                }
                Some(c) => {
                    c["body"] = body["body"].clone();
                    ok(c.clone())
                }
                None => (404, json!({"message": "Not Found"}).to_string(), vec![]),
            }
        }
        ("GET", ["repos", "octo", "app", "issues", "7", "labels"]) => {
            let labels: Vec<Value> = g.labels.iter().map(|l| json!({"name": l})).collect();
            page(&labels, query, base, path)
        }
        ("DELETE", ["repos", "octo", "app", "issues", "7", "labels", name]) => {
            let name = name.replace("%3A", ":").replace("%20", " ");
            if !g.labels.contains(&name) {
                return (404, json!({"message": "Label does not exist"}).to_string(), vec![]);
            }
            g.labels.retain(|l| *l != name);
            let at = g.stamp();
            g.add_event(json!({"event": "unlabeled", "label": {"name": name}, "actor": user("github-actions[bot]", "Bot"), "created_at": at}));
            ok(json!([]))
        }
        ("GET", ["repos", "octo", "app", "issues", "7", "events"]) => page(&g.events, query, base, path),
        ("GET", ["repos", "octo", "app", "issues", "7", "timeline"]) => {
            let links = g.timeline_links_to.clone().unwrap_or_else(|| base.to_owned());
            page(&timeline(&g), query, &links, path)
        }
        ("GET", ["repos", "octo", "app", "compare", _range]) => {
            let (authors, files) = g.compare.clone();
            let commits: Vec<Value> = authors
                .iter()
                .enumerate()
                .map(|(i, email)| {
                    let sha = g.compare_shas.get(i).cloned().unwrap_or_else(|| format!("{i:040}"));
                    json!({"sha": sha, "commit": {"author": {"email": email, "name": "x"}}})
                })
                .collect();
            let files: Vec<Value> = files.iter().map(|f| json!({"filename": f, "status": "modified"})).collect();
            ok(json!({"status": "ahead", "ahead_by": commits.len(), "commits": commits, "files": files}))
        }
        ("GET", ["repos", "octo", "app", "pulls", "7", "reviews"]) => page(&g.reviews, query, base, path),
        ("POST", ["repos", "octo", "app", "issues", "comments", id, "reactions"]) => {
            let id: u64 = id.parse().unwrap_or(0);
            if !g.comments.iter().any(|c| c["id"] == id) {
                return (404, json!({"message": "Not Found"}).to_string(), vec![]);
            }
            let content = body["content"].as_str().unwrap_or_default().to_owned();
            let who = g.identity.clone().unwrap_or_else(|| "github-actions[bot]".to_owned());
            // As GitHub does: one reaction per person and content; the same again is answered 200.
            if let Some((_, r)) = g
                .reaction_list
                .iter()
                .find(|(c, r)| *c == id && r["content"] == content.as_str() && r["user"]["login"] == who.as_str())
            {
                return (200, r.to_string(), vec![]);
            }
            g.reactions.push((id, content.clone()));
            g.next_id += 1;
            let kind = if who.ends_with("[bot]") { "Bot" } else { "User" };
            let at = g.stamp();
            let r = json!({"id": g.next_id, "content": content, "user": user(&who, kind), "created_at": at});
            g.reaction_list.push((id, r.clone()));
            (201, r.to_string(), vec![])
        }
        ("GET", ["repos", "octo", "app", "issues", "comments", id, "reactions"]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let list: Vec<Value> = g.reaction_list.iter().filter(|(c, _)| *c == id).map(|(_, r)| r.clone()).collect();
            page(&list, query, base, path)
        }
        ("DELETE", ["repos", "octo", "app", "issues", "comments", id, "reactions", rid]) => {
            let (id, rid): (u64, u64) = (id.parse().unwrap_or(0), rid.parse().unwrap_or(0));
            g.reaction_list.retain(|(c, r)| !(*c == id && r["id"] == rid));
            (204, String::new(), vec![])
        }
        ("GET", ["repos", "octo", "app", "collaborators", login, "permission"]) => match g.permissions.get(*login) {
            Some(role) => {
                let permission = match role.as_str() {
                    "maintain" => "write",
                    "triage" => "read",
                    r => r,
                };
                ok(json!({"permission": permission, "role_name": role, "user": user(login, "User")}))
            }
            None => (404, json!({"message": format!("{login} is not a user")}).to_string(), vec![]),
        },
        ("GET", ["repos", "octo", "app", "actions", "runs", run, "artifacts"]) => {
            let list: Vec<Value> = g
                .artifacts
                .iter()
                .filter(|a| a["workflow_run"]["id"].as_u64().is_some_and(|n| n.to_string() == *run))
                .cloned()
                .collect();
            ok(json!({"total_count": list.len(), "artifacts": list}))
        }
        ("GET", ["repos", "octo", "app", "actions", "artifacts", id, "zip"]) => {
            let web = base.trim_end_matches("/api/v3");
            (302, String::new(), vec![("location".to_owned(), format!("{web}/blob/{id}.zip"))])
        }
        ("POST", ["repos", "octo", "app", "statuses", sha]) => {
            let mut s = body.clone();
            s["sha"] = json!(sha);
            g.statuses.push(s.clone());
            (201, s.to_string(), vec![])
        }
        _ => (404, json!({"message": format!("no route for {method} {path}")}).to_string(), vec![]),
    }
}
