-- Nicknames are unique by how they look, not only by case (issue 9): two nicknames are
-- one user when chat_service.nicknames.key() gives both the same text (NFKC, case
-- folding and Unicode TS #39's confusable skeleton). The key is computed in Python:
-- `migrate` fills it for the rows already here, in this migration's transaction, refuses
-- (changing nothing) if two existing users share one, and then makes it required and
-- unique (see chat_service/migrating.py). The index on lower(nickname) stays.
ALTER TABLE chat_user ADD COLUMN nickname_key text;
