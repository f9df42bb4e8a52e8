//! Integration tests: the real server over HTTP, one module per area of the API.

mod auth;
mod cli;
mod errors;
mod health;
mod helpers;
mod spec;
