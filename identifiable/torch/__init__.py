"""Numeric torch backend; the symbolic core never imports it.

Section 6 and Appendix C [SMBK26]:

* :mod:`~identifiable.torch.data`: CIFAR-10 (python batches, image folders, .tar.gz) and an
  embedded stand-in;
* :mod:`~identifiable.torch.nets`: the depth-4 MLP and the attention autoencoder;
* :mod:`~identifiable.torch.augment`, :mod:`~identifiable.torch.train`,
  :mod:`~identifiable.torch.checkpoint`: training with the mirror loss of eq. (22);
* :mod:`~identifiable.torch.measure`: least-squares and K-constrained latent mirror fits;
* :mod:`~identifiable.torch.plots`: Figures 2 and 3 (and Figures 1 and 4 of [BK23]).

Sections 2.2, 3 and 4 [BK23]:

* :mod:`~identifiable.torch.vgg`: VGG11, the flip-GCNN-VGG11 and the PGCNN (eq. (3) built in);
* :mod:`~identifiable.torch.table1` / :mod:`~identifiable.torch.recipes`: the training recipes
  of Table 1 with the invariance loss;
* :mod:`~identifiable.torch.structure`: the permutation structure of a plain CNN (which
  channels a hidden layer's permutation moves together);
* :mod:`~identifiable.torch.flip`: flipped networks and the stride check of footnote 2;
* :mod:`~identifiable.torch.match`: activation statistics and matching (Section 4);
* :mod:`~identifiable.torch.merge`: permuting, merging, BatchNorm reset, REPAIR, the GCNN barrier
  of eq. (4) and the relative invariance error (:mod:`~identifiable.torch.align`, the module
  these four were split from, is kept for old imports);
* :mod:`~identifiable.torch.distributed`: seed sweeps under ``torchrun``.
"""
