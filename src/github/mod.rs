//! GitHub: the only module that imports octocrab. `context` reads where a run stands (event
//! payload, repository, pull request); `client` makes the REST calls with retries; `gate` is
//! the approval gate as a pull-request comment answered with labels (`comment` renders it).

pub mod base;
pub mod cache;
pub mod carry;
pub mod client;
pub mod comment;
pub mod context;
pub mod gate;
pub mod outputs;
pub mod timeline;

impl From<client::GithubError> for crate::gate::GateError {
    fn from(e: client::GithubError) -> Self {
        crate::gate::GateError::Backend { backend: "GitHub", source: Box::new(e) }
    }
}
