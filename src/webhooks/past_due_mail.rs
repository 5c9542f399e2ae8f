//! The mail a delivery queues: the payment-failed message, composed from the item and the
//! event, redacted like everything stored.

use super::{events::ClerkEvent, redact::redact_text};
use crate::{billing::ItemState, page_data::format_date};

pub struct Composed {
    pub subject: String,
    pub body: String,
}

pub fn payment_failed(item: &ItemState, event: &ClerkEvent, manage_url: &str) -> Composed {
    let plan = item
        .plan_name
        .clone()
        .unwrap_or_else(|| item.plan_slug.clone());
    let amount = event
        .amount_formatted()
        .map(|a| format!(" of {a}"))
        .unwrap_or_default();
    let reason = event
        .failure_reason()
        .map(|r| format!("\nThe card issuer said: {r}\n"))
        .unwrap_or_default();
    let period = item
        .period_end
        .map(|e| format!(" for the period ending {}", format_date(e)))
        .unwrap_or_default();
    // Free text from the payload (plan names, the issuer's reason) is in it: whatever looks like
    // a card number is masked before the mail is queued, as in everything stored.
    let redact = |s: String| redact_text(&s);
    Composed {
        subject: redact(format!("Payment failed for your {plan} subscription")),
        body: redact(format!(
            "Hello,\n\nWe could not collect the payment{amount} for your {plan} subscription{period}.\n\
             {reason}\nYour subscription is now past due. Stripe will retry the charge automatically \
             over the next days; you do not need to do anything if the card is fine.\n\n\
             To update your card, open your account page:\n{manage_url}\n\n\
             plangate billing\n"
        )),
    }
}
