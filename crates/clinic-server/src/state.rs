//! Shared state of one server process. Nothing here outlives a request but
//! the pool and the live-channel fan-out: the server is stateless, and any
//! number of processes can serve one database.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::auth::TokenKeys;
use crate::config::Config;

/// A committed change-feed position: (clinic, last sequence number).
pub type FeedTick = (Uuid, i64);

/// Handed to every handler.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
    /// The configuration this process started with.
    pub config: Arc<Config>,
    /// Access-token keys.
    pub keys: TokenKeys,
    /// Change-feed ticks from PostgreSQL NOTIFY, for the live channel.
    pub ticks: broadcast::Sender<FeedTick>,
    /// Fair shares and sign-in throttles of this process.
    pub limits: Arc<crate::limits::Limits>,
}
