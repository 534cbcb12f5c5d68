//! Model EMA: an exponential moving average of the weights, evaluated beside the live
//! model (Polyak & Juditsky 1992, "Acceleration of stochastic approximation by
//! averaging"; the per-step form timm's `ModelEmaV2` and TensorFlow's
//! `ExponentialMovingAverage` use).
//!
//! After every optimiser step each parameter's shadow moves towards the live value:
//!
//! ```text
//! d_n    = min(decay, (1 + n) / (10 + n))       n = updates so far (TF's num_updates rule:
//!                                               early shadows follow the fast-moving weights)
//! shadow = d_n · shadow + (1 − d_n) · live
//! ```
//!
//! Every float tensor the model holds is averaged, batch norm's running mean and
//! variance included (timm's `ModelEmaV2` averages buffers too), so the averaged weights
//! meet statistics gathered as they moved. Shadows are matched to tensors by the order a
//! module visits them, not by parameter id: burn gives a running statistic a new id each
//! time a model is loaded, and the average must survive `--resume`. Shadows are kept in
//! float32 whatever the model's precision: in bf16 a step of (1 − 0.999) · difference
//! rounds away.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{DType, Tensor};

use crate::models::Model;

/// The averaged weights of a model, in the order the model visits its tensors.
pub struct ModelEma {
    decay: f64,
    updates: usize,
    /// Flattened float32 shadows; reshaped to each tensor's shape when applied.
    shadows: Vec<Tensor<1>>,
}

impl ModelEma {
    /// Starts the average at `model`'s weights (any device; the shadows live on the
    /// device of the model's parameters, without autodiff).
    pub fn new(model: &Model, decay: f64) -> Self {
        Self::resumed(model, decay, 0)
    }

    /// Continues an average whose shadows are `averaged`'s weights after `updates`
    /// updates (a checkpoint's EMA model and the run's step count).
    pub fn resumed(averaged: &Model, decay: f64, updates: usize) -> Self {
        let mut collect = CollectShadows::default();
        averaged.valid().visit(&mut collect);
        ModelEma {
            decay,
            updates,
            shadows: collect.0,
        }
    }

    /// The decay the next update will use.
    pub fn current_decay(&self) -> f64 {
        let n = self.updates as f64;
        self.decay.min((1.0 + n) / (10.0 + n))
    }

    pub fn updates(&self) -> usize {
        self.updates
    }

    /// Moves every shadow towards `live`'s weight by one step.
    pub fn update(&mut self, live: &Model) {
        let decay = self.current_decay();
        let mut step = UpdateShadows {
            decay,
            shadows: &mut self.shadows,
            next: 0,
        };
        live.valid().visit(&mut step);
        self.updates += 1;
    }

    /// `model` with its parameters replaced by the shadows, cast to each parameter's
    /// type; everything else (batch norm statistics) stays `model`'s.
    pub fn apply_to(&self, model: Model) -> Model {
        model.map(&mut ApplyShadows {
            shadows: &self.shadows,
            next: 0,
        })
    }
}

/// A float tensor of a module, flattened to float32.
fn flat_f32<const D: usize>(param: &Param<Tensor<D>>) -> Tensor<1> {
    let value = param.val().detach().cast(DType::F32);
    let count = value.shape().num_elements();
    value.reshape([count])
}

#[derive(Default)]
struct CollectShadows(Vec<Tensor<1>>);

impl ModuleVisitor for CollectShadows {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(flat_f32(param));
    }
}

struct UpdateShadows<'a> {
    decay: f64,
    shadows: &'a mut Vec<Tensor<1>>,
    next: usize,
}

impl ModuleVisitor for UpdateShadows<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let live = flat_f32(param);
        let index = self.next;
        self.next += 1;
        match self.shadows.get_mut(index) {
            Some(shadow) if shadow.dims() == live.dims() => {
                *shadow = shadow.clone() * self.decay + live * (1.0 - self.decay);
            }
            // A tensor the average has not seen (never, for a model built from the same
            // config) starts at its live value.
            Some(shadow) => *shadow = live,
            None => self.shadows.push(live),
        }
    }
}

struct ApplyShadows<'a> {
    shadows: &'a [Tensor<1>],
    next: usize,
}

