"""PyTorch's optimizer updates from fixed weights and gradients, for TapeCL's OptimizerTests.

Writes Tests/Fixtures/optimizers-torch.json: for each case the initial float32 weights,
the gradient of each step (fixed numbers, not a loss: the update rule alone is compared) and
PyTorch's weights after each step. Run: python Benchmarks/peers/optimizer_fixture.py (needs torch).
The Keras form of Adam has no PyTorch counterpart: its rows are Keras's documented update in float64.
"""
import json
import math
import sys

import torch

STEPS = 6
N = 7


def weights():
    return [0.5 * math.sin(1.3 * i + 0.2) for i in range(N)]


def gradient(t):
    # large and tiny components, a sign change, an exact zero: where epsilon's place matters
    return [math.cos(0.7 * t + 1.1 * i) * (10.0 ** (i % 4 - 2)) if i != 3 else 0.0 for i in range(N)]


def run(make):
    w = torch.tensor(weights(), dtype=torch.float32, requires_grad=True)
    optimizer = make([w])
    after = []
    for t in range(STEPS):
        w.grad = torch.tensor(gradient(t), dtype=torch.float32)
        optimizer.step()
        after.append([float(x) for x in w.detach()])
    return after


def keras_adam(lr, b1, b2, eps):
    w = [float(torch.tensor(x, dtype=torch.float32)) for x in weights()]
    m = [0.0] * N
    v = [0.0] * N
    after = []
    for t in range(STEPS):
        g = [float(torch.tensor(x, dtype=torch.float32)) for x in gradient(t)]
        step = t + 1
        lr_t = lr * math.sqrt(1 - b2**step) / (1 - b1**step)
        for i in range(N):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            w[i] -= lr_t * m[i] / (math.sqrt(v[i]) + eps)
        after.append(list(w))
    return after


cases = [
    ("adam", {"learningRate": 0.01, "epsilon": 1e-7}, lambda p: torch.optim.Adam(p, lr=0.01, eps=1e-7)),
    ("adamw", {"learningRate": 0.01, "weightDecay": 0.1, "epsilon": 1e-8},
     lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1, eps=1e-8)),
    ("rmsprop", {"learningRate": 0.01}, lambda p: torch.optim.RMSprop(p, lr=0.01)),
    ("rmsprop centered momentum", {"learningRate": 0.01, "momentum": 0.9, "centered": 1},
     lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.9, centered=True)),
    ("sgd momentum", {"learningRate": 0.1, "momentum": 0.9}, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
]
out = {
    "torch": torch.__version__,
    "weights": [float(torch.tensor(x, dtype=torch.float32)) for x in weights()],
    "gradients": [[float(torch.tensor(x, dtype=torch.float32)) for x in gradient(t)] for t in range(STEPS)],
    "cases": [{"name": name, "options": options, "after": run(make)} for name, options, make in cases]
    + [{"name": "adam keras form (Keras's documented update, float64)", "options": {"learningRate": 0.01, "epsilon": 1e-7},
        "after": keras_adam(0.01, 0.9, 0.999, 1e-7)}],
}
path = sys.argv[1] if len(sys.argv) > 1 else "Tests/Fixtures/optimizers-torch.json"
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", path, "with torch", torch.__version__)
