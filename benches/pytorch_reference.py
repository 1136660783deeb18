#!/usr/bin/env python3
"""PyTorch reference for `cargo xtask bench`: the same networks, steps and protocol on CPU,
written to `results/bench/pytorch.json` in the schema of `results/bench/<backend>.json`, so
that `cargo xtask bench all` prints the Distillery/PyTorch ratio beside every figure.

    pip install torch            # CPU wheel is enough; torchvision optional (loader figure)
    python3 benches/pytorch_reference.py [--quick] [--threads N] [--steps N] [--warmup N]
                                         [--batch N] [--arch resnet20] [--out DIR]
    cargo xtask bench all        # now reports "vs PyTorch" per figure

What is mirrored (read `crates/ensembles/src/backbone.rs` and `layers/`, `crates/distill`,
`crates/perturb`, `xtask/src/cmd_bench/measure.rs`):

- CIFAR ResNet-(6n+2), post-activation basic blocks, widths 16/32/64, zero-pad (option A)
  shortcuts (subsample by the stride, append zero channels), BatchNorm (momentum 0.1,
  eps 1e-5), global average pooling, linear head with bias; per-channel input normalisation
  inside the model (CIFAR-10 mean/std), so inputs are pixels in [0, 1]. Convolutions have no
  bias and He-normal (fan-in, ReLU gain) weights; the head is U(+-1/sqrt(d_in)).
- BatchEnsemble (BE-4): every conv and the head carry fast weights r [M, C_in], s [M, C_out]
  (initialised to 1), y_m = s_m * (W (x * r_m)) + b, one shared bias and one shared
  BatchNorm per layer, batch tiled member-major (rows m*B..(m+1)*B are member m). LatentBE =
  the BE merged into a plain network with W * (mean_m s_m)(mean_m r_m)^T (FactorMean).
- Train step = one step of `SupervisedTrainer::fit`: loss (mean cross-entropy of every
  member on the tiled batch), plus wd * 0.5 * sum((1 - e)^2) / M over fast weights, `.item()`
  (Burn's `into_scalar` sync), backward, fast-weight gradients scaled by M, SGD Nesterov
  momentum 0.9 without dampening, coupled L2 weight decay 5e-4 on every other parameter
  (BatchNorm and biases included), lr 0.1 (distillation steps: 0.01) with a per-step cosine
  over the run as in Distillery.
- Inference: eval mode, softmax, mean over members (BE-4 on the tiled batch, DE-4 over four
  networks), copied to host.
- KD step (`Distiller::loss`, Method::Kd alpha 1 T 4): 4 eval-mode teachers (constants) on
  the batch, target = mean of softmax(z_t / T), loss = (1 - a) CE + a T^2 H[target,
  softmax(z_s / T)] (the CE term is computed even at a = 1, as in Distillery).
  KD + LatentBE: one-to-one into the BE-4 student (member m learns teacher m).
  TDiv-SDiv: before that, one ascent step on the input: draw an ordered pair i != j, objective
  div(teachers i,j) - div(student members i,j) with div = mean_b H[sg(p_j), p_i] at T = 1,
  every network in eval mode (the student BE unmerged; here by toggling `.eval()` and taking
  the gradient w.r.t. the input only), per-example step eta*sqrt(D)*g/||g|| with eta = 1/255,
  clipped to [0, 1]. Feasible and included.
- Loader: shuffle, 4-pixel zero pad + random 32x32 crop + horizontal flip, bytes -> float in
  [0, 1], one thread, batches of B; with torchvision's transforms and a `DataLoader`
  (num_workers=0) when torchvision is installed, else the same operations on tensors. Random
  uint8 images stand in for CIFAR-10 (throughput does not depend on the pixels).
- Protocol: fixed seed, random batch (uniform [0, 1) pixels, uniform labels over 10
  classes; values differ from Distillery's host RNG, the distribution does not), warm-up
  iterations then timed ones; median, min, max, IQR (numpy's linear interpolation). Each
  figure runs in its own child process (its peak RSS is VmHWM of that process), unless
  --in-process. Threads: --threads, else $RAYON_NUM_THREADS (what Distillery's flex uses),
  else os.cpu_count(); `torch.set_num_threads(N)` (the loader runs with 1 thread).

Not mirrored: WRN architectures (--arch takes resnet<6n+2> only), GPU devices (CPU only).
"""

