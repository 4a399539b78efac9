//! Training runs: the big-batch methods through `minimize`, the baselines through Candle's
//! optimizers, each writing its checkpoints to the CSV.

use super::*;

/// One line of results.
pub(crate) struct Row {
    pub(crate) epoch: f64,
    pub(crate) test_acc: f64,
    pub(crate) train_loss: f64,
    pub(crate) seconds: f64,
    pub(crate) batch: usize,
    /// Steps taken so far.
    pub(crate) steps: usize,
}

/// The CSV writer: one line per checkpoint of a run.
pub(crate) struct Out {
    pub(crate) file: File,
}

impl Out {
    const HEADER: &str = "task,method,lr,seed,epoch,test_acc,train_loss,seconds,batch,status,steps";

    pub(crate) fn open(path: &str) -> Res<Out> {
        let fresh = !Path::new(path).exists();
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        if fresh {
            writeln!(file, "{}", Self::HEADER)?;
        }
        Ok(Out { file })
    }

    pub(crate) fn write(&mut self, run: &Run, row: &Row, status: &str) -> Res<()> {
        writeln!(
            self.file,
            "{},{},{},{},{:.4},{:.6},{:.6},{:.3},{},{status},{}",
            run.task,
            run.method,
            run.lr,
            run.seed,
            row.epoch,
            row.test_acc,
            row.train_loss,
            row.seconds,
            row.batch,
            row.steps
        )?;
        self.file.flush()?;
        Ok(())
    }
}

/// What a run is.
pub(crate) struct Run {
    pub(crate) task: &'static str,
    pub(crate) method: String,
    pub(crate) lr: f64,
    pub(crate) seed: u64,
}

/// How a big batch is evaluated: one pass with per-sample norms, or micro-batches.
#[derive(Clone, Copy)]
pub(crate) enum Eval {
    OnePass,
    Groups(Groups),
}

pub(crate) fn big_batch<S: StepRule>(
    builder: BigBatchSgdBuilder<S>,
    eval: Eval,
    task: &Task,
    run: &Run,
    epochs: f64,
    out: &mut Out,
) -> Res<()> {
    let varmap = VarMap::new();
    let net = Net::new(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        task.cnn,
    )?;
    initialize(&varmap, run.seed)?;
    let model = CandleModel::from_varmap(&varmap, task.n(), |idx: &Tensor| {
        let logits = net.forward(&task.x.index_select(idx, 0)?)?;
        loss::cross_entropy(&logits, &task.y.index_select(idx, 0)?)
    })?;
    match eval {
        Eval::OnePass => {
            let objective = model.one_pass(net.tape())?;
            train(
                builder,
                &objective,
                objective.model(),
                &net,
                task,
                run,
                epochs,
                out,
            )
        }
        Eval::Groups(g) => {
            let objective = model.micro_batched(g)?;
            train(
                builder,
                &objective,
                objective.model(),
                &net,
                task,
                run,
                epochs,
                out,
            )
        }
    }
}

/// One big-batch run of `objective`, whose variables `model` holds, with the checkpoints'
/// measurements written to `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train<
    S: StepRule,
    O: Objective<f32>,
    L: Fn(&Tensor) -> candle_core::Result<Tensor>,
>(
    builder: BigBatchSgdBuilder<S>,
    objective: &O,
    model: &CandleModel<L>,
    net: &Net,
    task: &Task,
    run: &Run,
    epochs: f64,
    out: &mut Out,
) -> Res<()> {
    let w0 = model.parameters()?;
    let start = Instant::now();
    let mut evaluating = 0.0;
    let mut next = 0;
    let mut failure: Option<String> = None;
    let trace = std::env::var_os("NETWORKS_TRACE").is_some();
    let mut observer = from_fn(|v: &IterView<'_, f32>| {
        if trace {
            println!("{:?}", v.record);
        }
        while next < CHECKPOINTS.len() && v.record.epochs >= CHECKPOINTS[next] {
            let seconds = start.elapsed().as_secs_f64() - evaluating;
            let t = Instant::now();
            let measured = (|| -> Res<(f64, f64)> {
                // The point the run would return: the average of the iterates if it keeps one.
                let point = v.average.unwrap_or(v.w);
                let (test, train) = model.at(point, || -> candle_core::Result<_> {
                    Ok((
                        net.measure(&task.test.0, &task.test.1)?,
                        net.measure(&task.x, &task.y)?,
                    ))
                })??;
                Ok((test.0, train.1))
            })()
            .map_err(|e| e.to_string());
            evaluating += t.elapsed().as_secs_f64();
            let row = match measured {
                Ok((test_acc, train_loss)) => Row {
                    epoch: v.record.epochs,
                    test_acc,
                    train_loss,
                    seconds,
                    batch: v.record.batch_size,
                    steps: v.record.iteration + 1,
                },
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            };
            if let Err(e) = out.write(run, &row, "ok") {
                failure = Some(e.to_string());
                return ControlFlow::Break(());
            }
            println!(
                "  {} {} seed {} epoch {:.2}: test {:.2} %, train loss {:.4}, batch {}, {:.1} s",
                run.task,
                run.method,
                run.seed,
                row.epoch,
                100.0 * row.test_acc,
                row.train_loss,
                row.batch,
                row.seconds
            );
            next += 1;
        }
        ControlFlow::Continue(())
    });
    let result = builder
        .max_epochs(epochs)
        .seed(run.seed)
        .build()?
        .minimize_with(objective, w0, &mut observer);
    if let Some(e) = failure {
        return Err(e.into());
    }
    match result {
        Ok(report) => {
            println!("  {}: {report}", run.method);
            // The final iterate, when the budget ran out a little short of the last checkpoint.
            if next < CHECKPOINTS.len() && report.epochs > CHECKPOINTS[next] - 1.0 {
                model.set_parameters(&report.w)?;
                let (test_acc, _) = net.measure(&task.test.0, &task.test.1)?;
                let (_, train_loss) = net.measure(&task.x, &task.y)?;
                let row = Row {
                    epoch: report.epochs,
                    test_acc,
                    train_loss,
                    seconds: start.elapsed().as_secs_f64() - evaluating,
                    batch: report.batch_size,
                    steps: report.iterations,
                };
                out.write(run, &row, "final")?;
            }
        }
        Err(e) => {
            println!("  {}: FAILED: {e}", run.method);
            let row = Row {
                epoch: f64::NAN,
                test_acc: f64::NAN,
                train_loss: f64::NAN,
                seconds: start.elapsed().as_secs_f64() - evaluating,
                batch: 0,
                steps: 0,
            };
            out.write(run, &row, "failed")?;
        }
    }
    Ok(())
}

