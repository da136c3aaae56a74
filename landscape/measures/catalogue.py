"""The built-in measures: one :func:`register` call each (definitions also in docs/measures.md)."""

from __future__ import annotations

from landscape.measures import curvature, norms, outputs, pacbayes
from landscape.measures.registry import MeasureSpec, register

JIANG = "Jiang et al., Fantastic Generalization Measures and Where to Find Them, ICLR 2020"
DZIUGAITE = "Dziugaite et al., In Search of Robust Measures of Generalization, NeurIPS 2020"
ANDRIUSHCHENKO = ("Andriushchenko et al., A Modern Look at the Relationship between Sharpness and Generalization, "
                  "ICML 2023")


# -- group computations (each runs once per analysis, however many of its measures are asked for) --------------

def _norms(ctx) -> dict:
    m = ctx.folded.model
    spec = norms.spectral_measures(m)
    return {**{k: spec[k] for k in ("log_prod_spec", "log_sum_spec", "log_prod_frob")},
            "dist_init": norms.distance_to_init(m, ctx.folded_init.model), "num_params": norms.num_params(m),
            "path_norm": norms.path_norm(m, tuple(ctx.train_data[0].shape[1:])),
            "details": {"n_layers": spec["n_layers"], **ctx.folded.summary()}}


def _outputs(ctx) -> dict:
    from landscape.train.evaluate import predict

    x, y = ctx.train_data
    return outputs.output_measures(predict(ctx.model, x), y)


def _ggn(ctx) -> dict:
    x, y = ctx.subset(ctx.settings["ggn_samples"])
    res = curvature.ggn_trace(ctx.model, x)
    unit = curvature.gradient_seconds(ctx.model, ctx.ck.loss_fn, x, y)
    return {"ggn_trace": res["trace"], "details": {**res, "gradient_seconds": unit,
                                                   "cost_gradients_measured": res["seconds"] / max(unit, 1e-12)}}


def _fisher_rao(ctx) -> dict:
    res = curvature.fisher_rao_norm(ctx.folded.model, *ctx.train_data)
    return {"fisher_rao": res["fisher_rao"], "details": res}


def _search(ctx, magnitude: bool) -> pacbayes.SigmaSearch:
    s = ctx.settings
    x, y = ctx.train_data
    batches = [(x[i:i + 256], y[i:i + 256]) for i in range(0, len(y), 256)]
    return pacbayes.flatness_sigma(ctx.folded.model, ctx.ck.loss_fn, batches, target=s["target"],
                                   metric=s["metric"], magnitude_eps=pacbayes.MAG_EPS if magnitude else None,
                                   draws=s["draws"], depth=s["depth"], seed=s["seed"], progress=ctx.progress)


def _sigma_terms(res: pacbayes.SigmaSearch, terms) -> dict:
    """The search's values, or None for each when the bracket did not contain the target (details say why)."""
    return terms(res.sigma) if res.bracketed else dict.fromkeys(terms(1.0))


def _pacbayes(ctx) -> dict:
    res = _search(ctx, magnitude=False)
    w, w0 = ctx.weights(), ctx.weights(init=True)
    out = _sigma_terms(res, lambda s: {"pacbayes_sigma": s, **pacbayes.bound_terms(s, ctx.n_train, w, w0)})
    return {**out, "details": res.to_dict()}


def _pacbayes_mag(ctx) -> dict:
    res = _search(ctx, magnitude=True)
    w, w0 = ctx.weights(), ctx.weights(init=True)
    out = _sigma_terms(res, lambda s: {"pacbayes_mag_sigma": s, **pacbayes.mag_bound_terms(s, ctx.n_train, w, w0)})
    return {**out, "details": res.to_dict()}


