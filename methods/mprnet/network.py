"""MPRNet deraining network (Zamir et al., "Multi-Stage Progressive Image Restoration", CVPR 2021).

Rebuilt from the layer definitions of the official ``Deraining/MPRNet.py`` (swz30/MPRNet @ 43feb2a):
module and parameter names match the official state dict key for key, so the released
``model_deraining.pth`` loads strictly.

Parameter count of the official definition (n_feat=40, scale_unetfeats=20, scale_orsnetfeats=16, num_cab=8,
kernel 3, reduction 4, no conv bias): 3,637,249. It is the sum of ``p.numel()`` over
``MPRNet().parameters()`` of the official module, where the single PReLU shared by every block counts once
(its weight appears under 110 state-dict keys; the state dict has 316 keys). By hand: a CAB of width c is
2*9c^2 + 2*c*(c/4); the three U-Net widths are 40, 60 and 80; ORSNet works at width 56.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(in_ch: int, out_ch: int, kernel_size: int, bias: bool = False, stride: int = 1) -> nn.Conv2d:
    """Same-size convolution (padding kernel_size // 2)."""
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=bias, stride=stride)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention (official ``CALayer``)."""

    def __init__(self, channels: int, reduction: int, bias: bool) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1, bias=bias),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1, bias=bias),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.avg_pool(x))


class CAB(nn.Module):
    """Channel attention block: conv-act-conv, channel attention, residual."""

    def __init__(self, n_feat: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module) -> None:
        super().__init__()
        self.CA = ChannelAttention(n_feat, reduction, bias)
        self.body = nn.Sequential(conv(n_feat, n_feat, kernel_size, bias), act, conv(n_feat, n_feat, kernel_size, bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.CA(self.body(x)) + x


def cab_stack(n: int, n_feat: int, kernel_size: int, reduction: int, bias: bool, act: nn.Module) -> nn.Sequential:
    return nn.Sequential(*[CAB(n_feat, kernel_size, reduction, bias, act) for _ in range(n)])


class SupervisedAttention(nn.Module):
    """Supervised attention module (official ``SAM``): returns (features, stage image)."""

    def __init__(self, n_feat: int, kernel_size: int, bias: bool) -> None:
        super().__init__()
        self.conv1 = conv(n_feat, n_feat, kernel_size, bias)
        self.conv2 = conv(n_feat, 3, kernel_size, bias)
        self.conv3 = conv(3, n_feat, kernel_size, bias)

    def forward(self, x: torch.Tensor, x_img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.conv2(x) + x_img
        attention = torch.sigmoid(self.conv3(img))
        return self.conv1(x) * attention + x, img


class Resample(nn.Module):
    """Bilinear x0.5 / x2 resize followed by a 1x1 convolution (official DownSample / UpSample)."""

    def __init__(self, in_ch: int, out_ch: int, scale: float) -> None:
        super().__init__()
        self.down_or_up = "down" if scale < 1 else "up"
        layers = [nn.Upsample(scale_factor=scale, mode="bilinear", align_corners=False),
                  nn.Conv2d(in_ch, out_ch, 1, bias=False)]
        setattr(self, self.down_or_up, nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.down_or_up)(x)


class SkipUpSample(Resample):
    """Up-sample then add the skip connection."""

    def __init__(self, in_ch: int, s_factor: int) -> None:
        super().__init__(in_ch + s_factor, in_ch, 2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.up(x) + skip


class Encoder(nn.Module):
    """Three-level U-Net encoder; with ``csff`` it fuses the previous stage's encoder/decoder features."""

    def __init__(self, n_feat: int, kernel_size: int, reduction: int, act: nn.Module, bias: bool,
                 s: int, csff: bool) -> None:
        super().__init__()
        widths = (n_feat, n_feat + s, n_feat + 2 * s)
        for level, width in enumerate(widths, start=1):
            setattr(self, f"encoder_level{level}", cab_stack(2, width, kernel_size, reduction, bias, act))
        self.down12 = Resample(widths[0], widths[1], 0.5)
        self.down23 = Resample(widths[1], widths[2], 0.5)
        self.csff = csff
        if csff:
            for level, width in enumerate(widths, start=1):
                setattr(self, f"csff_enc{level}", nn.Conv2d(width, width, 1, bias=bias))
            for level, width in enumerate(widths, start=1):
                setattr(self, f"csff_dec{level}", nn.Conv2d(width, width, 1, bias=bias))

    def _fuse(self, x: torch.Tensor, level: int, enc: list | None, dec: list | None) -> torch.Tensor:
        if enc is None or dec is None:
            return x
        return x + getattr(self, f"csff_enc{level}")(enc[level - 1]) + getattr(self, f"csff_dec{level}")(dec[level - 1])

    def forward(self, x: torch.Tensor, enc: list | None = None, dec: list | None = None) -> list[torch.Tensor]:
        enc1 = self._fuse(self.encoder_level1(x), 1, enc, dec)
        enc2 = self._fuse(self.encoder_level2(self.down12(enc1)), 2, enc, dec)
        enc3 = self._fuse(self.encoder_level3(self.down23(enc2)), 3, enc, dec)
        return [enc1, enc2, enc3]


