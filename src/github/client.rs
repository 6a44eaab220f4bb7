//! The GitHub REST client: one transport (octocrab's), one retry policy, one paginator and one
//! cache of conditional answers.
//!
//! - Every call, downloads included, is retried on 5xx, 429, secondary rate limits and timeouts
//!   (honouring `Retry-After` and `x-ratelimit-reset`) by [`Client::call`], under a total time
//!   limit per exchange.
//! - Lists are read page by page through `Link: rel="next"` by [`Client::get_all`].
//! - GETs carry the last ETag (`If-None-Match`): an unchanged answer is a 304, which costs no
//!   rate limit, and its body comes from the cache ([`cache`]). The cache outlives the process
//!   in a file beside the state, authenticated with the token, so the next `run resume` asks
//!   conditionally too.
//! - The token is only ever in the Authorization header of requests to the API's own origin: a
//!   redirect elsewhere, and every download's redirect, is followed without it.
//!
//! One client serves a process per API and token ([`Client::shared`]): the policy lookup, the
//! carried state and the gate share its identity, cache and answers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use octocrab::Octocrab;
use serde_json::Value;

use super::cache::Cache;

#[derive(Debug, thiserror::Error)]
pub(crate) enum GithubError {
    #[error("GitHub API {method} {path}: HTTP {status}: {message}")]
    Status { method: &'static str, path: String, status: u16, message: String },
    #[error("GitHub API {method} {path}: {message}")]
    Transport { method: &'static str, path: String, message: String },
    #[error("GitHub API {method} {path}: the response is not JSON: {message}")]
    Body { method: &'static str, path: String, message: String },
    #[error("cannot set up the GitHub client for `{url}`: {message}")]
    Setup { url: String, message: String },
    /// An answer that is JSON but not what the API documents.
    #[error("GitHub API {method} {path}: {message}")]
    Unexpected { method: &'static str, path: String, message: String },
    /// The run cannot tell which comments are its own.
    #[error("{0}")]
    Identity(String),
}

/// How many times a call is tried before its error is returned.
const ATTEMPTS: u32 = 5;
/// The longest wait between tries, whatever the server asks.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most redirects one exchange follows.
const MAX_REDIRECTS: u32 = 5;
/// The most pages one list is read to (100 items each): a server that always answers with a
/// next page cannot keep a check going for ever.
const MAX_PAGES: usize = 1_000;
/// The items a page holds (`per_page`).
const PER_PAGE: usize = 100;
/// How long an answer kept for the next asker ([`Client::get_and_share`]) stays good.
const SHARED_FOR: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// One request as the retry loop repeats it.
struct Request<'a> {
    method: Method,
    /// As the caller named it (errors quote it).
    path: &'a str,
    url: String,
    body: Option<&'a Value>,
    if_none_match: Option<String>,
    /// A download: its redirect (to short-lived storage) is followed without the token, even
    /// on the API's own host.
    download: bool,
    limit: Duration,
}

/// What came back: status, headers and the whole body.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// GitHub's `message`, or the start of the body.
    fn message(&self) -> String {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| self.text().chars().take(200).collect())
    }
}

/// How long to wait before retrying a response with `status` and `headers`, if it is worth it.
///
/// `Retry-After` is honoured wherever it is given. `x-ratelimit-reset` applies only to a rate-limit
/// answer (403 or 429 with `x-ratelimit-remaining: 0`): GitHub sends it on every response, and a
/// 5xx is not a rate limit. Everything else transient gets [`backoff`].
fn retry_wait(status: u16, headers: &http::HeaderMap, body: &str, attempt: u32) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let secondary = status == 403 && (body.contains("secondary rate limit") || header("retry-after").is_some());
    let primary = (status == 403 || status == 429) && header("x-ratelimit-remaining") == Some("0");
    if !(status >= 500 || status == 429 || secondary || primary) {
        return None;
    }
    if let Some(secs) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs).min(MAX_WAIT));
    }
    if primary && let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok()) {
        let wait = (reset - chrono::Utc::now().timestamp()).max(0) as u64 + 1;
        return Some(Duration::from_secs(wait).min(MAX_WAIT));
    }
    Some(backoff(attempt))
}

