//! The distillation losses of METHODS.md §2 against independent references: scipy golden
//! values (the python that produced them is pasted beside them), hand-derived gradients,
//! a Monte-Carlo estimate of the Dirichlet KL, and brute force for the AE-KD weight QP.
//!
//! Golden values come from this script (scipy 1.17.1, numpy 2.4.6):
//!
//! ```python
//! import numpy as np
//! from scipy.special import gammaln, digamma, softmax, log_softmax
//! from scipy.stats import dirichlet
//! xs = np.array([1e-3, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.7, 10.0, 33.3, 150.0, 1e4, 1e6])
//! print("lgamma", repr(gammaln(xs.astype(np.float32).astype(np.float64))))
//! print("digamma", repr(digamma(xs.astype(np.float32).astype(np.float64))))
//! # KD
//! zs = np.array([[1.0, -0.5, 0.3], [0.2, 0.8, -1.1]])
//! zt = np.array([[[2.0, 0.1, -0.4], [0.0, 1.5, 0.3]], [[0.5, 0.5, -1.0], [-0.3, 2.2, 0.9]]])
//! y = np.array([0, 2]); a, T = 0.7, 2.0
//! ce = -np.mean(log_softmax(zs, 1)[np.arange(2), y])
//! q = softmax(zt / T, 2).mean(0)
//! soft = -np.mean((q * log_softmax(zs / T, 1)).sum(1)) * T * T
//! print("kd", repr((1 - a) * ce + a * soft))
//! # EnD2
//! T, eps = 1.5, 1e-3
//! zs2 = np.array([[0.7, -0.2, 1.3], [2.0, 0.4, -0.6]])
//! zt2 = np.array([[[1.0, 0.2, -0.5], [0.3, 0.3, 0.1]], [[0.8, -0.1, 0.0], [1.2, -0.4, 0.2]],
//!                 [[1.5, 0.4, -0.9], [0.1, 0.9, -0.2]]])
//! K = 3; M = 3
//! alpha = np.exp(zs2 / T)
//! p = softmax(zt2 / T, 2); pt = (1 - eps) * (p - 1 / K) + 1 / K
//! nll = np.array([-np.mean([dirichlet.logpdf(pt[m, b], alpha[b]) for m in range(M)]) for b in range(2)])
//! print("end2", repr(T * T * nll.mean()))
//! a0 = alpha.sum(1, keepdims=True)
//! g = T * alpha * (digamma(alpha) - digamma(a0) - np.log(pt).mean(0)) / 2  # T^2 (1/T) alpha (...) / B
//! print("end2_grad", repr(g.ravel()))
//! # Dirichlet KL: closed form vs Monte Carlo
//! def kl(a, b):
//!     a0, b0 = a.sum(), b.sum()
//!     return gammaln(a0) - gammaln(a).sum() - gammaln(b0) + gammaln(b).sum() \
//!         + ((a - b) * (digamma(a) - digamma(a0))).sum()
//! rng = np.random.default_rng(0)
//! for a, b in [(np.array([2.0, 3.0, 1.5]), np.array([1.2, 4.0, 2.5])),
//!              (np.array([10.0, 1.5, 3.0, 2.0]), np.array([3.0, 3.0, 3.0, 3.0]))]:
//!     s = rng.dirichlet(a, size=2_000_000)
//!     d = dirichlet.logpdf(s.T, a) - dirichlet.logpdf(s.T, b)
//!     print("kl_mc", a, b, repr(d.mean()), "+-", d.std() / np.sqrt(len(d)), "closed", kl(a, b))
//! # Proxy-EnD2
//! zs3 = np.array([[0.5, 1.0, -0.3, 0.2], [1.4, -0.7, 0.0, 0.6]])
//! zt3 = np.array([[[2.0, 0.1, -0.4, 0.3], [0.0, 1.5, 0.3, -1.0]], [[0.5, 0.9, -1.0, 0.1], [-0.3, 2.2, 0.9, 0.4]],
//!                 [[1.1, 0.4, 0.2, -0.6], [0.7, 1.0, -0.5, 0.0]]])
//! K = 4
//! p = softmax(zt3, 2); pbar = p.mean(0)
//! mkl = (p * (np.log(p) - np.log(pbar))).sum(2).mean(0)
//! eps = np.finfo(np.float32).eps  # as the reference: (K - 1) / (2 MKL + EPS)
//! at = pbar * ((K - 1) / (2 * mkl + eps))[:, None] + 1
//! bs = np.exp(zs3) + 1
//! print("proxy_target", repr(at.ravel()))
//! print("proxy", repr(np.mean([kl(at[i], bs[i]) for i in range(2)])))
//! b0 = bs.sum(1, keepdims=True)
//! # dKL/db_k = psi(b_k) - psi(b0) - (psi(a_k) - psi(a0)); db/dz = exp(z); mean over B = 2
//! gp = (digamma(bs) - digamma(b0) - (digamma(at) - digamma(at.sum(1, keepdims=True)))) * np.exp(zs3) / 2
//! print("proxy_grad", repr(gp.ravel()))
//! # Proxy-EnD2 at a huge target precision (teachers agree to 1e-4), offsets (model, target)
//! zt4 = np.array([[[9.0, 0.0, -1.0, 0.5]], [[9.0, 0.0, -1.0, 0.5001]], [[9.0001, 0.0, -1.0, 0.5]]])
//! zs4 = np.array([[-20.0, -15.0, 3.0, 10.0]])
//! p = softmax(zt4, 2); pbar = p.mean(0); mkl = (p * (np.log(p) - np.log(pbar))).sum(2).mean(0)
//! for mo, to in [(1.0, 1.0), (0.0, 1.0)]:
//!     at = pbar * ((K - 1) / (2 * mkl + eps))[:, None] + to; b = np.exp(zs4) + mo
//!     g = (digamma(b) - digamma(b.sum(1, keepdims=True)) - (digamma(at) - digamma(at.sum(1, keepdims=True)))) * np.exp(zs4)
//!     print(mo, to, repr(at.ravel()), repr(kl(at[0], b[0])), repr(g.ravel()))
//! ```

