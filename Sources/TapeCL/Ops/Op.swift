import Foundation
@_spi(Runtime) import TapeCLRuntime

/// One differentiable primitive: everything TapeCL knows about it, in one value.
///
/// An op states its shape rule, its forward (a device kernel and a host loop, see ``Forward``),
/// what its backward needs saved, its reverse rule (`vjp`) and its forward rule (`jvp`). Every
/// field is non-optional, so an op without a backward rule does not compile. ``Op/all`` is the
/// only list of ops; tests, `tapecl check` and the cross-checks iterate it.
///
/// Backward rules are written with public tensor ops, never raw kernels, so an outer tape
/// records them and higher orders come for free. They return cotangents at the *output's* shape:
/// the tape walk sums each down to its input's shape, once, for every op.
package final class Op: Sendable {
    package typealias VJP = @Sendable (_ saved: Saved, _ dy: Tensor) -> Cotangents
    package typealias JVP = @Sendable (_ saved: Saved, _ dx: [Tensor?]) -> Tensor?
    package typealias ShapeRule = @Sendable (_ inputs: InputShapes, _ parameters: Parameters) throws -> [Int]

    package let name: String
    /// The number of inputs, or ``variadic`` (one or more).
    package let arity: Int
    /// How many of the last inputs are auxiliary (a bool mask, int32 ids) and exempt from the rule
    /// that inputs share one dtype; the public function checks their dtypes.
    package let auxiliary: Int
    package let forward: Forward
    /// The family of parameters the op takes (``Parameters/Kind``), checked when it is applied.
    package let parameters: Parameters.Kind
    /// The output's element type when it is fixed (bool for a comparison, int32 for argmax); else
    /// the input's, or a cast's target.
    package let result: DType?
    package let shape: ShapeRule
    package let saves: Saves
    /// Only float32 and float64 (transcendental functions, matmul).
    package let floatOnly: Bool
    /// Whether the op is recorded at all (comparisons and `stopGradient` are not: no gradient flows).
    package let differentiable: Bool
    /// Whether an elementwise result may wait to run in a fused kernel (see ``Fusion``).
    package let fusable: Fusing
    package let vjp: VJP
    package let jvp: JVP
    /// Where `tapecl check` draws random inputs (inside the domain, away from poles).
    package let sampleDomain: ClosedRange<Double>
    /// How closely each device must match the host (see ``Tolerance``).
    package let tolerance: Tolerance
    /// How `Tensor.apply(name, ...)` calls the op with its public arguments; nil for the ops
    /// that take none (elementwise and matmul are applied to their inputs) or are not called by name.
    package let call: Call?
    /// A random case for `tapecl check` when the forward kind does not give one (layout ops).
    package let checkCase: CheckSampler?

    package init(
        name: String, arity: Int, auxiliary: Int = 0, forward: Forward, parameters: Parameters.Kind = .none,
        result: DType? = nil, shape: @escaping ShapeRule, saves: Saves,
        floatOnly: Bool = false, differentiable: Bool = true, fusable: Fusing = .always,
        sampleDomain: ClosedRange<Double> = -2...2, tolerance: Tolerance = .library, call: Call? = nil,
        checkCase: CheckSampler? = nil, vjp: @escaping VJP, jvp: @escaping JVP
    ) {
        self.name = name
        self.arity = arity
        self.auxiliary = auxiliary
        self.forward = forward
        self.parameters = parameters
        self.result = result
        self.shape = shape
        self.saves = saves
        self.floatOnly = floatOnly
        self.differentiable = differentiable
        self.fusable = fusable
        self.vjp = vjp
        self.jvp = jvp
        self.sampleDomain = sampleDomain
        self.tolerance = tolerance
        self.call = call
        self.checkCase = checkCase
    }

    /// The arguments of `Tensor.apply(_:_:axes:keepDims:shape:)`.
    package struct CallArguments {
        package let axes: [Int]?
        package let keepDims: Bool
        package let shape: [Int]?
    }
    package typealias Call = @Sendable (_ op: Op, _ inputs: [Tensor], _ arguments: CallArguments) throws -> Tensor

    /// Input shapes for a check, whether the case needs float64 on the device, and how to apply the op.
    package struct CheckCase {
        package let shapes: [[Int]]
        package let needsFloat64: Bool
        package let apply: ([Tensor]) throws -> Tensor

        package init(_ shapes: [[Int]], needsFloat64: Bool = false, _ apply: @escaping ([Tensor]) throws -> Tensor) {
            self.shapes = shapes
            self.needsFloat64 = needsFloat64
            self.apply = apply
        }
    }
    /// A check case from two random dimensions `m` and `n` (1...40).
    package typealias CheckSampler = @Sendable (_ m: Int, _ n: Int) -> CheckCase

    /// The one input of an op called by name with one.
    static func single(_ inputs: [Tensor], _ name: String) throws -> Tensor {
        guard inputs.count == 1 else { throw TapeError.argument("\(name): expects 1 input, got \(inputs.count)") }
        return inputs[0]
    }
}

