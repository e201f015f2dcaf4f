"""Rank correlation between per-path parameters: Iman & Conover (1982), distribution-free.

Each parameter keeps its own draws (its marginal distribution, sample for sample); only
the order in which they are paired across paths changes, so that their ranks have the
asked-for Spearman correlations. This is what @RISK and Crystal Ball do.

Within each block of paths: van der Waerden scores Phi^-1(i / (n + 1)), each column
shuffled by its own random permutation, are given the target correlation by a Cholesky
transform (with the scores' own sample correlation removed first, Iman & Conover's
refinement); each parameter's draws are then sorted into the ranks of its column. The
Spearman target rho_s is turned into the normal scores' Pearson correlation
2 sin(pi rho_s / 6) (exact for normal scores), so the ranks come out at rho_s, not
near it.
"""

from __future__ import annotations

import numpy as np
from scipy import special

MIN_EIGENVALUE = 1e-10


def normal_correlation(spearman: np.ndarray) -> np.ndarray:
    """The Pearson correlation of normals whose Spearman correlation is ``spearman``.

    Examples
    --------
    >>> float(normal_correlation(np.array([[1.0, 0.5], [0.5, 1.0]]))[0, 1]).__round__(4)
    0.5176
    """
    out = 2.0 * np.sin(np.pi * np.asarray(spearman, dtype=np.float64) / 6.0)
    np.fill_diagonal(out, 1.0)
    return out


def smallest_eigenvalue(c: np.ndarray) -> float:
    return float(np.linalg.eigvalsh((c + c.T) / 2.0).min())


def nearest_correlation(c: np.ndarray, *, min_eigenvalue: float = 1e-6, iterations: int = 200) -> np.ndarray:
    """The nearest correlation matrix (Frobenius norm) with eigenvalues >= ``min_eigenvalue``.

    Higham's (2002) alternating projections with Dykstra's correction, between the
    positive semidefinite cone (eigenvalues clipped) and the unit-diagonal matrices.

    Examples
    --------
    >>> bad = np.array([[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1.0]])
    >>> fixed = nearest_correlation(bad)
    >>> bool(np.linalg.eigvalsh(fixed).min() > 0), np.diag(fixed).tolist()
    (True, [1.0, 1.0, 1.0])
    """
    y = np.asarray(c, dtype=np.float64).copy()
    correction = np.zeros_like(y)
    for _ in range(iterations):
        r = y - correction
        w, v = np.linalg.eigh((r + r.T) / 2.0)
        x = (v * np.maximum(w, min_eigenvalue)) @ v.T
        correction = x - r
        y = x.copy()
        np.fill_diagonal(y, 1.0)
        if smallest_eigenvalue(y) >= min_eigenvalue * 0.5 and np.abs(y - x).max() < 1e-12:
            break
    w, v = np.linalg.eigh((y + y.T) / 2.0)  # a last clip keeps the result strictly positive definite
    y = (v * np.maximum(w, min_eigenvalue)) @ v.T
    d = np.sqrt(np.diag(y))
    y = y / d[:, None] / d[None, :]
    y = (y + y.T) / 2.0
    np.fill_diagonal(y, 1.0)
    return y


def iman_conover(samples: np.ndarray, target_spearman: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Reorder each column of ``samples`` (n, k) so that their ranks have the target Spearman correlations.

    Parameters
    ----------
    samples : array (n, k)
        Draws of k parameters for n paths (any marginals).
    target_spearman : array (k, k)
        Positive definite, unit diagonal.
    rng : Generator
        For the score permutations.

    Returns
    -------
    array (n, k)
        The same values column by column, reordered.
    """
    n, k = samples.shape
    if n < k + 2:  # too few paths to impose anything: leave them independent
        return samples.copy()
    scores = special.ndtri(np.arange(1, n + 1) / (n + 1.0))
    s = np.column_stack([scores[rng.permutation(n)] for _ in range(k)])
    target = np.linalg.cholesky(normal_correlation(target_spearman))
    own = np.corrcoef(s, rowvar=False)
    own_chol = np.linalg.cholesky(own)
    t = s @ np.linalg.inv(own_chol).T @ target.T
    out = np.empty_like(samples)
    for j in range(k):
        ranks = np.argsort(np.argsort(t[:, j], kind="stable"), kind="stable")
        out[:, j] = np.sort(samples[:, j], kind="stable")[ranks]
    return out