import argparse
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time

SCHEMA = "distillery-bench/1"
MEMBERS = 4
CLASSES = 10
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
WEIGHT_DECAY = 5e-4
LR = 0.1
DISTILL_LR = 0.01  # as Distillery's bench: one repeated random batch diverges at 0.1 (KD T^2 = 16)
ETA = 1.0 / 255.0

MEASURES = [
    ("train_single", "train", "train step, single network"),
    ("train_be4", "train", "train step, BE-4 (batch tiled to 4B)"),
    ("train_de4", "train", "train step, DE-4 (4 networks, one step each)"),
    ("infer_single", "infer", "inference, single network"),
    ("infer_latentbe", "infer", "inference, LatentBE (BE-4 merged, FactorMean)"),
    ("infer_be4", "infer", "inference, BE-4 (tiled, mean of probabilities)"),
    ("infer_de4", "infer", "inference, DE-4 (mean of probabilities)"),
    ("distill_kd", "distill", "distill step, KD (plain student, 4 teachers)"),
    ("distill_kd_latentbe", "distill", "distill step, KD + LatentBE (BE-4 one-to-one)"),
    ("distill_tdiv_sdiv", "distill", "distill step, TDiv-SDiv (BE-4 one-to-one)"),
    ("loader", "loader", "loader + augmentation (one thread)"),
]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", default="all", choices=["all", "train", "infer", "distill", "loader"])
    p.add_argument("--quick", action="store_true", help="smoke run: 1 warm-up, 3 timed, 5 loader batches per sample")
    p.add_argument("--steps", type=int, default=None, help="timed iterations per figure (default 10)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up iterations per figure (default 3)")
    p.add_argument("--batch", type=int, default=128, help="images per un-tiled batch")
    p.add_argument("--arch", default="resnet20", help="resnet<6n+2> (resnet8, resnet20, resnet32, ...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batches", type=int, default=None, help="loader: batches per timed sample (default 100)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default $RAYON_NUM_THREADS or os.cpu_count())")
    p.add_argument("--out", default=os.path.join(REPO, "results", "bench"), help="report directory")
    p.add_argument("--in-process", action="store_true", help="run every figure in this process")
    p.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.warmup = a.warmup if a.warmup is not None else (1 if a.quick else 3)
    a.steps = a.steps if a.steps is not None else (3 if a.quick else 10)
    a.batches = a.batches if a.batches is not None else (5 if a.quick else 100)
    if a.threads is None:
        env = os.environ.get("RAYON_NUM_THREADS", "")
        a.threads = int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)
    if a.steps <= 0 or a.batch <= 0 or a.batches <= 0 or a.warmup < 0:
        p.error("--steps, --batch and --batches must be positive, --warmup non-negative")
    a.depth = arch_depth(a.arch, p)
    return a


def arch_depth(arch, p):
    if arch.startswith("resnet") and arch[6:].isdigit():
        d = int(arch[6:])
        if d >= 8 and (d - 2) % 6 == 0:
            return d
    p.error(f"--arch {arch!r}: expected resnet<6n+2> (resnet8, resnet20, resnet32, ...)")


def import_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit(
            "pytorch_reference.py: PyTorch is not installed. Install it (e.g. `pip install torch`, "
            "CPU wheels suffice; torchvision is optional) and run again. Nothing was written."
        )
    return torch


# --------------------------------------------------------------------------------------------
# Networks (mirror of crates/ensembles/src/backbone.rs and layers/)
# --------------------------------------------------------------------------------------------

