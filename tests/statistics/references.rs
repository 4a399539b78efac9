//! The slow references the other tests rely on are themselves right.
use crate::common::*;

#[test]
fn references_agree() {
    let a = ndarray::array![[2.0, 1.0], [1.0, 2.0]];
    let mut e = jacobi_eigenvalues(&a);
    e.sort_by(f64::total_cmp);
    assert!((e[0] - 1.0).abs() < 1e-12 && (e[1] - 3.0).abs() < 1e-12);
    let p = ridge::<f64>(1, 200, 4, 0.3, 0.1);
    let w = p.optimum();
    let g = p.grad64(w.as_slice().unwrap(), &p.all());
    assert!(g.iter().all(|x| x.abs() < 1e-12), "{g}");
    let (mu, l) = p.curvature_bounds();
    assert!(mu > 0.1 && l > mu);
    let m = col_means(&ndarray::Array2::from_elem((3, 2), 1.5));
    assert!(m.iter().all(|&x| (x - 1.5).abs() < 1e-15));
}
