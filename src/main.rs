//! The `rootcast` binary: `rootcast serve` runs the hub and the web pages on one machine
//! with embedded defaults; `rootcast config check` validates a configuration file;
//! `rootcast token` issues a connection token for trying things out.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use rootcast_config::{Config, LogFormat};
use rootcast_hub::service::Services;
use rootcast_hub::store::{DemoLoad, Store, StoreOptions};
use rootcast_hub::{Node, RpcRegistry};

mod account_cmd;
mod audit_cmd;
mod recording_link;
mod relay_link;

#[derive(Parser)]
#[command(
    name = "rootcast",
    version,
    about = "Real-time event and livestream broadcasting hub"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub and the web pages.
    Serve {
        #[command(flatten)]
        source: ConfigSource,
        /// Address to listen on (overrides `http.address`), e.g. 0.0.0.0:8000.
        #[arg(long)]
        address: Option<String>,
        /// Log filter (overrides `log.level`), e.g. `debug` or `rootcast_hub=debug,info`.
        #[arg(long)]
        log_level: Option<String>,
        /// Log format (overrides `log.format`): text or json.
        #[arg(long)]
        log_format: Option<String>,
        /// Load the demo organisation (Shaanxi: 12 cities, 106 counties, …) unless it is
        /// there already. An empty store gets it anyway.
        #[arg(long)]
        demo: bool,
    },
    /// Manage people's accounts and meeting-room credentials in the store.
    Account {
        #[command(flatten)]
        source: ConfigSource,
        #[command(subcommand)]
        command: account_cmd::AccountCommand,
    },
    /// Check the store's tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: audit_cmd::AuditCommand,
    },
    /// Check or print configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Issue an HS256 connection token (or a subscription token with --channel) signed
    /// with the configured `client.token.hmac_secret_key`.
    Token {
        #[command(flatten)]
        source: ConfigSource,
        /// User ID (the `sub` claim).
        #[arg(long)]
        user: String,
        /// Lifetime in seconds (0 = no expiry).
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Issue a subscription token for this channel instead of a connection token.
        #[arg(long)]
        channel: Option<String>,
        /// Issue a relay token for this stream (`*` = any) instead: WHIP/WHEP with
        /// `relay.require_token` on. Needs --access.
        #[arg(long, conflicts_with = "channel", requires = "access")]
        stream: Option<String>,
        /// What the relay token allows: publish (WHIP) or view (WHEP).
        #[arg(long, value_parser = ["publish", "view"], requires = "stream")]
        access: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file (with ROOTCAST_* environment overrides applied).
    Check { file: PathBuf },
    /// Print the effective configuration as TOML.
    Show {
        #[command(flatten)]
        source: ConfigSource,
    },
}

#[derive(clap::Args)]
struct ConfigSource {
    /// Configuration file (TOML). Without one, embedded defaults are used.
    #[arg(long, env = "ROOTCAST_CONFIG")]
    config: Option<PathBuf>,
}

