"""The original YOLOv5 (v6.0-v7.0 releases) detector, built from Ultralytics' own blocks.

The layers follow the ``yaml`` dict stored in every YOLOv5 checkpoint (``depth_multiple``, ``width_multiple``,
``anchors``, ``backbone``, ``head``), parsed with the rules of ``parse_model`` in YOLOv5's ``models/yolo.py``:
repeats ``n`` become ``max(round(n * depth_multiple), 1)`` when ``n > 1``; output channels of Conv / C3 / SPPF
become ``ceil(c2 * width_multiple / 8) * 8``; C3 takes the repeats as its third argument; Concat's channels are the
sum of its inputs'; Detect receives the channels of the layers it reads. The blocks are Ultralytics'
``Conv``, ``C3``, ``SPPF``, ``Concat`` and ``torch.nn.Upsample`` (same parameter names and maths as YOLOv5's
``models/common.py``; two differences are put right here: Ultralytics 8.4's SPPF has no activation after its
first convolution where YOLOv5's has SiLU, and YOLOv5's batch norms use ``eps=1e-3`` (``initialize_weights``)).

The head, :class:`AnchorDetect`, is YOLOv5's ``Detect``: per level a 1x1 convolution ``m.N`` giving
``na * (5 + nc)`` channels, a buffer ``anchors`` (nl x na x 2, in units of the level's stride), strides 8/16/32
measured by a forward pass as YOLOv5 does, and the decode
``xy = (sigmoid * 2 - 0.5 + grid) * stride``, ``wh = (sigmoid * 2) ** 2 * anchors * stride``; objectness and class
scores are sigmoids. The output is (B, N, 5 + nc): centre x, centre y, width, height (input pixels), objectness,
class probabilities.
"""

from __future__ import annotations

import ast
import math
from copy import deepcopy
from typing import Any

import torch
from torch import nn

from bench.errors import BadInputError
from bench.tasks.models.ultralytics_yolo import parse_activation, prepare_ultralytics

#: layer names a YOLOv5 yaml may use here (those of the official v6.0-v7.0 detection models)
SUPPORTED_LAYERS = ("Conv", "C3", "SPPF", "Concat", "nn.Upsample", "Detect")
BN_EPS = 1e-3  # YOLOv5 utils/torch_utils.py initialize_weights
BN_MOMENTUM = 0.03


def make_divisible(value: float, divisor: int = 8) -> int:
    return int(math.ceil(value / divisor) * divisor)


