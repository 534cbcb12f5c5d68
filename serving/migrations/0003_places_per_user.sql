-- Version 3: a place row belongs to one user. The places table was shared (the first
-- photo near a town made its row), so a later user's photo near the same town got that
-- older id, which told them someone else had photos there. Each user now has their own
-- rows, and existing photos move to their owner's copy of their place. (Photos let go
-- of their place while the old table is dropped, so no foreign key is broken midway.)
CREATE TABLE user_places (
    id       INTEGER PRIMARY KEY,
    user_id  INTEGER NOT NULL,
    name     TEXT NOT NULL,
    admin1   TEXT NOT NULL,
    country  TEXT NOT NULL,
    UNIQUE (user_id, name, admin1, country)
);

INSERT INTO user_places (user_id, name, admin1, country)
    SELECT DISTINCT p.user_id, pl.name, pl.admin1, pl.country
    FROM photos p JOIN places pl ON pl.id = p.place_id
    ORDER BY p.user_id, pl.id;

CREATE TEMP TABLE place_moves AS
    SELECT p.id AS photo_id, up.id AS place_id
    FROM photos p
    JOIN places pl ON pl.id = p.place_id
    JOIN user_places up ON up.user_id = p.user_id AND up.name = pl.name
        AND up.admin1 = pl.admin1 AND up.country = pl.country;

UPDATE photos SET place_id = NULL WHERE place_id IS NOT NULL;
DROP TABLE places;
ALTER TABLE user_places RENAME TO places;
UPDATE photos SET place_id = (SELECT m.place_id FROM place_moves m WHERE m.photo_id = photos.id)
    WHERE id IN (SELECT photo_id FROM place_moves);
DROP TABLE place_moves;
