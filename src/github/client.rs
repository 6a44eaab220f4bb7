//! A small GitHub REST client over octocrab's transport: JSON in and out, every call retried on
//! 5xx, 429 and secondary rate limits (honouring `Retry-After` and `x-ratelimit-reset`), GETs
//! made conditional with the last ETag so unchanged answers cost no rate limit, and pagination
//! followed through `Link: rel="next"`. The token is only ever in the Authorization header.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use octocrab::Octocrab;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum GithubError {
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

pub struct Client {
    api: Octocrab,
    base: String,
    token: String,
    etags: Mutex<HashMap<String, (String, Value)>>,
}

enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    fn name(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
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
pub fn request_timeout() -> Duration {
    std::env::var("ORCHESTRATOR_GITHUB_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
        .unwrap_or(Duration::from_secs(30))
}

/// The longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The logins the run posts as: `github-actions[bot]` (the workflow's token), those named in
/// `ORCHESTRATOR_BOT_LOGIN` (comma-separated: a GitHub App's `<slug>[bot]`, which `GET /user`
/// does not answer for), and the token's own user when `GET /user` answers. A refusal there
/// (401, 403, 404: an app or Actions token) means "no user"; any other failure is an error, so
/// that the run never mistakes its own comments for a person's.
pub async fn own_identities(client: &Client) -> Result<Vec<String>, GithubError> {
    let mut own = vec!["github-actions[bot]".to_owned()];
    if let Ok(named) = std::env::var("ORCHESTRATOR_BOT_LOGIN") {
        own.extend(named.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned));
    }
    match client.get("/user").await {
        Ok(u) => own.extend(u["login"].as_str().map(str::to_owned)),
        Err(GithubError::Status { status: 401 | 403 | 404, .. }) => {}
        Err(e) => return Err(e),
    }
    Ok(own)
}

/// Whether `login` is one of `own`.
pub fn is_own(own: &[String], login: &str) -> bool {
    own.iter().any(|o| o.eq_ignore_ascii_case(login))
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &http::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let start = part.find('<')? + 1;
        let end = part.find('>')?;
        Some(part[start..end].to_owned())
    })
}

