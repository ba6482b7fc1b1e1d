"""The theory of [SMBK26] on models: alignment (Definition 3.4), submodels (Definition 3.2),
identifiability (Definitions 3.3 and 3.5), equivariance (Definition 3.6, eq. (5)) and
Theorem 4.1 (:mod:`identifiable.theory.latent_actions`)."""

# models defined beyond the papers register their Theorem 4.1 steps and aligners where they are
# defined; importing the package makes the registrations happen whichever theory module a user
# imports first (no import-time cycle: this runs before any submodule of the package)
from identifiable.theory import residual as _residual  # noqa: E402,F401
