//! The method names of the command line, and the comparison's grid of runs.

use super::*;

pub(crate) fn run_method(
    task: &Task,
    method: &str,
    seed: u64,
    epochs: f64,
    out: &mut Out,
) -> Res<()> {
    let mut run = Run {
        task: task.name,
        method: method.to_string(),
        lr: 0.0,
        seed,
    };
    if let Some((kind, lr)) = method.split_once(':') {
        if !matches!(kind, "sgd" | "adam" | "adadelta" | "sfadamw" | "adabatch") {
            let known = "sgd, adam, adadelta, sfadamw or adabatch";
            return Err(format!("unknown baseline {kind} ({known})").into());
        }
        run.method = kind.to_string();
        run.lr = lr.parse().map_err(|e| format!("learning rate {lr}: {e}"))?;
        if kind == "adabatch" {
            // AdaBatch: SGD on fresh batches doubled on a schedule, the rate scaled with them.
            let b = BigBatchSgd::builder()
                .batch_mode(BatchMode::Fresh)
                .initial_batch(BATCH)
                .schedule(BatchSchedule::new(2.0, ADABATCH_PERIOD))
                .tolerance(0.0)
                .step(BatchScaled::new(Fixed::new(run.lr)).reference_batch(BATCH));
            return big_batch(b, Eval::OnePass, task, &run, epochs, out);
        }
        return baseline(task, &run, epochs, out);
    }
    // `preset`, `preset+RULE`, `default` or `paper`, then modifiers `+key=value`.
    let mut parts = method.split('+');
    let base = parts.next().unwrap_or_default();
    let mut rule = "";
    let (mut theta, mut batch, mut lr, mut eval) = (None, None, None, Eval::OnePass);
    let (mut unbiased, mut gain, mut smoothing) = (false, None, None);
    let (mut interpolation, mut horizon) = (None, None);
    for m in parts {
        let Some((key, value)) = m.split_once('=') else {
            if m == "unbiased" {
                unbiased = true;
            } else if m == "gain" {
                gain = Some(1.0);
            } else {
                rule = m;
            }
            continue;
        };
        let v: f64 = value.parse().map_err(|e| format!("modifier {m}: {e}"))?;
        match key {
            "theta" => theta = Some(v),
            "batch" => batch = Some(v as usize),
            "lr" => lr = Some(v),
            "groups" => eval = Eval::Groups(Groups::Count(v as usize)),
            "gain" => gain = Some(v),
            "smooth" => smoothing = Some(v),
            "interp" => interpolation = Some(v),
            "avg" => horizon = Some(v),
            _ => {
                let known = "theta, batch, lr, groups, gain, smooth, interp, avg";
                return Err(format!("unknown modifier {key} ({known})").into());
            }
        }
    }
    // Each base with its own rule, which `+RULE` replaces (Adadelta holds the place).
    let (b, base_rule) = match base {
        "preset" => (BigBatchSgd::network().step(Adadelta::new()), "scaled"),
        "default" => (BigBatchSgd::builder().step(Adadelta::new()), "lbfgs"),
        "paper" => (BigBatchSgd::paper().step(Adadelta::new()), "armijo"),
        other => return Err(format!("unknown method {other} (preset, paper or default)").into()),
    };
    if rule.is_empty() {
        rule = base_rule;
    }
    let b = match (theta, batch) {
        (Some(t), Some(k)) => b.theta(t).initial_batch(k),
        (Some(t), None) => b.theta(t),
        (None, Some(k)) => b.initial_batch(k),
        (None, None) => b,
    };
    let b = if unbiased { b.unbiased_signal(true) } else { b };
    let b = match smoothing {
        Some(beta) => b.smoothing(beta),
        None => b,
    };
    let b = match horizon {
        Some(h) => b.average_iterates(h),
        None => b,
    };
    let b = match interpolation {
        Some(beta) => b.interpolate(beta),
        None => b,
    };
    if gain.is_some() && !matches!(rule, "adadelta" | "adam" | "scaled") {
        return Err(
            format!("+gain applies to the adadelta, adam and preset rules, not {rule}").into(),
        );
    }
    let g = eval;
    match rule {
        // The paper's Armijo rule: backtracking, enlarged only when the batch grows.
        "armijo" => {
            let rule = Armijo::new().increase(StepIncrease::OnBatchGrowth);
            big_batch(b.step(rule), g, task, &run, epochs, out)
        }
        "lbfgs" => big_batch(b.step(Lbfgs::new()), g, task, &run, epochs, out),
        // The preset's own rule: Adadelta scaled by the gain ratio (`+gain=P` sets its power).
        "scaled" => {
            let rule = BigBatchSgd::network().build()?.step_rule().clone();
            let rule = match gain {
                Some(p) => rule.power(p),
                None => rule,
            };
            big_batch(b.step(rule), g, task, &run, epochs, out)
        }
        "adam" => {
            let rule = lr.map_or(Adam::new(), |a| Adam::new().step_size(a));
            gained(b, rule, gain, g, task, &run, epochs, out)
        }
        "adadelta" => {
            let rule = lr.map_or(Adadelta::new(), |a| Adadelta::new().step_size(a));
            gained(b, rule, gain, g, task, &run, epochs, out)
        }
        "momentum" => {
            let rule = lr.map_or(Momentum::default(), |lr| Momentum::new().step_size(lr));
            big_batch(b.step(rule), g, task, &run, epochs, out)
        }
        other => Err(format!("unknown rule {other}").into()),
    }
}

/// A big-batch run with `rule`, its direction scaled by the gain ratio to the power `gain`
/// (against the first batch size) where one is given.
#[allow(clippy::too_many_arguments)]
fn gained<R: StepRule>(
    b: BigBatchSgdBuilder<Adadelta>,
    rule: R,
    gain: Option<f64>,
    g: Eval,
    task: &Task,
    run: &Run,
    epochs: f64,
    out: &mut Out,
) -> Res<()> {
    match gain {
        Some(power) => {
            let b0 = b.clone().build()?.initial_batch();
            let scaled = GainScaled::new(rule).reference_batch(b0).power(power);
            big_batch(b.step(scaled), g, task, run, epochs, out)
        }
        None => big_batch(b.step(rule), g, task, run, epochs, out),
    }
}

/// Every run of the comparison: (method, seed): the preset for `seeds` seeds in one pass and in
/// 8 micro-batches, the other
/// big-batch methods for `rule_seeds`, each baseline at its 5 learning rates (seed 0).
pub(crate) fn grid(seeds: u64, rule_seeds: u64) -> Vec<(String, u64)> {
    let mut runs: Vec<(String, u64)> = (0..seeds).map(|s| ("preset".to_string(), s)).collect();
    runs.extend((0..seeds).map(|s| ("preset+groups=8".to_string(), s)));
    for m in [
        "preset+adadelta",
        "preset+armijo",
        "preset+lbfgs",
        "preset+adam",
        "preset+momentum",
        "default",
        "paper",
    ] {
        runs.extend((0..rule_seeds).map(|s| (m.to_string(), s)));
    }
    for (kind, rates) in [
        ("sgd", SGD_RATES),
        ("adabatch", SGD_RATES),
        ("adam", ADAM_RATES),
        ("adadelta", ADADELTA_RATES),
    ] {
        runs.extend(rates.iter().map(|lr| (format!("{kind}:{lr}"), 0)));
    }
    // Schedule-Free AdamW at its published defaults only: the untuned alternative.
    runs.push((format!("sfadamw:{}", ScheduleFreeAdamW::DEFAULT_LR), 0));
    runs
}
