//! Removes card data from a payload before it is stored: digit runs that look like card numbers
//! (13–19 digits passing Luhn, spaces or dashes allowed between digits) and CVV/expiry fields.
//! Brand and last4 are kept; Clerk never sends more, this is the belt to its braces.

use serde_json::Value;

const DROPPED_KEYS: &[&str] = &[
    "cvv",
    "cvc",
    "cvv2",
    "cvc2",
    "cid",
    "security_code",
    "card_security_code",
    "card_number",
    "number",
    "pan",
    "exp_month",
    "exp_year",
    "expiry",
    "expiry_month",
    "expiry_year",
    "expiration",
    "expiration_date",
    "expiration_month",
    "expiration_year",
    "exp_date",
    "exp",
];

pub const MASK: &str = "[redacted]";

pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn looks_like_pan(digits: &[u8]) -> bool {
    (13..=19).contains(&digits.len()) && luhn(digits)
}

/// Masks every card-number-like run inside free text.
pub fn redact_text(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            // A run: digits, with single spaces or dashes between digits.
            let start = i;
            let mut digits = Vec::new();
            let mut end = i;
            let mut j = i;
            while j < bytes.len() {
                if bytes[j].is_ascii_digit() {
                    digits.push(bytes[j] - b'0');
                    j += 1;
                    end = j;
                } else if (bytes[j] == b' ' || bytes[j] == b'-')
                    && j + 1 < bytes.len()
                    && bytes[j + 1].is_ascii_digit()
                {
                    j += 1;
                } else {
                    break;
                }
            }
            if looks_like_pan(&digits) {
                out.push_str(MASK);
            } else {
                out.push_str(&s[start..end]);
            }
            i = end;
        } else {
            let ch = s[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Keys holding times are 13-digit millisecond numbers; never mistake them for card numbers.
fn is_time_key(key: &str) -> bool {
    key.ends_with("_at")
        || key.ends_with("_date")
        || key.ends_with("timestamp")
        || key.starts_with("period_")
}

fn redact_in(value: &mut Value, key: Option<&str>) {
    match value {
        Value::String(s) => {
            let r = redact_text(s);
            if r != *s {
                *s = r;
            }
        }
        Value::Number(n) => {
            if key.is_some_and(is_time_key) {
                return;
            }
            let text = n.to_string();
            if text.bytes().all(|b| b.is_ascii_digit()) {
                let digits: Vec<u8> = text.bytes().map(|b| b - b'0').collect();
                if looks_like_pan(&digits) {
                    *value = Value::String(MASK.into());
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_in(v, key)),
        Value::Object(map) => {
            map.retain(|k, _| !DROPPED_KEYS.contains(&k.to_ascii_lowercase().as_str()));
            for (k, v) in map.iter_mut() {
                redact_in(v, Some(k));
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// Returns the payload as it may be stored.
pub fn redact(mut value: Value) -> Value {
    redact_in(&mut value, None);
    value
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
    }

    #[test]
    fn ids_timestamps_and_non_luhn_runs_are_kept() {
        let v = json!({
            "created_at": 1716883200000u64,
            "amount": 2000,
            "id": "pa_2g7np7Hrk0SN6kj5EDMLDaKNL0S",
            "ref": "1234567890123456"
        });
        assert_eq!(redact(v.clone()), v);
    }
}
