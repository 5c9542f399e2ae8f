//! Who pays: a user or an organization, named once. Every service, counter and console action
//! takes a [`Payer`]; its label (`user:…`, `org:…`) is how logs, the API and the command line
//! write it, and [`Payer::parse`] / [`Payer::from_parts`] read it back.

use std::fmt;

use super::PayerKind;

/// A user or an organization, by Clerk id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Payer {
    pub kind: PayerKind,
    pub id: String,
}

/// Why a payer's name did not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayerError {
    #[error("a payer is `user:<id>` or `org:<id>`, not `{0}`")]
    Kind(String),
    #[error("`{0}` is not a Clerk id (1 to 64 letters, digits, `_` or `-`)")]
    Id(String),
}

impl Payer {
    pub fn user(id: impl Into<String>) -> Payer {
        Payer {
            kind: PayerKind::User,
            id: id.into(),
        }
    }

    pub fn org(id: impl Into<String>) -> Payer {
        Payer {
            kind: PayerKind::Org,
            id: id.into(),
        }
    }

    /// `user:<id>` / `org:<id>`.
    pub fn label(&self) -> String {
        self.to_string()
    }

    /// A payer from its kind's name (`user`, `org`) and a Clerk id: the console's
    /// `/admin/payers/{kind}/{id}` and the command line's `--user ID` / `--org ID`.
    pub fn from_parts(kind: &str, id: &str) -> Result<Payer, PayerError> {
        let kind = match kind {
            "user" => PayerKind::User,
            "org" => PayerKind::Org,
            other => return Err(PayerError::Kind(other.to_string())),
        };
        if !is_clerk_id(id) {
            return Err(PayerError::Id(id.to_string()));
        }
        Ok(Payer {
            kind,
            id: id.to_string(),
        })
    }

    /// A payer from its label, `user:<id>` or `org:<id>`.
    pub fn parse(label: &str) -> Result<Payer, PayerError> {
        let (kind, id) = label
            .split_once(':')
            .ok_or_else(|| PayerError::Kind(label.to_string()))?;
        Payer::from_parts(kind, id)
    }
}

impl fmt::Display for Payer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

/// Whether `id` can be a Clerk id (`user_…`, `org_…`, `cse_…`): 1 to 64 ASCII letters,
/// digits, `_` or `-`. What goes into a Backend API path or a console route is checked by it.
pub fn is_clerk_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_label_reads_back_as_the_payer_it_names() {
        assert_eq!(Payer::user("user_1").label(), "user:user_1");
        assert_eq!(Payer::org("org_1").to_string(), "org:org_1");
        assert_eq!(Payer::parse("org:org_1"), Ok(Payer::org("org_1")));
        assert_eq!(Payer::parse("user:user_1"), Ok(Payer::user("user_1")));
    }

    #[test]
    fn other_spellings_and_ids_that_could_leave_a_path_are_refused() {
        for bad in [
            "",
            "user",
            "user:",
            ":user_1",
            "User:user_1",
            "users:user_1",
            "org :org_1",
            "user:../x",
            "user:a/b",
            "user:a b",
            "user:a%2Fb",
            "user:é",
            "org:org_1:x",
        ] {
            assert!(Payer::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Payer::from_parts("team", "org_1"),
            Err(PayerError::Kind("team".into()))
        );
        assert_eq!(
            Payer::from_parts("user", &"a".repeat(65)),
            Err(PayerError::Id("a".repeat(65)))
        );
        assert!(Payer::from_parts("user", &"a".repeat(64)).is_ok());
        assert!(Payer::from_parts("org", "org_A-9").is_ok());
    }

    proptest! {
        #[test]
        fn every_payer_reads_back_from_its_label(org in any::<bool>(), id in "[A-Za-z0-9_-]{1,64}") {
            let p = if org { Payer::org(id) } else { Payer::user(id) };
            prop_assert_eq!(Payer::parse(&p.label()), Ok(p));
        }

        #[test]
        fn nothing_outside_the_id_alphabet_reads(id in ".{1,70}") {
            let ok = id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            prop_assert_eq!(Payer::from_parts("user", &id).is_ok(), ok);
        }
    }
}
