#!/usr/bin/env python3
"""Training-efficiency parity (issue 17, section 2): Distillery's teacher recipe -- supervised
training of one plain CIFAR ResNet -- re-implemented independently in plain PyTorch, so that
the same recipe is trained in both frameworks and both test accuracies are printed side by
side. See benches/README-parity.md for the two commands and what is (not) mirrored.

    cargo xtask train --config experiments/cifar10/teacher.toml --profile cpu --seed 0 \\
        --out runs/parity/seed-0
    python3 benches/pytorch_parity.py --from-run runs/parity/seed-0 [--seeds 0 1] \\
        [--threads N] [--out results/parity.json]

or, without a Distillery run, an explicit recipe (defaults: the paper protocol of
experiments/cifar10/base.toml):

    python3 benches/pytorch_parity.py --arch resnet8 --train 0 500 --val 500 600 \\
        --test 0 200 --epochs 2 --warmup-epochs 1 --batch-size 50 --threads 1

Mirrored, with the Rust file each detail is taken from:

- Data (crates/data/src/cifar.rs, split.rs, location.rs, xtask/src/fsx.rs): CIFAR-10 binary
  files data_batch_1..5.bin (concatenated in that order, 50,000 records) and test_batch.bin;
  a record is 1 label byte + 3,072 pixel bytes (R, G, B planes, row-major 32x32). Train and
  val are half-open ranges of the concatenated training records, test a range of the test
  file. Data root: --data-dir, else $DISTILLERY_DATA, else datasets/ in the repository,
  else shared/data/ beside the repository when that holds cifar-10-batches-bin/.
- Input scaling (augment.rs): pixel byte / 255 as f32, in [0, 1]; per-channel normalisation
  inside the model (ensembles/src/normalize.rs) as (x - mean) * (1 / std). mean/std are NOT
  the constants of ensembles/src/config.rs: xtask/src/cmd_train.rs replaces them by the
  statistics of the training split (data/src/stats.rs: per-channel mean and population std
  of all pixels in [0, 1]); read from the run's model.json, or computed the same way.
- Augmentation (data/src/augment.rs, loader.rs): 4-pixel zero padding (0 in pixel space,
  before normalisation), a 32x32 crop with offsets dx, dy uniform in 0..=8 of the 40x40
  padded image, then a horizontal flip of the crop with p = 0.5, drawn independently per
  image. Shuffle: a fresh permutation each epoch. Streams are numpy's, seeded from
  (seed, purpose, epoch[, batch]) as Distillery's (seed.rs): same distribution, not the same
  draws.
- Batching (loader.rs LoaderConfig::train, cmd_train.rs): batches of B, the last incomplete
  batch of each epoch dropped (steps per epoch = N_train // B). Evaluation: every image, in
  order, eval_batch_size at a time.
- Network (ensembles/src/backbone.rs, layers/): CIFAR ResNet depth 6n+2; 3x3 stem conv 16
  channels + BN + ReLU; three stages of n post-activation basic blocks (conv3x3-BN-ReLU-
  [dropout]-conv3x3-BN, add shortcut, ReLU) of 16/32/64 channels, stride 2 in the first block
  of stages 2 and 3; convolutions without bias; option-A shortcut on a change of shape
  (subsample x[:, :, ::2, ::2], append zero channels) unless the recipe says projection
  (1x1 strided conv + BN); global average pooling; linear head 64 -> K with bias. BatchNorm
  momentum 0.1, eps 1e-5 (layers/norm.rs), running variance updated with the BIASED batch
  variance as Burn does (burn-nn batch.rs; PyTorch uses the unbiased one; --bn-var torch
  keeps PyTorch's).
- Initialisation (layers/fast.rs LayerInit, backbone.rs conv_init/head_init, config.rs
  WeightInit): `reference` = convolution kernels truncated He-normal, JAX's
  variance_scaling(2.0, "fan_in", "truncated_normal"): a standard normal truncated to +-2
  times sqrt(2 / fan_in) / 0.87962566103423978, fan_in = C_in k^2; the classifier weight the
  same (Distillery's head_init() for Reference is TruncatedHeNormal, as giung2-jax's Linear
  uses jax.nn.initializers.kaiming_normal(), which is truncated) with --head-init normal for
  the untruncated N(0, 2 / fan_in); classifier bias 0; BN weight 1, bias 0.
  `he_normal_uniform_head` = untruncated He-normal convolutions, PyTorch's U(+-1/sqrt(d_in))
  classifier weight and bias. `torch` = PyTorch's own defaults (for comparison only).
- Loss (distill/src/loss/mod.rs cross_entropy): mean cross-entropy of the logits.
- Optimiser (distill/src/train/optim.rs, burn-optim sgd.rs, momentum.rs, decay.rs): SGD,
  momentum 0.9, dampening 0, Nesterov, coupled L2 weight decay (wd * w added to the gradient
  before the momentum buffer: torch.optim.SGD's weight_decay) on EVERY parameter, BatchNorm
  weights and biases and the classifier bias included; the first step's buffer is the
  gradient itself in both. Optional global-norm clipping (clip_grad_norm, off for teachers).
- Schedule (distill/src/train/schedule.rs WarmupCosine, optim.rs schedule()): per
  optimisation step, 0-based global step s = epoch * steps + step; warm-up W = warmup_epochs
  * steps, total T = epochs * steps; lr(s) = base * (s + 1) / W for s < W, else
  base * (1 + cos(pi * min(1, (s - W) / max(T - W, 1)))) / 2. So the first step already uses
  base / W, and the last step uses a small positive rate, never exactly 0.
- Model selection (distill/src/train/selection.rs, supervised.rs): validation accuracy (eval
  mode) after the 1-based epochs e with e == 1, or e % max(epochs // 10, 1) == 0, or
  e > epochs - min(ceil(epochs / 10), epochs); the best (strictly greater: the earliest of
  ties) is kept; the reported test accuracy is that model's. Also reported here: the final
  epoch's model's test accuracy, and the training accuracy (clean training images, eval
  mode) of both.
- Time (cmd_train.rs, progress.rs): `seconds` = wall time of the training loop including the
  validation passes (Distillery's train_seconds, which also includes its checkpoint writes);
  img/s = training images / time spent in training steps only.

Not mirrored: the random streams themselves (PyTorch and numpy draw different numbers than
Burn and rand's ChaCha12); the order of float reductions inside kernels; pre-activation WRNs,
BatchEnsembles and distillation (teacher recipe only); CIFAR-100.
"""