def build(torch):
    nn = torch.nn
    F = torch.nn.functional

    class EnsConv2d(nn.Module):
        """Conv without bias; BatchEnsemble when members > 1 (fast weights r, s)."""

        def __init__(self, c_in, c_out, k, stride, padding, members):
            super().__init__()
            self.weight = nn.Parameter(torch.empty(c_out, c_in, k, k))
            nn.init.kaiming_normal_(self.weight, mode="fan_in", nonlinearity="relu")
            self.stride, self.padding, self.members = stride, padding, members
            if members > 1:
                self.fast_r = nn.Parameter(torch.ones(members, c_in))
                self.fast_s = nn.Parameter(torch.ones(members, c_out))

        def forward(self, x):
            if self.members == 1:
                return F.conv2d(x, self.weight, None, self.stride, self.padding)
            n, c, h, w = x.shape
            m = self.members
            b = n // m
            x = (x.reshape(m, b, c, h, w) * self.fast_r.view(m, 1, c, 1, 1)).reshape(n, c, h, w)
            y = F.conv2d(x, self.weight, None, self.stride, self.padding)
            _, co, ho, wo = y.shape
            return (y.reshape(m, b, co, ho, wo) * self.fast_s.view(m, 1, co, 1, 1)).reshape(n, co, ho, wo)

    class EnsLinear(nn.Module):
        """Linear with bias (shared by the members); BatchEnsemble when members > 1."""

        def __init__(self, d_in, d_out, members):
            super().__init__()
            bound = 1.0 / math.sqrt(d_in)
            self.weight = nn.Parameter(torch.empty(d_out, d_in).uniform_(-bound, bound))
            self.bias = nn.Parameter(torch.empty(d_out).uniform_(-bound, bound))
            self.members = members
            if members > 1:
                self.fast_r = nn.Parameter(torch.ones(members, d_in))
                self.fast_s = nn.Parameter(torch.ones(members, d_out))

        def forward(self, x):
            if self.members == 1:
                return F.linear(x, self.weight, self.bias)
            n, d = x.shape
            m = self.members
            b = n // m
            x = (x.reshape(m, b, d) * self.fast_r.view(m, 1, d)).reshape(n, d)
            y = F.linear(x, self.weight)
            return (y.reshape(m, b, -1) * self.fast_s.view(m, 1, -1)).reshape(n, -1) + self.bias

    def bn(c):
        return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)

    class Block(nn.Module):
        """Post-activation basic block with a zero-pad (option A) shortcut."""

        def __init__(self, c_in, c_out, stride, members):
            super().__init__()
            self.conv1 = EnsConv2d(c_in, c_out, 3, stride, 1, members)
            self.norm1 = bn(c_out)
            self.conv2 = EnsConv2d(c_out, c_out, 3, 1, 1, members)
            self.norm2 = bn(c_out)
            reshape = stride != 1 or c_in != c_out
            self.pad_stride = stride if reshape else 1
            self.pad_channels = (c_out - c_in) if reshape else 0

        def shortcut(self, x):
            if self.pad_stride > 1:
                x = x[:, :, :: self.pad_stride, :: self.pad_stride]
            if self.pad_channels:
                n, _, h, w = x.shape
                x = torch.cat([x, x.new_zeros(n, self.pad_channels, h, w)], 1)
            return x

        def forward(self, x):
            h = F.relu(self.norm1(self.conv1(x)))
            h = self.norm2(self.conv2(h))
            return F.relu(h + self.shortcut(x))

    class ResNet(nn.Module):
        """CIFAR ResNet-(6n+2); a BatchEnsemble of `members` when members > 1."""

        def __init__(self, depth, members=1, classes=CLASSES):
            super().__init__()
            n = (depth - 2) // 6
            self.members = members
            self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("inv_std", 1.0 / torch.tensor(STD).view(1, 3, 1, 1), persistent=False)
            self.stem = EnsConv2d(3, 16, 3, 1, 1, members)
            self.stem_norm = bn(16)
            blocks, c_in = [], 16
            for stage, c_out in enumerate((16, 32, 64)):
                for i in range(n):
                    blocks.append(Block(c_in, c_out, 2 if stage > 0 and i == 0 else 1, members))
                    c_in = c_out
            self.blocks = nn.Sequential(*blocks)
            self.head = EnsLinear(c_in, classes, members)

        def forward(self, x):
            x = (x - self.mean) * self.inv_std
            h = F.relu(self.stem_norm(self.stem(x)))
            h = self.blocks(h)
            return self.head(h.mean(dim=(2, 3)))

        def fast_weights(self):
            return [p for name, p in self.named_parameters() if name.rsplit(".", 1)[-1] in ("fast_r", "fast_s")]

        def fast_penalty(self):
            """0.5 * sum (1 - e)^2 / M over every fast weight (LatentBE code's regulariser)."""
            fast = self.fast_weights()
            if not fast:
                return None
            return sum(((1.0 - p) ** 2).sum() for p in fast) * (0.5 / self.members)

        def member_logits(self, x):
            """[B, 3, H, W] -> [M, B, K] on the tiled batch."""
            b = x.shape[0]
            return self(tile(x, self.members)).reshape(self.members, b, -1)

        def predict_probs(self, x):
            return F.softmax(self.member_logits(x), 2).mean(0)

    def merge_factor_mean(be, depth):
        """LatentBE (FactorMean): a plain ResNet with W * (mean s)(mean r)^T, biases and
        shared BatchNorm copied."""
        plain = ResNet(depth, 1)
        src = dict(be.named_modules())
        with torch.no_grad():
            for name, mod in plain.named_modules():
                other = src[name]
                if isinstance(mod, EnsConv2d):
                    f = other.fast_s.mean(0)[:, None] * other.fast_r.mean(0)[None, :]
                    mod.weight.copy_(other.weight * f[:, :, None, None])
                elif isinstance(mod, EnsLinear):
                    f = other.fast_s.mean(0)[:, None] * other.fast_r.mean(0)[None, :]
                    mod.weight.copy_(other.weight * f)
                    mod.bias.copy_(other.bias)
                elif isinstance(mod, nn.BatchNorm2d):
                    mod.load_state_dict(other.state_dict())
        return plain

    return ResNet, merge_factor_mean


