#!/usr/bin/env python3
"""The PyTorch side of `album bench train`: images/s of one training step (forward,
loss, backward, optimiser update) of the same architecture as the Rust model, in
PyTorch eager, on one fixed synthetic batch.

    python scripts/bench_train_step.py --model se-resnext50 --width 0.25 --crop 56 \
        --batch 64 --threads 2 --steps 10 --warmup 3

The models below mirror training/src/models/*.rs layer for layer, channel rounding
included (`scaled`, computed in float32 as Rust does), so the parameter counts must
agree exactly; `album bench train` checks that. The step mirrors training.rs and
training/src/bench.rs: cross-entropy with label smoothing plus `--aux-weight` times
each auxiliary head's loss, the loss read back with `.item()` every step, SGD (momentum,
no dampening, no Nesterov) or AdamW (eps 1e-8), weight decay on weights only (never on
rank-1 parameters: biases, norm scales and shifts), at a fixed learning rate.

torch gets `--threads` intra-op threads and one inter-op thread. The last line printed
is one JSON object, the same fields as Rust's `StepThroughput`:

    {"images_per_s": <median of per-step rates>, "images_per_s_total": ...,
     "params": <int>, "batch_size": <int>, "step_seconds": [...], "last_loss": ...,
     "torch": "<version>", "threads": <int>, "device": "cpu",
     "op_seconds": {"conv forward": <seconds per step>, ...},   (with --profile-ops)
     "op_step_seconds": <mean wall seconds of the profiled steps>}

If torch cannot be imported it prints `NO_TORCH <reason>` and exits 3.
"""

import argparse
import json
import math
import statistics
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a name from `album models`")
    parser.add_argument("--width", type=str, default="1.0", help="channel multiplier")
    parser.add_argument("--crop", type=int, default=56, help="image side")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--num-classes", type=int, default=5)
    parser.add_argument("--aux-heads", action="store_true", help="GoogLeNet's two aux heads")
    parser.add_argument("--aux-weight", type=float, default=0.3)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--no-se", action="store_true", help="SE-ResNeXt without SE (ResNeXt)")
    parser.add_argument("--head", choices=["fc", "conv-pool"], default="fc")
    parser.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--profile-ops", type=int, default=0, metavar="STEPS",
                        help="after the timed steps, STEPS more under torch.profiler: "
                             "seconds per step in each layer operation")
    parser.add_argument("--precision", choices=["f32", "bf16", "f16"], default="f32",
                        help="the whole model and batch in this type (burn's rule: no autocast)")
    parser.add_argument("--cudnn-benchmark", action="store_true",
                        help="torch.backends.cudnn.benchmark = True")
    return parser.parse_args()


def scaled(channels, width, multiple_of):
    """layers.rs `scaled`: channels × width rounded (half away from zero) in float32, at
    least one multiple, a multiple of `multiple_of`."""
    import numpy as np

    multiple_of = max(multiple_of, 1)
    raw = np.float32(channels) * np.float32(width) / np.float32(multiple_of)
    return max(int(math.floor(float(raw) + 0.5)), 1) * multiple_of


