use shendu_core::{DType, Tensor, Var};

#[test]
fn matmul_relu_backward() {
    let w = Var::new(Tensor::from_vec(vec![1.0f64, -2.0, 3.0, 4.0, 0.5, -1.0], &[3, 2]).unwrap());
    let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[1, 3]).unwrap();
    let y = x.matmul(&w).unwrap().relu().unwrap().sum_all().unwrap();
    // x·w = [1+6+1.5, -2+8-3] = [8.5, 3]; both positive
    assert_eq!(y.to_scalar::<f64>().unwrap(), 11.5);
    let g = y.backward().unwrap();
    assert_eq!(g.get(&w).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
    // accumulation until zeroed
    let y2 = x.matmul(&w).unwrap().relu().unwrap().sum_all().unwrap();
    y2.backward().unwrap();
    assert_eq!(w.grad().unwrap().to_vec::<f64>().unwrap(), vec![2.0, 2.0, 4.0, 4.0, 6.0, 6.0]);
    w.zero_grad();
    assert!(w.grad().is_none());
}

#[test]
fn broadcast_reduce_softmax() {
    let a = Var::new(Tensor::arange(0.0, 6.0, 1.0, DType::F64).unwrap().reshape(&[2, 3]).unwrap());
    let b = Tensor::from_vec(vec![10.0f64, 20.0, 30.0], &[3]).unwrap();
    let s = a.add(&b).unwrap().softmax(1).unwrap();
    let v = s.to_vec::<f64>().unwrap();
    assert!((v[..3].iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let l = s.narrow(1, 0, 1).unwrap().sum_all().unwrap();
    let g = l.backward().unwrap();
    assert_eq!(g.get(&a).unwrap().dims(), &[2, 3]);
    let m = a.t().unwrap().sum(&[1usize], false).unwrap();
    assert_eq!(m.to_vec::<f64>().unwrap(), vec![3.0, 5.0, 7.0]);
}

/// The eager example of README.md, line for line.
#[test]
fn readme_example() -> shendu_core::Result<()> {
    shendu_core::manual_seed(0);
    let x = Tensor::randn(&[64, 1000], DType::F32)?;
    let w = Var::new(Tensor::randn(&[1000, 10], DType::F32)?);
    let loss = x.matmul(&w)?.relu()?.sqr()?.sum_all()?;
    let grads = loss.backward()?; // gradients of every Var the loss depends on
    w.sub_assign(&grads.get(&w).unwrap().mul_scalar(1e-6)?)?;
    let err = x.matmul(&Tensor::zeros(&[100, 10], DType::F32)?).unwrap_err();
    assert_eq!(err.to_string(), "matmul: lhs [64, 1000] and rhs [100, 10]: inner dimensions 1000 and 100 differ");
    Ok(())
}