/// Adadelta on Candle variables (Zeiler 2012, as in common frameworks: the accumulated steps
/// are taken before the learning rate).
pub(crate) struct CandleAdadelta {
    pub(crate) vars: Vec<Var>,
    pub(crate) g2: Vec<Tensor>,
    pub(crate) dx2: Vec<Tensor>,
    pub(crate) lr: f64,
}

impl CandleAdadelta {
    const RHO: f64 = 0.9;
    const EPS: f64 = 1e-6;

    pub(crate) fn new(vars: Vec<Var>, lr: f64) -> candle_core::Result<Self> {
        let zeros = |v: &Var| v.zeros_like();
        let g2 = vars.iter().map(zeros).collect::<candle_core::Result<_>>()?;
        let dx2 = vars.iter().map(zeros).collect::<candle_core::Result<_>>()?;
        Ok(CandleAdadelta { vars, g2, dx2, lr })
    }

    pub(crate) fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        let (rho, eps) = (Self::RHO, Self::EPS);
        for (k, var) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            self.g2[k] = ((&self.g2[k] * rho)? + (g.sqr()? * (1.0 - rho))?)?;
            let d = ((&self.dx2[k] + eps)?.sqrt()? / (&self.g2[k] + eps)?.sqrt()?)?.mul(g)?;
            self.dx2[k] = ((&self.dx2[k] * rho)? + (d.sqr()? * (1.0 - rho))?)?;
            var.set(&var.as_tensor().sub(&(d * self.lr)?)?)?;
        }
        Ok(())
    }
}

pub(crate) fn baseline(task: &Task, run: &Run, epochs: f64, out: &mut Out) -> Res<()> {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let net = Net::new(VarBuilder::from_varmap(&varmap, DType::F32, &dev), task.cnn)?;
    initialize(&varmap, run.seed)?;
    let vars = varmap.all_vars();
    let kind = run.method.as_str();
    let mut sgd = candle_nn::SGD::new(vars.clone(), run.lr)?;
    let mut adam = candle_nn::AdamW::new(
        vars.clone(),
        candle_nn::ParamsAdamW {
            lr: run.lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut adadelta = CandleAdadelta::new(vars.clone(), run.lr)?;
    let mut sf = ScheduleFreeAdamW::new(vars, run.lr)?;
    let n = task.n();
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(run.seed ^ 0x5eed);
    let (mut seconds, mut next) = (0.0, 0);
    for epoch in 1..=epochs.ceil() as usize {
        let t = Instant::now();
        for j in 0..n - 1 {
            order.swap(j, rng.random_range(j..n));
        }
        for chunk in order.chunks(BATCH) {
            let idx = Tensor::from_slice(chunk, chunk.len(), &dev)?;
            let logits = net.forward(&task.x.index_select(&idx, 0)?)?;
            let l = loss::cross_entropy(&logits, &task.y.index_select(&idx, 0)?)?;
            match kind {
                "sgd" => sgd.backward_step(&l)?,
                "adam" => adam.backward_step(&l)?,
                "sfadamw" => sf.backward_step(&l)?,
                _ => adadelta.backward_step(&l)?,
            }
        }
        seconds += t.elapsed().as_secs_f64();
        if next < CHECKPOINTS.len() && epoch as f64 >= CHECKPOINTS[next] {
            next += 1;
            let measure = || -> candle_core::Result<_> {
                Ok((
                    net.measure(&task.test.0, &task.test.1)?.0,
                    net.measure(&task.x, &task.y)?.1,
                ))
            };
            // Schedule-Free is evaluated at its average.
            let (test_acc, train_loss) = if kind == "sfadamw" {
                sf.at_average(measure)?
            } else {
                measure()?
            };
            let row = Row {
                epoch: epoch as f64,
                test_acc,
                train_loss,
                seconds,
                batch: BATCH,
                steps: epoch * n.div_ceil(BATCH),
            };
            let diverged = !train_loss.is_finite();
            out.write(run, &row, if diverged { "diverged" } else { "ok" })?;
            println!(
                "  {} {}:{} epoch {epoch}: test {:.2} %, train loss {:.4}, {:.1} s",
                run.task,
                kind,
                run.lr,
                100.0 * test_acc,
                train_loss,
                seconds
            );
            if diverged {
                break;
            }
        }
    }
    Ok(())
}