def _steps(ctx) -> dict:
    per_epoch = max(ctx.n_train // int(ctx.ck.meta["train"]["batch_size"]), 1)
    steps = outputs.steps_to_loss(ctx.history, per_epoch, 0.1)
    return {"steps_to_loss_0.1": steps, "details": {"steps_per_epoch": per_epoch, "reached": steps is not None,
                                                    "epochs_recorded": len(ctx.history)}}


# -- reused values from the hessian and sharpness records --------------------------------------------------------

def _lambda_max(rec: dict) -> float | None:
    eig = ((rec["result"].get("top_k") or {}).get("eigenvalues")) or []
    return max(eig) if eig else None


def _lambda_max_extras(rec: dict) -> dict:
    """Whether the top eigenvalue met its Lanczos tolerance (None when the record does not say)."""
    top = rec["result"]["top_k"]
    i = max(range(len(top["eigenvalues"])), key=lambda j: top["eigenvalues"][j])
    return {"certified": bool(top["converged"][i]) if top.get("converged") else None}


def _hessian_trace(rec: dict) -> float | None:
    return (rec["result"].get("trace") or {}).get("estimate")


def _trace_extras(rec: dict) -> dict:
    """The 95% CI of the trace estimate."""
    ci = rec["result"]["trace"].get("ci")
    return {"ci": list(ci) if ci else None}


def _largest_rho(res: dict) -> int:
    return max(range(len(res["rhos"])), key=lambda j: res["rhos"][j])


def _sharpness(kind: str):
    def extract(rec: dict) -> float | None:
        res = rec["result"]
        if res.get("kind") != kind or not res.get("rhos"):
            return None
        return res["mean"][_largest_rho(res)]
    return extract


def _sharpness_extras(rec: dict) -> dict:
    """The radius the value is taken at and the std over sub-batches there."""
    res = rec["result"]
    i = _largest_rho(res)
    return {"rho": res["rhos"][i], "std": (res.get("std") or [None] * len(res["rhos"]))[i]}


# -- the registry ------------------------------------------------------------------------------------------------

_SPECS = [
    # sharpness and flatness
    MeasureSpec("sharpness_worst", "nats (loss increase)", ANDRIUSHCHENKO,
                "worst-case m-sharpness at the largest radius of the newest worst-case `sharpness` record",
                source="sharpness", extract=_sharpness("worst"), tags=("sharpness",),
                label="m-sharpness (worst case)", extras=_sharpness_extras),
    MeasureSpec("sharpness_average", "nats (loss increase)", ANDRIUSHCHENKO,
                "average-case m-sharpness at the largest radius of the newest average-case `sharpness` record",
                source="sharpness", extract=_sharpness("average"), tags=("sharpness",),
                label="m-sharpness (average case)", extras=_sharpness_extras),
    MeasureSpec("lambda_max", "nats / parameter^2", JIANG, "largest eigenvalue of the training-loss Hessian "
                "(newest `hessian` record)", source="hessian", extract=_lambda_max, tags=("sharpness",),
                label="λ_max (top Hessian eigenvalue)", extras=_lambda_max_extras),
    MeasureSpec("hessian_trace", "nats / parameter^2", JIANG, "trace of the training-loss Hessian (newest `hessian` "
                "record, Hutch++ estimate)", source="hessian", extract=_hessian_trace, tags=("sharpness",),
                label="Hessian trace", extras=_trace_extras),
    MeasureSpec("pacbayes_sigma", "parameter units", JIANG, "largest sigma with a training-accuracy drop (or loss "
                "increase, --metric loss) of target under w + sigma z, z ~ N(0, I), found by seeded bisection",
                group="pacbayes", compute=_pacbayes, tags=("flatness",), direction=-1),
    MeasureSpec("pacbayes_flatness", "1 / parameter^2", JIANG, "1 / pacbayes_sigma^2 (Jiang's pacbayes.flatness)",
                group="pacbayes", compute=_pacbayes, tags=("flatness",), monotone_of="pacbayes_sigma"),
    MeasureSpec("pacbayes_init", "nats (bound term)", JIANG, "||w - w0||^2 / (4 sigma^2) + log(m / sigma) + 10 "
                "(pacbayes.init)", group="pacbayes", compute=_pacbayes, tags=("flatness",)),
    MeasureSpec("pacbayes_orig", "nats (bound term)", JIANG, "||w||^2 / (4 sigma^2) + log(m / sigma) + 10 "
                "(pacbayes.orig)", group="pacbayes", compute=_pacbayes, tags=("flatness",)),
    MeasureSpec("pacbayes_mag_sigma", "dimensionless (relative to |w|)", JIANG, "largest sigma' with "
                "a training-accuracy drop of target under w + delta, delta_i = z_i sqrt(sigma'^2 w_i^2 + eps^2), "
                "eps = 1e-3", group="pacbayes_mag", compute=_pacbayes_mag, tags=("flatness",), direction=-1),
    MeasureSpec("pacbayes_mag_flatness", "dimensionless", JIANG, "1 / sigma'^2 (pacbayes.mag.flatness)",
                group="pacbayes_mag", compute=_pacbayes_mag, tags=("flatness",), monotone_of="pacbayes_mag_sigma"),
    MeasureSpec("pacbayes_mag_init", "nats (bound term)", JIANG, "1/4 sum_i log((eps^2 + (sigma'^2+1)||w-w0||^2/omega)"
                " / (eps^2 + sigma'^2 (w_i-w0_i)^2)) + log(m/sigma') + 10 (pacbayes.mag.init, Eq. 56)",
                group="pacbayes_mag", compute=_pacbayes_mag, tags=("flatness",)),
    MeasureSpec("pacbayes_mag_orig", "nats (bound term)", JIANG, "as pacbayes_mag_init with ||w||^2 "
                "(pacbayes.mag.orig)", group="pacbayes_mag", compute=_pacbayes_mag, tags=("flatness",)),
    # curvature beyond the Hessian
    MeasureSpec("ggn_trace", "nats / parameter^2", "Martens, New insights and perspectives on the natural gradient "
                "method, JMLR 2020", "exact trace of the Gauss-Newton (= Fisher) matrix of the mean cross-entropy, "
                "from per-image logit Jacobians", group="ggn", compute=_ggn, tags=("curvature",)),
    MeasureSpec("fisher_rao", "nats^2", f"Liang et al., Fisher-Rao Metric, Geometry, and Complexity of Neural "
                f"Networks, AISTATS 2019; {JIANG}", "(d+1)^2 / N sum_n <w, grad_w CE_n>^2", group="fisher_rao",
                compute=_fisher_rao, tags=("curvature",)),
    # norms
    MeasureSpec("dist_init", "parameter units", JIANG, "||w - w0||_2 over the layer weights of the "
                "BatchNorm-folded networks (w0 = epoch_000.pt)", group="norms", compute=_norms, tags=("norm",)),
    MeasureSpec("log_prod_spec", "log (dimensionless)", JIANG, "sum over layers of log ||W_i||_2^2, conv kernels "
                "reshaped to [C_out, C_in k_h k_w] (log.prod.of.spec)", group="norms", compute=_norms, tags=("norm",)),
    MeasureSpec("log_sum_spec", "log (dimensionless)", JIANG, "log(d (prod_i ||W_i||_2^2)^(1/d)) (log.sum.of.spec)",
                group="norms", compute=_norms, tags=("norm",), monotone_of="log_prod_spec", monotone_axis="model"),
    MeasureSpec("log_prod_frob", "log (dimensionless)", JIANG, "sum over layers of log ||W_i||_F^2 (log.prod.of.fro)",
                group="norms", compute=_norms, tags=("norm",)),
    MeasureSpec("path_norm", "output units", JIANG, "sum of the outputs of the network with every parameter "
                "squared on an all-ones input (path.norm)", group="norms", compute=_norms, tags=("norm",)),
    MeasureSpec("num_params", "count", JIANG, "number of layer weights (params; biases and normalisation left "
                "out)", group="norms", compute=_norms, tags=("norm",)),
    # outputs and optimisation
    MeasureSpec("margin_p10", "logit units", JIANG,
                "10th percentile over training images of f_y(x) - max_{c!=y} f_c(x)",
                group="outputs", compute=_outputs, tags=("output",), direction=-1),
    MeasureSpec("entropy", "nats", JIANG, "mean prediction entropy -sum_c p_c log p_c on training images",
                group="outputs", compute=_outputs, tags=("output",), direction=-1),
    MeasureSpec("cross_entropy", "nats", JIANG, "mean cross-entropy on training images (no augmentation)",
                group="outputs", compute=_outputs, tags=("output",), direction=-1),
    MeasureSpec("steps_to_loss_0.1", "optimizer steps", JIANG, "steps until the epoch-mean training loss first "
                "reaches 0.1 (history.json; epoch resolution; null if never)", group="steps", compute=_steps,
                tags=("optimisation",)),
]

for _spec in _SPECS:
    register(_spec)