def tile(x, members):
    return x if members == 1 else x.repeat(members, *([1] * (x.dim() - 1)))


# --------------------------------------------------------------------------------------------
# Steps (mirror of distill::train::SupervisedTrainer::fit and distill::student::Distiller)
# --------------------------------------------------------------------------------------------

def make_optimizer(torch, model):
    fast = {id(p) for p in model.fast_weights()}
    slow = [p for p in model.parameters() if id(p) not in fast]
    groups = [{"params": slow, "weight_decay": WEIGHT_DECAY}]
    if fast:
        groups.append({"params": model.fast_weights(), "weight_decay": 0.0})
    return torch.optim.SGD(groups, lr=LR, momentum=0.9, dampening=0.0, nesterov=True)


def train_step_times(torch, model, objective, x, y, n, peak_lr=LR):
    """Seconds of each of `n` optimisation steps (one epoch of n steps, cosine lr)."""
    model.train()
    opt = make_optimizer(torch, model)
    fast = model.fast_weights()
    out = []
    for step in range(n):
        start = time.perf_counter()
        lr = peak_lr * 0.5 * (1.0 + math.cos(math.pi * step / n))
        loss = objective(model, x, y, step)
        reg = model.fast_penalty()
        if reg is not None:
            loss = loss + reg * WEIGHT_DECAY
        value = loss.item()
        if not math.isfinite(value):
            raise RuntimeError(f"loss diverged at step {step}: {value}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for p in fast:
            p.grad.mul_(model.members)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        out.append(time.perf_counter() - start)
    return out


def cross_entropy_objective(torch):
    F = torch.nn.functional

    def objective(model, x, y, _step):
        return F.cross_entropy(model(tile(x, model.members)), tile(y, model.members))

    return objective


def distill_objective(torch, teachers, method, perturbation, seed, alpha=1.0, temperature=4.0):
    F = torch.nn.functional
    T = temperature

    def soft_rows(student_logits, target):
        return -(target * F.log_softmax(student_logits / T, 1)).sum(1) * (T * T)

    def divergence(zi, zj):
        return -(F.softmax(zj.detach(), 1) * F.log_softmax(zi, 1)).sum(1).mean()

    def tdiv_sdiv(x, student, rng):
        m = len(teachers)
        i = rng.randrange(m)
        j = rng.randrange(m - 1)
        j = j + 1 if j >= i else j
        was_training = student.training
        student.eval()
        leaf = x.detach().clone().requires_grad_(True)
        zs = student.member_logits(leaf)
        objective = divergence(teachers[i](leaf), teachers[j](leaf)) - divergence(zs[i], zs[j])
        (g,) = torch.autograd.grad(objective, leaf)
        student.train(was_training)
        b = x.shape[0]
        flat = g.reshape(b, -1)
        d = flat.shape[1]
        norm = flat.pow(2).sum(1, keepdim=True).sqrt().clamp_min(1e-12)
        step = (flat / norm * (ETA * math.sqrt(d))).view_as(x)
        return (x + step).clamp(0.0, 1.0).detach()

    def objective(student, x, y, step):
        if perturbation == "tdiv_sdiv":
            x = tdiv_sdiv(x, student, random.Random(seed * 1_000_003 + step))
        with torch.no_grad():
            teacher_logits = torch.stack([t(x) for t in teachers])  # [M, B, K]
        m_s = student.members
        z = student(tile(x, m_s))
        m, b, k = teacher_logits.shape
        probs = F.softmax(teacher_logits / T, 2)
        if method == "kd":
            target, labels = probs.mean(0), y
        else:  # one_to_one: member m learns teacher m
            target, labels = probs.reshape(m * b, k), tile(y, m)
        soft = soft_rows(z, target).mean()
        ce = F.cross_entropy(z, labels)
        return ce * (1.0 - alpha) + soft * alpha

    return objective


def infer_times(torch, fn, x, warmup, steps):
    return infer_pair_times(torch, fn, None, x, warmup, steps)[0]


def infer_pair_times(torch, fa, fb, x, warmup, steps):
    """Seconds per timed iteration of `fa` (and of `fb` if given, timed alternately with it,
    `fa` first on even iterations, as `xtask bench` pairs LatentBE with a plain network:
    drift falls on both alike), each including the copy of the probabilities to the host."""
    sa, sb = [], []
    with torch.inference_mode():
        for i in range(warmup + steps):
            order = [(fa, sa), (fb, sb)] if i % 2 == 0 else [(fb, sb), (fa, sa)]
            for fn, out in order:
                if fn is None:
                    continue
                start = time.perf_counter()
                probs = fn(x).cpu().clone()
                secs = time.perf_counter() - start
                del probs
                if i >= warmup:
                    out.append(secs)
    return sa, sb


def loader_times(torch, args):
    """Seconds per sample of `args.batches` augmented batches, one thread."""
    g = torch.Generator().manual_seed(args.seed)
    n = 45_000
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    per_sample = args.batch * args.batches
    try:
        import torchvision.transforms as T
        from PIL import Image

        hwc = images.permute(0, 2, 3, 1).contiguous().numpy()

        class Set(torch.utils.data.Dataset):
            transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor()])

            def __len__(self):
                return n

            def __getitem__(self, i):
                return self.transform(Image.fromarray(hwc[i])), int(labels[i])

        dataset, impl = Set(), "torchvision RandomCrop(32, padding=4) + RandomHorizontalFlip + ToTensor, DataLoader num_workers=0"

        def batches(epoch_seed):
            gen = torch.Generator().manual_seed(epoch_seed)
            return iter(torch.utils.data.DataLoader(dataset, args.batch, shuffle=True, drop_last=True, num_workers=0, generator=gen))
    except ImportError:
        impl = "torch tensor ops (torchvision not installed): zero pad 4, random crop, flip, /255"
        padded = torch.nn.functional.pad(images, (4, 4, 4, 4))

        def batches(epoch_seed):
            gen = torch.Generator().manual_seed(epoch_seed)
            perm = torch.randperm(n, generator=gen)
            for start in range(0, n - args.batch + 1, args.batch):
                idx = perm[start : start + args.batch]
                offs = torch.randint(0, 9, (args.batch, 2), generator=gen).tolist()
                flips = torch.rand(args.batch, generator=gen).lt(0.5).tolist()
                out = torch.empty(args.batch, 3, 32, 32)
                for k, i in enumerate(idx.tolist()):
                    dy, dx = offs[k]
                    crop = padded[i, :, dy : dy + 32, dx : dx + 32]
                    if flips[k]:
                        crop = crop.flip(2)
                    out[k] = crop.float().div_(255.0)
                yield out, labels[idx]

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    out = []
    try:
        for i in range(args.warmup + args.steps):
            start = time.perf_counter()
            seen, epoch = 0, 0
            while seen < per_sample:
                for xb, _ in batches(args.seed + 1000 * i + epoch):
                    seen += xb.shape[0]
                    if seen >= per_sample:
                        break
                epoch += 1
            secs = time.perf_counter() - start
            if i >= args.warmup:
                out.append(secs)
    finally:
        torch.set_num_threads(previous)
    params = {"batch": args.batch, "batches_per_sample": args.batches, "augment": True, "shuffle": True, "threads": 1,
              "images": n, "source": "random images", "impl": impl, "warmup": args.warmup, "steps": args.steps}
    return out, per_sample, params


