//! A plain multi-layer perceptron for low-dimensional inputs (the spirals experiment of the
//! EnD² paper, METHODS.md §5): `x / input_scale → [Linear → ReLU]* → Linear`.
//!
//! Raw spiral coordinates reach |x| ≈ 400, so the model divides its input by a constant
//! `input_scale` first (a constant, like [`crate::Normalize`]: not trained, not saved), and
//! callers feed the data in its natural units.
//!
//! [`BeMlp`] is the BatchEnsemble version (Wen, Tran & Ba 2020, eq. 2: every layer an
//! [`EnsLinear`] with rank-one fast weights per member) of the same shape; its LatentBE merge
//! ([`BeMlp::merge`]) is a plain [`Mlp`].

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor, TensorData};

use crate::config::{BatchEnsembleConfig, MergeRule};
use crate::layers::{EnsLinear, LayerInit};
use crate::{EnsembleError, tile, untile};

/// Shape of an [`Mlp`].
#[derive(Config, Debug, PartialEq)]
pub struct MlpConfig {
    /// Input dimension d (2 for the spirals).
    #[config(default = 2)]
    pub input_dim: usize,
    /// Widths of the hidden layers, input side first (each followed by a ReLU); may be empty
    /// (then the model is a linear classifier).
    pub hidden: Vec<usize>,
    /// Number of classes K (width of the output layer, which outputs logits).
    pub classes: usize,
    /// The model's first step divides the input by this constant (e.g. 100 for raw spiral
    /// coordinates, which reach |x| ≈ 400), so the first layer sees values of order 1.
    #[config(default = 1.0)]
    pub input_scale: f64,
}

impl MlpConfig {
    /// Check the shape; the error names the field.
    pub fn validate(&self) -> Result<(), EnsembleError> {
        let bad = |m: String| Err(EnsembleError::InvalidArch(format!("mlp: {m}")));
        if self.input_dim == 0 {
            return bad("input_dim = 0".into());
        }
        if self.classes == 0 {
            return bad("classes = 0".into());
        }
        if let Some(i) = self.hidden.iter().position(|&w| w == 0) {
            return bad(format!("hidden[{i}] = 0"));
        }
        if !(self.input_scale.is_finite() && self.input_scale > 0.0) {
            return bad(format!("input_scale = {} (must be finite and > 0)", self.input_scale));
        }
        Ok(())
    }

    /// `(fan_in, fan_out)` of every linear layer, input side first.
    pub fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let mut dims = vec![self.input_dim];
        dims.extend(&self.hidden);
        dims.push(self.classes);
        dims.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// A network with Burn's default `Linear` initialisation (uniform `±1/sqrt(fan_in)` for
    /// weights and biases), drawn from the device's random generator (see `Device::seed`).
    pub fn init(&self, device: &Device) -> Result<Mlp, EnsembleError> {
        self.validate()?;
        let layers = self.layer_shapes().into_iter().map(|(i, o)| LinearConfig::new(i, o).init(device)).collect();
        Ok(Mlp { layers, input_scale: self.input_scale })
    }

    /// A network with the given weights: per layer `(weight, bias)`, the weight row-major
    /// `[fan_in, fan_out]` (Burn's `Linear` layout, `y = x W + b`) and the bias `[fan_out]`.
    /// Lets callers initialise from their own seeded generator, independent of device state.
    pub fn init_with_weights(&self, weights: &[(Vec<f32>, Vec<f32>)], device: &Device) -> Result<Mlp, EnsembleError> {
        self.validate()?;
        let shapes = self.layer_shapes();
        if weights.len() != shapes.len() {
            return Err(EnsembleError::InvalidArch(format!("mlp: {} weight pairs for {} layers", weights.len(), shapes.len())));
        }
        let mut layers = Vec::with_capacity(shapes.len());
        for (l, ((i, o), (w, b))) in shapes.into_iter().zip(weights).enumerate() {
            if w.len() != i * o || b.len() != o {
                return Err(EnsembleError::InvalidArch(format!(
                    "mlp: layer {l} expects weight {i}x{o} and bias {o}, got {} and {} values",
                    w.len(),
                    b.len()
                )));
            }
            layers.push(Linear {
                weight: Param::from_tensor(Tensor::<2>::from_data(TensorData::new(w.clone(), [i, o]), device)),
                bias: Some(Param::from_tensor(Tensor::<1>::from_data(TensorData::new(b.clone(), [o]), device))),
            });
        }
        Ok(Mlp { layers, input_scale: self.input_scale })
    }
}

