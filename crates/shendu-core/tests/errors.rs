//! One test per error class: the error has the right kind and its message names the op and the
//! shapes (and dtypes or devices) involved, so the message alone tells the user what to fix.

use shendu_core::{DType, Device, Error, Tensor};

fn zeros(shape: &[usize], dtype: DType) -> Tensor {
    Tensor::zeros(shape.to_vec(), dtype).expect("zeros")
}

/// Asserts `e` is from `op` and its message contains every piece of `parts`.
fn assert_names(e: &Error, op: &str, parts: &[&str]) {
    let msg = e.to_string();
    assert_eq!(e.op(), op, "error {msg:?} comes from the wrong op");
    assert!(msg.starts_with(&format!("{op}: ")), "message {msg:?} does not start with the op name");
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} does not mention {p:?}");
    }
}

#[test]
fn shape_matmul_inner_dimensions() {
    let e = zeros(&[64, 1000], DType::F32).matmul(&zeros(&[100, 10], DType::F32)).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e:?}");
    assert_eq!(e.to_string(), "matmul: lhs [64, 1000] and rhs [100, 10]: inner dimensions 1000 and 100 differ");
}

#[test]
fn shape_matmul_rank_and_batch() {
    let e = zeros(&[3], DType::F32).matmul(&zeros(&[3, 2], DType::F32)).unwrap_err();
    assert_names(&e, "matmul", &["[3]", "[3, 2]"]);
    let e = zeros(&[2, 3, 4], DType::F32).matmul(&zeros(&[5, 4, 2], DType::F32)).unwrap_err();
    assert_names(&e, "matmul", &["[2, 3, 4]", "[5, 4, 2]", "batch"]);
}

#[test]
fn shape_broadcasting_add() {
    let e = zeros(&[2, 3], DType::F32).add(&zeros(&[4], DType::F32)).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e:?}");
    assert_names(&e, "add", &["[2, 3]", "[4]", "broadcast"]);
}

#[test]
fn shape_reshape_element_count() {
    let e = zeros(&[2, 3], DType::F32).reshape([4, 2]).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e:?}");
    assert_names(&e, "reshape", &["[2, 3]", "[4, 2]", "6", "8"]);
}

#[test]
fn shape_broadcast_as_and_squeeze() {
    let e = zeros(&[2, 3], DType::F32).broadcast_as([2, 4]).unwrap_err();
    assert_names(&e, "broadcast_as", &["[2, 3]", "[2, 4]"]);
    let e = zeros(&[2, 3], DType::F32).squeeze(0usize).unwrap_err();
    assert_names(&e, "squeeze", &["[2, 3]"]);
}

#[test]
fn dtype_mixed_add() {
    let e = zeros(&[2, 3], DType::F32).add(&zeros(&[2, 3], DType::F64)).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e:?}");
    assert_names(&e, "add", &["[2, 3]", "f32", "f64"]);
}

#[test]
fn dtype_matmul_of_u8() {
    let e = zeros(&[2, 3], DType::U8).matmul(&zeros(&[3, 4], DType::U8)).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e:?}");
    assert_names(&e, "matmul", &["u8", "[2, 3]", "[3, 4]"]);
}

#[test]
fn dtype_unary_of_integers() {
    let e = zeros(&[5], DType::I64).exp().unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e:?}");
    assert_names(&e, "exp", &["i64"]);
}

#[test]
fn device_cuda_unavailable() {
    let e = zeros(&[2, 3], DType::F32).to_device(Device::Cuda(0)).unwrap_err();
    assert!(matches!(e, Error::Device { .. }), "{e:?}");
    assert_names(&e, "to_device", &["cuda:0", "[2, 3]", "f32"]);
}

#[test]
fn index_narrow_out_of_range() {
    let e = zeros(&[2, 3], DType::F32).narrow(1usize, 2, 3).unwrap_err();
    assert!(matches!(e, Error::Index { .. }), "{e:?}");
    assert_names(&e, "narrow", &["[2, 3]", "2..5", "dimension 1", "size 3"]);
}

