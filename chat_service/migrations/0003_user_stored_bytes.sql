-- A per-user cap on stored message text (issue 9): the bytes (UTF-8) of every message a
-- user has stored, soft-deleted ones included, since their rows stay on disk. Kept
-- current by the message insert; here it is counted once for the rows already stored.
ALTER TABLE chat_user ADD COLUMN stored_bytes bigint NOT NULL DEFAULT 0;

UPDATE chat_user u SET stored_bytes = s.bytes
FROM (SELECT user_id, sum(octet_length(text)) AS bytes FROM chat_message GROUP BY user_id) s
WHERE s.user_id = u.id;
