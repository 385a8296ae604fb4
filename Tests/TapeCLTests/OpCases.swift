import TapeCL
@_spi(Runtime) import TapeCLRuntime
import Testing

/// One test case per differentiable op of the table (`Op.all`), written with the public API.
/// `OpTableTests.everyOpHasACase` fails when an op is added without a case here.
struct OpCase: CustomTestStringConvertible, Sendable {
    let name: String  // the op of the table this case exercises
    let label: String
    let shapes: [[Int]]  // odd sizes, to hit remainder paths
    let small: [[Int]]  // for second order (finite differences of a gradient)
    let domain: ClosedRange<Double>
    /// Values this close to 0 are pushed away (kinks of relu/abs, log near 0).
    let avoidZero: Double
    /// Finite-difference step (a power of two where the op rounds through float32).
    let epsilon: Double
    let f: @Sendable ([Tensor]) -> Tensor

    var testDescription: String { label }

    init(
        _ name: String, _ label: String? = nil, shapes: [[Int]], small: [[Int]]? = nil,
        domain: ClosedRange<Double>? = nil,
        avoidZero: Double = 0, epsilon: Double = 1e-5, _ f: @escaping @Sendable ([Tensor]) -> Tensor
    ) {
        self.name = name
        self.label = label ?? name
        self.shapes = shapes
        self.small = small ?? shapes.map { $0.map { min($0, 5) } }
        self.domain = domain ?? Op.named(name)!.sampleDomain  // the op's own sampling domain unless a case widens it
        self.avoidZero = avoidZero
        self.epsilon = epsilon
        self.f = f
    }

    /// Deterministic inputs of `dtype` on `device`.
    func inputs(_ shapes: [[Int]], dtype: DType, on device: Device, seed: UInt64 = 7) -> [Tensor] {
        var rng = SplitMix64(seed: seed &+ UInt64(label.utf8.count))
        return shapes.map { shape in
            let values = (0..<shape.reduce(1, *)).map { _ -> Double in
                var v = domain.lowerBound + (domain.upperBound - domain.lowerBound) * rng.nextUnit()
                if Swift.abs(v) < avoidZero { v = v < 0 ? -avoidZero - Swift.abs(v) : avoidZero + v }
                return (v * 4096).rounded() / 4096  // exactly representable in float32
            }
            return Tensor(shape: shape, scalars: values, dtype: dtype, on: device)
        }
    }
}

