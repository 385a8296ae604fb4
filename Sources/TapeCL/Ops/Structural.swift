@_spi(Runtime) import TapeCLRuntime

// Reductions, layout changes and matmul.

extension Op {
    /// Reductions take normalized axes forming one contiguous block (`Tensor.reduce` transposes
    /// other axis sets first), so every backend reduces an `outer × extent × inner` view.
    static func reduceShape(_ name: String) -> ShapeRule {
        { shapes, p in
            let (s, r) = (shapes[0], p.reduction)
            return r.keepDims
                ? s.enumerated().map { r.axes.contains($0.offset) ? 1 : $0.element }
                : s.enumerated().filter { !r.axes.contains($0.offset) }.map(\.element)
        }
    }

    /// The shape of a reduction's output with its reduced axes kept as 1s.
    static func kept(_ s: Saved) -> [Int] {
        s.shapes[0].enumerated().map { s.parameters.reduction.axes.contains($0.offset) ? 1 : $0.element }
    }

    static let sum = Op(
        name: "sum", arity: 1, forward: .reduce(.sum), parameters: .reduction, shape: reduceShape("sum"),
        saves: .nothing,
        tolerance: .summed,
        call: { op, inputs, a in try single(inputs, op.name).reduce(op, axes: a.axes, keepDims: a.keepDims) },
        // spread dy over the summed axes
        vjp: { s, dy in s.grad(dy.reshaped(to: kept(s)).broadcast(to: s.shapes[0])) },
        jvp: { s, dx in
            dx[0].map { $0.sum(axes: s.parameters.reduction.axes, keepDims: s.parameters.reduction.keepDims) }
        })
    static let max = Op(
        name: "max", arity: 1, forward: .reduce(.max), parameters: .reduction, shape: reduceShape("max"),
        saves: .inputsAndOutput,
        tolerance: .exact,
        call: { op, inputs, a in try single(inputs, op.name).reduce(op, axes: a.axes, keepDims: a.keepDims) },
        vjp: { s, dy in s.grad(maxShare(s) * dy.reshaped(to: kept(s))) },  // shared among ties
        jvp: { s, dx in
            let r = s.parameters.reduction
            return dx[0].map { (maxShare(s) * $0).sum(axes: r.axes, keepDims: r.keepDims) }
        })

    /// 1/k at each of the k positions that attain the maximum, 0 elsewhere (TensorFlow's `_MaxGrad`).
    static func maxShare(_ s: Saved) -> Tensor {
        let hits = (s.x .== s.y.reshaped(to: kept(s))).cast(to: s.x.dtype)  // TensorFlow's cast(equal(y, x))
        return hits / hits.sum(axes: s.parameters.reduction.axes, keepDims: true)
    }

    static let reshape = Op(
        name: "reshape", arity: 1, forward: .alias, parameters: .shape,
        shape: { shapes, p in
            guard Shape.count(p.shape) == Shape.count(shapes[0]) else {
                throw TapeError.shape(
                    "reshape: cannot reshape \(Shape.describe(shapes[0])) (\(Shape.count(shapes[0])) "
                        + "elements) to \(Shape.describe(p.shape))"
                )
            }
            return p.shape
        }, saves: .nothing, tolerance: .exact,
        call: { op, inputs, a in try single(inputs, op.name).reshapedChecked(to: a.shape ?? []) },
        checkCase: { m, n in CheckCase([[m, n]]) { $0[0].reshaped(to: [n, m]) } },
        vjp: { s, dy in s.grad(dy.reshaped(to: s.shapes[0])) },
        jvp: { s, dx in dx[0].map { $0.reshaped(to: s.parameters.shape) } })

