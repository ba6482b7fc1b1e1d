"""Numeric torch backend (Section 6 and Appendix C [SMBK26]); the symbolic core never imports it.

* :mod:`~identifiable.torch.data`: CIFAR-10 (python batches, image folders, .tar.gz) and an
  embedded stand-in;
* :mod:`~identifiable.torch.nets`: the depth-4 MLP and the attention autoencoder;
* :mod:`~identifiable.torch.augment`, :mod:`~identifiable.torch.train`,
  :mod:`~identifiable.torch.checkpoint`: training with the mirror loss of eq. (22);
* :mod:`~identifiable.torch.measure`: least-squares and K-constrained latent mirror fits;
* :mod:`~identifiable.torch.plots`: Figures 2 and 3.
"""
