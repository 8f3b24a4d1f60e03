//! Server configuration: a TOML file, then environment variables on top.
//!
//! ```toml
//! database_url = "postgres://clinic@127.0.0.1/clinic"
//! listen = "127.0.0.1:8080"
//! token_secret = "at least 32 random characters"
//! previous_token_secrets = []
//! access_token_minutes = 15
//! refresh_token_days = 30
//! refresh_reuse_grace_seconds = 60
//! max_body_bytes = 2097152
//! max_push_bytes = 33554432
//! max_requests_per_user = 4
//! sign_ins_per_account_per_minute = 10
//! sign_ins_per_address_per_minute = 30
//! trusted_proxies = ["127.0.0.1", "::1"]
//! request_timeout_seconds = 60
//! live_recheck_seconds = 15
//! ```
//! Environment: `CLINIC_SERVER_DATABASE_URL`, `CLINIC_SERVER_LISTEN`,
//! `CLINIC_SERVER_TOKEN_SECRET`, `CLINIC_SERVER_PREVIOUS_TOKEN_SECRETS`
//! (comma-separated), `CLINIC_SERVER_ACCESS_TOKEN_MINUTES`,
//! `CLINIC_SERVER_REFRESH_TOKEN_DAYS`, `CLINIC_SERVER_MAX_BODY_BYTES`,
//! `CLINIC_SERVER_MAX_PUSH_BYTES`.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

/// Everything `serve` needs. Every server process of one deployment must
/// share `token_secret` and `previous_token_secrets`: tokens signed by one
/// are checked by the others.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// PostgreSQL connection URL.
    pub database_url: String,
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Key for signing access tokens (JWT, HS256); at least 32 characters.
    /// Its key id (`kid`) is the first 8 hex digits of its SHA-256.
    pub token_secret: String,
    /// Former `token_secret`s whose access tokens are still accepted (not
    /// used to sign), so the secret can change without signing everyone
    /// out: remove one once `access_token_minutes` have passed since it
    /// stopped being the current secret. Each at least 32 characters.
    #[serde(default)]
    pub previous_token_secrets: Vec<String>,
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
    /// How many requests one user may have in progress at once in this
    /// process; more get `429` at once, so one user (or one flooding
    /// workstation) never holds the connections everyone else needs.
    #[serde(default = "default_per_user")]
    pub max_requests_per_user: usize,
    /// Sign-in attempts per account per minute (then `429`); the lockout
    /// after five wrong passwords applies as well.
    #[serde(default = "default_sign_ins_per_account")]
    pub sign_ins_per_account_per_minute: u32,
    /// Sign-in attempts per client address per minute (then `429`).
    #[serde(default = "default_sign_ins_per_address")]
    pub sign_ins_per_address_per_minute: u32,
    /// Proxies whose `X-Real-IP` header names the client (nginx in front
    /// of the server); from any other peer the header is ignored.
    #[serde(default = "default_trusted_proxies")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How long a client may take to send a request's headers, and then
    /// its body; a connection left half-sent is closed after it.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
    /// How often an open live channel (`/v1/sync/events`) checks that its
    /// user may still use it: it ends within this long of the user being
    /// disabled or their password changing, and at the token's expiry.
    #[serde(default = "default_live_recheck")]
    pub live_recheck_seconds: u64,
}

