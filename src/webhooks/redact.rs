//! Removes card data from anything that is stored or mailed: payloads, failure reasons, mail
//! bodies. Clerk never sends card data; this is the belt to its braces, so it errs on the side
//! of masking.
//!
//! - **Card numbers in text.** A *digit run* is digits with separators between them (any
//!   whitespace, dashes of any kind, dots, slashes, underscores, backslashes; repeated or mixed).
//!   A run is masked whole when any window of 13–19 consecutive digits inside it passes Luhn,
//!   so a number followed by its expiry or CVC (`4242 4242 4242 4242 12/29`) and a number
//!   glued to other digits are caught, and the expiry or CVC go with it. Fullwidth digits count.
//! - **Card fields.** Keys naming a card number, CVC/CVV or expiry are dropped under any
//!   spelling: compared lowercased with `_`, `-`, `.` and spaces ignored (`cardNumber`,
//!   `card_number`, `expMonth`, `security-code`, …). Brand and last4 are kept.
//! - **Numbers.** An integer is a digit run too, except a time (13 digits or fewer under a key
//!   that names a time): millisecond timestamps are 13 digits and must survive.

use serde_json::{Map, Value};

use super::events::Change;

pub const MASK: &str = "[redacted]";

const MIN_PAN: usize = 13;
const MAX_PAN: usize = 19;

/// Normalised (see [`normalize_key`]) names that are dropped wherever they appear.
const CARD_KEYS: &[&str] = &[
    "cvv", "cvc", "cvv2", "cvc2", "cid", "csc", "cvn", "pan", "number", "exp", "expmm", "expyy",
    "expires",
];

/// Every fragment below contains one of these: most keys are dismissed after five searches.
const CARD_KEY_STEMS: &[&str] = &["cv", "card", "exp", "securitycode", "accountnumber"];

/// Fragments that make any normalised key a card field.
const CARD_KEY_PARTS: &[&str] = &[
    "cvv",
    "cvc",
    "securitycode",
    "cardnumber",
    "cardnum",
    "cardno",
    "accountnumber",
    "expiry",
    "expiration",
    "expmonth",
    "expyear",
    "expdate",
    "cardexp",
];

/// What a digit in a doubled position adds to the Luhn sum (2·d, its digits summed).
const DOUBLED: [u32; 10] = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9];

/// Luhn's check over digit values (0–9).
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                DOUBLED[usize::from(*d)]
            } else {
                u32::from(*d)
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether some window of 13–19 consecutive digits passes Luhn.
fn contains_pan(digits: &[u8]) -> bool {
    (0..digits.len()).any(|start| {
        (MIN_PAN..=MAX_PAN)
            .take_while(|len| start + len <= digits.len())
            .any(|len| luhn(&digits[start..start + len]))
    })
}

fn digit_value(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        // Fullwidth digits.
        '\u{FF10}'..='\u{FF19}' => Some((c as u32 - 0xFF10) as u8),
        _ => None,
    }
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '.' | '/' | '_' | '\\' | '\u{2010}'
                ..='\u{2015}'
                    | '\u{2212}'
                    | '\u{FE58}'
                    | '\u{FE63}'
                    | '\u{FF0D}'
                    | '\u{FF0E}'
                    | '\u{FF0F}'
                    | '\u{00B7}'
        )
}

/// Whether `s` holds 13 digits at all: no card number hides in fewer (most strings, ids
/// included, stop here after one pass).
fn enough_digits(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().filter(u8::is_ascii_digit).count() >= MIN_PAN
    } else {
        s.chars().filter(|c| digit_value(*c).is_some()).count() >= MIN_PAN
    }
}

/// Masks every digit run that holds a card number; `None` when nothing was masked.
fn redact_runs(s: &str) -> Option<String> {
    if !enough_digits(s) {
        return None;
    }
    let mut out: Option<String> = None;
    // Byte offset up to which `s` has been copied into `out`.
    let mut copied = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let Some(d) = digit_value(c) else { continue };
        // One run: digits, and separator sequences that are followed by a digit.
        let mut digits = vec![d];
        let mut last = (start, c);
        let mut lookahead = chars.clone();
        loop {
            while lookahead.next_if(|&(_, c)| is_separator(c)).is_some() {}
            let Some((i, c, d)) = lookahead
                .peek()
                .and_then(|&(i, c)| Some((i, c, digit_value(c)?)))
            else {
                break;
            };
            lookahead.next();
            digits.push(d);
            last = (i, c);
            chars = lookahead.clone();
        }
        if digits.len() >= MIN_PAN && contains_pan(&digits) {
            let end = last.0 + last.1.len_utf8();
            let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
            o.push_str(&s[copied..start]);
            o.push_str(MASK);
            copied = end;
        }
    }
    out.map(|mut o| {
        o.push_str(&s[copied..]);
        o
    })
}

