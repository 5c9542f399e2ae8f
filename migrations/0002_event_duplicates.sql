-- How many times a delivery came again after it was stored (shown on the demo events page).
alter table webhook_event add column duplicates bigint not null default 0;
