//! Shared test machinery: input generators, finite-difference gradient checks (first and second
//! order), and the loader of the PyTorch reference data.
#![allow(dead_code)]

use shendu_core::{no_grad, DType, Result, Rng, Tensor, Var};

// ---- inputs -------------------------------------------------------------------------------------

/// How an input's values are drawn. Generators keep values away from the points where an op is
/// not differentiable, so that central differences with a tiny step see a smooth function.
#[derive(Clone, Debug)]
pub enum Gen {
    /// Standard normal.
    Normal,
    /// Uniform in `[lo, hi)`.
    Uniform(f64, f64),
    /// Uniform in `[lo, hi)`, redrawn while within 0.05 of any kink.
    Avoid(f64, f64, Vec<f64>),
    /// `0.2 * k + offset` for a random integer k in -8..8: two inputs with offsets that differ
    /// by 0.1 never tie, whatever broadcasting pairs them (for maximum/minimum).
    Grid(f64),
    /// A random permutation of distinct values 0.1 apart (no ties for max/min reductions).
    Distinct,
}

impl Gen {
    fn values(&self, n: usize, rng: &mut Rng) -> Vec<f64> {
        match self {
            Gen::Normal => (0..n).map(|_| rng.normal()).collect(),
            Gen::Uniform(lo, hi) => (0..n).map(|_| lo + (hi - lo) * rng.uniform()).collect(),
            Gen::Avoid(lo, hi, kinks) => (0..n)
                .map(|_| loop {
                    let v = lo + (hi - lo) * rng.uniform();
                    if kinks.iter().all(|k| (v - k).abs() > 0.05) {
                        break v;
                    }
                })
                .collect(),
            Gen::Grid(offset) => (0..n).map(|_| 0.2 * (rng.below(16) as f64 - 8.0) + offset).collect(),
            Gen::Distinct => {
                let mut v: Vec<f64> = (0..n).map(|i| 0.1 * (i as f64 - n as f64 / 2.0)).collect();
                for i in (1..n).rev() {
                    v.swap(i, rng.below(i as u64 + 1) as usize);
                }
                v
            }
        }
    }
}

/// How the op sees an input: the tensor itself or a non-contiguous view of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Plain,
    /// Stored with the last two dims swapped, seen through `.t()`.
    Transposed,
    /// Stored with 3 extra elements in the last dim, seen through `narrow(last, 1, n)`.
    Narrowed,
    /// Stored with dim 0 of size 1, seen through `broadcast_as` (stride 0).
    Expanded,
}

/// One input of a checked function: the shape the op sees, its values and its view.
#[derive(Clone, Debug)]
pub struct In {
    pub shape: Vec<usize>,
    pub gen: Gen,
    pub view: View,
}

impl In {
    pub fn new(shape: &[usize], gen: Gen) -> In {
        In { shape: shape.to_vec(), gen, view: View::Plain }
    }
    /// The op sees a transposed view (needs rank >= 2).
    pub fn t(mut self) -> In {
        self.view = View::Transposed;
        self
    }
    /// The op sees a narrowed view of a wider tensor.
    pub fn narrowed(mut self) -> In {
        self.view = View::Narrowed;
        self
    }
    /// The op sees a stride-0 broadcast along dim 0.
    pub fn expanded(mut self) -> In {
        self.view = View::Expanded;
        self
    }

    /// The shape of the tensor that is stored (and differentiated).
    pub fn stored_shape(&self) -> Vec<usize> {
        let mut s = self.shape.clone();
        let r = s.len();
        match self.view {
            View::Plain => {}
            View::Transposed => s.swap(r - 2, r - 1),
            View::Narrowed => s[r - 1] += 3,
            View::Expanded => s[0] = 1,
        }
        s
    }

    /// The view the op sees of `stored`.
    pub fn view_of(&self, stored: &Tensor) -> Result<Tensor> {
        let r = self.shape.len();
        match self.view {
            View::Plain => Ok(stored.clone()),
            View::Transposed => stored.t(),
            View::Narrowed => stored.narrow(r - 1, 1, self.shape[r - 1]),
            View::Expanded => stored.broadcast_as(self.shape.clone()),
        }
    }

    pub fn describe(&self) -> String {
        match self.view {
            View::Plain => format!("{:?}", self.shape),
            v => format!("{:?} ({v:?})", self.shape),
        }
    }
}

