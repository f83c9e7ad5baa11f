"""``gae`` and ``vgae``: graph auto-encoders with the inner-product decoder, the baselines of the graph family.

Kipf & Welling 2016, "Variational Graph Auto-Encoders", https://arxiv.org/abs/1611.07308. The defaults are
the paper's code: a 2-layer GCN encoder (32 hidden, 16 latent, the second layer giving mu and log sigma), the
raw features, Adam at 0.01 for 200 full-batch epochs, the weighted BCE over the whole adjacency
(``edge_loss="auto"``: dense up to 12,000 nodes, sampled non-edges above) and (VGAE) KL / N. With PyG's
row-normalised features and sampled non-edges instead, VGAE lost 2-4 AUC points on Cora here. With
``conv="gin", head="linear"`` and IsoC-VGAE's widths they are the same encoder as
``isoc_vgae`` with only the decoder changed — the comparison its paper makes.
"""

from __future__ import annotations

import torch

from anytask.methods.graphs.base import ENCODERS, GraphEncoder, edge_term, kl_term


class _InnerProduct(GraphEncoder):
    def __init__(self, *, hidden: int = 32, latent: int = 16, layers: int = 1, conv: str = "gcn", head: str = "conv",
                 epochs: int = 200, lr: float = 0.01, batch_size: int = 64, edge_loss: str = "auto",
                 normalize_features: bool = False, node_repr: str = "all", seed: int = 0, progress: bool = False):
        self.hidden, self.latent, self.layers, self.conv, self.head = hidden, latent, layers, conv, head
        self.epochs, self.lr, self.batch_size, self.edge_loss = epochs, lr, batch_size, edge_loss
        self.normalize_features, self.node_repr = normalize_features, node_repr
        self.seed, self.progress = seed, progress

    def _loss(self, x, edge_index):
        _, mu, logstd = self.net_(x, edge_index)
        if not self.variational:
            edge = edge_term(mu, edge_index, len(x), self.edge_loss)
            return edge, {"edge": edge}
        z = mu + torch.randn_like(mu) * logstd.exp()
        edge, kl = edge_term(z, edge_index, len(x), self.edge_loss), kl_term(mu, logstd)
        return edge + kl, {"edge": edge, "kl": kl}


@ENCODERS.register("gae", reference="Kipf & Welling 2016, https://arxiv.org/abs/1611.07308", input="graphs",
                   output="embeddings", saveable=True,
                   summary="graph auto-encoder: GCN encoder, inner-product edge decoder (baseline)")
class GAE(_InnerProduct):
    """Graph auto-encoder (non-variational): the latent is the mean itself."""

    variational = False


@ENCODERS.register("vgae", reference="Kipf & Welling 2016, https://arxiv.org/abs/1611.07308", input="graphs",
                   output="embeddings", saveable=True,
                   summary="variational graph auto-encoder: GCN encoder, inner-product decoder, KL / N (baseline)")
class VGAE(_InnerProduct):
    """Variational graph auto-encoder: z = mu + sigma * noise while training, mu when embedding."""

    variational = True
