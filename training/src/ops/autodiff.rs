//! `Autodiff<B>` versions of the layer operations: the forward is `B`'s kernel, and a
//! handwritten backward node calls `B`'s backward kernel, so the gradient is computed
//! the way the backend does it best (one ATen call on LibTorch) instead of by
//! differentiating a composition op by op.
//!
//! What each node keeps for its backward is what PyTorch's autograd keeps: a
//! convolution its input and weight, a batch norm its input, γ and the batch's mean
//! and `1/σ` (plus its output when a ReLU is fused in), a ReLU its output. The kept
//! primitives share storage with the forward's, so they are never written in place.

use burn::backend::AutodiffBackend;
use burn::backend::Backend;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;

use super::profile::{self, Op};
use super::{AdamWHyper, Moments, RunningStatistics, SgdHyper, TrainKernels, Wanted};

type AdTensor<B, C> = FloatTensor<Autodiff<B, C>>;

/// A result that no gradient flows through.
fn untracked<B: Backend, C: CheckpointStrategy>(tensor: FloatTensor<B>) -> AdTensor<B, C> {
    <Autodiff<B, C> as AutodiffBackend>::from_inner(tensor)
}

#[derive(Debug)]
struct Conv2dBackward;

#[derive(Debug, Clone)]
struct Conv2dState<B: Backend> {
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    options: ConvOptions<2>,
}

