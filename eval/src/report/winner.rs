//! The winner rule of a comparison, on plain numbers so it can be tested without runs:
//! the highest validation top-1 (point estimate) among the runs whose training took at
//! most the budget; equal top-1 goes to fewer multiply–accumulates, then to the run
//! listed first. The test split never enters: it is not an input here.

use crate::{Error, Estimate, Result};

/// The rule in one sentence, for the report.
pub const RULE: &str = "highest validation top-1 (the point estimate of `album eval` on the \
     best checkpoint) among the runs whose training time is within the budget; equal top-1 \
     goes to the run with fewer multiply–accumulates per image, then to the run listed first";

/// What the rule looks at in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Contender {
    pub name: String,
    /// Validation top-1 with its interval.
    pub val_top1: Estimate,
    /// Multiply–accumulates of one forward pass on one image.
    pub macs: u64,
    /// Wall-clock seconds of training (validation included), summed over sessions.
    pub train_seconds: f64,
}

/// How a tie on validation top-1 between the winner and the runner-up was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TieBreak {
    FewerMacs,
    ListedFirst,
}

/// The rule's outcome; indices point into the contenders as given.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub winner: usize,
    /// Every run within the budget, best first (the winner first).
    pub ranking: Vec<usize>,
    /// Runs whose training took longer than the budget, in the order given.
    pub over_budget: Vec<usize>,
    pub budget_seconds: Option<f64>,
    /// The second of the ranking, when there is one.
    pub runner_up: Option<usize>,
    /// Winner's top-1 minus the runner-up's (a share, not points).
    pub margin: Option<f64>,
    /// Whether the two intervals overlap: then the data cannot tell the two apart and the
    /// win is not significant.
    pub intervals_overlap: Option<bool>,
    /// Set when the winner and the runner-up have the same top-1.
    pub tie_break: Option<TieBreak>,
}

/// Applies the rule. An empty list, a top-1 that is not a number, a budget that is not
/// positive, or a budget no run kept to, is an error.
pub fn choose_winner(contenders: &[Contender], budget_seconds: Option<f64>) -> Result<Decision> {
    if contenders.is_empty() {
        return Err(Error::Run("no runs to compare".into()));
    }
    if let Some(budget) = budget_seconds
        && !(budget.is_finite() && budget > 0.0)
    {
        return Err(Error::Options(format!(
            "the time budget is {budget} s; it must be a positive number of seconds"
        )));
    }
    if let Some(bad) = contenders
        .iter()
        .find(|c| !c.val_top1.value.is_finite() || !c.train_seconds.is_finite())
    {
        return Err(Error::Invalid(format!(
            "run {}: validation top-1 {} and training time {} s must be numbers",
            bad.name, bad.val_top1.value, bad.train_seconds
        )));
    }
    let within = |c: &Contender| budget_seconds.is_none_or(|b| c.train_seconds <= b);
    let (mut ranking, over_budget): (Vec<usize>, Vec<usize>) =
        (0..contenders.len()).partition(|&i| within(&contenders[i]));
    ranking.sort_by(|&a, &b| {
        let (x, y) = (&contenders[a], &contenders[b]);
        y.val_top1
            .value
            .total_cmp(&x.val_top1.value)
            .then(x.macs.cmp(&y.macs))
            .then(a.cmp(&b))
    });
    let Some(&winner) = ranking.first() else {
        // `contenders` is not empty (checked above), so neither is this fold's input.
        let fastest = contenders
            .iter()
            .min_by(|a, b| a.train_seconds.total_cmp(&b.train_seconds))
            .map_or_else(String::new, |c| {
                format!("; the fastest, {}, took {:.0} s", c.name, c.train_seconds)
            });
        return Err(Error::Run(format!(
            "no run trained within the budget of {} s{fastest}",
            budget_seconds.unwrap_or_default(),
        )));
    };
    let runner_up = ranking.get(1).copied();
    let best = &contenders[winner];
    let second = runner_up.map(|i| &contenders[i]);
    Ok(Decision {
        winner,
        over_budget,
        budget_seconds,
        runner_up,
        margin: second.map(|s| best.val_top1.value - s.val_top1.value),
        intervals_overlap: second.map(|s| intervals_overlap(&best.val_top1, &s.val_top1)),
        tie_break: second
            .filter(|s| s.val_top1.value == best.val_top1.value)
            .map(|s| {
                if s.macs == best.macs {
                    TieBreak::ListedFirst
                } else {
                    TieBreak::FewerMacs
                }
            }),
        ranking,
    })
}