#[test]
fn index_bad_dim() {
    let x = zeros(&[2, 3], DType::F32);
    let e = x.narrow(5usize, 0, 1).unwrap_err();
    assert!(matches!(e, Error::Index { .. }), "{e:?}");
    assert_names(&e, "narrow", &["5", "[2, 3]"]);
    let e = x.sum(&[-3isize], false).unwrap_err();
    assert_names(&e, "sum", &["-3", "[2, 3]"]);
    let e = x.softmax(2usize).unwrap_err();
    assert_names(&e, "softmax", &["2", "[2, 3]"]);
    let e = x.permute(&[0, 0]).unwrap_err();
    assert_names(&e, "permute", &["[0, 0]", "[2, 3]"]);
    let e = x.sum(&[1usize, 1], true).unwrap_err();
    assert_names(&e, "sum", &["[1, 1]", "[2, 3]"]);
}

#[test]
fn invalid_arguments() {
    let e = zeros(&[2], DType::F32).clamp(1.0, 0.0).unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
    assert_names(&e, "clamp", &["1", "0"]);
    let e = Tensor::arange(0.0, 1.0, 0.0, DType::F32).unwrap_err();
    assert_names(&e, "arange", &["step 0"]);
}

#[test]
fn autograd_misuse() {
    let err = |r: shendu_core::Result<shendu_core::GradStore>| r.err().expect("an error");
    let x = zeros(&[2, 3], DType::F32);
    let e = err(x.exp().unwrap().backward());
    assert!(matches!(e, Error::Autograd { .. }), "{e:?}");
    assert_names(&e, "backward", &["[2, 3]"]);
    let w = shendu_core::Var::new(zeros(&[2, 3], DType::F32));
    let e = err(w.exp().unwrap().backward());
    assert_names(&e, "backward", &["[2, 3]", "backward_with_grad"]);
    let e = err(w.exp().unwrap().backward_with_grad(&zeros(&[3], DType::F32), false));
    assert_names(&e, "backward", &["[3]", "[2, 3]"]);
}

#[test]
fn dtype_error_from_kernel_dispatch_names_the_shape() {
    let t = Tensor::from_vec(vec![1i64, 2, 3, 4, 5, 6], &[2, 3]).unwrap();
    let msg = t.exp().unwrap_err().to_string();
    assert!(msg.starts_with("exp:"), "{msg}");
    assert!(msg.contains("[2, 3] i64"), "{msg}");
}

// ---- convolution, indexing, joining, padding ------------------------------------------------

#[test]
fn shape_conv2d_channels_with_groups() {
    use shendu_core::Conv2dParams;
    let x = zeros(&[8, 32, 56, 56], DType::F32);
    let e = x.conv2d(&zeros(&[64, 8, 3, 3], DType::F32), &Conv2dParams::default().with_groups(2)).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e:?}");
    assert_eq!(e.to_string(), "conv2d: input [8, 32, 56, 56] has 32 channels but weight [64, 8, 3, 3] with groups 2 expects 16");
    // Groups that do not divide the channels name both shapes and the groups too.
    let e = x.conv2d(&zeros(&[64, 11, 3, 3], DType::F32), &Conv2dParams::default().with_groups(3)).unwrap_err();
    assert_names(&e, "conv2d", &["[8, 32, 56, 56]", "[64, 11, 3, 3]", "groups 3", "32 channels"]);
    let e = zeros(&[1, 4, 9], DType::F32).conv1d(&zeros(&[2, 3, 3], DType::F32), 1, shendu_core::Padding::Valid, 1, 2).unwrap_err();
    assert_names(&e, "conv1d", &["[1, 4, 9]", "[2, 3, 3]", "groups 2"]);
}