class Decoder(nn.Module):
    """Three-level U-Net decoder with attention-filtered skips."""

    def __init__(self, n_feat: int, kernel_size: int, reduction: int, act: nn.Module, bias: bool, s: int) -> None:
        super().__init__()
        widths = (n_feat, n_feat + s, n_feat + 2 * s)
        for level, width in enumerate(widths, start=1):
            setattr(self, f"decoder_level{level}", cab_stack(2, width, kernel_size, reduction, bias, act))
        self.skip_attn1 = CAB(widths[0], kernel_size, reduction, bias, act)
        self.skip_attn2 = CAB(widths[1], kernel_size, reduction, bias, act)
        self.up21 = SkipUpSample(widths[0], s)
        self.up32 = SkipUpSample(widths[1], s)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        enc1, enc2, enc3 = feats
        dec3 = self.decoder_level3(enc3)
        dec2 = self.decoder_level2(self.up32(dec3, self.skip_attn2(enc2)))
        dec1 = self.decoder_level1(self.up21(dec2, self.skip_attn1(enc1)))
        return [dec1, dec2, dec3]


class ORB(nn.Module):
    """Original-resolution block: ``num_cab`` CABs and a conv, with a residual."""

    def __init__(self, n_feat: int, kernel_size: int, reduction: int, act: nn.Module, bias: bool, num_cab: int) -> None:
        super().__init__()
        blocks = [CAB(n_feat, kernel_size, reduction, bias, act) for _ in range(num_cab)]
        blocks.append(conv(n_feat, n_feat, kernel_size))
        self.body = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class ORSNet(nn.Module):
    """Stage-3 original-resolution subnetwork fed by stage-2 encoder/decoder features."""

    def __init__(self, n_feat: int, s_ors: int, kernel_size: int, reduction: int, act: nn.Module, bias: bool,
                 s_unet: int, num_cab: int) -> None:
        super().__init__()
        width = n_feat + s_ors
        for i in (1, 2, 3):
            setattr(self, f"orb{i}", ORB(width, kernel_size, reduction, act, bias, num_cab))
        self.up_enc1 = Resample(n_feat + s_unet, n_feat, 2)
        self.up_dec1 = Resample(n_feat + s_unet, n_feat, 2)
        self.up_enc2 = nn.Sequential(Resample(n_feat + 2 * s_unet, n_feat + s_unet, 2), Resample(n_feat + s_unet, n_feat, 2))
        self.up_dec2 = nn.Sequential(Resample(n_feat + 2 * s_unet, n_feat + s_unet, 2), Resample(n_feat + s_unet, n_feat, 2))
        for i in (1, 2, 3):
            setattr(self, f"conv_enc{i}", nn.Conv2d(n_feat, width, 1, bias=bias))
        for i in (1, 2, 3):
            setattr(self, f"conv_dec{i}", nn.Conv2d(n_feat, width, 1, bias=bias))

    def forward(self, x: torch.Tensor, enc: list[torch.Tensor], dec: list[torch.Tensor]) -> torch.Tensor:
        x = self.orb1(x) + self.conv_enc1(enc[0]) + self.conv_dec1(dec[0])
        x = self.orb2(x) + self.conv_enc2(self.up_enc1(enc[1])) + self.conv_dec2(self.up_dec1(dec[1]))
        x = self.orb3(x) + self.conv_enc3(self.up_enc2(enc[2])) + self.conv_dec3(self.up_dec2(dec[2]))
        return x


