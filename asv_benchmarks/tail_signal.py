"""Where the sketched tail carries signal: NTKSketch's ``tail_signal_to_noise_`` per data
set, and, on the text sets, NTKRidge fitted with the tail left out (``tail_gammas="auto"``
below the threshold) against the same fit scoring the tail.

Not an asv benchmark (minutes per data set): run it by hand on a quiet machine::

    python asv_benchmarks/tail_signal.py [--fits health-tweets trump-tweets ...]

For every data set of ``compare.py`` (its splits, depth 2, 4,096 features; 8,192 on
MNIST, and 8,192 too on puma32h) it prints the fitted map's exact degrees, sketched
widths, what its tail holds (``tail_``) and ``tail_signal_to_noise_``.  For the data
sets named by ``--fits`` (the three text sets by default) it fits
``NTKRidge(Classifier)`` twice in this process, one thread: as fastntk does (the tail
left out where its signal is below a tenth of its noise) and with the tail scored
whatever its signal (what fastntk did before), and prints both test metrics, choices and
fit CPU seconds, and their ratio.
"""
import argparse
import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"                 # one thread: CPU seconds comparable across runs

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from compare import SPLITS, _flat, load, score  # noqa: E402

TEXT = ("health-tweets", "trump-tweets", "rotten-tomatoes")
WIDTHS = {"mnist": (8192,), "puma32h": (4096, 8192)}


def _fit(model, X, y):
    """Fit CPU seconds (one thread)."""
    cpu = time.process_time()
    model.fit(X, y)
    return time.process_time() - cpu


def _describe(model):
    return (f"alpha {model.alpha_:.3g}, gamma {model.gamma_:g}, tail {model.tail_gamma_:g}, "
            f"{len(model.gamma_candidates_)} weightings, {model.solver_}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(SPLITS))
    parser.add_argument("--fits", nargs="*", default=list(TEXT))
    args = parser.parse_args()

    import fastntk.ridge as ridge
    from fastntk import NTKRidge, NTKRidgeClassifier, NTKSketch

    threshold = ridge._TAIL_SIGNAL_MIN
    print(f"threshold: tail_signal_to_noise_ < {threshold}: the tail is left out\n")
    print("| data set | width | exact degrees | sketched widths | tail | "
          "tail_signal_to_noise_ |")
    print("|---|---:|---|---|---|---:|")
    for name in args.datasets:
        n_train, n_test = SPLITS[name]
        X, _, _, _, _ = load(name, n_train, n_test)
        X = _flat(X)
        for m in WIDTHS.get(name, (4096,)):
            fm = NTKSketch(depth=2, n_components=m, random_state=0).fit(X)
            widths = {j: int(w) for j, w in enumerate(fm.widths_["ntk"]) if w > 0}
            print(f"| {name} | {m} | {fm.exact_degrees_} | {widths or '-'} | {fm.tail_} | "
                  f"{fm.tail_signal_to_noise_:.3g} |", flush=True)

    for name in args.fits:
        n_train, n_test = SPLITS[name]
        X, Xt, y, yt, task = load(name, n_train, n_test)
        learner = NTKRidgeClassifier if task == "classification" else NTKRidge
        what = "accuracy" if task == "classification" else "RMSE"
        learner(NTKSketch(depth=2, n_components=64, random_state=0)).fit(X[:50], y[:50])
        left_out = learner(NTKSketch(depth=2, n_components=4096, random_state=0))
        cpu_left_out = _fit(left_out, X, y)
        ridge._TAIL_SIGNAL_MIN = 0.0                      # score the tail whatever its signal
        try:
            scored = learner(NTKSketch(depth=2, n_components=4096, random_state=0))
            cpu_scored = _fit(scored, X, y)
        finally:
            ridge._TAIL_SIGNAL_MIN = threshold
        print(f"\n{name} ({n_train}/{n_test}), tail_signal_to_noise_ "
              f"{left_out.feature_map_.tail_signal_to_noise_:.3g}:\n"
              f"  tail left out: {what} {score(task, yt, left_out.predict(Xt)):.4f} "
              f"({_describe(left_out)}), fit {cpu_left_out:.1f} CPU s\n"
              f"  tail scored:   {what} {score(task, yt, scored.predict(Xt)):.4f} "
              f"({_describe(scored)}), fit {cpu_scored:.1f} CPU s\n"
              f"  CPU ratio left out / scored: {cpu_left_out / cpu_scored:.2f}", flush=True)


if __name__ == "__main__":
    main()
