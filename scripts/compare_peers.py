"""pixelseg's models against segmentation_models_pytorch's, torchvision's and Hugging Face transformers' of the same
architecture and encoder.

    pip install segmentation-models-pytorch transformers     # the "bench" extra: pip install -e .[bench]
    python scripts/compare_peers.py --size 512,512 --repeats 10

Both models of a pair are built with random weights, put in eval mode and timed under ``torch.inference_mode``
on the CPU, alternating (ours, theirs, ours, ...) so that machine noise hits both alike. Prints parameters,
median latencies and the ratio theirs / ours (above 1: pixelseg is faster).
"""

from __future__ import annotations

import argparse
import statistics

import torch

import pixelseg
from pixelseg.engine.benchmark import timed_call
from pixelseg.models.maskformer.model import semantic_log_scores


class SemanticMaskFormer(torch.nn.Module):
    """Hugging Face's MaskFormer with the semantic inference pixelseg's runs (the paper's marginalisation, masks
    upsampled to the input first, as ``post_process_semantic_segmentation`` does), so both sides do the same work."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        from transformers import MaskFormerConfig, MaskFormerForInstanceSegmentation, ResNetConfig

        backbone = ResNetConfig(depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048], layer_type="bottleneck",
                                out_features=["stage1", "stage2", "stage3", "stage4"])
        config = MaskFormerConfig(backbone_config=backbone, num_labels=num_classes, num_queries=100)
        self.model = MaskFormerForInstanceSegmentation(config)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=images)
        return semantic_log_scores(out.class_queries_logits, out.masks_queries_logits, images.shape[-2:])


class HuggingFaceDPT(torch.nn.Module):
    """Hugging Face's DPTForSemanticSegmentation as DPT-Base for segmentation: ViT-B/16-384, batch norm in the fusion
    units (the authors' segmentation model), no auxiliary head, LayerNorm eps 1e-6 (timm's), logits out."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        from transformers import DPTConfig, DPTForSemanticSegmentation

        config = DPTConfig(num_labels=num_classes, use_auxiliary_head=False, use_batch_norm_in_fusion_residual=True,
                           layer_norm_eps=1e-6)
        self.model = DPTForSemanticSegmentation(config)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=images).logits


def copy_dpt_weights(theirs: HuggingFaceDPT, ours: torch.nn.Module) -> None:
    """Hugging Face's DPT weights into pixelseg's (same network; query/key/value fused into timm's qkv), so that
    their outputs can be compared on one input."""
    hf, vit, decoder = theirs.model, ours.encoder.model, ours.decoder
    state = {"cls_token": hf.dpt.embeddings.cls_token, "pos_embed": hf.dpt.embeddings.position_embeddings,
             "patch_embed.proj.weight": hf.dpt.embeddings.patch_embeddings.projection.weight,
             "patch_embed.proj.bias": hf.dpt.embeddings.patch_embeddings.projection.bias}
    for i, layer in enumerate(hf.dpt.encoder.layer):
        attention = layer.attention.attention
        for kind in ("weight", "bias"):
            state[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat([getattr(getattr(attention, part), kind)
                                                             for part in ("query", "key", "value")])
            for ours_name, module in (("attn.proj", layer.attention.output.dense), ("norm1", layer.layernorm_before),
                                      ("mlp.fc1", layer.intermediate.dense), ("mlp.fc2", layer.output.dense),
                                      ("norm2", layer.layernorm_after)):
                state[f"blocks.{i}.{ours_name}.{kind}"] = getattr(module, kind)
    vit.load_state_dict(state, strict=False)
    neck = hf.neck
    for i, level in enumerate(decoder.reassemble):
        level.project_readout[0].load_state_dict(neck.reassemble_stage.readout_projects[i][0].state_dict())
        level.project.load_state_dict(neck.reassemble_stage.layers[i].projection.state_dict())
        level.resample.load_state_dict(neck.reassemble_stage.layers[i].resize.state_dict())
        level.to_features.load_state_dict(neck.convs[i].state_dict())
    for fusion, layer in zip(decoder.fusion, neck.fusion_stage.layers, strict=True):
        units = ([(fusion.lateral, layer.residual_layer1)] if fusion.lateral is not None else []) + [
            (fusion.refine, layer.residual_layer2)]
        for unit, theirs_unit in units:
            for index, part in ((1, "convolution1"), (2, "batch_norm1"), (4, "convolution2"), (5, "batch_norm2")):
                unit.body[index].load_state_dict(getattr(theirs_unit, part).state_dict())
        fusion.project.load_state_dict(layer.projection.state_dict())
    for index in (0, 1, 4):
        decoder.head[index].load_state_dict(hf.head.head[index].state_dict())


def peers(num_classes: int):
    """(label, our model, their model) for every architecture both sides have with the same encoder."""
    import segmentation_models_pytorch as smp
    import torchvision

    def ours(name, **kwargs):
        return pixelseg.create(name, num_classes=num_classes, **kwargs)

    yield ("U-Net, ResNet-34", lambda: ours("unet", encoder="resnet34"),
           lambda: smp.Unet("resnet34", encoder_weights=None, classes=num_classes), "smp")
    yield ("FPN, ResNet-34 (no 3x3 pyramid smoothing, as smp)", lambda: ours("fpn", encoder="resnet34",
                                                                             pyramid_smoothing=False),
           lambda: smp.FPN("resnet34", encoder_weights=None, classes=num_classes), "smp")
    yield ("DeepLabv3+, ResNet-50, OS 16 (aspp_conv, one fuse conv, as smp)",
           lambda: ours("deeplabv3plus", encoder="resnet50", aspp_conv=True, fuse_convs=1),
           lambda: smp.DeepLabV3Plus("resnet50", encoder_weights=None, classes=num_classes), "smp")
    yield ("DeepLabv3, ResNet-50, OS 8", lambda: ours("deeplabv3", encoder="resnet50"),
           lambda: smp.DeepLabV3("resnet50", encoder_weights=None, classes=num_classes), "smp")
    yield ("DeepLabv3, ResNet-50, OS 8", lambda: ours("deeplabv3", encoder="resnet50"),
           lambda: torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None,
                                                                      num_classes=num_classes, aux_loss=False),
           "torchvision")
    yield ("SegFormer-B0", lambda: ours("segformer", variant="b0"),
           lambda: smp.Segformer("mit_b0", encoder_weights=None, classes=num_classes), "smp")
    yield ("UPerNet, ConvNeXt-T (256-channel head, as smp)",
           lambda: ours("upernet", encoder="convnext_tiny", channels=256),
           lambda: smp.UPerNet("tu-convnext_tiny", encoder_weights=None, classes=num_classes), "smp")
    yield ("UPerNet, Swin-T (256-channel head, as smp)",
           lambda: ours("upernet", encoder="swin_tiny_patch4_window7_224", channels=256),
           lambda: smp.UPerNet("tu-swin_tiny_patch4_window7_224", encoder_weights=None, classes=num_classes,
                               strict_img_size=False), "smp")
    yield ("LinkNet, ResNet-18", lambda: ours("linknet", encoder="resnet18"),
           lambda: smp.Linknet("resnet18", encoder_weights=None, classes=num_classes), "smp")
    yield ("MaskFormer, ResNet-50, 100 queries", lambda: ours("maskformer", encoder="resnet50"),
           lambda: SemanticMaskFormer(num_classes), "transformers")
    yield ("DPT-Base, ViT-B/16-384", lambda: ours("dpt"),
           lambda: HuggingFaceDPT(num_classes), "transformers")


