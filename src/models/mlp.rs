//! A small multi-layer perceptron with a softmax output, for non-convex runs.

use ndarray::{Array1, Array2, ArrayRef1, ArrayView2, ArrayViewMut2, Axis, Zip, s};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::{batch_mean_loss, class_labels, merge_chunk, ridge_penalty};
use crate::data::{Dataset, Features};
use crate::error::{Error, Result, check};
use crate::float::Float;
use crate::objective::Objective;
use crate::parallel::{CHUNK, accumulate_chunks};
use crate::stats::GradStats;

/// The hidden layers' nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Activation {
    /// `tanh(z)`.
    Tanh,
    /// `max(0, z)`.
    Relu,
}

/// A multi-layer perceptron: one or two hidden layers, then a softmax over K classes.
///
/// ```text
/// a_0 = x_i,  a_l = act(W_l a_{l−1} + b_l),  logits = W_L a_{L−1} + b_L
/// f_i(w) = logsumexp(logits) − logits_{y_i} + (λ/2)‖w‖²        (biases regularized too)
/// ```
///
/// The parameter vector holds, layer by layer, `W_l` (row-major, `n_out × n_in`) then `b_l`.
/// The batched statistics never build a per-example gradient: for layer `l` the per-example
/// gradient is the outer product `δ_l ⊗ [a_{l−1}, 1]` of the back-propagated error and the
/// layer's input, so `‖∇f_i‖² = Σ_l ‖δ_l‖²(‖a_{l−1}‖² + 1)`, while the gradient sum comes from
/// matrix products over chunks of 256 samples.
///
/// # Example
/// ```
/// use bigbatch::{BigBatchSgd, data::datasets, models::{Activation, Mlp}};
///
/// let (train, test) = datasets::digits::<f64>().split(0.2, 0)?;
/// let net = Mlp::new(train, 10, &[32], Activation::Tanh, 1e-4)?;
/// let report = BigBatchSgd::builder().max_epochs(15.0).build()?.minimize(&net, net.initial_weights(1))?;
/// let test_net = Mlp::new(test, 10, &[32], Activation::Tanh, 1e-4)?;
/// assert!(test_net.accuracy(&report.w) > 0.85);
/// # Ok::<(), bigbatch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Mlp<F = f64> {
    features: Features<F>,
    labels: Vec<usize>,
    row_norms_sq: Array1<f64>,
    /// (n_in, n_out) of each layer, the output layer last.
    layers: Vec<(usize, usize)>,
    activation: Activation,
    lambda: F,
}

/// Where layer `l`'s weights and biases sit in the parameter vector.
fn offsets(layers: &[(usize, usize)]) -> Vec<usize> {
    let mut off = vec![0];
    for &(i, o) in layers {
        off.push(off.last().copied().unwrap_or(0) + o * (i + 1));
    }
    off
}

impl<F: Float> Mlp<F> {
    /// A network on `data` (targets are class ids `0..n_classes`) with the given hidden layer
    /// widths (one or two), activation and regularization `lambda ≥ 0`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `n_classes < 2`, no, more than two or zero-width hidden
    /// layers, or a bad `lambda`; [`Error::EmptyObjective`] for no samples or features;
    /// [`Error::InvalidData`] naming the first sample whose label is not a class id.
    pub fn new(
        data: Dataset<F>,
        n_classes: usize,
        hidden: &[usize],
        activation: Activation,
        lambda: f64,
    ) -> Result<Self> {
        check::non_negative("lambda", lambda)?;
        if hidden.is_empty() || hidden.len() > 2 || hidden.contains(&0) {
            return Err(Error::invalid(
                "hidden",
                format!("{hidden:?}"),
                "one or two layers, each at least 1 wide",
            ));
        }
        let labels = class_labels(&data, n_classes)?;
        let mut widths = vec![data.n_features()];
        widths.extend_from_slice(hidden);
        widths.push(n_classes);
        let layers = widths.windows(2).map(|w| (w[0], w[1])).collect();
        let features = data.features().clone();
        let row_norms_sq = features.row_norms_sq_wide();
        Ok(Mlp {
            features,
            labels,
            row_norms_sq,
            layers,
            activation,
            lambda: F::from_f64(lambda),
        })
    }