import argparse
import copy
import json
import math
import os
import platform
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError:
    sys.exit("pytorch_parity: error: numpy is not installed: python3 -m venv /work/venv-torch && "
             "/work/venv-torch/bin/pip install torch numpy, then run this script with /work/venv-torch/bin/python3")

SCHEMA = "distillery-parity/1"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_ENV = "DISTILLERY_DATA"
CIFAR10_DIR = "cifar-10-batches-bin"
CIFAR10_TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
CIFAR10_TEST_FILE = "test_batch.bin"
RECORD = 1 + 3072
CLASSES = 10
PAD = 4
TRUNCATED_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2] (JAX)
PURPOSE_SHUFFLE = 1  # the purpose tags of crates/data/src/seed.rs
PURPOSE_AUGMENT = 2
INITS = ("reference", "he_normal_uniform_head", "torch")
# model.json `shortcut` (ensembles' ShortcutKind; absent = the default option A) -> this network's.
SHORTCUTS = {None: "zeropad", "ZeroPad": "zeropad", "Projection": "projection"}

# Defaults of explicit recipes: experiments/cifar10/base.toml (the paper protocol), which are
# also OptimConfig's defaults (crates/distill/src/train/optim.rs).
BASE = {
    "arch": "resnet32",
    "train": [0, 45000],
    "val": [45000, 50000],
    "test": [0, 10000],
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "warmup_epochs": 5,
    "epochs": 200,
    "batch_size": 128,
    "eval_batch_size": 500,
}


def die(msg):
    print(f"pytorch_parity: error: {msg}", file=sys.stderr)
    sys.exit(2)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Schedule and selection (pure Python: checked by --self-test against the Rust unit tests)


