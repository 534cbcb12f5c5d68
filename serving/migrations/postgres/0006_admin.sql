-- Version 6: sign-up is closed unless the service opens it; the first user is the
-- album's admin, who may add others. In an existing album the oldest user is.
ALTER TABLE users ADD COLUMN admin BIGINT NOT NULL DEFAULT 0;
UPDATE users SET admin = 1 WHERE id = (SELECT MIN(id) FROM users);
