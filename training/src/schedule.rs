//! The learning rate at every step: linear warm-up, then cosine or step decay.

use crate::config::{OptimConfig, Schedule};

/// Learning rates for one run, computed per optimiser step.
#[derive(Debug, Clone)]
pub struct LrSchedule {
    peak: f64,
    warmup_steps: usize,
    total_steps: usize,
    steps_per_epoch: usize,
    schedule: Schedule,
    step_epochs: Vec<usize>,
    step_gamma: f64,
}

impl LrSchedule {
    pub fn new(config: &OptimConfig, steps_per_epoch: usize) -> Self {
        let steps_per_epoch = steps_per_epoch.max(1);
        LrSchedule {
            peak: config.peak_lr(),
            warmup_steps: (config.warmup_epochs * steps_per_epoch as f64).round() as usize,
            total_steps: config.epochs * steps_per_epoch,
            steps_per_epoch,
            schedule: config.schedule,
            step_epochs: config.step_epochs.clone(),
            step_gamma: config.step_gamma,
        }
    }

    /// The rate for optimiser step `step` (0-based, counted over the whole run).
    pub fn at(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            // Starts at peak / warmup_steps rather than 0, so the first step moves.
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.schedule {
            Schedule::Cosine => {
                let span = self.total_steps.saturating_sub(self.warmup_steps).max(1);
                let progress = (step - self.warmup_steps) as f64 / span as f64;
                self.peak * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
            }
            Schedule::Step => {
                let epoch = step / self.steps_per_epoch;
                let drops = self.step_epochs.iter().filter(|&&e| epoch >= e).count();
                self.peak * self.step_gamma.powi(drops as i32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(schedule: Schedule) -> OptimConfig {
        OptimConfig {
            epochs: 10,
            batch_size: 128,
            base_lr: 0.2,
            base_batch: 256,
            warmup_epochs: 1.0,
            schedule,
            step_epochs: vec![5, 8],
            step_gamma: 0.1,
            ..OptimConfig::default()
        }
    }

    #[test]
    fn warm_up_rises_linearly_to_the_batch_scaled_peak() {
        let lr = LrSchedule::new(&config(Schedule::Cosine), 100);
        assert!((lr.at(0) - 0.1 / 100.0).abs() < 1e-12);
        assert!((lr.at(49) - 0.05).abs() < 1e-12);
        assert!((lr.at(99) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn cosine_decays_from_the_peak_to_zero_at_the_last_step() {
        let lr = LrSchedule::new(&config(Schedule::Cosine), 100);
        assert!((lr.at(100) - 0.1).abs() < 1e-12);
        assert!((lr.at(550) - 0.05).abs() < 1e-9);
        assert!(lr.at(999) < 1e-5);
        assert!((100..999).all(|s| lr.at(s + 1) <= lr.at(s)));
    }

    #[test]
    fn step_decay_multiplies_by_gamma_at_each_milestone() {
        let lr = LrSchedule::new(&config(Schedule::Step), 100);
        assert!((lr.at(499) - 0.1).abs() < 1e-12);
        assert!((lr.at(500) - 0.01).abs() < 1e-12);
        assert!((lr.at(800) - 0.001).abs() < 1e-12);
    }
}
