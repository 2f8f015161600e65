"""Which SASRec design choice puts lucidrec above RecBole's SASRec? An investigation, not a feature.

    python bench/sasrec_design_ablation.py --variant shipped|positions_from_oldest|unscaled_items|recbole_layout[_and_init] --out DIR

Trains lucidrec's SASRec with the settings of ``bench/speed_vs_recbole.py`` (amazon-scientific, hidden 64,
2 blocks, 1 head, max_len 50, dropout 0.2, CE, Adam 1e-3, patience 10, one thread) after swapping one
piece of the input layer for RecBole's convention, or (``recbole_layout``) RecBole's whole layout: unscaled,
layer-normalised input and post-LN blocks (lucidrec's final LayerNorm stays), optionally with its weight
initialisation too. The training-side switches (gradient clipping) are
plain config: ``lucidrec train ... --set train.grad_clip=null``. The variants patch model code, so they are
not grid variants (a grid changes settings only). Each call writes the measurement record
``results/measurements/sasrec_design_ablation-<variant>.json`` (``--record`` for another file).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch.nn.functional as F
from torch import nn

from lucidrec.experiments.measurements import DEFAULT_FOLDER, build_measurement
from lucidrec.experiments.report import publish_measurement
from lucidrec.models.sasrec import SelfAttentionBackbone, TransformerBlock
from lucidrec.train.run import build_config, train_run


def positions_from_oldest(self, seqs):
    """Position 0 is the oldest item of the window (RecBole, and the SASRec paper's code)."""
    real = seqs != 0
    first_based = (real.cumsum(1) - 1).clamp(min=0)
    return self.items(seqs) * self.config.hidden ** 0.5 + self.positions.weight[first_based]


def unscaled_items(self, seqs):
    """Item vectors added to the positions without the sqrt(d) factor (RecBole)."""
    return self.items(seqs) + self.positions.weight[-seqs.shape[1]:]


def normalized_unscaled_items(self, seqs):
    """RecBole's input: LayerNorm(item + position), no sqrt(d) (here without the norm's affine weights)."""
    return F.layer_norm(unscaled_items(self, seqs), (self.config.hidden,))


def post_norm_block(self, x, mask):
    """RecBole's block: LayerNorm after each residual sum (post-LN) instead of before each sub-layer."""
    b, length, d = x.shape
    q, k, v = self.qkv(x).view(b, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
    attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                              dropout_p=self.attn_dropout if self.training else 0.0)
    x = self.norm_attn(x + self.dropout(self.out(attended.transpose(1, 2).reshape(b, length, d))))
    return self.norm_ffn(x + self.dropout(self.ffn(x)))


def recbole_initialisation(init):
    """RecBole's ``_init_weights``: every Linear weight ~ N(0, 0.02) with zero bias (PyTorch's default is a
    Kaiming-uniform weight, several times larger for these 64-wide layers); embeddings are N(0, 0.02) already."""
    def wrapped(self, *args, **kwargs):
        init(self, *args, **kwargs)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
    return wrapped


VARIANTS = {"shipped": {}, "positions_from_oldest": {"input": positions_from_oldest},
            "unscaled_items": {"input": unscaled_items},
            "recbole_layout": {"input": normalized_unscaled_items, "block": post_norm_block},
            "recbole_layout_and_init": {"input": normalized_unscaled_items, "block": post_norm_block, "init": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), required=True)
    parser.add_argument("--dataset", default="amazon-scientific")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--record", type=Path, default=None, help="the record to write (default "
                        f"{DEFAULT_FOLDER.as_posix()}/sasrec_design_ablation-<variant>.json)")
    args = parser.parse_args()
    patches = VARIANTS[args.variant]
    if "input" in patches:
        SelfAttentionBackbone.input_embeddings = patches["input"]
    if "block" in patches:
        TransformerBlock.forward = patches["block"]
    if patches.get("init"):
        SelfAttentionBackbone.__init__ = recbole_initialisation(SelfAttentionBackbone.__init__)
    config = build_config({
        "data": {"dataset": args.dataset},
        "model": {"name": "sasrec", "max_len": 50, "hidden": 64, "layers": 2, "heads": 1, "dropout": 0.2},
        "train": {"loss": "ce", "lr": 0.001, "epochs": 200, "patience": 10, "progress": False, "threads": 1},
    })
    metrics = train_run(config, args.out / args.variant)
    keys = ("valid/full/ndcg@10", "test/full/ndcg@10", "test/full/recall@10")
    table = {"title": f"SASRec on {args.dataset} with one piece of RecBole's design",
             "columns": [{"name": "variant"}, *({"name": key, "digits": 4} for key in keys), {"name": "best epoch"}],
             "rows": [[args.variant, *(metrics[key] for key in keys), metrics.get("best_epoch")]],
             "note": "Full ranking, history masked; hidden 64, 2 blocks, 1 head, max_len 50, dropout 0.2, CE, Adam "
                     "1e-3, patience 10, one thread."}
    name = f"sasrec_design_ablation-{args.variant}"
    record = build_measurement(name, f"SASRec design ablation: {args.variant}", [table], threads=1)
    publish_measurement(record, args.record)


if __name__ == "__main__":
    main()
