//! Integration tests: the real server over HTTP, one module per area of the API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod cli;
mod errors;
mod health;
mod helpers;
mod phones;
mod spec;
