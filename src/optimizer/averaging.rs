//! The average of the iterates (`average_iterates`) and the gradients interpolated towards it
//! (`interpolate`).

use ndarray::{Array1, Zip};

use super::state::RunState;
use crate::float::Float;

/// Moves the average of the iterates towards `w` by `1 − exp(−n/(h·N))` for a step on `n`
/// samples (`h` samples on a stream); the first step's iterate starts it.
pub(super) fn update_average<F: Float>(run: &mut RunState<F>, h: f64, n: usize) {
    let weight = weight(run, h, n);
    run.average = Some(towards(run.average.take(), &run.w, weight));
}

/// The weight `1 − exp(−n/(h·N))` of a step on `n` samples in an average over `h` epochs
/// (`h` samples on a stream).
fn weight<F: Float>(run: &RunState<F>, h: f64, n: usize) -> F {
    let span = if run.n_samples == crate::stream::UNBOUNDED {
        h
    } else {
        h * run.n_samples as f64
    };
    F::from_f64(1.0 - (-(n as f64) / span).exp())
}

/// `average` moved towards `w` by `weight`, or `w` itself when there is none yet.
fn towards<F: Float>(average: Option<Array1<F>>, w: &Array1<F>, weight: F) -> Array1<F> {
    match average {
        None => w.clone(),
        Some(mut avg) => {
            Zip::from(&mut avg)
                .and(w)
                .for_each(|a, &w| *a += weight * (w - *a));
            avg
        }
    }
}

/// With interpolated gradients: `next`, the new fast iterate `z`, joins the average `x` and
/// becomes the gradients' next point `(1 − β) z + β x`.
pub(super) fn interpolate<F: Float>(run: &mut RunState<F>, h: f64, beta: f64) {
    let z = match run.fast.take() {
        Some(mut z) => {
            z.assign(&run.work.next);
            z
        }
        None => run.work.next.clone(),
    };
    let x = towards(run.average.take(), &z, weight(run, h, run.batch_size));
    let beta = F::from_f64(beta);
    Zip::from(&mut run.work.next)
        .and(&x)
        .for_each(|y, &a| *y = (F::one() - beta) * *y + beta * a);
    run.average = Some(x);
    run.fast = Some(z);
}
