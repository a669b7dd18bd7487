//! The relay's settings live in the configuration crate (`[relay]` in the TOML file,
//! `ROOTCAST_RELAY_…` in the environment), with every other setting of the process.

pub use rootcast_config::{IceServer, RelayConfig};
