//! Reading and verifying the audit trail.

use clinic_domain::audit::{AuditAction, AuditEntry, AuditFilter, AuditSubject, AuditVerification};
use serde_json::Value;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::sql::{AuditRow, parse_ts, ts};
use crate::write::{GENESIS_HASH, audit_hash};
use crate::{Result, Store, StoreError};

impl AuditRow {
    fn to_entry(&self) -> Result<AuditEntry> {
        let uuid = |s: &str| Uuid::parse_str(s).map_err(|e| StoreError::Internal(e.to_string()));
        let json = |s: &Option<String>| s.as_deref().and_then(|s| serde_json::from_str(s).ok());
        Ok(AuditEntry {
            seq: self.seq,
            at: parse_ts(&self.at)?,
            user_id: self.user_id.as_deref().map(uuid).transpose()?,
            user_name: self.user_name.clone(),
            workstation_id: uuid(&self.workstation_id)?,
            action: AuditAction::parse(&self.action)
                .ok_or_else(|| StoreError::Internal("unknown audit action".into()))?,
            entity: self.entity.clone(),
            entity_id: self.entity_id.as_deref().map(uuid).transpose()?,
            before: json(&self.before),
            after: json(&self.after),
            subject: None,
        })
    }
}

/// Shortens an import batch's `after` for listing: see [`Store::audit_entries`].
fn summarise_import(entry: &mut AuditEntry, patient: Option<Uuid>) {
    if entry.action != AuditAction::Import {
        return;
    }
    let Some(after) = entry.after.as_mut().and_then(Value::as_object_mut) else {
        return;
    };
    let Some(Value::Array(list)) = after.get("patients") else {
        return;
    };
    let count = list.len();
    let mine = patient.and_then(|id| {
        let id = id.to_string();
        list.iter()
            .find(|p| p.get("id").and_then(Value::as_str) == Some(id.as_str()))
            .cloned()
    });
    after.insert("patients".into(), Value::from(count));
    if let Some(mine) = mine {
        after.insert("patient".into(), mine);
    }
}

