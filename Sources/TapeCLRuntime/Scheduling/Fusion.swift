import Synchronization

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
@_spi(Runtime) public enum Fusion {
    /// Below this, launching (not memory traffic) is the cost: on the host, such ops run at once.
    @_spi(Runtime) public static let minimumCount = 1 << 16
    @_spi(Runtime) public static let maximumOps = 16
    /// Recomputing a shared value costs nothing next to a launch at this size, so expressions grow longer
    /// (each op has at most two inputs and one extra output: 32 ops keep a kernel within OpenCL's
    /// 1,024 bytes of arguments).
    @_spi(Runtime) public static let maximumSmallOps = 32
    @_spi(Runtime) public static let smallCount = 4096
    /// Tests turn fusion off to compare with the unfused result.
    @TaskLocal @_spi(Runtime) public static var enabled = true

    /// When a pending expression's fused kernel is built (``FusedBuild``): once the chain repeats
    /// (the default), at once (tests of the fused kernels), or never (tests of the step-by-step way).
    @TaskLocal @_spi(Runtime) public static var kernels = FusedBuild.whenRepeated

    /// The pending result of `forward` on `inputs`, or nil when it is to run at once.
    static func deferred(
        _ forward: Forward, _ inputs: UnsafeBufferPointer<Storage>, shape: [Int], dtype: DType, core: DeviceCore,
        fusing: Fusing
    ) -> Storage? {
        let count = Shape.count(shape)
        let small = count <= smallCount
        guard count >= minimumCount || core.fusesSmallResults, fusing == .always || small && fusing != .never,
            dtype.isFloatingPoint, inputs.allSatisfy({ $0.shape == shape || $0.count == 1 }), enabled
        else { return nil }
        switch forward {
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
        let expression = PendingOp(
            forward: forward, first: inputs[0], second: inputs.count > 1 ? inputs[1] : nil, ops: ops, nodes: nodes)
        return Storage(pending: expression, shape: shape, dtype: dtype, core: core)
    }

    /// The pending tensors `t`'s kernel would compute now, `t` included, in increasing order of id.
    static func pendingNodes(from t: Storage) -> [TensorID] {
        var found: Set<TensorID> = []
        func visit(_ t: Storage) {
            guard let e = t.expression, found.insert(t.id).inserted else { return }
            e.forEachInput(visit)
        }
        visit(t)
        return found.sorted { $0.raw < $1.raw }
    }

    /// One fused kernel computing `root` (of `count` elements): its steps, its inputs (computed
    /// tensors), and the pending tensors it writes too (the program's `outputs`): those a tape
    /// keeps (``Storage/keep()``) that have `count` elements, so the backward reads them instead of
    /// computing them again.
    static func program(for root: PendingOp, count: Int) -> (FusedProgram, [Storage], [Storage]) {
        var steps: [FusedProgram.Step] = []
        let nodeIDs = root.nodes.ids  // one snapshot for the walk's searches
        steps.reserveCapacity(2 * nodeIDs.count + 4)
        var inputs: [Storage] = []
        var outputs: [Int] = []
        var kept: [Storage] = []
        // The step of each value met so far, without hashing: a pending value by its place in the
        // root's sorted node list (a small chain's), a computed input by its place in `inputs`; a
        // large chain (no node list) looks its pending values up by id.
        var nodeSteps = [Int](repeating: -1, count: nodeIDs.count)
        var inputSteps: [Int] = []
        var largeSteps: [TensorID: Int] = [:]
        func step(_ e: PendingOp) -> Int {
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
        func visit(_ t: Storage) -> Int {
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
            if t.isKept && t.count == count && !e.forward.isGather {
                outputs.append(k)
                kept.append(t)
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
@_spi(Runtime) public final class PendingOp: Sendable {
    let forward: Forward
    /// The op's inputs (a fused op, elementwise or a gather, has one or two), kept inline: no array.
    let first: Storage
    let second: Storage?
    /// Ops in the expression: for a large result a shared value counts once per use; for a small
    /// one once (`nodes.count + 1`).
    @_spi(Runtime) public let ops: Int
    /// For a small result, the pending tensors its kernel computes besides itself, each once however
    /// often it is used, in increasing order of id (empty for a large one).
    @_spi(Runtime) public let nodes: NodeList

    init(forward: Forward, first: Storage, second: Storage?, ops: Int, nodes: NodeList) {
        self.forward = forward
        self.first = first
        self.second = second
        self.ops = ops
        self.nodes = nodes
    }

    /// Calls `body` with each input.
    @_spi(Runtime) public func forEachInput(_ body: (Storage) -> Void) {
        body(first)
        if let second { body(second) }
    }
}

extension Storage {
    /// A pending tensor's buffer: computed now by one fused kernel (or its steps one launch each,
    /// see ``Fusion``), then kept; the expression and its inputs go.
    func computed() throws -> Buffer {
        try state.withLock { s in
            switch s {
            case .none: preconditionFailure("Storage.computed: not a pending tensor")
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

extension Storage {
    /// The elements as a backend reads them (a pending tensor is computed first).
    var operand: Operand { Operand(buffer: buffer, shape: shape, dtype: dtype) }
    /// ``operand``, or the error computing its buffer.
    func checkedOperand() throws -> Operand { Operand(buffer: try storage(), shape: shape, dtype: dtype) }
    /// The number of elements.
    @_spi(Runtime) public var count: Int { Shape.count(shape) }
    /// Whether the elements wait to be computed by a fused kernel.
    @_spi(Runtime) public var isPending: Bool { expression != nil }
    /// The ops a pending tensor's kernel would run now (0 for a computed one).
    @_spi(Runtime) public var pendingOps: Int { expression?.ops ?? 0 }

    /// Computes a pending tensor now (see ``Fusion``): its buffer then replaces the expression and
    /// the inputs it holds. Nothing for any other.
    @_spi(Runtime) public func evaluate() {
        guard isDeferred else { return }
        do { _ = try storage() } catch { stop(error, else: ()) }
    }

    /// A value a tape keeps for its backward: a large pending one is computed now, once (pending,
    /// it would hold its inputs' memory and run again in every backward kernel reading it); a small
    /// one stays pending and is written by the kernel that computes a later value from it (a launch
    /// of its own would cost more than its work).
    @_spi(Runtime) public func settle() {
        if count > Fusion.smallCount { evaluate() } else { keep() }
    }
}