impl MlpConfig {
    /// A BatchEnsemble network of this shape with `be.members` members (biases and fast
    /// weights per `be`; BatchNorm settings do not apply). Weights and biases are PyTorch's uniform
    /// default ([`LayerInit::TorchUniform`], as the plain [`Mlp`]), from the device's generator.
    pub fn init_batch_ensemble(&self, be: &BatchEnsembleConfig, device: &Device) -> Result<BeMlp, EnsembleError> {
        self.validate()?;
        if be.members == 0 {
            return Err(EnsembleError::InvalidArch("mlp: batch_ensemble.members = 0".into()));
        }
        let layers = self.layer_shapes().into_iter().map(|(i, o)| EnsLinear::new(i, o, true, Some(be), LayerInit::TorchUniform, device)).collect();
        Ok(BeMlp { layers, input_scale: self.input_scale })
    }
}

/// A BatchEnsemble MLP (see the module docs): `forward([M*B, d]) → [M*B, K]` on a tiled,
/// member-major batch.
#[derive(Module, Debug)]
pub struct BeMlp {
    /// BatchEnsemble linear layers, input side first; every layer but the last is followed
    /// by a ReLU.
    pub layers: Vec<EnsLinear>,
    /// Inputs are divided by this constant first (not a parameter).
    pub input_scale: f64,
}

impl BeMlp {
    /// Number of members M.
    pub fn members(&self) -> usize {
        self.layers[0].members()
    }

    /// `x`: `[M*B, d]` tiled member-major (member m sees rows `m*B..(m+1)*B`) → `[M*B, K]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        relu_stack(&self.layers, x / self.input_scale, EnsLinear::forward)
    }

    /// The same points `[B, d]` through every member → logits `[M, B, K]`.
    pub fn member_logits(&self, x: Tensor<2>) -> Tensor<3> {
        let m = self.members();
        untile(self.forward(tile(x, m)), m)
    }

    /// Member `m` as a plain [`Mlp`] (materialised weights `W ∘ r_m s_mᵀ`, bias `b_m`).
    pub fn member(&self, m: usize) -> Result<Mlp, EnsembleError> {
        let layers = self.layers.iter().map(|l| l.member(m).map(plain_linear)).collect::<Result<_, _>>()?;
        Ok(Mlp { layers, input_scale: self.input_scale })
    }

    /// LatentBE (Nam et al. 2022): the members merged into one plain [`Mlp`] by `rule`.
    pub fn merge(&self, rule: MergeRule) -> Mlp {
        Mlp { layers: self.layers.iter().map(|l| plain_linear(l.merge(rule))).collect(), input_scale: self.input_scale }
    }
}

/// `layers` applied in order with a ReLU after every layer but the last.
fn relu_stack<L>(layers: &[L], x: Tensor<2>, forward: impl Fn(&L, Tensor<2>) -> Tensor<2>) -> Tensor<2> {
    let last = layers.len() - 1;
    let mut h = x;
    for (l, layer) in layers.iter().enumerate() {
        h = forward(layer, h);
        if l < last {
            h = relu(h);
        }
    }
    h
}

/// A plain [`EnsLinear`] (no fast weights, one bias row) as Burn's `Linear`.
fn plain_linear(l: EnsLinear) -> Linear {
    debug_assert!(l.r.is_none() && l.s.is_none(), "plain_linear: a BatchEnsemble layer");
    let bias = l.bias.map(|b| {
        let [_, o] = b.dims();
        Param::from_tensor(b.val().reshape([o]))
    });
    Linear { weight: Param::from_tensor(l.weight.val()), bias }
}

/// A plain MLP (see [`MlpConfig`]): `forward([N, d]) → [N, K]` logits.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Linear layers, input side first; every layer but the last is followed by a ReLU.
    pub layers: Vec<Linear>,
    /// Inputs are divided by this constant first (not a parameter).
    pub input_scale: f64,
}