/// Exponential backoff with jitter for try `attempt` (1, 2, …): about 0.25 s, 0.5 s, 1 s, 2 s,
/// each between half and all of that.
fn backoff(attempt: u32) -> Duration {
    let full = 250.0 * 2f64.powi(attempt.saturating_sub(1).min(8) as i32);
    Duration::from_millis((full * (0.5 + fastrand::f64() * 0.5)) as u64).min(MAX_WAIT)
}

/// The longest one request may take, whole (`ORCHESTRATOR_GITHUB_TIMEOUT`, seconds; default 30).
/// A request that takes longer is retried like a 5xx.
pub(crate) fn request_timeout() -> Duration {
    std::env::var("ORCHESTRATOR_GITHUB_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
        .unwrap_or(Duration::from_secs(30))
}

/// The longest a download (an artifact's zip) may take, whole.
fn download_timeout() -> Duration {
    Duration::from_secs(300).max(request_timeout())
}

/// The logins the run posts as: `github-actions[bot]` (the workflow's token), those named in
/// `ORCHESTRATOR_BOT_LOGIN` (comma-separated: a GitHub App's `<slug>[bot]`, which `GET /user`
/// does not answer for), and the token's own user when `GET /user` answers. A refusal there
/// (401, 403, 404: an app or Actions token) means "no user"; any other failure is an error, so
/// that the run never mistakes its own comments for a person's. The token's user cannot change,
/// so it is asked once per token and kept in the cache.
pub(crate) async fn own_identities(client: &Client) -> Result<Vec<String>, GithubError> {
    client.identity.get_or_try_init(|| client.ask_identities()).await.cloned()
}

/// Whether `login` is one of `own`.
pub(crate) fn is_own(own: &[String], login: &str) -> bool {
    own.iter().any(|o| o.eq_ignore_ascii_case(login))
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &http::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let start = part.find('<')? + 1;
        let end = part.find('>')?;
        (start <= end).then(|| part[start..end].to_owned())
    })
}

/// `scheme://authority` of `url`, lowercased, or `None` for a relative or odd one.
fn origin(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?).to_ascii_lowercase())
}