use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};
use distill::DistillError;
use distill::loss::special::{digamma, lgamma};
use distill::loss::{
    ProxyOffsets, ae_kd, cross_entropy, dirichlet_kl, end2, kd, min_norm_capped_simplex, one_to_one, proxy_end2,
    proxy_target, teacher_gradients,
};

// ---------------------------------------------------------------------------------------
// helpers

fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().try_into_vec_as::<f64>().unwrap()
}

fn scalar(t: Tensor<1>) -> f64 {
    let v = host(t);
    assert_eq!(v.len(), 1, "loss is not a scalar: {v:?}");
    v[0]
}

fn t1(v: &[f64], device: &Device) -> Tensor<1> {
    Tensor::from_data(TensorData::new(v.iter().map(|&x| x as f32).collect(), [v.len()]), device)
}

fn t2(v: &[f64], shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.iter().map(|&x| x as f32).collect(), shape), device)
}

fn t3(v: &[f64], shape: [usize; 3], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(v.iter().map(|&x| x as f32).collect(), shape), device)
}

fn labels(v: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

fn softmax_host(z: &[f64], t: f64) -> Vec<f64> {
    let mx = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|x| ((x - mx) / t).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

fn assert_close(got: &[f64], want: &[f64], rel: f64, abs: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= abs + rel * w.abs(), "{what}[{i}]: got {g}, want {w}");
    }
}

/// xorshift64*: a small deterministic generator for random test inputs.
struct Rng(u64);
impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal_vec(&mut self, n: usize) -> Vec<f64> {
        // Box–Muller
        (0..n)
            .map(|_| {
                let (u, v) = (self.uniform().max(1e-300), self.uniform());
                (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
            })
            .collect()
    }
}

// KD example shared by several tests (the python's zs, zt, y).
const ZS: [f64; 6] = [1.0, -0.5, 0.3, 0.2, 0.8, -1.1];
const ZT: [f64; 12] = [2.0, 0.1, -0.4, 0.0, 1.5, 0.3, 0.5, 0.5, -1.0, -0.3, 2.2, 0.9];
const Y: [i64; 2] = [0, 2];

// ---------------------------------------------------------------------------------------
// lnΓ and ψ

const XS: [f64; 13] = [1e-3, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.7, 10.0, 33.3, 150.0, 1e4, 1e6];
// scipy.special.gammaln / digamma at XS rounded to f32 (script above).
const GAMMALN: [f64; 13] = [
    6.9071788378590657e+00, 2.2527126362016010e+00, 5.7236494292469997e-01, 0.0, -1.2078223763524526e-01, 0.0,
    2.8468287047291918e-01, 1.4280723823196060e+00, 1.2801827480081469e+01, 8.2603720918639780e+01,
    6.0000947055532743e+02, 8.2099717496442376e+04, 1.2815504569147611e+07,
];
const DIGAMMA: [f64; 13] = [
    -1.0005755244342832e+03, -1.0423754789263684e+01, -1.9635100260214235e+00, -5.7721566490153287e-01,
    3.6489973978576520e-02, 4.2278433509846713e-01, 7.0315664064524319e-01, 1.1671535541452684e+00,
    2.2517525890667209e+00, 3.4904672152616945e+00, 5.0072982570756794e+00, 9.2102903711428503e+00,
    1.3815510057964190e+01,
];

