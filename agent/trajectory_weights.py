"""PTR-PPO's off-policy weights as pure numpy functions (Liang et al. 2021, arXiv 2112.03798,
as seed 002's reference CVHvn/Mario_PTR_PPO codes them: shared/reference/ptr_ppo.md A.2).

Time-major [T, B] arrays: T steps of B replayed trajectories.
"""

import numpy as np

# The reference keeps the running product below 1e100 (a long run of ratios > 1 must not
# overflow) and clamps the weight it returns at 1e15 (A.2 step 3); rho_marg is saturated
# near 2 - eps long before either.
RUNNING_MAX, RHO_MAX = 1e100, 1e15


def trace_weights(ratios, dones, valid):
    """rho_t = (pi_old / b)_t x (1 if done_t else rho_{t+1}), rho = 1 past the window's end:
    the product of the ratios from t FORWARD to the end of t's episode segment (or of the
    window), the paper's truncated multistep weight as the reference computes it (A.2 step 3).
    Rows that are no transition (valid False: auto-reset rows) count as ratio 1. float64."""
    ratios = np.where(valid, np.asarray(ratios, np.float64), 1.0)
    dones = np.asarray(dones, bool)
    rho = np.empty_like(ratios)
    running = np.ones(ratios.shape[1:])
    for t in reversed(range(ratios.shape[0])):
        running = np.minimum(ratios[t] * np.where(dones[t], 1.0, running), RUNNING_MAX)
        rho[t] = np.minimum(running, RHO_MAX)
    return rho


def marginal_weights(rho, eps_marg=0.2):
    """rho_marg = min(1 - eps, rho) + max(0, (rho - (1 - eps)) / rho) (A.2 step 4): rho itself up
    to 1 - eps, then 1 - eps + 1 - (1 - eps) / rho, which grows towards 2 - eps: the paper's
    truncation, so one huge product cannot dominate a batch."""
    rho = np.asarray(rho, np.float64)
    return np.minimum(1.0 - eps_marg, rho) + np.maximum(0.0, (rho - (1.0 - eps_marg)) / np.maximum(rho, 1e-300))