/// Masks every card-number-like run inside free text.
pub fn redact_text(s: &str) -> String {
    redact_runs(s).unwrap_or_else(|| s.to_string())
}

/// Masks card numbers in `s` in place (no allocation when there are none).
pub fn redact_in_place(s: &mut String) {
    if let Some(r) = redact_runs(s) {
        *s = r;
    }
}

/// The change with card numbers masked in every string it will store (ids, plan names,
/// addresses): the state tables are data at rest too.
pub fn redact_change(mut change: Change) -> Change {
    match &mut change {
        Change::User { id, email, .. } => {
            redact_in_place(id);
            email.iter_mut().for_each(redact_in_place);
        }
        Change::Payment(p) => {
            // Codes, brand and last4 are validated shapes already; the ids and the payer are not.
            for s in [&mut p.id, &mut p.payer.id] {
                redact_in_place(s);
            }
            for s in [&mut p.payer.user_id, &mut p.payer.email] {
                s.iter_mut().for_each(redact_in_place);
            }
        }
        Change::Item(item) | Change::TrialEnding(item, _) => {
            let payer = &mut item.payer;
            for s in [&mut item.id, &mut item.plan_slug, &mut payer.id] {
                redact_in_place(s);
            }
            for s in [
                &mut item.subscription_id,
                &mut item.plan_name,
                &mut payer.user_id,
                &mut payer.email,
            ] {
                s.iter_mut().for_each(redact_in_place);
            }
        }
    }
    change
}

/// A key compared without case and without `_`, `-`, `.` or spaces.
fn normalize_key(key: &str) -> String {
    key.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// `f` of the normalised key; short ASCII keys (all of Clerk's) without an allocation.
fn with_normalized<R>(key: &str, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 64];
    if key.is_ascii() && key.len() <= buf.len() {
        let mut n = 0;
        for b in key
            .bytes()
            .filter(|b| !matches!(b, b'_' | b'-' | b'.' | b' '))
        {
            buf[n] = b.to_ascii_lowercase();
            n += 1;
        }
        f(std::str::from_utf8(&buf[..n]).unwrap_or_default())
    } else {
        f(&normalize_key(key))
    }
}

/// Whether a field under this key holds a card number, CVC or expiry.
pub fn is_card_key(key: &str) -> bool {
    with_normalized(key, |k| {
        CARD_KEYS.contains(&k)
            || (CARD_KEY_STEMS.iter().any(|s| k.contains(s))
                && CARD_KEY_PARTS.iter().any(|p| k.contains(p)))
    })
}

/// Keys holding times: their 13-digit millisecond numbers are never card numbers.
fn is_time_key(key: &str) -> bool {
    key.ends_with("_at")
        || key.ends_with("At")
        || with_normalized(key, |k| {
            k.ends_with("date") || k.contains("timestamp") || k.starts_with("period")
        })
}

/// How many digits an integer has; `None` for other numbers.
fn integer_digits(n: &serde_json::Number) -> Option<usize> {
    let magnitude = n.as_u64().or_else(|| n.as_i64().map(i64::unsigned_abs))?;
    Some(magnitude.checked_ilog10().map_or(1, |l| l as usize + 1))
}

