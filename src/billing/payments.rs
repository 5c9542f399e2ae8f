//! Payment attempts as the billing page shows them (README, "Billing page"), pure: what is kept
//! of a `paymentAttempt.*` event (never more of a card than its brand and last four digits,
//! never the failure's free text), the ordering of updates, and the words a subscriber reads.

use serde::{Deserialize, Serialize};

use super::{subscription::ItemPayer, OrderKey};

/// A payment attempt's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    Pending,
    Paid,
    Failed,
}

impl PaymentStatus {
    pub fn parse(s: &str) -> Option<PaymentStatus> {
        match s {
            "pending" => Some(PaymentStatus::Pending),
            "paid" => Some(PaymentStatus::Paid),
            "failed" => Some(PaymentStatus::Failed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Failed => "failed",
        }
    }

    /// At the same event time a settled state outranks a pending one (a `paid` and a
    /// `pending` of one instant: the charge went through).
    pub fn rank(self) -> u8 {
        match self {
            PaymentStatus::Pending => 0,
            PaymentStatus::Failed => 1,
            PaymentStatus::Paid => 2,
        }
    }

    /// In words.
    pub fn words(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "Pending",
            PaymentStatus::Paid => "Paid",
            PaymentStatus::Failed => "Failed",
        }
    }
}

/// A card as the history shows it: brand and last four digits, nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub brand: String,
    pub last4: String,
}

/// One payment attempt, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentAttempt {
    pub id: String,
    pub payer: ItemPayer,
    pub status: PaymentStatus,
    /// Cents (`totals.grand_total.amount`).
    pub amount: i64,
    pub currency: String,
    pub charge_type: Option<String>,
    /// When it happened: paid, failed, or last updated (ms).
    pub at: i64,
    /// `failed_reason.code`, when it is a plain code.
    pub failed_code: Option<String>,
    pub card: Option<Card>,
    pub statement_id: Option<String>,
    /// The event time the ordering rule compares.
    pub event_at: i64,
}

impl PaymentAttempt {
    pub fn order_key(&self, delivery_id: &str) -> OrderKey {
        OrderKey::new(self.event_at, self.status.rank(), delivery_id)
    }
}

/// A code as Stripe and Clerk write them (`card_declined`): lowercase letters, digits and `_`,
/// at most 64; anything else (free text that could hold a card number) is dropped.
pub fn code(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then(|| s.to_string())
}

/// A card brand (`visa`, `amex`, `diners club`): letters, spaces, `_` and `-`, at most 24.
pub fn brand(s: &str) -> Option<String> {
    let t = s.trim();
    let ok = !t.is_empty()
        && t.len() <= 24
        && t.bytes()
            .all(|b| b.is_ascii_alphabetic() || matches!(b, b' ' | b'_' | b'-'));
    ok.then(|| t.to_ascii_lowercase())
}

/// Exactly four digits, or nothing (a longer number is never kept, not even its end).
pub fn last4(s: &str) -> Option<String> {
    (s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_string())
}

/// A three-letter currency code, upper case; anything else is `USD`'s absence: `None`.
pub fn currency(s: &str) -> Option<String> {
    (s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic())).then(|| s.to_ascii_uppercase())
}

/// Why a payment failed, in the words a subscriber reads.
pub fn failure_words(code: Option<&str>) -> &'static str {
    match code.unwrap_or_default() {
        "card_declined" | "generic_decline" | "do_not_honor" => "Your card was declined.",
        "insufficient_funds" => "Your card has insufficient funds.",
        "expired_card" => "Your card has expired.",
        "incorrect_cvc" | "invalid_cvc" => "Your card's security code was incorrect.",
        "incorrect_number" | "invalid_number" => "Your card number was incorrect.",
        "authentication_required" => "Your bank asked you to confirm the payment.",
        "processing_error" => "Your card could not be processed. Please try again.",
        "lost_card" | "stolen_card" | "pickup_card" => "Your card can no longer be used.",
        _ => "Your payment did not go through.",
    }
}

/// A card's brand as it is written (`Visa`, `Mastercard`, `American Express`).
pub fn brand_words(brand: &str) -> String {
    match brand {
        "visa" => "Visa".into(),
        "mastercard" => "Mastercard".into(),
        "amex" | "american express" => "American Express".into(),
        "discover" => "Discover".into(),
        "diners" | "diners club" => "Diners Club".into(),
        "jcb" => "JCB".into(),
        "unionpay" => "UnionPay".into(),
        other => {
            let mut c = other.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
    }
}

/// An amount in cents as money: `$22.00` for USD, `22.00 EUR` otherwise.
pub fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    let amount = format!("{}.{:02}", c / 100, c % 100);
    match currency {
        "USD" | "" => format!("{sign}${amount}"),
        other => format!("{sign}{amount} {other}"),
    }
}

