"""Model card (Markdown) for checkpoints shipped by ``bench train``, written from their JSON sidecars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _losses(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in values.items() if isinstance(v, (int, float)))


def render_model_card(sidecars: dict[str, Path], commands: dict[str, str], data_sources: str, notes: str = "") -> str:
    """Markdown describing each checkpoint: data, exact command, iterations, wall time, hardware, backbones, losses.

    sidecars: checkpoint label -> its JSON sidecar; commands: label -> the exact command that produced it.
    """
    lines = ["# Model card: checkpoints trained by this project", "", "## Training data", "", data_sources, ""]
    for label, path in sidecars.items():
        info = json.loads(Path(path).read_text())
        cfg = info["config"]
        lines += [
            f"## {label} (`{Path(path).with_suffix('.pt').name}`)", "",
            f"- network: {info['network']['class']}, {info['network']['parameters']:,} parameters",
            f"- data: {info['data']}",
            f"- iterations: {info['iterations']} of {info['planned_iterations']} planned"
            + (" (stopped by the wall-clock limit)" if info.get("stopped_by_time_limit") else ""),
            (f"- batch {cfg['batch']} x {cfg['patch']}x{cfg['patch']} px patches, Adam lr {cfg['lr']:g}, "
            f"x{cfg['lr_gamma']:g} at {', '.join(f'{m:.0%}' for m in cfg['milestones'])} of training, "
            f"seed {cfg['seed']}, bf16 autocast: {cfg['bf16']}"),
            f"- wall time: {info['wall_time_s'] / 60:.1f} min; hardware: {info['hardware']}",
            f"- loss weights: ssim {cfg['w_ssim']:g}"
            + (f", seg {cfg['w_seg']:g}, pcl {cfg['w_pcl']:g}, lpisl {cfg['w_lpisl']:g}" if cfg["model"] == "sapnet" else " (PReNet: -SSIM only)"),
            f"- final losses (last batch): {_losses(info['final_losses'])}",
        ]
        if info.get("backbones"):
            lines.append("- frozen loss networks:")
            lines += [f"  - {term}: {name}" for term, name in info["backbones"].items()]
        lines += ["", "Exact command:", "", "```", commands.get(label, "(not recorded)"), "```", ""]
    if notes:
        lines += ["## Notes", "", notes, ""]
    return "\n".join(lines)
