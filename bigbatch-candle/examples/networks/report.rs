//! The report: the CSV read back, the Markdown tables, the targets and the figures.

use super::*;

#[derive(Clone)]
pub(crate) struct Line {
    pub(crate) task: String,
    pub(crate) method: String,
    pub(crate) lr: f64,
    pub(crate) seed: u64,
    pub(crate) epoch: f64,
    pub(crate) test_acc: f64,
    pub(crate) train_loss: f64,
    pub(crate) seconds: f64,
    pub(crate) batch: usize,
    pub(crate) status: String,
    /// Steps taken, where the line records them.
    pub(crate) steps: Option<usize>,
}

pub(crate) fn read_csv(path: &str) -> Res<Vec<Line>> {
    let file = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut lines = Vec::new();
    for (k, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if k == 0 || line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        // Lines written before the `steps` column have 10 fields.
        if f.len() != 10 && f.len() != 11 {
            return Err(format!("{path}:{}: {} fields, expected 11", k + 1, f.len()).into());
        }
        let num = |i: usize| -> Res<f64> {
            f[i].parse::<f64>()
                .map_err(|e| format!("{path}:{}: field {}: {e}", k + 1, i + 1).into())
        };
        lines.push(Line {
            task: f[0].into(),
            method: f[1].into(),
            lr: num(2)?,
            seed: num(3)? as u64,
            epoch: num(4)?,
            test_acc: num(5)?,
            train_loss: num(6)?,
            seconds: num(7)?,
            batch: num(8)? as usize,
            status: f[9].into(),
            // Empty where the run's steps were not recorded.
            steps: match f.get(10) {
                Some(v) if !v.is_empty() => Some(num(10)? as usize),
                _ => None,
            },
        });
    }
    Ok(lines)
}

/// One curve: a method's runs, keyed by seed (or learning rate), each a list of checkpoints.
pub(crate) type Curves = BTreeMap<String, Vec<Line>>;
/// A plotted curve: (epoch, test accuracy, training loss).
pub(crate) type Curve = Vec<(f64, f64, f64)>;

/// The targets for one task: the preset's median against the best baseline run at each epoch
/// count (any optimizer, any rate) and against AdamW at 1e-3 and Schedule-Free AdamW at its
/// defaults, its growth (smallest final batch over the first, most steps over those of
/// batches of 32), its training loss at 20 epochs against the lowest, and its time per epoch
/// against Candle's Adam loop.
pub(crate) fn targets(methods: &BTreeMap<String, Curves>) {
    let is_baseline = |runs: &Curves| runs.values().next().is_some_and(|r| r[0].lr > 0.0);
    let baselines: Vec<&Vec<Line>> = methods
        .values()
        .filter(|r| is_baseline(r))
        .flat_map(|r| r.values())
        .collect();
    let Some(preset) = methods.get("preset") else {
        return;
    };
    let per_epoch = |runs: &mut dyn Iterator<Item = &Vec<Line>>| {
        median(
            runs.filter_map(|r| r.iter().rfind(|l| l.status == "ok" || l.status == "final"))
                .map(|l| l.seconds / l.epoch)
                .collect(),
        )
    };
    let preset_median = |e: f64| {
        median(
            preset
                .values()
                .filter_map(|r| at(r, e))
                .map(|l| l.test_acc)
                .collect(),
        )
    };
    print!("\ntargets: preset median − best baseline, test accuracy:");
    for e in [5.0, 10.0, 20.0] {
        let best = baselines
            .iter()
            .filter_map(|r| at(r, e))
            .map(|l| l.test_acc)
            .fold(f64::NAN, f64::max);
        if let Some(m) = preset_median(e) {
            print!(" {e} ep. {:+.2} pp", 100.0 * (m - best));
        }
    }
    let lowest = baselines
        .iter()
        .filter_map(|r| at(r, 20.0))
        .map(|l| l.train_loss)
        .fold(f64::NAN, f64::min);
    let loss = median(
        preset
            .values()
            .filter_map(|r| at(r, 20.0))
            .map(|l| l.train_loss)
            .collect(),
    );
    if let Some(l) = loss {
        print!("; training loss at 20 ep. {:.2}× the lowest", l / lowest);
    }
    // Against the untuned alternatives: AdamW at 1e-3 and Schedule-Free AdamW at its defaults.
    for (name, kind, lr) in [
        ("AdamW 1e-3", "adam", "0.001"),
        ("SF-AdamW", "sfadamw", "0.0025"),
    ] {
        let Some(run) = methods.get(kind).and_then(|r| r.get(lr)) else {
            continue;
        };
        print!("; − {name}:");
        for e in [5.0, 10.0, 20.0] {
            if let (Some(m), Some(l)) = (preset_median(e), at(run, e)) {
                print!(" {:+.2}", 100.0 * (m - l.test_acc));
            }
        }
    }
    // Growth: the smallest final batch over the preset's first, and the steps against batches of 32.
    let ends: Vec<&Line> = preset.values().filter_map(|r| at(r, 20.0)).collect();
    let reference = baselines
        .iter()
        .filter_map(|r| at(r, 20.0))
        .filter(|l| l.batch == 32)
        .find_map(|l| l.steps);
    // The first batch is the preset's own, as it is configured now.
    let first = BigBatchSgd::network()
        .build()
        .map_or(BATCH, |o| o.initial_batch());
    if let Some(smallest) = ends.iter().map(|l| l.batch).min() {
        let ratio = smallest as f64 / first as f64;
        print!("; final batch ≥ {ratio:.1}× the first ({first})");
    }
    let most = ends.iter().filter_map(|l| l.steps).max();
    if let (Some(k), Some(r)) = (most, reference) {
        print!(", steps ≤ {:.2}× batch-32's", k as f64 / r as f64);
    }
    let adam = methods.get("adam").and_then(|r| per_epoch(&mut r.values()));
    if let (Some(a), Some(p)) = (adam, per_epoch(&mut preset.values())) {
        print!("; time per epoch {:.2}× Adam's", p / a);
    }
    println!();
}

