-- Users and messages, with the original's table and column names.

CREATE TABLE chat_user (
    id            bigserial PRIMARY KEY,
    nickname      varchar(64) NOT NULL,
    password_hash varchar(256) NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Nicknames are unique regardless of case: "Alice" and "alice" are one user.
CREATE UNIQUE INDEX chat_user_nickname_lower_key ON chat_user (lower(nickname));

CREATE TABLE chat_message (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES chat_user (id) ON DELETE CASCADE,
    text       text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 2000),
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);

CREATE INDEX chat_message_created_at_idx ON chat_message (created_at);
-- The cascade from chat_user and "my messages" look-ups go by user.
CREATE INDEX chat_message_user_id_idx ON chat_message (user_id);
-- Every listing reads visible messages in id order.
CREATE INDEX chat_message_visible_id_idx ON chat_message (id) WHERE deleted_at IS NULL;

-- One row counting deletions; part of the ETag of message lists. A trigger keeps it
-- true whichever path deletes (API soft delete, admin tool, cascade from chat_user).
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