def warmup_cosine_lr(base_lr, warmup_steps, total_steps, step):
    """crates/distill/src/train/schedule.rs WarmupCosine::lr for 0-based `step`."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay = max(total_steps - warmup_steps, 1)
    t = min((step - warmup_steps) / decay, 1.0)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * t))


def evaluation_epochs(epochs):
    """crates/distill/src/train/selection.rs evaluation_epochs: 1-based epochs."""
    tenth = max(epochs // 10, 1)
    last = epochs - min(-(-epochs // 10), epochs)
    return [e for e in range(1, epochs + 1) if e == 1 or e % tenth == 0 or e > last]


def parse_arch(s):
    """`resnet<6n+2>` -> depth (xtask/src/experiment.rs parse_arch, backbone.rs layout)."""
    if not s.startswith("resnet") or not s[6:].isdigit():
        die(f"arch = {s!r}: only the CIFAR ResNet `resnet<depth>` (resnet8, resnet20, resnet32, ...) is mirrored")
    depth = int(s[6:])
    if depth < 8 or (depth - 2) % 6:
        die(f"ResNet depth {depth} is not 6n+2 with n >= 1 (8, 20, 32, 56, 110, ...)")
    return depth


# ---------------------------------------------------------------------------------------------
# Data


def data_root(flag):
    """xtask/src/fsx.rs data_root + crates/data/src/location.rs resolve_data_dir."""
    if flag:
        return flag
    env = os.environ.get(DATA_ENV, "")
    if env:
        return env
    resolved = os.path.join(REPO, "datasets")
    if not os.path.isdir(os.path.join(resolved, CIFAR10_DIR)):
        shared = os.path.join(os.path.dirname(REPO), "shared", "data")
        if os.path.isdir(os.path.join(shared, CIFAR10_DIR)):
            return shared
    return resolved


def read_records(path, limit):
    """The first `limit` records of a CIFAR-10 binary file as (images [n,3,32,32] u8, labels)."""
    size = os.path.getsize(path)
    if size % RECORD:
        die(f"{path}: {size} bytes is not a whole number of {RECORD}-byte records")
    n = min(size // RECORD, limit)
    raw = np.fromfile(path, dtype=np.uint8, count=n * RECORD).reshape(n, RECORD)
    labels = raw[:, 0].astype(np.int64)
    if n and labels.max() >= CLASSES:
        die(f"{path}: label {labels.max()} out of range 0..{CLASSES}")
    return np.ascontiguousarray(raw[:, 1:]).reshape(n, 3, 32, 32), labels


def count_records(paths):
    total = 0
    for p in paths:
        if not os.path.isfile(p):
            die(f"{p} is missing (set --data-dir or ${DATA_ENV} to the folder holding {CIFAR10_DIR}/)")
        total += os.path.getsize(p) // RECORD
    return total


def load_splits(root, train, val, test):
    """crates/data/src/split.rs load_splits: only the records the ranges need are read."""
    d = os.path.join(root, CIFAR10_DIR)
    train_paths = [os.path.join(d, f) for f in CIFAR10_TRAIN_FILES]
    test_path = os.path.join(d, CIFAR10_TEST_FILE)
    n_train, n_test = count_records(train_paths), count_records([test_path])
    for name, (a, b), avail, allow_empty in (("train", train, n_train, False), ("val", val, n_train, True),
                                            ("test", test, n_test, False)):
        if a > b or (not allow_empty and a == b):
            die(f"{name} range [{a}, {b}) is empty or reversed")
        if b > avail:
            die(f"{name} range [{a}, {b}) exceeds the {avail} records in {d}")
    if val[0] == val[1]:
        die("val is empty, but model selection needs a validation split (as cmd_train.rs)")
    if train[0] < val[1] and val[0] < train[1]:
        log(f"warning: train {train} and val {val} overlap")
    need = max(train[1], val[1])
    imgs, labs = [], []
    for p in train_paths:
        if need <= 0:
            break
        x, y = read_records(p, need)
        imgs.append(x)
        labs.append(y)
        need -= len(y)
    tr_x, tr_y = np.concatenate(imgs), np.concatenate(labs)
    te_x, te_y = read_records(test_path, test[1])
    return {
        "train": (tr_x[train[0]:train[1]], tr_y[train[0]:train[1]]),
        "val": (tr_x[val[0]:val[1]], tr_y[val[0]:val[1]]),
        "test": (te_x[test[0]:], te_y[test[0]:]),
        "dir": d,
    }


def split_stats(images):
    """crates/data/src/stats.rs split_stats: exact integer sums, population std in [0, 1]."""
    mean, std = [], []
    count = images.shape[0] * 1024
    for c in range(3):
        plane = images[:, c].astype(np.uint64)
        s = int(plane.sum())
        q = int((plane * plane).sum())
        m = s / count / 255.0
        m2 = q / count / (255.0 * 255.0)
        mean.append(m)
        std.append(math.sqrt(max(m2 - m * m, 0.0)))
    return mean, std


def augment(images, rng):
    """crates/data/src/augment.rs: zero-pad 4, random 32x32 crop (dx, dy in 0..=8), then a
    horizontal flip of the crop with p = 0.5; u8 [B,3,32,32] -> u8 [B,3,32,32]."""
    b = images.shape[0]
    dx = rng.integers(0, 2 * PAD + 1, size=b)
    dy = rng.integers(0, 2 * PAD + 1, size=b)
    flip = rng.random(b) < 0.5
    padded = np.zeros((b, 3, 32 + 2 * PAD, 32 + 2 * PAD), dtype=np.uint8)
    padded[:, :, PAD:PAD + 32, PAD:PAD + 32] = images
    ar = np.arange(32)
    rows = dy[:, None] + ar
    cols = dx[:, None] + ar
    cols = np.where(flip[:, None], cols[:, ::-1], cols)  # output x <- crop column 31 - x
    return padded[np.arange(b)[:, None, None, None], np.arange(3)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def augment_reference(image, dx, dy, flip):
    """augment.rs write_augmented_reference, one image, for --self-test."""
    padded = np.zeros((3, 40, 40), dtype=np.uint8)
    padded[:, 4:36, 4:36] = image
    out = np.zeros((3, 32, 32), dtype=np.uint8)
    for y in range(32):
        for x in range(32):
            cx = 31 - x if flip else x
            out[:, y, x] = padded[:, y + dy, cx + dx]
    return out


# ---------------------------------------------------------------------------------------------
# Model (torch imported lazily so that --help and the recipe errors work without it)


def import_torch():
    global torch, nn, F
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError:
        die("PyTorch is not installed: python3 -m venv /work/venv-torch && /work/venv-torch/bin/pip install torch numpy, "
            "then run this script with /work/venv-torch/bin/python3")
    return torch


def build_model_classes():
    class BatchNorm2dBurn(nn.BatchNorm2d):
        """BatchNorm2d whose running variance takes the biased batch variance, as Burn's."""

        def forward(self, x):
            if not self.training:
                return super().forward(x)
            keep = self.running_var.clone()
            y = super().forward(x)
            n = x.numel() // x.shape[1]
            if n > 1:
                with torch.no_grad():
                    # PyTorch stored (1-m) old + m v n/(n-1); Burn stores (1-m) old + m v. A new
                    # tensor, not an in-place write: the backward of batch_norm saved the old one.
                    base = keep * (1.0 - self.momentum)
                    self.running_var = base + (self.running_var - base) * ((n - 1) / n)
            return y

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride, shortcut, dropout, bn):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.norm1 = bn(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.norm2 = bn(c_out)
            self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
            reshape = stride != 1 or c_in != c_out
            self.proj = self.proj_norm = None
            self.pad_stride, self.pad_channels = 1, 0
            if reshape and shortcut == "projection":
                self.proj = nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)
                self.proj_norm = bn(c_out)
            elif reshape:
                self.pad_stride, self.pad_channels = stride, c_out - c_in

        def shortcut(self, x):
            if self.proj is not None:
                return self.proj_norm(self.proj(x))
            if self.pad_stride > 1:
                x = x[:, :, ::self.pad_stride, ::self.pad_stride]
            if self.pad_channels:
                n, _, h, w = x.shape
                x = torch.cat([x, x.new_zeros(n, self.pad_channels, h, w)], 1)
            return x

        def forward(self, x):
            h = F.relu(self.norm1(self.conv1(x)))
            h = self.norm2(self.conv2(self.dropout(h)))
            return F.relu(h + self.shortcut(x))

    class CifarResNet(nn.Module):
        def __init__(self, depth, num_classes, mean, std, shortcut="zeropad", dropout=0.0, bn_var="burn"):
            super().__init__()
            bn_cls = BatchNorm2dBurn if bn_var == "burn" else nn.BatchNorm2d
            bn = lambda c: bn_cls(c, eps=1e-5, momentum=0.1)  # noqa: E731
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, 3, 1, 1), persistent=False)
            inv = [1.0 / float(np.float32(s)) for s in std]
            self.register_buffer("inv_std", torch.tensor(inv, dtype=torch.float32).reshape(1, 3, 1, 1), persistent=False)
            self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.stem_norm = bn(16)
            n = (depth - 2) // 6
            blocks, c_in = [], 16
            for stage, c_out in enumerate((16, 32, 64)):
                for i in range(n):
                    stride = 2 if stage > 0 and i == 0 else 1
                    blocks.append(Block(c_in, c_out, stride, shortcut, dropout, bn))
                    c_in = c_out
            self.blocks = nn.Sequential(*blocks)
            self.head = nn.Linear(c_in, num_classes)

        def forward(self, x):
            h = (x - self.mean) * self.inv_std
            h = F.relu(self.stem_norm(self.stem(h)))
            h = self.blocks(h)
            return self.head(h.mean(dim=(2, 3)))

    return CifarResNet


