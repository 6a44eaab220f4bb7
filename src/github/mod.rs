//! GitHub: the only module that imports octocrab. `context` reads where a run stands (event
//! payload, repository, pull request); `client` makes the REST calls with retries; `gate` is
//! the approval gate as a pull-request comment answered with labels (`comment` renders it).

pub(crate) mod base;
pub(crate) mod cache;
pub(crate) mod carry;
pub(crate) mod client;
pub(crate) mod comment;
pub(crate) mod context;
pub(crate) mod gate;
pub(crate) mod outputs;
pub(crate) mod timeline;

impl From<client::GithubError> for crate::gate::GateError {
    fn from(e: client::GithubError) -> Self {
        crate::gate::GateError::Backend { backend: "GitHub", source: Box::new(e) }
    }
}
