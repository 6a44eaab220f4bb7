//! The base branch's config, read through the API at the pull request's base commit: the
//! source of the gate's policy (see `config::policy`). Never read from the checkout, which in a
//! `pull_request_target` run may be the pull request's head. A pull request into a branch other
//! than the repository's default one is held to the default branch's config: its author chose
//! that branch, and may have written it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::client::{Client, GithubError};
use super::context::PrContext;

/// What the base branch says: its copy of the config (`None` when it has none), the base commit,
/// and the repository the pull request's head lives in, as GitHub records it (`None` when that
/// repository is gone).
pub(crate) struct Base {
    pub config: Option<String>,
    pub sha: String,
    pub head_repo: Option<String>,
    /// The pull request targets a branch other than the repository's default one: (its base
    /// branch, the default branch), whose config the policy was read from instead.
    pub retargeted: Option<(String, String)>,
}

/// The base branch's copy of `path` (relative to the repository's root) at the pull request's
/// base commit. The client's cache is kept beside the state at `state` (it is written by the
/// gate, once the run goes on): a file at a commit never changes, so a later check asks only
/// for the pull request, which the gate's first check then uses too.
pub(crate) async fn config(ctx: &PrContext, path: &str, state: &std::path::Path) -> Result<Base, GithubError> {
    let client = Client::shared(&ctx.api_url, &ctx.token)?;
    client.keep_cache_in(&super::cache::cache_file(state)).await;
    let pr = client.get_and_share(&format!("{}/pulls/{}", ctx.repo_path(), ctx.number)).await?;
    let sha = pr["base"]["sha"].as_str().unwrap_or_default().to_owned();
    let head_repo = pr["head"]["repo"]["full_name"].as_str().map(str::to_owned);
    if sha.len() < 7 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(GithubError::Unexpected {
            method: "GET",
            path: format!("{}/pulls/{}", ctx.repo_path(), ctx.number),
            message: "the pull request has no base commit (`base.sha`)".into(),
        });
    }
    // The author of a pull request chooses its base branch, and anyone with write access can
    // push a branch whose config says what they like: the maintainers' policy is the default
    // branch's, and a pull request into another branch is held to it.
    let base_ref = pr["base"]["ref"].as_str().unwrap_or_default();
    let retargeted = match pr["base"]["repo"]["default_branch"].as_str() {
        Some(default) if !default.is_empty() && default != base_ref => Some((base_ref.to_owned(), default.to_owned())),
        _ => None,
    };
    let at = match &retargeted {
        Some((_, default)) => super::gate::segment(default),
        None => sha.clone(),
    };
    let encoded: Vec<String> = path.split('/').map(super::gate::segment).collect();
    let file = format!("{}/contents/{}?ref={at}", ctx.repo_path(), encoded.join("/"));
    let v = match client.get(&file).await {
        Ok(v) => v,
        Err(GithubError::Status { status: 404, .. }) => return Ok(Base { config: None, sha, head_repo, retargeted }),
        Err(e) => return Err(e),
    };
    let bad = |message: &str| GithubError::Unexpected { method: "GET", path: file.clone(), message: message.into() };
    if v["type"] != "file" || v["encoding"] != "base64" {
        return Err(bad("expected a file with base64 content"));
    }
    let content: String = v["content"].as_str().unwrap_or_default().split_whitespace().collect();
    let bytes = STANDARD.decode(content).map_err(|_| bad("the file's content is not base64"))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("the file is not UTF-8 text"))?;
    Ok(Base { config: Some(text), sha, head_repo, retargeted })
}
