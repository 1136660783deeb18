//! CIFAR ResNet (He et al. 2016, "Deep Residual Learning", §4.2) and pre-activation Wide
//! ResNet (Zagoruyko & Komodakis 2016, with the pre-activation blocks of He et al. 2016,
//! "Identity Mappings") written once over plain/BatchEnsemble layers.

use burn::module::{Module, ParamId};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor, s};

use crate::config::{Arch, BackboneConfig, MergeRule, ShortcutKind, WeightInit};
use crate::error::EnsembleError;
use crate::layers::{EnsConv2d, EnsLinear, EnsNorm, LayerInit};
use crate::normalize::Normalize;

/// A residual block: post-activation basic block (ResNet) or pre-activation block (WRN).
#[derive(Module, Debug)]
pub struct Block {
    /// First norm: after `conv1` (post-act) or on the block input (pre-act).
    pub norm1: EnsNorm,
    /// First 3x3 convolution (carries the stride).
    pub conv1: EnsConv2d,
    /// Second norm.
    pub norm2: EnsNorm,
    /// Second 3x3 convolution.
    pub conv2: EnsConv2d,
    /// 1x1 projection on a change of shape (`ShortcutKind::Projection`).
    pub proj: Option<EnsConv2d>,
    /// BatchNorm after the projection (post-activation blocks only).
    pub proj_norm: Option<EnsNorm>,
    /// Dropout between the convolutions.
    pub dropout: Dropout,
    /// Zero-pad shortcut: stride of the subsampling (1 = identity).
    pub pad_stride: usize,
    /// Zero-pad shortcut: channels appended as zeros.
    pub pad_channels: usize,
    /// Pre-activation (WRN) or post-activation (ResNet) ordering.
    pub preact: bool,
}

impl Block {
    fn new(
        c_in: usize,
        c_out: usize,
        stride: usize,
        preact: bool,
        cfg: &BackboneConfig,
        device: &Device,
    ) -> Self {
        let be = cfg.batch_ensemble.as_ref();
        let reshape = stride != 1 || c_in != c_out;
        let (proj, proj_norm, pad_stride, pad_channels) = match (reshape, cfg.shortcut_kind()) {
            (false, _) => (None, None, 1, 0),
            (true, ShortcutKind::Projection) => (
                Some(EnsConv2d::new([c_in, c_out], 1, stride, 0, false, be, cfg.conv_init(), device)),
                (!preact).then(|| EnsNorm::new(c_out, be, device)),
                1,
                0,
            ),
            (true, ShortcutKind::ZeroPad) => (None, None, stride, c_out - c_in),
        };
        Self {
            norm1: EnsNorm::new(if preact { c_in } else { c_out }, be, device),
            conv1: EnsConv2d::new([c_in, c_out], 3, stride, 1, false, be, cfg.conv_init(), device),
            norm2: EnsNorm::new(c_out, be, device),
            conv2: EnsConv2d::new([c_out, c_out], 3, 1, 1, false, be, cfg.conv_init(), device),
            proj,
            proj_norm,
            dropout: DropoutConfig::new(cfg.dropout).init(),
            pad_stride,
            pad_channels,
            preact,
        }
    }

    fn zero_pad_shortcut(&self, x: Tensor<4>) -> Tensor<4> {
        let x = if self.pad_stride > 1 {
            let st = self.pad_stride as isize;
            x.slice(s![.., .., 0..;st, 0..;st])
        } else {
            x
        };
        if self.pad_channels == 0 {
            return x;
        }
        let [n, _, h, w] = x.dims();
        let zeros = Tensor::zeros([n, self.pad_channels, h, w], &x.device());
        Tensor::cat(vec![x, zeros], 1)
    }

    /// `x`: `[N, C_in, H, W]` → `[N, C_out, H/stride, W/stride]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if self.preact {
            // As in the reference code (giung2-jax PreResNet), the shortcut sees the raw
            // block input, not the pre-activated one.
            let shortcut = match &self.proj {
                Some(p) => p.forward(x.clone()),
                None => self.zero_pad_shortcut(x.clone()),
            };
            let o = relu(self.norm1.forward(x));
            let h = relu(self.norm2.forward(self.conv1.forward(o)));
            let h = self.conv2.forward(self.dropout.forward(h));
            h + shortcut
        } else {
            let shortcut = match (&self.proj, &self.proj_norm) {
                (Some(p), Some(n)) => n.forward(p.forward(x.clone())),
                (Some(p), None) => p.forward(x.clone()),
                _ => self.zero_pad_shortcut(x.clone()),
            };
            let h = relu(self.norm1.forward(self.conv1.forward(x)));
            let h = self.norm2.forward(self.conv2.forward(self.dropout.forward(h)));
            relu(h + shortcut)
        }
    }

    fn map_layers(
        &self,
        conv: &impl Fn(&EnsConv2d) -> Result<EnsConv2d, EnsembleError>,
        norm: &impl Fn(&EnsNorm) -> Result<EnsNorm, EnsembleError>,
    ) -> Result<Self, EnsembleError> {
        Ok(Self {
            norm1: norm(&self.norm1)?,
            conv1: conv(&self.conv1)?,
            norm2: norm(&self.norm2)?,
            conv2: conv(&self.conv2)?,
            proj: self.proj.as_ref().map(conv).transpose()?,
            proj_norm: self.proj_norm.as_ref().map(norm).transpose()?,
            dropout: self.dropout.clone(),
            pad_stride: self.pad_stride,
            pad_channels: self.pad_channels,
            preact: self.preact,
        })
    }

    fn convs(&self) -> impl Iterator<Item = &EnsConv2d> {
        [&self.conv1, &self.conv2].into_iter().chain(self.proj.as_ref())
    }
}

