//! Where an epoch's time goes: one epoch of batches of 32 (one seeded order) through each part
//! of an evaluation, against Candle's own training loop (AdamW) on the same batches, in one
//! process. Run with `RAYON_NUM_THREADS=1`, as the comparison.

use std::ops::ControlFlow;
use std::time::Instant;

use bigbatch::observe::from_fn;
use bigbatch::{BigBatchSgd, GradStats, IterView, Objective};
use bigbatch_candle::init::initialize;
use bigbatch_candle::{CandleModel, NETWORK_GROUPS};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, VarBuilder, VarMap, loss};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::net::Net;
use crate::{BATCH, Res, Task};

/// The batches of one epoch, in a seeded order.
fn batches(n: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(17);
    for j in 0..n - 1 {
        order.swap(j, rng.random_range(j..n));
    }
    order.chunks(BATCH).map(<[usize]>::to_vec).collect()
}

/// Seconds for `f` over every batch, best of `reps` epochs.
fn epoch(reps: usize, batches: &[Vec<usize>], mut f: impl FnMut(&[usize]) -> Res<()>) -> Res<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        for b in batches {
            f(b)?;
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// Prints the table of one task.
pub fn timing(task: &Task, reps: usize) -> Res<()> {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let net = Net::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), task.cnn)?;
    initialize(&varmap, 0)?;
    let loss_of = |idx: &Tensor| -> candle_core::Result<Tensor> {
        let logits = net.forward(&task.x.index_select(idx, 0)?)?;
        loss::cross_entropy(&logits, &task.y.index_select(idx, 0)?)
    };
    let idx = |b: &[usize]| -> candle_core::Result<Tensor> {
        let v: Vec<u32> = b.iter().map(|&i| i as u32).collect();
        Tensor::from_vec(v, b.len(), &dev)
    };
    let bs = batches(task.n());
    let w0 = CandleModel::from_varmap(&varmap, task.n(), loss_of)?.parameters()?;
    let reset = |model: &CandleModel<_>| model.set_parameters(&w0);

    let mut opt = candle_nn::AdamW::new(
        varmap.all_vars(),
        candle_nn::ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let model = CandleModel::from_varmap(&varmap, task.n(), loss_of)?;
    reset(&model)?;
    let one = model.one_pass(net.tape())?;
    let w = one.model().parameters()?;
    let micro =
        CandleModel::from_varmap(&varmap, task.n(), loss_of)?.micro_batched(NETWORK_GROUPS)?;
    let mut stats = GradStats::<f32>::new(one.dim());
    // Until the observer sees the first epoch done (the run's final full evaluation excluded).
    let preset = |o: &dyn Objective<f32>| -> Res<f64> {
        let t = Instant::now();
        let mut seconds = f64::NAN;
        let mut observer = from_fn(|v: &IterView<'_, f32>| {
            if v.record.epochs >= 1.0 {
                seconds = t.elapsed().as_secs_f64();
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        BigBatchSgd::network()
            .max_epochs(2.0)
            .build()?
            .minimize_with(o, w0.clone(), &mut observer)?;
        Ok(seconds)
    };
    // Every part once per round, best of the rounds: a slow spell of the machine costs one
    // round of every part, not every round of one part.
    let mut best = [f64::INFINITY; 8];
    for _ in 0..reps {
        let times = [
            epoch(1, &bs, |b| {
                loss_of(&idx(b)?)?;
                Ok(())
            })?,
            epoch(1, &bs, |b| {
                loss_of(&idx(b)?)?.backward()?;
                Ok(())
            })?,
            epoch(1, &bs, |b| Ok(opt.backward_step(&loss_of(&idx(b)?)?)?))?,
            epoch(1, &bs, |b| {
                one.per_sample_sq_norms(&w, b)?;
                Ok(())
            })?,
            epoch(1, &bs, |b| {
                stats.reset();
                one.batch_gradient(&w, b, &mut stats);
                Ok(())
            })?,
            epoch(1, &bs, |b| {
                stats.reset();
                micro.batch_gradient(&w, b, &mut stats);
                Ok(())
            })?,
            preset(&one)?,
            preset(&micro)?,
        ];
        for (b, t) in best.iter_mut().zip(times) {
            *b = b.min(t);
        }
    }
    let [
        fwd,
        fwd_bwd,
        adamw,
        norms,
        stats_one,
        stats_micro,
        preset_one,
        preset_micro,
    ] = best;

    println!(
        "\n{}: {} images, batches of {BATCH}, best of {reps} epochs (seconds per epoch)\n",
        task.name,
        task.n()
    );
    println!("| pass | s/epoch | vs forward+backward | vs AdamW |");
    println!("|---|---:|---:|---:|");
    let row = |what: &str, s: f64| {
        println!(
            "| {what} | {s:.3} | {:.2}x | {:.2}x |",
            s / fwd_bwd,
            s / adamw
        );
    };
    row("forward (loss only)", fwd);
    row("forward + backward", fwd_bwd);
    row("Candle AdamW step (forward + backward + update)", adamw);
    row("one pass: forward + backward + per-sample norms", norms);
    row(
        "one pass: batch statistics (norms, gradient copy, merge)",
        stats_one,
    );
    row("micro-batches (8 groups): batch statistics", stats_micro);
    row(
        "network preset, one pass: one epoch of minimize",
        preset_one,
    );
    row(
        "network preset, 8 micro-batches: one epoch of minimize",
        preset_micro,
    );
    println!(
        "\nparts of the one-pass epoch: forward {:.0} %, backward {:.0} %, probes and norms \
         {:.0} %, gradient copy and merge {:.0} %, the optimizer's loop {:.0} %",
        100.0 * fwd / preset_one,
        100.0 * (fwd_bwd - fwd) / preset_one,
        100.0 * (norms - fwd_bwd) / preset_one,
        100.0 * (stats_one - norms) / preset_one,
        100.0 * (preset_one - stats_one) / preset_one,
    );
    Ok(())
}