fn redact_in(value: &mut Value, key: Option<&str>) {
    match value {
        Value::String(s) => redact_in_place(s),
        Value::Number(n) => {
            // An integer says its length without a string; a time (13 digits or fewer under
            // a key that names a time) stays.
            if let Some(d) = integer_digits(n) {
                if d < MIN_PAN || (d == MIN_PAN && key.is_some_and(is_time_key)) {
                    return;
                }
            }
            if redact_runs(&n.to_string()).is_some() {
                *value = Value::String(MASK.into());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_in(v, key)),
        Value::Object(map) => {
            let needs_rename = map.keys().any(|k| redact_runs(k).is_some());
            if needs_rename {
                let old = std::mem::take(map);
                *map = old
                    .into_iter()
                    .map(|(k, v)| (redact_runs(&k).unwrap_or(k), v))
                    .collect::<Map<_, _>>();
            }
            map.retain(|k, _| !is_card_key(k));
            for (k, v) in map.iter_mut() {
                redact_in(v, Some(k));
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// Keys of free text about a payment: the card issuer's words can carry an expiry or a CVC
/// that no pattern recognizes, so under a payment attempt they are never kept.
const FREE_TEXT_KEYS: &[&str] = &["message", "description", "declinemessage", "sellermessage"];

/// Drops the free text under a payment attempt (`failed_reason.message`, any `message` or
/// `description`, a `failed_reason` that is text rather than a code): `[redacted]` in its place.
fn drop_free_text(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let text = with_normalized(k, |k| FREE_TEXT_KEYS.contains(&k));
                let reason_text = k == "failed_reason"
                    && v.as_str()
                        .is_some_and(|r| crate::billing::payments::code(r).is_none());
                if (text && !v.is_null()) || reason_text {
                    *v = Value::String(MASK.into());
                } else {
                    drop_free_text(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(drop_free_text),
        _ => {}
    }
}

/// Whether a payload is about a payment attempt (its event type, or its data's object).
fn is_payment_attempt(value: &Value) -> bool {
    value
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.starts_with("paymentAttempt."))
        || value
            .pointer("/data/object")
            .and_then(Value::as_str)
            .is_some_and(|o| o.contains("payment_attempt"))
}

/// Returns the payload as it may be stored.
pub fn redact(mut value: Value) -> Value {
    redact_in(&mut value, None);
    if is_payment_attempt(&value) {
        if let Some(data) = value.get_mut("data") {
            drop_free_text(data);
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn free_text_about_a_payment_is_dropped_and_its_code_kept() {
        let v = redact(json!({
            "type": "paymentAttempt.updated",
            "data": {
                "object": "commerce_payment_attempt",
                "status": "failed",
                "failed_reason": {"code": "card_declined", "message": "exp 12/29 cvc 314", "decline_message": "x"},
                "payment_source": {"card_type": "visa", "last4": "4242", "Description": "card ending 12/29"},
                "subscription_items": [{"plan": {"name": "Pro", "description": "The API"}}],
                "note": null
            }
        }));
        let text = v.to_string();
        assert!(!text.contains("12/29") && !text.contains("314"), "{text}");
        assert_eq!(v["data"]["failed_reason"]["code"], "card_declined");
        assert_eq!(v["data"]["failed_reason"]["message"], MASK);
        assert_eq!(v["data"]["failed_reason"]["decline_message"], MASK);
        assert_eq!(v["data"]["payment_source"]["Description"], MASK);
        assert_eq!(
            v["data"]["subscription_items"][0]["plan"]["description"],
            MASK
        );
        assert_eq!(v["data"]["subscription_items"][0]["plan"]["name"], "Pro");
        assert_eq!(v["data"]["payment_source"]["last4"], "4242");
        let text_reason = redact(json!({"type": "paymentAttempt.created",
            "data": {"failed_reason": "declined, exp 12/29"}}));
        assert_eq!(text_reason["data"]["failed_reason"], MASK);
        let code_reason = redact(json!({"type": "paymentAttempt.created",
            "data": {"failed_reason": "insufficient_funds"}}));
        assert_eq!(code_reason["data"]["failed_reason"], "insufficient_funds");
        let by_object = redact(
            json!({"type": "x", "data": {"object": "commerce_payment_attempt", "message": "cvc 314"}}),
        );
        assert_eq!(by_object["data"]["message"], MASK);
        // Other events keep their descriptions (a plan's, a user's).
        let item = redact(json!({"type": "subscriptionItem.active",
            "data": {"object": "commerce_subscription_item", "plan": {"description": "The API"}}}));
        assert_eq!(item["data"]["plan"]["description"], "The API");
    }

    #[test]
    fn card_numbers_are_masked_wherever_they_appear() {
        let v = redact(json!({
            "a": "card 4242424242424242 declined",
            "b": 4242424242424242u64,
            "c": ["4242-4242-4242-4242", "5555 5555 5555 4444"],
            "payment_source": {"card_type": "visa", "last4": "4242", "cvc": "123", "exp_month": 12}
        }));
        let text = v.to_string();
        assert!(!text.contains("4242424242424242"), "{text}");
        assert!(!text.contains("4242-4242"), "{text}");
        assert!(!text.contains("5555 5555"), "{text}");
        assert!(
            !text.contains("cvc") && !text.contains("exp_month"),
            "{text}"
        );
        assert_eq!(v["payment_source"]["last4"], "4242");
        assert_eq!(v["payment_source"]["card_type"], "visa");
        assert_eq!(v["a"], "card [redacted] declined");
    }

    #[test]
    fn the_reviews_spellings_are_masked_with_what_follows_them() {
        for (input, expected) in [
            ("4242 4242 4242 4242 12/29", "[redacted]"),
            ("card 4111111111111111 123", "card [redacted]"),
            ("3782.822463.10005", "[redacted]"),
            ("amex 3782 822463 10005.", "amex [redacted]."),
            ("x4242--4242..4242//4242y", "x[redacted]y"),
            ("ref 99 4242424242424242 7", "ref [redacted]"),
            ("４２４２４２４２４２４２４２４２", "[redacted]"),
            ("4242\u{2013}4242\u{2013}4242\u{2013}4242", "[redacted]"),
            ("4242\t4242\n4242\u{a0}4242", "[redacted]"),
            ("2024-05-28 12:00", "2024-05-28 12:00"),
            // 16 digits with no passing 13–19 window.
            ("order 1234567890123457", "order 1234567890123457"),
        ] {
            assert_eq!(redact_text(input), expected, "{input:?}");
        }
    }

    #[test]
    fn a_card_number_inside_a_longer_digit_run_is_found() {
        // 4242424242424242 passes; the digits around it do not make a passing 13–19 window
        // of their own at the run's edges, so only the window check catches it.
        assert!(contains_pan(
            b"\x09\x04\x02\x04\x02\x04\x02\x04\x02\x04\x02\x04\x02\x04\x02\x04\x02\x04\x02"
                .as_slice()
        ));
        assert_eq!(redact_text("id 94242424242424242 end"), "id [redacted] end");
        assert!(!contains_pan(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2]));
    }

    #[test]
    fn card_fields_are_dropped_under_any_spelling() {
        let v = redact(json!({
            "cardNumber": "x", "card_number": "x", "Card-Number": "x", "PAN": "x",
            "expMonth": 1, "exp_month": 1, "EXP_YEAR": 29, "expiry": "12/29",
            "expirationDate": "x", "cvc": 1, "CVV": 1, "cvv2": 1, "securityCode": 1,
            "security_code": 1, "card": {"number": "x", "brand": "visa", "last4": "4242"},
            "brand": "visa", "last4": "4242"
        }));
        assert_eq!(
            v,
            json!({"card": {"brand": "visa", "last4": "4242"}, "brand": "visa", "last4": "4242"})
        );
    }

    #[test]
    fn changes_are_masked_in_every_string_they_store() {
        let pan = "4242 4242 4242 4242";
        let item = crate::billing::ItemState {
            id: format!("item {pan}"),
            subscription_id: Some(format!("sub {pan}")),
            payer: crate::billing::subscription::ItemPayer {
                kind: crate::billing::subscription::PayerKind::User,
                id: format!("payer {pan}"),
                user_id: Some(format!("user {pan}")),
                email: Some(format!("{pan}@example.com")),
            },
            plan_slug: format!("slug {pan}"),
            plan_name: Some(format!("Pro {pan}")),
            status: crate::billing::Status::Active,
            period_start: None,
            period_end: None,
            is_free_trial: false,
            canceled_at: None,
            past_due_at: None,
            event_at: 1,
            inferred: false,
            standing: Default::default(),
        };
        let Change::Item(masked) = redact_change(Change::Item(item)) else {
            unreachable!()
        };
        let text = format!("{masked:?}");
        assert!(!text.contains("4242"), "{text}");
        assert_eq!(masked.plan_name.as_deref(), Some("Pro [redacted]"));
        let user = redact_change(Change::User {
            id: format!("user_{pan}"),
            email: Some(format!("a{pan}@x.com")),
            deleted: false,
            event_at: 1,
        });
        assert!(!format!("{user:?}").contains("4242"), "{user:?}");
    }

    #[test]
    fn luhn_agrees_with_known_numbers() {
        let d = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<u8>>();
        for valid in [
            "4242424242424242",
            "79927398713",
            "378282246310005",
            "0",
            "18",
            "59",
        ] {
            assert!(luhn(&d(valid)), "{valid}");
        }
        for invalid in ["4242424242424241", "79927398710", "1", "19", "58"] {
            assert!(!luhn(&d(invalid)), "{invalid}");
        }
    }

    #[test]
    fn thirteen_digit_times_survive_under_every_spelling_of_a_time_key() {
        // 4222222222222 passes Luhn: outside a time key it is masked.
        for key in [
            "created_at",
            "updatedAt",
            "billing_date",
            "NextPaymentDate",
            "timestamp",
            "event_timestamp_ms",
            "period_end",
            "periodStart",
        ] {
            let v = json!({ key: 4222222222222u64 });
            assert_eq!(redact(v.clone()), v, "{key}");
        }
        for key in ["n", "created", "at", "amount", "date_of"] {
            assert_eq!(
                redact(json!({ key: 4222222222222u64 })),
                json!({ key: MASK }),
                "{key}"
            );
        }
        // Longer numbers are never times, whatever the key.
        assert_eq!(
            redact(json!({"created_at": 42222222222222u64 * 10 + 4})),
            json!({"created_at": MASK})
        );
        // A card number's last digit is masked too (the run ends at its last digit).
        assert_eq!(redact_text("x 4242424242424242"), "x [redacted]");
        assert_eq!(
            redact_text("x ４２４２４２４２４２４２４２４２!"),
            "x [redacted]!"
        );
    }

    #[test]
    fn every_card_key_fragment_has_a_stem() {
        for p in CARD_KEY_PARTS {
            assert!(CARD_KEY_STEMS.iter().any(|s| p.contains(s)), "{p}");
        }
    }

    #[test]
    fn numbers_are_judged_by_their_digits() {
        let n = |v: Value| match v {
            Value::Number(n) => n,
            _ => unreachable!(),
        };
        assert_eq!(integer_digits(&n(json!(0))), Some(1));
        assert_eq!(integer_digits(&n(json!(9))), Some(1));
        assert_eq!(integer_digits(&n(json!(10))), Some(2));
        assert_eq!(integer_digits(&n(json!(-4242424242424242i64))), Some(16));
        assert_eq!(integer_digits(&n(json!(u64::MAX))), Some(20));
        assert_eq!(integer_digits(&n(json!(1.5))), None);
        // A negative card number and a float that spells one are masked too.
        assert_eq!(
            redact(json!({"n": -4242424242424242i64})),
            json!({"n": MASK})
        );
        assert_eq!(redact(json!({"n": 4242424242424242.0})), json!({"n": MASK}));
        assert!(!enough_digits("123456789012"));
        assert!(enough_digits("1234567890123"));
        assert!(enough_digits("１２３４５６７８９０１２３"));
        assert!(!enough_digits("１２３４５６７８９０１２"));
        // Long keys and non-ASCII keys are normalised the slow way, to the same answer.
        assert!(is_card_key(&format!("{}_card_number", "x".repeat(80))));
        assert!(is_card_key("Kártya_cardNumber"));
        assert!(!is_card_key(&"x".repeat(80)));
    }

    #[test]
    fn a_key_that_is_both_a_card_number_and_a_card_field_is_dropped() {
        // Found by the property test: the key reads as `…cvv` once normalised.
        assert_eq!(redact(json!({"4000000000000002cVv": 1})), json!({}));
    }

    #[test]
    fn keys_that_hold_card_numbers_are_masked() {
        let v = redact(json!({"4242424242424242": true}));
        assert_eq!(v, json!({"[redacted]": true}));
    }

    #[test]
    fn ids_timestamps_and_non_luhn_runs_are_kept() {
        let v = json!({
            "created_at": 1716883200000u64,
            "updatedAt": 1716883200000u64,
            "amount": 2000,
            "id": "pa_2g7np7Hrk0SN6kj5EDMLDaKNL0S",
            "ref": "1234567890123457",
            "expires_at": 1716883200000u64
        });
        assert_eq!(redact(v.clone()), v);
        // The same 13 digits outside a time key are a card number's length: masked if Luhn.
        assert!(luhn(&[4, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]));
        assert_eq!(redact(json!({"n": 4222222222222u64})), json!({"n": MASK}));
        assert_eq!(
            redact(json!({"created_at": 4222222222222u64})),
            json!({"created_at": 4222222222222u64})
        );
    }

    #[test]
    fn clerks_example_payloads_are_not_altered() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/clerk");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            // Under a payment attempt, free text (here a plan's description) is all that goes.
            let mut expected = v.clone();
            if path.to_string_lossy().contains("paymentAttempt") {
                fn mask(v: &mut Value) {
                    match v {
                        Value::Object(m) => m.iter_mut().for_each(|(k, v)| {
                            if k == "description" || k == "message" {
                                *v = Value::String(MASK.into());
                            } else {
                                mask(v);
                            }
                        }),
                        Value::Array(a) => a.iter_mut().for_each(mask),
                        _ => {}
                    }
                }
                mask(&mut expected);
                assert_ne!(expected, v, "the example has free text to drop");
            }
            assert_eq!(redact(v.clone()), expected, "{}", path.display());
            n += 1;
        }
        assert!(n >= 18, "all of Clerk's examples are read ({n})");
    }

    /// A valid PAN: `prefix`, random body digits, Luhn check digit, `len` digits in all.
    fn pan(prefix: &str, len: usize, body: &[u8]) -> Vec<u8> {
        let mut d: Vec<u8> = prefix.bytes().map(|b| b - b'0').collect();
        d.extend(body.iter().take(len - 1 - d.len()));
        while d.len() < len - 1 {
            d.push(0);
        }
        for check in 0..10 {
            d.push(check);
            if luhn(&d) {
                return d;
            }
            d.pop();
        }
        unreachable!()
    }

    /// The networks' prefixes and lengths.
    fn network() -> impl Strategy<Value = (&'static str, usize)> {
        prop_oneof![
            Just(("4", 16)),
            Just(("4", 13)),
            Just(("4", 19)),
            Just(("51", 16)),
            Just(("2221", 16)),
            Just(("34", 15)),
            Just(("37", 15)),
            Just(("6011", 16)),
            Just(("65", 19)),
            Just(("3528", 16)),
            Just(("36", 14)),
            Just(("62", 17)),
        ]
    }

    fn separator() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just(String::new()),
            "[ .\\-/_]{1,3}",
            Just("\u{2013}".to_string()),
            Just("\t".to_string()),
            Just(" - ".to_string()),
        ]
    }

    /// A PAN spelled with random separators between random groups.
    fn spelled_pan() -> impl Strategy<Value = (String, String)> {
        (
            network(),
            prop::collection::vec(0u8..10, 18),
            prop::collection::vec(separator(), 19),
            any::<bool>(),
        )
            .prop_map(|((prefix, len), body, seps, fullwidth)| {
                let digits = pan(prefix, len, &body);
                let plain: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
                let mut spelled = String::new();
                for (i, d) in digits.iter().enumerate() {
                    if i > 0 {
                        spelled.push_str(&seps[i]);
                    }
                    let c = if fullwidth {
                        char::from_u32(0xFF10 + u32::from(*d)).unwrap()
                    } else {
                        char::from(b'0' + d)
                    };
                    spelled.push(c);
                }
                (plain, spelled)
            })
    }

    proptest! {
        #[test]
        fn no_card_number_survives_in_any_spelling_inside_any_text(
            (plain, spelled) in spelled_pan(),
            before in "[a-zA-Z :;,()#]{0,12}",
            after in "[a-zA-Z :;,()#]{0,12}",
            glued_before in "[0-9]{0,3}",
            glued_after in prop_oneof![Just(String::new()), "[ /]?[0-9]{2}/[0-9]{2}", " [0-9]{3,4}"],
            as_key in any::<bool>(),
        ) {
            let text = format!("{before}{glued_before}{spelled}{glued_after}{after}");
            let v = if as_key { json!({ text.clone(): 1 }) } else { json!({ "reason": text.clone() }) };
            let stored = redact(v).to_string();
            let digits: String = stored.chars().filter_map(digit_value).map(|d| char::from(b'0' + d)).collect();
            prop_assert!(!digits.contains(&plain), "{text:?} stored as {stored}");
            // Masked, or dropped whole: a key the text turns into a card field (`…cvv`).
            let dropped = as_key && is_card_key(&text);
            prop_assert!(stored.contains(MASK) || dropped, "{text:?} stored as {stored}");
        }

        #[test]
        fn card_numbers_as_json_numbers_never_survive(
            (plain, _) in spelled_pan(),
            key in "[a-z]{1,8}",
        ) {
            prop_assume!(plain.len() <= 19 && plain.parse::<u64>().is_ok());
            let n: u64 = plain.parse().unwrap();
            let stored = redact(json!({ key: n })).to_string();
            prop_assert!(!stored.contains(&plain), "{stored}");
        }

        #[test]
        fn text_without_a_passing_window_is_kept(s in "[a-zA-Z0-9 :_]{0,40}") {
            let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
            prop_assume!(digits.len() < MIN_PAN);
            prop_assert_eq!(redact_text(&s), s);
        }
    }
}
