@_spi(Runtime) import TapeCLRuntime

// Ops computed element by element from the output's index: comparisons, select, argmax and argmin,
// gather by ids and its gradient. Each runs a kernel of Kernels/indexing.cl and, on the host, its
// twin in the runtime's HostIndexing.swift (the same arithmetic). Operands of comparisons and
// select are broadcast to the output's shape first (by the public functions), so the kernels read
// one index.

extension Op {
    /// A comparison: a bool mask, never recorded (no gradient flows through a comparison).
    static func comparison(_ name: String, kernel: String, _ test: @escaping @Sendable (Double, Double) -> Bool) -> Op {
        Op(
            name: name, arity: 2,
            forward: .indexed(
                IndexedKernel("compare_" + kernel, family: "indexing", host: HostIndexing.compare(test))),
            result: .bool, shape: sameShape, saves: .nothing, differentiable: false, fusable: .never, tolerance: .exact,
            call: { op, inputs, _ in
                guard inputs.count == 2 else {
                    throw TapeError.argument("\(op.name): expects 2 inputs, got \(inputs.count)")
                }
                return try Tensor.compared(op, inputs[0], inputs[1])
            },
            checkCase: { m, n in
                CheckCase([[m, n], [m, n]]) { x in try Tensor.compared(name, x[0], x[1]).cast(to: .float32) }
            },
            vjp: { _, _ in [nil, nil] }, jvp: { _, _ in nil })
    }

    static let compareLess = comparison("compareLess", kernel: "less") { $0 < $1 }
    static let compareLessEqual = comparison("compareLessEqual", kernel: "less_equal") { $0 <= $1 }
    static let compareGreater = comparison("compareGreater", kernel: "greater") { $0 > $1 }
    static let compareGreaterEqual = comparison("compareGreaterEqual", kernel: "greater_equal") { $0 >= $1 }
    static let compareEqual = comparison("compareEqual", kernel: "equal") { $0 == $1 }
    static let compareNotEqual = comparison("compareNotEqual", kernel: "not_equal") { $0 != $1 }

    /// `select(m, a, b)` as `[a, b, m]` of one shape (the mask last: it is bool, a and b share a dtype).
    static let select: Op = Op(
        name: "select", arity: 3, auxiliary: 1,
        forward: .indexed(
            IndexedKernel("select_mask", family: "indexing", host: HostIndexing.select)),
        shape: sameShape, saves: .inputs, fusable: .never, tolerance: .exact,
        call: { op, inputs, _ in  // [mask, a, b], as select(_:_:_:) takes them
            guard inputs.count == 3 else { throw TapeError.argument("select: expects 3 inputs, got \(inputs.count)") }
            return try Tensor.selected(inputs[0], inputs[1], inputs[2])
        },
        checkCase: { m, n in CheckCase([[m, n], [m, n], [m, n]]) { x in TapeCL.select(x[2] .> 0, x[0], x[1]) * 2 } },
        vjp: { s, dy in
            let mask = s.inputs[2].value!
            let zero = Tensor.zeros(shape: [], dtype: dy.dtype, on: dy.device)
            return [
                s.inputs[0].needs ? TapeCL.select(mask, dy, zero) : nil,
                s.inputs[1].needs ? TapeCL.select(mask, zero, dy) : nil, nil,
            ]
        },
        jvp: { s, d in
            guard d[0] != nil || d[1] != nil else { return nil }
            let zero = Tensor.zeros(like: s.a)
            return TapeCL.select(s.inputs[2].value!, d[0] ?? zero, d[1] ?? zero)
        })

    /// The index of the first largest (`argmax`) or smallest (`argmin`) element along an axis:
    /// int32, not recorded. Its ``AxisWindow`` views the input as [outer, extent, inner].
    static func arg(_ name: String, _ better: @escaping @Sendable (Double, Double) -> Bool) -> Op {
        Op(
            name: name, arity: 1,
            forward: .indexed(
                IndexedKernel(name, family: "indexing", host: HostIndexing.arg(better))),
            parameters: .axis, result: .int32, shape: { _, p in p.axis.output }, saves: .nothing, differentiable: false,
            fusable: .never, tolerance: .exact,
            call: { op, inputs, a in try single(inputs, op.name).argReduced(op, axis: a.axes?.first ?? -1) },
            checkCase: { m, n in CheckCase([[m, n]]) { x in x[0].argmax(axis: 0).cast(to: .float32) } },
            vjp: { _, _ in [nil] }, jvp: { _, _ in nil })
    }

