//! The inner-product test and its orthogonality test: runs that reach the optimum on
//! per-sample and batch-only objectives, the orthogonality test asks for at least as much, and
//! refusals.

use bigbatch::data::Dataset;
use bigbatch::models::{LeastSquares, Logistic};
use bigbatch::*;
use ndarray::{Array1, Array2};

use super::groups::MeansOnly;
use crate::common::*;

fn ridge_model<F: Float>(seed: u64) -> (LeastSquares<F>, Array1<f64>) {
    let (x, y, _) = linear_data(seed, 3000, 5, 1.0, 0.5);
    let lambda = 1e-2;
    let xtx = x.t().dot(&x) / 3000.0 + Array2::<f64>::eye(5) * lambda;
    let optimum = cholesky_solve(&xtx, &(x.t().dot(&y) / 3000.0));
    let data = Dataset::from_dense(x.mapv(F::from_f64), y.mapv(F::from_f64)).unwrap();
    (LeastSquares::new(data, lambda).unwrap(), optimum)
}

fn reaches_the_optimum<F: Float>(tol: f64) {
    let (model, optimum) = ridge_model::<F>(3);
    let means = MicroBatched::new(MeansOnly(&model), Groups::Count(16)).unwrap();
    for (name, ip) in [
        ("inner product", InnerProductTest::new()),
        (
            "with orthogonality",
            InnerProductTest::new().orthogonality(2.0),
        ),
        ("in 4 groups", InnerProductTest::new().groups(4)),
    ] {
        let opt = || {
            BigBatchSgd::paper()
                .theta(0.3)
                .inner_product(ip)
                .seed(1)
                .max_epochs(30.0)
                .build()
                .unwrap()
        };
        let mut h = History::new();
        let report = opt()
            .minimize_with(&model, Array1::zeros(5), &mut h)
            .unwrap();
        let err = max_abs_diff(&report.w, &optimum);
        assert!(err < tol, "{name}: {err} from the optimum: {report}");
        let sizes: Vec<usize> = h.records().iter().map(|r| r.batch_size).collect();
        assert!(
            sizes.last().unwrap() > &(4 * sizes[0]),
            "{name}: the batch grows: {sizes:?}"
        );
        // A model known by batch means: the groups of the test are groups of its groups.
        let report = opt().minimize(&means, Array1::zeros(5)).unwrap();
        let err = max_abs_diff(&report.w, &optimum);
        assert!(err < 10.0 * tol, "{name}, batch means: {err}: {report}");
    }
}

#[test]
fn the_inner_product_test_reaches_the_optimum_f64_and_f32() {
    reaches_the_optimum::<f64>(1e-2);
    reaches_the_optimum::<f32>(1e-2);
}

#[test]
fn the_orthogonality_test_asks_for_at_least_as_much() {
    // The same draws grow until the test passes; adding a condition can only make them
    // grow further, iteration by iteration while the iterates agree (the first iteration).
    let data = datasets_adult();
    let model = Logistic::new(data, 1e-3).unwrap();
    let first = |ip: InnerProductTest, theta: f64| {
        let mut h = History::new();
        BigBatchSgd::paper()
            .theta(theta)
            .inner_product(ip)
            .seed(9)
            .max_iterations(1)
            .build()
            .unwrap()
            .minimize_with(&model, Array1::zeros(model.dim()), &mut h)
            .unwrap();
        h.records()[0].batch_size
    };
    for theta in [0.2, 0.5, 0.9] {
        let alone = first(InnerProductTest::new(), theta);
        for nu in [0.5, 1.0, 5.84] {
            let both = first(InnerProductTest::new().orthogonality(nu), theta);
            assert!(both >= alone, "θ = {theta}, ν = {nu}: {both} < {alone}");
        }
        let strict = first(InnerProductTest::new().orthogonality(0.01), theta);
        assert!(
            strict > alone,
            "a small ν grows the batch: {strict} vs {alone}"
        );
    }
}

fn datasets_adult() -> Dataset<f64> {
    bigbatch::data::datasets::adult::<f64>().with_bias()
}

#[test]
fn the_inner_product_test_is_refused_where_it_does_not_apply() {
    let ip = InnerProductTest::new();
    let refused = |b: Result<BigBatchSgd<Armijo>, Error>, what: &str| {
        let err = b.unwrap_err();
        assert!(
            matches!(err, Error::InvalidParameter { name, .. } if name == what),
            "{what}: {err}"
        );
    };
    // A persistent batch keeps its statistics whole, without groups.
    refused(
        BigBatchSgd::builder()
            .step(Armijo::new())
            .inner_product(ip)
            .build(),
        "inner_product",
    );
    refused(
        BigBatchSgd::paper()
            .inner_product(ip)
            .smoothing(0.5)
            .build(),
        "inner_product",
    );
    refused(
        BigBatchSgd::paper()
            .inner_product(ip)
            .theta(2.0)
            .unbiased_signal(true)
            .build(),
        "inner_product",
    );
    refused(
        BigBatchSgd::paper().inner_product(ip.groups(1)).build(),
        "groups",
    );
    refused(
        BigBatchSgd::paper()
            .inner_product(ip.orthogonality(0.0))
            .build(),
        "orthogonality",
    );
    refused(
        BigBatchSgd::paper()
            .inner_product(ip.orthogonality(f64::NAN))
            .build(),
        "orthogonality",
    );
}
