"""W1–W6 in PyTorch (eager, CPU, 2 threads)."""
import math
import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
import torch  # noqa: E402

from common import SIZES, args, peak_rss_bytes, random_normal, report, rss_bytes, timed  # noqa: E402

torch.set_num_threads(2)
PEER = "pytorch-" + torch.__version__.split("+")[0]


def w1(links, quick):
    x = torch.tensor(0.5, requires_grad=True)
    result = {}

    def once():
        x.grad = None
        y = x
        for _ in range(links):
            y = y + torch.sin(y) * 0.001
        y.backward()
        result.update(y=y.item(), dy_dx=x.grad.item())

    s = timed(once, 3, 5 if quick else 20)
    report(PEER, "W1", links, [t * 1e6 / (3 * links) for t in s], **result)


def w2(batch, quick):
    x, target = torch.from_numpy(random_normal((batch, 784), 1)), torch.from_numpy(random_normal((batch, 10), 2))
    sizes = [(784, 512), (512, 512), (512, 10)]
    ws = [torch.from_numpy(random_normal((a, b), 10 + i, 1 / math.sqrt(a))).requires_grad_() for i, (a, b) in enumerate(sizes)]
    bs = [torch.zeros(b, requires_grad=True) for _, b in sizes]
    losses = []

    def step():
        h1 = torch.relu(x @ ws[0] + bs[0])
        h2 = torch.relu(h1 @ ws[1] + bs[1])
        loss = ((h2 @ ws[2] + bs[2] - target) ** 2).mean()
        grads = torch.autograd.grad(loss, ws + bs)
        with torch.no_grad():
            for p, gr in zip(ws + bs, grads):
                p -= 0.01 * gr
        losses.append(loss.item())

    s = timed(step, 3, 5 if quick else 20)
    report(PEER, "W2", batch, [t * 1e3 for t in s], first_loss=losses[0], last_loss=losses[-1])


def w3(n, quick):
    a = torch.from_numpy(random_normal((n, n), 1)).requires_grad_()
    b = torch.from_numpy(random_normal((n, n), 2)).requires_grad_()
    check = {}

    def once():
        ga, gb = torch.autograd.grad((a @ b).sum(), [a, b])
        check["sum_dA"] = ga.sum().item()

    s = timed(once, 2, 3 if quick else 10)
    report(PEER, "W3", n, [6 * n ** 3 / t / 1e9 for t in s], **check)


def w4(n, quick):
    x = torch.from_numpy(random_normal((n,), 1)).requires_grad_()
    check = {}

    def once():
        (gx,) = torch.autograd.grad((torch.sin(x) * x + torch.exp(-x)).sum(), [x])
        check["sum_gradient"] = gx.sum().item()

    s = timed(once, 2, 3 if quick else 10)
    ms = [t * 1e3 for t in s]
    report(PEER, "W4", n, ms, **{"GB/s": sorted(8 * n / (t / 1e3) / 1e9 for t in ms)[len(ms) // 2]}, **check)


def w5(n, quick):
    # Peak resident memory growth of the process during forward + gradient (PyTorch's CPU
    # allocator returns large blocks to the system, so this tracks live tensor bytes).
    x = torch.from_numpy(random_normal((n,), 1)).requires_grad_()
    before = rss_bytes()
    y = x
    for _ in range(100):
        y = y + torch.sin(y) * 0.001
    (g,) = torch.autograd.grad(y.sum(), [x])
    del y
    peak = peak_rss_bytes() - before
    after = rss_bytes() - before + x.numel() * 4      # x was live before
    report(PEER, "W5", n, [peak / 1048576], peak_live_bytes=peak, live_after_bytes=after,
           x_plus_gradient_bytes=x.numel() * 4 + g.numel() * 4, measure="peak RSS growth")


def w6(n, quick):
    # NHWC data and HWIO filter as TapeCL draws them, laid out as PyTorch's NCHW / OIHW.
    x = torch.from_numpy(random_normal((n, 32, 32, 16), 1)).permute(0, 3, 1, 2).contiguous().requires_grad_()
    w = torch.from_numpy(random_normal((3, 3, 16, 32), 2, 1 / 12)).permute(3, 2, 0, 1).contiguous().requires_grad_()
    check = {}

    def once():
        loss = torch.relu(torch.nn.functional.conv2d(x, w, stride=1, padding="same")).sum()
        gx, gw = torch.autograd.grad(loss, [x, w])
        check["sum_dx_plus_sum_dw"] = gw.sum().item() + gx.sum().item()

    s = timed(once, 2, 3 if quick else 10)
    report(PEER, "W6", n, [3 * 2 * n * 32 * 32 * 32 * 3 * 3 * 16 / t / 1e9 for t in s], **check)


if __name__ == "__main__":
    chosen, quick = args()
    for w in chosen:
        globals()[w.lower()](SIZES[w][1 if quick else 0], quick)