/// A CIFAR ResNet or pre-activation WRN; plain, BatchEnsemble, or merged LatentBE.
#[derive(Module, Debug)]
pub struct Backbone {
    /// Per-channel input normalisation (the model receives pixels in `[0, 1]`).
    pub normalize: Normalize,
    /// 3x3 stem convolution, 16 channels.
    pub stem: EnsConv2d,
    /// BN after the stem (post-activation ResNet only).
    pub stem_norm: Option<EnsNorm>,
    /// Residual blocks, in order.
    pub blocks: Vec<Block>,
    /// BN before pooling (pre-activation WRN only).
    pub final_norm: Option<EnsNorm>,
    /// Linear classifier.
    pub head: EnsLinear,
    /// Ensemble size M (1 for a plain network).
    pub members: usize,
}

impl BackboneConfig {
    /// The shortcut kind in force (the architecture's default when unset).
    pub fn shortcut_kind(&self) -> ShortcutKind {
        self.shortcut.unwrap_or(match self.arch {
            Arch::ResNet { .. } => ShortcutKind::ZeroPad,
            Arch::PreActWrn { .. } => ShortcutKind::Projection,
        })
    }

    /// Check the configuration without building anything; the error names the bad value.
    pub fn validate(&self) -> Result<(), EnsembleError> {
        self.layout().map(|_| ())
    }

    /// Blocks per stage, stage widths, pre-activation.
    fn layout(&self) -> Result<(usize, [usize; 3], bool), EnsembleError> {
        if let Some(c) = &self.batch_ensemble {
            if c.members == 0 {
                return Err(EnsembleError::InvalidArch("batch_ensemble.members must be >= 1".into()));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(EnsembleError::InvalidArch(format!("dropout {} is not in [0, 1)", self.dropout)));
        }
        if self.num_classes < 2 {
            return Err(EnsembleError::InvalidArch(format!("num_classes {} < 2", self.num_classes)));
        }
        match self.arch {
            Arch::ResNet { depth } => {
                if depth < 8 || (depth - 2) % 6 != 0 {
                    return Err(EnsembleError::InvalidArch(format!(
                        "ResNet depth {depth} is not 6n+2 with n >= 1 (8, 20, 32, 56, 110, …)"
                    )));
                }
                Ok(((depth - 2) / 6, [16, 32, 64], false))
            }
            Arch::PreActWrn { depth, width } => {
                if depth < 10 || (depth - 4) % 6 != 0 || width == 0 {
                    return Err(EnsembleError::InvalidArch(format!(
                        "WRN-{depth}-{width}: depth must be 6n+4 with n >= 1 (10, 16, 28, 40, …) and width >= 1"
                    )));
                }
                Ok(((depth - 4) / 6, [16 * width, 32 * width, 64 * width], true))
            }
        }
    }

    /// How the convolutions are drawn under [`BackboneConfig::init`].
    fn conv_init(&self) -> LayerInit {
        match self.init {
            WeightInit::Reference => LayerInit::TruncatedHeNormal,
            WeightInit::HeNormalUniformHead => LayerInit::HeNormal,
        }
    }

    /// How the classifier is drawn under [`BackboneConfig::init`].
    fn head_init(&self) -> LayerInit {
        match self.init {
            WeightInit::Reference => LayerInit::TruncatedHeNormal,
            WeightInit::HeNormalUniformHead => LayerInit::TorchUniform,
        }
    }

    /// Build the network on `device`.
    pub fn init(&self, device: &Device) -> Result<Backbone, EnsembleError> {
        let be = self.batch_ensemble.as_ref();
        let (per_stage, widths, preact) = self.layout()?;
        let mut blocks = Vec::with_capacity(3 * per_stage);
        let mut c_in = 16;
        for (stage, &c_out) in widths.iter().enumerate() {
            for i in 0..per_stage {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                blocks.push(Block::new(c_in, c_out, stride, preact, self, device));
                c_in = c_out;
            }
        }
        Ok(Backbone {
            normalize: Normalize { mean: self.input_mean, std: self.input_std },
            stem: EnsConv2d::new([3, 16], 3, 1, 1, false, be, self.conv_init(), device),
            stem_norm: (!preact).then(|| EnsNorm::new(16, be, device)),
            blocks,
            final_norm: preact.then(|| EnsNorm::new(c_in, be, device)),
            head: EnsLinear::new(c_in, self.num_classes, true, be, self.head_init(), device),
            members: be.map_or(1, |c| c.members),
        })
    }
}

impl Backbone {
    /// Logits of a tiled batch: `x` `[M*B, 3, H, W]` in `[0, 1]` → `[M*B, K]`
    /// (`[B, K]` for a plain network).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.normalize.forward(x);
        let mut h = self.stem.forward(x);
        if let Some(n) = &self.stem_norm {
            h = relu(n.forward(h));
        }
        for block in &self.blocks {
            h = block.forward(h);
        }
        if let Some(n) = &self.final_norm {
            h = relu(n.forward(h));
        }
        // Global average pooling: [N, C, H, W] → [N, C]
        let [n, c, hh, ww] = h.dims();
        let pooled = h.reshape([n, c, hh * ww]).mean_dim(2).reshape([n, c]);
        self.head.forward(pooled)
    }