    static let argmax = arg("argmax") { $0 > $1 }
    static let argmin = arg("argmin") { $0 < $1 }

    /// `gather`: rows of the middle axis of x viewed as [outer, n, inner], picked by int32 ids
    /// (`[x, ids]`, its ``AxisWindow`` with extent n and count m). Ids were checked to lie in 0..<n; the kernel reads
    /// nothing for one that does not. Its gradient adds the cotangent's rows of equal ids.
    static let take: Op = Op(
        name: "gather", arity: 2, auxiliary: 1,
        forward: .indexed(
            IndexedKernel("take", family: "indexing", host: HostIndexing.take)),
        parameters: .axis, shape: { _, p in p.axis.output }, saves: .inputs, fusable: .never, tolerance: .exact,
        call: { op, inputs, a in  // [x, ids], axes: [axis]
            guard inputs.count == 2 else { throw TapeError.argument("gather: expects 2 inputs, got \(inputs.count)") }
            return try Tensor.gathered(inputs[0], inputs[1], axis: a.axes?.first ?? 0)
        },
        checkCase: { m, n in
            CheckCase([[m, n]]) { x in
                let ids = Tensor(
                    shape: [2, 3], scalars: [Int32(m - 1), 0, 0, Int32(m / 2), Int32(m - 1), 0], on: x[0].device)
                return gather(x[0], indices: ids, axis: 0) * 2
            }
        },
        vjp: { s, dy in
            [s.inputs[0].needs ? segmentSum(dy, ids: s.b, window: s.parameters.axis, shape: s.shapes[0]) : nil, nil]
        },
        jvp: { s, d in d[0].map { Op.take($0, s.b, parameters: s.parameters) } })

    /// `take`'s gradient: `[dy, starts, order, ids]` → rows of equal ids summed, in increasing
    /// position (`order` lists the positions of each id, from `starts[id]` to `starts[id + 1]`).
    static let segmentSumOp: Op = Op(
        name: "segmentSum", arity: 4, auxiliary: 3,
        forward: .indexed(
            IndexedKernel("segment_sum", family: "indexing", host: HostIndexing.segmentSum)),
        parameters: .axis, shape: { _, p in p.axis.output }, saves: .inputs, floatOnly: true, fusable: .never,
        tolerance: .summed,
        checkCase: { m, n in
            CheckCase([[6, n]]) { x in
                let ids = Tensor(
                    shape: [6], scalars: [Int32(m - 1), 0, 0, Int32(m / 2), Int32(m - 1), 0], on: x[0].device)
                let window = AxisWindow(extent: m, count: 6, inner: n, output: [6, n])
                return segmentSum(x[0], ids: ids, window: window, shape: [m, n]) * 2
            }
        },
        vjp: { s, dy in
            let gather = s.parameters.axis.with(output: s.shapes[0])
            return [
                s.inputs[0].needs ? Op.take(dy, s.inputs[3].value!, parameters: .axis(gather)) : nil, nil, nil, nil,
            ]
        },
        jvp: { s, d in
            d[0].map { segmentSum($0, ids: s.inputs[3].value!, window: s.parameters.axis, shape: s.parameters.shape) }
        })

    /// The sum of `dy`'s rows (the middle axis of [outer, m, inner]) into the rows their ids name:
    /// a tensor of `shape` viewed as [outer, n, inner] (`window`: the gather's, extent n and count m).
    package static func segmentSum(_ dy: Tensor, ids: Tensor, window: AxisWindow, shape: [Int]) -> Tensor {
        let (n, m) = (window.extent, window.count)
        let values = ids.knownIDs ?? ids.scalars(as: Int32.self)  // ids from the host: no read
        var starts = [Int32](repeating: 0, count: n + 1)
        for id in values { starts[Int(id) + 1] += 1 }
        for r in 0..<n { starts[r + 1] += starts[r] }
        var next = starts
        var order = [Int32](repeating: 0, count: m)
        for (j, id) in values.enumerated() {
            order[Int(next[Int(id)])] = Int32(j)
            next[Int(id)] += 1
        }
        let flat = ids.reshaped(to: [m])
        return segmentSumOp(
            dy, Tensor(shape: [n + 1], scalars: starts, on: dy.device),
            Tensor(shape: [m], scalars: order, on: dy.device),
            flat, parameters: .axis(window.with(output: shape)))
    }
}
