-- When a person last used this environment (chat_service/activity.py): one row, moved
-- forward by every replica at most every ACTIVITY_RECORD_SECONDS. The operator puts an
-- environment to sleep after spec.idle without requests. NULL: no request yet.
CREATE TABLE chat_activity (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_request_at timestamptz
);
INSERT INTO chat_activity DEFAULT VALUES;

-- Where this database's first data came from (chat_service/seeding.py): a fixtures data
-- set loaded by `migrate --fixtures NAME`, or a snapshot of another environment restored
-- by `restore-snapshot`. No row: it started empty. Written in the same transaction as the
-- data itself, so a row here means the data is in, whole.
CREATE TABLE chat_data_source (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    kind      text NOT NULL CHECK (kind IN ('fixtures', 'snapshot')),
    name      text NOT NULL,
    users     integer NOT NULL,
    messages  integer NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now()
);
