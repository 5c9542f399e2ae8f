//! Integration tests: the real app on port 0, with SQLite by default or PostgreSQL when
//! `TEST_DATABASE_URL` points at a server (a fresh database per test).

mod api_keys;
mod auth;
mod authorization;
mod billing;
mod config;
mod console;
mod durability;
mod edges;
mod handshake;
mod helpers;
mod instances;
mod module_graph;
mod operations;
mod pages;
mod preflight;
mod security;
mod session;
mod usage;
mod webhooks;
