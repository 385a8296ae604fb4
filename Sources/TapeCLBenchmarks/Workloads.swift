import Foundation
import TapeCL
import TapeCLNN
@_spi(Runtime) import TapeCLRuntime

/// The benchmark workloads of `bench/WORKLOADS.md`, defined once: `tapecl bench` and the
/// `Benchmarks/` package both run these. Setup (data, first kernel builds) is not timed; each
/// timed repetition ends by reading a value back to the host, so queued device work counts.
package struct Workload: Sendable {
    package let id: String
    package let name: String
    /// The unit of the figure of merit.
    package let figure: String
    package let size: Int
    package let quickSize: Int
    /// Whether a larger figure is better (GFLOP/s) or a smaller one (ms).
    package let higherIsBetter: Bool
    package let run: @Sendable (_ size: Int, _ device: Device, _ quick: Bool) throws -> Measurement

    package static let all: [Workload] = [chain, mlp, matmulWorkload, elementwise, memory, convolution]

    package static func named(_ id: String) -> Workload? { all.first { $0.id.lowercased() == id.lowercased() } }
}

/// One workload's result: the figure per timed repetition, plus checks and extras.
package struct Measurement: Sendable {
    package var samples: [Double]
    /// Values every implementation must agree on (W1's y and dy/dx, W2's first and last loss).
    package var checks: [(String, Double)] = []
    /// W5's byte counts.
    package var extra: [(String, Double)] = []

    package var median: Double {
        let s = samples.sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

/// `warmups` untimed runs of `body`, then the figure of each of `reps` runs.
func repeated(warmups: Int, reps: Int, _ body: () throws -> Double) rethrows -> [Double] {
    for _ in 0..<warmups { _ = try body() }
    return try (0..<reps).map { _ in try timedRepetition(body) }
}

/// One timed repetition, in a function of its own so that a profiler can leave the warm-ups (and
/// their kernel builds) out: `valgrind --tool=callgrind --toggle-collect='*timedRepetition*'`.
@inline(never)
func timedRepetition(_ body: () throws -> Double) rethrows -> Double { try body() }

/// Seconds taken by `body`.
@inline(__always)
package func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

extension Workload {
    /// The chain of W1 and W5: `links` times `y = y + sin(y)·0.001`, three recorded ops a link.
    package static func chain(from x: Tensor, links: Int) -> Tensor {
        var y = x
        for _ in 0..<links { y = y + sin(y) * 0.001 }
        return y
    }

    /// W1: 1000 links of `y = y + sin(y)·0.001` on a scalar (3000 recorded ops), then the gradient.
    static let chain = Workload(
        id: "W1", name: "chain", figure: "µs/op", size: 1000, quickSize: 1000, higherIsBetter: false
    ) { links, device, quick in
        try withDevice(device) {
            let x = Tensor(0.5)
            var result = (y: Float(0), g: Float(0))
            func once() throws -> Double {
                try seconds {
                    let tape = GradientTape()
                    tape.watch(x)
                    let y = tape.record { chain(from: x, links: links) }
                    let g = try tape.gradient(of: y, wrt: x)!
                    result = (y.scalar, g.scalar)
                } * 1e6 / Double(3 * links)
            }
            let samples = try repeated(warmups: 3, reps: quick ? 5 : 20, once)
            return Measurement(samples: samples, checks: [("y", Double(result.y)), ("dy/dx", Double(result.g))])
        }
    }

    /// W2: one SGD step of a 784-512-512-10 ReLU network on a batch of `size`.
    static let mlp = Workload(id: "W2", name: "mlp", figure: "ms/step", size: 256, quickSize: 32, higherIsBetter: false)
    { batch, device, quick in
        try withDevice(device) {
            let network = MLPWorkload(batch: batch)
            var losses: [Double] = []
            func step() throws -> Double {
                try seconds { losses.append(Double(try network.step().scalar)) } * 1e3
            }
            let samples = try repeated(warmups: 3, reps: quick ? 5 : 20, step)
            return Measurement(samples: samples, checks: [("first loss", losses.first!), ("last loss", losses.last!)])
        }
    }

    /// W3: `sum(A·B)` and its gradient with respect to A and B; 3 products of n³ multiply-adds.
    static let matmulWorkload = Workload(
        id: "W3", name: "matmul", figure: "GFLOP/s", size: 1024, quickSize: 256, higherIsBetter: true
    ) { n, device, quick in
        try withDevice(device) {
            let a = Tensor.randomNormal(shape: [n, n], seed: 1)
            let b = Tensor.randomNormal(shape: [n, n], seed: 2)
            var check = 0.0
            func once() throws -> Double {
                let t = try seconds {
                    let tape = GradientTape()
                    tape.watch([a, b])
                    let loss = tape.record { matmul(a, b).sum() }
                    let g = try tape.gradient(of: loss, wrt: [a, b])
                    check = Double(g[0]!.sum().scalar)  // the one read: waits for all three products
                }
                return 6 * pow(Double(n), 3) / t / 1e9
            }
            return Measurement(
                samples: try repeated(warmups: 2, reps: quick ? 3 : 10, once), checks: [("sum dA", check)])
        }
    }

    /// W4: `sum(sin(x)·x + exp(−x))` and its gradient over n elements.
    static let elementwise = Workload(
        id: "W4", name: "elementwise", figure: "ms", size: 1 << 24, quickSize: 1 << 18, higherIsBetter: false
    ) { n, device, quick in
        try withDevice(device) {
            let x = Tensor.randomNormal(shape: [n], seed: 1)
            var check = 0.0
            func once() throws -> Double {
                try seconds {
                    let tape = GradientTape()
                    tape.watch(x)
                    let loss = tape.record { (sin(x) * x + exp(-x)).sum() }
                    let g = try tape.gradient(of: loss, wrt: x)!
                    check = Double(g.sum().scalar)
                } * 1e3
            }
            let samples = try repeated(warmups: 2, reps: quick ? 3 : 10, once)
            let gbps = samples.map { 8 * Double(n) / ($0 / 1e3) / 1e9 }.sorted()[samples.count / 2]
            return Measurement(samples: samples, checks: [("sum gradient", check)], extra: [("GB/s", gbps)])
        }
    }

    /// W5: the W1 chain with 100 links over a vector, one-shot tape: peak live bytes, and what
    /// stays live after `gradient` (x and its gradient).
    static let memory = Workload(
        id: "W5", name: "memory", figure: "MiB peak", size: 1 << 22, quickSize: 1 << 16, higherIsBetter: false
    ) { n, shared, _ in
        let device = shared.isolated()  // its own allocator and statistics
        defer { device.release() }
        return try withDevice(device) {
            let x = Tensor.randomNormal(shape: [n], seed: 1)
            _ = 0.001.tensor(like: x)  // the chain's constant, cached per device
            let others = device.memory.liveBytes - x.byteCount  // live bytes that are not x (that constant)
            let (g, peak) = try { () throws -> (Tensor, Int) in
                device.resetPeakMemory()
                let tape = GradientTape()
                tape.watch(x)
                let target = tape.record { chain(from: x, links: 100).sum() }
                let g = try tape.gradient(of: target, wrt: x)!
                _ = g.sum().scalar
                return (g, device.memory.peakBytes)
            }()
            let after = device.memory.liveBytes - others
            withExtendedLifetime(g) {}
            return Measurement(
                samples: [Double(peak - others) / 1_048_576],
                extra: [
                    ("peak_live_bytes", Double(peak - others)), ("live_after_bytes", Double(after)),
                    ("x_plus_gradient_bytes", Double(x.byteCount + g.byteCount)),
                ])
        }
    }
}

extension Workload {
    /// W6: `sum(relu(conv2d(x, w, strides (1, 1), .same)))` and its gradient with respect to x and w;
    /// x `[n, 32, 32, 16]`, w `[3, 3, 16, 32]` normal(0, 1)/√(3·3·16); 3 convolutions of
    /// 2·n·32·32·32·3·3·16 flops each (forward, and the two gradients).
    static let convolution = Workload(
        id: "W6", name: "conv", figure: "GFLOP/s", size: 32, quickSize: 4, higherIsBetter: true
    ) { n, device, quick in
        try withDevice(device) {
            let x = Tensor.randomNormal(shape: [n, 32, 32, 16], seed: 1)
            let w = Tensor.randomNormal(shape: [3, 3, 16, 32], stddev: 1 / 12, seed: 2)
            var check = 0.0
            let flops = 3 * 2 * Double(n) * Double(32 * 32 * 32 * 3 * 3 * 16)
            func once() throws -> Double {
                let t = try seconds {
                    let tape = GradientTape()
                    tape.watch([x, w])
                    let loss = tape.record { relu(conv2d(x, filter: w, strides: (1, 1), padding: .same)).sum() }
                    let g = try tape.gradient(of: loss, wrt: [x, w])
                    check = Double(g[1]!.sum().scalar) + Double(g[0]!.sum().scalar)  // waits for both
                }
                return flops / t / 1e9
            }
            return Measurement(
                samples: try repeated(warmups: 2, reps: quick ? 3 : 10, once), checks: [("sum dx + sum dw", check)])
        }
    }
}

/// W2's network and data on the current device: `X[batch, 784]`, `Y[batch, 10]` normal(0, 1), weights
/// normal(0, 1)/√fan-in, biases zero; `loss = mean((relu(relu(X·W1 + b1)·W2 + b2)·W3 + b3 − Y)²)`, SGD
/// with learning rate 0.01. The data-parallel benchmark (`tapecl bench W2 --distributed`) runs it on a
/// share of the rows.
package final class MLPWorkload {
    package let x: Tensor
    package let target: Tensor
    package let weights: [Variable]
    package let biases: [Variable]
    package let parameters: [Variable]
    private let sgd = SGD(learningRate: 0.01)

    package init(batch: Int) {
        x = Tensor.randomNormal(shape: [batch, 784], seed: 1)
        target = Tensor.randomNormal(shape: [batch, 10], seed: 2)
        let sizes = [(784, 512), (512, 512), (512, 10)]
        weights = sizes.enumerated().map { i, s in
            Variable(
                Tensor.randomNormal(shape: [s.0, s.1], stddev: 1 / Double(s.0).squareRoot(), seed: UInt64(10 + i)))
        }
        biases = sizes.map { Variable(Tensor.zeros(shape: [$0.1])) }
        parameters = zip(weights, biases).flatMap { [$0, $1] }
    }

    /// The mean squared error on `rows` of the batch (all of it when nil).
    package func loss(rows: Range<Int>? = nil) -> Tensor {
        let (input, wanted) = rows.map { (x[$0], target[$0]) } ?? (x, target)
        let h1 = relu(matmul(input, weights[0]) + biases[0])
        let h2 = relu(matmul(h1, weights[1]) + biases[1])
        return meanSquaredError(predicted: matmul(h2, weights[2]) + biases[2], expected: wanted)
    }

    /// One SGD step.
    package func update(_ gradients: [Tensor?]) { sgd.update(parameters, gradients: gradients) }

    /// One training step on `rows` (all when nil): the loss, its gradient and the update; returns the
    /// loss (reading it waits for the update, queued before the read).
    package func step(rows: Range<Int>? = nil) throws -> Tensor {
        let tape = GradientTape()
        let loss = tape.record { self.loss(rows: rows) }
        update(try tape.gradient(of: loss, wrt: parameters))
        return loss
    }
}