/// The last checkpoint of a run that measured something.
pub(crate) fn last_good(run: &[Line]) -> Option<&Line> {
    run.iter()
        .rfind(|l| l.status == "ok" || l.status == "final")
}

/// The checkpoint of a run at `epoch`: the first at or after it, or the final iterate of a run
/// whose budget ran out up to an epoch short of it.
pub(crate) fn at(run: &[Line], epoch: f64) -> Option<&Line> {
    run.iter().find(|l| {
        let from = if l.status == "final" { 1.0 } else { 0.0 };
        matches!(l.status.as_str(), "ok" | "final")
            && l.epoch >= epoch - from
            && l.epoch < epoch + 0.9
    })
}

pub(crate) fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    })
}

pub(crate) fn report(path: &str, svg: Option<&str>) -> Res<()> {
    let lines = read_csv(path)?;
    let mut tasks: BTreeMap<String, BTreeMap<String, Curves>> = BTreeMap::new();
    for l in &lines {
        let key = if l.lr > 0.0 {
            format!("{}", l.lr)
        } else {
            format!("{}", l.seed)
        };
        tasks
            .entry(l.task.clone())
            .or_default()
            .entry(l.method.clone())
            .or_default()
            .entry(key)
            .or_default()
            .push(l.clone());
    }
    let marks = [5.0, 10.0, 20.0];
    for (task, methods) in &tasks {
        println!("\n### {task}\n");
        println!(
            "| method | test acc. 5 ep. | 10 ep. | 20 ep. | train loss 20 ep. | s / epoch | \
             steps | final batch |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        let mut plotted: Vec<(String, Curve)> = Vec::new();
        for (method, runs) in methods {
            let baseline = runs.values().next().is_some_and(|r| r[0].lr > 0.0);
            let mut cells = Vec::new();
            if baseline {
                // The best learning rate at each epoch count, in hindsight.
                for &e in &marks {
                    let best = runs
                        .iter()
                        .filter_map(|(lr, r)| at(r, e).map(|l| (l.test_acc, lr)))
                        .max_by(|a, b| a.0.total_cmp(&b.0));
                    cells.push(best.map_or("–".into(), |(a, lr)| {
                        format!("{:.2} (lr {lr})", 100.0 * a)
                    }));
                }
                let best_loss = runs
                    .iter()
                    .filter_map(|(lr, r)| at(r, 20.0).map(|l| (l.train_loss, lr)))
                    .filter(|l| l.0.is_finite())
                    .min_by(|a, b| a.0.total_cmp(&b.0));
                cells.push(best_loss.map_or("–".into(), |(l, lr)| format!("{l:.4} (lr {lr})")));
                // The run best at 20 epochs is the one plotted and timed.
                let best_run = runs
                    .values()
                    .filter(|r| at(r, 20.0).is_some())
                    .max_by(|a, b| {
                        let acc = |r: &Vec<Line>| at(r, 20.0).map_or(0.0, |l| l.test_acc);
                        acc(a).total_cmp(&acc(b))
                    });
                if let Some(r) = best_run {
                    let last = r.last().expect("non-empty");
                    cells.push(format!("{:.1}", last.seconds / last.epoch));
                    cells.push(last.steps.map_or("–".into(), |k| k.to_string()));
                    cells.push(last.batch.to_string());
                    plotted.push((
                        format!("{method} (lr {})", r[0].lr),
                        r.iter()
                            .filter(|l| l.status != "failed" && l.status != "diverged")
                            .map(|l| (l.epoch, l.test_acc, l.train_loss))
                            .collect(),
                    ));
                } else {
                    cells.extend(["–".into(), "–".into(), "–".into()]);
                }
            } else {
                let seeds = runs.len();
                for &e in &marks {
                    let acc: Vec<f64> = runs
                        .values()
                        .filter_map(|r| at(r, e))
                        .map(|l| l.test_acc)
                        .collect();
                    let (lo, hi) = acc
                        .iter()
                        .fold((f64::INFINITY, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
                    cells.push(median(acc.clone()).map_or("–".into(), |m| {
                        format!("{:.2} ({:.2}–{:.2})", 100.0 * m, 100.0 * lo, 100.0 * hi)
                    }));
                }
                let loss: Vec<f64> = runs
                    .values()
                    .filter_map(|r| at(r, 20.0))
                    .map(|l| l.train_loss)
                    .collect();
                cells.push(median(loss).map_or("–".into(), |m| format!("{m:.4}")));
                let per_epoch: Vec<f64> = runs
                    .values()
                    .filter_map(|r| r.iter().rfind(|l| l.status == "ok" || l.status == "final"))
                    .map(|l| l.seconds / l.epoch)
                    .collect();
                cells.push(median(per_epoch).map_or("–".into(), |m| format!("{m:.1}")));
                // Steps and final batch of each seed's last checkpoint (median, and range).
                let ends: Vec<&Line> = runs.values().filter_map(|r| last_good(r)).collect();
                let steps: Vec<f64> = ends
                    .iter()
                    .filter_map(|l| l.steps)
                    .map(|k| k as f64)
                    .collect();
                cells.push(median(steps).map_or("–".into(), |m| format!("{m:.0}")));
                let batches: Vec<usize> = ends.iter().map(|l| l.batch).collect();
                cells.push(match (batches.iter().min(), batches.iter().max()) {
                    (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
                    (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
                    _ => "–".into(),
                });
                let failed = runs
                    .values()
                    .flatten()
                    .filter(|l| l.status == "failed")
                    .count();
                let plural = if seeds == 1 { "" } else { "s" };
                let label = if failed > 0 {
                    format!("{method}, {seeds} seed{plural}, {failed} FAILED")
                } else {
                    format!("{method}, {seeds} seed{plural}")
                };
                // The median curve over seeds, checkpoint by checkpoint.
                let first = runs.values().next().expect("a run");
                let curve = first
                    .iter()
                    .filter(|l| l.status != "failed" && l.status != "diverged")
                    .filter_map(|l| {
                        let mark = CHECKPOINTS
                            .iter()
                            .copied()
                            .find(|&c| l.epoch < c + 0.9 && l.epoch >= c - 1.0)?;
                        let pts: Vec<&Line> = runs.values().filter_map(|r| at(r, mark)).collect();
                        Some((
                            mark,
                            median(pts.iter().map(|l| l.test_acc).collect())?,
                            median(pts.iter().map(|l| l.train_loss).collect())?,
                        ))
                    })
                    .collect();
                plotted.push((format!("{method} (median of {seeds})"), curve));
                println!("| {label} | {} |", cells.join(" | "));
                continue;
            }
            println!(
                "| {method}, best of {} rates | {} |",
                runs.len(),
                cells.join(" | ")
            );
        }
        targets(methods);
        if let Some(dir) = svg {
            std::fs::create_dir_all(dir)?;
            for (measure, log) in [("test_accuracy", false), ("train_loss", true)] {
                let series: Vec<(String, Vec<(f64, f64)>)> = plotted
                    .iter()
                    .map(|(name, pts)| {
                        let p = pts
                            .iter()
                            .map(|&(e, a, l)| (e, if log { l } else { 100.0 * a }))
                            .collect();
                        (name.clone(), p)
                    })
                    .collect();
                let file = Path::new(dir).join(format!("{task}_{measure}.svg"));
                let title = format!("{task}: {}", measure.replace('_', " "));
                plot(&file, &title, &series, log)?;
                println!("\n(wrote {})", file.display());
            }
        }
    }
    Ok(())
}
