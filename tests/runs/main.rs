//! How a run behaves: determinism, observers, budgets, stopping, the batches it draws and
//! grows, convergence to known optima, and seeded random problems and configurations.

#[path = "../common/mod.rs"]
mod common;

mod batches;
mod budgets;
mod convergence;
mod determinism;
mod observers;
mod properties;
mod stopping;
mod streams;