impl ModuleMapper for ApplyShadows<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let index = self.next;
        self.next += 1;
        let Some(shadow) = self.shadows.get(index).cloned() else {
            return param;
        };
        param.map(|value| {
            let (dims, dtype, device) = (value.dims(), value.dtype(), value.device());
            if shadow.dims()[0] != dims.iter().product::<usize>() {
                return value;
            }
            shadow.reshape(dims).cast(dtype).to_device(&device)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelConfig;
    use crate::training::host_f32;
    use burn::tensor::Device;

    fn tiny_model() -> Model {
        ModelConfig::new("se-resnext50".into())
            .with_width(0.125)
            .init(&Device::flex())
            .unwrap()
    }

    /// The first tensor's values, in the order the model visits them (the stem's
    /// convolution weight).
    fn first_weights(model: &Model) -> Vec<f32> {
        let mut collect = CollectShadows::default();
        model.visit(&mut collect);
        host_f32(collect.0[0].clone()).unwrap()
    }

    /// Scales every parameter: a stand-in for an optimiser step with a known result.
    struct Scale(f32);
    impl ModuleMapper for Scale {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let factor = self.0;
            param.map(|t| t * factor)
        }
    }

    #[test]
    fn the_decay_warms_up_then_holds_at_its_setting() {
        let model = tiny_model();
        let mut ema = ModelEma::new(&model, 0.999);
        assert!((ema.current_decay() - 0.1).abs() < 1e-12);
        ema.update(&model);
        assert!((ema.current_decay() - 2.0 / 11.0).abs() < 1e-12);
        let late = ModelEma::resumed(&model, 0.999, 1_000_000);
        assert_eq!(late.current_decay(), 0.999);
    }

    /// Two updates from w₀ with live weights 2·w₀ then 3·w₀: shadow₁ = 0.1·w₀ + 0.9·2w₀
    /// = 1.9·w₀; shadow₂ = d₁·1.9w₀ + (1 − d₁)·3w₀ with d₁ = 2/11.
    #[test]
    fn each_update_moves_the_shadow_by_the_documented_rule() {
        let start = tiny_model();
        let w0 = first_weights(&start);
        let mut ema = ModelEma::new(&start, 0.999);
        ema.update(&start.clone().map(&mut Scale(2.0)));
        ema.update(&start.clone().map(&mut Scale(3.0)));
        let d1 = 2.0 / 11.0;
        let expected = (d1 * 1.9 + (1.0 - d1) * 3.0) as f32;
        let averaged = first_weights(&ema.apply_to(start.clone()));
        for (a, w) in averaged.iter().zip(&w0) {
            assert!(
                (a - expected * w).abs() <= 1e-5 * (1.0 + w.abs()),
                "{a} vs {}",
                expected * w
            );
        }
        assert_eq!(ema.updates(), 2);
    }

    /// Applying the average changes the parameters and nothing else: the model given
    /// keeps its own structure, and an average that never moved gives back the model.
    #[test]
    fn an_average_that_never_moved_is_the_model_itself() {
        let model = tiny_model();
        let ema = ModelEma::new(&model, 0.9);
        let moved = model.clone().map(&mut Scale(5.0));
        assert_eq!(first_weights(&ema.apply_to(moved)), first_weights(&model));
    }

    fn all_values(model: &Model) -> Vec<Vec<f32>> {
        let mut collect = CollectShadows::default();
        model.visit(&mut collect);
        collect
            .0
            .into_iter()
            .map(|t| host_f32(t).unwrap())
            .collect()
    }

    /// Regression: shadows were once keyed by parameter id, and burn gives batch norm's
    /// running statistics new ids when a model is loaded, so after `--resume` their
    /// averages were silently replaced by the live values.
    #[test]
    fn an_average_saved_and_loaded_back_continues_where_it_was() {
        let config = ModelConfig::new("se-resnext50".into()).with_width(0.125);
        let start = config.init(&Device::flex()).unwrap();
        let mut ema = ModelEma::new(&start, 0.999);
        ema.update(&start.clone().map(&mut Scale(2.0)));
        let averaged = ema.apply_to(start.clone());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ema.bpk");
        averaged.clone().save_file(&path).unwrap();
        let loaded =
            crate::checkpoint::load_weights(config.init(&Device::flex()).unwrap(), &path).unwrap();
        let resumed = ModelEma::resumed(&loaded, 0.999, ema.updates());
        let live = start.clone().map(&mut Scale(7.0));
        assert_eq!(
            all_values(&resumed.apply_to(live.clone())),
            all_values(&averaged)
        );
        let (mut a, mut b) = (ema, resumed);
        a.update(&live);
        b.update(&live);
        assert_eq!(
            all_values(&a.apply_to(start.clone())),
            all_values(&b.apply_to(start))
        );
    }
}
