//! The plain billing types both halves of the app share: the server decides with them, and
//! the pages match on them instead of comparing strings.

use serde::{Deserialize, Serialize};

/// Clerk's subscription item statuses, plus `Unknown` for anything newer than this code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Upcoming,
    Incomplete,
    Active,
    PastDue,
    Canceled,
    Abandoned,
    Ended,
    Unknown,
}

impl Status {
    /// Every status, in declaration order.
    pub const ALL: [Status; 8] = [
        Status::Upcoming,
        Status::Incomplete,
        Status::Active,
        Status::PastDue,
        Status::Canceled,
        Status::Abandoned,
        Status::Ended,
        Status::Unknown,
    ];

    pub fn parse(s: &str) -> Status {
        match s {
            "upcoming" => Status::Upcoming,
            "incomplete" => Status::Incomplete,
            "active" => Status::Active,
            "past_due" => Status::PastDue,
            "canceled" => Status::Canceled,
            "abandoned" => Status::Abandoned,
            "ended" => Status::Ended,
            _ => Status::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Upcoming => "upcoming",
            Status::Incomplete => "incomplete",
            Status::Active => "active",
            Status::PastDue => "past_due",
            Status::Canceled => "canceled",
            Status::Abandoned => "abandoned",
            Status::Ended => "ended",
            Status::Unknown => "unknown",
        }
    }

    /// Tie-break for two events stamped with the same millisecond: the state further along
    /// the lifecycle wins, so equal timestamps still give one answer in every order.
    pub fn rank(self) -> u8 {
        match self {
            Status::Unknown => 0,
            Status::Upcoming => 1,
            Status::Incomplete => 2,
            Status::Active => 3,
            Status::PastDue => 4,
            Status::Canceled => 5,
            Status::Abandoned => 6,
            Status::Ended => 7,
        }
    }
}

/// Who pays for a subscription, and the scope of a plan or a claim (`u:` user, `o:`
/// organization).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayerKind {
    User,
    Org,
}

impl PayerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PayerKind::User => "user",
            PayerKind::Org => "org",
        }
    }
    /// As stored (`user`, `org`); anything else is a user.
    pub fn parse(s: &str) -> PayerKind {
        if s == "org" {
            PayerKind::Org
        } else {
            PayerKind::User
        }
    }
}