#[test]
fn lgamma_matches_scipy_gammaln() {
    let device = Device::flex();
    let got = host(lgamma(t1(&XS, &device)));
    // ~1e-6 relative, or absolute near the zeros at 1 and 2 (f32 cancellation of the shift).
    assert_close(&got, &GAMMALN, 1e-6, 2e-6, "lgamma");
}

#[test]
fn lgamma_gradient_and_digamma_match_scipy_digamma() {
    let device = Device::flex().autodiff();
    let x = t1(&XS, &device).require_grad();
    let grads = lgamma(x.clone()).sum().backward();
    let g = host(x.grad(&grads).unwrap());
    assert_close(&g, &DIGAMMA, 1e-5, 1e-5, "d lgamma / dx");
    let psi = host(digamma(t1(&XS, &Device::flex())));
    assert_close(&psi, &DIGAMMA, 1e-5, 1e-5, "digamma");
}

// ---------------------------------------------------------------------------------------
// KD and one-to-one

#[test]
fn kd_matches_numpy_golden_value() {
    let device = Device::flex();
    let loss = kd(t2(&ZS, [2, 3], &device), t3(&ZT, [2, 2, 3], &device), labels(&Y, &device), 0.7, 2.0).unwrap();
    // python: kd 3.4699344557007246
    assert_close(&[scalar(loss)], &[3.4699344557007246], 1e-6, 0.0, "kd");
}

#[test]
fn kd_with_alpha_zero_is_cross_entropy() {
    let device = Device::flex();
    let z = t2(&ZS, [2, 3], &device);
    let loss = scalar(kd(z.clone(), t3(&ZT, [2, 2, 3], &device), labels(&Y, &device), 0.0, 4.0).unwrap());
    let ce = scalar(cross_entropy(z, labels(&Y, &device)));
    // hand: CE = −mean(log softmax(zs)_y) from host softmax
    let hand = -0.5 * (softmax_host(&ZS[0..3], 1.0)[0].ln() + softmax_host(&ZS[3..6], 1.0)[2].ln());
    assert!((loss - ce).abs() < 1e-7 && (loss - hand).abs() < 1e-6, "kd(alpha=0) {loss}, CE {ce}, hand {hand}");
}

#[test]
fn kd_gradient_with_one_teacher_at_t1_matches_the_hand_formula() {
    // ∂L/∂z_s = α (softmax(z_s) − softmax(z_t)) / B + (1 − α)(softmax(z_s) − onehot(y)) / B
    let device = Device::flex().autodiff();
    let alpha = 0.3;
    let z = t2(&ZS, [2, 3], &device).require_grad();
    let teacher = &ZT[0..6]; // first teacher only
    let loss = kd(z.clone(), t3(teacher, [1, 2, 3], &device), labels(&Y, &device), alpha, 1.0).unwrap();
    let g = host(z.grad(&loss.backward()).unwrap());
    let mut want = Vec::new();
    for b in 0..2 {
        let ps = softmax_host(&ZS[b * 3..b * 3 + 3], 1.0);
        let pt = softmax_host(&teacher[b * 3..b * 3 + 3], 1.0);
        for k in 0..3 {
            let onehot = if Y[b] as usize == k { 1.0 } else { 0.0 };
            want.push((alpha * (ps[k] - pt[k]) + (1.0 - alpha) * (ps[k] - onehot)) / 2.0);
        }
    }
    assert_close(&g, &want, 1e-5, 1e-7, "kd gradient");
}

#[test]
fn kd_soft_gradient_at_temperature_is_t_times_softmax_difference() {
    // d/dz of T² H[q, softmax(z/T)] = T (softmax(z/T) − q), /B for the batch mean; the teacher
    // logits get no gradient (detached).
    let device = Device::flex().autodiff();
    let t = 3.0;
    let z = t2(&ZS, [2, 3], &device).require_grad();
    let zt = t3(&ZT, [2, 2, 3], &device).require_grad();
    let loss = kd(z.clone(), zt.clone(), labels(&Y, &device), 1.0, t).unwrap();
    let grads = loss.backward();
    let g = host(z.grad(&grads).unwrap());
    let mut want = Vec::new();
    for b in 0..2 {
        let ps = softmax_host(&ZS[b * 3..b * 3 + 3], t);
        let q0 = softmax_host(&ZT[b * 3..b * 3 + 3], t);
        let q1 = softmax_host(&ZT[6 + b * 3..6 + b * 3 + 3], t);
        for k in 0..3 {
            want.push(t * (ps[k] - 0.5 * (q0[k] + q1[k])) / 2.0);
        }
    }
    assert_close(&g, &want, 1e-5, 1e-7, "kd soft gradient");
    assert!(zt.grad(&grads).is_none_or(|g| host(g).iter().all(|&x| x == 0.0)), "teacher logits received a gradient");
}