def run_measure(torch, mid, args):
    """Return (seconds per timed iteration, images per iteration, params) for figure `mid`."""
    ResNet, merge_factor_mean = build(torch)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    b, n = args.batch, args.warmup + args.steps
    x = torch.rand(b, 3, 32, 32, generator=g)
    y = torch.randint(0, CLASSES, (b,), generator=g)
    common = {"batch": b, "arch": args.arch, "warmup": args.warmup, "steps": args.steps}
    timed = lambda s: s[args.warmup :]  # noqa: E731

    def teachers():
        ts = [ResNet(args.depth).eval() for _ in range(MEMBERS)]
        for t in ts:
            t.requires_grad_(False)
        return ts

    ce = cross_entropy_objective(torch)
    if mid == "train_single":
        return timed(train_step_times(torch, ResNet(args.depth), ce, x, y, n)), b, {**common, "objective": "cross_entropy"}
    if mid == "train_be4":
        s = train_step_times(torch, ResNet(args.depth, MEMBERS), ce, x, y, n)
        return timed(s), b, {**common, "objective": "cross_entropy", "members": MEMBERS, "tiled_batch": MEMBERS * b}
    if mid == "train_de4":
        total = [0.0] * n
        for _ in range(MEMBERS):
            s = train_step_times(torch, ResNet(args.depth), ce, x, y, n)
            total = [t + u for t, u in zip(total, s)]
        return timed(total), b, {**common, "objective": "cross_entropy", "members": MEMBERS,
                                 "note": "one DE step = one step of each member (sum)"}
    if mid == "infer_single":
        model = ResNet(args.depth).eval()
        return infer_times(torch, model.predict_probs, x, args.warmup, args.steps), b, common
    if mid == "infer_latentbe":
        model = merge_factor_mean(ResNet(args.depth, MEMBERS).eval(), args.depth).eval()
        single = ResNet(args.depth).eval()
        latent, plain = infer_pair_times(torch, model.predict_probs, single.predict_probs, x, args.warmup, args.steps)
        paired = {"single_median_seconds": quantile(sorted(plain), 0.5),
                  "ratio_median": quantile(sorted(l / p for l, p in zip(latent, plain)), 0.5),
                  "order": "alternating per iteration with a plain network of the same arch"}
        return latent, b, {**common, "merge": "factor_mean", "members": MEMBERS, "paired": paired}
    if mid == "infer_be4":
        model = ResNet(args.depth, MEMBERS).eval()
        return infer_times(torch, model.predict_probs, x, args.warmup, args.steps), b, {**common, "members": MEMBERS, "tiled_batch": MEMBERS * b}
    if mid == "infer_de4":
        members = [ResNet(args.depth).eval() for _ in range(MEMBERS)]
        fn = lambda x: torch.stack([torch.softmax(m(x), 1) for m in members]).mean(0)  # noqa: E731
        return infer_times(torch, fn, x, args.warmup, args.steps), b, {**common, "members": MEMBERS}
    if mid.startswith("distill_"):
        method, members, perturbation = {
            "distill_kd": ("kd", 1, "none"),
            "distill_kd_latentbe": ("one_to_one", MEMBERS, "none"),
            "distill_tdiv_sdiv": ("one_to_one", MEMBERS, "tdiv_sdiv"),
        }[mid]
        ts = teachers()
        objective = distill_objective(torch, ts, method, perturbation, args.seed)
        s = train_step_times(torch, ResNet(args.depth, members), objective, x, y, n, peak_lr=DISTILL_LR)
        params = {**common, "method": method, "alpha": 1.0, "temperature": 4.0, "perturbation": perturbation, "teachers": MEMBERS}
        if members > 1:
            params["student_members"] = members
        if perturbation == "tdiv_sdiv":
            params["eta"] = ETA
        return timed(s), b, params
    if mid == "loader":
        return loader_times(torch, args)
    raise ValueError(f"unknown figure {mid}")


