"""W1–W6 in TensorFlow (eager GradientTape, CPU, intra-op threads 2, inter-op 1)."""
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")
import tensorflow as tf  # noqa: E402

from common import SIZES, args, peak_rss_bytes, random_normal, report, rss_bytes, timed  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(1)
PEER = "tensorflow-" + tf.__version__


def w1(links, quick):
    x = tf.constant(0.5)
    result = {}

    def once():
        with tf.GradientTape() as t:
            t.watch(x)
            y = x
            for _ in range(links):
                y = y + tf.sin(y) * 0.001
        g = t.gradient(y, x)
        result.update(y=float(y.numpy()), dy_dx=float(g.numpy()))

    s = timed(once, 3, 5 if quick else 20)
    report(PEER, "W1", links, [t * 1e6 / (3 * links) for t in s], **result)


def w2(batch, quick):
    x, target = tf.constant(random_normal((batch, 784), 1)), tf.constant(random_normal((batch, 10), 2))
    sizes = [(784, 512), (512, 512), (512, 10)]
    ws = [tf.Variable(random_normal((a, b), 10 + i, 1 / math.sqrt(a))) for i, (a, b) in enumerate(sizes)]
    bs = [tf.Variable(tf.zeros(b)) for _, b in sizes]
    losses = []

    def step():
        with tf.GradientTape() as t:
            h1 = tf.nn.relu(x @ ws[0] + bs[0])
            h2 = tf.nn.relu(h1 @ ws[1] + bs[1])
            loss = tf.reduce_mean((h2 @ ws[2] + bs[2] - target) ** 2)
        grads = t.gradient(loss, ws + bs)
        for p, gr in zip(ws + bs, grads):
            p.assign_sub(0.01 * gr)
        losses.append(float(loss.numpy()))

    s = timed(step, 3, 5 if quick else 20)
    report(PEER, "W2", batch, [t * 1e3 for t in s], first_loss=losses[0], last_loss=losses[-1])


def w3(n, quick):
    a, b = tf.constant(random_normal((n, n), 1)), tf.constant(random_normal((n, n), 2))
    check = {}

    def once():
        with tf.GradientTape() as t:
            t.watch([a, b])
            loss = tf.reduce_sum(a @ b)
        ga, gb = t.gradient(loss, [a, b])
        check["sum_dA"] = float(tf.reduce_sum(ga).numpy())

    s = timed(once, 2, 3 if quick else 10)
    report(PEER, "W3", n, [6 * n ** 3 / t / 1e9 for t in s], **check)


def w4(n, quick):
    x = tf.constant(random_normal((n,), 1))
    check = {}

    def once():
        with tf.GradientTape() as t:
            t.watch(x)
            loss = tf.reduce_sum(tf.sin(x) * x + tf.exp(-x))
        gx = t.gradient(loss, x)
        check["sum_gradient"] = float(tf.reduce_sum(gx).numpy())

    s = timed(once, 2, 3 if quick else 10)
    ms = [t * 1e3 for t in s]
    report(PEER, "W4", n, ms, **{"GB/s": sorted(8 * n / (t / 1e3) / 1e9 for t in ms)[len(ms) // 2]}, **check)


def w5(n, quick):
    x = tf.constant(random_normal((n,), 1))
    before = rss_bytes()
    with tf.GradientTape() as t:
        t.watch(x)
        y = x
        for _ in range(100):
            y = y + tf.sin(y) * 0.001
        target = tf.reduce_sum(y)
    g = t.gradient(target, x)
    del y, target
    peak = peak_rss_bytes() - before
    after = rss_bytes() - before + n * 4
    report(PEER, "W5", n, [peak / 1048576], peak_live_bytes=peak, live_after_bytes=after,
           x_plus_gradient_bytes=2 * n * 4, measure="peak RSS growth")


def w6(n, quick):
    x = tf.constant(random_normal((n, 32, 32, 16), 1))
    w = tf.constant(random_normal((3, 3, 16, 32), 2, 1 / 12))
    check = {}

    def once():
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            loss = tf.reduce_sum(tf.nn.relu(tf.nn.conv2d(x, w, strides=1, padding="SAME")))
        gx, gw = tape.gradient(loss, [x, w])
        check["sum_dx_plus_sum_dw"] = float(tf.reduce_sum(gw)) + float(tf.reduce_sum(gx))

    s = timed(once, 2, 3 if quick else 10)
    report(PEER, "W6", n, [3 * 2 * n * 32 * 32 * 32 * 3 * 3 * 16 / t / 1e9 for t in s], **check)


if __name__ == "__main__":
    chosen, quick = args()
    for w in chosen:
        globals()[w.lower()](SIZES[w][1 if quick else 0], quick)
