//! Integration tests: the real server over HTTP, one module per area of the API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth;
mod cli;
mod dashboard;
mod durability;
mod emulator;
mod emulator_messages;
mod errors;
mod faults;
mod fixtures;
mod health;
mod helpers;
mod layers;
mod media;
mod messages;
mod metrics;
mod offline;
mod phones;
mod process;
mod scopes;
mod security;
mod spec;
mod webhooks;
mod whatsapp;