# --------------------------------------------------------------------------------------------
# Report (mirror of xtask/src/cmd_bench/report.rs)
# --------------------------------------------------------------------------------------------

def quantile(sorted_values, q):
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def peak_rss_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb if sys.platform == "darwin" else kb * 1024
    except Exception:  # noqa: BLE001
        return None


def figure(mid, group, label, images, seconds, peak, params):
    s = sorted(seconds)
    stats = {"median": quantile(s, 0.5), "min": s[0], "max": s[-1], "q1": quantile(s, 0.25), "q3": quantile(s, 0.75), "samples": list(seconds)}
    rate = {"median": images / stats["median"], "min": images / stats["max"], "max": images / stats["min"]}
    return {"id": mid, "group": group, "label": label, "images_per_iter": images, "seconds": stats,
            "images_per_second": rate, "peak_rss_bytes": peak, "params": params}


def checks(figures):
    get = {f["id"]: f for f in figures}
    out = []

    def per_image(f):
        return f["seconds"]["median"] / f["images_per_iter"]

    paired = get.get("infer_latentbe", {}).get("params", {}).get("paired", {}).get("ratio_median")
    if paired is not None:
        out.append({"id": "latentbe_over_single_inference", "value": paired, "target": "≤ 1.02", "pass": paired <= 1.02,
                    "description": "LatentBE inference time / single-network inference time (paired, one process)"})
    for cid, num, den, desc, target, ok in [
        ("latentbe_over_single_inference", "infer_latentbe", "infer_single", "LatentBE inference time / single-network inference time", "≤ 1.02", lambda v: v <= 1.02),
        ("be4_over_single_inference", "infer_be4", "infer_single", "BE-4 inference time / single-network inference time", "≈ 4 (3.0–5.0)", lambda v: 3.0 <= v <= 5.0),
        ("tdiv_sdiv_over_kd_latentbe_step", "distill_tdiv_sdiv", "distill_kd_latentbe", "TDiv-SDiv step time / KD step time, same BE-4 student (KD + LatentBE)", "≤ 2.0", lambda v: v <= 2.0),
        ("tdiv_sdiv_over_kd_step", "distill_tdiv_sdiv", "distill_kd", "TDiv-SDiv step time / KD step time, plain student (4x fewer student images)", "context only", None),
    ]:
        if cid == "latentbe_over_single_inference" and paired is not None:
            continue
        if num in get and den in get:
            v = per_image(get[num]) / per_image(get[den])
            out.append({"id": cid, "description": desc, "value": v, "target": target, "pass": ok(v) if ok else None})
    if "loader" in get:
        f = get["loader"]
        v = f["images_per_second"]["median"] / max(1, f["params"].get("threads", 1))
        out.append({"id": "loader_per_core", "description": "loader + augmentation images/s per core", "value": v,
                    "target": "≥ 20000 img/s/core", "pass": v >= 20000.0})
    return out


