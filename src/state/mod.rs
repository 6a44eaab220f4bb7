//! The run state (`model`) and how it is kept on disk (`store`).

mod model;
mod store;

pub(crate) use model::*;
pub(crate) use store::{
    StateError, StateLock, StateStore, lock, new_temp, read, read_run_id, replace_file, replace_with, write_atomic,
};
