"""The drift methods evaljobs knows: one entry each, read by the config, the maths and the docs.

Adding a method is an entry here plus its statistic in :data:`evaljobs.drift.methods.STATISTICS`.
This module imports nothing heavy, so validating a config does not load numpy or scipy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodSpec:
    """A drift method: which kinds of value it applies to, and how its number decides drift."""

    name: str
    kinds: tuple[str, ...]
    #: A test gives a p-value and drift is ``p < threshold``; a distance drifts at ``score >= threshold``.
    is_test: bool
    default_threshold: float
    description: str


METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in (
    MethodSpec("psi", ("numeric", "categorical"), False, 0.2,
               "Population Stability Index over reference-quantile bins or categories"),
    MethodSpec("jensen_shannon", ("numeric", "categorical"), False, 0.1,
               "Jensen-Shannon distance, base 2, in [0, 1]"),
    MethodSpec("wasserstein", ("numeric",), False, 0.1,
               "1-Wasserstein distance normed by the reference standard deviation (exact)"),
    MethodSpec("ks", ("numeric",), True, 0.05,
               "two-sample Kolmogorov-Smirnov test, p-value as scipy's ks_2samp"),
    MethodSpec("chi_square", ("categorical",), True, 0.05,
               "chi-square test of homogeneity on the category counts"),
)}

KINDS = ("numeric", "categorical")
#: The methods that apply to each kind of value (KS and Wasserstein need an order, chi-square categories).
METHODS_BY_KIND: dict[str, tuple[str, ...]] = {
    kind: tuple(name for name, spec in METHODS.items() if kind in spec.kinds) for kind in KINDS
}
#: The methods whose number is a p-value.
TESTS = frozenset(name for name, spec in METHODS.items() if spec.is_test)
#: Drift thresholds by method: a p-value below it (tests), or a distance at or above it.
DEFAULT_THRESHOLDS: dict[str, float] = {name: spec.default_threshold for name, spec in METHODS.items()}