/// Standard normal input.
pub fn n(shape: &[usize]) -> In {
    In::new(shape, Gen::Normal)
}
/// Uniform in [0.5, 2): for log, sqrt, pow bases, divisors.
pub fn pos(shape: &[usize]) -> In {
    In::new(shape, Gen::Uniform(0.5, 2.0))
}
/// Uniform in [-2, 2) but at least 0.05 from 0: for relu-likes, abs, sign.
pub fn away(shape: &[usize]) -> In {
    In::new(shape, Gen::Avoid(-2.0, 2.0, vec![0.0]))
}
/// Uniform in [lo, hi) away from the given kinks.
pub fn avoid(shape: &[usize], lo: f64, hi: f64, kinks: &[f64]) -> In {
    In::new(shape, Gen::Avoid(lo, hi, kinks.to_vec()))
}
pub fn uni(shape: &[usize], lo: f64, hi: f64) -> In {
    In::new(shape, Gen::Uniform(lo, hi))
}
pub fn grid(shape: &[usize], offset: f64) -> In {
    In::new(shape, Gen::Grid(offset))
}
pub fn distinct(shape: &[usize]) -> In {
    In::new(shape, Gen::Distinct)
}

// ---- gradient checks ----------------------------------------------------------------------------

/// Finite-difference step and the tolerance `|analytic - numeric| <= atol + rtol * max(|a|, |n|)`.
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub eps: f64,
    pub rtol: f64,
    pub atol: f64,
}

impl Default for Tol {
    fn default() -> Self {
        Tol { eps: 1e-6, rtol: 1e-6, atol: 1e-6 }
    }
}

/// The function under test: the op's inputs (as the op sees them) to its output.
pub type TestFn<'a> = dyn Fn(&[Tensor]) -> Result<Tensor> + 'a;

fn tensor(values: Vec<f64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(values, shape.to_vec()).expect("values match shape")
}

/// Draws the stored values of every input.
pub fn draw(inputs: &[In], rng: &mut Rng) -> Vec<Vec<f64>> {
    inputs.iter().map(|i| i.gen.values(i.stored_shape().iter().product(), rng)).collect()
}

/// Evaluates `f` on fresh (non-tracked) tensors holding `values`.
fn eval(f: &TestFn<'_>, inputs: &[In], values: &[Vec<f64>]) -> Result<Vec<f64>> {
    let _g = no_grad();
    let views = inputs.iter().zip(values).map(|(i, v)| i.view_of(&tensor(v.clone(), &i.stored_shape()))).collect::<Result<Vec<_>>>()?;
    f(&views)?.to_vec_f64()
}

/// A function of all inputs' stored values, flattened to one vector of outputs.
type Phi<'a> = dyn Fn(&[Vec<f64>]) -> Result<Vec<f64>> + 'a;

/// Central differences of `phi` with respect to every stored element.
fn numeric_grads(inputs: &[In], values: &[Vec<f64>], eps: f64, phi: &Phi<'_>, seed: &[f64]) -> Result<Vec<Vec<f64>>> {
    let mut out = Vec::new();
    let mut vals = values.to_vec();
    for i in 0..inputs.len() {
        let mut g = vec![0.0; vals[i].len()];
        for (j, gj) in g.iter_mut().enumerate() {
            let x0 = vals[i][j];
            vals[i][j] = x0 + eps;
            let plus = phi(&vals)?;
            vals[i][j] = x0 - eps;
            let minus = phi(&vals)?;
            vals[i][j] = x0;
            // Differences first, then the weighted sum: less cancellation than subtracting sums.
            *gj = plus.iter().zip(&minus).zip(seed).map(|((p, m), s)| (p - m) * s).sum::<f64>() / (2.0 * eps);
        }
        out.push(g);
    }
    Ok(out)
}

fn compare(what: &str, analytic: &[Vec<f64>], numeric: &[Vec<f64>], tol: Tol) -> std::result::Result<(), String> {
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        let mut worst: Option<(usize, f64, f64, f64)> = None;
        for (j, (&x, &y)) in a.iter().zip(n).enumerate() {
            let err = (x - y).abs();
            let allowed = tol.atol + tol.rtol * x.abs().max(y.abs());
            if (err.is_nan() || err > allowed) && worst.is_none_or(|w| err > w.3) {
                worst = Some((j, x, y, err));
            }
        }
        if let Some((j, x, y, err)) = worst {
            return Err(format!("{what}: input {i} element {j}: analytic {x:.12e} vs numeric {y:.12e} (error {err:.3e})"));
        }
    }
    Ok(())
}

