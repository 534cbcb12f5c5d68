-- Version 2: the grid's query (a user's photos outside the trash, newest id first, below
-- a keyset cursor) walks this index in order instead of sorting every photo the user
-- has. The load run measured list pages at 375 ms p50 over 20,000 photos without it.
CREATE INDEX photos_user_trashed_id ON photos(user_id, trashed, id);
