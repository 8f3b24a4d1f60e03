//! The workstation itself: identity, settings and first-start state.

use serde::{Deserialize, Serialize};
use ts_rs::TS;
use uuid::Uuid;

/// What the status bar and the settings screen show about this workstation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct WorkstationInfo {
    /// Made once, on the first start.
    pub id: Uuid,
    /// A name an admin can set, e.g. "Reception 1".
    pub name: String,
    /// The prefix of the MRNs this workstation hands out.
    pub mrn_prefix: String,
    /// Whether the first admin account still has to be created.
    pub needs_setup: bool,
    /// Whether the database holds no patients yet (demo data may be offered).
    pub is_empty: bool,
    /// Idle minutes before the workstation locks itself.
    pub idle_lock_minutes: u32,
    /// `offline` until the central server exists.
    pub connection: ConnectionState,
}

/// The connection to the central server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ConnectionState {
    /// No server reachable, or none configured; everything works locally.
    Offline,
    /// Connected and syncing.
    Online,
}