/// Leaf vars holding `values` and the views the op sees of them.
fn leaves(inputs: &[In], values: &[Vec<f64>]) -> Result<(Vec<Var>, Vec<Tensor>)> {
    let vars: Vec<Var> = inputs.iter().zip(values).map(|(i, v)| Var::new(tensor(v.clone(), &i.stored_shape()))).collect();
    let views = inputs.iter().zip(&vars).map(|(i, v)| i.view_of(v)).collect::<Result<Vec<_>>>()?;
    Ok((vars, views))
}

/// The gradient of each var in `grads`, zeros where it received none.
fn grads_of(grads: &shendu_core::GradStore, vars: &[Var]) -> Result<Vec<Vec<f64>>> {
    vars.iter()
        .map(|v| match grads.get(v) {
            Some(g) if g.dims() == v.dims() => g.to_vec_f64(),
            Some(g) => Err(shendu_core::Error::shape("gradcheck", format!("gradient {} for var {}", g.shape(), v.shape()))),
            None => Ok(vec![0.0; v.elem_count()]),
        })
        .collect()
}

/// Checks `f`'s vector-Jacobian product against central differences: with a random seed `g`
/// the analytic gradient of `sum(f(x) * g)` (one `backward_with_grad`) must match the numeric one.
pub fn gradcheck(what: &str, inputs: &[In], f: &TestFn<'_>, tol: Tol, seed: u64) -> std::result::Result<(), String> {
    let err = |e: shendu_core::Error| format!("{what}: {e}");
    let mut rng = Rng::new(seed);
    let values = draw(inputs, &mut rng);
    let (vars, views) = leaves(inputs, &values).map_err(err)?;
    let y = f(&views).map_err(err)?;
    if y.dtype() != DType::F64 {
        return Err(format!("{what}: output dtype {} (gradcheck works in f64)", y.dtype()));
    }
    let yv = y.to_vec_f64().map_err(err)?;
    if yv.iter().any(|v| !v.is_finite()) {
        return Err(format!("{what}: output is not finite"));
    }
    let seed_vals: Vec<f64> = (0..y.elem_count()).map(|_| rng.normal()).collect();
    let g = tensor(seed_vals.clone(), y.dims());
    let grads = y.backward_with_grad(&g, false).map_err(err)?;
    let analytic = grads_of(&grads, &vars).map_err(err)?;
    let phi = |vals: &[Vec<f64>]| eval(f, inputs, vals);
    let numeric = numeric_grads(inputs, &values, tol.eps, &phi, &seed_vals).map_err(err)?;
    compare(what, &analytic, &numeric, tol)
}

/// Second order: the gradient of `sum_i <grad_i, v_i>` (grad_i from a `create_graph` backward
/// with seed `g`, v_i random) against central differences of that first-order gradient.
pub fn gradgradcheck(what: &str, inputs: &[In], f: &TestFn<'_>, tol: Tol, seed: u64) -> std::result::Result<(), String> {
    let err = |e: shendu_core::Error| format!("{what}: {e}");
    let mut rng = Rng::new(seed);
    let values = draw(inputs, &mut rng);
    let out_dims = {
        let _g = no_grad();
        let (_, views) = leaves(inputs, &values).map_err(err)?;
        f(&views).map_err(err)?.dims().to_vec()
    };
    let g = tensor((0..out_dims.iter().product()).map(|_| rng.normal()).collect(), &out_dims);
    let vs: Vec<Vec<f64>> = inputs.iter().map(|i| (0..i.stored_shape().iter().product()).map(|_| rng.normal()).collect()).collect();

    // Analytic: differentiate the first-order gradients, recorded with create_graph.
    let (vars, views) = leaves(inputs, &values).map_err(err)?;
    let first = f(&views).map_err(err)?.backward_with_grad(&g, true).map_err(err)?;
    let mut h: Option<Tensor> = None;
    for ((var, v), i) in vars.iter().zip(&vs).zip(inputs) {
        let Some(gi) = first.get(var) else { continue };
        let term = gi.mul(&tensor(v.clone(), &i.stored_shape())).and_then(|t| t.sum_all()).map_err(err)?;
        h = Some(match h {
            Some(acc) => acc.add(&term).map_err(err)?,
            None => term,
        });
    }
    let analytic = match h {
        Some(h) if h.requires_grad() => grads_of(&h.backward().map_err(err)?, &vars).map_err(err)?,
        // First-order gradients that do not depend on the inputs: the second order is zero.
        _ => vs.iter().map(|v| vec![0.0; v.len()]).collect(),
    };

    // Numeric: central differences of the first-order gradient (computed without create_graph).
    let first_order = |vals: &[Vec<f64>]| -> Result<Vec<f64>> {
        let (vars, views) = leaves(inputs, vals)?;
        let grads = f(&views)?.backward_with_grad(&g, false)?;
        Ok(grads_of(&grads, &vars)?.concat())
    };
    let flat_v = vs.concat();
    let numeric = numeric_grads(inputs, &values, tol.eps, &first_order, &flat_v).map_err(err)?;
    compare(what, &analytic, &numeric, tol)
}

