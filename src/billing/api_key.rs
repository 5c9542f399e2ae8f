//! An API key's verification answer (Clerk's `POST /v1/api_keys/verify`) as a verdict: whose
//! key it is, or refused. Pure: the caller (`auth::api_keys`) asks, caches and passes `now` in.

use serde_json::Value;

use super::Payer;

/// What the Backend API said of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict {
    /// A live key of this payer.
    Valid(Payer),
    /// Unknown, revoked, expired, or of no payer this app knows.
    Refused,
}

/// Clerk's answer about a key as a verdict: live (not revoked, not expired, no `expiration` at or
/// before `now_ms`) and its `subject` a user or an organization; anything else is refused.
pub fn verdict(answer: &Value, now_ms: i64) -> KeyVerdict {
    let flag = |k: &str| answer.get(k).and_then(Value::as_bool);
    if flag("revoked") != Some(false) || flag("expired") != Some(false) {
        return KeyVerdict::Refused;
    }
    match answer.get("expiration") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_i64() {
            Some(at) if at > now_ms => {}
            _ => return KeyVerdict::Refused,
        },
    }
    let subject = answer.get("subject").and_then(Value::as_str).unwrap_or("");
    let kind = if subject.starts_with("user_") {
        "user"
    } else if subject.starts_with("org_") {
        "org"
    } else {
        return KeyVerdict::Refused;
    };
    Payer::from_parts(kind, subject).map_or(KeyVerdict::Refused, KeyVerdict::Valid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(subject: &str) -> Value {
        json!({"id": "ak_id_1", "subject": subject, "revoked": false, "expired": false,
               "expiration": null, "scopes": [], "claims": null})
    }

    #[test]
    fn a_live_key_names_its_payer_and_anything_else_is_refused() {
        assert_eq!(
            verdict(&live("user_1"), 5),
            KeyVerdict::Valid(Payer::user("user_1"))
        );
        assert_eq!(
            verdict(&live("org_1"), 5),
            KeyVerdict::Valid(Payer::org("org_1"))
        );
        let mut a = live("user_1");
        a["expiration"] = json!(6);
        assert_eq!(verdict(&a, 5), KeyVerdict::Valid(Payer::user("user_1")));
        for (k, v) in [
            ("revoked", json!(true)),
            ("revoked", json!(null)),
            ("revoked", json!("false")),
            ("expired", json!(true)),
            ("expired", json!(null)),
            ("expiration", json!(5)),
            ("expiration", json!(4)),
            ("expiration", json!("soon")),
            ("subject", json!("mch_1")),
            ("subject", json!("user_../x")),
            ("subject", json!("")),
            ("subject", json!(null)),
            ("subject", json!(7)),
        ] {
            let mut a = live("user_1");
            a[k] = v.clone();
            assert_eq!(verdict(&a, 5), KeyVerdict::Refused, "{k}: {v}");
        }
        let mut missing = live("user_1");
        missing.as_object_mut().unwrap().remove("revoked");
        assert_eq!(verdict(&missing, 5), KeyVerdict::Refused);
    }
}
