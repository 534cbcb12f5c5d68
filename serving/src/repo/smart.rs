//! The `photos` table's category columns: smart albums and users' corrections.

use crate::sql::{Connection, params};
use serde::{Deserialize, Serialize};

/// A smart album: one category of the classifier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Category {
    pub name: String,
    pub photos: i64,
    /// Of those, how many a user placed by hand.
    pub corrected: i64,
    /// The model's mean confidence over the photos it placed.
    pub mean_confidence: Option<f64>,
    pub cover_photo_id: i64,
}

/// A user's correction of the model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Correction {
    pub photo_id: i64,
    pub category: String,
    /// What the model said, if it has run.
    pub model_category: Option<String>,
    pub model_confidence: Option<f64>,
}

/// A correction with the photo's blob and type, for the export.
#[derive(Debug, Clone)]
pub struct CorrectedPhoto {
    pub correction: Correction,
    pub sha256: String,
    pub mime: String,
}

/// The user's categories with photos not in the trash, by name.
pub(crate) fn categories(c: &Connection, user_id: i64) -> crate::sql::Result<Vec<Category>> {
    let mut statement = c.prepare_cached(
        "SELECT category, COUNT(*), SUM(category_manual),
                AVG(CASE WHEN category_manual = 0 THEN confidence END), MAX(id)
         FROM photos WHERE user_id = ?1 AND trashed IS NULL AND category IS NOT NULL
         GROUP BY category ORDER BY category",
    )?;
    statement
        .query_map([user_id], |r| {
            Ok(Category {
                name: r.get(0)?,
                photos: r.get(1)?,
                corrected: r.get(2)?,
                mean_confidence: r.get(3)?,
                cover_photo_id: r.get(4)?,
            })
        })?
        .collect()
}

/// A user's category, which the classify job never overwrites.
pub(crate) fn set_manual_category(
    c: &Connection,
    photo_id: i64,
    category: &str,
) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE photos SET category = ?1, confidence = NULL, category_manual = 1 WHERE id = ?2",
        params![category, photo_id],
    )?;
    Ok(())
}

/// Back to the automatic category: the model's, or the faces' evidence (see
/// [`settle_category`]).
pub(crate) fn clear_manual_category(
    c: &Connection,
    photo_id: i64,
    faces_rule: Option<&PeopleByFaces>,
) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE photos SET category_manual = 0 WHERE id = ?1",
        [photo_id],
    )?;
    settle_category(c, photo_id, faces_rule)
}

/// The user's corrected photos not in the trash, oldest first.
pub(crate) fn corrections(c: &Connection, user_id: i64) -> crate::sql::Result<Vec<CorrectedPhoto>> {
    let mut statement = c.prepare_cached(
        "SELECT id, category, model_category, model_confidence, sha256, mime FROM photos
         WHERE user_id = ?1 AND category_manual = 1 AND trashed IS NULL ORDER BY id",
    )?;
    statement
        .query_map([user_id], |r| {
            Ok(CorrectedPhoto {
                correction: Correction {
                    photo_id: r.get(0)?,
                    category: r.get(1)?,
                    model_category: r.get(2)?,
                    model_confidence: r.get(3)?,
                },
                sha256: r.get(4)?,
                mime: r.get(5)?,
            })
        })?
        .collect()
}

/// A photo with a large, clear face that the classifier also thinks may show people is a
/// photo of people, even when people is not the classifier's first answer.
///
/// The classifier sees a 64 px crop of the whole photo and, trained on curated photos,
/// puts many camera photos of a family under animals or landscape; the face detector,
/// run on the photo at up to 640 px, is strong evidence that a person is its subject.
/// "Large" is relative to the photo, so that a passer-by in a landscape does not count
/// (the face's shorter side against the photo's shorter side); the classifier's own
/// probability for the category is the second opinion that keeps a dog's face, which the
/// detector also finds, from making a dog photo "people".
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PeopleByFaces {
    /// The category the evidence puts a photo in (the bundle's "people").
    pub category: String,
    /// Smallest face, as a share of the photo's shorter side, that counts.
    pub min_share: f64,
    /// Lowest detection score that counts: the detector keeps faces from 0.8, where
    /// the faces of cats and dogs still pass.
    pub min_score: f64,
    /// Lowest probability the classifier gives the category for the evidence to count.
    pub min_probability: f64,
}

/// The classifier's answer, stored beside any correction: its first category, that
/// category's probability and every class's probability (a JSON object). The photo's
/// category then follows from it and the faces ([`settle_category`]).
pub(crate) fn set_model_category(
    c: &Connection,
    photo_id: i64,
    answer: &ModelAnswer<'_>,
    faces_rule: Option<&PeopleByFaces>,
) -> crate::sql::Result<()> {
    c.execute(
        "UPDATE photos SET model_category = ?1, model_confidence = ?2, model_probabilities = ?3
         WHERE id = ?4",
        params![
            answer.category,
            answer.confidence,
            answer.probabilities_json,
            photo_id
        ],
    )?;
    settle_category(c, photo_id, faces_rule)
}

/// What the classifier said about one photo.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModelAnswer<'a> {
    pub category: &'a str,
    pub confidence: f64,
    /// Every class's probability: `{"animals": 0.02, ...}`.
    pub probabilities_json: &'a str,
}

