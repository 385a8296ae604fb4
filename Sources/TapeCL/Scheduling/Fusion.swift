import Synchronization
@_spi(Runtime) import TapeCLRuntime

/// Elementwise fusion: an elementwise op does not always run at once. Its result may be *pending*,
/// an expression over its inputs; when something needs the elements (another kind of op, a read,
/// the end of `gradient`), the whole pending expression runs as one fused kernel, which reads
/// each input once and writes only the result. Chains like `sin(x) * x + exp(-x)` and their
/// backward rules then cost one pass over memory instead of one per op, and on a device where a
/// launch costs more than a small op (``DeviceCore/fusesSmallResults``: OpenCL), a chain of scalar
/// ops like W1's costs one launch per few dozen ops.
///
/// Fusion never changes a value: the fused kernel rounds to the element type after every op, as
/// separate kernels would (tested bit for bit on every device). It applies to float ops whose
/// inputs have the result's shape or one element, and to broadcasting one element; on the host
/// only to results of at least ``minimumCount`` elements. An expression grows to at most
/// ``maximumOps`` distinct ops (``maximumSmallOps`` for results of at most ``smallCount``
/// elements), then its inputs are computed first. A pending tensor used by two kernels is computed
/// in each (no memory is kept for it).
///
/// A small chain's kernel is compiled once the chain has proved that it repeats
/// (``Backend/prepareFused(_:dtype:wait:)``); until then its expression runs one launch per op, so
/// a chain that runs once never waits for a compiler. A large chain's is compiled at its first use.
package enum Fusion {
    /// Below this, launching (not memory traffic) is the cost: on the host, such ops run at once.
    package static let minimumCount = 1 << 16
    package static let maximumOps = 16
    /// Recomputing a shared value costs nothing next to a launch at this size, so expressions grow longer
    /// (each op has at most two inputs and one extra output: 32 ops keep a kernel within OpenCL's
    /// 1,024 bytes of arguments).
    package static let maximumSmallOps = 32
    package static let smallCount = 4096
    /// Tests turn fusion off to compare with the unfused result.
    @TaskLocal package static var enabled = true

    /// When a pending expression's fused kernel is built (``FusedBuild``): once the chain repeats
    /// (the default), at once (tests of the fused kernels), or never (tests of the step-by-step way).
    @TaskLocal package static var kernels = FusedBuild.whenRepeated

    /// The pending result of `op` on `inputs`, or nil when the op is to run at once.
    static func deferred(_ op: Op, _ inputs: Inputs, shape: [Int], dtype: DType, core: DeviceCore) -> Tensor? {
        let count = Shape.count(shape)
        let small = count <= smallCount
        guard count >= minimumCount || core.fusesSmallResults, op.fusable == .always || small && op.fusable != .never,
            dtype.isFloatingPoint, !crossCheckEnabled, inputs.allSatisfy({ $0.shape == shape || $0.count == 1 }),
            enabled
        else { return nil }
        switch op.forward {
        case .unary, .binary: break
        case .gather where inputs[0].count == 1: break  // one element broadcast (a sum's cotangent): read in place
        default: return nil
        }
        var nodes = NodeList.empty
        var ops = 1
        for input in inputs {
            guard let e = input.expression else { continue }
            ops += e.ops
            // ids grow (a tensor's is above its inputs'), so appending keeps the list sorted
            if small { nodes = NodeList.union(nodes, e.nodes, adding: input.id) }
        }
        if small {
            // Over the limit, the input with the most pending ops is computed first, and the kernel
            // that computes it also writes its own pending inputs (a backward chain's cotangent is
            // read again by the next term: else computed twice); what the others still need is then
            // counted afresh (a value that kernel wrote is computed now).
            var rest =
                nodes.count + 1 > maximumSmallOps
                ? inputs.filter(\.isPending).sorted { $0.pendingOps > $1.pendingOps } : []
            while nodes.count + 1 > maximumSmallOps && !rest.isEmpty {
                let cut = rest.removeFirst()
                if let e = cut.expression { e.forEachInput { $0.keep() } }
                cut.evaluate()
                nodes = rest.reduce(NodeList.empty) { NodeList.union($0, NodeList(pendingNodes(from: $1))) }
            }
            ops = nodes.count + 1
        } else if ops > maximumOps {
            // A large chain counts a shared value once per use and is cut by computing every input:
            // a waiting large value holds the memory of what it reads, so chains stay short.
            for input in inputs { input.evaluate() }
            ops = 1
        }
        let expression = Expression(
            forward: op.forward, first: inputs[0], second: inputs.count > 1 ? inputs[1] : nil, ops: ops, nodes: nodes)
        return Tensor(handle: TensorHandle(pending: expression, shape: shape, dtype: dtype, core: core))
    }

    /// The pending tensors `t`'s kernel would compute now, `t` included, in increasing order of id.
    static func pendingNodes(from t: Tensor) -> [TensorID] {
        var found: Set<TensorID> = []
        func visit(_ t: Tensor) {
            guard let e = t.expression, found.insert(t.id).inserted else { return }
            e.forEachInput(visit)
        }
        visit(t)
        return found.sorted { $0.raw < $1.raw }
    }

    /// A value a tape keeps for its backward: a large pending one is computed now, once (pending,
    /// it would hold its inputs' memory and run again in every backward kernel reading it); a small
    /// one stays pending and is written by the kernel that computes a later value from it (a launch
    /// of its own would cost more than its work).
    static func settle(_ t: Tensor) {
        if t.count > smallCount { t.evaluate() } else { t.keep() }
    }

    /// One fused kernel computing `root` (of `count` elements): its steps, its inputs (computed
    /// tensors), and the pending tensors it writes too (the program's `outputs`): those a tape
    /// keeps (``TensorHandle/keep()``) that have `count` elements, so the backward reads them instead of
    /// computing them again.
    static func program(for root: Expression, count: Int) -> (FusedProgram, [Tensor], [TensorHandle]) {
        var steps: [FusedProgram.Step] = []
        let nodeIDs = root.nodes.ids  // one snapshot for the walk's searches
        steps.reserveCapacity(2 * nodeIDs.count + 4)
        var inputs: [Tensor] = []
        var outputs: [Int] = []
        var kept: [TensorHandle] = []
        // The step of each value met so far, without hashing: a pending value by its place in the
        // root's sorted node list (a small chain's), a computed input by its place in `inputs`; a
        // large chain (no node list) looks its pending values up by id.
        var nodeSteps = [Int](repeating: -1, count: nodeIDs.count)
        var inputSteps: [Int] = []
        var largeSteps: [TensorID: Int] = [:]
        func step(_ e: Expression) -> Int {
            switch e.forward {
            case .unary(let name, let f):
                let a = visit(e.first)
                steps.append(.unary(name, f, a))
            case .binary(let name, let f):
                let (a, b) = (visit(e.first), visit(e.second!))
                steps.append(.binary(name, f, a, b))
            case .gather: return visit(e.first)  // a one-element input, read as such
            default: preconditionFailure("only elementwise ops are fused")
            }
            return steps.count - 1
        }
        func visit(_ t: Tensor) -> Int {
            let id = t.id
            guard let e = t.expression else {
                if let j = inputs.firstIndex(where: { $0.id == id }) { return inputSteps[j] }
                inputs.append(t)
                steps.append(.input(inputs.count - 1, single: t.count == 1))
                inputSteps.append(steps.count - 1)
                return steps.count - 1
            }
            let slot = nodeIDs.isEmpty ? nil : NodeList.place(of: id, in: nodeIDs)
            if let slot, nodeSteps[slot] >= 0 { return nodeSteps[slot] }
            if slot == nil, let k = largeSteps[id] { return k }
            let k = step(e)
            if let handle = t.handle, handle.isKept && t.count == count && !e.forward.isGather {
                outputs.append(k)
                kept.append(handle)
            }
            if let slot { nodeSteps[slot] = k } else { largeSteps[id] = k }
            return k
        }
        _ = step(root)
        return (FusedProgram(steps: steps, outputs: outputs), inputs, kept)
    }
}