#[test]
fn shape_conv2d_kernel_larger_than_padded_input() {
    use shendu_core::{Conv2dParams, Padding};
    let x = zeros(&[1, 3, 4, 5], DType::F32);
    let p = Conv2dParams::default().with_padding(Padding::explicit(0, 0, 1, 0)).with_dilation(2);
    let e = x.conv2d(&zeros(&[2, 3, 3, 3], DType::F32), &p).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "conv2d: kernel 3x3 with dilation (2, 2) spans 5x5 but input [1, 3, 4, 5] with pads (top 0, bottom 0, left 1, right 0) \
         is only 4x6 (weight [2, 3, 3, 3])"
    );
    let e = x.conv2d(&zeros(&[2, 3, 6, 1], DType::F32), &Conv2dParams::default()).unwrap_err();
    assert_names(&e, "conv2d", &["kernel 6x1", "spans 6x1", "is only 4x5", "[1, 3, 4, 5]", "[2, 3, 6, 1]"]);
    let e = x.max_pool2d((5, 2), (1, 1), Padding::Valid, (1, 1), false).unwrap_err();
    assert_names(&e, "max_pool2d", &["[1, 3, 4, 5]", "5x2"]);
}

#[test]
fn index_out_of_range_in_index_select_and_gather() {
    let x = zeros(&[3, 4], DType::F32);
    let i = Tensor::from_vec(vec![0i64, 4, 1], &[3]).unwrap();
    let e = x.index_select(1, &i).unwrap_err();
    assert!(matches!(e, Error::Index { .. }), "{e:?}");
    assert_eq!(e.to_string(), "index_select: index 4 is out of range for dimension 1 of size 4 (input [3, 4], index [3])");
    let i = Tensor::from_vec(vec![0i64, -1, 2, 1], &[2, 2]).unwrap();
    let e = x.gather(0, &i).unwrap_err();
    assert!(matches!(e, Error::Index { .. }), "{e:?}");
    assert_names(&e, "gather", &["index -1", "dimension 0 of size 3", "input [3, 4]", "index [2, 2]"]);
    let e = x.scatter_add(0, &Tensor::from_vec(vec![3i64], &[1, 1]).unwrap(), &zeros(&[1, 1], DType::F32)).unwrap_err();
    assert_names(&e, "scatter_add", &["index 3", "size 3", "[3, 4]", "[1, 1]"]);
    let e = x.index_select(0, &Tensor::from_vec(vec![0.0f32], &[1]).unwrap()).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e:?}");
    assert_names(&e, "index_select", &["f32", "i64", "[1]"]);
}

#[test]
fn shape_cat_mismatched_inputs() {
    let (a, b, c) = (zeros(&[2, 3], DType::F32), zeros(&[2, 5], DType::F32), zeros(&[4, 3], DType::F32));
    let e = Tensor::cat(&[&a, &b, &c], 1).unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e:?}");
    assert_eq!(e.to_string(), "cat: input 2 has shape [4, 3] but input 0 has shape [2, 3]: sizes must match except in dimension 1");
    let e = Tensor::stack(&[&a, &b], 0).unwrap_err();
    assert_names(&e, "stack", &["[2, 3]", "[2, 5]"]);
    let e = Tensor::cat(&[&a, &zeros(&[2, 3], DType::F64)], 0).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e:?}");
    assert_names(&e, "cat", &["input 1", "f64", "f32"]);
}

#[test]
fn invalid_reflect_pad_too_large() {
    use shendu_core::PadMode;
    let e = zeros(&[2, 3, 4], DType::F32).pad(&[(1, 4)], PadMode::Reflect).unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
    assert_eq!(e.to_string(), "pad: reflect padding (1, 4) of dimension 2 must be smaller than its size 4 (input [2, 3, 4])");
    let e = zeros(&[2, 0], DType::F32).pad(&[(1, 0)], PadMode::Replicate).unwrap_err();
    assert_names(&e, "pad", &["replicate", "[2, 0]"]);
}