/// An op's inputs, borrowed for the call: held by the caller (on the stack for an operator's one or
/// two, so a call allocates no array), read in place, never kept (a tape or an expression that keeps
/// an input copies the tensor).
package struct Inputs: RandomAccessCollection {
    private let base: UnsafeBufferPointer<Tensor>
    private init(base: UnsafeBufferPointer<Tensor>) { self.base = base }
    package var startIndex: Int { 0 }
    package var endIndex: Int { base.count }
    package subscript(i: Int) -> Tensor { base[i] }

    /// Runs `body` with `tensors` as inputs.
    static func with<R>(_ tensors: [Tensor], _ body: (Inputs) throws -> R) rethrows -> R {
        try tensors.withUnsafeBufferPointer { try body(Inputs(base: $0)) }
    }
    /// Runs `body` with `a` (and `b`) as inputs, held on the stack.
    @inline(__always)
    static func with<R>(_ a: Tensor, _ b: Tensor? = nil, _ body: (Inputs) throws -> R) rethrows -> R {
        let count = b == nil ? 1 : 2
        return try withUnsafeTemporaryAllocation(of: Tensor.self, capacity: count) { memory in
            let start = memory.baseAddress!
            start.initialize(to: a)
            if let b { (start + 1).initialize(to: b) }
            defer { start.deinitialize(count: count) }
            return try body(Inputs(base: UnsafeBufferPointer(start: start, count: count)))
        }
    }
}

/// The inputs' shapes as shape rules and backward rules read them, `shapes[i]`, without building
/// an array per op: from the op's inputs, or from what a tape entry saved.
package struct InputShapes {
    private enum Source { case tensors(Inputs), saved([Saved.Input]) }
    private let source: Source
    init(inputs: Inputs) { source = .tensors(inputs) }
    init(saved: [Saved.Input]) { source = .saved(saved) }
    package subscript(i: Int) -> [Int] {
        switch source {
        case .tensors(let t): t[i].shape
        case .saved(let s): s[i].shape
        }
    }
    package var count: Int {
        switch source {
        case .tensors(let t): t.count
        case .saved(let s): s.count
        }
    }
}

/// What an entry on the tape keeps for its op's backward rule. Saving less frees memory sooner:
/// `relu` keeps only its output, `add` nothing.
package enum Saves: Sendable {
    case nothing, inputs, output, inputsAndOutput
    /// For a product: input *i* is kept only if the *other* input needs a gradient.
    case crossed
}

/// The values a rule sees: for each input its shape, whether it needs a cotangent and its value
/// if kept; the output if kept; the op's parameters. One array per tape entry.
package struct Saved: Sendable {
    package struct Input {
        package let shape: [Int]
        package var needs: Bool
        /// Set when the op's ``Saves`` keeps this input (`.crossed` keeps only some).
        package var value: Tensor?
    }
    package var inputs: [Input]
    package var output: Tensor?
    package let parameters: Parameters

    /// The first input (unary ops). A rule reads only what its op's ``Saves`` keeps.
    package var x: Tensor { inputs[0].value! }
    package var a: Tensor { inputs[0].value! }
    package var b: Tensor { inputs[1].value! }
    package var y: Tensor { output! }
    /// Input `i`'s shape: `shapes[i]`.
    package var shapes: InputShapes { InputShapes(saved: inputs) }

    /// One cotangent, computed only when needed.
    package func grad(_ dx: @autoclosure () -> Tensor) -> Cotangents { Cotangents(inputs[0].needs ? dx() : nil) }
    /// Two cotangents, each computed only when its input needs one.
    package func grads(_ da: @autoclosure () -> Tensor, _ db: @autoclosure () -> Tensor) -> Cotangents {
        Cotangents(inputs[0].needs ? da() : nil, inputs[1].needs ? db() : nil)
    }
}

/// What a backward rule returns: one cotangent per input, nil where none flows, at the output's
/// shape. Up to two are kept in the value itself (a rule of a unary or binary op allocates no list).
package struct Cotangents: RandomAccessCollection, ExpressibleByArrayLiteral {
    private let list: SmallArray<Tensor?>
    package init(_ a: Tensor?) { list = SmallArray(count: 1) { _ in a } }
    package init(_ a: Tensor?, _ b: Tensor?) { list = SmallArray(count: 2) { $0 == 0 ? a : b } }
    package init(_ all: [Tensor?]) { list = SmallArray(all) }
    package init(arrayLiteral all: Tensor?...) { self.init(all) }
    package var startIndex: Int { 0 }
    package var endIndex: Int { list.count }
    package subscript(i: Int) -> Tensor? { list[i] }
}

// MARK: - The table

extension Op {
    /// Every op, in table order: the one place that enumerates them.
    package static let all: [Op] = [
        neg, sin, cos, tan, exp, log, sqrt, tanh, sigmoid, relu, abs, safeLog,
        add, sub, mul, div, pow, maximum, minimum,
        step, sign,
        sum, max, reshape, transpose, broadcast, cast, transfer, stop, matmul, concat, slice,
        compareLess, compareLessEqual, compareGreater, compareGreaterEqual, compareEqual, compareNotEqual, select,
        argmax, argmin, take, segmentSumOp,
        im2col, col2im, maxPool, maxPoolPick, maxPoolGrad, avgPool, avgPoolGrad,
    ]

    package static func named(_ name: String) -> Op? { all.first { $0.name == name } }
}

// MARK: - Shape rules

extension Op {
    /// The arity of an op that takes one or more inputs (`concat`).
    static let variadic = -1

    static let sameShape: ShapeRule = { shapes, _ in shapes[0] }

    static func broadcastShape(_ name: String) -> ShapeRule {
        { shapes, _ in
            let (a, b) = (shapes[0], shapes[1])
            if a == b { return a }  // the common case, without building a shape
            guard let out = Shape.broadcast(a, b) else {
                throw TapeError.shape(
                    "\(name): shapes \(Shape.describe(a)) and \(Shape.describe(b)) do not broadcast")
            }
            return out
        }
    }
}
