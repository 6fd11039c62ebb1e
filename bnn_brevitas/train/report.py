# SPDX-License-Identifier: BSD-3-Clause
"""What a run leaves behind besides its checkpoint: metrics, curves, summary and model card.

=====================  ==================================================================
``metrics.jsonl``      one JSON object per finished epoch (appended as training goes): train
                       and validation loss and top-1 (the test split is not evaluated per epoch)
``curves.png``         train/validation loss and top-1 per epoch (matplotlib, Agg backend)
``model_card.json``    dataset (train / validation / test sizes), the selected epoch and the
                       split that selected it, its validation and test top-1, bit widths per
                       layer kind, costs (``bnn_brevitas.metrics.count_costs``), resolved
                       training config, checkpoint and ONNX sha256, environment
``model_card.md``      the same, for people
=====================  ==================================================================
"""

from __future__ import annotations

import io
import json
import platform
from collections import Counter
from pathlib import Path
from typing import Any

from torch import nn


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(history: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """Loss and top-1 of train and validation per epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "o-"), ("val", "s-")):
        if any(h.get(f"{split}_acc") is None for h in history):
            continue  # no validation split
        ax_loss.plot(epochs, [h[f"{split}_loss"] for h in history], style, label=split)
        ax_acc.plot(epochs, [100 * h[f"{split}_acc"] for h in history], style, label=split)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="top-1 (%)", title="top-1 accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f} %"


def _loss(v: float | None) -> str:
    return "—" if v is None else f"{v:.4f}"


def selection_line(results: dict[str, Any]) -> str:
    """Which epoch was selected, by which split, and its validation and test top-1."""
    return (f"* selected by {results['selected_by']}: validation top-1 "
            f"{_pct(results['val_top1'])}, test top-1 {_pct(results['test_top1'])} (evaluated "
            f"once)")


def summary_table(history: list[dict[str, Any]], title: str, results: dict[str, Any]) -> str:
    """The per-epoch table printed at the end of a run (rich, rendered to text), the selected
    epoch marked with *, and the selection line below it."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption=selection_line(results))
    for col in ("epoch", "lr", "τ", "train loss", "train top-1", "val loss", "val top-1",
                "img/s", "time (s)"):
        table.add_column(col, justify="right")
    for h in history:
        mark = "*" if h["epoch"] == results["selected_epoch"] else ""
        table.add_row(f"{mark}{h['epoch']}", f"{h['lr']:.2e}", f"{h['tau']:.2g}",
                      f"{h['train_loss']:.4f}", f"{100 * h['train_acc']:.2f} %",
                      _loss(h.get("val_loss")), _pct(h.get("val_acc")),
                      f"{h['img_per_s']:.1f}", f"{h['train_seconds']:.0f}")
    buf = io.StringIO()
    Console(file=buf, width=110, force_terminal=False).print(table)
    return buf.getvalue()


def precision_summary(model: nn.Module, cost_layers: list) -> dict[str, list[dict[str, Any]]]:
    """Bit widths per layer kind: conv/linear layers grouped by (kind, W bits, input bits), and
    activation quantizers grouped by bit width (None = float)."""
    groups: dict[tuple, dict[str, Any]] = {}
    for lc in cost_layers:
        key = (lc.kind, lc.weight_bits, lc.input_bits)
        g = groups.setdefault(key, {"kind": lc.kind, "weight_bits": lc.weight_bits,
                                    "input_bits": lc.input_bits, "layers": 0, "params": 0,
                                    "macs": 0})
        g["layers"] += 1
        g["params"] += lc.params
        g["macs"] += lc.macs
    acts = Counter((type(m).__name__, m.expected_act_bits) for m in model.modules()
                   if hasattr(m, "expected_act_bits"))
    return {"layers": sorted(groups.values(), key=lambda g: -g["macs"]),
            "activations": [{"kind": k, "bits": b, "count": n}
                            for (k, b), n in sorted(acts.items(), key=lambda kv: str(kv[0]))]}


def environment() -> dict[str, str]:
    import brevitas
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "brevitas": brevitas.__version__, "machine": platform.machine()}


def _bits(b: int | None) -> str:
    return "float" if b is None else f"{b}"


def model_card_markdown(card: dict[str, Any]) -> str:
    r, d, c = card["results"], card["dataset"], card["costs"]
    lines = [
        f"# Model card: {card['model']}", "", card.get("description", ""), "",
        "| | |", "|---|---|",
        f"| dataset | {d['name']} ({d['train_samples']:,} train / {d['val_samples']:,} "
        f"validation, held out of the training set / {d['test_samples']:,} test, input "
        f"{'×'.join(map(str, d['input_shape']))}, {d['num_classes']} classes) |",
        f"| selected | epoch {r['selected_epoch']} of {r['epochs']}, by {r['selected_by']} |",
        f"| validation top-1 | {_pct(r['val_top1'])} (loss {_loss(r['val_loss'])}) |",
        f"| test top-1 | **{_pct(r['test_top1'])}** (loss {_loss(r['test_loss'])}; the selected "
        f"checkpoint, evaluated once) |",
        f"| epochs | {r['epochs']} ({r['train_seconds']:.0f} s training, "
        f"{r['img_per_s']:.1f} img/s) |",
        f"| quantized | {card['quantize']} |",
        f"| augmentation | {card['augmentation']} |",
        f"| params | {c['params']:,} ({c['binary_params']:,} binary) |",
        f"| BOPs / FLOPs / OPs | {c['bops']:,} / {c['flops']:,} / {c['ops']:,.0f} |",
        f"| checkpoint | `{card['checkpoint']['path']}` sha256 `{card['checkpoint']['sha256']}` |",
    ]
    if card.get("onnx"):
        o = card["onnx"]
        lines.append(f"| QONNX | `{o['path']}` sha256 `{o['sha256']}` (max abs diff "
                     f"{o['max_abs_diff']:.2e}, integer-exact {o['integer_exact']}) |")
    lines += ["", "## Bit widths per layer kind", "",
              "| layer | weight bits | input bits | layers | params | MACs |",
              "|---|---|---|---|---|---|"]
    for g in card["precision"]["layers"]:
        lines.append(f"| {g['kind']} | {_bits(g['weight_bits'])} | {_bits(g['input_bits'])} | "
                     f"{g['layers']} | {g['params']:,} | {g['macs']:,} |")
    lines += ["", "| activation quantizer | bits | count |", "|---|---|---|"]
    lines += [f"| {a['kind']} | {a['bits']} | {a['count']} |"
              for a in card["precision"]["activations"]]
    lines += ["", "## Training config", "", "```yaml", card["training_yaml"].rstrip(), "```",
              "", f"Environment: {json.dumps(card['environment'])}. Date: {card['date']}.", ""]
    return "\n".join(lines)


def write_model_card(run_dir: Path, card: dict[str, Any]) -> None:
    (run_dir / "model_card.json").write_text(json.dumps(card, indent=2))
    (run_dir / "model_card.md").write_text(model_card_markdown(card))