/// The date that matters for an item, in words: "Renews on 3 January 2027" (active), "Trial
/// ends on …" (free trial), "Ends on …" (canceled: access until then), "Ended on …", "Payment
/// overdue since …" (past due); `None` without a period end (a free plan).
pub fn date_line(
    status: super::Status,
    is_free_trial: bool,
    period_end: Option<i64>,
    past_due_at: Option<i64>,
) -> Option<String> {
    use super::{dates::day_in_words, Status};
    if status == Status::PastDue {
        return past_due_at
            .or(period_end)
            .map(|t| format!("Payment overdue since {}", day_in_words(t)));
    }
    let end = day_in_words(period_end?);
    Some(match status {
        Status::Active if is_free_trial => format!("Trial ends on {end}"),
        Status::Active => format!("Renews on {end}"),
        Status::Canceled => format!("Ends on {end}"),
        Status::Ended | Status::Abandoned => format!("Ended on {end}"),
        Status::Upcoming => format!("Starts on {end}"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_date_that_matters_reads_in_words() {
        use crate::billing::Status;
        let end = Some(1_798_985_159_999); // 3 January 2027
        let due = Some(1_796_300_000_000); // 3 December 2026
        for (status, trial, words) in [
            (Status::Active, false, Some("Renews on 3 January 2027")),
            (Status::Active, true, Some("Trial ends on 3 January 2027")),
            (Status::Canceled, false, Some("Ends on 3 January 2027")),
            (Status::Canceled, true, Some("Ends on 3 January 2027")),
            (Status::Ended, false, Some("Ended on 3 January 2027")),
            (Status::Abandoned, false, Some("Ended on 3 January 2027")),
            (Status::Upcoming, false, Some("Starts on 3 January 2027")),
            (
                Status::PastDue,
                false,
                Some("Payment overdue since 3 December 2026"),
            ),
            (Status::Incomplete, false, None),
            (Status::Unknown, false, None),
        ] {
            assert_eq!(
                date_line(status, trial, end, due).as_deref(),
                words,
                "{status:?} {trial}"
            );
        }
        assert_eq!(
            date_line(Status::PastDue, false, end, None).as_deref(),
            Some("Payment overdue since 3 January 2027")
        );
        assert_eq!(date_line(Status::PastDue, false, None, None), None);
        assert_eq!(
            date_line(Status::Active, false, None, due),
            None,
            "a free plan"
        );
    }

    #[test]
    fn statuses_read_in_words() {
        use crate::billing::Status;
        let words: Vec<&str> = Status::ALL.iter().map(|s| s.words()).collect();
        assert_eq!(
            words,
            [
                "Starting soon",
                "Waiting for the first payment",
                "Active",
                "Payment overdue",
                "Canceled",
                "Not completed",
                "Ended",
                "Unknown"
            ]
        );
    }

    #[test]
    fn statuses_parse_rank_and_read() {
        for (s, p, rank, words) in [
            ("pending", PaymentStatus::Pending, 0, "Pending"),
            ("failed", PaymentStatus::Failed, 1, "Failed"),
            ("paid", PaymentStatus::Paid, 2, "Paid"),
        ] {
            assert_eq!(PaymentStatus::parse(s), Some(p));
            assert_eq!(p.as_str(), s);
            assert_eq!(p.rank(), rank);
            assert_eq!(p.words(), words);
        }
        for bad in ["", "PAID", "succeeded", "refunded"] {
            assert_eq!(PaymentStatus::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_codes_brands_and_four_digits_are_kept() {
        assert_eq!(code("card_declined").as_deref(), Some("card_declined"));
        assert_eq!(code("r2d2").as_deref(), Some("r2d2"));
        for bad in [
            "",
            "Card declined",
            "card 4242424242424242",
            "4242424242424242 ",
            "CARD_DECLINED",
            "card-declined",
            &"a".repeat(65),
        ] {
            assert_eq!(code(bad), None, "{bad}");
        }
        assert_eq!(code(&"a".repeat(64)).map(|c| c.len()), Some(64));
        assert_eq!(brand("Visa").as_deref(), Some("visa"));
        assert_eq!(brand(" diners club ").as_deref(), Some("diners club"));
        assert_eq!(brand("master-card_x").as_deref(), Some("master-card_x"));
        for bad in ["", "  ", "visa 4242", "<b>", "4242", &"v".repeat(25)] {
            assert_eq!(brand(bad), None, "{bad}");
        }
        assert_eq!(brand(&"v".repeat(24)).map(|b| b.len()), Some(24));
        assert_eq!(last4("4242").as_deref(), Some("4242"));
        for bad in [
            "",
            "424",
            "42424",
            "4242424242424242",
            "42a2",
            " 4242",
            "٤٢٤٢",
        ] {
            assert_eq!(last4(bad), None, "{bad}");
        }
        assert_eq!(currency("usd").as_deref(), Some("USD"));
        assert_eq!(currency("EUR").as_deref(), Some("EUR"));
        for bad in ["", "US", "USDT", "U$D", "€"] {
            assert_eq!(currency(bad), None, "{bad}");
        }
    }

    proptest! {
        /// No string that holds a run of five or more digits survives as a code or a brand, and
        /// nothing but exactly four digits survives as last4.
        #[test]
        fn no_card_number_survives(prefix in "[a-z_ ]{0,10}", digits in "[0-9]{5,19}", suffix in "[a-z_ ]{0,10}") {
            let s = format!("{prefix}{digits}{suffix}");
            prop_assert!(brand(&s).is_none());
            prop_assert!(last4(&s).is_none());
            if let Some(c) = code(&s) {
                // A code may hold digits, but then it is the whole value: never with a blank.
                prop_assert!(!c.contains(' '));
            }
        }
    }

    #[test]
    fn failures_read_in_words() {
        for (code, words) in [
            ("card_declined", "Your card was declined."),
            ("generic_decline", "Your card was declined."),
            ("do_not_honor", "Your card was declined."),
            ("insufficient_funds", "Your card has insufficient funds."),
            ("expired_card", "Your card has expired."),
            ("incorrect_cvc", "Your card's security code was incorrect."),
            ("invalid_cvc", "Your card's security code was incorrect."),
            ("incorrect_number", "Your card number was incorrect."),
            ("invalid_number", "Your card number was incorrect."),
            (
                "authentication_required",
                "Your bank asked you to confirm the payment.",
            ),
            (
                "processing_error",
                "Your card could not be processed. Please try again.",
            ),
            ("lost_card", "Your card can no longer be used."),
            ("stolen_card", "Your card can no longer be used."),
            ("pickup_card", "Your card can no longer be used."),
            ("something_new", "Your payment did not go through."),
        ] {
            assert_eq!(failure_words(Some(code)), words, "{code}");
        }
        assert_eq!(failure_words(None), "Your payment did not go through.");
    }

    #[test]
    fn brands_and_money_read_as_written() {
        for (b, w) in [
            ("visa", "Visa"),
            ("mastercard", "Mastercard"),
            ("amex", "American Express"),
            ("american express", "American Express"),
            ("discover", "Discover"),
            ("diners", "Diners Club"),
            ("diners club", "Diners Club"),
            ("jcb", "JCB"),
            ("unionpay", "UnionPay"),
            ("cartes bancaires", "Cartes bancaires"),
            ("", ""),
        ] {
            assert_eq!(brand_words(b), w, "{b}");
        }
        assert_eq!(money(2200, "USD"), "$22.00");
        assert_eq!(money(5, "USD"), "$0.05");
        assert_eq!(money(0, ""), "$0.00");
        assert_eq!(money(1999, "EUR"), "19.99 EUR");
        assert_eq!(money(-250, "USD"), "-$2.50");
    }

    #[test]
    fn a_settled_state_outranks_a_pending_one_at_the_same_time() {
        let p = |status, event_at| PaymentAttempt {
            id: "pa_1".into(),
            payer: ItemPayer {
                kind: crate::billing::PayerKind::User,
                id: "user_1".into(),
                user_id: Some("user_1".into()),
                email: None,
            },
            status,
            amount: 2000,
            currency: "USD".into(),
            charge_type: None,
            at: event_at,
            failed_code: None,
            card: None,
            statement_id: None,
            event_at,
        };
        let pending = p(PaymentStatus::Pending, 1_000).order_key("msg_b");
        let paid = p(PaymentStatus::Paid, 1_000).order_key("msg_a");
        let failed = p(PaymentStatus::Failed, 1_000).order_key("msg_c");
        assert!(pending < failed && failed < paid);
        let later_pending = p(PaymentStatus::Pending, 1_001).order_key("msg_a");
        assert!(
            paid < later_pending,
            "a later event wins whatever its status"
        );
    }
}