    /// A ``Strided`` copy: the permutation and the matching input strides.
    static let transpose = Op(
        name: "transpose", arity: 1, forward: .gather, parameters: .strided,
        shape: { shapes, p in p.strided.permutation.map { shapes[0][$0] } },
        saves: .nothing, tolerance: .exact,
        call: { op, inputs, _ in
            let x = try single(inputs, op.name)
            return try x.transposedChecked(permutation: Array((0..<x.rank).reversed()))
        }, checkCase: { m, n in CheckCase([[3, m, n]]) { $0[0].transposed(permutation: [2, 0, 1]) } },
        vjp: { s, dy in s.grad(dy.transposed(permutation: inverse(s.parameters.strided.permutation))) },
        jvp: { s, dx in dx[0].map { $0.transposed(permutation: s.parameters.strided.permutation) } })

    /// Broadcast to the ``Strided`` shape (stride 0 along the broadcast axes); the backward is the
    /// identity because the tape walk sums every cotangent down to its input's shape.
    static let broadcast = Op(
        name: "broadcast", arity: 1, forward: .gather, parameters: .strided,
        shape: { shapes, p in
            guard Shape.broadcast(shapes[0], p.shape) == p.shape else {
                throw TapeError.shape(
                    "broadcast: \(Shape.describe(shapes[0])) does not broadcast to \(Shape.describe(p.shape))")
            }
            return p.shape
        }, saves: .nothing, tolerance: .exact,
        call: { op, inputs, a in try single(inputs, op.name).broadcastChecked(to: a.shape ?? []) },
        checkCase: { m, n in CheckCase([[n]]) { $0[0].broadcast(to: [m, n]) } },
        vjp: { s, dy in s.grad(dy) },
        jvp: { s, dx in dx[0].map { $0.broadcast(to: s.parameters.shape) } })

    static let cast = Op(
        name: "cast", arity: 1, forward: .cast, parameters: .conversion, shape: sameShape, saves: .nothing,
        tolerance: .exact,
        checkCase: { m, n in CheckCase([[m, n]], needsFloat64: true) { $0[0].cast(to: .float64) * 2 } },
        vjp: { s, dy in s.grad(dy.cast(to: s.parameters.conversion.from)) },
        jvp: { s, dx in dx[0].map { $0.cast(to: s.parameters.conversion.to) } })

    static let transfer = Op(
        name: "to", arity: 1, forward: .transfer, parameters: .transfer, shape: sameShape, saves: .nothing,
        tolerance: .exact,
        checkCase: { m, n in CheckCase([[m, n]]) { $0[0].to(.host) * 2 } },
        vjp: { s, dy in s.grad(dy.to(s.parameters.transfer.from)) },
        jvp: { s, dx in dx[0].map { $0.to(s.parameters.transfer.to) } })

    /// The identity that no gradient passes (``stopGradient(_:)``).
    static let stop = Op(
        name: "stopGradient", arity: 1, forward: .alias, shape: sameShape, saves: .nothing, differentiable: false,
        tolerance: .exact, checkCase: { m, n in CheckCase([[m, n]]) { stopGradient($0[0]) * $0[0] } },
        vjp: { _, _ in [nil] }, jvp: { _, _ in nil })

    static let matmul = Op(
        name: "matmul", arity: 2, forward: .matmul, parameters: .transposes,
        shape: { shapes, p in
            let t = p.transposes
            guard let g = MatmulShape(shapes[0], shapes[1], t.a, t.b) else {
                throw TapeError.shape(
                    "matmul: shapes \(Shape.describe(shapes[0]))\(t.a ? "ᵀ" : "") and "
                        + "\(Shape.describe(shapes[1]))\(t.b ? "ᵀ" : "") do not fit (need [M, K] @ "
                        + "[K, N], optionally batched [B, M, K])"
                )
            }
            return g.output
        }, saves: .inputs, floatOnly: true, tolerance: .matmul,
        vjp: { s, dy in
            let (ta, tb) = (s.parameters.transposes.a, s.parameters.transposes.b)
            return s.grads(
                ta
                    ? TapeCL.matmul(s.b, dy, transposeA: tb, transposeB: true)  // C = AᵀB:  dA = B·dCᵀ
                    : TapeCL.matmul(dy, s.b, transposeB: !tb),  // C = AB:   dA = dC·Bᵀ   (M×N · N×K → M×K)
                tb
                    ? TapeCL.matmul(dy, s.a, transposeA: true, transposeB: ta)  // C = ABᵀ:  dB = dCᵀ·A
                    : TapeCL.matmul(s.a, dy, transposeA: !ta))  // C = AB:   dB = Aᵀ·dC   (K×M · M×N → K×N)
        },
        jvp: { s, d in
            let (ta, tb) = (s.parameters.transposes.a, s.parameters.transposes.b)
            return plus(
                d[0].map { TapeCL.matmul($0, s.b, transposeA: ta, transposeB: tb) },
                d[1].map { TapeCL.matmul(s.a, $0, transposeA: ta, transposeB: tb) })
        })