/// Whether two closed intervals share a point.
pub fn intervals_overlap(a: &Estimate, b: &Estimate) -> bool {
    a.low <= b.high && b.low <= a.high
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, top1: f64, half_width: f64, macs: u64, seconds: f64) -> Contender {
        Contender {
            name: name.into(),
            val_top1: Estimate {
                value: top1,
                low: top1 - half_width,
                high: top1 + half_width,
            },
            macs,
            train_seconds: seconds,
        }
    }

    #[test]
    fn the_highest_top1_wins_and_the_margin_is_to_the_second() {
        let runs = [
            run("a", 0.80, 0.01, 100, 50.0),
            run("b", 0.90, 0.01, 900, 500.0),
            run("c", 0.85, 0.01, 10, 10.0),
        ];
        let d = choose_winner(&runs, None).unwrap();
        assert_eq!((d.winner, d.ranking.clone()), (1, vec![1, 2, 0]));
        assert_eq!(d.runner_up, Some(2));
        assert!((d.margin.unwrap() - 0.05).abs() < 1e-12);
        assert_eq!(d.intervals_overlap, Some(false));
        assert_eq!((d.tie_break, d.over_budget.is_empty()), (None, true));
    }

    #[test]
    fn a_budget_excludes_slower_runs_however_accurate() {
        let runs = [
            run("slow", 0.95, 0.01, 100, 1000.0),
            run("fast", 0.70, 0.01, 100, 100.0),
            run("edge", 0.72, 0.01, 100, 300.0),
        ];
        let d = choose_winner(&runs, Some(300.0)).unwrap();
        // a run exactly at the budget is within it
        assert_eq!((d.winner, d.runner_up), (2, Some(1)));
        assert_eq!(d.over_budget, vec![0]);
        assert_eq!(d.ranking, vec![2, 1]);
        assert_eq!(d.budget_seconds, Some(300.0));
    }

    #[test]
    fn equal_top1_goes_to_fewer_macs_then_to_the_run_listed_first() {
        let runs = [
            run("big", 0.90, 0.02, 5_000, 10.0),
            run("small", 0.90, 0.02, 1_000, 10.0),
            run("small-again", 0.90, 0.02, 1_000, 10.0),
        ];
        let d = choose_winner(&runs, None).unwrap();
        assert_eq!(d.ranking, vec![1, 2, 0]);
        assert_eq!(d.tie_break, Some(TieBreak::ListedFirst));
        assert_eq!((d.margin, d.intervals_overlap), (Some(0.0), Some(true)));
        let d = choose_winner(&runs[..2], None).unwrap();
        assert_eq!((d.winner, d.tie_break), (1, Some(TieBreak::FewerMacs)));
    }

    #[test]
    fn overlapping_intervals_are_reported() {
        let runs = [run("a", 0.91, 0.02, 1, 1.0), run("b", 0.88, 0.02, 1, 1.0)];
        let d = choose_winner(&runs, None).unwrap();
        assert_eq!((d.winner, d.intervals_overlap), (0, Some(true)));
        let alone = choose_winner(&runs[..1], None).unwrap();
        assert_eq!((alone.runner_up, alone.margin), (None, None));
        assert_eq!(alone.intervals_overlap, None);
    }

    #[test]
    fn no_run_within_the_budget_names_the_fastest() {
        let runs = [run("a", 0.9, 0.01, 1, 500.0), run("b", 0.8, 0.01, 1, 400.0)];
        let error = choose_winner(&runs, Some(60.0)).unwrap_err().to_string();
        assert!(
            error.contains("budget of 60 s") && error.contains("b, took 400 s"),
            "{error}"
        );
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(matches!(choose_winner(&[], None), Err(Error::Run(_))));
        let runs = [run("a", 0.9, 0.01, 1, 1.0)];
        for budget in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                choose_winner(&runs, Some(budget)),
                Err(Error::Options(_))
            ));
        }
        let nan = [run("nan", f64::NAN, 0.0, 1, 1.0)];
        let error = choose_winner(&nan, None).unwrap_err().to_string();
        assert!(error.contains("run nan"), "{error}");
    }
}
