"""
The GCNN barrier: a CNN, its flipped copy, and a GCNN ([BK23] Sections 3 and 4)
================================================================================

Conjecture 3.2 of [BK23] says that a CNN trained on flip-invariant data is close to a GCNN:
its flipped copy (every kernel flipped along its width) can be permuted channel-wise close to
the original. The *GCNN barrier* measures how close: align the flipped net by activation
matching, average the weights, and compare the accuracy halfway with the endpoints (eq. (4)).

This example trains a tiny VGG11 and a tiny GCNN-VGG11 for a few epochs on the embedded
stand-in data (photograph crops shipped with scikit-image, labelled by photograph; not
CIFAR-10), then measures both. For the GCNN the kernel constraint of eq. (3) holds by
construction, so its flipped copy *is* a channel permutation of it: the matcher must find the
swap of the two channels of every orbit (all permutation orders <= 2), the invariance error is
float round-off and the barrier is ~0. The ordinary CNN has neither property.
"""

import torch

from identifiable.torch import align
from identifiable.torch.data import embedded_patches
from identifiable.torch.plots import figure1_filter_pairs
from identifiable.torch.recipes import ClassifierConfig, normalise, train_recipe
from identifiable.torch.vgg import swap_permutation, to_plain

torch.manual_seed(0)
train = embedded_patches(2048, "train", seed=0)
test = embedded_patches(1024, "test", seed=0)
mean, std = train.channel_stats()
x_train = normalise(train.tensor()[:512], mean, std)
x_test, y_test = normalise(test.tensor(), mean, std), torch.from_numpy(test.labels)

nets = {}
for recipe in ("cnn", "gcnn"):
    cfg = ClassifierConfig(recipe=recipe, width=0.125, epochs=3, batch_size=128, seed=0)
    nets[recipe] = to_plain(train_recipe(cfg, train).net)   # plain nn.Sequential

# %%
# The flipped network and the footnote-2 check
# --------------------------------------------
# ``flip_network`` flips every kernel along its width and reports layers that cannot commute
# with the flip (a stride-2 window on an even width, footnote 2). VGG11 on 32 x 32 has none:
# its 2 x 2 max-pools tile every even width symmetrically.

flipped, report = align.flip_network(nets["cnn"])
print("flip exact:", report.exact, report.issues)
with torch.no_grad():
    x = x_test[:8]
    print("max |flipped(x) - net(tau x)| =",
          float((flipped(x) - nets["cnn"](align.flip_images(x))).abs().max()))

strided = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2, padding=1), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 2))
print("stride-2 conv on width 32:", align.flip_network(strided, (32, 32))[1].issues)
print("stride-2 conv on width 33:", align.flip_network(strided, (33, 33))[1].exact)

# %%
# Invariance error and GCNN barrier
# ---------------------------------

results = {}
for recipe, net in nets.items():
    inv = align.invariance_error(net, x_train)
    res = align.gcnn_barrier(net, x_train, x_test, y_test)
    results[recipe] = res
    print(f"{recipe:5s} accuracy {res.accuracy_a:.3f}  flipped {res.accuracy_b:.3f}  "
          f"invariance error {inv:.2g}  GCNN barrier {res.barrier:.3g} "
          f"(REPAIR {res.barrier_repair:.3g})")
    print("      channels of order 1 / 2 / >2 per layer:",
          [(o["1"], o["2"], o[">2"]) for o in res.orders])

# %%
# For the GCNN the matcher recovers the ground truth: in every hidden layer with ``2m``
# channels, channel ``c`` of the flipped net is channel ``c + m mod 2m`` of the original.

gcnn = results["gcnn"]
print("ground truth recovered in every layer:",
      all(list(p) == swap_permutation(len(p) // 2) for p in gcnn.perms))

# %%
# Figure 1 style: the first-layer filters, each next to the matched filter of the flipped
# network. The GCNN's pairs are identical; the CNN's are only similar.

for recipe, res in results.items():
    figure1_filter_pairs(nets[recipe][0].weight.detach().numpy(), res.perms[0], None,
                         title=f"{recipe}: filter | matched flipped filter")
