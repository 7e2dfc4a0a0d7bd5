//! Where a client connects: `HOST:PORT` or `unix:PATH`.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;
use msgwire_rpc::{Client, Dialect};

/// A server address as given on the command line.
#[derive(Debug, Clone)]
pub enum Target {
    /// `HOST:PORT` over TCP.
    Tcp(String),
    /// `unix:PATH`, a Unix socket.
    Unix(PathBuf),
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, e.g. unix:/tmp/msgwire.sock".into());
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if !s.contains(':') {
            return Err(format!("{s:?} is not HOST:PORT or unix:PATH"));
        }
        Ok(Target::Tcp(s.to_owned()))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(addr) => f.write_str(addr),
            Target::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl Target {
    /// Opens one connection speaking `dialect`.
    pub async fn connect(&self, dialect: Dialect) -> anyhow::Result<Client> {
        let client = match self {
            Target::Tcp(addr) => Client::connect_tcp(addr.as_str(), dialect).await,
            Target::Unix(path) => Client::connect_unix(path, dialect).await,
        };
        client.with_context(|| format!("cannot connect to {self}"))
    }
}