#[test]
fn one_to_one_with_one_member_equals_kd() {
    let device = Device::flex();
    let teacher = &ZT[6..12];
    for (alpha, t) in [(0.0, 1.0), (0.7, 2.0), (1.0, 4.0)] {
        let a = scalar(
            one_to_one(t2(&ZS, [2, 3], &device), t3(teacher, [1, 2, 3], &device), labels(&Y, &device), alpha, t)
                .unwrap(),
        );
        let b = scalar(kd(t2(&ZS, [2, 3], &device), t3(teacher, [1, 2, 3], &device), labels(&Y, &device), alpha, t).unwrap());
        assert!((a - b).abs() < 1e-6, "alpha {alpha}, T {t}: one_to_one {a} vs kd {b}");
    }
}

#[test]
fn one_to_one_matches_member_wise_host_computation() {
    // Student tiled [M*B, K] member-major: rows 0..2 member 0, rows 2..4 member 1.
    let device = Device::flex();
    let student = [1.0, -0.5, 0.3, 0.2, 0.8, -1.1, -0.4, 0.9, 0.1, 1.3, 0.0, -0.2];
    let (alpha, t) = (0.6, 2.5);
    let got = scalar(
        one_to_one(t2(&student, [4, 3], &device), t3(&ZT, [2, 2, 3], &device), labels(&Y, &device), alpha, t).unwrap(),
    );
    // host f64: (1/M) Σ_m mean_b [(1 − α) CE + α T² H[softmax(z_t,m/T), softmax(z_s,m/T)]]
    let mut want = 0.0;
    for m in 0..2 {
        for b in 0..2 {
            let zs = &student[(m * 2 + b) * 3..(m * 2 + b) * 3 + 3];
            let zt = &ZT[(m * 2 + b) * 3..(m * 2 + b) * 3 + 3];
            let ce = -softmax_host(zs, 1.0)[Y[b] as usize].ln();
            let (q, p) = (softmax_host(zt, t), softmax_host(zs, t));
            let h: f64 = -(0..3).map(|k| q[k] * p[k].ln()).sum::<f64>();
            want += ((1.0 - alpha) * ce + alpha * t * t * h) / 4.0;
        }
    }
    assert!((got - want).abs() < 1e-5 * want.abs(), "one_to_one {got} vs host {want}");
}

#[test]
fn bad_hyper_parameters_are_errors_and_bad_shapes_panic_with_the_shapes() {
    let device = Device::flex();
    let run = |alpha, t| kd(t2(&ZS, [2, 3], &device), t3(&ZT, [2, 2, 3], &device), labels(&Y, &device), alpha, t);
    for (alpha, t) in [(1.5, 1.0), (-0.1, 1.0), (0.5, 0.0), (0.5, f64::NAN)] {
        assert!(matches!(run(alpha, t), Err(DistillError::Config(_))), "alpha {alpha}, T {t} accepted");
    }
    let msg = std::panic::catch_unwind(|| {
        let device = Device::flex();
        // one_to_one with M = 2 teachers needs 2*B student rows; give B rows.
        let _ = one_to_one(t2(&ZS, [2, 3], &device), t3(&ZT, [2, 2, 3], &device), labels(&Y, &device), 0.5, 1.0);
    })
    .unwrap_err();
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("[2, 3]") && msg.contains("[2, 2, 3]"), "panic message without shapes: {msg}");
}

// ---------------------------------------------------------------------------------------
// AE-KD

#[test]
fn aekd_teacher_gradients_match_autodiff() {
    // v_m (analytic) = Σ_b ∂L_m/∂z_b with L_m the single-teacher KD soft loss (autodiff).
    let device = Device::flex().autodiff();
    let t = 2.0;
    let v = host(teacher_gradients(t2(&ZS, [2, 3], &device), t3(&ZT, [2, 2, 3], &device), t));
    for m in 0..2 {
        let z = t2(&ZS, [2, 3], &device).require_grad();
        let lm = kd(z.clone(), t3(&ZT[m * 6..m * 6 + 6], [1, 2, 3], &device), labels(&Y, &device), 1.0, t).unwrap();
        let g = host(z.grad(&lm.backward()).unwrap());
        let summed: Vec<f64> = (0..3).map(|k| g[k] + g[3 + k]).collect();
        assert_close(&v[m * 3..m * 3 + 3], &summed, 1e-5, 1e-7, &format!("v_{m}"));
    }
}

fn quad(g: &[Vec<f64>], a: &[f64]) -> f64 {
    let m = a.len();
    (0..m).map(|i| (0..m).map(|j| a[i] * g[i][j] * a[j]).sum::<f64>()).sum()
}

