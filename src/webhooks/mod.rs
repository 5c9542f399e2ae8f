//! Clerk's deliveries, from signed bytes to committed state: the signature check (`verify`),
//! the event shapes and the changes they carry (`events`), card-data redaction (`redact`),
//! applying one delivery in a transaction (`ingest`), the mail it queues (`notify`), and the
//! group-committing writer (`writer`). Decisions live in `billing`, SQL in `db`.

pub mod events;
pub mod ingest;
pub mod past_due_mail;
pub mod redact;
pub mod verify;
pub mod writer;
