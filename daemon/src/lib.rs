//! sited: the daemon that builds, serves and watches static sites, and the library the
//! `sited` binary is a thin shell around.

#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod activation;
pub mod allocator;
pub mod clock;
pub mod daemon;
pub mod generator;
pub mod hooks;
pub mod launcher;
pub mod logs;
pub mod notify;
pub mod ports;
pub mod registry;
pub mod rpc;
pub mod serve;
pub mod site;
pub mod state_file;
pub mod watch;
