-- Version 9: a counter per user that moves whenever the set of the user's placed faces
-- (clustered = 1) may have changed by a hand other than the cluster job that is running:
-- a face deleted, a face placed or unplaced. The people service's in-memory face index
-- (service/face_index.rs) compares it with the value it last saw, so a job learns in one
-- read whether another worker or service instance changed the faces it indexes, instead
-- of counting the user's faces. New faces arrive unplaced and do not move it.
ALTER TABLE users ADD COLUMN placed_faces_version INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER placed_faces_deleted AFTER DELETE ON faces
WHEN OLD.clustered = 1
BEGIN
    UPDATE users SET placed_faces_version = placed_faces_version + 1 WHERE id = OLD.user_id;
END;

CREATE TRIGGER placed_faces_changed AFTER UPDATE OF clustered ON faces
WHEN OLD.clustered <> NEW.clustered
BEGIN
    UPDATE users SET placed_faces_version = placed_faces_version + 1 WHERE id = NEW.user_id;
END;
