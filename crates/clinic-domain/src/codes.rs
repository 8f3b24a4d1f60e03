//! Codes that cross a boundary (IPC, HTTP, a stored row): one declaration each.
//!
//! [`wire_code!`] declares such a code as an enum whose every variant names
//! its wire text once. From that it derives serde (the text on the wire),
//! ts-rs (the TypeScript union), the OpenAPI schema, `as_str`/`parse` for
//! stored rows, and `ALL`, from which `cargo test -p clinic-domain` writes
//! `ui/src/bindings/codes.ts`: the UI's lists of values come from there, so
//! no list is copied by hand and no code is matched as a free string.

/// Declares a wire code; see the [module](self) documentation.
///
/// A variant marked `#[serde(other)]` is what an unknown text from a newer
/// peer reads as, so an old workstation never fails on a new server's code.
macro_rules! wire_code {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            serde::Serialize, serde::Deserialize, ts_rs::TS,
        )]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        // serde, ts-rs and utoipa take the texts from this rule (utoipa
        // does not read a variant's rename when a macro wrote it); a test
        // holds each declared text equal to it.
        #[serde(rename_all = "snake_case")]
        #[ts(export)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text on the wire and in stored rows.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the wire text; `None` for an unknown one.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        // Stored rows read a code through this (`#[sqlx(try_from = "String")]`).
        impl TryFrom<String> for $name {
            type Error = $crate::codes::UnknownCode;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s).ok_or($crate::codes::UnknownCode(stringify!($name)))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::codes::WireCode for $name {
            const NAME: &'static str = stringify!($name);
            fn texts() -> Vec<&'static str> {
                Self::ALL.iter().map(|c| c.as_str()).collect()
            }
            fn from_text(s: &str) -> Option<Self> {
                Self::parse(s)
            }
        }
    };
}

pub(crate) use wire_code;

/// A stored text that is no value of the code named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a {0} code")]
pub struct UnknownCode(pub &'static str);

/// What every [`wire_code!`] enum offers generic code (the TypeScript lists).
pub trait WireCode {
    /// The type's name, as ts-rs exports it.
    const NAME: &'static str;
    /// Every value's wire text, in declaration order.
    fn texts() -> Vec<&'static str>;
    /// The value of a wire text, if it is one.
    fn from_text(s: &str) -> Option<Self>
    where
        Self: Sized;
}

/// A code a newer peer may have extended: a text this build does not know
/// reads as the code's `Other` value (its `#[serde(other)]` variant), so an
/// old workstation never fails on a new server's answer.
pub trait PeerCode: WireCode + Sized {
    /// The value an unknown text reads as.
    const OTHER: Self;

    /// The value of `text`, or [`PeerCode::OTHER`].
    fn from_peer(text: &str) -> Self {
        Self::from_text(text).unwrap_or(Self::OTHER)
    }
}

impl PeerCode for crate::sync::RejectCode {
    const OTHER: Self = Self::Other;
}

impl PeerCode for crate::sync::ApiErrorCode {
    const OTHER: Self = Self::Other;
}

#[cfg(test)]
mod tests {
    use super::WireCode;
    use crate::audit::AuditAction;
    use crate::error::{ErrorCode, FieldCode};
    use crate::patient::PatientStatus;
    use crate::sync::{ApiErrorCode, Entity, Op, OutcomeStatus, RejectCode, SyncProblemCode};
    use crate::user::Language;

    #[test]
    fn a_stored_text_reads_back_as_its_code() {
        assert_eq!(
            PatientStatus::try_from("merged".to_owned()),
            Ok(PatientStatus::Merged)
        );
        assert_eq!(
            PatientStatus::try_from("Merged".to_owned()),
            Err(super::UnknownCode("PatientStatus"))
        );
    }

    /// Calls macro `$m` with every wire code type: the one list both tests
    /// (and `codes.ts`) go by.
    macro_rules! every_code {
        ($m:ident) => {
            $m!(
                ErrorCode,
                FieldCode,
                ApiErrorCode,
                RejectCode,
                SyncProblemCode,
                Entity,
                Op,
                OutcomeStatus,
                AuditAction,
                Language,
                PatientStatus
            )
        };
    }

    fn list<C: WireCode>() -> (&'static str, Vec<&'static str>) {
        (C::NAME, C::texts())
    }

    /// `SyncProblemCode` → `SYNC_PROBLEM_CODE_VALUES`.
    fn const_name(type_name: &str) -> String {
        let mut out = String::new();
        for (i, ch) in type_name.chars().enumerate() {
            if ch.is_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_uppercase());
        }
        out + "_VALUES"
    }

    /// Writes `codes.ts` beside ts-rs's bindings (`TS_RS_EXPORT_DIR`), so
    /// `scripts/check-bindings.sh` fails when it is stale like the types.
    #[test]
    fn export_code_lists() {
        macro_rules! lists {
            ($($t:ty),+) => { [$(list::<$t>()),+] };
        }
        let lists = every_code!(lists);
        let mut ts = String::from(
            "// Generated by clinic-domain's tests (src/codes.rs): every value of each\n\
             // wire code, for lists and exhaustive checks in the UI. Do not edit.\n",
        );
        for (name, _) in &lists {
            ts += &format!("import type {{ {name} }} from \"./{name}\";\n");
        }
        for (name, texts) in &lists {
            let values: Vec<String> = texts.iter().map(|t| format!("\"{t}\"")).collect();
            ts += &format!(
                "\nexport const {}: readonly {name}[] = [{}];\n",
                const_name(name),
                values.join(", ")
            );
        }
        let Ok(dir) = std::env::var("TS_RS_EXPORT_DIR") else {
            return;
        };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(dir);
        let path = dir.join("codes.ts");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(ts.as_str()) {
            std::fs::write(&path, ts).expect("write codes.ts");
        }
    }

    /// The declared text of every value is the one serde writes and reads.
    #[test]
    fn declared_texts_are_the_wire_texts() {
        macro_rules! check {
            ($($t:ty),+) => {$(
                for v in <$t>::ALL {
                    let json = serde_json::to_value(v).unwrap();
                    assert_eq!(json, v.as_str(), "{}", stringify!($t));
                    let back: $t = serde_json::from_value(json).unwrap();
                    assert_eq!(back, *v);
                    assert_eq!(<$t>::parse(v.as_str()), Some(*v));
                }
            )+};
        }
        every_code!(check);
        // A newer peer's code reads as `other`, through serde and from text.
        let newer: RejectCode = serde_json::from_str("\"brand_new\"").unwrap();
        assert_eq!(newer, RejectCode::Other);
        use super::PeerCode;
        assert_eq!(RejectCode::from_peer("brand_new"), RejectCode::Other);
        assert_eq!(ApiErrorCode::from_peer("busy"), ApiErrorCode::Busy);
    }

    #[test]
    fn const_names_are_screaming_snake() {
        assert_eq!(const_name("ErrorCode"), "ERROR_CODE_VALUES");
        assert_eq!(const_name("Op"), "OP_VALUES");
    }
}
