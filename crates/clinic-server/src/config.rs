//! Server configuration: a TOML file, then environment variables on top.
//!
//! ```toml
//! database_url = "postgres://clinic@127.0.0.1/clinic"
//! listen = "127.0.0.1:8080"
//! token_secret = "at least 32 random characters"
//! access_token_minutes = 15
//! refresh_token_days = 30
//! refresh_reuse_grace_seconds = 60
//! max_body_bytes = 2097152
//! max_push_bytes = 33554432
//! ```
//! Environment: `CLINIC_SERVER_DATABASE_URL`, `CLINIC_SERVER_LISTEN`,
//! `CLINIC_SERVER_TOKEN_SECRET`, `CLINIC_SERVER_ACCESS_TOKEN_MINUTES`,
//! `CLINIC_SERVER_REFRESH_TOKEN_DAYS`, `CLINIC_SERVER_MAX_BODY_BYTES`,
//! `CLINIC_SERVER_MAX_PUSH_BYTES`.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

/// Everything `serve` needs. Every server process of one deployment must
/// share `token_secret`: tokens signed by one are checked by the others.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// PostgreSQL connection URL.
    pub database_url: String,
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Key for signing access tokens (HMAC-SHA256); at least 32 bytes.
    pub token_secret: String,
    /// Access token lifetime.
    #[serde(default = "default_access_minutes")]
    pub access_token_minutes: i64,
    /// Refresh token lifetime.
    #[serde(default = "default_refresh_days")]
    pub refresh_token_days: i64,
    /// How long a used refresh token may be presented again (a retry after
    /// a lost answer) before a reuse counts as theft and ends its family.
    #[serde(default = "default_reuse_grace")]
    pub refresh_reuse_grace_seconds: i64,
    /// Largest request body accepted.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Largest push accepted: one outbox entry of a bulk import carries a
    /// whole batch of patients, so pushes get more room than other calls.
    #[serde(default = "default_max_push")]
    pub max_push_bytes: usize,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_access_minutes() -> i64 {
    15
}
fn default_refresh_days() -> i64 {
    30
}
fn default_reuse_grace() -> i64 {
    60
}
fn default_max_body() -> usize {
    2 * 1024 * 1024
}
fn default_max_push() -> usize {
    32 * 1024 * 1024
}

impl Config {
    /// Reads `file` (if given), then applies `CLINIC_SERVER_*` variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut table = match file {
            Some(f) => {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("cannot read config file {}", f.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("{} is not valid TOML", f.display()))?
            }
            None => toml::Table::new(),
        };
        for (key, var) in [
            ("database_url", "CLINIC_SERVER_DATABASE_URL"),
            ("listen", "CLINIC_SERVER_LISTEN"),
            ("token_secret", "CLINIC_SERVER_TOKEN_SECRET"),
        ] {
            if let Ok(v) = std::env::var(var) {
                table.insert(key.into(), toml::Value::String(v));
            }
        }
        for (key, var) in [
            ("access_token_minutes", "CLINIC_SERVER_ACCESS_TOKEN_MINUTES"),
            ("refresh_token_days", "CLINIC_SERVER_REFRESH_TOKEN_DAYS"),
            (
                "refresh_reuse_grace_seconds",
                "CLINIC_SERVER_REFRESH_REUSE_GRACE_SECONDS",
            ),
            ("max_body_bytes", "CLINIC_SERVER_MAX_BODY_BYTES"),
            ("max_push_bytes", "CLINIC_SERVER_MAX_PUSH_BYTES"),
        ] {
            if let Ok(v) = std::env::var(var) {
                let n: i64 = v
                    .parse()
                    .with_context(|| format!("{var} must be a number"))?;
                table.insert(key.into(), toml::Value::Integer(n));
            }
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .context("incomplete configuration (database_url and token_secret are required)")?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.token_secret.len() < 32 {
            bail!("token_secret must be at least 32 characters");
        }
        if !(1..=60).contains(&self.access_token_minutes) {
            bail!("access_token_minutes must be between 1 and 60");
        }
        if !(1..=365).contains(&self.refresh_token_days) {
            bail!("refresh_token_days must be between 1 and 365");
        }
        if !(0..=600).contains(&self.refresh_reuse_grace_seconds) {
            bail!("refresh_reuse_grace_seconds must be between 0 and 600");
        }
        Ok(())
    }
}
