//! The operator console's rules (README, "Operator console"), pure: what a recent enough
//! sign-in is, how each action's form fields are read (and refused), where an action's answer
//! may send the browser back to, and how an action is written in the audit log.

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use super::Payer;

/// Clerk's `strict` reverification: the second factor (or the first, when none is enrolled)
/// verified strictly less than this many minutes ago.
pub const REVERIFY_MINUTES: i32 = 10;
/// The most units one grant may add.
pub const MAX_GRANT_UNITS: u64 = super::plans::MAX_UNITS;
/// How far ahead a free trial may be extended to, in days.
pub const MAX_TRIAL_DAYS_AHEAD: i64 = 365;

const DAY_MS: i64 = 86_400_000;

/// Whether a session may act in the console now: Clerk's `strict` reverification (`second_factor`,
/// [`REVERIFY_MINUTES`]) over its token's `fva` (`[first, second]` factor ages in minutes, `-1`
/// not enrolled; `None` absent or malformed), decided by the same check as a gate's
/// `reverification` (`authorization::check_reverification`). Unknown fails.
pub fn recently_verified(fva: Option<[i32; 2]>) -> bool {
    use super::authorization::{
        check_reverification, Ask, AuthObject, Check, Level, Reverification,
    };
    let strict = Reverification {
        level: Level::SecondFactor,
        after_minutes: i64::from(REVERIFY_MINUTES),
    };
    let auth = AuthObject {
        factor_verification_age: fva.map(|[a, b]| [i64::from(a), i64::from(b)]),
        ..AuthObject::default()
    };
    let ask = Ask {
        reverification: Some(Some(strict)),
        ..Ask::default()
    };
    check_reverification(&ask, &auth) == Check::Pass
}

/// One console action, read from its route and form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Reconcile {
        payer: Payer,
    },
    Replay {
        svix_id: String,
    },
    Cancel {
        item_id: String,
        end_now: bool,
    },
    ExtendTrial {
        item_id: String,
        extend_to: i64,
    },
    Grant {
        payer: Payer,
        feature: String,
        units: u64,
    },
}

impl Action {
    /// The action's name in the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Reconcile { .. } => "reconcile",
            Action::Replay { .. } => "replay",
            Action::Cancel { .. } => "cancel",
            Action::ExtendTrial { .. } => "extend_trial",
            Action::Grant { .. } => "grant",
        }
    }

    /// What it acts on: `user:<id>`, `org:<id>`, `item:<id>` or `delivery:<svix id>`.
    pub fn target(&self) -> String {
        match self {
            Action::Reconcile { payer } | Action::Grant { payer, .. } => payer.label(),
            Action::Replay { svix_id } => format!("delivery:{svix_id}"),
            Action::Cancel { item_id, .. } | Action::ExtendTrial { item_id, .. } => {
                format!("item:{item_id}")
            }
        }
    }

    /// Its parameters, `key=value` separated by spaces (empty when it has none).
    pub fn params(&self) -> String {
        match self {
            Action::Reconcile { .. } | Action::Replay { .. } => String::new(),
            Action::Cancel { end_now, .. } => format!("end_now={end_now}"),
            Action::ExtendTrial { extend_to, .. } => format!("extend_to={}", rfc3339(*extend_to)),
            Action::Grant { feature, units, .. } => format!("feature={feature} units={units}"),
        }
    }
}

/// Why a form was refused before anything was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("end_now must be `true` or `false`")]
    EndNow,
    #[error("extend_to must be a date and time in RFC 3339, e.g. 2027-01-31T00:00:00Z")]
    ExtendTo,
    #[error("extend_to must be in the future")]
    ExtendToPast,
    #[error("extend_to must be at most 365 days ahead")]
    ExtendToFar,
    #[error("extend_to must be later than the trial's current end (extending only extends)")]
    ExtendToNotLater,
    #[error("this item has no free trial known here to extend")]
    NoTrial,
    #[error("units must be a whole number from 1 to 1000000000000")]
    Units,
    #[error("this feature has no usage limit to grant units of")]
    Feature,
}

