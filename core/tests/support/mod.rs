//! Shared test-support code.
#![allow(dead_code)]

pub mod cluster;
pub mod linearizability;
