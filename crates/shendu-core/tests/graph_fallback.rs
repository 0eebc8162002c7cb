//! Ops without a planned kernel (conv, pools, pad, ...) run their own forward; a result that
//! fills its planned buffer exactly becomes that buffer, others are copied in. Either way the
//! planned runs must equal eager mode bit for bit, with buffers shared between such results
//! and planned kernels, and a result that is a view of an input must never become a buffer.

use shendu_core::graph::{Graph, Node, Session};
use shendu_core::{Conv2dParams, DType, PadMode, Padding, Result, Tensor};

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap().iter().map(|v| v.to_bits()).collect()
}

/// A LeNet-like chain where unplanned results of several sizes share buffers with planned
/// steps (written in place over a conv output, reusing a pool's buffer, ...).
fn chain<T: Chain>(x: &T, w: &T, b: &T) -> Result<T> {
    let y = x.conv(w)?.add_(&b.reshape_(vec![1, 4, 1, 1])?)?.relu_()?;
    let p = y.max_pool()?;
    let q = p.pad_(&[(1, 1), (1, 1)])?.avg_pool()?;
    let z = q.sqr_()?.add_(&p.max_pool()?.relu_()?.pad_(&[(1, 1), (1, 1)])?.avg_pool()?.sum_(&[2, 3], true)?)?;
    z.flatten_()
}

/// The ops of [`chain`] on tensors and nodes.
trait Chain: Sized {
    fn conv(&self, w: &Self) -> Result<Self>;
    fn add_(&self, o: &Self) -> Result<Self>;
    fn reshape_(&self, s: Vec<usize>) -> Result<Self>;
    fn relu_(&self) -> Result<Self>;
    fn sqr_(&self) -> Result<Self>;
    fn max_pool(&self) -> Result<Self>;
    fn avg_pool(&self) -> Result<Self>;
    fn pad_(&self, p: &[(usize, usize)]) -> Result<Self>;
    fn sum_(&self, d: &[isize], keep: bool) -> Result<Self>;
    fn flatten_(&self) -> Result<Self>;
}

macro_rules! chain_impl {
    ($t:ty) => {
        impl Chain for $t {
            fn conv(&self, w: &Self) -> Result<Self> {
                self.conv2d(w, &Conv2dParams::default().with_pad(1))
            }
            fn add_(&self, o: &Self) -> Result<Self> {
                self.add(o)
            }
            fn reshape_(&self, s: Vec<usize>) -> Result<Self> {
                self.reshape(s)
            }
            fn relu_(&self) -> Result<Self> {
                self.relu()
            }
            fn sqr_(&self) -> Result<Self> {
                self.sqr()
            }
            fn max_pool(&self) -> Result<Self> {
                self.max_pool2d((2, 2), (2, 2), Padding::Valid, (1, 1), false)
            }
            fn avg_pool(&self) -> Result<Self> {
                self.avg_pool2d((3, 3), (1, 1), Padding::Valid, false, true)
            }
            fn pad_(&self, p: &[(usize, usize)]) -> Result<Self> {
                self.pad(p, PadMode::Reflect)
            }
            fn sum_(&self, d: &[isize], keep: bool) -> Result<Self> {
                self.sum(d, keep)
            }
            fn flatten_(&self) -> Result<Self> {
                self.flatten_all()
            }
        }
    };
}
chain_impl!(Tensor);
chain_impl!(Node);

#[test]
fn unplanned_results_share_buffers_and_match_eager_bitwise() {
    for threads in [1, 2] {
        shendu_core::set_num_threads(threads);
        shendu_core::manual_seed(11);
        let g = Graph::new();
        let x = g.placeholder("x", DType::F32, &[None, Some(3), Some(12), Some(12)]);
        let w = g.placeholder("w", DType::F32, &[Some(4), Some(3), Some(3), Some(3)]);
        let b = g.placeholder("b", DType::F32, &[Some(4)]);
        let out = chain(&x, &w, &b).unwrap();
        let mut sess = Session::new(&g);
        // New values every run: a buffer that kept an old result would show.
        for run in 0..4 {
            let xs = Tensor::randn(&[5, 3, 12, 12], DType::F32).unwrap();
            let ws = Tensor::randn(&[4, 3, 3, 3], DType::F32).unwrap();
            let bs = Tensor::randn(&[4], DType::F32).unwrap();
            let want = chain(&xs, &ws, &bs).unwrap();
            let got = sess.run(&[&out], &[(&x, &xs), (&w, &ws), (&b, &bs)]).unwrap().remove(0);
            assert_eq!(bits(&got), bits(&want), "{threads} thread(s), run {run}\n{}", sess.explain());
        }
    }
}

/// Padding a scalar by nothing returns a view of it; were that view adopted as a buffer, the
/// in-place affine after it would write into the fed tensor.
#[test]
fn a_view_result_is_copied_not_adopted() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[]);
    let y = x.pad(&[], PadMode::Constant(0.0)).unwrap().affine(2.0, 1.0).unwrap().sqr().unwrap();
    let mut sess = Session::new(&g);
    let xs = Tensor::scalar(3.0f64);
    for _ in 0..3 {
        let out = sess.run(&[&y], &[(&x, &xs)]).unwrap();
        assert_eq!(out[0].to_f64().unwrap(), 49.0);
        assert_eq!(xs.to_f64().unwrap(), 3.0, "the feed was written through\n{}", sess.explain());
    }
}