impl FormError {
    /// The error's code in the answer.
    pub fn code(self) -> &'static str {
        match self {
            FormError::EndNow => "invalid_end_now",
            FormError::ExtendTo
            | FormError::ExtendToPast
            | FormError::ExtendToFar
            | FormError::ExtendToNotLater
            | FormError::NoTrial => "invalid_extend_to",
            FormError::Units => "invalid_units",
            FormError::Feature => "invalid_feature",
        }
    }
}

/// `end_now`: exactly `true` or `false` (a cancel that ends access now is never guessed).
pub fn end_now(field: Option<&str>) -> Result<bool, FormError> {
    match field {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err(FormError::EndNow),
    }
}

/// `extend_to`: an RFC 3339 time after `now_ms` and at most [`MAX_TRIAL_DAYS_AHEAD`] days
/// ahead, in ms.
pub fn extend_to(field: Option<&str>, now_ms: i64) -> Result<i64, FormError> {
    let t = OffsetDateTime::parse(field.unwrap_or_default().trim(), &Rfc3339)
        .map_err(|_| FormError::ExtendTo)?;
    let ms =
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| FormError::ExtendTo)?;
    if ms <= now_ms {
        return Err(FormError::ExtendToPast);
    }
    if ms > now_ms + MAX_TRIAL_DAYS_AHEAD * DAY_MS {
        return Err(FormError::ExtendToFar);
    }
    Ok(ms)
}

/// An extension of a trial that ends at `trial_end` (`None`: no trial known) to `extend_to`:
/// later than the current end and at most [`MAX_TRIAL_DAYS_AHEAD`] days after it.
pub fn extends_trial(extend_to: i64, trial_end: Option<i64>) -> Result<(), FormError> {
    let end = trial_end.ok_or(FormError::NoTrial)?;
    if extend_to <= end {
        return Err(FormError::ExtendToNotLater);
    }
    if extend_to > end.saturating_add(MAX_TRIAL_DAYS_AHEAD * DAY_MS) {
        return Err(FormError::ExtendToFar);
    }
    Ok(())
}

/// `units`: decimal digits only, no leading zero, from 1 to [`MAX_GRANT_UNITS`].
pub fn units(field: Option<&str>) -> Result<u64, FormError> {
    let s = field.unwrap_or_default();
    if s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FormError::Units);
    }
    s.parse::<u64>()
        .ok()
        .filter(|u| (1..=MAX_GRANT_UNITS).contains(u))
        .ok_or(FormError::Units)
}