impl ConfigSource {
    fn load(&self) -> anyhow::Result<Config> {
        Config::load(self.config.as_deref(), std::env::vars()).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            source,
            address,
            log_level,
            log_format,
            demo,
        } => {
            let mut config = source.load()?;
            for (key, value) in [
                ("http.address", address),
                ("log.level", log_level),
                ("log.format", log_format),
            ] {
                if let Some(value) = value {
                    config
                        .set(key, &value)
                        .map_err(|e| anyhow::anyhow!("--{}: {e}", key.replace(['.', '_'], "-")))?;
                }
            }
            config.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
            init_logging(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(serve(config, demo))
        }
        Command::Audit { command } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            if !runtime.block_on(audit_cmd::run(command))? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Account { source, command } => {
            let config = source.load()?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(account_cmd::run(&config, command))
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => {
            let config = ConfigSource {
                config: Some(file.clone()),
            }
            .load()?;
            config
                .validate()
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!("{}: configuration is valid", file.display());
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Show { source },
        } => {
            let text = source
                .load()?
                .to_toml_string()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            print!("{text}");
            Ok(())
        }
        Command::Token {
            source,
            user,
            ttl,
            channel,
            stream,
            access,
        } => {
            let config = source.load()?;
            let secret = &config.client.token.hmac_secret_key;
            if secret.is_empty() {
                bail!("client.token.hmac_secret_key is not set: nothing to sign with");
            }
            let token = match (stream, access) {
                (Some(stream), Some(access)) => {
                    relay_link::issue_stream_token(secret, &user, ttl, &stream, &access)?
                }
                _ => issue_token(secret, &user, ttl, channel.as_deref())?,
            };
            println!("{token}");
            Ok(())
        }
    }
}

fn issue_token(
    secret: &str,
    user: &str,
    ttl: u64,
    channel: Option<&str>,
) -> anyhow::Result<String> {
    let mut claims = serde_json::json!({ "sub": user });
    if ttl > 0 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        claims["exp"] = (now.as_secs() + ttl).into();
    }
    if let Some(channel) = channel {
        claims["channel"] = channel.into();
    }
    Ok(rootcast_hub::token::issue_hs256(secret, &claims)?)
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .with_context(|| format!("log.level {:?}", config.log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

/// A random secret for a process started without one.
fn random_secret() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Opens the store (applying migrations) and loads the demo organisation when asked to or
/// when the store is empty.
async fn open_store(config: &Config, demo: bool) -> anyhow::Result<Store> {
    let store = Store::open(&StoreOptions::from_config(&config.store)).await?;
    let units = store.unit_count().await?;
    if demo || units == 0 {
        match store.load_demo().await? {
            DemoLoad::Loaded(count) if demo => {
                tracing::info!(units = count, "loaded the demo organisation (--demo)");
            }
            DemoLoad::Loaded(count) => tracing::info!(
                units = count,
                "the store was empty: loaded the demo organisation"
            ),
            DemoLoad::AlreadyPresent => tracing::info!("the demo organisation is loaded already"),
            DemoLoad::OtherOrganisation(count) => tracing::warn!(
                units = count,
                "--demo: the store holds another organisation; the demo was not loaded"
            ),
        }
    }
    Ok(store)
}

async fn serve(mut config: Config, demo: bool) -> anyhow::Result<()> {
    let mut generated = Vec::new();
    // Logins sign their tokens with the HMAC key, so there is always one (a deployment
    // that verifies its back end's tokens with an RSA or ECDSA key gets one for the run).
    if config.client.token.hmac_secret_key.is_empty() {
        config.client.token.hmac_secret_key = random_secret();
        generated.push(format!(
            "client.token.hmac_secret_key = {:?}",
            config.client.token.hmac_secret_key
        ));
    }
    if config.http_api.key.is_empty() && !config.http_api.insecure {
        config.http_api.key = random_secret();
        generated.push(format!("http_api.key = {:?}", config.http_api.key));
    }
    let address: std::net::SocketAddr = config
        .http
        .address
        .parse()
        .with_context(|| format!("http.address {:?}", config.http.address))?;
    let listener =
        rootcast_hub::server::bind(address).with_context(|| format!("listening on {address}"))?;
    let address = listener.local_addr()?;
    let store = open_store(&config, demo).await?;
    let services = Arc::new(
        Services::new(store.clone(), &config.client.token.hmac_secret_key)
            .map_err(anyhow::Error::msg)?,
    );
    let admin_password = account_cmd::bootstrap_admin(&store).await?;
    let mut rpc = RpcRegistry::default();
    rootcast_hub::service::rpc::register(&services, &mut rpc);
    let node = Node::new(config.clone(), rpc)?;
    // Meeting attendance logs joins and leaves from the hub's presence.
    services.log_attendance(&node);
    // Meetings list and serve their recordings from the relay's folder.
    services.set_recording_library(Arc::new(recording_link::RelayRecordings::new(
        config.relay.recording_folder(),
    )));
    // Recordings past `relay.recording_retention_days` are deleted every hour.
    let retention = match (
        config.relay.recording_folder(),
        config.relay.recording_retention_days,
    ) {
        (Some(dir), days) if days > 0 => {
            Some(tokio::spawn(recording_link::enforce_retention(dir, days)))
        }
        _ => None,
    };
    // Disabled accounts and revoked screens lose their open WebSockets within seconds.
    let revocations = tokio::spawn(
        services
            .clone()
            .enforce_revocations(node.clone(), rootcast_hub::service::REVOCATION_SWEEP),
    );
    let directive_jobs = tokio::spawn(
        services
            .clone()
            .run_jobs(node.clone(), config.directives.clone()),
    );
    let relay_hooks = relay_link::hooks(&config, node.clone())?;
    let relay = rootcast_relay::start_with(config.relay.clone(), relay_hooks)
        .await
        .with_context(|| format!("starting the relay on UDP {}", config.relay.udp_bind))?;
    let app = rootcast_hub::server::router(node.clone())
        .merge(rootcast_hub::service::http::router(
            node.clone(),
            services.clone(),
        ))
        .merge(rootcast_web::router())
        .merge(rootcast_relay::router(relay.clone()));

    println!("rootcast listening on http://{address}");
    println!("  web page    http://{address}/");
    println!("  directives  http://{address}/console (moderators), http://{address}/inbox (units)");
    println!("  websocket   ws://{address}/connection/websocket");
    println!("  server API  http://{address}/api/<method>");
    println!("  metrics     http://{address}/metrics");
    println!(
        "  WHIP/WHEP   http://{address}/whip/<stream>, http://{address}/whep/<stream> (media on UDP {})",
        relay.udp_addr()
    );
    if let Some(tcp) = relay.tcp_addr() {
        println!("  ICE-TCP     {tcp} (relay media over TCP)");
    }
    println!(
        "  store       {} ({} units)",
        store.url(),
        store.unit_count().await?
    );
    if let Some(password) = admin_password {
        println!(
            "created the first administrator: username \"{}\", password \"{password}\" \
             (change it with `rootcast account password {}`)",
            account_cmd::FIRST_ADMIN,
            account_cmd::FIRST_ADMIN
        );
    }
    if !generated.is_empty() {
        println!("generated for this run (set them in the configuration to keep them):");
        for line in &generated {
            println!("  {line}");
        }
        if let Ok(token) = issue_token(
            &config.client.token.hmac_secret_key,
            "demo",
            24 * 3600,
            None,
        ) {
            println!("  a connection token for user \"demo\", valid 24 h: {token}");
        }
    }
    tracing::info!(%address, node = node.name(), "serving");
    rootcast_hub::server::serve(listener, app, Arc::clone(&node), shutdown_signal()).await?;
    directive_jobs.abort();
    revocations.abort();
    if let Some(retention) = retention {
        retention.abort();
    }
    relay.shutdown().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