// ---- reference data -----------------------------------------------------------------------------

/// One array of the reference data.
#[derive(Clone, Debug)]
pub struct RefArray {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl RefArray {
    fn parse(v: &serde_json::Value) -> RefArray {
        let shape = v["shape"].as_array().expect("shape").iter().map(|d| d.as_u64().expect("dim") as usize).collect();
        let data = v["data"].as_array().expect("data").iter().map(|x| x.as_f64().expect("number")).collect();
        RefArray { shape, data }
    }
    /// The array as a tensor of `dtype`.
    pub fn tensor(&self, dtype: DType) -> Tensor {
        tensor(self.data.clone(), &self.shape).to_dtype(dtype).expect("cast")
    }
}

/// One reference case: PyTorch's output of `op` with `params` on `inputs`.
#[derive(Clone, Debug)]
pub struct RefCase {
    pub op: String,
    pub name: String,
    pub params: serde_json::Value,
    pub inputs: Vec<RefArray>,
    pub output: RefArray,
}

impl RefCase {
    pub fn usize(&self, key: &str) -> usize {
        self.params[key].as_u64().unwrap_or_else(|| panic!("{}: param {key}", self.name)) as usize
    }
    pub fn f64(&self, key: &str) -> f64 {
        self.params[key].as_f64().unwrap_or_else(|| panic!("{}: param {key}", self.name))
    }
    pub fn bool(&self, key: &str) -> bool {
        self.params[key].as_bool().unwrap_or_else(|| panic!("{}: param {key}", self.name))
    }
    pub fn usizes(&self, key: &str) -> Vec<usize> {
        self.params[key]
            .as_array()
            .unwrap_or_else(|| panic!("{}: param {key}", self.name))
            .iter()
            .map(|d| d.as_u64().expect("usize") as usize)
            .collect()
    }
    /// A 2-element param (`[h, w]`) as a pair.
    pub fn pair(&self, key: &str) -> (usize, usize) {
        let v = self.usizes(key);
        assert_eq!(v.len(), 2, "{}: param {key} is not a pair", self.name);
        (v[0], v[1])
    }
}

/// All cases of tests/reference/data.json.
pub fn reference_cases() -> Vec<RefCase> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/data.json");
    let text = std::fs::read_to_string(path).expect("read tests/reference/data.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("parse data.json");
    json["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| RefCase {
            op: c["op"].as_str().expect("op").to_string(),
            name: c["name"].as_str().expect("name").to_string(),
            params: c["params"].clone(),
            inputs: c["inputs"].as_array().expect("inputs").iter().map(RefArray::parse).collect(),
            output: RefArray::parse(&c["output"]),
        })
        .collect()
}

/// Compares `actual` with the expected array: `|a - e| <= tol * max(1, |e|)` everywhere.
pub fn check_close(name: &str, actual: &Tensor, expected: &RefArray, tol: f64) -> std::result::Result<(), String> {
    if actual.dims() != expected.shape.as_slice() {
        return Err(format!("{name}: shape {:?}, expected {:?}", actual.dims(), expected.shape));
    }
    let a = actual.to_vec_f64().map_err(|e| format!("{name}: {e}"))?;
    for (i, (&x, &e)) in a.iter().zip(&expected.data).enumerate() {
        let err = (x - e).abs();
        if err.is_nan() || err > tol * e.abs().max(1.0) {
            return Err(format!("{name}: element {i}: got {x:.17e}, expected {e:.17e} (tolerance {tol:e})"));
        }
    }
    Ok(())
}
