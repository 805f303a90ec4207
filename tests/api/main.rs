//! Integration tests: the daemon against real SQLite files, the machine's Redis and
//! PostgreSQL servers, and the real `musicd` binary as a child process.

mod accounts;
mod auth;
mod browser;
mod catalog_watches;
mod catalogs;
mod cli;
mod credentials;
// Shared with the benches, which use parts the tests do not.
#[allow(dead_code)]
#[path = "../support/daemon.rs"]
mod daemon;
mod db;
mod downloads;
mod edge;
mod edge_limits;
mod egress;
mod events;
mod helpers;
mod hooks;
mod jamendo;
mod jobs;
mod kit;
mod library;
mod library_safety;
mod links;
mod matching;
mod proxy;
mod queue;
mod receiver;
mod sources;
mod spotify;
mod upstream;
mod watches;
mod web;
mod web_flows;
mod ytdlp;