/// Brute force: min of aᵀGa over every grid point a = n/N of the capped simplex.
fn grid_min(g: &[Vec<f64>], cap: f64, n: usize) -> f64 {
    fn rec(g: &[Vec<f64>], cap_n: usize, left: usize, a: &mut Vec<usize>, m: usize, n: usize, best: &mut f64) {
        if a.len() == m - 1 {
            if left <= cap_n {
                a.push(left);
                let af: Vec<f64> = a.iter().map(|&c| c as f64 / n as f64).collect();
                *best = best.min(quad(g, &af));
                a.pop();
            }
            return;
        }
        for c in 0..=left.min(cap_n) {
            a.push(c);
            rec(g, cap_n, left - c, a, m, n, best);
            a.pop();
        }
    }
    let mut best = f64::INFINITY;
    let cap_n = ((cap.min(1.0) * n as f64) + 1e-9).floor() as usize;
    rec(g, cap_n, n, &mut Vec::new(), g.len(), n, &mut best);
    best
}

fn gram_of(v: &[Vec<f64>]) -> Vec<Vec<f64>> {
    v.iter().map(|a| v.iter().map(|b| a.iter().zip(b).map(|(x, y)| x * y).sum()).collect()).collect()
}

fn assert_feasible(a: &[f64], cap: f64) {
    assert!((a.iter().sum::<f64>() - 1.0).abs() < 1e-12, "weights {a:?} do not sum to 1");
    assert!(a.iter().all(|&x| x >= -1e-15 && x <= cap.min(1.0) + 1e-12), "weights {a:?} outside [0, {cap}]");
}

#[test]
fn qp_hand_values() {
    // G = diag(1, 4): unconstrained simplex optimum a ∝ (1, 1/4) = (0.8, 0.2); capped at 0.6 → (0.6, 0.4).
    let g = vec![vec![1.0, 0.0], vec![0.0, 4.0]];
    let a = min_norm_capped_simplex(&g, 1.0).unwrap();
    assert_close(&a, &[0.8, 0.2], 0.0, 1e-7, "diag(1,4), cap 1");
    let a = min_norm_capped_simplex(&g, 0.6).unwrap();
    assert_close(&a, &[0.6, 0.4], 0.0, 1e-7, "diag(1,4), cap 0.6");
    // G = diag(1, 2, 3): a ∝ (1, 1/2, 1/3) = (6, 3, 2)/11; cap 0.5 → (0.5, 0.3, 0.2)
    // (KKT: 2Ga = (1, 1.2, 1.2), the free weights share the larger multiplier).
    let g = vec![vec![1.0, 0.0, 0.0], vec![0.0, 2.0, 0.0], vec![0.0, 0.0, 3.0]];
    assert_close(&min_norm_capped_simplex(&g, 1.0).unwrap(), &[6.0 / 11.0, 3.0 / 11.0, 2.0 / 11.0], 0.0, 1e-7, "diag(1,2,3)");
    assert_close(&min_norm_capped_simplex(&g, 0.5).unwrap(), &[0.5, 0.3, 0.2], 0.0, 1e-7, "diag(1,2,3), cap 0.5");
    // Opposite gradients v, −v: the hull contains 0, at a = (½, ½).
    let g = gram_of(&[vec![1.0, 2.0], vec![-1.0, -2.0]]);
    let a = min_norm_capped_simplex(&g, 0.6).unwrap();
    assert_close(&a, &[0.5, 0.5], 0.0, 1e-6, "v, -v");
    // cap · M < 1: empty set → error; cap · M = 1: the uniform weights.
    assert!(matches!(min_norm_capped_simplex(&g, 0.4), Err(DistillError::Config(_))));
    assert!(matches!(min_norm_capped_simplex(&g, 0.0), Err(DistillError::Config(_))));
    assert_close(&min_norm_capped_simplex(&g, 0.5).unwrap(), &[0.5, 0.5], 0.0, 1e-15, "cap·M = 1");
    // G = 0: any feasible point.
    assert_feasible(&min_norm_capped_simplex(&[vec![0.0; 3], vec![0.0; 3], vec![0.0; 3]], 0.6).unwrap(), 0.6);
}

