//! Predictions for the tests: the hand-computed fixture and seeded synthetic splits.

#![allow(dead_code)]

use album_eval::Predictions;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Three classes, eight photos; every figure is worked out by hand in `tests/metrics.rs`.
pub fn hand_fixture() -> Predictions {
    #[rustfmt::skip]
    let rows: [(usize, [f32; 3]); 8] = [
        (0, [0.70, 0.20, 0.10]), // 1: a → a, conf 0.70
        (0, [0.50, 0.30, 0.20]), // 2: a → a, conf 0.50
        (0, [0.30, 0.65, 0.05]), // 3: a → b, conf 0.65, target ranked 2nd
        (1, [0.10, 0.90, 0.00]), // 4: b → b, conf 0.90
        (1, [0.10, 0.45, 0.45]), // 5: b → b by the tie rule (b before c), conf 0.45
        (1, [0.55, 0.10, 0.35]), // 6: b → a, conf 0.55, target ranked 3rd
        (2, [0.25, 0.30, 0.45]), // 7: c → c, conf 0.45
        (2, [0.45, 0.10, 0.45]), // 8: c → a by the tie rule (a before c), conf 0.45, target 2nd
    ];
    Predictions {
        class_names: vec!["a".into(), "b".into(), "c".into()],
        targets: rows.iter().map(|r| r.0).collect(),
        probabilities: rows.iter().flat_map(|r| r.1).collect(),
        paths: (1..=8).map(|i| format!("images/{i}.jpg")).collect(),
    }
}

/// `n` photos over `classes` classes (round robin), each right with chance `accuracy`;
/// the predicted class gets a probability in [0.4, 0.99] and the rest share what is left.
pub fn synthetic(n: usize, classes: usize, accuracy: f64, seed: u64) -> Predictions {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut targets = Vec::with_capacity(n);
    let mut probabilities = Vec::with_capacity(n * classes);
    for i in 0..n {
        let target = i % classes;
        let predicted = if rng.random_bool(accuracy) {
            target
        } else {
            (target + rng.random_range(1..classes)) % classes
        };
        let top: f32 = rng.random_range(0.4..0.99);
        let rest = (1.0 - top) / (classes - 1) as f32;
        targets.push(target);
        probabilities.extend((0..classes).map(|c| if c == predicted { top } else { rest }));
    }
    Predictions {
        class_names: (0..classes).map(|c| format!("class{c}")).collect(),
        targets,
        probabilities,
        paths: (0..n).map(|i| format!("images/{i:05}.jpg")).collect(),
    }
}

/// Five classes, every photo right with probability 1 on its class.
pub fn perfect(n: usize) -> Predictions {
    let classes = 5;
    let targets: Vec<usize> = (0..n).map(|i| i % classes).collect();
    let probabilities = targets
        .iter()
        .flat_map(|&t| (0..classes).map(move |c| if c == t { 1.0 } else { 0.0 }))
        .collect();
    Predictions {
        class_names: ["people", "animals", "landscape", "vehicles", "buildings"]
            .map(String::from)
            .to_vec(),
        targets,
        probabilities,
        paths: vec![],
    }
}

pub fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-6,
        "{what}: got {actual}, expected {expected}"
    );
}