def build_models(torch):
    """The model classes, defined once torch is imported."""
    nn = torch.nn
    F = torch.nn.functional

    def global_avg_pool(x):
        return x.mean(dim=(2, 3))

    class ConvBn(nn.Module):
        """layers.rs ConvBn: conv (no bias, padding k // 2), batch norm, optional ReLU."""

        def __init__(self, cin, cout, kernel, stride=1, groups=1, relu=True, eps=1e-5):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
            self.bn = nn.BatchNorm2d(cout, eps=eps)
            self.relu = relu

        def forward(self, x):
            x = self.bn(self.conv(x))
            return F.relu(x) if self.relu else x

    # ---- SE-ResNeXt (se_resnext.rs) -------------------------------------------------

    class SqueezeExcitation(nn.Module):
        def __init__(self, channels, reduction):
            super().__init__()
            hidden = max(channels // max(reduction, 1), 1)
            self.reduce = nn.Linear(channels, hidden)
            self.expand = nn.Linear(hidden, channels)

        def forward(self, x):
            s = torch.sigmoid(self.expand(F.relu(self.reduce(global_avg_pool(x)))))
            return x * s[:, :, None, None]

    class Bottleneck(nn.Module):
        def __init__(self, cin, grouped, cout, stride, cardinality, se, reduction):
            super().__init__()
            self.reduce = ConvBn(cin, grouped, 1)
            self.grouped = ConvBn(grouped, grouped, 3, stride, cardinality)
            self.expand = ConvBn(grouped, cout, 1, relu=False)
            nn.init.zeros_(self.expand.bn.weight)  # zero-γ, as zero_init_residual
            self.se = SqueezeExcitation(cout, reduction) if se else None
            needs_projection = stride != 1 or cin != cout
            self.downsample = ConvBn(cin, cout, 1, stride, relu=False) if needs_projection else None

        def forward(self, x):
            shortcut = self.downsample(x) if self.downsample is not None else x
            branch = self.expand(self.grouped(self.reduce(x)))
            if self.se is not None:
                branch = self.se(branch)
            return F.relu(branch + shortcut)

    class SeResNeXt(nn.Module):
        def __init__(self, blocks, classes, width, se=True, head="fc", cardinality=32, base_width=4, reduction=16):
            super().__init__()
            stem = scaled(64, width, 1)
            self.stem = ConvBn(3, stem, 7, 2)
            self.pool = nn.MaxPool2d(3, 2, 1)
            layers, cin = [], stem
            for stage, count in enumerate(blocks):
                planes = 64 << stage
                grouped = scaled(planes * base_width // 64 * cardinality, width, cardinality)
                cout = scaled(planes * 4, width, 1)
                for index in range(count):
                    stride = 2 if stage > 0 and index == 0 else 1
                    layers.append(Bottleneck(cin, grouped, cout, stride, cardinality, se, reduction))
                    cin = cout
            self.blocks = nn.Sequential(*layers)
            self.fc = nn.Linear(cin, classes) if head == "fc" else None
            self.head_conv = nn.Conv2d(cin, classes, 1) if head == "conv-pool" else None

        def forward(self, x):
            x = self.blocks(self.pool(self.stem(x)))
            if self.fc is not None:
                return self.fc(global_avg_pool(x)), []
            return global_avg_pool(self.head_conv(x)), []

    # ---- AlexNet (alexnet.rs) ---------------------------------------------------------

    class AlexNet(nn.Module):
        CONVS = [(64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)]
        LRN_AFTER = [True, True, False, False, False]
        POOL_AFTER = [True, True, False, False, True]

        def __init__(self, classes, width, dropout):
            super().__init__()
            convs, cin = [], 3
            for out, kernel, stride, padding in self.CONVS:
                out = scaled(out, width, 1)
                convs.append(nn.Conv2d(cin, out, kernel, stride, padding))
                cin = out
            self.convs = nn.ModuleList(convs)
            # The paper's α = 1e-4 on the sum; PyTorch (like burn) divides α by the size.
            self.lrn = nn.LocalResponseNorm(5, alpha=1e-4 * 5, beta=0.75, k=2.0)
            self.pool = nn.MaxPool2d(3, 2)
            self.avg_pool = nn.AdaptiveAvgPool2d(6)
            self.dropout = nn.Dropout(dropout)
            hidden = scaled(4096, width, 1)
            self.fc1 = nn.Linear(cin * 36, hidden)
            self.fc2 = nn.Linear(hidden, hidden)
            self.fc3 = nn.Linear(hidden, classes)

        def forward(self, x):
            for index, conv in enumerate(self.convs):
                x = F.relu(conv(x))
                if self.LRN_AFTER[index]:
                    x = self.lrn(x)
                if self.POOL_AFTER[index]:
                    x = self.pool(x)
            x = torch.flatten(self.avg_pool(x), 1)
            x = F.relu(self.fc1(self.dropout(x)))
            x = F.relu(self.fc2(self.dropout(x)))
            return self.fc3(x), []

    # ---- VGG-16 (vgg.rs) --------------------------------------------------------------

    class VggConv(nn.Module):
        def __init__(self, cin, cout, batch_norm):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, 1, 1)
            self.bn = nn.BatchNorm2d(cout) if batch_norm else None

        def forward(self, x):
            x = self.conv(x)
            return F.relu(self.bn(x) if self.bn is not None else x)

    class Vgg(nn.Module):
        STAGES = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]

        def __init__(self, classes, width, batch_norm, dropout):
            super().__init__()
            stages, cin = [], 3
            for channels, count in self.STAGES:
                out = scaled(channels, width, 1)
                convs = [VggConv(cin if i == 0 else out, out, batch_norm) for i in range(count)]
                stages.append(nn.Sequential(*convs))
                cin = out
            self.stages = nn.ModuleList(stages)
            self.pool = nn.MaxPool2d(2, 2)
            self.avg_pool = nn.AdaptiveAvgPool2d(7)
            self.dropout = nn.Dropout(dropout)
            hidden = scaled(4096, width, 1)
            self.fc1 = nn.Linear(cin * 49, hidden)
            self.fc2 = nn.Linear(hidden, hidden)
            self.fc3 = nn.Linear(hidden, classes)

        def forward(self, x):
            for stage in self.stages:
                x = self.pool(stage(x))
            x = torch.flatten(self.avg_pool(x), 1)
            x = self.dropout(F.relu(self.fc1(x)))
            x = self.dropout(F.relu(self.fc2(x)))
            return self.fc3(x), []

    # ---- GoogLeNet (googlenet.rs) -----------------------------------------------------

    STAGE3 = [[64, 96, 128, 16, 32, 32], [128, 128, 192, 32, 96, 64]]
    STAGE4 = [
        [192, 96, 208, 16, 48, 64],
        [160, 112, 224, 24, 64, 64],
        [128, 128, 256, 24, 64, 64],
        [112, 144, 288, 32, 64, 64],
        [256, 160, 320, 32, 128, 128],
    ]
    STAGE5 = [[256, 160, 320, 32, 128, 128], [384, 192, 384, 48, 128, 128]]
    AUX_AFTER = [0, 3]

    def basic_conv(cin, cout, kernel, stride=1):
        return ConvBn(cin, cout, kernel, stride, eps=1e-3)

    def inception_output(widths, width):
        return sum(scaled(widths[i], width, 1) for i in (0, 2, 4, 5))

    class Inception(nn.Module):
        def __init__(self, cin, widths):
            super().__init__()
            one, reduce3, three, reduce5, five, proj = widths
            self.branch1 = basic_conv(cin, one, 1)
            self.reduce3 = basic_conv(cin, reduce3, 1)
            self.branch3 = basic_conv(reduce3, three, 3)
            self.reduce5 = basic_conv(cin, reduce5, 1)
            self.branch5 = basic_conv(reduce5, five, 3)  # "5×5", 3×3 as in torchvision
            self.pool = nn.MaxPool2d(3, 1, 1, ceil_mode=True)
            self.pool_proj = basic_conv(cin, proj, 1)

        def forward(self, x):
            return torch.cat(
                [
                    self.branch1(x),
                    self.branch3(self.reduce3(x)),
                    self.branch5(self.reduce5(x)),
                    self.pool_proj(self.pool(x)),
                ],
                1,
            )

    class InceptionAux(nn.Module):
        def __init__(self, cin, width, classes):
            super().__init__()
            reduced, hidden = scaled(128, width, 1), scaled(1024, width, 1)
            self.pool = nn.AdaptiveAvgPool2d(4)
            self.conv = basic_conv(cin, reduced, 1)
            self.fc1 = nn.Linear(reduced * 16, hidden)
            self.fc2 = nn.Linear(hidden, classes)
            self.dropout = nn.Dropout(0.7)

        def forward(self, x):
            x = torch.flatten(self.conv(self.pool(x)), 1)
            return self.fc2(self.dropout(F.relu(self.fc1(x))))

    class GoogLeNet(nn.Module):
        def __init__(self, classes, width, aux_heads, dropout):
            super().__init__()
            c = lambda n: scaled(n, width, 1)  # noqa: E731
            self.conv1 = basic_conv(3, c(64), 7, 2)
            self.conv2 = basic_conv(c(64), c(64), 1)
            self.conv3 = basic_conv(c(64), c(192), 3)
            self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.pool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
            channels = c(192)

            def stage(widths):
                nonlocal channels
                modules = []
                for w in widths:
                    modules.append(Inception(channels, [scaled(n, width, 1) for n in w]))
                    channels = inception_output(w, width)
                return nn.ModuleList(modules)

            self.stage3 = stage(STAGE3)
            self.stage4 = stage(STAGE4)
            self.stage5 = stage(STAGE5)
            aux_inputs = [inception_output(STAGE4[i], width) for i in AUX_AFTER]
            self.aux = nn.ModuleList(
                [InceptionAux(cin, width, classes) for cin in aux_inputs] if aux_heads else []
            )
            self.dropout = nn.Dropout(dropout)
            self.fc = nn.Linear(channels, classes)

        def forward(self, x):
            x = self.pool(self.conv1(x))
            x = self.pool(self.conv3(self.conv2(x)))
            for module in self.stage3:
                x = module(x)
            x = self.pool(x)
            aux = []
            for index, module in enumerate(self.stage4):
                x = module(x)
                if index in AUX_AFTER and AUX_AFTER.index(index) < len(self.aux):
                    aux.append(self.aux[AUX_AFTER.index(index)](x))
            x = self.pool4(x)
            for module in self.stage5:
                x = module(x)
            return self.fc(self.dropout(global_avg_pool(x))), aux

    # ---- DenseNet-121 (densenet.rs) ---------------------------------------------------

    class NormReluConv(nn.Module):
        def __init__(self, cin, cout, kernel):
            super().__init__()
            self.bn = nn.BatchNorm2d(cin)
            self.conv = nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False)

        def forward(self, x):
            return self.conv(F.relu(self.bn(x)))

    class DenseLayer(nn.Module):
        def __init__(self, cin, growth):
            super().__init__()
            self.bottleneck = NormReluConv(cin, 4 * growth, 1)
            self.conv = NormReluConv(4 * growth, growth, 3)

        def forward(self, x):
            return self.conv(self.bottleneck(x))

    class DenseBlock(nn.Module):
        def __init__(self, cin, count, growth):
            super().__init__()
            self.layers = nn.ModuleList([DenseLayer(cin + i * growth, growth) for i in range(count)])

        def forward(self, x):
            features = [x]
            for layer in self.layers:
                features.append(layer(torch.cat(features, 1)))
            return torch.cat(features, 1)

    class Transition(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.reduce = NormReluConv(cin, cout, 1)
            self.pool = nn.AvgPool2d(2, 2)

        def forward(self, x):
            return self.pool(self.reduce(x))

    class DenseNet(nn.Module):
        BLOCKS = [6, 12, 24, 16]

        def __init__(self, classes, width):
            super().__init__()
            growth, stem = scaled(32, width, 1), scaled(64, width, 1)
            self.stem = ConvBn(3, stem, 7, 2)
            self.pool = nn.MaxPool2d(3, 2, 1)
            blocks, transitions, channels = [], [], stem
            for index, count in enumerate(self.BLOCKS):
                blocks.append(DenseBlock(channels, count, growth))
                channels += count * growth
                if index + 1 < len(self.BLOCKS):
                    transitions.append(Transition(channels, channels // 2))
                    channels //= 2
            self.blocks = nn.ModuleList(blocks)
            self.transitions = nn.ModuleList(transitions)
            self.norm = nn.BatchNorm2d(channels)
            self.fc = nn.Linear(channels, classes)

        def forward(self, x):
            x = self.pool(self.stem(x))
            for index, block in enumerate(self.blocks):
                x = block(x)
                if index < len(self.transitions):
                    x = self.transitions[index](x)
            return self.fc(global_avg_pool(F.relu(self.norm(x)))), []

    import numpy as np

    def build(args):
        width, classes = np.float32(args.width), args.num_classes
        depths = {"se-resnext50": [3, 4, 6, 3], "se-resnext101": [3, 4, 23, 3], "se-resnext152": [3, 8, 36, 3]}
        if args.model in depths:
            return SeResNeXt(depths[args.model], classes, width, se=not args.no_se, head=args.head)
        if args.model == "alexnet":
            return AlexNet(classes, width, args.dropout)
        if args.model in ("vgg16", "vgg16-bn"):
            return Vgg(classes, width, args.model == "vgg16-bn", args.dropout)
        if args.model == "googlenet":
            return GoogLeNet(classes, width, args.aux_heads, args.dropout)
        if args.model == "densenet121":
            return DenseNet(classes, width)
        raise SystemExit(f"unknown model {args.model!r}")

    return build


def build_optimizer(torch, model, args):
    """training.rs `build_optimizer`: no weight decay on rank-1 parameters."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": args.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if args.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=args.lr, momentum=args.momentum, dampening=0.0, nesterov=False)
    return torch.optim.AdamW(groups, lr=args.lr, eps=1e-8)


def summarise(batch, params, step_seconds, last_loss):
    """training/src/bench.rs `StepThroughput::from_steps`, field for field."""
    rates = [batch / max(s, 1e-12) for s in step_seconds]
    result = {
        "images_per_s": statistics.median(rates),
        "images_per_s_total": batch * len(step_seconds) / max(sum(step_seconds), 1e-12),
        "params": params,
        "batch_size": batch,
        "step_seconds": step_seconds,
    }
    if math.isfinite(last_loss):
        result["last_loss"] = last_loss
    return result


# The layer operations `album bench train` times on the Rust side (ops::profile::Op),
# as the ATen operators PyTorch's autograd calls for them. Totals include the operator's
# children (aten::conv2d → mkldnn_convolution, batch_norm → native_batch_norm).
PROFILED_OPS = {
    "conv forward": ("aten::conv2d",),
    "conv backward": ("aten::convolution_backward",),
    "batch norm forward": ("aten::batch_norm",),
    "batch norm backward": ("aten::native_batch_norm_backward",),
    "ReLU forward": ("aten::relu", "aten::relu_"),
    "ReLU backward": ("aten::threshold_backward",),
}


def profile_ops(torch, step, steps, device):
    """Seconds per step spent in each of PROFILED_OPS over `steps` profiled steps, and
    the profiled steps' own mean wall time (the profiler slows them down, so the rest of
    the step is measured against that)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        step_seconds = (time.perf_counter() - start) / steps
    totals = {}
    for event in prof.key_averages():
        for label, names in PROFILED_OPS.items():
            if event.key in names:
                # microseconds; device time on CUDA, where the CPU time is the launch only
                micros = getattr(event, "device_time_total", 0) if device.type == "cuda" else 0
                micros = micros or event.cpu_time_total
                totals[label] = totals.get(label, 0.0) + micros * 1e-6 / steps
    return totals, step_seconds


def main():
    args = parse_args()
    try:
        import numpy  # noqa: F401  (float32 channel rounding)
        import torch
    except ImportError as error:
        print(f"NO_TORCH {error}", flush=True)
        return 3

    torch.set_num_threads(args.threads)
    if args.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[args.precision]
    model = build_models(torch)(args).to(device=device, dtype=dtype)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.model} width {args.width}: {params} trainable parameters", flush=True)
    optimizer = build_optimizer(torch, model, args)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    images = torch.randn(args.batch, 3, args.crop, args.crop, device=device, dtype=dtype)
    targets = torch.randint(0, args.num_classes, (args.batch,), device=device)

    def step():
        logits, aux = model(images)
        loss = loss_fn(logits, targets)
        for head in aux:
            loss = loss + args.aux_weight * loss_fn(head, targets)
        value = loss.item()  # read back every step, as training does
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return value

    model.train()
    for _ in range(args.warmup):
        step()
    step_seconds, last_loss = [], float("nan")
    for _ in range(max(1, args.steps)):
        start = time.perf_counter()
        last_loss = step()
        step_seconds.append(time.perf_counter() - start)
    result = summarise(args.batch, params, step_seconds, last_loss)
    result.update(torch=torch.__version__, threads=args.threads, device=args.device,
                  precision=args.precision)
    if args.profile_ops > 0:
        result["op_seconds"], result["op_step_seconds"] = profile_ops(
            torch, step, args.profile_ops, device)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
