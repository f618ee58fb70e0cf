//! Talking to the registries: the HTTP client of REGISTRY-API.md, its
//! errors (typed by whether a retry can help), the retry policy and one
//! adapter per registry.

pub mod adapter;
pub mod answer;
mod client;
pub mod retry;

pub use client::{
    CorrectAnswer, Credited, RecordResult, RecordStatus, RegistryClient, SendError, WithdrawAnswer,
};
