//! The average of the iterates (`average_iterates`) and the gradients interpolated towards it
//! (`interpolate`).

use ndarray::{Array1, Zip};

use super::state::RunState;
use crate::float::Float;

/// Moves the average of the iterates towards `w` by `1 − exp(−n/(h·N))` for a step on `n`
/// samples (`h` samples on a stream); the first step's iterate starts it.
pub(super) fn update_average<F: Float>(run: &mut RunState<F>, h: f64, n: usize) {
    let w = std::mem::replace(&mut run.w, Array1::from_vec(Vec::new()));
    let avg = average_towards(run.average.take(), &w, run, h, n);
    run.w = w;
    run.average = Some(avg);
}

/// `average` moved towards `w` by `1 − exp(−n/(h·N))`, or `w` itself when there is none yet.
fn average_towards<F: Float>(
    average: Option<Array1<F>>,
    w: &Array1<F>,
    run: &RunState<F>,
    h: f64,
    n: usize,
) -> Array1<F> {
    let span = if run.n_samples == crate::stream::UNBOUNDED {
        h
    } else {
        h * run.n_samples as f64
    };
    let weight = F::from_f64(1.0 - (-(n as f64) / span).exp());
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
    let x = average_towards(run.average.take(), &z, run, h, run.batch_size);
    let beta = F::from_f64(beta);
    Zip::from(&mut run.work.next)
        .and(&x)
        .for_each(|y, &a| *y = (F::one() - beta) * *y + beta * a);
    run.average = Some(x);
    run.fast = Some(z);
}
