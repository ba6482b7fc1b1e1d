"""The theory of [SMBK26] on models: alignment (Definition 3.4), submodels (Definition 3.2),
identifiability (Definitions 3.3 and 3.5), equivariance (Definition 3.6, eq. (5)) and
Theorem 4.1 (:mod:`identifiable.theory.latent_actions`)."""
