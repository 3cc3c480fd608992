"""``scipy.stats.kstwo.sf(d, n)`` for the large ``n`` of database-sized samples, from scipy.special.

Importing ``scipy.stats`` costs ~40-50 MB of resident memory, more than a whole evaluation
otherwise needs, and ks_2samp's asymptotic p-value is only ``kstwo.sf(D, round(n*m/(n+m)))``.
This follows scipy's own ``_kolmogn(n, x, cdf=False)`` (Simard & L'Ecuyer, 2011) branch by
branch: the closed forms, ``2 * scipy.special.smirnov(n, x)`` where scipy uses it, and the
Pelz-Good series where scipy uses it (n > 100,000 or n * x**1.5 > 1.4). The remaining branches
(n <= 140, or the Durbin matrix for moderate n and small x) call ``scipy.stats.kstwo`` itself:
they only occur for samples small enough that memory does not matter.
``tests/drift/test_drift_methods.py`` compares every branch with ``kstwo.sf``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

_PI_SQUARED = math.pi ** 2
_PI_FOUR = math.pi ** 4
_PI_SIX = math.pi ** 6
_SQRT2PI = math.sqrt(2 * math.pi)
_SQRT3 = math.sqrt(3)
_LOG_2PI = math.log(2 * math.pi)
_MIN_LOG = -708
# Stirling series coefficients B_2j / (2j (2j - 1)), j = 8..1, as scipy's _ksstats uses them.
_STIRLING = [-2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3,
             8.4175084175084175084e-4, -5.952380952380952381e-4, 7.9365079365079365079e-4,
             -2.7777777777777777778e-3, 8.3333333333333333333e-2]


def _log_factorial_over_power(n: int) -> float:
    """log(n! / n**n) by Stirling's series with n*log(n) removed up front (no cancellation)."""
    rn = 1.0 / n
    return float(np.log(n) / 2 - n + _LOG_2PI / 2 + rn * np.polyval(_STIRLING, rn / n))


def _clip(p: float) -> float:
    return float(np.clip(p, 0.0, 1.0))


def _pelz_good_sf(n: int, x: float) -> float:
    """Pelz-Good (1976) approximation of P(D_n > x), written as scipy's ``_kolmogn_PelzGood``."""
    z = math.sqrt(n) * x
    zsquared, zthree, zfour, zsix = z ** 2, z ** 3, z ** 4, z ** 6
    qlog = -_PI_SQUARED / 8 / zsquared
    if qlog < _MIN_LOG:  # z below ~0.0417: the CDF is 0
        return 1.0
    q = np.exp(qlog)
    k1a, k1b = -zsquared, _PI_SQUARED / 4
    k2a = 6 * zsix + 2 * zfour
    k2b = (2 * zfour - 5 * zsquared) * _PI_SQUARED / 4
    k2c = _PI_FOUR * (1 - 2 * zsquared) / 16
    k3d = _PI_SIX * (5 - 30 * zsquared) / 64
    k3c = _PI_FOUR * (-60 * zsquared + 212 * zfour) / 16
    k3b = _PI_SQUARED * (135 * zfour - 96 * zsix) / 4
    k3a = -30 * zsix - 90 * z ** 8
    terms = np.zeros(4)
    maxk = int(np.ceil(16 * z / np.pi))
    for k in range(maxk, 0, -1):  # Horner scheme over odd m = 2k - 1 of sum c_m q^(m^2)
        m = 2 * k - 1
        msquared, mfour, msix = m ** 2, m ** 4, m ** 6
        terms *= np.power(q, 8 * k)
        terms += np.array([1.0, k1a + k1b * msquared, k2a + k2b * msquared + k2c * mfour,
                           k3a + k3b * msquared + k3c * mfour + k3d * msix])
    terms *= q
    terms *= _SQRT2PI
    terms /= np.array([z, 6 * zfour, 72 * z ** 7, 6480 * z ** 10])
    q = np.exp(-_PI_SQUARED / 2 / zsquared)
    ks = np.arange(maxk, 0, -1)
    ksquared = ks ** 2
    sqrt3z = _SQRT3 * z
    kspi = np.pi * ks
    qpowers = q ** ksquared
    terms[2] += np.sum(ksquared * qpowers) * _PI_SQUARED * _SQRT2PI / (-36 * zthree)
    terms[3] += np.sum((sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qpowers) * _PI_SQUARED * _SQRT2PI / (216 * zsix)
    terms /= np.power(n * 1.0, np.arange(len(terms)) / 2.0)
    return 1.0 - float(sum(terms))  # scipy takes the CDF's complement, in this order


def kstwo_sf(x: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(x, n)``: P(D_n > x) of the two-sided one-sample KS statistic."""
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    t = n * x
    if t <= 1.0:  # Ruben-Gambino: 1/2n <= x <= 1/n
        if t <= 0.5:
            return 1.0
        if n <= 140:
            cdf = float(np.prod(np.arange(1, n + 1) * (1.0 / n) * (2 * t - 1)))
        else:
            cdf = float(np.exp(_log_factorial_over_power(n) + n * np.log(2 * t - 1)))
        return _clip(1.0 - cdf)
    if t >= n - 1:  # Ruben-Gambino
        return _clip(2 * (1.0 - x) ** n)
    if x >= 0.5:  # exact: 2 * smirnov
        return _clip(2 * special.smirnov(n, x))
    nxsquared = t * x
    if n > 140:
        if nxsquared >= 370.0:
            return 0.0
        if nxsquared >= 2.2:
            return _clip(2 * special.smirnov(n, x))
        if nxsquared >= 18.0:
            return 0.0
        if not (n <= 100000 and n * x ** 1.5 <= 1.4):
            return _clip(_pelz_good_sf(n, x))
    # Small n, or the Durbin matrix region: scipy's own code (samples this small cost no memory).
    from scipy import stats

    return float(stats.kstwo.sf(x, n))


__all__ = ["kstwo_sf"]