    /// Glorot-uniform weights (`U(±√(6/(n_in + n_out)))`) and zero biases, from `seed`.
    pub fn initial_weights(&self, seed: u64) -> Array1<F> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let off = offsets(&self.layers);
        let mut w = Array1::zeros(self.dim());
        for (l, &(n_in, n_out)) in self.layers.iter().enumerate() {
            let r = (6.0 / (n_in + n_out) as f64).sqrt();
            for v in w.slice_mut(s![off[l]..off[l] + n_in * n_out]).iter_mut() {
                *v = F::from_f64(r * (2.0 * rng.random::<f64>() - 1.0));
            }
        }
        w
    }

    /// The fraction of samples whose largest output is their label.
    ///
    /// # Panics
    /// If `w` does not have length `dim()`.
    pub fn accuracy(&self, w: &ArrayRef1<F>) -> f64 {
        let all: Vec<usize> = (0..self.labels.len()).collect();
        let mut right = 0;
        for chunk in all.chunks(CHUNK) {
            let acts = self.forward(w, chunk);
            let out = &acts[acts.len() - 1];
            for (r, &i) in chunk.iter().enumerate() {
                right += usize::from(super::argmax(out.row(r).iter().copied()) == self.labels[i]);
            }
        }
        right as f64 / self.labels.len() as f64
    }

    fn weights<'a>(
        &self,
        w: &'a ArrayRef1<F>,
        l: usize,
    ) -> (ArrayView2<'a, F>, ndarray::ArrayView1<'a, F>) {
        let off = offsets(&self.layers)[l];
        let (n_in, n_out) = self.layers[l];
        let mat = w.slice(s![off..off + n_in * n_out]);
        let mat = mat
            .into_shape_with_order((n_out, n_in))
            .expect("contiguous parameter slice");
        (
            mat,
            w.slice(s![off + n_in * n_out..off + n_out * (n_in + 1)]),
        )
    }

    /// The input rows of `rows` times `W_0ᵀ`, plus `b_0` (`m × n_out`).
    fn first_layer(
        &self,
        w0: &ArrayView2<'_, F>,
        b0: &ndarray::ArrayView1<'_, F>,
        rows: &[usize],
    ) -> Array2<F> {
        let mut z = match &self.features {
            Features::Dense(x) => x.select(Axis(0), rows).dot(&w0.t()),
            Features::Sparse(x) => {
                let mut z = Array2::zeros((rows.len(), w0.nrows()));
                for (r, &i) in rows.iter().enumerate() {
                    let (cols, vals) = x.row(i);
                    let mut zr = z.row_mut(r);
                    for (&c, &v) in cols.iter().zip(vals) {
                        zr.scaled_add(v, &w0.column(c));
                    }
                }
                z
            }
        };
        z += b0;
        z
    }

    /// Pre-activations of the hidden layers and the output logits, for `rows`: element `l`
    /// is `z_l` (`m × n_out_l`), the last are the logits.
    fn forward(&self, w: &ArrayRef1<F>, rows: &[usize]) -> Vec<Array2<F>> {
        let (w0, b0) = self.weights(w, 0);
        let mut zs = vec![self.first_layer(&w0, &b0, rows)];
        for l in 1..self.layers.len() {
            let a = self.activate(&zs[l - 1]);
            let (wl, bl) = self.weights(w, l);
            let mut z = a.dot(&wl.t());
            z += &bl;
            zs.push(z);
        }
        zs
    }

    fn activate(&self, z: &Array2<F>) -> Array2<F> {
        match self.activation {
            Activation::Tanh => z.mapv(|v| v.tanh()),
            Activation::Relu => z.mapv(|v| v.max(F::zero())),
        }
    }

    /// Turns the logits of `rows` into the output error `δ_L = p − e_y` in place; returns the
    /// loss sum.
    fn output_error(&self, logits: &mut Array2<F>, rows: &[usize]) -> f64 {
        let mut loss = 0.0;
        for (r, &i) in rows.iter().enumerate() {
            let mut row = logits.row_mut(r);
            let max = row.iter().fold(F::neg_infinity(), |a, &v| a.max(v));
            let lse = max + row.iter().map(|&v| (v - max).exp()).sum::<F>().ln();
            let y = self.labels[i];
            loss += (lse - row[y]).as_f64();
            row.mapv_inplace(|v| (v - lse).exp());
            row[y] -= F::one();
        }
        loss
    }

    /// The loss sum over `rows`: the forward pass only.
    fn forward_loss(&self, w: &ArrayRef1<F>, rows: &[usize]) -> f64 {
        let mut zs = self.forward(w, rows);
        let logits = zs.last_mut().expect("at least one layer");
        self.output_error(logits, rows)
    }

    /// Loss sum, `Σ‖∇f_i − λw‖²` and (if asked) the data part of the gradient sum over `rows`,
    /// added to `grad_sum`; sums and norms in `f64`.
    fn forward_backward(
        &self,
        w: &ArrayRef1<F>,
        rows: &[usize],
        mut grad_sum: Option<&mut ArrayRef1<f64>>,
    ) -> (f64, f64) {
        let zs = self.forward(w, rows);
        let n_layers = self.layers.len();
        let m = rows.len();
        // Output: δ_L = p − e_y, and the loss.
        let mut delta = zs[n_layers - 1].clone();
        let loss = self.output_error(&mut delta, rows);
        let mut sq_per_row = Array1::<f64>::zeros(m);
        let off = offsets(&self.layers);
        for l in (0..n_layers).rev() {
            let (n_in, n_out) = self.layers[l];
            let delta_sq = delta.map_axis(Axis(1), |r| F::wide_dot(&r, &r));
            // The layer's input a_{l−1} (the data rows for the first layer).
            let input = (l > 0).then(|| self.activate(&zs[l - 1]));
            let input_sq: Array1<f64> = match &input {
                Some(a) => a.map_axis(Axis(1), |r| F::wide_dot(&r, &r)),
                None => rows.iter().map(|&i| self.row_norms_sq[i]).collect(),
            };
            Zip::from(&mut sq_per_row)
                .and(&delta_sq)
                .and(&input_sq)
                .for_each(|s, &d, &a| *s += d * (a + 1.0));
            if let Some(g) = grad_sum.as_deref_mut() {
                let mut gw: ArrayViewMut2<'_, f64> = g
                    .slice_mut(s![off[l]..off[l] + n_in * n_out])
                    .into_shape_with_order((n_out, n_in))
                    .expect("contiguous gradient slice");
                let delta_t = F::widen2(delta.t());
                match &input {
                    Some(a) => gw += &delta_t.dot(&F::widen2(a.view())),
                    None => self.add_first_layer(rows, &delta, &delta_t.view(), &mut gw),
                }
                let mut gb = g.slice_mut(s![off[l] + n_in * n_out..off[l + 1]]);
                gb += &F::widen2(delta.view()).sum_axis(Axis(0));
            }
            if l > 0 {
                delta = self.back(w, l, &delta, &zs[l - 1]);
            }
        }
        (loss, sq_per_row.sum())
    }

    /// `δ_{l−1} = (δ_l W_l) ⊙ act'(z_{l−1})`.
    fn back(&self, w: &ArrayRef1<F>, l: usize, delta: &Array2<F>, z_prev: &Array2<F>) -> Array2<F> {
        let (wl, _) = self.weights(w, l);
        let mut back = delta.dot(&wl);
        match self.activation {
            Activation::Tanh => Zip::from(&mut back).and(z_prev).for_each(|b, &z| {
                let t = z.tanh();
                *b *= F::one() - t * t;
            }),
            Activation::Relu => Zip::from(&mut back).and(z_prev).for_each(|b, &z| {
                if z <= F::zero() {
                    *b = F::zero();
                }
            }),
        }
        back
    }

    /// Adds `δᵀ X_B` of the first layer, whose input is the data rows, to `gw`.
    fn add_first_layer(
        &self,
        rows: &[usize],
        delta: &Array2<F>,
        delta_t: &ndarray::ArrayView2<'_, f64>,
        gw: &mut ArrayViewMut2<'_, f64>,
    ) {
        match &self.features {
            Features::Dense(x) => {
                let x = x.select(Axis(0), rows);
                *gw += &delta_t.dot(&F::widen2(x.view()));
            }
            Features::Sparse(x) => {
                for (r, &i) in rows.iter().enumerate() {
                    let (cols, vals) = x.row(i);
                    let d = delta.row(r);
                    for (&c, &v) in cols.iter().zip(vals) {
                        let v = v.as_f64();
                        Zip::from(gw.column_mut(c))
                            .and(&d)
                            .for_each(|g, &e| *g += v * e.as_f64());
                    }
                }
            }
        }
    }
}

