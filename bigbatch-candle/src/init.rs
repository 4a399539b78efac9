//! Seeded initialization of a network's variables.
//!
//! Candle's CPU generator cannot be seeded (`Device::Cpu.set_seed` fails), so the weights
//! Candle's layers draw when they are built differ from run to run. [`initialize`] redraws
//! them from a seed, which makes a run repeatable bit for bit.

use candle_core::{Tensor, Var};
use candle_nn::VarMap;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::Error;

/// The variables of `varmap` with their names, sorted by name.
pub(crate) fn sorted_vars(varmap: &VarMap) -> Result<Vec<(String, Var)>, Error> {
    let mut named: Vec<(String, Var)> = varmap
        .data()
        .lock()
        .map_err(|_| Error::Model("the VarMap's lock is poisoned".into()))?
        .iter()
        .map(|(name, var)| (name.clone(), var.clone()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(named)
}

/// Draws every variable of `varmap` uniformly in `±1/√fan_in` (the usual default of dense and
/// convolutional layers), from `seed`, in the order of the variables' names: the same seed
/// gives the same network, bit for bit.
///
/// A variable `LAYER.NAME` takes the fan-in of its layer's weight `LAYER.weight` (the names
/// Candle's layers give): the weight's element count over its first dimension (`in` of a dense
/// `(out, in)` weight, `c·kh·kw` of a convolution's `(oc, c, kh, kw)` kernel). Values are drawn
/// in `f32` and converted to the variable's type.
///
/// # Example
/// ```
/// use bigbatch_candle::init::initialize;
/// use candle_core::{DType, Device};
/// use candle_nn::{VarBuilder, VarMap, linear};
///
/// let (a, b) = (VarMap::new(), VarMap::new());
/// let la = linear(3, 2, VarBuilder::from_varmap(&a, DType::F32, &Device::Cpu).pp("fc"))?;
/// let lb = linear(3, 2, VarBuilder::from_varmap(&b, DType::F32, &Device::Cpu).pp("fc"))?;
/// initialize(&a, 7)?;
/// initialize(&b, 7)?;
/// let (wa, wb) = (la.weight().to_vec2::<f32>()?, lb.weight().to_vec2::<f32>()?);
/// assert_eq!(wa, wb);
/// assert!(wa.iter().flatten().all(|w| w.abs() <= 1.0 / 3f32.sqrt()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Model`] if a variable's layer has no weight to take a fan-in from;
/// [`Error::Candle`] if a variable cannot be written.
pub fn initialize(varmap: &VarMap, seed: u64) -> Result<(), Error> {
    let vars = sorted_vars(varmap)?;
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    for (name, var) in &vars {
        let layer = name.rsplit_once('.').map_or("", |(l, _)| l);
        let weight_name = if layer.is_empty() {
            "weight".to_string()
        } else {
            format!("{layer}.weight")
        };
        let weight = vars
            .iter()
            .find(|(n, _)| *n == weight_name)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                Error::Model(format!(
                    "variable {name}: no weight {weight_name} to take its fan-in from"
                ))
            })?;
        let fan_in = weight.elem_count() / weight.dims().first().copied().unwrap_or(1).max(1);
        let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let t = Tensor::from_vec(values, var.shape(), var.device())?.to_dtype(var.dtype())?;
        var.set(&t)?;
    }
    Ok(())
}