impl Client {
    /// A client for the API at `base` (`GITHUB_API_URL`, e.g. `https://api.github.com` or
    /// `https://ghe.example.com/api/v3`) authenticated with `token`.
    pub fn new(base: &str, token: &str) -> Result<Client, GithubError> {
        let setup = |message: String| GithubError::Setup { url: base.to_owned(), message };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let api = Octocrab::builder()
            .base_uri(base)
            .map_err(|e| setup(e.to_string()))?
            .set_connect_timeout(Some(CONNECT_TIMEOUT))
            .set_read_timeout(Some(request_timeout()))
            .personal_token(token.to_owned())
            .build()
            .map_err(|e| setup(e.to_string()))?;
        Ok(Client {
            api,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            etags: Mutex::default(),
        })
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// One call, retried while the answer is transient. Returns the status, headers and body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, http::HeaderMap, String), GithubError> {
        let url = self.url(path);
        let name = method.name();
        let transport = |message: String| GithubError::Transport { method: name, path: path.to_owned(), message };
        let mut attempt = 0;
        let limit = request_timeout();
        loop {
            attempt += 1;
            let cached = matches!(method, Method::Get)
                .then(|| self.etags.lock().unwrap_or_else(|e| e.into_inner()).get(&url).map(|(e, _)| e.clone()))
                .flatten();
            let exchange = async {
                let sent = match method {
                    Method::Get => {
                        let mut headers = http::HeaderMap::new();
                        if let Some(etag) = cached.as_ref().and_then(|e| http::HeaderValue::from_str(e).ok()) {
                            headers.insert("if-none-match", etag);
                        }
                        self.api._get_with_headers(url.as_str(), Some(headers)).await
                    }
                    Method::Post => self.api._post(url.as_str(), body).await,
                    Method::Patch => self.api._patch(url.as_str(), body).await,
                    Method::Delete => self.api._delete(url.as_str(), body).await,
                };
                let response = sent.map_err(|e| e.to_string())?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let text = self.api.body_to_string(response).await.map_err(|e| e.to_string())?;
                Ok::<_, String>((status, headers, text))
            };
            // The whole exchange, body included, under one limit; a timeout is retried like a 5xx.
            let answer = match tokio::time::timeout(limit, exchange).await {
                Ok(a) => a,
                Err(_) => Err(format!("no answer within {}s (ORCHESTRATOR_GITHUB_TIMEOUT)", limit.as_secs_f64())),
            };
            let (status, headers, text) = match answer {
                Ok(a) => a,
                Err(_) if attempt < ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(transport(e)),
            };
            if attempt < ATTEMPTS
                && let Some(wait) = retry_wait(status, &headers, &text, attempt)
            {
                tokio::time::sleep(wait).await;
                continue;
            }
            return Ok((status, headers, text));
        }
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(Value, http::HeaderMap), GithubError> {
        let name = method.name();
        let is_get = matches!(method, Method::Get);
        let url = self.url(path);
        let (status, headers, text) = self.call(method, path, body).await?;
        if status == 304
            && is_get
            && let Some((_, v)) = self.etags.lock().unwrap_or_else(|e| e.into_inner()).get(&url)
        {
            return Ok((v.clone(), headers));
        }
        if !(200..300).contains(&status) {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(GithubError::Status { method: name, path: path.to_owned(), status, message });
        }
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| GithubError::Body {
                method: name,
                path: path.to_owned(),
                message: e.to_string(),
            })?
        };
        if is_get && let Some(etag) = headers.get("etag").and_then(|v| v.to_str().ok()) {
            self.etags.lock().unwrap_or_else(|e| e.into_inner()).insert(url, (etag.to_owned(), value.clone()));
        }
        Ok((value, headers))
    }

    pub async fn get(&self, path: &str) -> Result<Value, GithubError> {
        Ok(self.json(Method::Get, path, None).await?.0)
    }

    /// Every item of a paginated list (100 a page).
    pub async fn get_all(&self, path: &str) -> Result<Vec<Value>, GithubError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut next = Some(format!("{path}{sep}per_page=100"));
        let mut items = Vec::new();
        while let Some(page) = next.take() {
            let (value, headers) = self.json(Method::Get, &page, None).await?;
            items.extend(value.as_array().cloned().unwrap_or_default());
            next = next_link(&headers);
        }
        Ok(items)
    }

    /// Every item of a paginated list that GitHub wraps in an object (`{"total_count", key: […]}`).
    pub async fn get_all_in(&self, path: &str, key: &str) -> Result<Vec<Value>, GithubError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut next = Some(format!("{path}{sep}per_page=100"));
        let mut items = Vec::new();
        while let Some(page) = next.take() {
            let (value, headers) = self.json(Method::Get, &page, None).await?;
            items.extend(value[key].as_array().cloned().unwrap_or_default());
            next = next_link(&headers);
        }
        Ok(items)
    }

    /// The bytes behind `path` (an artifact's zip): GitHub answers with a redirect to short-lived
    /// storage, which is fetched without the token (it must not leave for another host).
    /// Retried like every call.
    pub async fn download(&self, path: &str) -> Result<Vec<u8>, GithubError> {
        let url = self.url(path);
        let fail = |message: String| GithubError::Transport { method: "GET", path: path.to_owned(), message };
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(Duration::from_secs(300).max(request_timeout()))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = http
                .get(&url)
                .header("authorization", format!("Bearer {}", self.token))
                .header("accept", "application/vnd.github+json")
                .header("user-agent", "orchestrator")
                .send()
                .await;
            let response = match sent {
                Ok(r) if r.status().is_redirection() => {
                    let location = r
                        .headers()
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .ok_or_else(|| fail("a redirect without a location".into()))?
                        .to_owned();
                    http.get(&location).header("user-agent", "orchestrator").send().await
                }
                other => other,
            };
            let response = match response {
                Ok(r) => r,
                Err(_) if attempt < ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(fail(e.to_string())),
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.map_err(|e| fail(e.to_string()))?;
            if (200..300).contains(&status) {
                return Ok(bytes.to_vec());
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if attempt < ATTEMPTS
                && let Some(wait) = retry_wait(status, &headers, &text, attempt)
            {
                tokio::time::sleep(wait).await;
                continue;
            }
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(GithubError::Status { method: "GET", path: path.to_owned(), status, message });
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, GithubError> {
        Ok(self.json(Method::Post, path, Some(body)).await?.0)
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, GithubError> {
        Ok(self.json(Method::Patch, path, Some(body)).await?.0)
    }

    pub async fn delete(&self, path: &str) -> Result<(), GithubError> {
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
    }
}
