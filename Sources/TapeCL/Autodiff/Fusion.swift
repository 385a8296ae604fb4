import Synchronization
@_spi(Runtime) import TapeCLRuntime

/// Elementwise fusion: a large elementwise op does not run at once. Its result is *pending*, an
/// expression over its inputs; when something needs the elements (another kind of op, a read,
/// the end of `gradient`), the whole pending expression runs as one fused kernel, which reads
/// each input once and writes only the result. Chains like `sin(x) * x + exp(-x)` and their
/// backward rules then cost one pass over memory instead of one per op.
///
/// Fusion never changes a value: the fused kernel rounds to the element type after every op, as
/// separate kernels would (tested bit for bit on every device). It applies to float ops whose
/// result has at least ``minimumCount`` elements and whose inputs have the result's shape or one
/// element, and to broadcasting one element; an expression grows to at most ``maximumOps`` ops,
/// then its inputs are computed first. A pending tensor used by two kernels is computed in each
/// (no memory is kept for it).
package enum Fusion {
    /// Below this, launching (not memory traffic) is the cost, and ops run at once.
    package static let minimumCount = 1 << 16
    package static let maximumOps = 16
    /// Tests turn fusion off to compare with the unfused result.
    @TaskLocal package static var enabled = true

    /// The pending result of `op` on `inputs`, or nil when the op is to run at once.
    static func deferred(_ op: Op, _ inputs: [Tensor], shape: [Int], dtype: DType) -> Tensor? {
        guard Shape.count(shape) >= minimumCount, op.fusable, dtype.isFloatingPoint, !crossCheckEnabled, enabled,
            inputs.allSatisfy({ $0.shape == shape || $0.count == 1 })
        else { return nil }
        switch op.forward {
        case .unary, .binary: break
        case .gather where inputs[0].count == 1: break  // one element broadcast (a sum's cotangent): read in place
        default: return nil
        }
        var ops = 1 + inputs.reduce(0) { $0 + ($1.handle.lazy?.expression?.ops ?? 0) }
        if ops > maximumOps {
            for input in inputs { _ = input.buffer }  // compute the inputs, then start a new expression
            ops = 1
        }
        let expression = Expression(forward: op.forward, inputs: inputs, ops: ops)
        return Tensor(
            handle: TensorHandle(pending: expression, shape: shape, dtype: dtype, core: inputs[0].handle.core))
    }

    /// The steps of one fused kernel computing `root`, and its inputs (computed tensors).
    static func program(for root: Expression) -> (FusedProgram, [Tensor]) {
        var steps: [FusedProgram.Step] = []
        var inputs: [Tensor] = []
        var seen: [ObjectIdentifier: Int] = [:]
        func step(_ e: Expression) -> Int {
            switch e.forward {
            case .unary(let name, let f):
                let a = visit(e.inputs[0])
                steps.append(.unary(name, f, a))
            case .binary(let name, let f):
                let (a, b) = (visit(e.inputs[0]), visit(e.inputs[1]))
                steps.append(.binary(name, f, a, b))
            case .gather: return visit(e.inputs[0])  // a one-element input, read as such
            default: preconditionFailure("only elementwise ops are fused")
            }
            return steps.count - 1
        }
        func visit(_ t: Tensor) -> Int {
            let id = ObjectIdentifier(t.handle)
            if let k = seen[id] { return k }
            let k: Int
            if let e = t.handle.lazy?.expression {
                k = step(e)
            } else {
                inputs.append(t)
                steps.append(.input(inputs.count - 1, single: t.count == 1))
                k = steps.count - 1
            }
            seen[id] = k
            return k
        }
        _ = step(root)
        return (FusedProgram(steps: steps), inputs)
    }
}

/// One pending elementwise op.
package struct Expression: @unchecked Sendable {
    let forward: Forward
    let inputs: [Tensor]
    /// Ops in the expression (a shared sub-expression counts once per use).
    let ops: Int
}

/// A pending tensor's state: its expression until first use, then its buffer.
package final class Lazy: Sendable {
    private enum State { case pending(Expression), computed(Buffer) }
    private let state: Mutex<State>
    init(_ expression: Expression) { state = Mutex(.pending(expression)) }

    /// The expression, while not yet computed.
    var expression: Expression? { state.withLock { if case .pending(let e) = $0 { e } else { nil } } }

    func buffer(of handle: TensorHandle) throws -> Buffer {
        try state.withLock { s in
            switch s {
            case .computed(let buffer): return buffer
            case .pending(let expression):
                let (program, inputs) = Fusion.program(for: expression)
                let out = try handle.core.allocate(bytes: Shape.count(handle.shape) * handle.dtype.byteSize)
                try withOperands(count: inputs.count, { inputs[$0].operand }) { operands in
                    try handle.core.run(
                        Launch(
                            opName: "fused", forward: .fused(program), inputs: operands, output: out,
                            shape: handle.shape, dtype: handle.dtype, attributes: KernelParameters()))
                }
                s = .computed(out)  // the expression and its inputs go
                return out
            }
        }
    }
}
