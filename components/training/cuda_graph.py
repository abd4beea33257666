"""A training step's forward and backward replayed from CUDA graphs (``train.cuda_graphs``, CUDA only).

On a small model the host's cost of launching each kernel, not the GPU, sets the pace: the transformer's step
took 20.9 ms on one H200, as long as on two CPU cores. A CUDA graph launches a whole step's kernels at once.
Only the forward and backward are captured: the optimizer step, clipping and the LR schedule stay eager, since
the schedulers write plain floats into the optimizer's param groups each step, which a captured fused optimizer
would freeze at their value at capture time.

A graph replays fixed shapes, so there is one graph per batch signature (shapes and dtypes: a full batch and the
last, smaller one); a task that trims its batches to their longest row pads them to a fixed width instead when
``Runtime.static_shapes`` says so. A signature's first ``warmup`` steps run eagerly on a side stream (they are
real steps: the libraries' lazy set-up must happen before a capture), the next one is captured and replayed.

What a graph cannot hold: host synchronisation (``.item()``), shapes that depend on the data, and randomness
drawn on the host inside the loss (it would be frozen at its captured value). The first two fail the capture:
the run then goes on eagerly, with a warning. The third cannot be detected, so graphs are switched on per project
for tasks whose loss draws nothing on the host (the default is off).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence

import torch
from torch import nn

log = logging.getLogger("dlfolio")

LossFn = Callable[[Sequence[torch.Tensor]], tuple[torch.Tensor, object]]


class _Graph:
    def __init__(self, graph: torch.cuda.CUDAGraph, inputs: list[torch.Tensor], loss, weight, grads):
        self.graph, self.inputs, self.loss, self.weight, self.grads = graph, inputs, loss, weight, grads


def signature(batch: Sequence[torch.Tensor]) -> tuple:
    return tuple((tuple(t.shape), t.dtype, t.stride()) for t in batch)


class GraphedSteps:
    """``steps(batch) -> (loss, weight)`` leaves the batch's gradients in the parameters' ``.grad`` (as
    ``zero_grad`` then ``loss.backward()`` would) and returns the loss, detached, and the task's weight."""

    def __init__(self, loss_fn: LossFn, model: nn.Module, warmup: int = 2):
        self.loss_fn, self.warmup = loss_fn, warmup
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.graphs: dict[tuple, _Graph] = {}
        self.seen: Counter = Counter()
        self.failed: str | None = None  # why capture was given up, once it was
        self.current: tuple | None = None  # the signature whose gradients the parameters hold
        self.side = torch.cuda.Stream()

    def __call__(self, batch: Sequence[torch.Tensor]) -> tuple[torch.Tensor, object]:
        if self.failed is not None:
            return self._eager(batch)
        key = signature(batch)
        graph = self.graphs.get(key)
        if graph is None:
            self.seen[key] += 1
            if self.seen[key] <= self.warmup:
                return self._warm(batch)
            graph = self._capture(key, batch)
            if graph is None:
                return self._eager(batch)
        for static, t in zip(graph.inputs, batch, strict=True):
            static.copy_(t, non_blocking=True)
        graph.graph.replay()
        if self.current != key:  # another signature's graph wrote its own gradient buffers last
            for p, g in zip(self.params, graph.grads, strict=True):
                p.grad = g
            self.current = key
        weight = graph.weight.clone() if isinstance(graph.weight, torch.Tensor) else graph.weight
        return graph.loss.clone(), weight

    def _eager(self, batch):
        for p in self.params:
            p.grad = None
        self.current = None
        loss, weight = self.loss_fn(batch)
        loss.backward()
        return loss.detach(), weight

    def _warm(self, batch):
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            out = self._eager(batch)
        torch.cuda.current_stream().wait_stream(self.side)
        return out

    def _capture(self, key: tuple, batch) -> _Graph | None:
        inputs = [t.clone() for t in batch]
        for p in self.params:
            p.grad = None
        graph, stream = torch.cuda.CUDAGraph(), torch.cuda.current_stream()
        try:
            # thread_local: a data-prefetching thread's CUDA calls must not void the capture
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                loss, weight = self.loss_fn(inputs)
                loss.backward()
        except Exception as error:  # noqa: BLE001 - any failure to capture means: train this run eagerly
            while error.__context__ is not None:  # the capture's end fails too; the first failure says why
                error = error.__context__
            self.failed = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            log.warning("CUDA graphs off for this run: its step could not be captured (%s)", self.failed)
            self.graphs.clear()
            torch.cuda.set_stream(stream)  # a failed capture's end skips leaving its side stream
            _end_generator_capture()
            return None
        captured = _Graph(graph, inputs, loss.detach(), weight, [p.grad for p in self.params])
        self.graphs[key] = captured
        self.current = key
        return captured  # the capture ran nothing: the caller replays it for this very step


def _end_generator_capture() -> None:
    """A capture that fails leaves the CUDA random generator marked as capturing (its epilogue never ran), so
    every later random draw of the process raises "Offset increment outside graph capture encountered
    unexpectedly" (seen on an H200 with torch 2.11). One capture that completes ends that state."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        torch.empty(1, device="cuda").uniform_()
    del graph
