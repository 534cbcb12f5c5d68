-- Version 9 (migrations/0009_placed_faces_version.sql): a counter per user that moves
-- whenever the set of the user's placed faces (clustered = 1) may have changed by a hand
-- other than the cluster job that is running: a face deleted, a face placed or unplaced.
-- Postgres' triggers call a function; the conditions are SQLite's WHEN clauses.
ALTER TABLE users ADD COLUMN placed_faces_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION bump_placed_faces_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE users SET placed_faces_version = placed_faces_version + 1 WHERE id = OLD.user_id;
    ELSE
        UPDATE users SET placed_faces_version = placed_faces_version + 1 WHERE id = NEW.user_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER placed_faces_deleted AFTER DELETE ON faces
FOR EACH ROW WHEN (OLD.clustered = 1)
EXECUTE FUNCTION bump_placed_faces_version();

CREATE TRIGGER placed_faces_changed AFTER UPDATE OF clustered ON faces
FOR EACH ROW WHEN (OLD.clustered <> NEW.clustered)
EXECUTE FUNCTION bump_placed_faces_version();
