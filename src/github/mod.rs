//! GitHub: the only module that imports octocrab. `context` reads where a run stands (event
//! payload, repository, pull request); `client` makes the REST calls with retries; `gate` is
//! the approval gate as a pull-request comment answered with labels (`comment` renders it).

pub mod base;
pub mod carry;
pub mod client;
pub mod comment;
pub mod context;
pub mod gate;
pub mod outputs;
