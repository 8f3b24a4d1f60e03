//! The signed-in workstation: the session, idle lock, and every command the
//! UI and CLI call, each checking the role's permission in the core.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Duration, Utc};
use clinic_domain::audit::{AuditEntry, AuditFilter, AuditVerification, HistoryEntry};
use clinic_domain::import::{ImportProgress, ImportReport};
use clinic_domain::password::DUMMY_HASH;
use clinic_domain::patient::{DuplicateCandidate, Patient, PatientInput, PatientSummary};
use clinic_domain::sync::{ConflictReview, Entity, RefusedChange};
use clinic_domain::user::{Language, NewUser, Session, User, check_password};
use clinic_domain::workstation::WorkstationInfo;
use clinic_domain::{Permission, Role};
use uuid::Uuid;

use crate::patients::today;
use crate::users::{hash_password, verify_password};
use crate::{Actor, Mutation};
use crate::{Result, Store, StoreError};

/// A signed-in user's session.
#[derive(Debug, Clone)]
struct ActiveSession {
    user_id: Uuid,
    actor: Actor,
    last_activity: DateTime<Utc>,
    locked: bool,
}

/// The store plus the signed-in session: what the app's commands call.
pub struct Workstation {
    store: Store,
    session: Mutex<Option<ActiveSession>>,
    idle_lock_minutes: AtomicU32,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Internal(e.to_string()))
}

