-- Version 7: video montages. A montage row is a request (its photos in order and its
-- settings, as JSON) and the job that renders it; the video it makes is a photos row of
-- kind 'video', inserted in the same transaction that sets video_id, once the render is
-- whole. Its state (queued, running, done, failed) is its job's.
CREATE TABLE montages (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    job_id    INTEGER NOT NULL UNIQUE,
    title     TEXT NOT NULL,
    settings  TEXT NOT NULL,           -- JSON: orientation, resolution, seconds a photo ...
    photo_ids TEXT NOT NULL,           -- JSON array of photo ids, in the order shown
    progress  REAL NOT NULL DEFAULT 0, -- 0 to 1, written by the render
    video_id  INTEGER REFERENCES photos(id) ON DELETE SET NULL,
    rebuilt_from INTEGER REFERENCES montages(id) ON DELETE SET NULL,
    created   INTEGER NOT NULL,
    updated   INTEGER NOT NULL
);
CREATE INDEX montages_user ON montages(user_id, id);

-- Music a user uploaded for montages: the audio file is a blob (kept while a row names
-- it), its length as ffprobe read it.
CREATE TABLE music (
    id       INTEGER PRIMARY KEY,
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sha256   TEXT NOT NULL,
    name     TEXT NOT NULL,
    bytes    INTEGER NOT NULL,
    seconds  REAL NOT NULL,
    created  INTEGER NOT NULL
);
CREATE INDEX music_user ON music(user_id, id);