/// Where an action's `303` goes: the console page the form named, if it is one (`/admin`, or
/// a path under it made of letters, digits, `_`, `-` and single `/`); else `/admin`. Never
/// another origin, never outside the console.
pub fn back_to(field: Option<&str>) -> &str {
    match field {
        Some(p)
            if (p == "/admin" || p.starts_with("/admin/"))
                && p.len() <= 200
                && !p.contains("//")
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-')) =>
        {
            p
        }
        _ => "/admin",
    }
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; what it did, in a few words.
    Done(String),
    /// Clerk's Backend API answered this status (nothing changed on Clerk's side).
    RefusedByClerk(u16),
    /// The console refused before acting (the reason's code).
    Refused(&'static str),
    /// It could not be done (a database error, a delivery that still cannot be applied): why.
    Failed(String),
    /// Asked of Clerk and not answered yet: the audit row written before the call.
    Pending,
    /// Asked of Clerk, and whether Clerk acted cannot be known (a timeout, a lost connection,
    /// a 5xx): never "nothing changed".
    Unknown(String),
}

impl Outcome {
    /// The result column of the audit log: `done`, `done: …`, `refused_by_clerk: 422`,
    /// `refused: <code>`, `failed: …`, `pending`, `unknown: …`.
    pub fn audit(&self) -> String {
        match self {
            Outcome::Done(d) if d.is_empty() => "done".into(),
            Outcome::Done(d) => format!("done: {d}"),
            Outcome::RefusedByClerk(s) => format!("refused_by_clerk: {s}"),
            Outcome::Refused(code) => format!("refused: {code}"),
            Outcome::Failed(why) => format!("failed: {why}"),
            Outcome::Pending => "pending".into(),
            Outcome::Unknown(why) => format!("unknown: {why}"),
        }
    }

    /// The notice the console shows after the action, in plain words.
    pub fn notice(&self, action: &Action) -> String {
        let what = match action {
            Action::Reconcile { .. } => "Reconcile",
            Action::Replay { .. } => "Replay",
            Action::Cancel { end_now: true, .. } => "Cancel now",
            Action::Cancel { end_now: false, .. } => "Cancel at period end",
            Action::ExtendTrial { .. } => "Extend trial",
            Action::Grant { .. } => "Grant units",
        };
        match self {
            Outcome::Done(d) if d.is_empty() => format!("{what}: done."),
            Outcome::Done(d) => format!("{what}: done ({d})."),
            Outcome::RefusedByClerk(s) => {
                format!("{what}: Clerk refused it (HTTP {s}); nothing changed.")
            }
            Outcome::Refused(code) => format!("{what}: refused ({code}); nothing was done."),
            Outcome::Failed(why) => format!("{what}: failed ({why})."),
            Outcome::Pending => format!("{what}: asked of Clerk; the answer is not in yet."),
            Outcome::Unknown(why) => format!(
                "{what}: whether Clerk acted is not known ({why}); check the item before trying again."
            ),
        }
    }
}

/// What a Backend API call that did not succeed means for the audit log: a `4xx` is Clerk's
/// refusal (nothing changed there); a `5xx`, a timeout or a lost connection (`status` `None`,
/// `why` says which) leaves the outcome unknown.
pub fn clerk_failure(status: Option<u16>, why: &str) -> Outcome {
    match status {
        Some(s @ 400..=499) => Outcome::RefusedByClerk(s),
        Some(s) => Outcome::Unknown(format!("Clerk answered {s}")),
        None => Outcome::Unknown(why.to_string()),
    }
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// When, ms since the epoch.
    pub at: i64,
    pub operator: String,
    pub action: String,
    pub target: String,
    pub params: String,
    pub result: String,
}

impl AuditEntry {
    pub fn new(at: i64, operator: &str, action: &Action, outcome: &Outcome) -> AuditEntry {
        AuditEntry {
            at,
            operator: operator.into(),
            action: action.name().into(),
            target: action.target(),
            params: action.params(),
            result: outcome.audit(),
        }
    }

    /// `plangate audit`'s line: `<RFC 3339> <operator> <action> <target> <result>`.
    pub fn line(&self) -> String {
        format!(
            "{} {} {} {} {}",
            rfc3339(self.at),
            self.operator,
            self.action,
            self.target,
            self.result
        )
    }
}

/// `ms` as RFC 3339 in UTC, whole seconds (`2026-12-03T12:44:15Z`).
pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_796_300_000_000; // 2026-12-03T…Z

    #[test]
    fn clerks_strict_rule_reads_the_second_factor_when_enrolled_else_the_first() {
        for ok in [[0, -1], [9, -1], [500, 0], [500, 9], [0, 9], [-1, 3]] {
            assert!(recently_verified(Some(ok)), "{ok:?}");
        }
        for refused in [
            [10, -1],
            [11, -1],
            [0, 500],
            [0, 10],
            [-1, -1],
            [-1, 10],
            [-5, -1],
            [3, -2],
            [i32::MAX, -1],
            [i32::MIN, -1],
            [0, i32::MIN],
        ] {
            assert!(!recently_verified(Some(refused)), "{refused:?}");
        }
        assert!(!recently_verified(None), "unknown");
    }

    #[test]
    fn end_now_is_true_or_false_and_nothing_else() {
        assert_eq!(end_now(Some("true")), Ok(true));
        assert_eq!(end_now(Some("false")), Ok(false));
        for bad in ["", "TRUE", "1", "yes", "on", " true", "false ", "0"] {
            assert_eq!(end_now(Some(bad)), Err(FormError::EndNow), "{bad:?}");
        }
        assert_eq!(end_now(None), Err(FormError::EndNow));
    }

    #[test]
    fn extend_to_is_rfc3339_in_the_future_and_within_a_year() {
        let day = |d: i64| NOW + d * DAY_MS;
        let text = |ms: i64| rfc3339(ms);
        assert_eq!(
            extend_to(Some(&text(day(7))), NOW),
            Ok(day(7) / 1000 * 1000)
        );
        // Offsets are read as such.
        assert_eq!(
            extend_to(Some("2027-01-10T02:00:00+02:00"), NOW),
            Ok(extend_to(Some("2027-01-10T00:00:00Z"), NOW).unwrap())
        );
        assert_eq!(
            extend_to(Some(" 2027-01-10T00:00:00Z "), NOW),
            extend_to(Some("2027-01-10T00:00:00Z"), NOW),
            "surrounding blanks are no reason to refuse"
        );
        for bad in [
            "",
            "tomorrow",
            "2027-01-10",
            "2027-01-10T00:00",
            "2027-01-10 00:00:00",
            "1799999999999",
            "2027-13-01T00:00:00Z",
            "2027-02-30T00:00:00Z",
        ] {
            assert_eq!(
                extend_to(Some(bad), NOW),
                Err(FormError::ExtendTo),
                "{bad:?}"
            );
        }
        assert_eq!(extend_to(None, NOW), Err(FormError::ExtendTo));
        assert_eq!(
            extend_to(Some(&text(NOW)), NOW),
            Err(FormError::ExtendToPast)
        );
        assert_eq!(
            extend_to(Some(&text(day(-1))), NOW),
            Err(FormError::ExtendToPast)
        );
        assert_eq!(
            extend_to(Some(&text(day(365))), NOW),
            Ok(day(365) / 1000 * 1000)
        );
        assert_eq!(
            extend_to(Some(&text(day(366))), NOW),
            Err(FormError::ExtendToFar)
        );
        for e in [
            FormError::ExtendTo,
            FormError::ExtendToPast,
            FormError::ExtendToFar,
        ] {
            assert_eq!(e.code(), "invalid_extend_to");
        }
        assert_eq!(FormError::EndNow.code(), "invalid_end_now");
        assert_eq!(FormError::Units.code(), "invalid_units");
        assert_eq!(FormError::Feature.code(), "invalid_feature");
    }

    #[test]
    fn units_are_whole_numbers_from_one_to_a_trillion() {
        assert_eq!(units(Some("1")), Ok(1));
        assert_eq!(units(Some("250")), Ok(250));
        assert_eq!(units(Some("1000000000000")), Ok(MAX_GRANT_UNITS));
        assert_eq!(units(Some("1000000000001")), Err(FormError::Units));
        assert_eq!(units(Some("9223372036854775807")), Err(FormError::Units));
        for bad in [
            "",
            "0",
            "05",
            "0000005",
            "-5",
            "+5",
            "1e3",
            "2.5",
            " 5",
            "5 ",
            "0x10",
            "99999999999999999999",
            "١٢",
        ] {
            assert_eq!(units(Some(bad)), Err(FormError::Units), "{bad:?}");
        }
        assert_eq!(units(None), Err(FormError::Units));
    }

    #[test]
    fn back_goes_only_to_a_console_page() {
        for ok in [
            "/admin",
            "/admin/dead-letters",
            "/admin/payers/user/user_2abc",
            "/admin/payers/org/org_x-1",
        ] {
            assert_eq!(back_to(Some(ok)), ok);
        }
        for bad in [
            "",
            "/",
            "/dashboard",
            "//evil.example/admin",
            "/admin//evil.example",
            "https://evil.example/admin",
            "/administrator",
            "/admin\\evil",
            "/admin/../dashboard",
            "/admin/x?y=1",
            "/admin/x#y",
            "/admin/%2f%2fevil",
            "/admin/x y",
            "/admin/é",
        ] {
            assert_eq!(back_to(Some(bad)), "/admin", "{bad:?}");
        }
        assert_eq!(back_to(None), "/admin");
        assert_eq!(
            back_to(Some(&format!("/admin/{}", "a".repeat(195)))),
            "/admin"
        );
        let long_ok = format!("/admin/{}", "a".repeat(193));
        assert_eq!(back_to(Some(&long_ok)), long_ok);
    }

    proptest! {
        /// Whatever a form sends, the answer goes to a console path on this origin.
        #[test]
        fn back_never_leaves_the_console(s in "\\PC{0,60}", tail in "[a-z/\\\\.:%?#@_-]{0,30}") {
            for candidate in [s.clone(), format!("/admin{tail}"), format!("/admin/{s}")] {
                let b = back_to(Some(&candidate));
                prop_assert!(b == "/admin" || b.starts_with("/admin/"));
                prop_assert!(!b.contains("//") && !b.contains('\\') && !b.contains(':'));
                prop_assert!(!b.contains(['.', '?', '#', '%', '@']));
            }
        }

        /// Any units field either parses to 1..=10^12 or is refused.
        #[test]
        fn units_never_outside_the_bounds(s in "\\PC{0,12}") {
            if let Ok(u) = units(Some(&s)) {
                prop_assert!((1..=MAX_GRANT_UNITS).contains(&u));
                prop_assert_eq!(u.to_string(), s);
            }
        }

        /// An accepted trial end is always in the future and within the bound.
        #[test]
        fn extend_to_is_always_within_bounds(offset_s in -400i64 * 86_400..400 * 86_400) {
            let ms = NOW + offset_s * 1000;
            match extend_to(Some(&rfc3339(ms)), NOW) {
                Ok(t) => {
                    prop_assert_eq!(t, ms);
                    prop_assert!(t > NOW && t <= NOW + MAX_TRIAL_DAYS_AHEAD * DAY_MS);
                }
                Err(e) => prop_assert!(
                    ms <= NOW && e == FormError::ExtendToPast
                        || ms > NOW + MAX_TRIAL_DAYS_AHEAD * DAY_MS && e == FormError::ExtendToFar
                ),
            }
        }
    }

    #[test]
    fn every_action_is_named_targeted_and_parameterised_for_the_audit_log() {
        let cases = [
            (
                Action::Reconcile {
                    payer: Payer::user("user_1"),
                },
                "reconcile",
                "user:user_1",
                "",
                "Reconcile",
            ),
            (
                Action::Replay {
                    svix_id: "msg_1".into(),
                },
                "replay",
                "delivery:msg_1",
                "",
                "Replay",
            ),
            (
                Action::Cancel {
                    item_id: "csub_item_1".into(),
                    end_now: false,
                },
                "cancel",
                "item:csub_item_1",
                "end_now=false",
                "Cancel at period end",
            ),
            (
                Action::Cancel {
                    item_id: "csub_item_1".into(),
                    end_now: true,
                },
                "cancel",
                "item:csub_item_1",
                "end_now=true",
                "Cancel now",
            ),
            (
                Action::ExtendTrial {
                    item_id: "csub_item_2".into(),
                    extend_to: 1_800_000_000_000,
                },
                "extend_trial",
                "item:csub_item_2",
                "extend_to=2027-01-15T08:00:00Z",
                "Extend trial",
            ),
            (
                Action::Grant {
                    payer: Payer::org("org_1"),
                    feature: "premium_api".into(),
                    units: 100,
                },
                "grant",
                "org:org_1",
                "feature=premium_api units=100",
                "Grant units",
            ),
        ];
        for (action, name, target, params, words) in cases {
            assert_eq!(action.name(), name);
            assert_eq!(action.target(), target);
            assert_eq!(action.params(), params);
            assert_eq!(
                Outcome::Done(String::new()).notice(&action),
                format!("{words}: done.")
            );
        }
    }

    #[test]
    fn outcomes_read_the_same_in_the_log_and_in_words() {
        let a = Action::Cancel {
            item_id: "csub_item_1".into(),
            end_now: false,
        };
        let cases = [
            (
                Outcome::Done(String::new()),
                "done",
                "Cancel at period end: done.",
            ),
            (
                Outcome::Done("1 corrected".into()),
                "done: 1 corrected",
                "Cancel at period end: done (1 corrected).",
            ),
            (
                Outcome::RefusedByClerk(422),
                "refused_by_clerk: 422",
                "Cancel at period end: Clerk refused it (HTTP 422); nothing changed.",
            ),
            (
                Outcome::Refused("form_token"),
                "refused: form_token",
                "Cancel at period end: refused (form_token); nothing was done.",
            ),
            (
                Outcome::Failed("unreachable".into()),
                "failed: unreachable",
                "Cancel at period end: failed (unreachable).",
            ),
            (
                Outcome::Pending,
                "pending",
                "Cancel at period end: asked of Clerk; the answer is not in yet.",
            ),
            (
                Outcome::Unknown("no answer within 60 s".into()),
                "unknown: no answer within 60 s",
                "Cancel at period end: whether Clerk acted is not known (no answer within 60 s); check the item before trying again.",
            ),
        ];
        for (o, log, words) in cases {
            assert_eq!(o.audit(), log);
            assert_eq!(o.notice(&a), words);
        }
    }

    #[test]
    fn only_a_4xx_says_nothing_changed_at_clerk() {
        assert_eq!(clerk_failure(Some(400), "x"), Outcome::RefusedByClerk(400));
        assert_eq!(clerk_failure(Some(422), "x"), Outcome::RefusedByClerk(422));
        assert_eq!(clerk_failure(Some(499), "x"), Outcome::RefusedByClerk(499));
        assert_eq!(
            clerk_failure(Some(500), "x"),
            Outcome::Unknown("Clerk answered 500".into())
        );
        assert_eq!(
            clerk_failure(Some(503), "x"),
            Outcome::Unknown("Clerk answered 503".into())
        );
        assert_eq!(
            clerk_failure(Some(399), "x"),
            Outcome::Unknown("Clerk answered 399".into())
        );
        assert_eq!(
            clerk_failure(None, "connection reset"),
            Outcome::Unknown("connection reset".into())
        );
    }

    #[test]
    fn a_trial_extension_only_extends() {
        let end = NOW + 3 * DAY_MS;
        assert_eq!(extends_trial(end + 1, Some(end)), Ok(()));
        assert_eq!(extends_trial(end + 365 * DAY_MS, Some(end)), Ok(()));
        assert_eq!(
            extends_trial(end + 365 * DAY_MS + 1, Some(end)),
            Err(FormError::ExtendToFar)
        );
        assert_eq!(
            extends_trial(end, Some(end)),
            Err(FormError::ExtendToNotLater)
        );
        assert_eq!(
            extends_trial(end - 1, Some(end)),
            Err(FormError::ExtendToNotLater)
        );
        assert_eq!(extends_trial(end + 1, None), Err(FormError::NoTrial));
        assert_eq!(
            extends_trial(i64::MAX, Some(i64::MAX - 1)),
            Ok(()),
            "no overflow"
        );
        assert_eq!(FormError::ExtendToNotLater.code(), "invalid_extend_to");
        assert_eq!(FormError::NoTrial.code(), "invalid_extend_to");
    }

    #[test]
    fn an_audit_line_is_time_operator_action_target_result() {
        let e = AuditEntry::new(
            1_800_000_000_999,
            "user_op",
            &Action::Cancel {
                item_id: "csub_item_1".into(),
                end_now: true,
            },
            &Outcome::RefusedByClerk(404),
        );
        assert_eq!(e.params, "end_now=true");
        assert_eq!(
            e.line(),
            "2027-01-15T08:00:00Z user_op cancel item:csub_item_1 refused_by_clerk: 404"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
