//! Choosing a montage's photos when the user names none ("memories"), as Google Photos'
//! highlight videos and Apple's Memories do: the library is cut into events by time and
//! place, and an event's best photos are picked — near-duplicates dropped, photos with
//! faces of named people first, spread over the event's time span, as many as the
//! chosen length holds.
//!
//! Events: photos sorted by when they were taken; a new event starts after a gap of
//! more than [`EVENT_GAP_HOURS`] (a night, a journey) or a move of more than
//! [`EVENT_MOVE_KM`] between consecutive photos that both know where they were taken.
//! Photos without a date form no event (they cannot be placed in time).

/// A new event starts after this many hours without a photo...
pub const EVENT_GAP_HOURS: f64 = 6.0;
/// ...or when consecutive photos were taken this many km apart.
pub const EVENT_MOVE_KM: f64 = 50.0;

/// What the choice knows about one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// When it was taken, in seconds (any epoch; only differences matter).
    pub taken_at: Option<i64>,
    /// Where it was taken (latitude, longitude in degrees).
    pub place: Option<(f64, f64)>,
    pub faces: usize,
    /// Faces belonging to people the user has named.
    pub named_faces: usize,
}

/// How long the montage should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// About 30 s.
    Short,
    /// About a minute.
    Medium,
    /// About two minutes.
    Long,
}

impl Length {
    pub fn seconds(self) -> f64 {
        match self {
            Length::Short => 30.0,
            Length::Medium => 60.0,
            Length::Long => 120.0,
        }
    }

    /// Photos that fit, at `per_photo` seconds each after a `title` card.
    pub fn photos(self, per_photo: f64, title: f64) -> usize {
        (((self.seconds() - title) / per_photo).floor() as usize).max(1)
    }
}

/// An event: positions into the candidate list, in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub photos: Vec<usize>,
    pub start: i64,
    pub end: i64,
}

/// The events of a library, oldest first.
pub fn events(candidates: &[Candidate]) -> Vec<Event> {
    let mut dated: Vec<(i64, usize)> = candidates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((c.taken_at?, i)))
        .collect();
    dated.sort();
    let mut events: Vec<Event> = Vec::new();
    let mut previous: Option<(i64, usize)> = None;
    for (time, index) in dated {
        let starts_new = previous.is_none_or(|(prev_time, prev_index)| {
            let gap_hours = (time - prev_time) as f64 / 3600.0;
            let moved = match (candidates[prev_index].place, candidates[index].place) {
                (Some(a), Some(b)) => km_between(a, b) > EVENT_MOVE_KM,
                _ => false,
            };
            gap_hours > EVENT_GAP_HOURS || moved
        });
        if starts_new {
            events.push(Event {
                photos: vec![index],
                start: time,
                end: time,
            });
        } else if let Some(event) = events.last_mut() {
            event.photos.push(index);
            event.end = time;
        }
        previous = Some((time, index));
    }
    events
}

/// The event a "memories" montage is made from: the one with the most photos (ties to
/// the newest).
pub fn best_event(events: &[Event]) -> Option<&Event> {
    events.iter().max_by_key(|e| (e.photos.len(), e.start))
}

/// Up to `count` of `photos` (positions into `candidates`), in time order: near-
/// duplicates (`same(a, b)`) dropped in favour of the better photo, then the best photo
/// of each of `count` equal stretches of the time span, then the best of the rest.
/// A photo's worth: named faces first, then faces.
pub fn choose(
    candidates: &[Candidate],
    photos: &[usize],
    count: usize,
    same: &dyn Fn(usize, usize) -> bool,
) -> Vec<usize> {
    let worth = |i: usize| (candidates[i].named_faces, candidates[i].faces);
    // best first, so the one kept of a near-duplicate pair is the better
    let mut by_worth: Vec<usize> = photos.to_vec();
    by_worth.sort_by(|&a, &b| worth(b).cmp(&worth(a)).then(a.cmp(&b)));
    let mut distinct: Vec<usize> = Vec::new();
    for photo in by_worth {
        if !distinct.iter().any(|&kept| same(kept, photo)) {
            distinct.push(photo);
        }
    }
    if distinct.len() <= count {
        return in_time_order(candidates, distinct);
    }
    let time = |i: usize| candidates[i].taken_at.unwrap_or(0);
    let (start, end) = distinct.iter().fold((i64::MAX, i64::MIN), |(lo, hi), &i| {
        (lo.min(time(i)), hi.max(time(i)))
    });
    let span = (end - start).max(1) as f64;
    let stretch_of = |i: usize| {
        (((time(i) - start) as f64 / span) * count as f64).min(count as f64 - 1.0) as usize
    };
    let mut chosen: Vec<usize> = Vec::with_capacity(count);
    let mut stretch_taken = vec![false; count];
    for &photo in &distinct {
        let stretch = stretch_of(photo);
        if !stretch_taken[stretch] {
            stretch_taken[stretch] = true;
            chosen.push(photo);
        }
    }
    for &photo in &distinct {
        if chosen.len() == count {
            break;
        }
        if !chosen.contains(&photo) {
            chosen.push(photo);
        }
    }
    in_time_order(candidates, chosen)
}

