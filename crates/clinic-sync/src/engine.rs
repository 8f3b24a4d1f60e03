//! The background sync engine: push, then pull, again and again.
//!
//! - A cycle runs after a local write ([`SyncEngine::nudge`]), when the live
//!   channel says the clinic's feed grew, and on a timer; after a failure it
//!   backs off exponentially with full jitter, so a server coming back is not
//!   hit by every workstation at once.
//! - Pushes go in outbox order, each run of consecutive entries with its
//!   author's token: the server checks that the author pushed it. An entry
//!   whose author has no token (never signed in online here, or refused)
//!   stalls the queue, and the status says who must sign in.
//! - Nothing is marked synced until the server answered for its mutation id;
//!   a push whose answer was lost is settled by the next push (the server
//!   returns the stored outcome) or by the pull that carries its mutation id.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use clinic_domain::sync::{
    EnrollRequest, MAX_PUSH_BATCH, MAX_PUSH_BYTES, PushMutation, PushRequest, ServerUser,
    SignInRequest, SyncStatus,
};

use clinic_domain::workstation::ConnectionState;
use clinic_store::sync::SyncSettings;
use clinic_store::{Actor, Mutation, Store, StoreError};

use crate::error::SyncError;
use rand::Rng;
use tokio::sync::{Mutex, Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::client::{Client, ClientError};
use crate::tokens::{SecretStore, Vault};

/// How often a healthy engine pulls even without a live-channel tick.
const IDLE_PULL: Duration = Duration::from_secs(30);
/// Backoff bounds after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Page size of pulls (public for the benchmark, which fetches as the engine does).
pub const PULL_PAGE: i64 = 5000;

struct Inner {
    store: Store,
    vault: Vault,
    status: watch::Sender<SyncStatus>,
    wake: Notify,
    /// One cycle at a time, whether from the loop or [`SyncEngine::sync_now`].
    cycle: Mutex<()>,
    /// The newest feed number the live channel announced.
    latest_seen: AtomicI64,
    online: AtomicBool,
    /// How long one call to the server may take.
    request_timeout: std::sync::Mutex<Duration>,
}

impl Inner {
    /// A client of the server at `base`, with this engine's timeout.
    fn client(&self, base: &str) -> Client {
        Client::with_timeout(base, *self.request_timeout.lock().expect("not poisoned"))
    }
}

/// The running engine. Dropping it stops its tasks.
pub struct SyncEngine {
    inner: Arc<Inner>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for SyncEngine {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl SyncEngine {
    /// Starts the engine over `store`, with refresh tokens kept in `secrets`:
    /// a background loop and a live-channel listener.
    pub fn start(store: Store, secrets: Box<dyn SecretStore>) -> SyncEngine {
        let mut engine = SyncEngine::manual(store, secrets);
        let inner = engine.inner.clone();
        engine.tasks = vec![
            tokio::spawn(run_loop(inner.clone())),
            tokio::spawn(run_live(inner.clone())),
            tokio::spawn(follow_outbox(inner)),
        ];
        engine
    }

    /// An engine without background tasks: it syncs only when
    /// [`SyncEngine::sync_now`] is called. For tests and tools that must
    /// decide exactly when a workstation talks to the server.
    pub fn manual(store: Store, secrets: Box<dyn SecretStore>) -> SyncEngine {
        let persistent = secrets.persistent();
        let (status, _) = watch::channel(SyncStatus {
            configured: false,
            server_url: None,
            connection: ConnectionState::Offline,
            pending: 0,
            rejected: 0,
            conflicts: 0,
            last_sync_at: None,
            progress: None,
            problem: None,
            tokens_session_only: !persistent,
        });
        let inner = Arc::new(Inner {
            store,
            vault: Vault::new(secrets),
            status,
            wake: Notify::new(),
            cycle: Mutex::new(()),
            latest_seen: AtomicI64::new(0),
            online: AtomicBool::new(false),
            request_timeout: std::sync::Mutex::new(crate::client::REQUEST_TIMEOUT),
        });
        SyncEngine {
            inner,
            tasks: Vec::new(),
        }
    }

    /// Sets how long one call to the server may take before it counts as
    /// failed (default [`crate::client::REQUEST_TIMEOUT`]). Tests that delay
    /// the network shorten it.
    pub fn set_request_timeout(&self, timeout: Duration) {
        *self.inner.request_timeout.lock().expect("not poisoned") = timeout;
    }

    /// Asks for a cycle soon. Local writes need no nudge: the engine hears
    /// of each new outbox entry from the store.
    pub fn nudge(&self) {
        self.inner.wake.notify_one();
    }

    /// The status, updated after every cycle.
    pub fn status(&self) -> watch::Receiver<SyncStatus> {
        self.inner.status.subscribe()
    }

    /// Runs one push-and-pull cycle now and waits for it.
    pub async fn sync_now(&self) -> Result<(), SyncError> {
        cycle(&self.inner).await
    }

    /// Pushes the outbox now, without pulling (for benchmarks and tools).
    pub async fn push_now(&self) -> Result<(), SyncError> {
        let _one = self.inner.cycle.lock().await;
        let settings = enrolled_settings(&self.inner.store)
            .await?
            .ok_or(SyncError::NotEnrolled)?;
        push_all(&self.inner, &self.inner.client(&settings.server_url)).await
    }

    /// Pulls the clinic's feed now, without pushing first (for tests and
    /// tools; a cycle pulls after its push).
    pub async fn pull_now(&self) -> Result<(), SyncError> {
        let _one = self.inner.cycle.lock().await;
        let settings = enrolled_settings(&self.inner.store)
            .await?
            .ok_or(SyncError::NotEnrolled)?;
        pull_all(&self.inner, &self.inner.client(&settings.server_url))
            .await
            .map(|_| ())
    }

    /// An admin enrols this workstation with a server: checks the address,
    /// signs the admin in there, registers the workstation (which may get a
    /// new MRN prefix) and starts syncing. Pending local changes are handed
    /// to the admin to push.
    pub async fn enroll(
        &self,
        actor: &Actor,
        server_url: &str,
        clinic_code: &str,
        username: &str,
        password: &str,
    ) -> Result<(), SyncError> {
        let store = &self.inner.store;
        store
            .commit(
                actor,
                Mutation::SyncConfigure {
                    server_url: server_url.to_owned(),
                    clinic_code: clinic_code.to_owned(),
                },
            )
            .await?;
        let settings = store.sync_settings().await?.ok_or(SyncError::NotEnrolled)?;
        let client = self.inner.client(&settings.server_url);
        let tokens = client
            .sign_in(&SignInRequest {
                clinic: settings.clinic_code.clone(),
                username: username.to_owned(),
                password: password.to_owned(),
            })
            .await?;
        let info = store.workstation_info().await?;
        let enrolled = client
            .enroll(
                &tokens.access_token,
                &EnrollRequest {
                    workstation_id: info.id,
                    name: info.name.clone(),
                    mrn_prefix: info.mrn_prefix.clone(),
                },
            )
            .await?;
        let hash = verifier(password).await?;
        self.inner.vault.keep(&tokens);
        store
            .commit(
                &Actor::system("sync"),
                Mutation::SyncEnrolled {
                    clinic_id: enrolled.clinic_id,
                    mrn_prefix: enrolled.mrn_prefix,
                    admin: tokens.user,
                    admin_password_hash: hash,
                },
            )
            .await?;
        self.nudge();
        Ok(())
    }

    /// Signs a user in on the server, so their changes can be pushed and
    /// they can sign in here later while offline. `Ok(None)` when this
    /// workstation is not enrolled (local accounts only).
    pub async fn sign_in_online(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<ServerUser>, SyncError> {
        let Some(settings) = enrolled_settings(&self.inner.store).await? else {
            return Ok(None);
        };
        let client = self.inner.client(&settings.server_url);
        let tokens = client
            .sign_in(&SignInRequest {
                clinic: settings.clinic_code,
                username: username.to_owned(),
                password: password.to_owned(),
            })
            .await?;
        let hash = verifier(password).await?;
        self.inner.vault.keep(&tokens);
        self.inner
            .store
            .commit(
                &Actor::system("sync"),
                Mutation::SyncServerUser {
                    user: tokens.user.clone(),
                    password_hash: Some(hash),
                },
            )
            .await?;
        self.nudge();
        Ok(Some(tokens.user))
    }
}

/// A local Argon2id verifier of a password the server just accepted.
async fn verifier(password: &str) -> Result<String, SyncError> {
    let pw = password.to_owned();
    tokio::task::spawn_blocking(move || clinic_store::users::hash_password(&pw))
        .await
        .map_err(|e| SyncError::Store(StoreError::Internal(e.to_string())))?
        .map_err(SyncError::Store)
}

async fn enrolled_settings(store: &Store) -> Result<Option<SyncSettings>, SyncError> {
    Ok(store
        .sync_settings()
        .await?
        .filter(|s| s.clinic_id.is_some()))
}

async fn run_loop(inner: Arc<Inner>) {
    let mut failures = 0u32;
    loop {
        let wait = match cycle(&inner).await {
            Ok(()) => {
                failures = 0;
                IDLE_PULL
            }
            Err(SyncError::NotEnrolled) => IDLE_PULL,
            Err(e) => {
                failures = failures.saturating_add(1);
                if !matches!(e, SyncError::Client(ClientError::Unreachable(_))) {
                    tracing::warn!(problem = %e.problem().code, "sync stalled");
                }
                backoff(failures)
            }
        };
        // A nudge or a live tick ends the wait early.
        let _ = tokio::time::timeout(wait, inner.wake.notified()).await;
    }
}

/// Exponential backoff with full jitter.
fn backoff(failures: u32) -> Duration {
    let cap = BACKOFF_MIN
        .saturating_mul(1u32 << failures.min(16))
        .min(BACKOFF_MAX);
    let ms = rand::thread_rng().gen_range(BACKOFF_MIN.as_millis() as u64..=cap.as_millis() as u64);
    Duration::from_millis(ms)
}

/// Listens to the live channel and wakes the loop when the feed grew.
async fn run_live(inner: Arc<Inner>) {
    let mut failures = 0u32;
    loop {
        let listened = async {
            let settings = enrolled_settings(&inner.store)
                .await?
                .ok_or(SyncError::NotEnrolled)?;
            let client = inner.client(&settings.server_url);
            let token = any_token(&inner, &client).await?;
            let mut events = client.events(&token).await?;
            while let Some(seq) = events.next_seq().await {
                inner.latest_seen.fetch_max(seq, Ordering::Relaxed);
                let cursor = inner.store.sync_settings().await?.map_or(0, |s| s.cursor);
                if seq < 0 || seq > cursor {
                    inner.wake.notify_one();
                }
            }
            Ok::<(), SyncError>(())
        }
        .await;
        failures = match listened {
            Ok(()) => 0,
            // Nothing to listen with yet (not enrolled, nobody signed in
            // online): look again soon instead of backing off toward a
            // minute, so the channel opens right after enrolment or sign-in.
            Err(SyncError::NotEnrolled | SyncError::SignInNeeded(_)) => 0,
            Err(_) => failures.saturating_add(1),
        };
        tokio::time::sleep(backoff(failures.max(1))).await;
    }
}

async fn cycle(inner: &Inner) -> Result<(), SyncError> {
    let _one = inner.cycle.lock().await;
    let result = async {
        let settings = enrolled_settings(&inner.store)
            .await?
            .ok_or(SyncError::NotEnrolled)?;
        let client = inner.client(&settings.server_url);
        // A queue stalled on one user's sign-in must not stop this
        // workstation from receiving everyone else's changes.
        let mut pushed = push_all(inner, &client).await;
        if let Err(e @ SyncError::Client(ClientError::Unreachable(_))) = pushed {
            return Err(e);
        }
        if pull_all(inner, &client).await? == Pulled::NewEpoch {
            // The server was restored from a backup: push again what it
            // may have lost (now queued again), then pull the whole feed.
            pushed = push_all(inner, &client).await;
            pull_all(inner, &client).await?;
        }
        pushed
    }
    .await;
    match &result {
        Ok(()) => inner.online.store(true, Ordering::Relaxed),
        Err(SyncError::Client(ClientError::Unreachable(_))) => {
            inner.online.store(false, Ordering::Relaxed)
        }
        Err(_) => {}
    }
    publish_status(inner, result.as_ref().err(), None).await;
    result
}

async fn publish_status(inner: &Inner, error: Option<&SyncError>, progress: Option<f64>) {
    let Ok(counts) = inner.store.sync_counts().await else {
        return;
    };
    let settings = inner.store.sync_settings().await.ok().flatten();
    let problem = match error {
        Some(SyncError::NotEnrolled) | None => None,
        Some(e) => Some(e.problem()),
    };
    let status = SyncStatus {
        configured: settings.as_ref().is_some_and(|s| s.clinic_id.is_some()),
        server_url: settings.as_ref().map(|s| s.server_url.clone()),
        connection: if inner.online.load(Ordering::Relaxed) {
            ConnectionState::Online
        } else {
            ConnectionState::Offline
        },
        pending: counts.pending,
        rejected: counts.rejected,
        conflicts: counts.conflicts,
        last_sync_at: settings.and_then(|s| s.last_sync_at),
        progress,
        problem,
        tokens_session_only: !inner.vault.persistent(),
    };
    inner.status.send_replace(status);
}

/// An access token of `user`, refreshing it with the stored refresh token.
async fn token_for(inner: &Inner, client: &Client, user: Uuid) -> Result<String, SyncError> {
    if let Some(t) = inner.vault.access(user) {
        return Ok(t);
    }
    let refresh = inner
        .vault
        .refresh_token(user)
        .ok_or(SyncError::SignInNeeded(Some(user)))?;
    match client.refresh(&refresh).await {
        Ok(t) => {
            inner.vault.keep(&t);
            Ok(t.access_token)
        }
        Err(ClientError::Unauthorized { .. }) | Err(ClientError::Refused { .. }) => {
            inner.vault.forget(user);
            Err(SyncError::SignInNeeded(Some(user)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Any user's token, for reading the clinic's feed.
async fn any_token(inner: &Inner, client: &Client) -> Result<String, SyncError> {
    if let Some(u) = inner.vault.users_with_access().first() {
        return token_for(inner, client, *u).await;
    }
    for u in inner.store.server_user_ids().await? {
        match token_for(inner, client, u).await {
            Ok(t) => return Ok(t),
            Err(SyncError::SignInNeeded(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(SyncError::SignInNeeded(None))
}

async fn push_all(inner: &Inner, client: &Client) -> Result<(), SyncError> {
    let ws = inner.store.workstation_id();
    loop {
        let pending = inner.store.outbox_pending(MAX_PUSH_BATCH as i64).await?;
        let Some(first) = pending.first() else {
            return Ok(());
        };
        let author = first.author.ok_or(SyncError::SignInNeeded(None))?;
        // One author's run, bounded in bytes so a push stays well under the
        // server's body limit (the first mutation always goes).
        let mut bytes = 0usize;
        let mut batch: Vec<PushMutation> = Vec::new();
        for p in pending.iter().take_while(|p| p.author == Some(author)) {
            let size = p.payload_bytes + 256;
            if !batch.is_empty() && bytes + size > MAX_PUSH_BYTES {
                break;
            }
            bytes += size;
            batch.push(p.mutation.clone());
        }
        let request = PushRequest {
            workstation_id: ws,
            mutations: batch,
        };
        let token = token_for(inner, client, author).await?;
        let response = match client.push(&token, &request).await {
            Err(ClientError::Unauthorized { .. }) => {
                // The access token was refused (revoked, server restarted with
                // a new key): refresh once and try again.
                inner.vault.expire(author);
                let token = token_for(inner, client, author).await?;
                client.push(&token, &request).await?
            }
            other => other?,
        };
        inner
            .store
            .commit(
                &Actor::system("sync"),
                Mutation::SyncOutcomes {
                    outcomes: response.outcomes,
                },
            )
            .await?;
    }
}

/// How a pull ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pulled {
    /// The feed was applied up to its end.
    Done,
    /// The feed has a new epoch (the server's database was restored): the
    /// cursor went back to 0 and acknowledged mutations were queued again;
    /// nothing was applied.
    NewEpoch,
}

async fn pull_all(inner: &Inner, client: &Client) -> Result<Pulled, SyncError> {
    let mut token = any_token(inner, client).await?;
    let settings = inner.store.sync_settings().await?;
    let cursor = settings.as_ref().map_or(0, |s| s.cursor);
    let known_epoch = settings.and_then(|s| s.feed_epoch);
    let mut page = fetch_page(inner, client, &mut token, cursor).await?;
    let system = Actor::system("sync");
    if known_epoch.is_some_and(|e| e != page.epoch) {
        tracing::warn!(
            "the server's change feed has a new epoch (restored from a backup); syncing again from the start"
        );
        inner
            .store
            .commit(&system, Mutation::SyncEpoch { epoch: page.epoch })
            .await?;
        return Ok(Pulled::NewEpoch);
    }
    if !page.has_more {
        // The usual case: one page, through the pool.
        inner
            .store
            .commit(&system, Mutation::SyncApply { page })
            .await?;
        return Ok(Pulled::Done);
    }
    // A long (initial) sync: pages are written on one warm connection,
    // the next page is fetched while the last one is written, and the
    // status shows how far it got when the live channel told us where
    // the feed ends.
    let mut writer = inner.store.bulk_writer().await?;
    loop {
        let more = page.has_more;
        let reached = page.cursor;
        let apply = writer.commit(&system, Mutation::SyncApply { page });
        if !more {
            apply.await?;
            writer.finish().await?;
            return Ok(Pulled::Done);
        }
        let (applied, next) = tokio::join!(apply, fetch_page(inner, client, &mut token, reached));
        applied?;
        page = next?;
        let latest = inner.latest_seen.load(Ordering::Relaxed);
        let progress = (latest > reached).then(|| reached as f64 / latest as f64);
        publish_status(inner, None, progress).await;
    }
}

/// One page after `cursor`; a token that expired during a long sync is
/// replaced once.
async fn fetch_page(
    inner: &Inner,
    client: &Client,
    token: &mut String,
    cursor: i64,
) -> Result<clinic_domain::sync::PullResponse, SyncError> {
    match client.pull(token, cursor, PULL_PAGE).await {
        Err(ClientError::Unauthorized { .. }) => {
            for u in inner.vault.users_with_access() {
                inner.vault.expire(u);
            }
            *token = any_token(inner, client).await?;
            Ok(client.pull(token, cursor, PULL_PAGE).await?)
        }
        other => Ok(other?),
    }
}

/// Wakes the loop whenever the store queues an outbox entry, so that a
/// write is pushed soon after it is made, whoever made it.
async fn follow_outbox(inner: Arc<Inner>) {
    let mut changes = inner.store.outbox_changes();
    while changes.changed().await.is_ok() {
        inner.wake.notify_one();
    }
}
