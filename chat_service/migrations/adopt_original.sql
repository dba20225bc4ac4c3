-- Brings a database made by the original backend (its Django migrations created
-- chat_user and chat_message) to the state 0001_initial.sql creates, keeping every row.
-- `migrate` runs it in one transaction under the migration lock, only after checking
-- the two tables' columns and that no two nicknames differ only in case, and then
-- records 0001 as applied. The id columns stay as they are (a sequence default or an
-- identity column behave alike), so ids go on from where the original left them.

-- The original's constraints and indexes on the two tables, other than the primary keys,
-- give way to ours: other names, a case-insensitive unique nickname, a cascading foreign
-- key (the original's had no ON DELETE at all).
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
             WHERE conrelid IN ('chat_user'::regclass, 'chat_message'::regclass)
               AND contype IN ('f', 'u', 'c', 'x')
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tbl, r.conname);
    END LOOP;
    FOR r IN SELECT indexrelid::regclass AS idx FROM pg_index
             WHERE indrelid IN ('chat_user'::regclass, 'chat_message'::regclass)
               AND NOT indisprimary
    LOOP
        EXECUTE format('DROP INDEX %s', r.idx);
    END LOOP;
END;
$$;

ALTER TABLE chat_user
    ALTER COLUMN nickname SET NOT NULL,
    ALTER COLUMN password_hash TYPE varchar(256),
    ALTER COLUMN password_hash SET NOT NULL,
    ALTER COLUMN created_at SET DEFAULT now(),
    ALTER COLUMN created_at SET NOT NULL;

CREATE UNIQUE INDEX chat_user_nickname_lower_key ON chat_user (lower(nickname));

ALTER TABLE chat_message
    ADD COLUMN IF NOT EXISTS deleted_at timestamptz,
    ALTER COLUMN user_id SET NOT NULL,
    ALTER COLUMN text SET NOT NULL,
    ALTER COLUMN created_at SET DEFAULT now(),
    ALTER COLUMN created_at SET NOT NULL,
    ADD CONSTRAINT chat_message_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES chat_user (id) ON DELETE CASCADE,
    -- NOT VALID: rows the original let in (it counted bytes, its admin counted nothing)
    -- stay; new rows are held to the rule. Validated below when every row keeps it.
    ADD CONSTRAINT chat_message_text_check
        CHECK (char_length(text) BETWEEN 1 AND 2000) NOT VALID;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM chat_message
                   WHERE char_length(text) NOT BETWEEN 1 AND 2000) THEN
        ALTER TABLE chat_message VALIDATE CONSTRAINT chat_message_text_check;
    END IF;
END;
$$;

CREATE INDEX chat_message_created_at_idx ON chat_message (created_at);
CREATE INDEX chat_message_user_id_idx ON chat_message (user_id);
CREATE INDEX chat_message_visible_id_idx ON chat_message (id) WHERE deleted_at IS NULL;

-- From here on as in 0001_initial.sql (a test keeps the two schemas equal).
CREATE TABLE chat_state (
    singleton        boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    deletion_version bigint NOT NULL DEFAULT 0
);
INSERT INTO chat_state DEFAULT VALUES;

CREATE FUNCTION chat_bump_deletion_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE chat_state SET deletion_version = deletion_version + 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER chat_message_soft_delete
    AFTER UPDATE OF deleted_at ON chat_message
    FOR EACH STATEMENT EXECUTE FUNCTION chat_bump_deletion_version();

CREATE TRIGGER chat_message_hard_delete
    AFTER DELETE ON chat_message
    FOR EACH STATEMENT EXECUTE FUNCTION chat_bump_deletion_version();
