-- Dead letters, replay and retention (DESIGN §8): why a delivery failed, the signed time it came
-- with (replay clamps event times to it, as the delivery did), and when retention removed its
-- payload (the row stays, so a late redelivery is still a duplicate).
alter table webhook_event add column reason text;
alter table webhook_event add column signed_at bigint;
alter table webhook_event add column purged_at bigint;
create index webhook_event_failed on webhook_event (outcome) where outcome = 'failed';