    /// The inputs' elements one after another (row-major) in the shape its parameters give; any number of
    /// inputs. `stack` is this with shape `[n] + s`. Input i's cotangent is its range of `dy`.
    static let concat = Op(
        name: "concat", arity: variadic, forward: .concat, parameters: .shape,
        shape: { shapes, p in
            var total = 0
            for i in 0..<shapes.count { total += Shape.count(shapes[i]) }
            guard total == Shape.count(p.shape) else {
                throw TapeError.shape(
                    "concat: \(total) elements do not fill shape \(Shape.describe(p.shape)) "
                        + "(\(Shape.count(p.shape)) elements)"
                )
            }
            return p.shape
        }, saves: .nothing, fusable: .never, tolerance: .exact,
        checkCase: { m, n in CheckCase([[m, n], [m, n], [m, n]]) { stack($0, axis: 1) * 2 } },
        vjp: { s, dy in
            var offset = 0
            return Cotangents(
                s.inputs.map { input in
                    defer { offset += Shape.count(input.shape) }
                    return input.needs ? dy.range(from: offset, shape: input.shape) : nil
                })
        },
        jvp: { s, dx in
            guard dx.contains(where: { $0 != nil }) else { return nil }
            let parts = zip(s.inputs, dx).map { input, d in d ?? Tensor.zeros(like: input.value!) }
            return Op.concat(parts, shape: s.parameters.shape)
        })

    /// Elements `offset ..< offset + count(shape)` of the row-major input (an ``ElementRange``).
    /// Its cotangent is `dy` in place and zeros elsewhere (a `concat` with zeros on both sides).
    static let slice = Op(
        name: "slice", arity: 1, forward: .copyRange, parameters: .range,
        shape: { shapes, p in
            let r = p.range
            let (n, total) = (Shape.count(r.shape), Shape.count(shapes[0]))
            guard r.offset >= 0, r.offset <= total - n else {
                throw TapeError.shape(
                    "slice: elements \(r.offset)..<\(r.offset + n) are outside the \(total) of "
                        + "\(Shape.describe(shapes[0]))"
                )
            }
            return r.shape
        }, saves: .nothing, fusable: .never, tolerance: .exact,
        checkCase: { m, n in CheckCase([[m, n]]) { $0[0].range(from: n, shape: [m - 1, n]) * 2 } },
        vjp: { s, dy in
            let (total, offset) = (Shape.count(s.shapes[0]), s.parameters.range.offset)
            let before = Tensor.zeros(shape: [offset], dtype: dy.dtype, on: dy.device)
            let after = Tensor.zeros(shape: [total - offset - dy.count], dtype: dy.dtype, on: dy.device)
            return s.grad(Op.concat([before, dy, after], shape: s.shapes[0]))
        },
        jvp: { s, dx in dx[0].map { $0.range(from: s.parameters.range.offset, shape: s.parameters.range.shape) } })

    /// `concat` of `parts` into `shape`, stopping on bad input (for backward rules, whose shapes are right).
    static func concat(_ parts: [Tensor], shape: [Int]) -> Tensor {
        Tensor.stopping { try concat.apply(parts, .shape(shape)) }
    }

    static func inverse(_ permutation: [Int]) -> [Int] {
        var inv = permutation
        for (i, p) in permutation.enumerated() { inv[p] = i }
        return inv
    }
}