def cpu_signature():
    """As xtask's `cpu_signature`: family, model, stepping and x86-64 level of the first CPU."""
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n")[0]
    except OSError:
        return None
    fields = {}
    for line in first.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields.setdefault(k.strip(), v.strip())
    if "cpu family" not in fields or "model" not in fields:
        return None
    flags = set(fields.get("flags", "").split())
    if {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags:
        level = "x86-64-v4"
    elif {"avx", "avx2", "bmi2", "fma", "movbe"} <= flags:
        level = "x86-64-v3"
    elif {"sse4_2", "popcnt", "ssse3"} <= flags:
        level = "x86-64-v2"
    else:
        level = "x86-64"
    return f"family {fields['cpu family']} model {fields['model']} stepping {fields.get('stepping', '?')}, {level}"


def machine(torch, threads):
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        cpu = platform.processor() or cpu

    def git(*args):
        try:
            r = subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True, check=False)
            return r.stdout.strip() if r.returncode == 0 else None
        except OSError:
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu_model": cpu,
        "cpu_signature": cpu_signature(),
        "logical_cpus": os.cpu_count(),
        "threads": threads,
        "rayon_num_threads_env": os.environ.get("RAYON_NUM_THREADS"),
        "os": f"{platform.system().lower()}-{platform.machine()}",
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_json_atomic(path, value):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=d)
    with os.fdopen(fd, "w") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def measure_child(mid, args):
    fd, tmp = tempfile.mkstemp(prefix=f"pytorch-bench-{mid}-", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, os.path.abspath(__file__), "all", "--measure", mid, "--child-out", tmp,
           "--warmup", str(args.warmup), "--steps", str(args.steps), "--batch", str(args.batch), "--arch", args.arch,
           "--seed", str(args.seed), "--batches", str(args.batches), "--threads", str(args.threads)]
    try:
        r = subprocess.run(cmd, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"{mid} failed (exit {r.returncode}); its error is printed above")
        with open(tmp) as f:
            return json.load(f)
    finally:
        os.unlink(tmp)