impl Mlp {
    /// `x`: `[N, d]` raw inputs → `[N, K]` logits.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        relu_stack(&self.layers, x / self.input_scale, Linear::forward)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_input_scale() {
        let device = Device::flex();
        device.seed(5);
        let cfg = MlpConfig::new(vec![16, 8], 3).with_input_scale(100.0);
        let mlp = cfg.init(&device).unwrap();
        assert_eq!(mlp.layers.len(), 3);
        let x = Tensor::<2>::from_floats([[300.0, -120.0], [1.0, 2.0], [0.0, 0.0], [-400.0, 400.0], [5.0, 5.0]], &device);
        let y = mlp.forward(x.clone());
        assert_eq!(y.dims(), [5, 3]);
        // The input scale is applied inside: a model with scale 1 fed x / 100 agrees.
        let unscaled = Mlp { layers: mlp.layers.clone(), input_scale: 1.0 };
        let y1 = unscaled.forward(x / 100.0);
        let (a, b) = (y.into_data().try_into_vec::<f32>().unwrap(), y1.into_data().try_into_vec::<f32>().unwrap());
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-5, "{p} vs {q}");
        }
        // No hidden layer: a linear classifier.
        let lin = MlpConfig::new(vec![], 4).with_input_dim(5).init(&device).unwrap();
        assert_eq!(lin.forward(Tensor::<2>::zeros([7, 5], &device)).dims(), [7, 4]);
    }

    #[test]
    fn batch_ensemble_members_and_merge_agree_with_plain_networks() {
        let device = Device::flex();
        device.seed(11);
        let cfg = MlpConfig::new(vec![6, 5], 3).with_input_scale(10.0);
        let be = BatchEnsembleConfig::new(3).with_fast_init(crate::FastInit::RandomSign { p_positive: 0.5 });
        let net = cfg.init_batch_ensemble(&be, &device).unwrap();
        assert_eq!(net.members(), 3);
        let x = Tensor::<2>::from_floats([[30.0, -12.0], [1.0, 2.0], [-40.0, 40.0], [5.0, -5.0]], &device);
        let all = net.member_logits(x.clone()); // [3, 4, 3]
        assert_eq!(all.dims(), [3, 4, 3]);
        let host = |t: Tensor<2>| t.into_data().try_into_vec::<f32>().unwrap();
        let close = |a: &[f32], b: &[f32], what: &str| {
            for (p, q) in a.iter().zip(b) {
                assert!((p - q).abs() < 1e-5 * (1.0 + q.abs()), "{what}: {a:?} vs {b:?}");
            }
        };
        // Member m of the tiled forward is the plain network with W ∘ r_m s_mᵀ.
        for m in 0..3 {
            let plain = net.member(m).unwrap().forward(x.clone());
            close(&host(all.clone().slice([m..m + 1]).reshape([4, 3])), &host(plain), "member");
        }
        assert!(net.member(3).is_err());
        // Members differ (random-sign fast weights), so the ensemble is not degenerate.
        let (a, b) = (host(all.clone().slice([0..1]).reshape([4, 3])), host(all.slice([1..2]).reshape([4, 3])));
        assert!(a.iter().zip(&b).any(|(p, q)| (p - q).abs() > 1e-3));
        // One member: the LatentBE merge is that member under either rule.
        let one = cfg.init_batch_ensemble(&BatchEnsembleConfig::new(1).with_fast_init(crate::FastInit::RandomSign { p_positive: 0.5 }), &device).unwrap();
        let want = host(one.member(0).unwrap().forward(x.clone()));
        for rule in [MergeRule::FactorMean, MergeRule::ProductMean] {
            close(&host(one.merge(rule).forward(x.clone())), &want, "merge of one member");
        }
        assert!(cfg.init_batch_ensemble(&BatchEnsembleConfig::new(0), &device).is_err());
    }

    #[test]
    fn explicit_weights_and_validation() {
        let device = Device::flex();
        let cfg = MlpConfig::new(vec![2], 1).with_input_scale(2.0);
        // h = relu(x/2 W1 + b1), W1 = I, b1 = (0, -1); y = h (1, 1)ᵀ + 0.5
        let w = vec![(vec![1.0, 0.0, 0.0, 1.0], vec![0.0, -1.0]), (vec![1.0, 1.0], vec![0.5])];
        let mlp = cfg.init_with_weights(&w, &device).unwrap();
        let y = mlp.forward(Tensor::<2>::from_floats([[4.0, 6.0], [-2.0, 0.0]], &device));
        assert_eq!(y.into_data().try_into_vec::<f32>().unwrap(), vec![2.0 + 2.0 + 0.5, 0.5]);
        assert!(cfg.init_with_weights(&w[..1], &device).unwrap_err().to_string().contains("1 weight pairs"));
        assert!(MlpConfig::new(vec![3, 0], 2).init(&device).unwrap_err().to_string().contains("hidden[1]"));
        assert!(MlpConfig::new(vec![3], 2).with_input_scale(0.0).validate().is_err());
    }
}
