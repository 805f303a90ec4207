//! musicd: a self-hosted music download and media-processing daemon.
//!
//! The binary's subcommands live in `cli`; [`app::Application`] builds the daemon from a
//! [`config::Config`]. See `docs/ARCHITECTURE.md` for how the parts fit.

pub mod api;
pub mod app;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod client;
pub mod config;
pub mod credentials;
pub mod db;
pub mod egress;
pub mod events;
pub mod failure;
pub mod import;
pub mod jobs;
pub mod library;
pub mod limits;
pub mod links;
pub mod matching;
pub mod mediaserver;
pub mod monitor;
pub mod notify;
pub mod playlist;
pub mod providers;
pub mod queue;
pub mod scheduler;
pub mod secrets;
pub mod sink;
pub mod watch;
pub mod web;
pub mod wire;