def truncated_he_normal_(w, fan_in):
    """JAX variance_scaling(2.0, "fan_in", "truncated_normal")."""
    with torch.no_grad():
        nn.init.trunc_normal_(w, mean=0.0, std=1.0, a=-2.0, b=2.0)
        w.mul_(math.sqrt(2.0 / fan_in) / TRUNCATED_STD)


def he_normal_(w, fan_in):
    with torch.no_grad():
        w.normal_(0.0, math.sqrt(2.0 / fan_in))


def init_model(model, init, head_init):
    """layers/fast.rs LayerInit as chosen by backbone.rs conv_init()/head_init()."""
    if init == "torch":
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            (truncated_he_normal_ if init == "reference" else he_normal_)(m.weight, fan_in)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    head = model.head
    if init == "reference":
        (truncated_he_normal_ if head_init == "truncated" else he_normal_)(head.weight, head.in_features)
        nn.init.zeros_(head.bias)
    else:  # he_normal_uniform_head: U(+-1/sqrt(d_in)) for weight and bias (= PyTorch's default)
        bound = 1.0 / math.sqrt(head.in_features)
        nn.init.uniform_(head.weight, -bound, bound)
        nn.init.uniform_(head.bias, -bound, bound)


def count_params(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------
# Training


def to_input(images_u8, device):
    return torch.from_numpy(np.ascontiguousarray(images_u8)).to(device).float().div_(255.0)


def accuracy(model, images, labels, batch, device):
    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(labels), batch):
            logits = model(to_input(images[i:i + batch], device))
            correct += int((logits.argmax(1).cpu() == torch.from_numpy(labels[i:i + batch])).sum())
    return correct / len(labels)