def main(argv=None):
    args = parse_args(argv)
    torch = import_torch()
    torch.set_num_threads(args.threads)
    table = {mid: (group, label) for mid, group, label in MEASURES}
    if args.measure:
        group, label = table[args.measure]
        seconds, images, params = run_measure(torch, args.measure, args)
        write_json_atomic(args.child_out, figure(args.measure, group, label, images, seconds, peak_rss_bytes(), params))
        return 0
    ids = [mid for mid, group, _ in MEASURES if args.target in ("all", group)]
    mach = machine(torch, args.threads)
    print(f"pytorch_reference {args.target}: {args.arch}, batch {args.batch}, {args.warmup} warm-up + {args.steps} timed; "
          f"torch {torch.__version__}, {args.threads} threads, {mach['cpu_model']}")
    figures, failures = [], []
    for mid in ids:
        group, label = table[mid]
        try:
            if args.in_process:
                seconds, images, params = run_measure(torch, mid, args)
                f = figure(mid, group, label, images, seconds, peak_rss_bytes(), params)
            else:
                f = measure_child(mid, args)
        except Exception as e:  # noqa: BLE001
            print(f"{mid:<20} FAILED: {e}")
            failures.append(mid)
            continue
        figures.append(f)
        ips, s = f["images_per_second"], f["seconds"]
        peak = f"{f['peak_rss_bytes'] / 2**20:.0f}" if f["peak_rss_bytes"] else "–"
        print(f"{mid:<20} {ips['median']:>10.1f} img/s [{ips['min']:.1f} – {ips['max']:.1f}]   {s['median'] * 1e3:>9.2f} ms/iter "
              f"(IQR {s['q1'] * 1e3:.2f} – {s['q3'] * 1e3:.2f}, n={len(s['samples'])})   peak {peak} MiB")
    report = {
        "schema": SCHEMA,
        "framework": "pytorch",
        "backend": "cpu",
        "target": args.target,
        "machine": mach,
        "settings": {"arch": args.arch, "batch": args.batch, "members": MEMBERS, "warmup": args.warmup, "steps": args.steps,
                     "seed": args.seed, "loader_batches_per_sample": args.batches, "quick": args.quick,
                     "isolation": "in-process" if args.in_process else "child process per figure"},
        "peak_memory_note": ("VmHWM of the one benchmark process after each figure (cumulative)." if args.in_process else
                             "VmHWM of the child process that ran the figure alone (Python, torch, models, optimiser state, activations)."),
        "figures": figures,
        "checks": checks(figures),
    }
    for c in report["checks"]:
        print(f"  {c['id']:<32} {c['value']:>12.3f}   target {c['target']:<20} {'-' if c['pass'] is None else 'PASS' if c['pass'] else 'FAIL'}")
    name = "pytorch.json" if args.target == "all" else f"pytorch-{args.target}.json"
    path = os.path.join(args.out, name)
    write_json_atomic(path, report)
    print(f"wrote {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
