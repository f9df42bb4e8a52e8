//! wagate: a self-hosted multi-phone WhatsApp HTTP API gateway.

pub mod actors;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod engine;
pub mod events;
pub mod gateway;
pub mod media;
pub mod metrics;
pub mod monitor;
pub mod net;
pub mod private;
pub mod ticker;
pub mod web;