class AnchorDetect(nn.Module):
    """YOLOv5's anchor-based detection head (state names ``m.0.weight`` ... and ``anchors``)."""

    def __init__(self, nc: int, anchors: list | int, ch: list[int]) -> None:
        super().__init__()
        self.nc = int(nc)
        self.no = self.nc + 5
        self.nl = len(ch)
        if isinstance(anchors, int):  # "anchors: 3" in a yaml: the values come with the weights
            self.na = anchors
            table = torch.zeros(self.nl, anchors, 2)
        else:
            self.na = len(anchors[0]) // 2
            table = torch.tensor(anchors, dtype=torch.float32).view(self.nl, -1, 2)
        self.register_buffer("anchors", table)  # in units of each level's stride (YOLOv5 divides by the stride)
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
        self.stride = torch.ones(self.nl)  # set by the network after its stride pass (not part of the state dict)
        self.raw = False  # True: return the per-level maps undecoded (used to measure the strides)
        self._grids: dict[tuple[int, int, int, str, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}

    def _grid(self, level: int, ny: int, nx: int, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (level, ny, nx, str(ref.device), ref.dtype)
        if key not in self._grids:
            ys = torch.arange(ny, device=ref.device, dtype=ref.dtype)
            xs = torch.arange(nx, device=ref.device, dtype=ref.dtype)
            yv, xv = torch.meshgrid(ys, xs, indexing="ij")
            grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2) - 0.5
            stride = float(self.stride[level])
            anchor_grid = (self.anchors[level].to(ref.dtype) * stride).view(1, self.na, 1, 1, 2)
            self._grids[key] = (grid, anchor_grid)
        return self._grids[key]

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        maps = [conv(x) for conv, x in zip(self.m, feats, strict=True)]
        if self.raw:
            return maps
        out = []
        for level, p in enumerate(maps):
            b, _, ny, nx = p.shape
            p = p.view(b, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).sigmoid()
            grid, anchor_grid = self._grid(level, ny, nx, p)
            xy = (p[..., :2] * 2 + grid) * float(self.stride[level])
            wh = (p[..., 2:4] * 2) ** 2 * anchor_grid
            out.append(torch.cat((xy, wh, p[..., 4:]), -1).view(b, -1, self.no))
        return torch.cat(out, 1)

    def _apply(self, fn, recurse=True):  # keep the cached grids on the module's device
        self._grids = {}
        return super()._apply(fn, recurse)


def _arg(value: Any, nc: int, anchors: Any) -> Any:
    if not isinstance(value, str):
        return value
    named = {"nc": nc, "anchors": anchors, "None": None, "True": True, "False": False}
    if value in named:
        return named[value]
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value  # YOLOv5 keeps a string it cannot evaluate (e.g. "nearest")


class YOLOv5Net(nn.Module):
    """YOLOv5 from its yaml dict: ``model`` (an ``nn.Sequential`` of the layers) as in the official checkpoints."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        prepare_ultralytics()
        from ultralytics.nn.modules import C3, SPPF, Concat, Conv

        self.yaml = deepcopy(cfg)
        try:
            nc = int(cfg["nc"])
            anchors = cfg["anchors"]
            gd, gw = float(cfg["depth_multiple"]), float(cfg["width_multiple"])
            layout = list(cfg["backbone"]) + list(cfg["head"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"the model yaml lacks {exc} (expected nc, anchors, depth_multiple, width_multiple, "
                                f"backbone, head)") from exc
        act = parse_activation(cfg["activation"]) if cfg.get("activation") else nn.SiLU(inplace=True)
        na = (len(anchors[0]) // 2) if isinstance(anchors, list) else int(anchors)
        no = na * (nc + 5)
        blocks = {"Conv": Conv, "C3": C3, "SPPF": SPPF, "Concat": Concat, "nn.Upsample": nn.Upsample, "Detect": AnchorDetect}

        in_ch = int(cfg.get("ch", 3))
        channels = [in_ch]
        layers, save = [], []
        for i, row in enumerate(layout):
            try:
                f, n, name, args = row
            except (TypeError, ValueError):
                raise BadInputError(f"model yaml layer {i} is {row!r}, expected [from, number, module, args]") from None
            if name not in blocks:
                raise BadInputError(f"model yaml layer {i} is a {name!r}; this YOLOv5 builder knows "
                                    f"{', '.join(SUPPORTED_LAYERS)} (the official v6.0-v7.0 detection models)")
            block = blocks[name]
            args = [_arg(a, nc, anchors) for a in args]
            n = max(round(n * gd), 1) if n > 1 else n
            c_in = channels[f] if isinstance(f, int) else None
            if block in (Conv, C3, SPPF):
                c2 = args[0]
                if c2 != no:
                    c2 = make_divisible(c2 * gw, 8)
                args = [c_in, c2, *args[1:]]
                if block is C3:
                    args.insert(2, n)
                    n = 1
            elif block is Concat:
                c2 = sum(channels[x] for x in f)
            elif block is AnchorDetect:
                args = [args[0], args[1], [channels[x] for x in f]]
                c2 = None
            else:
                c2 = c_in
            module = nn.Sequential(*(block(*args) for _ in range(n))) if n > 1 else block(*args)
            module.i, module.f = i, f
            save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
            layers.append(module)
            if i == 0:
                channels = []
            channels.append(c2)
        self.model = nn.Sequential(*layers)
        self.save = sorted(set(save))
        for module in self.modules():
            if isinstance(module, Conv):  # every YOLOv5 Conv has the activation, SPPF's first one included
                module.act = act
            elif isinstance(module, nn.BatchNorm2d):
                module.eps, module.momentum = BN_EPS, BN_MOMENTUM
        head = self.model[-1]
        if not isinstance(head, AnchorDetect):
            raise BadInputError("the model yaml does not end with a Detect layer")
        self.nc = nc
        # strides as YOLOv5 measures them: a 256x256 forward, stride = 256 / feature height
        head.raw = True
        self.eval()  # leave the batch-norm statistics alone
        with torch.no_grad():
            maps = self.forward(torch.zeros(1, in_ch, 256, 256))
        self.train()
        head.raw = False
        head.stride = torch.tensor([256 / m.shape[-2] for m in maps])
        self.stride = head.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor | None] = []
        for module in self.model:
            if module.f != -1:
                x = outputs[module.f] if isinstance(module.f, int) else [x if j == -1 else outputs[j] for j in module.f]
            x = module(x)
            outputs.append(x if module.i in self.save else None)
        return x
