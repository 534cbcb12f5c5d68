-- Version 8: the classifier's whole answer, not just its top class: a JSON object of class
-- name → probability. The "people by faces" rule reads the classifier's probability for
-- "people" as a second opinion beside a detected face (a dog's face passes the detector;
-- the classifier rarely thinks a dog photo shows people).
ALTER TABLE photos ADD COLUMN model_probabilities TEXT;
