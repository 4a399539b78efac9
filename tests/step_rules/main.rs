//! Step rules: each against an independent f64 recomputation, convergence of the adaptive
//! rules and L-BFGS, and a complete rule written from outside the crate.

#[path = "../common/mod.rs"]
mod common;

mod adaptive;
mod against_references;
mod lbfgs;
mod newton;
mod written_outside;
