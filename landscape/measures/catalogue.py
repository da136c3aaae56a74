"""The built-in measures: one :func:`register` call each (definitions also in docs/measures.md)."""

from __future__ import annotations

from landscape.measures import curvature, norms, outputs, pacbayes, relative_flatness
from landscape.measures.registry import MeasureSpec, register

JIANG = "Jiang et al., Fantastic Generalization Measures and Where to Find Them, ICLR 2020"
DZIUGAITE = "Dziugaite et al., In Search of Robust Measures of Generalization, NeurIPS 2020"
#: Jiang's measures as Dziugaite et al.'s released code computes them; "Eq. N" in definitions is that code's number.
JIANG_CODE = f"{JIANG}; {DZIUGAITE} (code: nitarshan/robust-generalization-measures)"
#: Tag of the measures computed from the BatchNorm-folded weights: not invariant when the fold leaves a norm.
WEIGHTS = "weights"
ANDRIUSHCHENKO = ("Andriushchenko et al., A Modern Look at the Relationship between Sharpness and Generalization, "
                  "ICML 2023")
KWON = "Kwon et al., ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant Learning, ICML 2021"
#: Tag of the measures taken in the raw parameters: they change under a function-preserving rescaling
#: (a conv's weights x c with its BatchNorm statistics adjusted), so they can reflect weight norm, not geometry.
RAW = "raw parameters"


# -- group computations (each runs once per analysis, however many of its measures are asked for) --------------

def _norms(ctx) -> dict:
    m = ctx.folded.model
    spec = ctx.spectral
    return {**{k: spec[k] for k in ("log_prod_spec", "log_sum_spec", "log_prod_frob")},
            "dist_init": norms.distance_to_init(m, ctx.folded_init.model), "num_params": norms.num_params(m),
            "path_norm": ctx.path_norm,
            "details": {"n_layers": spec["n_layers"], "note": spec["note"], **ctx.folded.summary()}}


def _outputs(ctx) -> dict:
    return outputs.output_measures(ctx.train_logits, ctx.train_data[1])


#: The measures of the margin group.
_MARGIN = ("inverse_margin", "log_spec_orig", "path_norm_over_margin")


def _margin(ctx) -> dict:
    g = outputs.margin_gamma(ctx.train_logits, ctx.train_data[1])
    if g["gamma"] == 0:
        return {**dict.fromkeys(_MARGIN), "details": {**g, "note": "the margin gamma is 0: 1/gamma^2 is undefined"}}
    out = norms.margin_normalised(ctx.spectral, ctx.path_norm, g["gamma"])
    return {**out, "details": {**g, "note": ctx.spectral["note"], **ctx.folded.summary()}}


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


