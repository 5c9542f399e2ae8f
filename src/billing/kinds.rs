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

    /// In the words a subscriber reads.
    pub fn words(self) -> &'static str {
        match self {
            Status::Upcoming => "Starting soon",
            Status::Incomplete => "Waiting for the first payment",
            Status::Active => "Active",
            Status::PastDue => "Payment overdue",
            Status::Canceled => "Canceled",
            Status::Abandoned => "Not completed",
            Status::Ended => "Ended",
            Status::Unknown => "Unknown",
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

    /// The `subscriptionItem.<x>` event that announces an item in this status (a correction
    /// from the Backend API is written as that event; an unknown status as `updated`).
    pub fn item_event_type(self) -> &'static str {
        match self {
            Status::Active => "subscriptionItem.active",
            Status::Canceled => "subscriptionItem.canceled",
            Status::Ended => "subscriptionItem.ended",
            Status::PastDue => "subscriptionItem.pastDue",
            Status::Upcoming => "subscriptionItem.upcoming",
            Status::Abandoned => "subscriptionItem.abandoned",
            Status::Incomplete => "subscriptionItem.incomplete",
            Status::Unknown => "subscriptionItem.updated",
        }
    }

    /// The status a `subscriptionItem.<x>` (or `subscription.<x>`) event carries.
    pub fn of_event_type(event_type: &str) -> Option<Status> {
        Some(match event_type.split_once('.')?.1 {
            "active" | "updated" | "freeTrialEnding" | "created" => Status::Active,
            "canceled" => Status::Canceled,
            "upcoming" => Status::Upcoming,
            "ended" => Status::Ended,
            "abandoned" => Status::Abandoned,
            "incomplete" => Status::Incomplete,
            "pastDue" => Status::PastDue,
            _ => return None,
        })
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

/// Clerk's event types whose data changes state; any other type is only recorded. The one
/// list: the webhook parser asks it, the demo issuer and `plangate trigger` build each type.
pub const HANDLED_EVENT_TYPES: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deleted",
    "subscription.created",
    "subscription.updated",
    "subscription.active",
    "subscription.pastDue",
    "subscriptionItem.updated",
    "subscriptionItem.active",
    "subscriptionItem.canceled",
    "subscriptionItem.upcoming",
    "subscriptionItem.ended",
    "subscriptionItem.abandoned",
    "subscriptionItem.incomplete",
    "subscriptionItem.pastDue",
    "subscriptionItem.freeTrialEnding",
    "paymentAttempt.created",
    "paymentAttempt.updated",
];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_has_its_item_event_and_reads_back_from_it() {
        for s in Status::ALL {
            let t = s.item_event_type();
            assert!(HANDLED_EVENT_TYPES.contains(&t), "{t}");
            if s != Status::Unknown {
                assert_eq!(Status::of_event_type(t), Some(s), "{t}");
            }
        }
        assert_eq!(
            Status::Unknown.item_event_type(),
            "subscriptionItem.updated"
        );
        for (t, s) in [
            ("subscriptionItem.updated", Status::Active),
            ("subscriptionItem.freeTrialEnding", Status::Active),
            ("subscription.created", Status::Active),
            ("subscription.pastDue", Status::PastDue),
        ] {
            assert_eq!(Status::of_event_type(t), Some(s), "{t}");
        }
        assert_eq!(Status::of_event_type("subscriptionItem.bogus"), None);
        assert_eq!(Status::of_event_type("noDot"), None);
    }
}
