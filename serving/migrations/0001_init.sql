-- smart-album's album store, version 1. Times are Unix seconds (UTC) unless named *_at
-- text; every row that belongs to someone carries user_id so each query can scope by it.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,           -- argon2id, PHC string
    created       INTEGER NOT NULL
);

-- Sessions store the SHA-256 of the token, never the token itself.
CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created      INTEGER NOT NULL,
    expires      INTEGER NOT NULL
);

CREATE TABLE photos (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sha256        TEXT NOT NULL,           -- the original's blob
    kind          TEXT NOT NULL,           -- 'photo' or 'gif' (made by the service)
    name          TEXT NOT NULL,           -- the uploaded file name, for display only
    mime          TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    width         INTEGER NOT NULL,        -- upright, after EXIF orientation
    height        INTEGER NOT NULL,
    orientation   INTEGER NOT NULL DEFAULT 1,
    taken_at      TEXT,                    -- EXIF DateTimeOriginal, local time as written
    camera_make   TEXT,
    camera_model  TEXT,
    latitude      REAL,
    longitude     REAL,
    place_id      INTEGER REFERENCES places(id),
    uploaded      INTEGER NOT NULL,
    favourite     INTEGER NOT NULL DEFAULT 0,
    trashed       INTEGER,                 -- when it went to the trash; NULL if not
    thumbnail_sha256 TEXT,
    preview_sha256   TEXT,
    category      TEXT,                    -- the classifier's or the user's
    confidence    REAL,                    -- the classifier's probability for category
    category_manual INTEGER NOT NULL DEFAULT 0,  -- 1: a user's correction, which sticks
    model_category  TEXT,                  -- what the classifier said, kept under corrections
    model_confidence REAL,
    UNIQUE (user_id, sha256)
);
CREATE INDEX photos_user_listing ON photos(user_id, trashed, uploaded, id);
CREATE INDEX photos_category ON photos(user_id, category);
CREATE INDEX photos_sha ON photos(sha256);

CREATE TABLE albums (
    id       INTEGER PRIMARY KEY,
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    cover_photo_id INTEGER REFERENCES photos(id) ON DELETE SET NULL,
    created  INTEGER NOT NULL
);

CREATE TABLE album_photos (
    album_id INTEGER NOT NULL REFERENCES albums(id) ON DELETE CASCADE,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    added    INTEGER NOT NULL,
    PRIMARY KEY (album_id, photo_id)
);
CREATE INDEX album_photos_photo ON album_photos(photo_id);

CREATE TABLE people (
    id       INTEGER PRIMARY KEY,
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name     TEXT,
    hidden   INTEGER NOT NULL DEFAULT 0,
    cover_face_id INTEGER,
    created  INTEGER NOT NULL
);

CREATE TABLE faces (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    photo_id  INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    person_id INTEGER REFERENCES people(id) ON DELETE SET NULL,
    score     REAL NOT NULL,
    x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,  -- upright pixels
    descriptor BLOB NOT NULL,               -- 128 little-endian f32
    manual    INTEGER NOT NULL DEFAULT 0,   -- 1: a user placed it; re-clustering keeps it
    clustered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX faces_user_person ON faces(user_id, person_id);
CREATE INDEX faces_photo ON faces(photo_id);

CREATE TABLE places (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL,
    admin1   TEXT NOT NULL,
    country  TEXT NOT NULL,
    UNIQUE (name, admin1, country)
);

-- The work queue: one row per step of one photo. A worker claims the oldest due row
-- (state 'queued' → 'running'); on start-up rows left 'running' by a crash go back to
-- 'queued'; a failure is retried after a back-off until attempts reach max_attempts.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    photo_id     INTEGER REFERENCES photos(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,            -- thumbnail, classify, faces, cluster
    state        TEXT NOT NULL DEFAULT 'queued',  -- queued, running, done, failed
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    run_after    INTEGER NOT NULL,
    last_error   TEXT,
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs(state, run_after, id);
CREATE INDEX jobs_user ON jobs(user_id, state);
