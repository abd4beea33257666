"""Neural style transfer (Gatys et al.): the costs, and the optimisation of the generated image's pixels.

    J(G) = alpha * J_content(C, G) + beta * sum_l lambda_l * J_style^l(S, G)

with the course's normalisations: for activations of shape (n_C, n_H, n_W),
J_content = sum (a_C - a_G)^2 / (4 n_H n_W n_C) on one layer, and per style layer
J_style^l = sum (Gram_S - Gram_G)^2 / (4 n_C^2 (n_H n_W)^2), where Gram = A A^T for A = activations (n_C, n_H n_W).

Every cost is computed per image, so a batch of (content, style) pairs is optimised at once: Adam's updates
are per pixel, hence each pair's result is the same as if it were optimised alone.

Not a task of ``components.training.loop.fit``: what learns here is one image's pixels against fixed targets,
with no dataset, batches, validation or early stopping for the loop to own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


def gram_matrix(a: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) activations -> (N, C, C) Gram matrices A A^T, A being the (C, H*W) unrolled activations."""
    flat = a.flatten(2)
    return flat @ flat.transpose(1, 2)


def content_cost(a_content: torch.Tensor, a_generated: torch.Tensor) -> torch.Tensor:
    """Per image: sum of squared activation differences / (4 n_H n_W n_C)."""
    _, c, h, w = a_generated.shape
    return ((a_content - a_generated) ** 2).sum(dim=(1, 2, 3)) / (4 * c * h * w)


def layer_style_cost(gram_style: torch.Tensor, a_generated: torch.Tensor) -> torch.Tensor:
    """Per image: sum of squared Gram differences / (4 n_C^2 (n_H n_W)^2)."""
    _, c, h, w = a_generated.shape
    return ((gram_style - gram_matrix(a_generated)) ** 2).sum(dim=(1, 2)) / (4 * c**2 * (h * w) ** 2)


def style_cost(
    gram_styles: dict[str, torch.Tensor], feats: dict[str, torch.Tensor], weights: dict[str, float]
) -> torch.Tensor:
    """Per image: the layer style costs weighted by ``weights`` (lambda_l) and summed."""
    return sum(w * layer_style_cost(gram_styles[name], feats[name]) for name, w in weights.items())


@dataclass(frozen=True)
class Objective:
    content_layer: str
    style_weights: dict[str, float]  # layer -> lambda_l
    alpha: float = 10.0
    beta: float = 40.0

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys([self.content_layer, *self.style_weights]))


@dataclass
class Targets:
    """What the generated images are compared with: content activations and style Gram matrices, per pair."""

    content: torch.Tensor  # activations at the content layer, (N, C, H, W)
    grams: dict[str, torch.Tensor]  # style layer -> (N, C, C)


def targets(net, content: torch.Tensor, style: torch.Tensor, objective: Objective) -> Targets:
    with torch.no_grad():
        a_content = net(content, [objective.content_layer])[objective.content_layer]
        style_feats = net(style, list(objective.style_weights))
        return Targets(a_content, {n: gram_matrix(a) for n, a in style_feats.items()})


def costs(net, generated: torch.Tensor, target: Targets, objective: Objective) -> dict[str, torch.Tensor]:
    """Per image ``content``, ``style`` and ``total`` costs of ``generated`` ((N, 3, H, W) in [0, 1])."""
    feats = net(generated, objective.layers)
    j_content = content_cost(target.content, feats[objective.content_layer])
    j_style = style_cost(target.grams, feats, objective.style_weights)
    return {"content": j_content, "style": j_style, "total": objective.alpha * j_content + objective.beta * j_style}


def to_tensor(images: np.ndarray, device="cpu") -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [0, 1]."""
    return torch.tensor(np.asarray(images), device=device).permute(0, 3, 1, 2).contiguous().float() / 255


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.detach().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@dataclass(frozen=True)
class OptimiseConfig:
    steps: int = 300
    lr: float = 0.02
    optimizer: str = "adam"  # or "lbfgs"
    noise: float = 0.25  # the start: content + uniform noise in [-noise, noise], clipped to [0, 1]
    seed: int = 0


def stylise(
    net,
    content: np.ndarray,
    style: np.ndarray,
    objective: Objective,
    config: OptimiseConfig,
    on_step: Callable[[int, dict[str, np.ndarray]], None] | None = None,
    device="cpu",
) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """Optimise one generated image per (content[i], style[i]) pair, uint8 (N, H, W, 3) each.

    Returns the generated images (uint8) and, per step (step 0 = the noisy start), the per-pair costs as
    arrays; ``on_step(step, costs)`` sees each of them as it is computed.
    """
    net = net.to(device)
    c, s = to_tensor(content, device), to_tensor(style, device)
    target = targets(net, c, s, objective)
    noise = torch.empty_like(c).uniform_(
        -config.noise, config.noise, generator=torch.Generator(device).manual_seed(config.seed)
    )
    generated = (c + noise).clamp(0, 1).requires_grad_(True)
    if config.optimizer == "adam":
        opt = torch.optim.Adam([generated], lr=config.lr)
    elif config.optimizer == "lbfgs":  # one L-BFGS iteration per step; it shares one line search over the batch
        opt = torch.optim.LBFGS([generated], lr=config.lr, max_iter=1, history_size=20)
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}: adam or lbfgs")
    history: list[dict[str, np.ndarray]] = []

    def record(step: int, j: dict[str, torch.Tensor]) -> None:
        row = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in j.items()}
        history.append(row)
        if on_step is not None:
            on_step(step, row)

    for step in range(config.steps + 1):

        def closure():
            opt.zero_grad(set_to_none=True)
            j = costs(net, generated, target, objective)
            j["total"].sum().backward()
            closure.costs = j
            return j["total"].sum()

        if step == config.steps:  # the costs of the final image, without another update
            with torch.no_grad():
                record(step, costs(net, generated, target, objective))
            break
        opt.step(closure)
        record(step, closure.costs)  # the costs at the start of this step (step 0: the noisy content image)
        with torch.no_grad():
            generated.clamp_(0, 1)
    return to_uint8(generated), history