let M = 45
let N = 65
let opCases: [OpCase] = [
    OpCase("neg", shapes: [[M, N]]) { -$0[0] },
    OpCase("sin", shapes: [[M, N]]) { sin($0[0]) },
    OpCase("cos", shapes: [[M, N]]) { cos($0[0]) },
    OpCase("tan", shapes: [[M, N]]) { tan($0[0]) },
    OpCase("exp", shapes: [[M, N]]) { exp($0[0]) },
    OpCase("log", shapes: [[M, N]]) { log($0[0]) },
    OpCase("sqrt", shapes: [[M, N]]) { sqrt($0[0]) },
    OpCase("tanh", shapes: [[M, N]]) { tanh($0[0]) },
    OpCase("sigmoid", shapes: [[M, N]]) { sigmoid($0[0]) },
    OpCase("relu", shapes: [[M, N]], avoidZero: 0.05) { relu($0[0]) },
    OpCase("abs", shapes: [[M, N]], avoidZero: 0.05) { abs($0[0]) },
    OpCase("step", "step (relu's mask)", shapes: [[M, N]], avoidZero: 0.05) { Op.named("step")!($0[0]) },
    OpCase("sign", "sign (abs's mask)", shapes: [[M, N]], avoidZero: 0.05) { Op.named("sign")!($0[0]) },
    OpCase(
        "safeLog", "pow (exponent gradient, safeLog)", shapes: [[M, N], [M, N]], domain: Op.named("pow")!.sampleDomain
    ) {
        pow($0[0], $0[1])
    },
    OpCase("add", shapes: [[M, N], [M, N]]) { $0[0] + $0[1] },
    OpCase("add", "add broadcast [M,N]+[N]", shapes: [[M, N], [N]]) { $0[0] + $0[1] },
    OpCase("add", "add broadcast [M,1]+[1,N]", shapes: [[M, 1], [1, N]]) { $0[0] + $0[1] },
    OpCase("sub", "sub broadcast [N]-[M,N]", shapes: [[N], [M, N]]) { $0[0] - $0[1] },
    OpCase("sub", shapes: [[M, N], [M, N]]) { $0[0] - $0[1] },
    OpCase("sub", "sub scalar-tensor", shapes: [[], [M, N]]) { $0[0] - $0[1] },
    OpCase("mul", shapes: [[M, N], [M, N]]) { $0[0] * $0[1] },
    OpCase("mul", "mul broadcast [3,M,N]*[M,1]", shapes: [[3, M, N], [M, 1]], small: [[2, 3, 4], [3, 1]]) {
        $0[0] * $0[1]
    },
    OpCase("div", shapes: [[M, N], [M, N]], domain: -2...2, avoidZero: 0.3) { $0[0] / $0[1] },
    OpCase("div", "div broadcast [M,N]/[N]", shapes: [[M, N], [N]], domain: -2...2, avoidZero: 0.3) { $0[0] / $0[1] },
    OpCase("pow", shapes: [[M, N], [M, N]]) { pow($0[0], $0[1]) },
    OpCase("pow", "pow with a literal exponent", shapes: [[M, N]]) { pow($0[0], 3) },
    OpCase("maximum", shapes: [[M, N], [M, N]]) { maximum($0[0], $0[1]) },
    OpCase("minimum", "minimum broadcast", shapes: [[M, N], [N]]) { minimum($0[0], $0[1]) },
    OpCase("sum", "sum all", shapes: [[M, N]]) { $0[0].sum() },
    OpCase("sum", "sum axis 0", shapes: [[M, N]]) { $0[0].sum(axes: [0]) },
    OpCase("sum", "sum axis -1 keepDims", shapes: [[M, N]]) { $0[0].sum(axes: [-1], keepDims: true) },
    OpCase("sum", "sum axes [0, 2] of rank 3", shapes: [[3, M, 7]], small: [[2, 3, 4]]) { $0[0].sum(axes: [0, 2]) },
    OpCase("sum", "mean axis 1", shapes: [[M, N]]) { $0[0].mean(axes: [1]) },
    OpCase("sum", "sum of 70000 elements (chunked order)", shapes: [[70_000]], small: [[9]]) { $0[0].sum() },
    OpCase("max", "max all", shapes: [[M, N]]) { $0[0].max() },
    OpCase("max", "max axis 0 keepDims", shapes: [[M, N]]) { $0[0].max(axes: [0], keepDims: true) },
    OpCase("reshape", shapes: [[M, N]]) { x in weighted(x[0].reshaped(to: [x[0].shape[1], -1])) },
    OpCase("transpose", shapes: [[M, N]]) { weighted($0[0].transposed()) },
    OpCase("transpose", "transpose rank 3", shapes: [[3, 5, 7]], small: [[2, 3, 4]]) {
        weighted($0[0].transposed(permutation: [2, 0, 1]))
    },
    OpCase("broadcast", shapes: [[N]]) { x in weighted(x[0].broadcast(to: [7, x[0].shape[0]])) },
    OpCase("cast", shapes: [[M, N]], epsilon: 1.0 / 4096) { x in
        (x[0].cast(to: x[0].dtype == .float64 ? .float32 : .float64) * 3).cast(to: x[0].dtype)
    },
    OpCase("to", shapes: [[M, N]]) { x in (x[0].to(.host) * 3).to(x[0].device) },
    OpCase("concat", "stack of three", shapes: [[M, N], [M, N], [M, N]]) { weighted(stack($0)) },
    OpCase("concat", "stack along axis 1", shapes: [[7, 5], [7, 5]]) { weighted(stack($0, axis: 1)) },
    OpCase("concat", "array literal [a, b]", shapes: [[N], [N]]) { x in weighted([x[0], x[1] * 2] as Tensor) },
    OpCase("slice", shapes: [[M, N]]) { x in
        weighted(x[0].range(from: x[0].shape[1] + 3, shape: [x[0].shape[0] - 2, x[0].shape[1]]))
    },
    OpCase("matmul", shapes: [[M, 33], [33, N]], small: [[3, 4], [4, 5]]) { matmul($0[0], $0[1]) },
    OpCase("matmul", "matmul transposeA", shapes: [[33, M], [33, N]], small: [[4, 3], [4, 5]]) {
        matmul($0[0], $0[1], transposeA: true)
    },
    OpCase("matmul", "matmul transposeB", shapes: [[M, 33], [N, 33]], small: [[3, 4], [5, 4]]) {
        matmul($0[0], $0[1], transposeB: true)
    },
    OpCase("matmul", "matmul both transposed", shapes: [[33, M], [N, 33]], small: [[4, 3], [5, 4]]) {
        matmul($0[0], $0[1], transposeA: true, transposeB: true)
    },
    OpCase("matmul", "matmul batched", shapes: [[3, 17, 9], [3, 9, 20]], small: [[2, 3, 4], [2, 4, 2]]) {
        matmul($0[0], $0[1])
    },
    OpCase(
        "matmul", "matmul batched with a shared matrix", shapes: [[3, 17, 9], [9, 20]], small: [[2, 3, 4], [4, 2]]
    ) { matmul($0[0], $0[1]) },
    OpCase(
        "matmul", "matmul batched with a shared left matrix", shapes: [[17, 9], [3, 9, 20]],
        small: [[3, 4], [2, 4, 2]]
    ) { matmul($0[0], $0[1]) },
    OpCase("select", "select(x > 0.3, x, 2y)", shapes: [[M, N], [M, N]]) { x in
        weighted(select(x[0] .> 0.3, x[0], x[1] * 2))
    },
    OpCase("select", "select broadcast", shapes: [[M, 1], [N]], small: [[3, 1], [4]]) { x in
        weighted(select(x[1] .> 0, x[0], x[1]))
    },
    OpCase("gather", "gather rows, repeated ids", shapes: [[7, N]], small: [[7, 3]]) { x in
        weighted(gather(x[0], indices: Tensor(shape: [2, 3], scalars: [Int32(6), 0, 0, 3, 6, 0], on: x[0].device)))
    },
    OpCase("gather", "gather along axis 1 of rank 3", shapes: [[5, 9, 4]], small: [[2, 9, 2]]) { x in
        weighted(gather(x[0], indices: Tensor([Int32(8), 2, 2, 0], on: x[0].device), axis: 1))
    },
    OpCase("segmentSum", shapes: [[6, N]], small: [[6, 3]]) { x in
        let ids = Tensor([Int32(4), 0, 0, 2, 4, 0], on: x[0].device)
        let window = AxisWindow(extent: 5, count: 6, inner: x[0].shape[1], output: [6, x[0].shape[1]])
        return weighted(Op.segmentSum(x[0], ids: ids, window: window, shape: [5, x[0].shape[1]]))
    },
    OpCase(
        "im2col", "conv2d 7×9, strides 2, same", shapes: [[2, 7, 9, 3], [3, 3, 3, 4]],
        small: [[1, 5, 5, 2], [3, 3, 2, 2]]
    ) {
        weighted(conv2d($0[0], filter: $0[1], strides: (2, 2), padding: .same))
    },
    OpCase(
        "im2col", "conv2d 7×9, strides 2, valid", shapes: [[2, 7, 9, 3], [3, 2, 3, 4]],
        small: [[1, 5, 5, 2], [2, 3, 2, 2]]
    ) {
        weighted(conv2d($0[0], filter: $0[1], strides: (2, 2), padding: .valid))
    },
    OpCase("col2im", shapes: [[40, 27]], small: [[9, 18]]) { x in
        let image = x[0].shape[0] == 40 ? [2, 7, 9, 3] : [1, 5, 5, 2]
        return weighted(
            try! Tensor.imageOp("col2im", x, imageShape: image, size: (3, 3), strides: (2, 2), padding: .same))
    },
    OpCase("maxPool", "maxPool2d 3×3, strides 2, same", shapes: [[2, 7, 9, 3]], small: [[1, 5, 5, 2]]) {
        weighted(maxPool2d($0[0], size: (3, 3), strides: (2, 2), padding: .same))
    },
    OpCase("maxPool", "maxPool2d 2×2 valid", shapes: [[2, 7, 9, 3]], small: [[1, 5, 5, 2]]) {
        weighted(maxPool2d($0[0], size: (2, 2), strides: (2, 2)))
    },
    OpCase("maxPoolPick", shapes: [[2, 7, 9, 3], [2, 7, 9, 3]], small: [[1, 5, 5, 2], [1, 5, 5, 2]]) { x in
        let y = try! Tensor.imageOp(
            "maxPoolPick", [stopGradient(x[0]), x[1]], imageShape: x[0].shape, size: (3, 3), strides: (2, 2),
            padding: .same)
        return weighted(y) + (x[0] * 0).sum()  // no gradient reaches x[0]: zeros, as finite differences say
    },
    OpCase("maxPoolGrad", shapes: [[2, 7, 9, 3], [2, 4, 5, 3]], small: [[1, 5, 5, 2], [1, 3, 3, 2]]) { x in
        let y = try! Tensor.imageOp(
            "maxPoolGrad", [stopGradient(x[0]), x[1]], imageShape: x[0].shape, size: (3, 3), strides: (2, 2),
            padding: .same)
        return weighted(y) + (x[0] * 0).sum()  // no gradient reaches x[0]: zeros, as finite differences say
    },
    OpCase("avgPool", "avgPool2d 3×3, strides 2, same", shapes: [[2, 7, 9, 3]], small: [[1, 5, 5, 2]]) {
        weighted(avgPool2d($0[0], size: (3, 3), strides: (2, 2), padding: .same))
    },
    OpCase("avgPool", "avgPool2d 2×2 valid", shapes: [[2, 7, 9, 3]], small: [[1, 5, 5, 2]]) {
        weighted(avgPool2d($0[0], size: (2, 2), strides: (2, 2)))
    },
    OpCase("avgPoolGrad", shapes: [[2, 4, 5, 3]], small: [[1, 3, 3, 2]]) { x in
        let image = x[0].shape[1] == 4 ? [2, 7, 9, 3] : [1, 5, 5, 2]
        return weighted(
            try! Tensor.imageOp("avgPoolGrad", x, imageShape: image, size: (3, 3), strides: (2, 2), padding: .same))
    },
]

/// `y` times a fixed, non-uniform weight of its shape, so a layout op's gradient is not a mere sum.
func weighted(_ y: Tensor) -> Tensor {
    y * Tensor(shape: y.shape, scalars: (0..<y.count).map { 0.5 + Double($0 % 17) / 16 }, dtype: y.dtype, on: y.device)
}
