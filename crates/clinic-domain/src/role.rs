//! Roles and the permission matrix.
//!
//! The matrix is the single source of truth: the store checks it on every
//! command and write, the server (later) on every endpoint. The UI asks for
//! the signed-in user's permissions only to decide what to show.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A user's role at the clinic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Role {
    /// Manages users and reads the audit log.
    Admin,
    /// Reads everything and writes clinical records.
    Doctor,
    /// Runs the queue, records vitals, reads demographics.
    Nurse,
    /// Registers and edits patients, books appointments.
    Reception,
    /// Imports and views images.
    ImagingOperator,
}

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Doctor,
        Role::Nurse,
        Role::Reception,
        Role::ImagingOperator,
    ];

    /// The role as stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Doctor => "doctor",
            Role::Nurse => "nurse",
            Role::Reception => "reception",
            Role::ImagingOperator => "imaging_operator",
        }
    }

    /// Parses the stored form; `None` for an unknown role.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role grants `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        use Role::*;
        match permission {
            ReadDemographics => true,
            // Registering and editing are reception's work; doctors correct
            // demographics during a consultation too.
            WriteDemographics | ImportPatients => matches!(self, Reception | Doctor | Admin),
            // Merging hides a record for good: the desk that registers
            // patients (and finds their duplicates) and the admin, not the
            // consulting room, where a wrong merge would go unnoticed.
            MergePatients => matches!(self, Reception | Admin),
            ReadClinical => matches!(self, Doctor | Nurse),
            WriteClinical => matches!(self, Doctor),
            // Nurses take vitals at triage; doctors too during a consultation.
            RecordVitals => matches!(self, Doctor | Nurse),
            ReadImaging => matches!(self, Doctor | ImagingOperator),
            ManageUsers | ReadAudit | ManageSettings => matches!(self, Admin),
        }
    }
}

/// Something a user may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Permission {
    /// Find patients and open their demographic record.
    ReadDemographics,
    /// Register patients and edit their demographics.
    WriteDemographics,
    /// Merge two records of the same person.
    MergePatients,
    /// Bulk-import patients from CSV.
    ImportPatients,
    /// Read diagnoses, prescriptions, vitals and results.
    ReadClinical,
    /// Write diagnoses, prescriptions and results.
    WriteClinical,
    /// Record a patient's vital signs.
    RecordVitals,
    /// View images.
    ReadImaging,
    /// Create, disable and reset users.
    ManageUsers,
    /// Browse and verify the audit log.
    ReadAudit,
    /// Change workstation settings.
    ManageSettings,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 11] = [
        Permission::ReadDemographics,
        Permission::WriteDemographics,
        Permission::MergePatients,
        Permission::ImportPatients,
        Permission::ReadClinical,
        Permission::WriteClinical,
        Permission::RecordVitals,
        Permission::ReadImaging,
        Permission::ManageUsers,
        Permission::ReadAudit,
        Permission::ManageSettings,
    ];

    /// Every permission `role` grants.
    pub fn granted_to(role: Role) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| role.allows(*p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_matches_the_clinics_rules() {
        assert!(Role::Reception.allows(Permission::WriteDemographics));
        assert!(Role::Nurse.allows(Permission::ReadDemographics));
        assert!(
            !Role::Nurse.allows(Permission::WriteDemographics),
            "nurses read demographics but do not edit them"
        );
        assert!(Role::Doctor.allows(Permission::ReadClinical));
        assert!(!Role::Reception.allows(Permission::ReadClinical));
        assert!(Role::Admin.allows(Permission::ReadAudit));
        assert!(!Role::Doctor.allows(Permission::ReadAudit));
        assert!(!Role::Reception.allows(Permission::ManageUsers));
    }

    #[test]
    fn roles_round_trip_through_their_stored_form() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("superuser"), None);
    }
}