/// Parents: `[x, weight]` or `[x, weight, bias]`.
impl<B: TrainKernels, const N: usize> Backward<B, N> for Conv2dBackward {
    type State = Conv2dState<B>;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let output_grad = grads.consume::<B>(&ops.node);
        let parent = |i: usize| ops.parents.get(i).and_then(Option::as_ref);
        let wanted = Wanted {
            input: parent(0).is_some(),
            weight: parent(1).is_some(),
            bias: parent(2).is_some(),
        };
        let state = ops.state;
        let result = profile::time(Op::ConvBackward, || {
            B::conv2d_backward(state.x, state.weight, output_grad, state.options, wanted)
        });
        for (index, grad) in [result.input, result.weight, result.bias]
            .into_iter()
            .enumerate()
        {
            if let (Some(node), Some(grad)) = (parent(index), grad) {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

pub(super) fn conv2d<B: TrainKernels, C: CheckpointStrategy>(
    x: AdTensor<B, C>,
    weight: AdTensor<B, C>,
    bias: Option<AdTensor<B, C>>,
    options: ConvOptions<2>,
) -> AdTensor<B, C> {
    match bias {
        None => match Conv2dBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                let output = profile::time(Op::ConvForward, || {
                    B::conv2d_forward(x.clone(), weight.clone(), None, options.clone())
                });
                prep.finish(Conv2dState { x, weight, options }, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_forward(
                x.into_primitive(),
                weight.into_primitive(),
                None,
                options,
            )),
        },
        Some(bias) => match Conv2dBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                let bias = bias.into_primitive();
                let output = profile::time(Op::ConvForward, || {
                    B::conv2d_forward(x.clone(), weight.clone(), Some(bias), options.clone())
                });
                prep.finish(Conv2dState { x, weight, options }, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_forward(
                x.into_primitive(),
                weight.into_primitive(),
                Some(bias.into_primitive()),
                options,
            )),
        },
    }
}

#[derive(Debug)]
struct BatchNormBackward;

#[derive(Debug, Clone)]
struct BatchNormState<B: Backend> {
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    mean: FloatTensor<B>,
    invstd: FloatTensor<B>,
    epsilon: f64,
    /// The output after the fused ReLU, when there is one.
    relu_output: Option<FloatTensor<B>>,
}

/// Parents: `[x, γ, β]`.
impl<B: TrainKernels> Backward<B, 3> for BatchNormBackward {
    type State = BatchNormState<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let mut output_grad = grads.consume::<B>(&ops.node);
        let state = ops.state;
        if let Some(output) = state.relu_output {
            output_grad = profile::time(Op::ReluBackward, || {
                B::relu_backward_from_output(output, output_grad)
            });
        }
        let wanted = Wanted {
            input: node_x.is_some(),
            weight: node_gamma.is_some(),
            bias: node_beta.is_some(),
        };
        let result = profile::time(Op::BatchNormBackward, || {
            B::batch_norm_backward(
                state.x,
                state.gamma,
                state.mean,
                state.invstd,
                output_grad,
                state.epsilon,
                wanted,
            )
        });
        for (node, grad) in [
            (node_x, result.input),
            (node_gamma, result.weight),
            (node_beta, result.bias),
        ] {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

pub(super) fn batch_norm_train<B: TrainKernels, C: CheckpointStrategy>(
    [x, gamma, beta]: [AdTensor<B, C>; 3],
    [running_mean, running_var]: [AdTensor<B, C>; 2],
    momentum: f64,
    epsilon: f64,
    relu: bool,
) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
    let prep = BatchNormBackward
        .prepare::<C>([x.node(), gamma.node(), beta.node()])
        .compute_bound()
        .stateful();
    let (x, gamma, beta) = (
        x.into_primitive(),
        gamma.into_primitive(),
        beta.into_primitive(),
    );
    let running = RunningStatistics {
        mean: running_mean.into_primitive(),
        var: running_var.into_primitive(),
        momentum,
    };
    let saved = profile::time(Op::BatchNormForward, || {
        B::batch_norm_train_forward(x.clone(), gamma.clone(), beta, running, epsilon)
    });
    let output = if relu {
        profile::time(Op::ReluForward, || B::relu_forward(saved.output))
    } else {
        saved.output
    };
    let output = match prep {
        OpsKind::Tracked(prep) => {
            let state = BatchNormState {
                x,
                gamma,
                mean: saved.mean,
                invstd: saved.invstd,
                epsilon,
                relu_output: relu.then(|| output.clone()),
            };
            prep.finish(state, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    // The running statistics are state, not a function to differentiate.
    (
        output,
        untracked::<B, C>(saved.running_mean),
        untracked::<B, C>(saved.running_var),
    )
}

pub(super) fn batch_norm_eval<B: TrainKernels, C: CheckpointStrategy>(
    x: AdTensor<B, C>,
    gamma: AdTensor<B, C>,
    beta: AdTensor<B, C>,
    running_mean: AdTensor<B, C>,
    running_var: AdTensor<B, C>,
    epsilon: f64,
    relu: bool,
) -> AdTensor<B, C> {
    let output = B::batch_norm_eval_forward(
        x.into_primitive(),
        gamma.into_primitive(),
        beta.into_primitive(),
        running_mean.into_primitive(),
        running_var.into_primitive(),
        epsilon,
    );
    untracked::<B, C>(if relu {
        B::relu_forward(output)
    } else {
        output
    })
}

#[derive(Debug)]
struct ReluBackward;

impl<B: TrainKernels> Backward<B, 1> for ReluBackward {
    /// The ReLU's output (PyTorch keeps the same).
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let output_grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node_x {
            let grad = profile::time(Op::ReluBackward, || {
                B::relu_backward_from_output(ops.state, output_grad)
            });
            grads.register::<B>(node.id, grad);
        }
    }
}

pub(super) fn relu<B: TrainKernels, C: CheckpointStrategy>(x: AdTensor<B, C>) -> AdTensor<B, C> {
    match ReluBackward
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let output = profile::time(Op::ReluForward, || B::relu_forward(x.into_primitive()));
            prep.finish(output.clone(), output)
        }
        OpsKind::UnTracked(prep) => prep.finish(B::relu_forward(x.into_primitive())),
    }
}

/// An optimiser step is not differentiated: on autodiff tensors (which optimisers never
/// hand over: they step the inner tensors) it runs on the inner ones, untracked.
pub(super) fn sgd_step<B: TrainKernels, C: CheckpointStrategy>(
    param: AdTensor<B, C>,
    grad: AdTensor<B, C>,
    velocity: Option<AdTensor<B, C>>,
    hyper: SgdHyper,
) -> (AdTensor<B, C>, AdTensor<B, C>) {
    let (param, velocity) = B::sgd_step(
        param.into_primitive(),
        grad.into_primitive(),
        velocity.map(|v| v.into_primitive()),
        hyper,
    );
    (untracked::<B, C>(param), untracked::<B, C>(velocity))
}

/// As [`sgd_step`]: an AdamW step runs on the inner tensors, untracked.
pub(super) fn adamw_step<B: TrainKernels, C: CheckpointStrategy>(
    param: AdTensor<B, C>,
    grad: AdTensor<B, C>,
    moments: Option<[AdTensor<B, C>; 2]>,
    hyper: AdamWHyper,
) -> [AdTensor<B, C>; 3] {
    let moments = moments.map(|[first, second]| Moments {
        first: first.into_primitive(),
        second: second.into_primitive(),
    });
    let (param, moments) = B::adamw_step(
        param.into_primitive(),
        grad.into_primitive(),
        moments,
        hyper,
    );
    [param, moments.first, moments.second].map(untracked::<B, C>)
}