/// Sets the photo's category from what is known now: a user's correction sticks; else a
/// face that passes `faces_rule` makes it the rule's category, with the face's detection
/// score as its confidence; else the model's answer (none yet: no category).
///
/// One statement, so that the classify and faces jobs of a photo, run by two workers
/// at once, cannot leave a category decided on what one of them had not yet written:
/// each job calls this after its own write, and the last call sees both.
pub(crate) fn settle_category(
    c: &Connection,
    photo_id: i64,
    faces_rule: Option<&PeopleByFaces>,
) -> crate::sql::Result<()> {
    // No rule: NULL parameters, every comparison NULL, so the model decides. Before the
    // classifier has run there is no second opinion, and no evidence yet.
    let dialect = c.dialect();
    let evidence = format!(
        "(SELECT MAX(f.score) FROM faces f WHERE f.photo_id = photos.id
             AND f.score >= ?4
             AND {} >= CAST(?2 AS DOUBLE PRECISION) * {}
             AND {} >= ?6)",
        dialect.least("f.w", "f.h"),
        dialect.least("photos.width", "photos.height"),
        dialect.json_number("photos.model_probabilities", "?5"),
    );
    c.execute(
        &format!(
            "UPDATE photos SET
                 category = CASE WHEN category_manual = 1 THEN category
                                 WHEN {evidence} IS NOT NULL THEN ?3
                                 ELSE model_category END,
                 confidence = CASE WHEN category_manual = 1 THEN confidence
                                   WHEN {evidence} IS NOT NULL THEN {evidence}
                                   ELSE model_confidence END
             WHERE id = ?1"
        ),
        params![
            photo_id,
            faces_rule.map(|rule| rule.min_share),
            faces_rule.map(|rule| rule.category.as_str()),
            faces_rule.map(|rule| rule.min_score),
            faces_rule.map(|rule| rule.category.as_str()),
            faces_rule.map(|rule| rule.min_probability),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The service's defaults (`ServeConfig::new`).
    const RULE: PeopleByFaces = PeopleByFaces {
        category: String::new(), // set in `rule()`: a const cannot build a String
        min_share: 1.0 / 16.0,
        min_score: 0.95,
        min_probability: 0.1,
    };

    fn rule() -> PeopleByFaces {
        PeopleByFaces {
            category: "people".into(),
            ..RULE
        }
    }

    /// A 1000×750 photo with one face of `side` px scored `score`.
    fn photo_with_face(side: f64, score: f64) -> Connection {
        let c = Connection::open_in_memory().unwrap();
        crate::repo::schema::migrate(&c).unwrap();
        c.execute_batch(
            "INSERT INTO users (id, username, password_hash, created) VALUES (1, 'u', 'x', 0);
             INSERT INTO photos (id, user_id, sha256, kind, name, mime, bytes, width, height,
                 uploaded) VALUES (1, 1, 's', 'photo', 'p.jpg', 'image/jpeg', 1, 1000, 750, 0);",
        )
        .unwrap();
        c.execute(
            "INSERT INTO faces (user_id, photo_id, score, x, y, w, h, descriptor)
             VALUES (1, 1, ?1, 10, 10, ?2, ?2, x'')",
            params![score, side],
        )
        .unwrap();
        c
    }

    fn classify(
        c: &Connection,
        people: f64,
        rule: Option<&PeopleByFaces>,
    ) -> (String, Option<f64>) {
        let probabilities = format!(r#"{{"animals": {}, "people": {people}}}"#, 1.0 - people);
        let answer = ModelAnswer {
            category: "animals",
            confidence: 1.0 - people,
            probabilities_json: &probabilities,
        };
        set_model_category(c, 1, &answer, rule).unwrap();
        c.query_row(
            "SELECT category, confidence FROM photos WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    #[test]
    fn a_large_clear_face_with_the_classifiers_second_opinion_makes_people() {
        let c = photo_with_face(60.0, 0.995); // 60 of 750 px: 8 %, over 1/16
        assert_eq!(
            classify(&c, 0.3, Some(&rule())),
            ("people".into(), Some(0.995))
        );
    }

    #[test]
    fn each_gate_of_the_people_rule_holds_on_its_own() {
        // too small a face (40 of 750 px: 5 %), too unsure a detection, or a classifier
        // that gives people less than 0.1: the model's answer stands
        for (side, score, people) in [(40.0, 0.995, 0.3), (60.0, 0.9, 0.3), (60.0, 0.995, 0.05)] {
            let c = photo_with_face(side, score);
            assert_eq!(
                classify(&c, people, Some(&rule())),
                ("animals".into(), Some(1.0 - people)),
                "face {side} px, score {score}, people {people}"
            );
        }
        // and without a rule, faces never decide
        let c = photo_with_face(60.0, 0.995);
        assert_eq!(classify(&c, 0.3, None), ("animals".into(), Some(0.7)));
    }

    #[test]
    fn a_correction_outlives_the_rule_and_dropping_it_goes_back_to_the_rule() {
        let c = photo_with_face(60.0, 0.995);
        classify(&c, 0.3, Some(&rule()));
        set_manual_category(&c, 1, "landscape").unwrap();
        assert_eq!(classify(&c, 0.3, Some(&rule())).0, "landscape");
        clear_manual_category(&c, 1, Some(&rule())).unwrap();
        let category: String = c
            .query_row("SELECT category FROM photos WHERE id = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(category, "people");
    }
}
