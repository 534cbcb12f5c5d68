-- Version 4: each face keeps its 160 px thumbnail as a blob, made once by the faces job
-- from the photo it has already decoded. The thumbnail route decoded the whole original
-- on every request (a 100-megapixel photo per face card).
ALTER TABLE faces ADD COLUMN thumbnail_sha256 TEXT;
CREATE INDEX faces_thumbnail ON faces(thumbnail_sha256);