fn default_live_recheck() -> u64 {
    15
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
fn default_per_user() -> usize {
    4
}
fn default_sign_ins_per_account() -> u32 {
    10
}
fn default_sign_ins_per_address() -> u32 {
    30
}
fn default_trusted_proxies() -> Vec<std::net::IpAddr> {
    vec![
        std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::Ipv6Addr::LOCALHOST.into(),
    ]
}
fn default_request_timeout() -> u64 {
    60
}

impl Config {
    /// A configuration with every optional key at its default.
    pub fn with_defaults(database_url: &str, token_secret: &str) -> Config {
        Config {
            database_url: database_url.into(),
            listen: default_listen(),
            token_secret: token_secret.into(),
            previous_token_secrets: Vec::new(),
            access_token_minutes: default_access_minutes(),
            refresh_token_days: default_refresh_days(),
            refresh_reuse_grace_seconds: default_reuse_grace(),
            max_body_bytes: default_max_body(),
            max_push_bytes: default_max_push(),
            max_requests_per_user: default_per_user(),
            sign_ins_per_account_per_minute: default_sign_ins_per_account(),
            sign_ins_per_address_per_minute: default_sign_ins_per_address(),
            trusted_proxies: default_trusted_proxies(),
            request_timeout_seconds: default_request_timeout(),
            live_recheck_seconds: default_live_recheck(),
        }
    }
}

/// A list of secrets from an environment variable: comma-separated (a
/// secret made with base64 has no comma); empty means none.
fn secret_list(v: &str) -> toml::Value {
    toml::Value::Array(
        v.split(',')
            .filter(|s| !s.is_empty())
            .map(|s| toml::Value::String(s.into()))
            .collect(),
    )
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
        if let Ok(v) = std::env::var("CLINIC_SERVER_PREVIOUS_TOKEN_SECRETS") {
            table.insert("previous_token_secrets".into(), secret_list(&v));
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
            (
                "max_requests_per_user",
                "CLINIC_SERVER_MAX_REQUESTS_PER_USER",
            ),
            (
                "sign_ins_per_account_per_minute",
                "CLINIC_SERVER_SIGN_INS_PER_ACCOUNT_PER_MINUTE",
            ),
            (
                "sign_ins_per_address_per_minute",
                "CLINIC_SERVER_SIGN_INS_PER_ADDRESS_PER_MINUTE",
            ),
            (
                "request_timeout_seconds",
                "CLINIC_SERVER_REQUEST_TIMEOUT_SECONDS",
            ),
            ("live_recheck_seconds", "CLINIC_SERVER_LIVE_RECHECK_SECONDS"),
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
        for (i, secret) in self.previous_token_secrets.iter().enumerate() {
            let n = i + 1;
            if secret.len() < 32 {
                bail!("previous_token_secrets: secret {n} must be at least 32 characters");
            }
            if *secret == self.token_secret {
                bail!(
                    "previous_token_secrets: secret {n} is token_secret itself; list only former secrets"
                );
            }
            if self.previous_token_secrets[..i].contains(secret) {
                bail!("previous_token_secrets: secret {n} is listed twice");
            }
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
        if !(1..=1000).contains(&self.max_requests_per_user) {
            bail!("max_requests_per_user must be between 1 and 1000");
        }
        if self.sign_ins_per_account_per_minute == 0 || self.sign_ins_per_address_per_minute == 0 {
            bail!("sign-ins per minute must be at least 1");
        }
        if !(1..=3600).contains(&self.request_timeout_seconds) {
            bail!("request_timeout_seconds must be between 1 and 3600");
        }
        if !(1..=300).contains(&self.live_recheck_seconds) {
            bail!("live_recheck_seconds must be between 1 and 300");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    fn with_previous(previous: &[&str]) -> anyhow::Result<()> {
        let mut c = Config::with_defaults("postgres://x/y", A);
        c.previous_token_secrets = previous.iter().map(|s| s.to_string()).collect();
        c.check()
    }

    #[test]
    fn previous_token_secrets_are_checked() {
        assert!(with_previous(&[]).is_ok());
        assert!(with_previous(&[B]).is_ok());
        let err = |p: &[&str]| with_previous(p).unwrap_err().to_string();
        assert_eq!(
            err(&[B, "short"]),
            "previous_token_secrets: secret 2 must be at least 32 characters"
        );
        assert!(err(&[A]).contains("is token_secret itself"));
        assert!(err(&[B, B]).contains("secret 2 is listed twice"));
    }

    #[test]
    fn previous_token_secrets_come_from_the_file() {
        let text = format!(
            "database_url = \"postgres://x/y\"\ntoken_secret = \"{A}\"\n\
             previous_token_secrets = [\"{B}\"]\n"
        );
        let c: Config = toml::from_str(&text).unwrap();
        assert_eq!(c.previous_token_secrets, vec![B.to_owned()]);
        let c: Config =
            toml::from_str(&format!("database_url = \"x\"\ntoken_secret = \"{A}\"\n")).unwrap();
        assert!(c.previous_token_secrets.is_empty());
    }

    #[test]
    fn previous_token_secrets_come_from_the_environment_comma_separated() {
        let list = |v: &str| -> Vec<String> { secret_list(v).try_into().unwrap() };
        assert_eq!(list(""), Vec::<String>::new());
        assert_eq!(list(A), vec![A.to_owned()]);
        assert_eq!(list(&format!("{A},{B}")), vec![A.to_owned(), B.to_owned()]);
        assert_eq!(list(&format!(",{A},,")), vec![A.to_owned()]);
    }
}