def _sharpness(kind: str, adaptive: bool = False):
    """Reads the value at the largest radius of a ``sharpness`` record of ``kind`` and scaling ``adaptive``."""
    def extract(rec: dict) -> float | None:
        res = rec["result"]
        if res.get("kind") != kind or bool(res.get("adaptive")) != adaptive or not res.get("rhos"):
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
                "worst-case m-sharpness (standard, c = 1) at the largest radius of the newest standard worst-case "
                "`sharpness` record", source="sharpness", extract=_sharpness("worst"), tags=("sharpness", RAW),
                label="m-sharpness (worst case)", extras=_sharpness_extras),
    MeasureSpec("sharpness_average", "nats (loss increase)", ANDRIUSHCHENKO,
                "average-case m-sharpness (standard, c = 1) at the largest radius of the newest standard "
                "average-case `sharpness` record", source="sharpness", extract=_sharpness("average"),
                tags=("sharpness", RAW), label="m-sharpness (average case)", extras=_sharpness_extras),
    MeasureSpec("sharpness_adaptive_worst", "nats (loss increase)", f"{KWON}; {ANDRIUSHCHENKO}",
                "adaptive worst-case m-sharpness mean_B max_{||delta / |w| ||_p <= rho} L_B(w + delta) - L_B(w) "
                "(every parameter, |w| elementwise) at the largest radius of the newest adaptive worst-case "
                "`sharpness` record (the sharpness_adaptive analysis: l_inf)", source="sharpness",
                extract=_sharpness("worst", adaptive=True), tags=("sharpness",),
                label="adaptive m-sharpness (worst case)", extras=_sharpness_extras),
    MeasureSpec("lambda_max", "nats / parameter^2", JIANG, "largest eigenvalue of the training-loss Hessian "
                "(newest `hessian` record)", source="hessian", extract=_lambda_max, tags=("sharpness", RAW),
                label="λ_max (top Hessian eigenvalue)", extras=_lambda_max_extras),
    MeasureSpec("hessian_trace", "nats / parameter^2", JIANG, "trace of the training-loss Hessian (newest `hessian` "
                "record, Hutch++ estimate)", source="hessian", extract=_hessian_trace, tags=("sharpness", RAW),
                label="Hessian trace", extras=_trace_extras),
    MeasureSpec("relative_flatness", "nats", relative_flatness.REFERENCE, "kappa^phi_Tr = sum_{s,s'} <w_s, w_s'> "
                "Tr(H_{s,s'}) over the rows w_s of the last linear layer's weight, H the exact Hessian of the mean "
                "training cross-entropy in that weight (phi: the penultimate features; Definition 3)",
                group="relative_flatness", compute=relative_flatness.measure, tags=("flatness",),
                label="relative flatness κ_Tr"),
    MeasureSpec("pacbayes_sigma", "parameter units", JIANG, "largest sigma with a training-accuracy drop (or loss "
                "increase, --metric loss) of target under w + sigma z, z ~ N(0, I), found by seeded bisection",
                group="pacbayes", compute=_pacbayes, tags=("flatness", WEIGHTS), direction=-1),
    MeasureSpec("pacbayes_flatness", "1 / parameter^2", JIANG_CODE, "1 / pacbayes_sigma^2 (pacbayes.flatness, "
                "Eq. 53)", group="pacbayes", compute=_pacbayes, tags=("flatness", WEIGHTS),
                monotone_of="pacbayes_sigma"),
    MeasureSpec("pacbayes_init", "nats (bound term)", JIANG_CODE, "||w - w0||^2 / (4 sigma^2) + log(m / sigma) + 10 "
                "(pacbayes.init, Eq. 48)", group="pacbayes", compute=_pacbayes, tags=("flatness", WEIGHTS)),
    MeasureSpec("pacbayes_orig", "nats (bound term)", JIANG_CODE, "||w||^2 / (4 sigma^2) + log(m / sigma) + 10 "
                "(pacbayes.orig, Eq. 49)", group="pacbayes", compute=_pacbayes, tags=("flatness", WEIGHTS)),
    MeasureSpec("pacbayes_mag_sigma", "dimensionless (relative to |w|)", JIANG, "largest sigma' with "
                "a training-accuracy drop of target under w + delta, delta_i = z_i sqrt(sigma'^2 w_i^2 + eps^2), "
                "eps = 1e-3", group="pacbayes_mag", compute=_pacbayes_mag, tags=("flatness", WEIGHTS), direction=-1),
    MeasureSpec("pacbayes_mag_flatness", "dimensionless", JIANG_CODE, "1 / sigma'^2 (pacbayes.mag.flatness, Eq. 61)",
                group="pacbayes_mag", compute=_pacbayes_mag, tags=("flatness", WEIGHTS),
                monotone_of="pacbayes_mag_sigma"),
    MeasureSpec("pacbayes_mag_init", "nats (bound term)", JIANG_CODE, "1/4 sum_i log((eps^2 + (sigma'^2+1)||w-w0||^2"
                "/omega) / (eps^2 + sigma'^2 (w_i-w0_i)^2)) + log(m/sigma') + 10 (pacbayes.mag.init, Eq. 56)",
                group="pacbayes_mag", compute=_pacbayes_mag, tags=("flatness", WEIGHTS)),
    MeasureSpec("pacbayes_mag_orig", "nats (bound term)", JIANG_CODE, "as pacbayes_mag_init with ||w||^2 "
                "(pacbayes.mag.orig, Eq. 57)", group="pacbayes_mag", compute=_pacbayes_mag,
                tags=("flatness", WEIGHTS)),
    # curvature beyond the Hessian
    MeasureSpec("ggn_trace", "nats / parameter^2", "Martens, New insights and perspectives on the natural gradient "
                "method, JMLR 2020", "exact trace of the Gauss-Newton (= Fisher) matrix of the mean cross-entropy, "
                "from per-image logit Jacobians", group="ggn", compute=_ggn, tags=("curvature", RAW)),
    MeasureSpec("fisher_rao", "nats^2", f"Liang et al., Fisher-Rao Metric, Geometry, and Complexity of Neural "
                f"Networks, AISTATS 2019; {JIANG}", "(d+1)^2 / N sum_n <w, grad_w CE_n>^2 (Jiang's fisher-rao; "
                "not in Dziugaite et al.'s code, so no equation number from it)", group="fisher_rao",
                compute=_fisher_rao, tags=("curvature", WEIGHTS)),
    # norms
    MeasureSpec("dist_init", "parameter units", JIANG_CODE, "||w - w0||_2 over the layer weights of the "
                "BatchNorm-folded networks (w0 = epoch_000.pt): the square root of Eq. 40 (frob distance, "
                "sum_i ||W_i - W0_i||_F^2)", group="norms", compute=_norms, tags=("norm", WEIGHTS)),
    MeasureSpec("log_prod_spec", "log (dimensionless)", JIANG_CODE, "sum over layers of log ||W_i||_2^2, conv "
                "kernels reshaped to [C_out, C_in k_h k_w] (log.prod.of.spec, Eq. 32)", group="norms",
                compute=_norms, tags=("norm", WEIGHTS)),
    MeasureSpec("log_sum_spec", "log (dimensionless)", JIANG_CODE, "log(d (prod_i ||W_i||_2^2)^(1/d)) "
                "(log.sum.of.spec, Eq. 35)", group="norms", compute=_norms, tags=("norm", WEIGHTS),
                monotone_of="log_prod_spec", monotone_axis="model"),
    MeasureSpec("log_prod_frob", "log (dimensionless)", JIANG_CODE, "sum over layers of log ||W_i||_F^2 "
                "(log.prod.of.fro, Eq. 37)", group="norms", compute=_norms, tags=("norm", WEIGHTS)),
    MeasureSpec("path_norm", "output units", JIANG_CODE, "sum of the outputs of the network with every parameter "
                "squared on an all-ones input (path.norm, Eq. 44)", group="norms", compute=_norms,
                tags=("norm", WEIGHTS)),
    MeasureSpec("num_params", "count", JIANG_CODE, "number of layer weights (params, Eq. 20; biases and "
                "normalisation left out)", group="norms", compute=_norms, tags=("norm",)),
    # margin-normalised (gamma: |k-th smallest training margin|, k = n // 10, as the reference code)
    MeasureSpec("inverse_margin", "1 / logit units^2", JIANG_CODE, "1 / gamma^2, gamma = |k-th smallest margin "
                "f_y(x) - max_{c!=y} f_c(x) over the n training images|, k = max(n // 10, 1) (Eq. 22)",
                group="margin", compute=_margin, tags=("output",)),
    MeasureSpec("log_spec_orig", "log (1 / logit units^2)", JIANG_CODE, "log(prod_i ||W_i||_2^2 / gamma^2 "
                "* sum_i ||W_i||_F^2 / ||W_i||_2^2), the spectral bound over the squared margin (Eq. 30, "
                "LOG_SPEC_ORIG_MAIN)", group="margin", compute=_margin, tags=("norm", WEIGHTS)),
    MeasureSpec("path_norm_over_margin", "output units / logit units^2", JIANG_CODE, "path_norm / gamma^2 "
                "(Eq. 43, PATH_NORM_OVER_MARGIN)", group="margin", compute=_margin, tags=("norm", WEIGHTS)),
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
