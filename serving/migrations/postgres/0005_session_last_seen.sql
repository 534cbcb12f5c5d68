-- Version 5: sessions remember when they were last used, so an idle one ends before its
-- hard expiry (a token forgotten on a shared computer no longer lasts thirty days).
ALTER TABLE sessions ADD COLUMN last_seen BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen = created;
CREATE INDEX sessions_user ON sessions(user_id);