fn in_time_order(candidates: &[Candidate], mut photos: Vec<usize>) -> Vec<usize> {
    photos.sort_by_key(|&i| (candidates[i].taken_at, i));
    photos
}

/// A taken-at time as the album stores it ("YYYY-MM-DDTHH:MM:SS", EXIF's local time)
/// in seconds since 1970, read as if UTC: only differences matter to events.
pub fn seconds_of(taken_at: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(taken_at, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// The title card's second line: "3 May 2024", or "3 May 2024 – 5 May 2024" when the
/// taken-at times span several days; empty when none is known.
pub fn date_range<'a>(taken_at: impl IntoIterator<Item = &'a str>) -> String {
    let days: Vec<chrono::NaiveDate> = taken_at
        .into_iter()
        .filter_map(|t| chrono::NaiveDate::parse_from_str(t.get(..10)?, "%Y-%m-%d").ok())
        .collect();
    let (Some(first), Some(last)) = (days.iter().min(), days.iter().max()) else {
        return String::new();
    };
    let day = |d: &chrono::NaiveDate| d.format("%-d %b %Y").to_string();
    if first == last {
        day(first)
    } else {
        format!("{} – {}", day(first), day(last))
    }
}

/// Great-circle distance (haversine, mean Earth radius).
pub fn km_between(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_cards_dates_say_the_days_spanned() {
        assert_eq!(
            date_range(["2024-05-03T09:00:00", "2024-05-03T18:00:00"]),
            "3 May 2024"
        );
        assert_eq!(
            date_range(["2024-05-05T09:00:00", "not a date", "2024-05-03T18:00:00"]),
            "3 May 2024 – 5 May 2024"
        );
        assert_eq!(date_range([]), "");
        assert_eq!(seconds_of("1970-01-01T00:01:40"), Some(100));
        assert_eq!(seconds_of("2024:05:03 09:00:00"), None);
    }

    const HOUR: i64 = 3600;
    const DAY: i64 = 24 * HOUR;

    fn at(seconds: i64) -> Candidate {
        Candidate {
            taken_at: Some(seconds),
            place: None,
            faces: 0,
            named_faces: 0,
        }
    }

    #[test]
    fn a_night_or_a_journey_starts_a_new_event() {
        let mut photos = vec![at(0), at(HOUR), at(2 * HOUR), at(DAY), at(DAY + HOUR)];
        photos.push(Candidate {
            taken_at: None,
            ..at(0)
        });
        // two hours later but 340 km away (Paris → London)
        photos[1].place = Some((48.8566, 2.3522));
        photos[2].place = Some((51.5074, -0.1278));
        let found = events(&photos);
        let members: Vec<Vec<usize>> = found.iter().map(|e| e.photos.clone()).collect();
        assert_eq!(members, vec![vec![0, 1], vec![2], vec![3, 4]]);
        assert_eq!((found[2].start, found[2].end), (DAY, DAY + HOUR));
        assert!((km_between((48.8566, 2.3522), (51.5074, -0.1278)) - 344.0).abs() < 5.0);
    }

    #[test]
    fn the_choice_drops_near_duplicates_keeping_the_one_with_named_faces() {
        let mut photos: Vec<Candidate> = (0..4).map(|i| at(i * HOUR)).collect();
        photos[1].named_faces = 1;
        photos[1].faces = 1;
        // 0 and 1 are the same shot; 2 and 3 too
        let same = |a: usize, b: usize| a / 2 == b / 2;
        let chosen = choose(&photos, &[0, 1, 2, 3], 4, &same);
        assert_eq!(chosen, vec![1, 2]);
    }

    #[test]
    fn the_choice_spreads_over_the_event_and_prefers_faces() {
        // 12 photos over 12 hours; the first six hours have faces
        let photos: Vec<Candidate> = (0..12)
            .map(|i| Candidate {
                faces: usize::from(i < 6),
                ..at(i * HOUR)
            })
            .collect();
        let all: Vec<usize> = (0..12).collect();
        let chosen = choose(&photos, &all, 3, &|_, _| false);
        assert_eq!(chosen.len(), 3);
        // one from each third of the day, in time order
        let thirds: Vec<i64> = chosen
            .iter()
            .map(|&i| photos[i].taken_at.unwrap() / (4 * HOUR))
            .collect();
        assert_eq!(thirds, vec![0, 1, 2]);
        // within the first third, a photo with faces
        assert!(photos[chosen[0]].faces > 0);
    }

    #[test]
    fn lengths_hold_the_expected_number_of_photos() {
        assert_eq!(Length::Short.photos(3.0, 2.5), 9);
        assert_eq!(Length::Medium.photos(3.0, 2.5), 19);
        assert_eq!(Length::Long.photos(3.0, 2.5), 39);
        let events = [
            Event {
                photos: vec![0, 1],
                start: 0,
                end: 1,
            },
            Event {
                photos: vec![2, 3, 4],
                start: 5,
                end: 9,
            },
        ];
        assert_eq!(best_event(&events).unwrap().start, 5);
    }
}
