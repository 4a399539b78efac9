//! A complete step rule written from outside the crate, with only the public API: a
//! secant (Barzilai–Borwein-like) step from `StepContext::gradient_change`, shortened by the
//! shared Armijo search. It reaches the ridge optimum in f32 and f64, its parameters are
//! validated by `build()`, and it reads what the context promises (a batch that passed the
//! test, statistics at `w`, a direction that starts as `−g_B`).
use crate::common::*;
use bigbatch::{
    BatchMode, BigBatchSgd, Error, FirstTrial, Float, LineSearch, Objective, Result, Step,
    StepContext, StepRule, StopReason,
};
use ndarray::Array1;

/// `α = s·s / s·y` from the last step `s` and the gradient change `y` on identical samples,
/// clamped to `[min, max]`, then Armijo from there.
#[derive(Debug, Clone)]
struct Secant {
    initial: f64,
    max: f64,
    search: LineSearch,
    /// The previous iterate and the previous batch's gradient there.
    prev: Option<(Array1<f64>, Array1<f64>)>,
    /// How many contexts this rule checked (each kept its promises).
    checked: usize,
}

impl Secant {
    fn new(initial: f64) -> Self {
        let mut search = LineSearch::default();
        search.first_trial = FirstTrial::Statistics;
        Secant {
            initial,
            max: 1e3,
            search,
            prev: None,
            checked: 0,
        }
    }
}

impl StepRule for Secant {
    fn validate(&self) -> Result<()> {
        if self.initial.is_finite() && self.initial > 0.0 && self.initial <= self.max {
            Ok(())
        } else {
            Err(Error::InvalidParameter {
                name: "initial",
                value: self.initial.to_string(),
                allowed: "finite, > 0 and at most max",
            })
        }
    }

    fn reset(&mut self) {
        self.prev = None;
        self.checked = 0;
    }

    fn step<F: Float, O: Objective<F> + ?Sized>(
        &mut self,
        ctx: &mut StepContext<'_, F, O>,
    ) -> Result<Step<F>> {
        // The context's promises: statistics of the whole batch at `w`, `d = −g_B`.
        assert_eq!(ctx.stats().count(), ctx.batch().len());
        assert_eq!(ctx.w().len(), ctx.direction().len());
        let g = ctx.stats().mean().clone();
        for (d, g) in ctx.direction().iter().zip(&g) {
            assert_eq!(d.as_f64(), -F::from_f64(*g).as_f64());
        }
        assert!(ctx.slope() <= F::zero());
        self.checked += 1;

        let mut alpha = self.initial;
        if let Some((w_prev, g_prev)) = self.prev.take() {
            if let Some(y) = ctx.gradient_change(&w_prev, &g_prev)? {
                let s = ctx.w().mapv(F::as_f64) - &w_prev;
                let sy = s.dot(&y);
                if sy > 0.0 {
                    alpha = (s.dot(&s) / sy).clamp(self.search.min_step, self.max);
                }
            }
        }
        let step = ctx.backtrack(F::from_f64(alpha), &self.search)?;
        self.prev = Some((ctx.w().mapv(F::as_f64), g));
        Ok(step)
    }
}

fn secant_reaches_the_ridge_optimum<F: Float>(tol: f64) {
    let problem = ridge::<F>(11, 600, 6, 0.3, 1e-2);
    let optimum = problem.optimum();
    for mode in [BatchMode::Persistent, BatchMode::Fresh] {
        let mut opt = BigBatchSgd::builder()
            .step(Secant::new(0.1))
            .batch_mode(mode)
            .seed(4)
            .max_epochs(200.0)
            .tolerance(1e-12)
            .build()
            .unwrap();
        let report = opt.minimize(&problem, Array1::zeros(6)).unwrap();
        let err = max_abs_diff(&report.w, &optimum);
        assert!(err < tol, "{mode:?}: {err:e} from the optimum; {report}");
        assert!(
            matches!(
                report.stop,
                StopReason::GradientTolerance | StopReason::EpochBudget | StopReason::NoProgress
            ),
            "{mode:?}: {report}"
        );
        assert_eq!(opt.step_rule().checked, report.iterations, "{mode:?}");
    }
}

#[test]
fn a_rule_written_outside_the_crate_reaches_the_optimum() {
    secant_reaches_the_ridge_optimum::<f64>(1e-4);
    secant_reaches_the_ridge_optimum::<f32>(1e-2);
}

#[test]
fn its_parameters_are_checked_by_build() {
    let err = BigBatchSgd::builder().step(Secant::new(-1.0)).build();
    assert!(
        matches!(
            err,
            Err(Error::InvalidParameter {
                name: "initial",
                ..
            })
        ),
        "{err:?}"
    );
}