extension Forward {
    fileprivate var isGather: Bool {
        if case .gather = self { true } else { false }
    }
}

/// One pending elementwise op (a class: the walks that read it take one reference, not a copy of
/// its op and lists).
package final class Expression: Sendable {
    let forward: Forward
    /// The op's inputs (a fused op, elementwise or a gather, has one or two), kept inline: no array.
    let first: Tensor
    let second: Tensor?
    /// Ops in the expression: for a large result a shared value counts once per use; for a small
    /// one once (`nodes.count + 1`).
    let ops: Int
    /// For a small result, the pending tensors its kernel computes besides itself, each once however
    /// often it is used, in increasing order of id (empty for a large one).
    let nodes: NodeList

    init(forward: Forward, first: Tensor, second: Tensor?, ops: Int, nodes: NodeList) {
        self.forward = forward
        self.first = first
        self.second = second
        self.ops = ops
        self.nodes = nodes
    }

    /// Calls `body` with each input.
    func forEachInput(_ body: (Tensor) -> Void) {
        body(first)
        if let second { body(second) }
    }
}

extension TensorHandle {
    /// A pending tensor's buffer: computed now by one fused kernel (or its steps one launch each,
    /// see ``Fusion``), then kept; the expression and its inputs go.
    func computed() throws -> Buffer {
        try state.withLock { s in
            switch s {
            case .none: preconditionFailure("TensorHandle.computed: not a pending tensor")
            case .computed(let buffer): return buffer
            case .pending(let expression):
                let count = Shape.count(shape)
                let (program, inputs, kept) = Fusion.program(for: expression, count: count)
                let out = try core.allocate(
                    bytes: count * dtype.byteSize, op: "a fused chain", shape: shape, dtype: dtype)
                // a large chain is built at once: its steps one by one would cost a pass over memory each
                let build = Fusion.kernels == .whenRepeated && count > Fusion.smallCount ? .now : Fusion.kernels
                let written = try withOperands(count: inputs.count, { inputs[$0].operand }) { operands in
                    try core.runFused(program, inputs: operands, into: out, shape: shape, dtype: dtype, build: build)
                }
                for (h, buffer) in zip(kept, written) { h.fill(buffer) }  // the values a tape keeps
                s = .computed(out)  // the expression and its inputs go
                return out
            }
        }
    }
}
