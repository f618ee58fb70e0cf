//! hoursync: delivers every certified learning hour to the registries that
//! count it, exactly once.
//!
//! Module map, in the order data flows through the daemon:
//!
//! - [`domain`]: parsed types (`NationalId`, `Hours`, registries, accounts).
//! - [`intake`]: `hoursync import` and the JSON Lines format of INTAKE.md.
//! - [`eligibility`]: the rules of DOMAIN.md, pure.
//! - [`scan`]: turns changed learning data into delivery rows.
//! - [`dispatch`]: claims due deliveries and sends them through [`registry`].
//! - [`transition`]: what an answer, a requeue or a repair does to a delivery
//!   row: the state machine, pure ([`scan`] holds what changed facts do).
//! - [`registry`]: the wire contract, retry policy, one adapter per registry.
//! - [`registries`]: the enabled registries (client, tuning, token file),
//!   built once from the configuration and shared by everything that sends.
//! - [`store`]: the `Store` trait and its backends; all SQL lives there.
//! - [`daemon`]: `hoursync run`: schedule, dispatch loops, admin server,
//!   systemd notifications, shutdown.
//! - [`calendar`], [`sla`]: working days from the office calendar; due times
//!   and SLA states. [`sla_report`]: `hoursync sla report`.
//! - [`admin`]: the HTTP server: health, readiness, metrics, the support API,
//!   and the support console web pages (`admin::ui`, under `/ui/`).
//!   [`progress`]: whether the work loops run, which `/readyz` reports.
//!   [`db_health`]: whether the daemon's writes get through, for readiness.
//! - [`resync`]: re-judging a scope and requeueing what is not delivered.
//! - [`audit`]: the audit trail of resyncs and reconciles.
//! - [`reconcile`]: nightly lookups at the registries that repair drift.
//! - [`status`]: one learner's records, for `status` and the API.
//! - [`metrics`]: every Prometheus metric; [`monitor`]: the gauge sweep;
//!   [`live`]: the gauges set as things happen, for the console's overview.
//! - [`migrate_data`]: copies a database to another (SQLite to PostgreSQL).
//! - [`simulator`]: a registry peer speaking REGISTRY-API.md, for tests and demos.
//! - [`dataset`], [`demo`], [`bench`]: generated data, the demonstration, the figures.
//!   These and the simulator are the `dev-tools` feature (on by default; the
//!   Debian package leaves it out: production runs none of them).
//! - [`startup`]: `App` (configuration, store, registries, clock), where
//!   `run`, every command, the demo and the bench start.
//! - [`config`], [`clock`], [`telemetry`], [`cli`] (one module per command):
//!   the edges. [`redact`]: URLs without their passwords, for every message.

pub mod admin;
pub mod audit;
#[cfg(feature = "dev-tools")]
pub mod bench;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
#[cfg(feature = "dev-tools")]
pub mod dataset;
pub mod db_health;
#[cfg(feature = "dev-tools")]
pub mod demo;
pub mod dispatch;
pub mod domain;
pub mod eligibility;
pub mod intake;
pub mod live;
pub mod lookup;
pub mod metrics;
pub mod migrate_data;
pub mod monitor;
pub mod progress;
pub mod reconcile;
pub mod redact;
pub mod registries;
pub mod registry;
pub mod resync;
pub mod scan;
#[cfg(feature = "dev-tools")]
pub mod simulator;
pub mod sla;
pub mod sla_report;
pub mod startup;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod transition;