def check_dpt(num_classes: int, size: int = 384) -> None:
    """Hugging Face's DPT with random weights and batch-norm statistics, copied into pixelseg's: the largest
    difference of their logits on one random input (Hugging Face's DPT takes square inputs only)."""
    torch.manual_seed(0)
    theirs, ours = HuggingFaceDPT(num_classes).eval(), pixelseg.create("dpt", num_classes=num_classes).eval()
    with torch.no_grad():
        for module in theirs.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(), module.running_var.uniform_(0.5, 2.0)
    copy_dpt_weights(theirs, ours)
    images = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        mine, hf = ours(images), theirs(images)
    print(f"DPT-Base, Hugging Face's weights in pixelseg's network, 1x3x{size}x{size}: largest logit difference "
          f"{(mine - hf).abs().max().item():.3g} (logits' mean magnitude {hf.abs().mean().item():.3g})\n")


def timed(model, images: torch.Tensor) -> float:
    return timed_call(model, images)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512,512", help="input HEIGHT,WIDTH (smp needs multiples of 32)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    parser.add_argument("--num-classes", type=int, default=11)
    parser.add_argument("--only", help="only the architectures whose label contains this text, e.g. DeepLabv3+")
    parser.add_argument("--check-dpt", action="store_true", help="first show that pixelseg's DPT computes what "
                        "Hugging Face's does, with the same weights")
    args = parser.parse_args()
    if args.check_dpt:
        check_dpt(args.num_classes)
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.size.split(","))
    images = torch.randn(1, 3, height, width)
    print(f"1x3x{height}x{width}, {torch.get_num_threads()} CPU thread(s), median of {args.repeats} alternating "
          f"runs each, random weights, eval mode, torch.inference_mode\n")
    print("| architecture | peer | params ours (M) | params theirs (M) | ours (ms) | theirs (ms) | theirs / ours |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, build_ours, build_theirs, peer in peers(args.num_classes):
        if args.only and args.only not in label:
            continue
        torch.manual_seed(0)
        mine, theirs = build_ours().eval(), build_theirs().eval()
        times = {"ours": [], "theirs": []}
        try:
            with torch.inference_mode():
                timed(mine, images), timed(theirs, images)  # warm-up
                for _ in range(args.repeats):
                    times["ours"].append(timed(mine, images))
                    times["theirs"].append(timed(theirs, images))
        except RuntimeError as error:
            print(f"| {label} | {peer} | - | - | - | - | failed: {str(error).splitlines()[0]} |", flush=True)
            continue
        ours_ms, theirs_ms = (1000 * statistics.median(times[k]) for k in ("ours", "theirs"))
        params = [sum(p.numel() for p in m.parameters()) / 1e6 for m in (mine, theirs)]
        print(f"| {label} | {peer} | {params[0]:.2f} | {params[1]:.2f} | {ours_ms:.1f} | {theirs_ms:.1f} | "
              f"{theirs_ms / ours_ms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