    /// Member logits of an untiled batch: `x` `[B, 3, H, W]` → `[M, B, K]`.
    pub fn member_logits(&self, x: Tensor<4>) -> Tensor<3> {
        crate::untile(self.forward(crate::tile(x, self.members)), self.members)
    }

    /// Ensemble prediction: mean of member probabilities, `[B, 3, H, W]` → `[B, K]`.
    pub fn predict_probs(&self, x: Tensor<4>) -> Tensor<2> {
        let logits = self.member_logits(x);
        let [_, b, k] = logits.dims();
        softmax(logits, 2).mean_dim(0).reshape([b, k])
    }

    /// Member `m` as a plain network with materialised weights `W ∘ (s_m r_mᵀ)`.
    pub fn member(&self, m: usize) -> Result<Backbone, EnsembleError> {
        if m >= self.members {
            return Err(EnsembleError::MemberOutOfRange { index: m, members: self.members });
        }
        self.map_layers(&|c| c.member(m), &|n| n.member(m), &|l| l.member(m), 1)
    }

    /// LatentBE: merge the BatchEnsemble into one plain backbone with `rule`
    /// (METHODS.md §1). A plain network is returned unchanged.
    pub fn merge(&self, rule: MergeRule) -> Result<Backbone, EnsembleError> {
        self.map_layers(&|c| Ok(c.merge(rule)), &|n| n.merge(), &|l| Ok(l.merge(rule)), 1)
    }

    fn map_layers(
        &self,
        conv: &impl Fn(&EnsConv2d) -> Result<EnsConv2d, EnsembleError>,
        norm: &impl Fn(&EnsNorm) -> Result<EnsNorm, EnsembleError>,
        linear: &impl Fn(&EnsLinear) -> Result<EnsLinear, EnsembleError>,
        members: usize,
    ) -> Result<Backbone, EnsembleError> {
        Ok(Backbone {
            normalize: self.normalize.clone(),
            stem: conv(&self.stem)?,
            stem_norm: self.stem_norm.as_ref().map(norm).transpose()?,
            blocks: self.blocks.iter().map(|b| b.map_layers(conv, norm)).collect::<Result<_, _>>()?,
            final_norm: self.final_norm.as_ref().map(norm).transpose()?,
            head: linear(&self.head)?,
            members,
        })
    }

    fn all_convs(&self) -> impl Iterator<Item = &EnsConv2d> {
        std::iter::once(&self.stem).chain(self.blocks.iter().flat_map(Block::convs))
    }

    /// The LatentBE code's regulariser on the fast weights, summed over layers:
    /// `0.5 * Σ (1 - e)² / M` for every entry e of every r and s. `None` for a plain network.
    pub fn fast_weight_penalty(&self) -> Option<Tensor<1>> {
        let mut terms = self.all_convs().filter_map(|c| c.fast().map(|f| f.pull_to_one()));
        let first = terms.next()?;
        let total = terms.fold(first, |acc, t| acc + t);
        Some(match self.head.fast() {
            Some(f) => total + f.pull_to_one(),
            None => total,
        })
    }

    /// Ids of every fast-weight parameter (r and s of every layer), e.g. to exclude them
    /// from weight decay and give them their own optimiser group.
    pub fn fast_weight_ids(&self) -> Vec<ParamId> {
        let mut ids = Vec::new();
        for c in self.all_convs() {
            if let Some(f) = c.fast() {
                ids.extend([f.r.id, f.s.id]);
            }
        }
        if let Some(f) = self.head.fast() {
            ids.extend([f.r.id, f.s.id]);
        }
        ids
    }
}

