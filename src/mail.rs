//! Outgoing mail: the worker that drains the outbox through SMTP (`SMTP_URL`) or, in
//! development, into `.eml` files under `data/mail/`, and the demo mailbox that reads them back.
//!
//! A message leaves the outbox only once the transport accepted it. A permanent refusal (the
//! server's `5xx`) ends it at once as failed; temporary trouble retries with exponential
//! back-off for at most 24 hours, then ends it as failed the same way (never silently dropped:
//! the console's payer page and `plangate_outbox_failed` show it).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use lettre::{
    message::{header::ContentType, Mailbox},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::{
    db::{self, now_ms, Db},
    page_data::MailView,
};

#[derive(Clone)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(PathBuf),
}

impl Transport {
    pub fn from_config(
        smtp_url: Option<&str>,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<Transport> {
        match smtp_url {
            Some(url) => Ok(Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|_| anyhow::anyhow!("SMTP_URL could not be used"))?
                    .timeout(Some(Duration::from_secs(15)))
                    .build(),
            )),
            None => Ok(Transport::Files(data_dir.join("mail"))),
        }
    }

    async fn send(&self, message: Message, id: &str) -> Result<(), SendError> {
        match self {
            Transport::Smtp(t) => {
                t.send(message).await.map_err(|e| {
                    if e.is_permanent() {
                        SendError::Permanent(e.to_string())
                    } else {
                        SendError::Temporary(e.to_string())
                    }
                })?;
            }
            Transport::Files(dir) => {
                let name: String = id
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                // Write then rename, so the mailbox never lists a half-written file.
                let tmp = dir.join(format!(".{name}.tmp"));
                let write = async {
                    crate::private_files::private_dir(dir)?;
                    tokio::fs::write(&tmp, message.formatted()).await?;
                    tokio::fs::rename(&tmp, dir.join(format!("{name}.eml"))).await
                };
                write
                    .await
                    .map_err(|e| SendError::Temporary(e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// Why a mail was not sent: for good (the server's `5xx`, an address that cannot be one), or
/// for now (a `4xx`, no connection, a disk that refused the file).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("refused for good: {0}")]
    Permanent(String),
    #[error("{0}")]
    Temporary(String),
}

/// How long temporary trouble is retried before a mail is given up on (README, "Configuration").
pub const GIVE_UP_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// What becomes of a mail the transport did not take: `None` to retry at the back-off, or the
/// reason it ends as failed now (a permanent refusal at once; temporary trouble once the mail
/// has waited [`GIVE_UP_AFTER_MS`] since it was queued).
pub fn give_up(error: &SendError, queued_at: i64, now: i64) -> Option<String> {
    match error {
        SendError::Permanent(why) => Some(why.clone()),
        SendError::Temporary(why) if now.saturating_sub(queued_at) >= GIVE_UP_AFTER_MS => {
            Some(format!("not accepted within 24 hours: {why}"))
        }
        SendError::Temporary(_) => None,
    }
}

fn backoff_ms(attempts: i64) -> i64 {
    let secs = 2i64.saturating_pow(attempts.clamp(0, 12) as u32).min(3_600);
    secs * 1_000
}

/// Sends what is due once; returns how many were sent.
pub async fn drain(db: &Db, transport: &Transport, from: &Mailbox) -> anyhow::Result<usize> {
    let now = now_ms();
    let mut sent = 0;
    for mail in db::outbox::due(&db.pool, now, 20).await? {
        // Lease it for a minute so another instance's worker does not send it too.
        if !db::outbox::claim(&db.pool, &mail, now + 60_000).await? {
            continue;
        }
        // An address that cannot be one is refused for good, as a server's 5xx would be.
        let message = mail
            .recipient
            .parse::<Mailbox>()
            .map_err(|e| SendError::Permanent(format!("not a mail address: {e}")))
            .and_then(|to| {
                Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(&mail.subject)
                    .header(ContentType::TEXT_PLAIN)
                    .body(mail.body.clone())
                    .map_err(|e| SendError::Permanent(e.to_string()))
            });
        let result = match message {
            Ok(m) => transport.send(m, &mail.id).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                db::outbox::mark_sent(&db.pool, &mail.id).await?;
                info!(mail_id = %mail.id, "mail sent");
                sent += 1;
            }
            Err(e) => match give_up(&e, mail.created_at, now_ms()) {
                Some(why) => {
                    warn!(mail_id = %mail.id, attempts = mail.attempts + 1, error = %why, "mail not sent; given up");
                    db::outbox::give_up(&db.pool, &mail.id, &why).await?;
                }
                None => {
                    let retry_at = now_ms() + backoff_ms(mail.attempts);
                    warn!(mail_id = %mail.id, attempts = mail.attempts + 1, error = %e, "mail not sent; will retry");
                    db::outbox::mark_failed(&db.pool, &mail.id, retry_at, &e.to_string()).await?;
                }
            },
        }
    }
    Ok(sent)
}

/// Runs forever: wakes on `notify` (a webhook queued mail) or every second.
pub async fn worker(db: Db, transport: Transport, from: Mailbox, notify: Arc<Notify>) {
    loop {
        if let Err(e) = drain(&db, &transport, &from).await {
            warn!(error = %e, "mail worker pass failed");
        }
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The mail written to `dir` (development, no `SMTP_URL`), decoded as a mail client would show
/// it (headers, quoted-printable and base64 bodies), in the order it was written.
pub async fn mailbox(dir: &Path) -> Vec<MailView> {
    let mut out = Vec::new();
    let mut entries = match tokio::fs::read_dir(&dir).await {
        Ok(e) => e,
        Err(_) => return out,
    };
    while let Ok(Some(e)) = entries.next_entry().await {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.ends_with(".eml") {
            continue;
        }
        let raw = tokio::fs::read(e.path()).await.unwrap_or_default();
        let Some(mail) = mail_parser::MessageParser::default().parse(&raw) else {
            continue;
        };
        let to = mail
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_string();
        out.push(MailView {
            file: name,
            to,
            subject: mail.subject().unwrap_or_default().to_string(),
            body: mail.body_text(0).unwrap_or_default().replace("\r\n", "\n"),
        });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_civil_dates() {
        assert_eq!(crate::page_data::format_date(0), "1970-01-01");
        assert_eq!(
            crate::page_data::format_date(1_719_561_600_000),
            "2024-06-28"
        );
    }

    #[test]
    fn a_permanent_refusal_ends_a_mail_at_once_and_trouble_after_a_day() {
        use super::{give_up, SendError, GIVE_UP_AFTER_MS};
        let p = SendError::Permanent("550 no such user".into());
        let t = SendError::Temporary("421 try later".into());
        assert_eq!(give_up(&p, 1_000, 1_000), Some("550 no such user".into()));
        assert_eq!(give_up(&t, 1_000, 1_000), None);
        assert_eq!(give_up(&t, 1_000, 1_000 + GIVE_UP_AFTER_MS - 1), None);
        assert_eq!(
            give_up(&t, 1_000, 1_000 + GIVE_UP_AFTER_MS),
            Some("not accepted within 24 hours: 421 try later".into())
        );
        assert!(give_up(&t, i64::MIN, i64::MAX).is_some(), "no overflow");
    }

    #[test]
    fn backoff_grows_and_caps_at_an_hour() {
        assert_eq!(super::backoff_ms(0), 1_000);
        assert_eq!(super::backoff_ms(3), 8_000);
        assert_eq!(super::backoff_ms(40), 3_600_000);
    }
}