impl Store {
    /// Audit entries matching `filter`, newest first.
    ///
    /// An import batch's `after` lists up to a thousand patients; here its
    /// `patients` list is replaced by their number (and, when the filter
    /// names one of them, that patient's values are given as `patient`), so
    /// that a page of entries stays small. The full list stays in the log;
    /// each patient's history shows its own values.
    pub async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT * FROM audit_log WHERE 1 = 1");
        if let Some(u) = filter.user_id {
            qb.push(" AND user_id = ").push_bind(u.to_string());
        }
        if let Some(a) = filter.action {
            qb.push(" AND action = ").push_bind(a.as_str());
        }
        if let Some(e) = &filter.entity {
            qb.push(" AND entity = ").push_bind(e.clone());
        }
        if let Some(id) = filter.entity_id {
            // Also the import batches that name this record.
            qb.push(" AND (entity_id = ")
                .push_bind(id.to_string())
                .push(" OR seq IN (SELECT seq FROM audit_link WHERE entity_id = ")
                .push_bind(id.to_string())
                .push("))");
        }
        if let Some(from) = filter.from {
            qb.push(" AND at >= ").push_bind(ts(from));
        }
        if let Some(to) = filter.to {
            qb.push(" AND at < ").push_bind(ts(to));
        }
        if let Some(seq) = filter.before_seq {
            qb.push(" AND seq < ").push_bind(seq);
        }
        let limit = i64::from(filter.limit.unwrap_or(100).clamp(1, 1000));
        qb.push(" ORDER BY seq DESC LIMIT ").push_bind(limit);
        let rows: Vec<AuditRow> = qb.build_query_as().fetch_all(self.pool()).await?;
        let mut entries = rows
            .iter()
            .map(|row| {
                let mut entry = row.to_entry()?;
                summarise_import(&mut entry, filter.entity_id);
                Ok(entry)
            })
            .collect::<Result<Vec<_>>>()?;
        self.name_subjects(&mut entries).await?;
        Ok(entries)
    }

    /// Fills each patient entry's [`AuditSubject`] (one query for the page).
    async fn name_subjects(&self, entries: &mut [AuditEntry]) -> Result<()> {
        let mut ids: Vec<String> = entries
            .iter()
            .filter(|e| e.entity == "patient")
            .filter_map(|e| e.entity_id.map(|id| id.to_string()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        let mut found = std::collections::HashMap::new();
        for row in self.summaries(&ids).await? {
            let id = Uuid::parse_str(&row.id).map_err(|e| StoreError::Internal(e.to_string()))?;
            let name = format!("{} {}", row.family_name, row.given_name);
            found.insert(
                id,
                AuditSubject {
                    id,
                    mrn: row.mrn,
                    name,
                },
            );
        }
        for e in entries.iter_mut().filter(|e| e.entity == "patient") {
            e.subject = e.entity_id.and_then(|id| found.get(&id).cloned());
        }
        Ok(())
    }

    /// Walks the whole chain, recomputing each hash: a changed, removed or
    /// reordered entry breaks it at that point.
    pub async fn verify_audit(&self) -> Result<AuditVerification> {
        let mut prev = GENESIS_HASH.to_owned();
        let mut expected_seq = 1;
        let mut checked = 0;
        let mut last_seq = 0;
        loop {
            // Paged, so a long log is checked in bounded memory. An import
            // batch's `after` lists thousands of patients, so import entries
            // are read one at a time.
            let page: Vec<AuditRow> = sqlx::query_as(
                "SELECT seq, at, user_id, user_name, workstation_id, action, entity, entity_id, before, \
                 CASE WHEN action = 'import' THEN NULL ELSE after END AS after, prev_hash, hash \
                 FROM audit_log WHERE seq > ? ORDER BY seq LIMIT 5000",
            )
            .bind(last_seq)
            .fetch_all(self.pool())
            .await?;
            let Some(last) = page.last() else { break };
            last_seq = last.seq;
            for mut row in page {
                checked += 1;
                if row.action == AuditAction::Import.as_str() {
                    row.after = sqlx::query_scalar("SELECT after FROM audit_log WHERE seq = ?")
                        .bind(row.seq)
                        .fetch_one(self.pool())
                        .await?;
                }
                let problem = if row.seq != expected_seq {
                    Some(format!("entry {expected_seq} is missing"))
                } else if row.prev_hash != prev {
                    Some("its link to the previous entry does not match".to_owned())
                } else if audit_hash(&row) != row.hash {
                    Some("its content does not match its hash".to_owned())
                } else if self.missing_links(&row).await? > 0 {
                    Some("a patient it names has lost its link to it".to_owned())
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Ok(AuditVerification {
                        entries: checked,
                        first_bad_seq: Some(row.seq.min(expected_seq)),
                        problem: Some(problem),
                    });
                }
                prev = row.hash;
                expected_seq += 1;
            }
        }
        Ok(AuditVerification {
            entries: checked,
            first_bad_seq: None,
            problem: None,
        })
    }

    /// For an import batch entry: how many of the patients its (verified)
    /// `after` names lack their `audit_link` row, through which their
    /// history finds the entry.
    async fn missing_links(&self, row: &AuditRow) -> Result<i64> {
        let Some(after) = row
            .after
            .as_deref()
            .filter(|_| row.action == AuditAction::Import.as_str())
        else {
            return Ok(0);
        };
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM json_each(?1, '$.patients') j WHERE NOT EXISTS \
             (SELECT 1 FROM audit_link l WHERE l.entity_id = j.value ->> 'id' AND l.seq = ?2 AND l.item = j.key)",
        )
        .bind(after)
        .bind(row.seq)
        .fetch_one(self.pool())
        .await?)
    }
}
