"""Model card (Markdown) for checkpoints shipped by ``bench train``, written from their JSON sidecars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _losses(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in values.items() if isinstance(v, (int, float)))


def _recipe(cfg: dict[str, Any]) -> str:
    return (f"batch {cfg['batch']} x {cfg['patch']}x{cfg['patch']} px patches, Adam lr {cfg['lr']:g}, "
            f"x{cfg['lr_gamma']:g} at {', '.join(f'{m:.0%}' for m in cfg['milestones'])} of the stage, "
            f"seed {cfg['seed']}, bf16 autocast: {cfg['bf16']}")


def _stage_line(number: int, stage: dict[str, Any]) -> str:
    cfg = stage.get("config") or {}
    start = "fine-tuned from the previous stage" if cfg.get("init_from") else "from a fresh initialisation"
    line = f"  {number}. {stage.get('iterations')} iterations, {start}; {stage.get('data')}"
    if cfg:
        line += f"; {_recipe(cfg)}"
    if stage.get("wall_time_s") is not None:
        line += f"; {stage['wall_time_s'] / 60:.1f} min on {stage.get('hardware')}"
    if stage.get("final_losses"):
        line += f"; last-batch losses {_losses(stage['final_losses'])}"
    return line


def render_model_card(sidecars: dict[str, Path], commands: dict[str, list[str]], data_sources: str,
                      notes: str = "") -> str:
    """Markdown describing each checkpoint: data, exact commands, iterations, wall time, hardware, backbones, losses.

    sidecars: checkpoint label -> its JSON sidecar; commands: label -> the exact commands that produced it, one
    per training stage, oldest first (a checkpoint fine-tuned with ``--init-from`` has several stages).
    """
    lines = ["# Model card: checkpoints trained by this project", "", "## Training data", "", data_sources, ""]
    for label, path in sidecars.items():
        info = json.loads(Path(path).read_text())
        cfg = info["config"]
        stages = [*info.get("earlier_stages", []), info]
        total_iters = info.get("total_iterations", info["iterations"])
        total_wall = info.get("total_wall_time_s", info["wall_time_s"])
        lines += [
            f"## {label} (`{Path(path).with_suffix('.pt').name}`)", "",
            f"- network: {info['network']['class']}, {info['network']['parameters']:,} parameters",
            f"- iterations: {total_iters} in {len(stages)} stage(s); wall time {total_wall / 60:.1f} min",
            "- stages:",
            *[_stage_line(n, stage) for n, stage in enumerate(stages, 1)],
        ]
        if info.get("stopped_by_time_limit"):
            lines.append(f"- the last stage stopped at the wall-clock limit ({info['iterations']} of "
                         f"{info['planned_iterations']} planned iterations)")
        lines.append(f"- loss weights: ssim {cfg['w_ssim']:g}"
                     + (f", seg {cfg['w_seg']:g}, pcl {cfg['w_pcl']:g}, lpisl {cfg['w_lpisl']:g}"
                        if cfg["model"] == "sapnet" else " (PReNet: -SSIM only)"))
        if info.get("backbones"):
            lines.append("- frozen loss networks:")
            lines += [f"  - {term}: {name}" for term, name in info["backbones"].items()]
        lines += ["", "Exact commands, one per stage:", "", "```", *(commands.get(label) or ["(not recorded)"]),
                  "```", ""]
    if notes:
        lines += ["## Notes", "", notes, ""]
    return "\n".join(lines)
