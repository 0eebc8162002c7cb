//! The notebook's TensorFlow basics in shendu's graph mode: constants, placeholders fed at run
//! time, and a matrix product, each computed by a `Session`.
//!
//! The original feeds `tf.int16` placeholders; shendu's arithmetic kernels are float (integer
//! dtypes hold labels and indices), so the placeholders here are f32 and print as integers.
//!
//! Run with `cargo run --release --example tf_basic_ops`.

use shendu_core::graph::{Graph, Session};
use shendu_core::{DType, Tensor};

fn main() -> shendu_core::Result<()> {
    let g = Graph::new();
    let mut sess = Session::new(&g);

    // Constants: the values are part of the graph.
    let a = g.constant(Tensor::scalar(2f32));
    let b = g.constant(Tensor::scalar(3f32));
    println!("a=2, b=3");
    let out = sess.run(&[&a.add(&b)?], &[])?;
    println!("Addition with constants: {}", out[0].to_f64()?);
    let out = sess.run(&[&a.mul(&b)?], &[])?;
    println!("Multiplication with constants: {}", out[0].to_f64()?);

    // Placeholders: the values come with each run.
    let a = g.placeholder("a", DType::F32, &[]);
    let b = g.placeholder("b", DType::F32, &[]);
    let add = a.add(&b)?;
    let mul = a.mul(&b)?;
    let (fa, fb) = (Tensor::scalar(2f32), Tensor::scalar(3f32));
    let feeds = [(&a, &fa), (&b, &fb)];
    println!("Addition with variables: {}", sess.run(&[&add], &feeds)?[0].to_f64()?);
    println!("Multiplication with variables: {}", sess.run(&[&mul], &feeds)?[0].to_f64()?);

    // A 1x2 matrix times a 2x1 matrix.
    let m1 = g.constant(Tensor::from_vec(vec![3f32, 3.], &[1, 2])?);
    let m2 = g.constant(Tensor::from_vec(vec![2f32, 2.], &[2, 1])?);
    let product = m1.matmul(&m2)?;
    let result = sess.run(&[&product], &[])?;
    let v = result[0].to_vec::<f32>()?;
    println!("[[{:.0}.]]", v[0]);
    Ok(())
}
