//! GitHub: the only module that imports octocrab. `context` reads where a run stands (event
//! payload, repository, pull request); `client` makes the REST calls with retries.

pub mod client;
pub mod context;