impl Workstation {
    /// Wraps an open store; nobody is signed in.
    pub async fn new(store: Store) -> Result<Workstation> {
        let info = store.workstation_info().await?;
        Ok(Workstation {
            store,
            session: Mutex::new(None),
            idle_lock_minutes: AtomicU32::new(info.idle_lock_minutes),
        })
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn session_lock(&self) -> std::sync::MutexGuard<'_, Option<ActiveSession>> {
        // A poisoned lock only means a panic elsewhere; the session data is plain.
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The signed-in actor, after the idle check. Every command goes
    /// through here, and through [`Actor::require`] for its permission.
    fn actor(&self, permission: Option<Permission>) -> Result<Actor> {
        let now = self.store.now();
        let idle = Duration::minutes(i64::from(self.idle_lock_minutes.load(Ordering::Relaxed)));
        let mut guard = self.session_lock();
        let session = guard.as_mut().ok_or(StoreError::Unauthenticated)?;
        if session.locked || now - session.last_activity > idle {
            session.locked = true;
            return Err(StoreError::SessionLocked);
        }
        session.last_activity = now;
        if let Some(p) = permission {
            session.actor.require(p)?;
        }
        Ok(session.actor.clone())
    }

    /// The signed-in actor, after the idle check and, when given, the
    /// permission check: for commands that do their work outside this type
    /// (the app's sync commands), so the role is still checked in the core.
    pub fn authorize(&self, permission: Option<Permission>) -> Result<Actor> {
        self.actor(permission)
    }

    /// Whether someone is signed in and the workstation is not locked,
    /// without counting as activity: for what the UI reads by itself (the
    /// status bar), which must not keep the idle lock away.
    pub fn check_signed_in(&self) -> Result<()> {
        let now = self.store.now();
        let idle = Duration::minutes(i64::from(self.idle_lock_minutes.load(Ordering::Relaxed)));
        let guard = self.session_lock();
        let session = guard.as_ref().ok_or(StoreError::Unauthenticated)?;
        if session.locked || now - session.last_activity > idle {
            return Err(StoreError::SessionLocked);
        }
        Ok(())
    }

    async fn session_for(&self, user_id: Uuid) -> Result<Session> {
        let user = self.store.user(user_id).await?;
        Ok(Session {
            permissions: Permission::granted_to(user.role),
            user,
        })
    }

    /// The workstation's identity and settings; needs no sign-in.
    pub async fn info(&self) -> Result<WorkstationInfo> {
        self.store.workstation_info().await
    }

    /// First start: creates the admin account and signs it in.
    pub async fn setup_admin(&self, mut user: NewUser) -> Result<Session> {
        if self.store.has_users().await? {
            return Err(StoreError::AlreadySetUp);
        }
        user.role = Role::Admin;
        user.validate().map_err(StoreError::Validation)?;
        let password = user.password.clone();
        let hash = blocking(move || hash_password(&password)).await??;
        let id = Uuid::now_v7();
        self.store
            .commit(
                &Actor::system("setup"),
                Mutation::UserCreate {
                    id,
                    username: user.username.trim().to_owned(),
                    display_name: user.display_name.trim().to_owned(),
                    role: Role::Admin,
                    language: user.language,
                    password_hash: hash,
                },
            )
            .await?;
        self.sign_in(&user.username, &user.password).await
    }

    /// Signs a user in: lockout after five failures for fifteen minutes;
    /// every attempt is audited.
    pub async fn sign_in(&self, username: &str, password: &str) -> Result<Session> {
        if !self.store.has_users().await? {
            return Err(StoreError::SetupRequired);
        }
        let row = self.store.user_row_by_name(username).await?;
        let hash = row
            .as_ref()
            .map_or(DUMMY_HASH.to_owned(), |r| r.password_hash.clone());
        let pw = password.to_owned();
        let ok = blocking(move || verify_password(&pw, &hash)).await?;
        let system = Actor::system("sign-in");
        let Some(row) = row else {
            self.store
                .commit(
                    &system,
                    Mutation::SignIn {
                        user_id: None,
                        username: username.to_owned(),
                        success: false,
                    },
                )
                .await?;
            return Err(StoreError::InvalidCredentials);
        };
        let user = row.to_user()?;
        let now = self.store.now();
        if let Some(until) = user.locked_until.filter(|u| *u > now) {
            let minutes = ((until - now).num_seconds() + 59) / 60;
            return Err(StoreError::AccountLocked { minutes });
        }
        if user.disabled {
            return Err(StoreError::AccountDisabled);
        }
        let actor = Actor {
            user_id: Some(user.id),
            name: user.display_name.clone(),
            role: user.role,
        };
        self.store
            .commit(
                &actor,
                Mutation::SignIn {
                    user_id: Some(user.id),
                    username: user.username.clone(),
                    success: ok,
                },
            )
            .await?;
        if !ok {
            let after = self.store.user(user.id).await?;
            if let Some(until) = after.locked_until.filter(|u| *u > now) {
                let minutes = ((until - now).num_seconds() + 59) / 60;
                return Err(StoreError::AccountLocked { minutes });
            }
            return Err(StoreError::InvalidCredentials);
        }
        *self.session_lock() = Some(ActiveSession {
            user_id: user.id,
            actor,
            last_activity: now,
            locked: false,
        });
        self.session_for(user.id).await
    }

    /// Signs out.
    pub async fn sign_out(&self) -> Result<()> {
        let session = self.session_lock().take();
        if let Some(s) = session {
            self.store
                .commit(&s.actor, Mutation::SignOut { user_id: s.user_id })
                .await?;
        }
        Ok(())
    }

    /// The signed-in session; `SessionLocked` if the workstation is locked.
    pub async fn current_session(&self) -> Result<Option<Session>> {
        let user_id = match self.session_lock().as_ref() {
            None => return Ok(None),
            Some(s) => s.user_id,
        };
        self.actor(None)?;
        Ok(Some(self.session_for(user_id).await?))
    }

    /// Notes user activity, postponing the idle lock.
    pub fn activity(&self) -> Result<()> {
        self.actor(None).map(|_| ())
    }

    /// Locks the workstation now (the UI's idle timer, or the user).
    pub fn lock(&self) {
        if let Some(s) = self.session_lock().as_mut() {
            s.locked = true;
        }
    }

    /// Unlocks with the signed-in user's password. Failures count toward
    /// the lockout like failed sign-ins.
    pub async fn unlock(&self, password: &str) -> Result<Session> {
        let user_id = {
            let guard = self.session_lock();
            let s = guard.as_ref().ok_or(StoreError::Unauthenticated)?;
            s.user_id
        };
        let row = self.store.user_row(user_id).await?;
        let name = row.username.clone();
        // Same checks and bookkeeping as a sign-in; it replaces the session.
        match self.sign_in(&name, password).await {
            Ok(s) => Ok(s),
            Err(e) => {
                if matches!(
                    e,
                    StoreError::AccountLocked { .. } | StoreError::AccountDisabled
                ) {
                    *self.session_lock() = None;
                }
                Err(e)
            }
        }
    }

    /// Changes the signed-in user's language.
    pub async fn set_language(&self, language: Language) -> Result<User> {
        let actor = self.actor(None)?;
        let id = actor.user_id.ok_or(StoreError::Unauthenticated)?;
        self.store
            .commit(&actor, Mutation::UserSetLanguage { id, language })
            .await?;
        self.store.user(id).await
    }

    /// Searches patients.
    pub async fn patient_search(&self, query: &str, limit: u32) -> Result<Vec<PatientSummary>> {
        self.actor(Some(Permission::ReadDemographics))?;
        self.store.search(query, limit).await
    }

    /// Existing patients that look like the one in the form. A form that
    /// does not validate yet has no candidates.
    pub async fn patient_check_duplicates(
        &self,
        input: &PatientInput,
        exclude: Option<Uuid>,
    ) -> Result<Vec<DuplicateCandidate>> {
        self.actor(Some(Permission::ReadDemographics))?;
        match input.validate(today()) {
            Ok(fields) => self.store.find_duplicates(&fields, exclude).await,
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Registers a patient.
    pub async fn patient_register(&self, input: &PatientInput) -> Result<Patient> {
        let actor = self.actor(Some(Permission::WriteDemographics))?;
        let fields = input.validate(today()).map_err(StoreError::Validation)?;
        let id = Uuid::now_v7();
        self.store
            .commit(&actor, Mutation::PatientCreate { id, fields })
            .await?;
        self.store.patient(id).await
    }

    /// Opens a patient's record; the view is audited.
    pub async fn patient_get(&self, id: Uuid) -> Result<Patient> {
        let actor = self.actor(Some(Permission::ReadDemographics))?;
        self.store
            .commit(&actor, Mutation::PatientView { id })
            .await?;
        self.store.patient(id).await
    }

    /// Changes a patient's demographics.
    pub async fn patient_update(
        &self,
        id: Uuid,
        base_version: i64,
        input: &PatientInput,
    ) -> Result<Patient> {
        let actor = self.actor(Some(Permission::WriteDemographics))?;
        let fields = input.validate(today()).map_err(StoreError::Validation)?;
        self.store
            .commit(
                &actor,
                Mutation::PatientUpdate {
                    id,
                    base_version,
                    fields,
                },
            )
            .await?;
        self.store.patient(id).await
    }

    /// A patient's change history.
    pub async fn patient_history(&self, id: Uuid) -> Result<Vec<HistoryEntry>> {
        self.actor(Some(Permission::ReadDemographics))?;
        self.store.patient_history(id).await
    }

    /// Merges `merge` into `keep`, saying why (required).
    pub async fn patient_merge(&self, keep: Uuid, merge: Uuid, reason: &str) -> Result<Patient> {
        let actor = self.actor(Some(Permission::MergePatients))?;
        self.store
            .commit(
                &actor,
                Mutation::PatientMerge {
                    keep,
                    merge,
                    reason: reason.to_owned(),
                },
            )
            .await?;
        self.store.patient(keep).await
    }

    /// All users (admin).
    pub async fn users_list(&self) -> Result<Vec<User>> {
        self.actor(Some(Permission::ManageUsers))?;
        self.store.users().await
    }

    /// Creates a user (admin).
    pub async fn user_create(&self, user: NewUser) -> Result<User> {
        let actor = self.actor(Some(Permission::ManageUsers))?;
        user.validate().map_err(StoreError::Validation)?;
        let pw = user.password.clone();
        let hash = blocking(move || hash_password(&pw)).await??;
        let id = Uuid::now_v7();
        self.store
            .commit(
                &actor,
                Mutation::UserCreate {
                    id,
                    username: user.username.trim().to_owned(),
                    display_name: user.display_name.trim().to_owned(),
                    role: user.role,
                    language: user.language,
                    password_hash: hash,
                },
            )
            .await?;
        self.store.user(id).await
    }

    /// Sets a new password for a user (admin); also lifts a lockout.
    pub async fn user_reset_password(&self, id: Uuid, password: &str) -> Result<()> {
        let actor = self.actor(Some(Permission::ManageUsers))?;
        let user = self.store.user(id).await?;
        check_password(password, &user.username).map_err(|e| StoreError::Validation(vec![e]))?;
        let pw = password.to_owned();
        let hash = blocking(move || hash_password(&pw)).await??;
        self.store
            .commit(
                &actor,
                Mutation::UserSetPassword {
                    id,
                    password_hash: hash,
                },
            )
            .await?;
        Ok(())
    }

    /// Disables or enables a user (admin).
    pub async fn user_set_disabled(&self, id: Uuid, disabled: bool) -> Result<User> {
        let actor = self.actor(Some(Permission::ManageUsers))?;
        self.store
            .commit(&actor, Mutation::UserSetDisabled { id, disabled })
            .await?;
        self.store.user(id).await
    }

    /// Browses the audit log (admin).
    pub async fn audit_list(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        self.actor(Some(Permission::ReadAudit))?;
        self.store.audit_entries(filter).await
    }

    /// Verifies the audit chain (admin).
    pub async fn audit_verify(&self) -> Result<AuditVerification> {
        self.actor(Some(Permission::ReadAudit))?;
        self.store.verify_audit().await
    }

    /// Changes the workstation's settings (admin).
    pub async fn settings_update(
        &self,
        name: Option<String>,
        idle_lock_minutes: Option<u32>,
    ) -> Result<WorkstationInfo> {
        let actor = self.actor(Some(Permission::ManageSettings))?;
        self.store
            .commit(
                &actor,
                Mutation::WorkstationSettings {
                    name,
                    idle_lock_minutes,
                },
            )
            .await?;
        let info = self.store.workstation_info().await?;
        self.idle_lock_minutes
            .store(info.idle_lock_minutes, Ordering::Relaxed);
        Ok(info)
    }

    /// Loads the demo clinic into an empty database.
    pub async fn demo_load(&self) -> Result<u64> {
        let actor = self.actor(Some(Permission::ImportPatients))?;
        crate::demo::load(&self.store, &actor, 200).await
    }

    /// Imports patients from CSV text.
    pub async fn import_csv(
        &self,
        csv: &str,
        dry_run: bool,
        progress: impl FnMut(ImportProgress),
    ) -> Result<ImportReport> {
        let actor = self.actor(Some(Permission::ImportPatients))?;
        self.store
            .import_patients(&actor, csv.as_bytes(), csv.len() as u64, dry_run, progress)
            .await
    }

    /// Whether `username` is an account made on this workstation only (not
    /// one that came from the server): the server cannot check its password,
    /// so an enrolled workstation signs it in locally.
    pub async fn is_local_account(&self, username: &str) -> Result<bool> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM users WHERE username = ? AND origin <> 'server'")
                .bind(username.trim())
                .fetch_one(self.store.pool())
                .await?;
        Ok(n > 0)
    }

    /// Sync conflicts waiting for review, each with its patient (reception).
    pub async fn conflicts_list(&self) -> Result<Vec<ConflictReview>> {
        self.actor(Some(Permission::WriteDemographics))?;
        let mut out = Vec::new();
        for conflict in self.store.open_conflicts().await? {
            let patient = match self.store.patient(conflict.patient_id).await {
                Ok(p) => Some(summary_of(&p)),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            out.push(ConflictReview { conflict, patient });
        }
        Ok(out)
    }

    /// Changes made here that the server refused, newest first, each with
    /// its patient when it was about one (the last 200).
    pub async fn refused_changes(&self) -> Result<Vec<RefusedChange>> {
        self.actor(Some(Permission::ReadDemographics))?;
        let mut out = Vec::new();
        for r in self.store.refused_changes(200).await? {
            let patient = if r.entity == Entity::Patient {
                match self.store.patient(r.entity_id).await {
                    Ok(p) => Some(summary_of(&p)),
                    Err(StoreError::NotFound(_)) => None,
                    Err(e) => return Err(e),
                }
            } else {
                None
            };
            out.push(RefusedChange {
                mutation_id: r.mutation_id,
                entity: r.entity,
                op: r.op,
                created_at: r.created_at,
                author: r.author,
                patient,
                code: r.code,
                message: r.message,
            });
        }
        Ok(out)
    }

    /// Settles a conflict: keep the server's value, or use the one that lost.
    pub async fn conflict_resolve(&self, id: Uuid, keep_client: bool) -> Result<()> {
        let actor = self.actor(Some(Permission::WriteDemographics))?;
        self.store
            .commit(&actor, Mutation::ConflictResolve { id, keep_client })
            .await?;
        Ok(())
    }
}

fn summary_of(p: &Patient) -> PatientSummary {
    PatientSummary {
        id: p.id,
        mrn: p.mrn.clone(),
        family_name: p.family_name.clone(),
        given_name: p.given_name.clone(),
        middle_name: p.middle_name.clone(),
        sex: p.sex,
        birth_date: p.birth_date,
        birth_date_estimated: p.birth_date_estimated,
        phone: p.phones.first().cloned(),
        national_id: p.national_id.clone(),
    }
}
