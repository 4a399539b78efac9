#!/usr/bin/env python3
"""Whole runs against scikit-learn, back to back on the same machine, data and problem.

    pip install scikit-learn          # numpy and scipy come with it
    python3 benches/scikit_learn.py [--data FILE --features D] [--lambda L] [--threads T]
    python3 benches/scikit_learn.py --data ../shared/data/adult.svm.gz --features 123

L2-regularized logistic regression, (1/N) sum log(1 + exp(-y_i x_i.w)) + (lambda/2)|w|^2, on
f64 rows with a bias column appended (regularized like the other weights; scikit-learn gets the
same column and fit_intercept=False, and C = 1/(lambda N) gives it the same minimizer). Rows
are dense for both libraries where at least a quarter of the values are non-zero (the crate's
load_libsvm makes the same choice), sparse (CSR) otherwise. Default data: fashion-mnist-tops
from ../shared/data, lambda = 1e-4.

1. f*: the lowest of scikit-learn's lbfgs at tol=1e-10, the crate's full-batch L-BFGS
   reference (examples/time_to_gap --reference-only) and every run below; gaps under 1e-14
   (the rounding of the objective) are reported as 1e-14.
2. scikit-learn: LogisticRegression with every solver (lbfgs, newton-cg, newton-cholesky,
   liblinear, sag, saga) at its default tol (1e-4), lbfgs again at tol=1e-6 and
   newton-cholesky at tol=1e-8; SGDClassifier(loss="log_loss", alpha=lambda, 20 epochs); the time of fit() and the
   relative suboptimality (f - f*)/f* it reaches.
3. The crate (examples/time_to_gap): the time its default optimizer takes to reach each of
   those suboptimalities, in f64 and in f32, and the time of the BigBatchSgd::newton preset
   (L-BFGS, then Newton-CG once the batch is whole) in f64; the optimizer's time only.

Both libraries get the same number of threads (numpy's BLAS through OPENBLAS_NUM_THREADS and
OMP_NUM_THREADS, the crate through RAYON_NUM_THREADS). Loading is timed separately.
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# Every solver of LogisticRegression for an L2 penalty, at its default tolerance (1e-4), and
# the two that reach the tightest gaps again at a tight one.
SOLVERS = (("lbfgs", 1e-4), ("lbfgs", 1e-6), ("newton-cg", 1e-4), ("newton-cholesky", 1e-4),
           ("newton-cholesky", 1e-8), ("liblinear", 1e-4), ("sag", 1e-4), ("saga", 1e-4))


GAP_FLOOR = 1e-14


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data",
                                                  "fashion-mnist-tops.train.svm.gz"))
    p.add_argument("--features", type=int, default=784)
    p.add_argument("--lambda", dest="lam", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sgd-epochs", type=int, default=20)
    return p.parse_args()


def crate(args, extra):
    """Runs examples/time_to_gap with `extra` arguments; returns its output lines as dicts."""
    cmd = ["cargo", "run", "--quiet", "--release", "--example", "time_to_gap", "--",
           "--data", args.data, "--features", str(args.features), "--lambda", str(args.lam)]
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd + extra, cwd=ROOT, env=env, check=True, capture_output=True,
                         text=True).stdout
    return [line.split() for line in out.splitlines()]


def main():
    args = parse()
    if not os.path.exists(args.data):
        sys.exit(f"{args.data} is missing: pass --data FILE --features D (a LIBSVM file of "
                 "binary labels), or put the shared data sets beside the checkout")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np  # after the thread settings
    import sklearn
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    t = time.perf_counter()
    import scipy.sparse as sp
    x, y = load_svmlight_file(args.data, n_features=args.features)
    density = x.nnz / (x.shape[0] * x.shape[1])
    dense = density >= 0.25
    if dense:
        x = np.hstack([x.toarray(), np.ones((x.shape[0], 1))])
    else:
        x = sp.hstack([x, np.ones((x.shape[0], 1))], format="csr")
    load_sklearn = time.perf_counter() - t
    y = np.where(y > 0, 1.0, -1.0)
    n = x.shape[0]

    def objective(w):
        return float(np.mean(np.logaddexp(0.0, -y * (x @ w))) + 0.5 * args.lam * w @ w)

    def fit(solver, tol, max_iter=100_000):
        model = LogisticRegression(solver=solver, fit_intercept=False, C=1.0 / (args.lam * n),
                                   tol=tol, max_iter=max_iter)
        t = time.perf_counter()
        model.fit(x, y)
        return time.perf_counter() - t, objective(model.coef_.ravel())

    def lbfgs(tol):
        return fit("lbfgs", tol)

    storage = "dense" if dense else f"sparse ({100 * density:.1f} % non-zero)"
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}; {n} x {x.shape[1]} "
          f"{storage} f64, lambda {args.lam}, {args.threads} threads each", flush=True)
    _, f_tight = lbfgs(1e-10)
    ref = crate(args, ["--reference-only"])
    f_crate = float(next(r[1] for r in ref if r[0] == "fstar"))
    finals = []
    for solver, tol in SOLVERS:
        seconds, f = fit(solver, tol)
        finals.append((f"LogisticRegression({solver}), tol={tol:g}", seconds, f))
    sgd = SGDClassifier(loss="log_loss", alpha=args.lam, fit_intercept=False,
                        max_iter=args.sgd_epochs, tol=None, random_state=0)
    t = time.perf_counter()
    sgd.fit(x, y)
    finals.append((f"SGDClassifier(log_loss), {args.sgd_epochs} epochs",
                   time.perf_counter() - t, objective(sgd.coef_.ravel())))
    # f* is the lowest objective any run found; a gap below GAP_FLOOR (the rounding of an f of
    # this size summed over the rows) is reported as GAP_FLOOR.
    fstar = min([f_tight, f_crate] + [f for _, _, f in finals])
    print(f"f* = {fstar:.12e} (scikit-learn tol=1e-10: {f_tight:.12e}, crate reference: "
          f"{f_crate:.12e}; the lowest of every run)", flush=True)
    rows = [(name, seconds, max((f - fstar) / fstar, GAP_FLOOR)) for name, seconds, f in finals]

    gaps = ",".join(f"{gap:.6e}" for _, _, gap in rows)
    results = {}
    runs = (("f64", []), ("newton", ["--step", "tail"]), ("f32", ["--f32"]))
    for label, extra in runs:
        out = crate(args, ["--fstar", repr(fstar), "--gaps", gaps] + extra)
        results[label] = [r for r in out if r[0] == "gap"]
        load_crate = next(float(r[1]) for r in out if r[0] == "load_seconds")
        if label == "f64":
            load_crate_f64 = load_crate

    print()
    print("| scikit-learn | its time | gap reached | crate f64: time to that gap (epochs) "
          "| ratio | newton preset, f64 (epochs) | ratio | crate f32 (epochs) | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, (name, seconds, gap) in enumerate(rows):
        cells = []
        for precision, _ in runs:
            r = results[precision][i]
            if r[3] == "none":
                cells += ["not reached", "–"]
            else:
                t = float(r[3])
                cells += [f"{t:.2f} s ({float(r[5]):.0f})", f"{t / seconds:.2f}×"]
        print(f"| {name} | {seconds:.2f} s | {gap:.1e} | " + " | ".join(cells) + " |")
    print()
    print(f"loading: scikit-learn load_svmlight_file (+ bias column) {load_sklearn:.2f} s, "
          f"crate load_libsvm {load_crate_f64:.2f} s")


if __name__ == "__main__":
    main()