#[test]
fn qp_matches_grid_brute_force_on_random_gram_matrices() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut cases = 0;
    for m in 2..=4 {
        for rank in [1, 2, m, m + 3] {
            // rank < m: PSD rank-deficient Gram matrices.
            for trial in 0..3 {
                let dim = rank.min(6);
                let basis: Vec<Vec<f64>> = (0..rank.min(dim)).map(|_| rng.normal_vec(6)).collect();
                let v: Vec<Vec<f64>> = (0..m)
                    .map(|_| {
                        let c = rng.normal_vec(basis.len());
                        // shift some cases so the gradients share a direction (0 outside the hull)
                        let shift = if trial == 0 { 1.5 } else { 0.0 };
                        (0..6).map(|d| basis.iter().zip(&c).map(|(b, ci)| ci * b[d]).sum::<f64>() + shift).collect()
                    })
                    .collect();
                let g = gram_of(&v);
                for cap in [1.0, 0.6, 0.5, 1.0 / m as f64 + 0.05, 1.0 / m as f64] {
                    let a = min_norm_capped_simplex(&g, cap).unwrap();
                    assert_feasible(&a, cap);
                    let n = if m == 4 { 120 } else { 300 };
                    let best = grid_min(&g, cap, n);
                    let fa = quad(&g, &a);
                    let scale: f64 = (0..m).map(|i| g[i][i]).sum();
                    assert!(
                        fa <= best + 1e-10 * scale,
                        "M {m}, rank {rank}, cap {cap}: solver {fa} > grid {best}, a = {a:?}, G = {g:?}"
                    );
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 3 * 4 * 3 * 5);
}

#[test]
fn aekd_loss_is_the_weighted_sum_of_teacher_kd_losses_with_optimal_weights() {
    let device = Device::flex().autodiff();
    // Three teachers (the two of ZT plus one more) so the cap 0.6 can bind.
    let zt: Vec<f64> = ZT.iter().cloned().chain([3.0, -1.0, 0.0, 0.1, 0.0, 2.5]).collect();
    let (alpha, t, cap) = (0.8, 2.0, 0.6);
    let z = t2(&ZS, [2, 3], &device).require_grad();
    let out = ae_kd(z.clone(), t3(&zt, [3, 2, 3], &device), labels(&Y, &device), alpha, t, cap).unwrap();
    assert_feasible(&out.weights, cap);

    // Weights optimal for the Gram matrix of the autodiff gradients (brute force over a grid).
    let mut v = Vec::new();
    let mut per_teacher = Vec::new();
    let mut teacher_grads = Vec::new();
    for m in 0..3 {
        let zm = t2(&ZS, [2, 3], &device).require_grad();
        let lm = kd(zm.clone(), t3(&zt[m * 6..m * 6 + 6], [1, 2, 3], &device), labels(&Y, &device), 1.0, t).unwrap();
        let g = host(zm.grad(&lm.backward()).unwrap());
        v.push((0..3).map(|k| g[k] + g[3 + k]).collect::<Vec<f64>>());
        per_teacher.push(scalar(lm));
        teacher_grads.push(g);
    }
    let g = gram_of(&v);
    let fa = quad(&g, &out.weights);
    assert!(fa <= grid_min(&g, cap, 600) + 1e-12, "weights {:?} not optimal for G = {g:?}", out.weights);

    // Value: (1 − α) CE + α Σ a_m L_m.
    let ce = scalar(cross_entropy(t2(&ZS, [2, 3], &device), labels(&Y, &device)));
    let want = (1.0 - alpha) * ce + alpha * (0..3).map(|m| out.weights[m] * per_teacher[m]).sum::<f64>();
    let got = scalar(out.loss.clone());
    assert!((got - want).abs() < 1e-5 * want.abs(), "ae_kd {got} vs {want}");

    // Gradient: weights are constants, so ∇ = (1 − α) ∇CE + α Σ a_m ∇L_m (hand formula for ∇CE).
    let grad = host(z.grad(&out.loss.backward()).unwrap());
    let mut want_g = Vec::new();
    for b in 0..2 {
        let ps = softmax_host(&ZS[b * 3..b * 3 + 3], 1.0);
        for k in 0..3 {
            let onehot = if Y[b] as usize == k { 1.0 } else { 0.0 };
            let soft: f64 = (0..3).map(|m| out.weights[m] * teacher_grads[m][b * 3 + k]).sum();
            want_g.push((1.0 - alpha) * (ps[k] - onehot) / 2.0 + alpha * soft);
        }
    }
    assert_close(&grad, &want_g, 1e-5, 1e-7, "ae_kd gradient");

    // An infeasible cap is an error.
    let bad = ae_kd(t2(&ZS, [2, 3], &device), t3(&zt, [3, 2, 3], &device), labels(&Y, &device), alpha, t, 0.3);
    assert!(matches!(bad, Err(DistillError::Config(_))));
}

// ---------------------------------------------------------------------------------------
// EnD²

const ZS2: [f64; 6] = [0.7, -0.2, 1.3, 2.0, 0.4, -0.6];
const ZT2: [f64; 18] = [1.0, 0.2, -0.5, 0.3, 0.3, 0.1, 0.8, -0.1, 0.0, 1.2, -0.4, 0.2, 1.5, 0.4, -0.9, 0.1, 0.9, -0.2];

#[test]
fn end2_equals_the_dirichlet_negative_log_density_from_scipy() {
    let device = Device::flex();
    let got = scalar(end2(t2(&ZS2, [2, 3], &device), t3(&ZT2, [3, 2, 3], &device), 1.5, 1e-3).unwrap());
    // python: T² mean_b −(1/M) Σ_m scipy.stats.dirichlet.logpdf(p̃_m,b, exp(z_b/T)) = -0.2607230411099541
    // f32 tolerance: the loss is a difference of terms up to |lnΓ(α_0)| ≈ 4.4 (times T² = 2.25),
    // so 1e-5 absolute is about 1e-6 of the terms' scale.
    assert!((got - -0.2607230411099541).abs() < 1e-5, "end2 {got}");
}

#[test]
fn end2_gradient_matches_the_digamma_closed_form() {
    // ∂/∂z_k = T α_k (ψ(α_k) − ψ(α_0) − (1/M) Σ_m ln p̃_m,k) / B (python: end2_grad).
    let device = Device::flex().autodiff();
    let z = t2(&ZS2, [2, 3], &device).require_grad();
    let loss = end2(z.clone(), t3(&ZT2, [3, 2, 3], &device), 1.5, 1e-3).unwrap();
    let g = host(z.grad(&loss.backward()).unwrap());
    let want = [
        -0.8379445881762684, -0.6590584302402487, 1.5399495642771994, 1.4530280613479682, -0.6564618783278013,
        -0.8341374839077049,
    ];
    assert_close(&g, &want, 2e-5, 2e-6, "end2 gradient");
}

#[test]
fn end2_rejects_bad_smoothing_and_temperature() {
    let device = Device::flex();
    for (t, eps) in [(0.0, 1e-3), (1.0, 1.0), (1.0, -0.1)] {
        let r = end2(t2(&ZS2, [2, 3], &device), t3(&ZT2, [3, 2, 3], &device), t, eps);
        assert!(matches!(r, Err(DistillError::Config(_))), "T {t}, eps {eps} accepted");
    }
}

// ---------------------------------------------------------------------------------------
// Proxy-EnD²

#[test]
fn dirichlet_kl_matches_monte_carlo_and_vanishes_for_identical_dirichlets() {
    let device = Device::flex();
    // python kl_mc (2e6 samples): mean ± standard error
    //   a = (2, 3, 1.5),      b = (1.2, 4, 2.5): 0.6842905939736517 ± 0.00087
    //   a = (10, 1.5, 3, 2),  b = (3, 3, 3, 3):   3.980856584657525  ± 0.0018
    let kl1 = host(dirichlet_kl(t2(&[2.0, 3.0, 1.5], [1, 3], &device), t2(&[1.2, 4.0, 2.5], [1, 3], &device)))[0];
    assert!((kl1 - 0.6842905939736517).abs() < 4.0 * 0.00087, "KL {kl1}");
    let kl2 = host(dirichlet_kl(t2(&[10.0, 1.5, 3.0, 2.0], [1, 4], &device), t2(&[3.0; 4], [1, 4], &device)))[0];
    assert!((kl2 - 3.980856584657525).abs() < 4.0 * 0.0018, "KL {kl2}");
    // KL(Dir(a) || Dir(a)) = 0 for every a, and > 0 otherwise.
    let a = [0.5, 2.0, 7.0, 1.0, 3.0, 1.0, 30.0, 0.2, 4.0];
    let same = host(dirichlet_kl(t2(&a, [3, 3], &device), t2(&a, [3, 3], &device)));
    assert_close(&same, &[0.0; 3], 0.0, 2e-5, "KL(a || a)");
    let other = host(dirichlet_kl(t2(&a, [3, 3], &device), t2(&[1.0; 9], [3, 3], &device)));
    assert!(other.iter().all(|&x| x > 1e-3), "KL to the flat Dirichlet {other:?}");
}

const ZS3: [f64; 8] = [0.5, 1.0, -0.3, 0.2, 1.4, -0.7, 0.0, 0.6];
const ZT3: [f64; 24] = [
    2.0, 0.1, -0.4, 0.3, 0.0, 1.5, 0.3, -1.0, 0.5, 0.9, -1.0, 0.1, -0.3, 2.2, 0.9, 0.4, 1.1, 0.4, 0.2, -0.6, 0.7, 1.0,
    -0.5, 0.0,
];

#[test]
fn proxy_end2_target_value_and_gradient_match_scipy() {
    let device = Device::flex().autodiff();
    let target = host(proxy_target(t3(&ZT3, [3, 2, 4], &device), 1.0));
    let want_target = [
        9.235724207493336, 5.3691147223379065, 2.8091663762651065, 3.3074178242574925, 5.190436349455376,
        15.027784085023413, 4.795579641282625, 3.606631968993494,
    ];
    assert_close(&target, &want_target, 1e-4, 0.0, "proxy target");

    let z = t2(&ZS3, [2, 4], &device).require_grad();
    let zt = t3(&ZT3, [3, 2, 4], &device).require_grad();
    let loss = proxy_end2(z.clone(), zt.clone(), &ProxyOffsets::new()).unwrap();
    // python: proxy 3.16969065282112
    let got = scalar(loss.clone());
    assert!((got - 3.16969065282112).abs() < 1e-4 * 3.17, "proxy_end2 {got}");
    let grads = loss.backward();
    let g = host(z.grad(&grads).unwrap());
    let want_g = [
        -0.5550616930593953, 0.42025011735439044, 0.04334569850321501, 0.14662669277503895, 1.866786124894542,
        -0.420393153018886, -0.04360399683708538, 0.6031455693633575,
    ];
    assert_close(&g, &want_g, 1e-4, 1e-5, "proxy_end2 gradient");
    assert!(zt.grad(&grads).is_none_or(|g| host(g).iter().all(|&x| x == 0.0)), "teacher logits received a gradient");
}

/// The regime where the model offset 1 traps a student (see `distill::loss::proxy_end2`):
/// the target precision is at its cap (K − 1)/EPS ≈ 2.5e7 and the dominant class's logit is
/// far below it. With offset 1 its gradient is ≈ −e^{z} · (bounded) ≈ −2e-8; with offset 0 it
/// stays ≈ −1. Values and gradients from scipy (module docs).
#[test]
fn proxy_end2_at_capped_precision_matches_scipy_for_both_model_offsets() {
    let device = Device::flex().autodiff();
    let zt4 = [9.0, 0.0, -1.0, 0.5, 9.0, 0.0, -1.0, 0.5001, 9.0001, 0.0, -1.0, 0.5];
    let zs4 = [-20.0, -15.0, 3.0, 10.0];
    let want_target = [2.51560948e+07, 3.10540513e+03, 1.14304683e+03, 5.11946940e+03];
    // In float64, as proxy_end2 computes it (float32 rounding alone makes MKL ~1e-8 here).
    let target = proxy_target(t3(&zt4, [3, 1, 4], &device).cast(FloatDType::F64), 1.0);
    assert_close(&host(target), &want_target, 1e-6, 0.0, "capped target");
    for (model, loss_want, grad_want) in [
        (1.0, 187278.64507566727, [-2.18027048e-08, -4.82726327e-07, 6.07303230e+01, 1.87207936e+05]),
        (0.0, 187313.14813414135, [-1.00000002e+00, -1.00000048e+00, 5.97339669e+01, 1.87210932e+05]),
    ] {
        let z = t2(&zs4, [1, 4], &device).require_grad();
        let offsets = ProxyOffsets::new().with_model(model);
        let loss = proxy_end2(z.clone(), t3(&zt4, [3, 1, 4], &device), &offsets).unwrap();
        let got = scalar(loss.clone());
        assert!((got - loss_want).abs() < 1e-6 * loss_want, "model offset {model}: loss {got}, want {loss_want}");
        let g = host(z.grad(&loss.backward()).unwrap());
        assert_close(&g, &grad_want, 1e-4, 0.0, &format!("gradient, model offset {model}"));
    }
}

#[test]
fn proxy_end2_rejects_negative_or_non_finite_offsets() {
    let device = Device::flex();
    for offsets in [ProxyOffsets::new().with_model(-0.5), ProxyOffsets::new().with_target(f64::NAN)] {
        let r = proxy_end2(t2(&ZS3, [2, 4], &device), t3(&ZT3, [3, 2, 4], &device), &offsets);
        match r {
            Err(DistillError::Config(msg)) => assert!(msg.contains("offset"), "{msg}"),
            other => panic!("{offsets:?} accepted: {:?}", other.map(|t| t.dims())),
        }
    }
}

#[test]
fn qp_nearly_singular_gram_from_the_spirals_run() {
    // The Gram matrix of four spirals teachers' gradients that stalled the solver's former
    // 1e-13·trace criterion (the 4th gradient almost cancels the others: min f ≈ 0). The
    // solver must return feasible weights no worse than the best point of a 1/100 grid
    // (brute force) up to its certified gap bound 1e-7·trace.
    let g = vec![
        vec![0.00023765618378622944, 0.00020297196028919032, 0.00024276395021970675, -0.0004004249440521116],
        vec![0.00020297196028919032, 0.00028202259452188836, 8.974706108155588e-5, -0.0003035061318072444],
        vec![0.00024276395021970675, 8.974706108155588e-5, 0.0003752142235847857, -0.0004506670564717628],
        vec![-0.0004004249440521116, -0.0003035061318072444, -0.0004506670564717628, 0.0006882978204275918],
    ];
    let a = min_norm_capped_simplex(&g, 0.6).unwrap();
    assert_feasible(&a, 0.6);
    let trace: f64 = (0..4).map(|i| g[i][i]).sum();
    let (found, brute) = (quad(&g, &a), grid_min(&g, 0.6, 100));
    assert!(found <= brute + 1e-7 * trace, "solver {found} vs grid {brute}");
}