impl<F: Float> Objective<F> for Mlp<F> {
    fn n_samples(&self) -> usize {
        self.labels.len()
    }

    fn dim(&self) -> usize {
        offsets(&self.layers).last().copied().unwrap_or(0)
    }

    fn sample_loss(&self, w: &ArrayRef1<F>, i: usize) -> F {
        F::from_f64(self.forward_loss(w, &[i])) + ridge_penalty(self.lambda, w)
    }

    fn sample_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) {
        self.sample_loss_gradient(w, i, grad);
    }

    fn sample_loss_gradient(&self, w: &ArrayRef1<F>, i: usize, grad: &mut ArrayRef1<F>) -> F {
        let mut data = Array1::<f64>::zeros(w.len());
        let (loss, _) = self.forward_backward(w, &[i], Some(&mut data));
        Zip::from(&mut *grad)
            .and(w)
            .and(&data)
            .for_each(|g, &w, &d| *g = self.lambda * w + F::from_f64(d));
        F::from_f64(loss) + ridge_penalty(self.lambda, w)
    }

    /// The forward pass only, summed in `f64` chunk by chunk exactly as
    /// [`batch_gradient`](Self::batch_gradient) sums the losses it reports.
    fn batch_loss(&self, w: &ArrayRef1<F>, batch: &[usize]) -> F {
        batch_mean_loss(batch, w, self.lambda, |chunk| self.forward_loss(w, chunk))
    }

    /// Forward and backward passes over chunks of 256 samples; per-example gradient norms from
    /// activations and back-propagated errors (see the type's docs), sums in `f64`; chunks in
    /// parallel with the `rayon` feature ([`parallel`](crate::parallel)).
    fn batch_gradient(&self, w: &ArrayRef1<F>, batch: &[usize], stats: &mut GradStats<F>) {
        accumulate_chunks(batch, stats, |chunk, part| {
            let mut sum = Array1::<f64>::zeros(w.len());
            let (loss, sq) = self.forward_backward(w, chunk, Some(&mut sum));
            merge_chunk(part, chunk.len(), &mut sum, sq, loss, self.lambda, w);
        });
    }
}
