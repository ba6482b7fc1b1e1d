"""Order of the gallery: from the intertwiner groups (Section 5.1 [SMBK26]) through the theorems
to the experiments (a sphinx-gallery ``within_subsection_order`` key)."""

ORDER = [
    "plot_intertwiner_groups.py", "example_2_1_rewrite.py", "appendix_b_submodel.py",
    "flip_kernel_constraint.py", "mirror_tanh_latent_actions.py", "attention_heads_permute.py",
    "residual_latent_actions.py", "plot_your_own_network.py", "plot_mirror_mlp_quick.py", "plot_gcnn_barrier.py",
]


class GalleryOrder:
    """Sort key: the position in :data:`ORDER`; examples not listed come last, by name."""

    def __init__(self, src_dir: str):
        self.src_dir = src_dir

    def __call__(self, filename: str) -> tuple[int, str]:
        return (ORDER.index(filename) if filename in ORDER else len(ORDER), filename)

    def __repr__(self) -> str:  # stable across builds (sphinx caches the configuration)
        return "GalleryOrder"