def train_one(recipe, data, seed, threads, device):
    CifarResNet = build_model_classes()
    torch.manual_seed(seed)
    model = CifarResNet(recipe["depth"], CLASSES, recipe["input_mean"], recipe["input_std"],
                        recipe["shortcut"], recipe["dropout"], recipe["bn_var"])
    init_model(model, recipe["init"], recipe["head_init"])
    model.to(device)
    tr_x, tr_y = data["train"]
    va_x, va_y = data["val"]
    te_x, te_y = data["test"]
    bs, epochs = recipe["batch_size"], recipe["epochs"]
    steps = len(tr_y) // bs  # drop_last
    if steps == 0:
        die(f"training split of {len(tr_y)} images is smaller than one batch of {bs}")
    warmup, total = recipe["warmup_epochs"] * steps, epochs * steps
    momentum = recipe["momentum"]
    opt = torch.optim.SGD(model.parameters(), lr=recipe["lr"], momentum=momentum, dampening=0.0,
                          nesterov=recipe["nesterov"] and momentum > 0, weight_decay=recipe["weight_decay"])
    eval_at = set(evaluation_epochs(epochs))
    evb = recipe["eval_batch_size"]
    log(f"[pytorch seed {seed}] {recipe['arch']}: {count_params(model):,} trainable parameters, "
        f"{len(tr_y)} train / {len(va_y)} val / {len(te_y)} test images, {steps} steps/epoch x {epochs} epochs, "
        f"{threads} threads, init {recipe['init']}"
        + (f" (head {recipe['head_init']})" if recipe["init"] == "reference" else ""))
    best, best_epoch, best_acc, val_log = None, None, None, []
    step_time, images_seen = 0.0, 0
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = np.random.default_rng([seed, PURPOSE_SHUFFLE, epoch]).permutation(len(tr_y))
        loss_sum = 0.0
        t0 = time.perf_counter()
        for b in range(steps):
            idx = order[b * bs:(b + 1) * bs]
            rng = np.random.default_rng([seed, PURPOSE_AUGMENT, epoch, b])
            x = to_input(augment(tr_x[idx], rng), device)
            y = torch.from_numpy(tr_y[idx]).to(device)
            lr = warmup_cosine_lr(recipe["lr"], warmup, total, epoch * steps + b)
            for g in opt.param_groups:
                g["lr"] = lr
            loss = F.cross_entropy(model(x), y)
            value = loss.item()  # a host sync per step, as Burn's into_scalar
            if not math.isfinite(value):
                die(f"diverged: loss {value} at epoch {epoch} step {b}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.get("clip_grad_norm"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["clip_grad_norm"])
            opt.step()
            loss_sum += value
            images_seen += len(idx)
        step_time += time.perf_counter() - t0
        line = f"[pytorch seed {seed}] epoch {epoch + 1}/{epochs}: train loss {loss_sum / steps:.4f}, " \
               f"{images_seen / max(step_time, 1e-9):.1f} img/s, lr {lr:.5f}"
        if epoch + 1 in eval_at:
            acc = accuracy(model, va_x, va_y, evb, device)
            is_best = best_acc is None or acc > best_acc
            val_log.append([epoch + 1, acc])
            if is_best:
                best, best_epoch, best_acc = copy.deepcopy(model.state_dict()), epoch + 1, acc
            line += f", val acc {100 * acc:.2f}%" + (" (best)" if is_best else "")
        log(line)
    seconds = time.perf_counter() - started
    final = {
        "test_acc": accuracy(model, te_x, te_y, evb, device),
        "train_acc": accuracy(model, tr_x, tr_y, evb, device),
        "val_acc": accuracy(model, va_x, va_y, evb, device),
    }
    model.load_state_dict(best)
    selected = {
        "test_acc": accuracy(model, te_x, te_y, evb, device),
        "train_acc": accuracy(model, tr_x, tr_y, evb, device),
        "val_acc": best_acc,
    }
    return {
        "framework": "pytorch",
        "seed": seed,
        "test_acc": selected["test_acc"],
        "final_test_acc": final["test_acc"],
        "train_acc": selected["train_acc"],
        "final_train_acc": final["train_acc"],
        "val_acc": best_acc,
        "final_val_acc": final["val_acc"],
        "selected_epoch": best_epoch,
        "validations": val_log,
        "train_seconds": seconds,
        "train_images_per_second": images_seen / max(step_time, 1e-9),
        "steps_per_epoch": steps,
        "parameters": count_params(model),
    }


# ---------------------------------------------------------------------------------------------
# Recipes


def read_run(path):
    """A finished `cargo xtask train` run directory (xtask/src/cmd_train.rs): experiment.toml
    (the resolved experiment), model.json (BackboneConfig with the training-split input
    statistics), metrics.json (test metrics of the selected model, selection, timing)."""
    try:
        import tomllib
    except ImportError:
        die("reading experiment.toml needs Python 3.11+ (tomllib)")
    for f in ("experiment.toml", "model.json", "metrics.json"):
        if not os.path.isfile(os.path.join(path, f)):
            hint = " (still training? a run is complete once metrics.json exists)" if os.path.isdir(path + ".partial") else ""
            die(f"{path}/{f} is missing: not a finished Distillery run directory{hint}")
    with open(os.path.join(path, "experiment.toml"), "rb") as f:
        exp = tomllib.load(f)
    with open(os.path.join(path, "model.json")) as f:
        model = json.load(f)
    with open(os.path.join(path, "metrics.json")) as f:
        metrics = json.load(f)
    if exp.get("distill"):
        die(f"{path} is a distillation run ([distill] section): only the teacher recipe is mirrored")
    if exp["data"]["dataset"] != "cifar10":
        die(f"{path}: dataset {exp['data']['dataset']!r}: only cifar10 is mirrored")
    m = exp["model"]
    if m.get("batch_ensemble") or model.get("batch_ensemble"):
        die(f"{path} trains a BatchEnsemble: only a plain network is mirrored")
    arch = model.get("arch", {})
    if "ResNet" not in arch:
        die(f"{path}: architecture {arch}: only the CIFAR ResNet is mirrored")
    o = exp.get("optim", {})
    shortcut = model.get("shortcut")
    recipe = {
        "arch": m["arch"],
        "depth": int(arch["ResNet"]["depth"]),
        "shortcut": SHORTCUTS.get(shortcut, shortcut),
        "dropout": float(model.get("dropout", m.get("dropout", 0.0))),
        # Runs made before `init` existed used he_normal_uniform_head (see config.rs WeightInit).
        "init": m.get("init", "he_normal_uniform_head"),
        "train": list(exp["data"]["train"]),
        "val": list(exp["data"]["val"]),
        "test": list(exp["data"]["test"]),
        "input_mean": [float(v) for v in model["input_mean"]],
        "input_std": [float(v) for v in model["input_std"]],
        "lr": float(o.get("lr", BASE["lr"])),
        "momentum": float(o.get("momentum", BASE["momentum"])),
        "nesterov": bool(o.get("nesterov", BASE["nesterov"])),
        "weight_decay": float(o.get("weight_decay", BASE["weight_decay"])),
        "warmup_epochs": int(o.get("warmup_epochs", BASE["warmup_epochs"])),
        "epochs": int(o.get("epochs", BASE["epochs"])),
        "batch_size": int(o.get("batch_size", BASE["batch_size"])),
        "clip_grad_norm": o.get("clip_grad_norm"),
        "eval_batch_size": int(exp.get("eval_batch_size", BASE["eval_batch_size"])),
    }
    if model.get("num_classes", CLASSES) != CLASSES:
        die(f"{path}: {model['num_classes']} classes")
    if recipe["init"] not in INITS[:2]:
        die(f"{path}: init {recipe['init']!r} unknown")
    labels = {}
    for split in ("val", "test"):
        p = os.path.join(path, f"{split}_labels.npy")
        if os.path.isfile(p):
            labels[split] = np.load(p)
    row = {
        "framework": "distillery",
        "seed": int(exp.get("seed", 0)),
        "run": os.path.abspath(path),
        "test_acc": metrics.get("acc"),
        "final_test_acc": None,  # not recorded in the run directory
        "train_acc": metrics.get("train_accuracy"),  # runs made before it was recorded: None
        "val_acc": metrics.get("val_accuracy"),
        "selected_epoch": metrics.get("selected_epoch"),
        "train_seconds": metrics.get("train_seconds"),
        "train_images_per_second": metrics.get("train_images_per_second"),
        "backend": metrics.get("backend"),
        "nll": metrics.get("nll"),
        "ece": metrics.get("ece"),
    }
    return recipe, row, labels


def explicit_recipe(a):
    r = {
        "arch": a.arch or BASE["arch"],
        "shortcut": "zeropad",
        "dropout": 0.0,
        "init": "reference",
        "train": a.train or BASE["train"],
        "val": a.val or BASE["val"],
        "test": a.test or BASE["test"],
        "lr": BASE["lr"] if a.lr is None else a.lr,
        "momentum": BASE["momentum"] if a.momentum is None else a.momentum,
        "nesterov": BASE["nesterov"] if a.nesterov is None else a.nesterov,
        "weight_decay": BASE["weight_decay"] if a.wd is None else a.wd,
        "warmup_epochs": BASE["warmup_epochs"] if a.warmup_epochs is None else a.warmup_epochs,
        "epochs": BASE["epochs"] if a.epochs is None else a.epochs,
        "batch_size": BASE["batch_size"] if a.batch_size is None else a.batch_size,
        "clip_grad_norm": None,
        "eval_batch_size": BASE["eval_batch_size"] if a.eval_batch_size is None else a.eval_batch_size,
    }
    r["depth"] = parse_arch(r["arch"])
    return r


RECIPE_FLAGS = ("arch", "train", "val", "test", "epochs", "lr", "batch_size", "wd", "warmup_epochs",
                "momentum", "nesterov", "eval_batch_size")


# ---------------------------------------------------------------------------------------------
# Output


def pct(v):
    return "n/r" if v is None else f"{100 * v:.2f}"


def print_table(rows):
    head = ["framework", "seed", "test acc (selected)", "test acc (final epoch)", "train acc (selected)",
            "val acc @ epoch", "seconds", "img/s"]
    body = []
    for r in rows:
        sel = "n/r" if r.get("val_acc") is None else f"{pct(r['val_acc'])} @ {r.get('selected_epoch')}"
        secs = "n/r" if r.get("train_seconds") is None else f"{r['train_seconds']:.1f}"
        ips = "n/r" if r.get("train_images_per_second") is None else f"{r['train_images_per_second']:.1f}"
        body.append([r["framework"], str(r["seed"]), pct(r["test_acc"]), pct(r.get("final_test_acc")),
                     pct(r.get("train_acc")), sel, secs, ips])
    for fw in ("distillery", "pytorch"):
        accs = [r["test_acc"] for r in rows if r["framework"] == fw and r["test_acc"] is not None]
        if len(accs) > 1:
            m = float(np.mean(accs))
            s = float(np.std(accs, ddof=1))
            body.append([fw, "mean+-std", f"{100 * m:.2f} +- {100 * s:.2f}", "", "", "", "", ""])
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    print(fmt(head))
    print(fmt(["-" * w for w in widths]))
    for row in body:
        print(fmt(row))
    if any(r["framework"] == "distillery" for r in rows):
        print("n/r = not recorded: a Distillery run directory (metrics.json) holds the selected model's test "
              "metrics, training accuracy (clean images, eval mode; absent in older runs), val accuracy, "
              "selected epoch and timing, but no final-epoch test accuracy.")


def write_json_atomic(path, obj):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------------
# Self-test: the pure parts against the Rust unit tests, and the network against known counts


def self_test():
    ok = True

    def check(name, cond):
        nonlocal ok
        print(("ok   " if cond else "FAIL ") + name)
        ok &= bool(cond)

    # schedule.rs hand_values: base 0.1, warm-up 4, total 12
    lr = lambda s: warmup_cosine_lr(0.1, 4, 12, s)  # noqa: E731
    check("schedule warm-up 0.025 0.05 0.075 0.1", all(abs(lr(i) - w) < 1e-12 for i, w in enumerate([0.025, 0.05, 0.075, 0.1])))
    check("schedule step 4 = 0.1, step 8 = 0.05, step 12 = 0", abs(lr(4) - 0.1) < 1e-12 and abs(lr(8) - 0.05) < 1e-12 and abs(lr(12)) < 1e-12)
    check("schedule monotone after warm-up", all(lr(i + 1) <= lr(i) for i in range(4, 12)))
    # selection.rs paper_schedule_and_short_runs
    check("evaluation epochs 200", evaluation_epochs(200) == [1] + list(range(20, 181, 20)) + list(range(181, 201)))
    check("evaluation epochs 1, 10", evaluation_epochs(1) == [1] and evaluation_epochs(10) == list(range(1, 11)))
    check("evaluation epochs 30", evaluation_epochs(30) == [1, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30])
    check("evaluation epochs 5 (cpu teacher)", evaluation_epochs(5) == [1, 2, 3, 4, 5])
    # augment.rs: vectorised crop/flip against the explicit padded-copy reference
    rng = np.random.default_rng(7)
    imgs = rng.integers(0, 256, size=(16, 3, 32, 32), dtype=np.uint8)
    state = np.random.default_rng(3)
    out = augment(imgs, state)
    draws = np.random.default_rng(3)
    dx, dy, fl = draws.integers(0, 9, 16), draws.integers(0, 9, 16), draws.random(16) < 0.5
    check("augment == padded-copy reference (16 images)",
          all(np.array_equal(out[i], augment_reference(imgs[i], dx[i], dy[i], fl[i])) for i in range(16)))
    check("augment identity at dx = dy = 4, no flip", np.array_equal(augment_reference(imgs[0], 4, 4, False), imgs[0]))
    big = np.random.default_rng(11)
    d = big.integers(0, 9, size=100000)
    f = big.random(100000) < 0.5
    check("offsets uniform on 0..=8, flip p = 0.5",
          set(np.unique(d)) == set(range(9)) and abs(np.bincount(d).min() / 100000 - 1 / 9) < 0.01 and abs(f.mean() - 0.5) < 0.01)
    # network
    import_torch()
    CifarResNet = build_model_classes()
    mean, std = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
    r20 = CifarResNet(20, 10, mean, std)
    check(f"resnet20 trainable parameters {count_params(r20):,} == 269,722 (crates/ensembles/tests/batch_ensemble.rs)",
          count_params(r20) == 269722)
    r8 = CifarResNet(8, 10, mean, std)
    check(f"resnet8 trainable parameters {count_params(r8):,} == 75,290 (stem 464, stages 4,672 + 13,952 + 55,552, head 650)",
          count_params(r8) == 75290)
    check("resnet8 output shape [3, 10]", tuple(r8(torch.rand(3, 3, 32, 32)).shape) == (3, 10))
    torch.manual_seed(0)
    init_model(r20, "reference", "truncated")
    convs = [m for m in r20.modules() if isinstance(m, nn.Conv2d)]
    w = convs[-1].weight.detach().flatten()
    fan = convs[-1].in_channels * 9
    check(f"truncated He-normal: std {w.std().item():.5f} ~ sqrt(2/{fan}) = {math.sqrt(2 / fan):.5f}, |w| <= 2 sigma",
          abs(w.std().item() / math.sqrt(2 / fan) - 1) < 0.03 and w.abs().max().item() <= 2 * math.sqrt(2 / fan) / TRUNCATED_STD + 1e-6)
    with torch.no_grad():
        check("head bias zero, BN weight 1 bias 0", float(r20.head.bias.abs().sum()) == 0
              and all(float((m.weight - 1).abs().sum()) == 0 and float(m.bias.abs().sum()) == 0
                      for m in r20.modules() if isinstance(m, nn.BatchNorm2d)))
    # BatchNorm running variance: biased, as Burn
    blk = CifarResNet(8, 10, mean, std)
    norm = blk.stem_norm
    x = torch.randn(4, 16, 3, 3)
    norm.train()
    norm(x)
    v = x.var(dim=(0, 2, 3), unbiased=False)
    check("BN running_var = 0.9 * 1 + 0.1 * biased batch variance", torch.allclose(norm.running_var, 0.9 + 0.1 * v, atol=1e-6))
    # SGD: torch's Nesterov + coupled decay == Burn's formula on one parameter, 3 steps
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0, nesterov=True, weight_decay=0.01)
    q, vel = np.array([1.0, -2.0]), None
    for g in ([0.5, 0.25], [-1.0, 2.0], [0.3, 0.3]):
        opt.zero_grad()
        p.grad = torch.tensor(g)
        opt.step()
        gg = np.array(g) + 0.01 * q  # decay.rs: grad + penalty * w
        vel = gg if vel is None else 0.9 * vel + gg  # momentum.rs, dampening 0
        q = q - 0.1 * (gg + 0.9 * vel)  # Nesterov: grad + momentum * velocity
    check("torch.optim.SGD == Burn SGD (Nesterov, coupled decay), 3 steps", np.allclose(p.detach().numpy(), q, atol=1e-6))
    print("self-test " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="See benches/README-parity.md.")
    p.add_argument("--from-run", nargs="+", metavar="DIR",
                   help="finished `cargo xtask train` run directories of one recipe (different seeds); "
                        "the recipe and Distillery's numbers are read from them")
    p.add_argument("--seeds", nargs="+", type=int, help="PyTorch seeds (default: the runs' seeds, else 0)")
    p.add_argument("--threads", type=int, help="torch threads (default $RAYON_NUM_THREADS, else every CPU)")
    p.add_argument("--data-dir", help=f"data root holding {CIFAR10_DIR}/ (default ${DATA_ENV}, else datasets/, else ../shared/data)")
    p.add_argument("--out", help="write the results as JSON to this file (atomically)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu; Distillery's flex is CPU)")
    p.add_argument("--init", choices=INITS, help="initialisation (default: the run's, else reference); torch = PyTorch defaults")
    p.add_argument("--head-init", choices=("truncated", "normal"), default="truncated",
                   help="classifier weight under --init reference: truncated He-normal (Distillery's head_init(), "
                        "giung2-jax) or untruncated N(0, 2/fan_in) (default truncated)")
    p.add_argument("--bn-var", choices=("burn", "torch"), default="burn",
                   help="BatchNorm running variance from the biased (Burn) or unbiased (PyTorch) batch variance")
    p.add_argument("--self-test", action="store_true", help="check schedule, selection, augmentation, network and SGD, then exit")
    g = p.add_argument_group("explicit recipe (without --from-run; defaults: experiments/cifar10/base.toml)")
    g.add_argument("--arch", help="resnet8, resnet20, resnet32, ... (default resnet32)")
    g.add_argument("--train", nargs=2, type=int, metavar=("A", "B"), help="training records [A, B) (default 0 45000)")
    g.add_argument("--val", nargs=2, type=int, metavar=("A", "B"), help="validation records [A, B) (default 45000 50000)")
    g.add_argument("--test", nargs=2, type=int, metavar=("A", "B"), help="test records [A, B) (default 0 10000)")
    g.add_argument("--epochs", type=int, help="default 200")
    g.add_argument("--lr", type=float, help="peak learning rate (default 0.1)")
    g.add_argument("--batch-size", type=int, help="default 128")
    g.add_argument("--wd", type=float, help="coupled L2 weight decay (default 5e-4)")
    g.add_argument("--warmup-epochs", type=int, help="default 5")
    g.add_argument("--momentum", type=float, help="default 0.9")
    g.add_argument("--nesterov", type=lambda s: s.lower() in ("1", "true", "yes"), metavar="BOOL", help="default true")
    g.add_argument("--eval-batch-size", type=int, help="default 500")
    a = p.parse_args()

    if a.self_test:
        return self_test()

    threads = a.threads
    if threads is None:
        env = os.environ.get("RAYON_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0))
    distillery_rows, run_labels = [], []
    if a.from_run:
        given = [f for f in RECIPE_FLAGS if getattr(a, f) is not None]
        if given:
            die("recipe flags (" + ", ".join("--" + f.replace("_", "-") for f in given) + ") cannot be combined with "
                "--from-run: the recipe is the run's (only --init / --head-init / --bn-var may deviate, for comparison)")
        recipe = None
        for d in a.from_run:
            r, row, labels = read_run(d)
            if recipe is None:
                recipe = r
            elif r != recipe:
                diff = sorted(k for k in r if r[k] != recipe[k])
                die(f"{d}: recipe differs from {a.from_run[0]} in {diff}; give runs of one recipe")
            distillery_rows.append(row)
            run_labels.append((d, labels))
        seeds = a.seeds if a.seeds is not None else sorted({r["seed"] for r in distillery_rows})
    else:
        recipe = explicit_recipe(a)
        seeds = a.seeds if a.seeds is not None else [0]
    deviations = []
    if a.init is not None and a.init != recipe["init"]:
        deviations.append(f"init {a.init} instead of the run's {recipe['init']}" if a.from_run else f"init {a.init}")
        recipe["init"] = a.init
    recipe["head_init"] = a.head_init
    recipe["bn_var"] = a.bn_var
    if a.head_init != "truncated" and recipe["init"] == "reference":
        deviations.append("classifier weight untruncated He-normal (Distillery: truncated)")
    if a.bn_var != "burn":
        deviations.append("BatchNorm running variance unbiased (Distillery: biased)")
    parse_arch(recipe["arch"])

    root = data_root(a.data_dir)
    data = load_splits(root, recipe["train"], recipe["val"], recipe["test"])
    mean, std = split_stats(data["train"][0])
    if "input_mean" in recipe:
        dm = max(abs(x - y) for x, y in zip(mean + std, recipe["input_mean"] + recipe["input_std"]))
        if dm > 1e-6:
            log(f"warning: the training split in {data['dir']} has mean {mean} std {std}, the run's model.json "
                f"{recipe['input_mean']} {recipe['input_std']}: not the same data?")
    else:
        # f32, as Distillery stores them (cmd_train.rs: `stats.mean.map(|v| v as f32)`).
        recipe["input_mean"] = [float(np.float32(v)) for v in mean]
        recipe["input_std"] = [float(np.float32(v)) for v in std]
    for d, labels in run_labels:
        for split, lab in labels.items():
            if not np.array_equal(lab, data[split][1]):
                log(f"warning: {d}/{split}_labels.npy differs from the {split} labels read from {data['dir']}")

    torch_mod = import_torch()
    torch.set_num_threads(threads)
    log(f"recipe: {json.dumps({k: v for k, v in recipe.items() if k not in ('input_mean', 'input_std')})}")
    log(f"data: {data['dir']}; input mean {[round(v, 4) for v in recipe['input_mean']]}, "
        f"std {[round(v, 4) for v in recipe['input_std']]}")
    for dv in deviations:
        log(f"deviation from Distillery's recipe: {dv}")
    rows = []
    for seed in seeds:
        rows.append(train_one(recipe, data, seed, threads, a.device))
    all_rows = distillery_rows + rows
    print()
    print(f"Recipe: {recipe['arch']}, train [{recipe['train'][0]}, {recipe['train'][1]}), val "
          f"[{recipe['val'][0]}, {recipe['val'][1]}), test [{recipe['test'][0]}, {recipe['test'][1]}), "
          f"{recipe['epochs']} epochs ({recipe['warmup_epochs']} warm-up), batch {recipe['batch_size']}, "
          f"lr {recipe['lr']}, wd {recipe['weight_decay']}, init {recipe['init']}; PyTorch {torch_mod.__version__}, "
          f"{threads} threads")
    for dv in deviations:
        print(f"Deviation: {dv}")
    print_table(all_rows)
    if a.out:
        write_json_atomic(a.out, {
            "schema": SCHEMA,
            "recipe": recipe,
            "deviations": deviations,
            "data_dir": data["dir"],
            "distillery": distillery_rows,
            "pytorch": rows,
            "not_recorded_by_distillery": ["final_test_acc"] if distillery_rows else [],
            "environment": {
                "torch": torch_mod.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
                "threads": threads,
                "device": a.device,
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
            },
        })
        log(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
