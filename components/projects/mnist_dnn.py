"""mnist-dnn: the seed's fully connected 784-128-128-128-10 ReLU/softmax net, Adam, 10 epochs (batch 64 here; the seed's 20 in params.yaml's comment) [seed 002]."""

from __future__ import annotations

from components.projects.mnist import MnistProject


class MnistDNN(MnistProject):
    name = "mnist-dnn"
    summary = "Fully connected 784-128-128-128-10 net on MNIST IDX (offline: Fashion-MNIST); accuracy, parameter count"