/// Whether `url` is under the API at `base`: the same origin, and the base's path.
fn within(base: &str, url: &str) -> bool {
    let (Ok(b), Ok(u)) = (base.parse::<http::Uri>(), url.parse::<http::Uri>()) else { return false };
    let base_path = b.path().trim_end_matches('/');
    origin(base).is_some()
        && origin(base) == origin(url)
        && u.path().strip_prefix(base_path).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A GET whose answer cannot change: a file at a full commit id (`?ref=<sha>`).
fn immutable(url: &str) -> bool {
    url.contains("/contents/")
        && url.split(['?', '&']).any(|kv| {
            kv.strip_prefix("ref=")
                .is_some_and(|r| matches!(r.len(), 40 | 64) && r.bytes().all(|b| b.is_ascii_hexdigit()))
        })
}

/// The clients of this process, by API and a digest of the token.
static SHARED: LazyLock<Mutex<HashMap<String, Arc<Client>>>> = LazyLock::new(Mutex::default);

pub(crate) struct Client {
    /// Authenticated; sends the token to the API's origin only.
    api: Octocrab,
    /// Without credentials: what a redirect leads to outside the API.
    anonymous: Octocrab,
    base: String,
    origin: Option<String>,
    cache: Mutex<Cache>,
    /// Where the cache is kept between processes, once a caller has said.
    file: tokio::sync::OnceCell<PathBuf>,
    token: String,
    identity: tokio::sync::OnceCell<Vec<String>>,
    /// Answers kept for the next asker of the same URL (see [`Client::get_and_share`]).
    shared: Mutex<HashMap<String, (Instant, Value)>>,
}

impl Client {
    /// A client for the API at `base` (`GITHUB_API_URL`, e.g. `https://api.github.com` or
    /// `https://ghe.example.com/api/v3`) authenticated with `token`.
    pub(crate) fn new(base: &str, token: &str) -> Result<Client, GithubError> {
        let setup = |message: String| GithubError::Setup { url: base.to_owned(), message };
        let _ = rustls::crypto::ring::default_provider().install_default();
        // The API's client puts its base path before every path; the anonymous one is only
        // given whole URLs, which it leaves as they are.
        let build = |token: Option<&str>| {
            let builder = Octocrab::builder()
                .set_connect_timeout(Some(CONNECT_TIMEOUT))
                .set_read_timeout(Some(request_timeout()));
            match token {
                Some(t) => {
                    builder.base_uri(base).map_err(|e| setup(e.to_string()))?.personal_token(t.to_owned()).build()
                }
                None => builder.build(),
            }
            .map_err(|e| setup(e.to_string()))
        };
        let base = base.trim_end_matches('/').to_owned();
        Ok(Client {
            api: build(Some(token))?,
            anonymous: build(None)?,
            origin: origin(&base),
            cache: Mutex::new(Cache::new(&base)),
            base,
            file: tokio::sync::OnceCell::new(),
            token: token.to_owned(),
            identity: tokio::sync::OnceCell::new(),
            shared: Mutex::default(),
        })
    }

    /// This process's client for `base` and `token`, made on first use.
    pub(crate) fn shared(base: &str, token: &str) -> Result<Arc<Client>, GithubError> {
        let key = format!("{base}\n{}", super::cache::digest(token.as_bytes()));
        let mut clients = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(Arc::clone(c));
        }
        let client = Arc::new(Client::new(base, token)?);
        clients.insert(key, Arc::clone(&client));
        Ok(client)
    }

    /// Keep the cache in `file` between processes: what an earlier process left there is read
    /// now (if the same token wrote it for the same API), and [`Client::persist`] writes it back.
    /// The first caller names the file; later calls change nothing.
    pub(crate) async fn keep_cache_in(&self, file: &Path) {
        let file = file.to_path_buf();
        self.file
            .get_or_init(|| async {
                let (path, base, token) = (file.clone(), self.base.clone(), self.token.clone());
                let loaded = tokio::task::spawn_blocking(move || Cache::load(&path, &base, token.as_bytes()))
                    .await
                    .ok()
                    .flatten();
                if let Some(loaded) = loaded {
                    self.cache.lock().unwrap_or_else(|e| e.into_inner()).merge(loaded);
                }
                file
            })
            .await;
    }

    /// Write the cache to its file, if one was named and anything changed. A cache that cannot
    /// be written is only a cost (more requests next time), never an error.
    pub(crate) async fn persist(&self) {
        let Some(file) = self.file.get().cloned() else { return };
        let bytes = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if !cache.take_dirty() {
                return;
            }
            cache.seal(self.token.as_bytes())
        };
        let _ = tokio::task::spawn_blocking(move || {
            file.parent().map_or(Ok(()), std::fs::create_dir_all)?;
            crate::state::replace_file(&file, &bytes)
        })
        .await;
    }

    /// `GET /user`, remembered per token (see [`own_identities`]).
    async fn ask_identities(&self) -> Result<Vec<String>, GithubError> {
        let mut own = vec!["github-actions[bot]".to_owned()];
        if let Ok(named) = std::env::var("ORCHESTRATOR_BOT_LOGIN") {
            own.extend(named.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned));
        }
        let known = self.cache.lock().unwrap_or_else(|e| e.into_inner()).user();
        let user = match known {
            Some(user) => user,
            None => {
                let user = match self.json(Method::Get, "/user", None).await {
                    Ok((u, _)) => u["login"].as_str().map(str::to_owned),
                    Err(GithubError::Status { status: 401 | 403 | 404, .. }) => None,
                    Err(e) => return Err(e),
                };
                self.cache.lock().unwrap_or_else(|e| e.into_inner()).set_user(user.clone());
                user
            }
        };
        own.extend(user);
        Ok(own)
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// One exchange: the request, and the redirects it leads to. A redirect within the API
    /// keeps the token (a renamed repository), except a download's; any other goes without it.
    async fn exchange(&self, req: &Request<'_>) -> Result<Answer, String> {
        let mut headers = http::HeaderMap::new();
        if let Some(etag) = req.if_none_match.as_deref().and_then(|e| http::HeaderValue::from_str(e).ok()) {
            headers.insert(http::header::IF_NONE_MATCH, etag);
        }
        let mut response = match req.method {
            Method::Get => self.api._get_with_headers(req.url.as_str(), Some(headers)).await,
            Method::Post => self.api._post(req.url.as_str(), req.body).await,
            Method::Patch => self.api._patch(req.url.as_str(), req.body).await,
            Method::Delete => self.api._delete(req.url.as_str(), req.body).await,
        }
        .map_err(|e| e.to_string())?;
        let mut hops = 0;
        while response.status().is_redirection() && response.status() != http::StatusCode::NOT_MODIFIED {
            hops += 1;
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or("a redirect without a location")?;
            let next = if location.starts_with('/') {
                format!("{}{location}", self.origin.clone().unwrap_or_default())
            } else {
                location.to_owned()
            };
            if hops > MAX_REDIRECTS {
                return Err(format!("more than {MAX_REDIRECTS} redirects"));
            }
            // Only a GET is followed: anything else must not be repeated somewhere else.
            if req.method != Method::Get {
                break;
            }
            let client = if within(&self.base, &next) && !req.download { &self.api } else { &self.anonymous };
            response = client._get(next.as_str()).await.map_err(|e| e.to_string())?;
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes().to_vec();
        Ok(Answer { status, headers, body })
    }

    /// The one retry loop: `req` is sent until its answer is not transient or [`ATTEMPTS`] are
    /// used. Each exchange, body included, is under `req.limit`; a timeout is retried like a
    /// 5xx.
    async fn call(&self, req: &Request<'_>) -> Result<Answer, GithubError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer = match tokio::time::timeout(req.limit, self.exchange(req)).await {
                Ok(a) => a,
                Err(_) => Err(format!("no answer within {}s (ORCHESTRATOR_GITHUB_TIMEOUT)", req.limit.as_secs_f64())),
            };
            match answer {
                Err(_) if attempt < ATTEMPTS => tokio::time::sleep(backoff(attempt)).await,
                Err(message) => {
                    return Err(GithubError::Transport {
                        method: req.method.name(),
                        path: req.path.to_owned(),
                        message,
                    });
                }
                Ok(a) => match retry_wait(a.status, &a.headers, &a.text(), attempt) {
                    Some(wait) if attempt < ATTEMPTS => tokio::time::sleep(wait).await,
                    _ => return Ok(a),
                },
            }
        }
    }

    /// A JSON call. A GET is conditional when the cache has the URL (a 304 answers from it),
    /// and is not sent at all when its answer cannot change and is known.
    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(Value, http::HeaderMap), GithubError> {
        self.json_with(method, path, body, true).await
    }

    /// [`Client::json`]; a GET with `conditional` false is asked without its ETag.
    async fn json_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        conditional: bool,
    ) -> Result<(Value, http::HeaderMap), GithubError> {
        let url = self.url(path);
        let is_get = method == Method::Get;
        let cached = if is_get { self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&url) } else { None };
        if let Some(c) = &cached
            && c.fixed
        {
            return Ok((c.body.clone(), c.headers()));
        }
        let req = Request {
            method,
            path,
            url: url.clone(),
            body,
            if_none_match: cached.as_ref().filter(|_| conditional).map(|c| c.etag.clone()),
            download: false,
            limit: request_timeout(),
        };
        let answer = self.call(&req).await?;
        if answer.status == 304
            && let Some(c) = cached
        {
            let mut headers = c.headers();
            headers.extend(answer.headers);
            return Ok((c.body, headers));
        }
        if !(200..300).contains(&answer.status) {
            return Err(GithubError::Status {
                method: method.name(),
                path: path.to_owned(),
                status: answer.status,
                message: answer.message(),
            });
        }
        let value = if answer.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&answer.body).map_err(|e| GithubError::Body {
                method: method.name(),
                path: path.to_owned(),
                message: e.to_string(),
            })?
        };
        if is_get {
            let etag = answer.headers.get(http::header::ETAG).and_then(|v| v.to_str().ok());
            let link = answer.headers.get("link").and_then(|v| v.to_str().ok());
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if immutable(&url) {
                cache.put_fixed(&url, &value, link);
            } else if let Some(etag) = etag {
                cache.put(&url, etag, &value, link);
            }
        }
        Ok((value, answer.headers))
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value, GithubError> {
        Ok(self.json(Method::Get, path, None).await?.0)
    }

    /// Like [`Client::get`], and the answer is kept for the next [`Client::get_shared_or_new`]
    /// of the same path within a few seconds: the pull request one command reads for its
    /// policy serves its first gate check too.
    pub(crate) async fn get_and_share(&self, path: &str) -> Result<Value, GithubError> {
        let value = self.get(path).await?;
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).insert(self.url(path), (Instant::now(), value.clone()));
        Ok(value)
    }

    /// The answer kept by [`Client::get_and_share`] if it is recent (it is used once), else a
    /// new GET.
    pub(crate) async fn get_shared_or_new(&self, path: &str) -> Result<Value, GithubError> {
        let kept = self.shared.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.url(path));
        match kept {
            Some((at, value)) if at.elapsed() <= SHARED_FOR => Ok(value),
            _ => self.get(path).await,
        }
    }

    /// Every item of a paginated list: the answer itself when it is an array, else its `key`
    /// (`{"total_count", key: […]}`), 100 a page.
    async fn pages(&self, path: &str, key: Option<&str>) -> Result<Vec<Value>, GithubError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut next = Some(format!("{path}{sep}per_page={PER_PAGE}"));
        let mut items = Vec::new();
        let mut read = 0;
        while let Some(page) = next.take() {
            read += 1;
            if read > MAX_PAGES {
                return Err(GithubError::Unexpected {
                    method: "GET",
                    path: path.to_owned(),
                    message: format!("more than {MAX_PAGES} pages"),
                });
            }
            // A remembered last page that was full may have a next page now, which a 304 would
            // not say: GitHub's ETag is the body's, and an item on a new page changes only the
            // `Link`. Such a page is asked for without its ETag.
            let full_last =
                self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(&self.url(&page)).is_some_and(|e| {
                    let list = match key {
                        Some(k) => &e.body[k],
                        None => &e.body,
                    };
                    next_link(&e.headers()).is_none() && list.as_array().is_some_and(|l| l.len() >= PER_PAGE)
                });
            let (mut value, headers) = self.json_with(Method::Get, &page, None, !full_last).await?;
            let list = match key {
                Some(k) => value.get_mut(k).map(Value::take),
                None => Some(value),
            };
            if let Some(Value::Array(list)) = list {
                items.extend(list);
            }
            next = next_link(&headers);
        }
        Ok(items)
    }

    /// Every item of a paginated list (100 a page).
    pub(crate) async fn get_all(&self, path: &str) -> Result<Vec<Value>, GithubError> {
        self.pages(path, None).await
    }

    /// Every item of a paginated list that GitHub wraps in an object (`{"total_count", key: […]}`).
    pub(crate) async fn get_all_in(&self, path: &str, key: &str) -> Result<Vec<Value>, GithubError> {
        self.pages(path, Some(key)).await
    }

    /// The bytes behind `path` (an artifact's zip): GitHub answers with a redirect to short-lived
    /// storage, which is fetched without the token (it must not leave for another host).
    /// Retried like every call.
    pub(crate) async fn download(&self, path: &str) -> Result<Vec<u8>, GithubError> {
        let req = Request {
            method: Method::Get,
            path,
            url: self.url(path),
            body: None,
            if_none_match: None,
            download: true,
            limit: download_timeout(),
        };
        let answer = self.call(&req).await?;
        if (200..300).contains(&answer.status) {
            return Ok(answer.body);
        }
        Err(GithubError::Status {
            method: "GET",
            path: path.to_owned(),
            status: answer.status,
            message: answer.message(),
        })
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Value, GithubError> {
        Ok(self.json(Method::Post, path, Some(body)).await?.0)
    }

    pub(crate) async fn patch(&self, path: &str, body: &Value) -> Result<Value, GithubError> {
        Ok(self.json(Method::Patch, path, Some(body)).await?.0)
    }

    pub(crate) async fn delete(&self, path: &str) -> Result<(), GithubError> {
        match self.json(Method::Delete, path, None).await {
            Ok(_) | Err(GithubError::Status { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn transient_answers_are_retried_after_the_time_asked() {
        let first = retry_wait(502, &headers(&[]), "", 1).unwrap();
        assert!(first >= Duration::from_millis(125) && first <= Duration::from_millis(250), "{first:?}");
        // GitHub sends x-ratelimit-reset on every answer; a 5xx is not a rate limit.
        let reset = (chrono::Utc::now().timestamp() + 60).to_string();
        let wait =
            retry_wait(502, &headers(&[("x-ratelimit-remaining", "4999"), ("x-ratelimit-reset", &reset)]), "", 1);
        assert!(wait.unwrap() < Duration::from_secs(1), "{wait:?}");
        let later = retry_wait(503, &headers(&[]), "", 4).unwrap();
        assert!(later >= Duration::from_secs(1) && later <= Duration::from_secs(2), "{later:?}");
        assert_eq!(retry_wait(429, &headers(&[("retry-after", "3")]), "", 1), Some(Duration::from_secs(3)));
        assert!(retry_wait(403, &headers(&[]), "You have exceeded a secondary rate limit", 1).is_some());
        let reset = (chrono::Utc::now().timestamp() + 5).to_string();
        let wait =
            retry_wait(403, &headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &reset)]), "", 1).unwrap();
        assert!(wait >= Duration::from_secs(5) && wait <= Duration::from_secs(7));
        assert_eq!(retry_wait(404, &headers(&[]), "", 1), None);
        assert_eq!(retry_wait(403, &headers(&[]), "Resource not accessible by integration", 1), None);
    }

    #[test]
    fn next_page_comes_from_the_link_header() {
        let h = headers(&[(
            "link",
            "<https://api.github.com/x?page=2>; rel=\"next\", <https://api.github.com/x?page=5>; rel=\"last\"",
        )]);
        assert_eq!(next_link(&h).as_deref(), Some("https://api.github.com/x?page=2"));
        assert_eq!(next_link(&headers(&[])), None);
        assert_eq!(next_link(&headers(&[("link", ">x<; rel=\"next\"")])), None, "no panic on a malformed link");
    }

    #[test]
    fn only_a_file_at_a_full_commit_id_is_immutable() {
        let sha = "ba5e0000000000000000000000000000000000ba";
        assert!(immutable(&format!("https://h/api/v3/repos/o/r/contents/.claude/config.yaml?ref={sha}")));
        assert!(immutable(&format!("https://h/repos/o/r/contents/a?x=1&ref={}", "a".repeat(64))));
        for mutable in [
            "https://h/repos/o/r/contents/a?ref=main",
            "https://h/repos/o/r/contents/a?ref=ba5e000",
            "https://h/repos/o/r/contents/a",
            &format!("https://h/repos/o/r/pulls/7?ref={sha}"),
            &format!("https://h/repos/o/r/contents/a?ref={}g", &sha[..39]),
        ] {
            assert!(!immutable(mutable), "{mutable}");
        }
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(origin("https://API.github.com/repos/x").as_deref(), Some("https://api.github.com"));
        assert_eq!(origin("http://127.0.0.1:8080/api/v3").as_deref(), Some("http://127.0.0.1:8080"));
        assert_ne!(origin("http://127.0.0.1:8080/a"), origin("http://127.0.0.1:8081/a"));
        assert_eq!(origin("/relative"), None);
    }

    #[test]
    fn a_redirect_keeps_the_token_only_within_the_api() {
        let ghes = "http://127.0.0.1:8080/api/v3";
        assert!(within(ghes, "http://127.0.0.1:8080/api/v3/repositories/1"));
        assert!(within(ghes, "HTTP://127.0.0.1:8080/api/v3"));
        for outside in [
            "http://127.0.0.1:8080/blob/1.zip",
            "http://127.0.0.1:8080/api/v30/x",
            "http://127.0.0.1:8081/api/v3/x",
            "https://127.0.0.1:8080/api/v3/x",
            "http://evil.example/api/v3/x",
            "/api/v3/x",
            "not a url",
        ] {
            assert!(!within(ghes, outside), "{outside}");
        }
        assert!(within("https://api.github.com", "https://api.github.com/repositories/1/pulls/7"));
        assert!(!within("https://api.github.com", "https://pipelines.actions.githubusercontent.com/x"));
    }
}
