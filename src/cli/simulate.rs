//! `hoursync simulate`: the registry simulator (REGISTRY-API.md) as a server.

use super::cancel_on_signal;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:8700")]
    pub listen: std::net::SocketAddr,
    /// File holding the bearer token the simulated registries accept.
    #[arg(long, default_value = "config/tokens/lifelong.token")]
    pub token_file: PathBuf,
    /// Requests per second each registry allows (0: unlimited).
    #[arg(long, default_value_t = 20)]
    pub rate: u32,
    #[arg(long, default_value_t = 40)]
    pub burst: u32,
    #[arg(long, default_value_t = 500)]
    pub max_batch: usize,
    /// Share of batches answered 503 without committing.
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Share of batches committed, then answered by a dropped connection.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Delay added to every answer.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let token = crate::config::read_secret(&args.token_file)?;
    let config = crate::simulator::SimConfig {
        token,
        max_batch: args.max_batch,
        rate_per_second: args.rate,
        burst: args.burst,
        faults: crate::simulator::Faults {
            error_rate: args.error_rate,
            drop_rate: args.drop_rate,
            latency_ms: args.latency_ms,
            reject_courses: Vec::new(),
            ..Default::default()
        },
    };
    crate::simulator::run(args.listen, config, cancel_on_signal()).await
}
