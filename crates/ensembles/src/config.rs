//! Configuration of backbones and of their BatchEnsemble variant (METHODS.md §1).

use burn::config::Config;

/// Which residual network to build.
#[derive(Config, Debug, PartialEq)]
pub enum Arch {
    /// CIFAR ResNet of He et al. (2016), depth `6n + 2` (8, 20, 32, 56, 110, …): a 3x3 stem
    /// with 16 channels, three stages of `n` basic post-activation blocks with 16/32/64
    /// channels, global average pooling and a linear classifier.
    ResNet {
        /// Total depth `6n + 2`.
        depth: usize,
    },
    /// Pre-activation Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016): a 3x3 stem with 16
    /// channels, three groups of `(d - 4) / 6` pre-activation blocks with 16k/32k/64k
    /// channels, a final BN-ReLU, global average pooling and a linear classifier.
    PreActWrn {
        /// Total depth `d` with `(d - 4) % 6 == 0` (16, 28, 40, …).
        depth: usize,
        /// Width factor `k`.
        width: usize,
    },
}

/// How a block's shortcut handles a change of shape (stride 2 or more channels).
#[derive(Config, Debug, PartialEq, Copy)]
pub enum ShortcutKind {
    /// 1x1 strided convolution (followed by BatchNorm in post-activation blocks): option B
    /// of He et al.; what the reference (giung2-jax) pre-activation WRN uses, without BN.
    Projection,
    /// Parameter-free: subsample by the stride and pad the new channels with zeros
    /// (option A of He et al., the original CIFAR ResNet; giung2-jax's CIFAR ResNet).
    ZeroPad,
}

/// Bias of BatchEnsemble layers (METHODS.md §1).
#[derive(Config, Debug, PartialEq, Copy)]
pub enum BiasMode {
    /// One bias `b` shared by all members, added BEFORE the output fast weight:
    /// `y_m = s_m ∘ (W (x ∘ r_m) + b)` (LatentBE authors' code, giung2-jax
    /// `giung2/layers/linear.py`, `conv.py`). Member m's plain layer has bias `s_m ∘ b`; the
    /// LatentBE merge gives `s̄ ∘ b` under both merge rules.
    Shared,
    /// One bias per member `b_m`, added AFTER `s`: `y_m = s_m ∘ (W (x ∘ r_m)) + b_m`
    /// (Diversity-Matters / giung2 `layers/linear.py`). The merge averages the `b_m`.
    PerMember,
}

/// Initialisation of the slow weights of a [`Backbone`](crate::Backbone).
#[derive(Config, Debug, PartialEq, Copy)]
pub enum WeightInit {
    /// The reference code (giung2-jax, METHODS.md §1): convolution kernels truncated
    /// He-normal (`variance_scaling(2.0, "fan_in", "truncated_normal")`: a standard normal
    /// truncated to ±2, scaled by `sqrt(2 / fan_in) / 0.8796…` so the variance is
    /// `2 / fan_in`), classifier weight He-normal (the same), classifier bias zero.
    Reference,
    /// What this project used before matching the reference: untruncated He-normal
    /// convolutions (`N(0, 2 / fan_in)`) and PyTorch's default uniform classifier weight and
    /// bias, `U(±1/sqrt(d_in))`. Kept to compare against runs made with it.
    HeNormalUniformHead,
}

/// BatchNorm layers of a BatchEnsemble network.
#[derive(Config, Debug, PartialEq, Copy)]
pub enum NormMode {
    /// One BatchNorm shared by all members (the papers' code; the only mode LatentBE can
    /// merge).
    Shared,
    /// One BatchNorm per member, applied to that member's rows of the tiled batch.
    PerMember,
}

/// Initialisation of the fast weights `r_m`, `s_m`.
#[derive(Config, Debug, PartialEq, Copy)]
pub enum FastInit {
    /// Constant 1.0 (LatentBE code): every member starts as the shared network.
    Ones,
    /// Gaussian `N(mean, std^2)` entries (BE paper, e.g. `N(1, 0.5^2)`).
    Normal {
        /// Mean of the entries.
        mean: f64,
        /// Standard deviation of the entries.
        std: f64,
    },
    /// Random signs: each entry is +1 with probability `p_positive`, else -1 (BE paper).
    RandomSign {
        /// Probability of +1.
        p_positive: f64,
    },
}

/// The two LatentBE merge rules of METHODS.md §1.
#[derive(Config, Debug, PartialEq, Copy)]
pub enum MergeRule {
    /// `W' = W ∘ (r̄ s̄ᵀ)` with member means `r̄`, `s̄` (the authors' released code; default).
    FactorMean,
    /// `W' = W ∘ ((1/M) Σ_m r_m s_mᵀ)` (equation 6 of the paper, up to scale).
    ProductMean,
}

/// Turns a backbone into a BatchEnsemble (Wen et al. 2020) of `members` members.
#[derive(Config, Debug, PartialEq)]
pub struct BatchEnsembleConfig {
    /// Number of members M (>= 1).
    pub members: usize,
    /// Shared or per-member biases.
    #[config(default = "BiasMode::Shared")]
    pub bias: BiasMode,
    /// Shared or per-member BatchNorm.
    #[config(default = "NormMode::Shared")]
    pub norm: NormMode,
    /// Initialisation of the fast weights r and s.
    #[config(default = "FastInit::Ones")]
    pub fast_init: FastInit,
}

/// Builds a [`Backbone`](crate::Backbone) with [`BackboneConfig::init`].
#[derive(Config, Debug)]
pub struct BackboneConfig {
    /// Network family and size.
    pub arch: Arch,
    /// Number of classes K.
    #[config(default = 10)]
    pub num_classes: usize,
    /// Per-channel mean subtracted from `[0, 1]` pixels inside the model (CIFAR-10 train split).
    #[config(default = "[0.4914, 0.4822, 0.4465]")]
    pub input_mean: [f32; 3],
    /// Per-channel standard deviation the centred pixels are divided by.
    #[config(default = "[0.2470, 0.2435, 0.2616]")]
    pub input_std: [f32; 3],
    /// Shortcut on a change of shape; `None` takes the reference code's choice for the
    /// architecture: `ZeroPad` for the CIFAR ResNet, `Projection` for the WRN.
    #[config(default = "None")]
    pub shortcut: Option<ShortcutKind>,
    /// Dropout between the two convolutions of a block (WRN only; 0 disables).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// `Some` builds a BatchEnsemble network, `None` a plain one.
    #[config(default = "None")]
    pub batch_ensemble: Option<BatchEnsembleConfig>,
    /// Initialisation of the slow weights (the reference code's by default).
    #[config(default = "WeightInit::Reference")]
    pub init: WeightInit,
}