class MPRNetModel(nn.Module):
    """Three-stage MPRNet. forward: Bx3xHxW (H, W even; the plugin pads to a multiple of 8) ->
    [stage-3 image, stage-2 image, stage-1 image]; the stage-3 image is the restoration."""

    def __init__(self, in_c: int = 3, out_c: int = 3, n_feat: int = 40, scale_unetfeats: int = 20,
                 scale_orsnetfeats: int = 16, num_cab: int = 8, kernel_size: int = 3, reduction: int = 4,
                 bias: bool = False) -> None:
        super().__init__()
        act = nn.PReLU()  # one activation shared by every block, as in the official code
        k, r, s = kernel_size, reduction, scale_unetfeats
        for i in (1, 2, 3):
            setattr(self, f"shallow_feat{i}", nn.Sequential(conv(in_c, n_feat, k, bias), CAB(n_feat, k, r, bias, act)))
        self.stage1_encoder = Encoder(n_feat, k, r, act, bias, s, csff=False)
        self.stage1_decoder = Decoder(n_feat, k, r, act, bias, s)
        self.stage2_encoder = Encoder(n_feat, k, r, act, bias, s, csff=True)
        self.stage2_decoder = Decoder(n_feat, k, r, act, bias, s)
        self.stage3_orsnet = ORSNet(n_feat, scale_orsnetfeats, k, r, act, bias, s, num_cab)
        self.sam12 = SupervisedAttention(n_feat, 1, bias)
        self.sam23 = SupervisedAttention(n_feat, 1, bias)
        self.concat12 = conv(2 * n_feat, n_feat, k, bias)
        self.concat23 = conv(2 * n_feat, n_feat + scale_orsnetfeats, k, bias)
        self.tail = conv(n_feat + scale_orsnetfeats, out_c, k, bias)

    def forward(self, x3_img: torch.Tensor) -> list[torch.Tensor]:
        h, w = x3_img.shape[2], x3_img.shape[3]
        top, bot = x3_img[:, :, : h // 2], x3_img[:, :, h // 2 :]
        quarters = [top[..., : w // 2], top[..., w // 2 :], bot[..., : w // 2], bot[..., w // 2 :]]

        # stage 1: four quarters through the shared encoder, halves through the decoder
        f1 = [self.stage1_encoder(self.shallow_feat1(q)) for q in quarters]
        feat1_top = [torch.cat(pair, 3) for pair in zip(f1[0], f1[1], strict=True)]
        feat1_bot = [torch.cat(pair, 3) for pair in zip(f1[2], f1[3], strict=True)]
        res1_top, res1_bot = self.stage1_decoder(feat1_top), self.stage1_decoder(feat1_bot)
        sam_top, img1_top = self.sam12(res1_top[0], top)
        sam_bot, img1_bot = self.sam12(res1_bot[0], bot)
        stage1_img = torch.cat([img1_top, img1_bot], 2)

        # stage 2: two halves
        x2_top = self.concat12(torch.cat([self.shallow_feat2(top), sam_top], 1))
        x2_bot = self.concat12(torch.cat([self.shallow_feat2(bot), sam_bot], 1))
        feat2_top = self.stage2_encoder(x2_top, feat1_top, res1_top)
        feat2_bot = self.stage2_encoder(x2_bot, feat1_bot, res1_bot)
        feat2 = [torch.cat(pair, 2) for pair in zip(feat2_top, feat2_bot, strict=True)]
        res2 = self.stage2_decoder(feat2)
        sam3, stage2_img = self.sam23(res2[0], x3_img)

        # stage 3: full resolution
        x3 = self.concat23(torch.cat([self.shallow_feat3(x3_img), sam3], 1))
        x3 = self.stage3_orsnet(x3, feat2, res2)
        return [self.tail(x3) + x3_img, stage2_img, stage1_img]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Pad bottom/right by reflection so H and W are multiples of ``multiple`` (as the official demo.py does).

    Returns the padded tensor and the original H, W. Falls back to edge replication when the image is too
    small for reflection.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, h, w
