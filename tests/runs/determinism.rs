//! The same seed gives the same report, bit for bit, and the public types cross threads.

use crate::common::*;
use bigbatch::*;
use ndarray::Array1;

fn determinism<F: Float>() {
    let p = ridge::<F>(12, 700, 5, 1.0, 0.01);
    let run = |seed: u64, rule: u8| {
        let b = BigBatchSgd::builder().seed(seed).max_epochs(15.0);
        let w0 = Array1::<F>::zeros(5);
        match rule {
            0 => b.build().unwrap().minimize(&p, w0),
            1 => b
                .step(BarzilaiBorwein::new())
                .build()
                .unwrap()
                .minimize(&p, w0),
            _ => b.step(Fixed::new(0.05)).build().unwrap().minimize(&p, w0),
        }
        .unwrap()
    };
    for rule in 0..3 {
        let (a, b) = (run(42, rule), run(42, rule));
        assert_eq!(
            bits(&a),
            bits(&b),
            "rule {rule}: same seed, same report bit for bit"
        );
        let c = run(43, rule);
        assert_ne!(
            bits(&a).0,
            bits(&c).0,
            "rule {rule}: another seed, another path"
        );
    }
    // The same optimizer value reused for a second run starts afresh (memory is reset).
    let mut opt = BigBatchSgd::builder()
        .seed(42)
        .max_epochs(15.0)
        .step(BarzilaiBorwein::new())
        .build()
        .unwrap();
    let first = opt.minimize(&p, Array1::zeros(5)).unwrap();
    let second = opt.minimize(&p, Array1::zeros(5)).unwrap();
    assert_eq!(bits(&first), bits(&second));
}

#[test]
fn same_seed_same_report_f64() {
    determinism::<f64>();
}

#[test]
fn same_seed_same_report_f32() {
    determinism::<f32>();
}

#[test]
fn public_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<BigBatchSgd>();
    assert_send_sync::<BigBatchSgd<BarzilaiBorwein>>();
    assert_send_sync::<BigBatchSgd<Fixed>>();
    assert_send_sync::<Report<f64>>();
    assert_send_sync::<RunState<f32>>();
    assert_send_sync::<GradStats<f64>>();
    assert_send_sync::<History<f64>>();
    assert_send_sync::<Error>();
    assert_send_sync::<BigBatchSgd<Lbfgs>>();
    assert_send_sync::<BigBatchSgd<Armijo>>();
    assert_send_sync::<bigbatch::data::Dataset<f32>>();
    assert_send_sync::<bigbatch::data::CsrMatrix<f64>>();
    assert_send_sync::<bigbatch::models::LeastSquares<f32>>();
    assert_send_sync::<bigbatch::models::Logistic<f64>>();
    assert_send_sync::<bigbatch::models::Huber<f64>>();
    assert_send_sync::<bigbatch::models::Softmax<f32>>();
    assert_send_sync::<bigbatch::models::Mlp<f64>>();
}
