//! The mail a delivery queues: the payment-failed message, composed from the item and the
//! event, redacted like everything stored.

use super::{
    events::{ClerkEvent, Interval},
    redact::redact_text,
};
use crate::billing::{
    dates::day_in_words,
    payments::{failure_words, money},
    Catalog, ItemState,
};

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
        .failure_code()
        .map(|c| format!("\n{}\n", failure_words(Some(&c))))
        .unwrap_or_default();
    let period = item
        .period_end
        .map(|e| format!(" for the period ending {}", day_in_words(e)))
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
             To update your payment method, open your account page:\n{manage_url}\n\n\
             plangate billing\n"
        )),
    }
}

/// The reminder Clerk's `subscriptionItem.freeTrialEnding` asks for (three days ahead): the
/// plan, the day the trial ends, the price after it (from `plans.toml`), and where to cancel.
pub fn trial_ending(
    item: &ItemState,
    ends: i64,
    interval: Interval,
    catalog: &Catalog,
    manage_url: &str,
) -> Composed {
    let plan = catalog.plan(&item.plan_slug);
    let name = plan
        .map(|p| p.name.clone())
        .or_else(|| item.plan_name.clone())
        .unwrap_or_else(|| item.plan_slug.clone());
    let day = day_in_words(ends);
    // The price the card will be charged: the item's own interval's.
    let annual = interval == Interval::Annual;
    let price = match plan.map(|p| p.price_cents(annual)) {
        Some(cents) if cents > 0 => format!(
            "{} {}",
            money(i64::from(cents), "USD"),
            if annual { "a year" } else { "a month" }
        ),
        _ => "the plan's price".into(),
    };
    Composed {
        subject: redact_text(&format!("Your {name} trial ends on {day}")),
        body: redact_text(&format!(
            "Hello,\n\nYour free trial of {name} ends on {day}. After that, your card is charged \
             {price} unless you cancel before then.\n\n\
             To keep {name}, you do not need to do anything. To cancel or change your plan, open \
             your account page:\n{manage_url}\n\n\
             plangate billing\n"
        )),
    }
}
