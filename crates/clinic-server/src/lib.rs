//! The central server: REST API v1, sign-in and tokens, and the sync hub
//! (push, pull, live channel) over PostgreSQL.
//!
//! The server keeps no state between requests beyond the database, so any
//! number of `clinic-server` processes can serve one PostgreSQL; the live
//! channel crosses processes through `LISTEN`/`NOTIFY`.
#![deny(missing_docs)]

mod api;
mod apply;
pub mod audit;
mod auth;
pub mod config;
mod conflicts;
mod error;
pub mod feed;
mod limits;
mod listen;
mod openapi;
mod records;
pub mod state;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::broadcast;

pub use api::router;
pub use config::Config;
pub use error::{ApiError, ApiResult};
pub use state::AppState;

/// The server's migrations, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Connects to PostgreSQL.
pub async fn connect(database_url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(5))
        .connect(database_url)
        .await
        .context("cannot connect to PostgreSQL (check database_url)")
}

/// Applies the pending migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("migration failed")
}

/// Builds the state and starts the NOTIFY listener for the live channel.
pub async fn state(pool: PgPool, config: Config) -> anyhow::Result<AppState> {
    let (ticks, _) = broadcast::channel(1024);
    let state = AppState {
        keys: auth::TokenKeys::from_config(&config)?,
        limits: Arc::new(limits::Limits::new(&config)),
        pool: pool.clone(),
        config: Arc::new(config),
        ticks: ticks.clone(),
    };
    tokio::spawn(listen(pool, ticks));
    Ok(state)
}

/// Forwards `clinic_feed` notifications to the live channel; reconnects
/// after a lost connection.
async fn listen(pool: PgPool, ticks: broadcast::Sender<state::FeedTick>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if listener.listen(feed::CHANNEL).await.is_err() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        while let Ok(n) = listener.recv().await {
            if let Some((clinic, seq)) = n.payload().split_once(':')
                && let (Ok(clinic), Ok(seq)) = (clinic.parse(), seq.parse())
            {
                let _ = ticks.send((clinic, seq));
            }
        }
        tracing::warn!("live channel lost its database connection; reconnecting");
    }
}

pub use listen::serve;
