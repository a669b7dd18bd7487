//! `rootcast audit verify`: walks the store's tamper-evident audit log (see
//! `rootcast_hub::audit`) and says whether the hash chain is intact. Exit status 0 when it
//! is, 1 when an entry does not fit (printed with why), 1 with `error: …` when the store
//! cannot be read.

use std::path::PathBuf;

use clap::Subcommand;
use rootcast_config::Config;
use rootcast_hub::store::{AuditReport, Store, StoreOptions};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain, entry by entry, and print its head hash.
    Verify {
        /// Configuration file (TOML) naming the store. Without one, embedded defaults are
        /// used.
        #[arg(long, env = "ROOTCAST_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// Runs the command; `Ok(false)` when the log is broken (the caller exits with 1).
pub async fn run(command: AuditCommand) -> anyhow::Result<bool> {
    match command {
        AuditCommand::Verify { config } => {
            let config = Config::load(config.as_deref(), std::env::vars())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let store = Store::open(&StoreOptions::from_config(&config.store)).await?;
            let report = store.verify_audit().await;
            store.close().await;
            let report = report?;
            println!("{}", describe(&report));
            Ok(report.broken.is_none())
        }
    }
}

/// The one line `verify` prints.
fn describe(report: &AuditReport) -> String {
    match &report.broken {
        None => format!(
            "audit log intact: {} entries, head {}",
            report.count, report.head
        ),
        Some(broken) => format!(
            "audit log BROKEN at entry {}: {} ({} entries)",
            broken.seq, broken.problem, report.count
        ),
    }
}
