import TapeCL
@_spi(Runtime) import TapeCLRuntime
import Testing

/// One-element results on the host are computed by the caller and kept in the tensor's handle
/// (no buffer, no launch): they must be the bits a launch writes, and hold memory only when asked.
@Suite("One-element results kept in the tensor")
struct InlineScalarTests {
    static func bits(_ t: Tensor) -> [UInt64] { t.scalars(as: Double.self).map(\.bitPattern) }

    /// Every float elementwise op, on one-element operands, gives the first element of the same op
    /// launched on two-element operands (the host backend's loop over a block), in both float types.
    @Test(arguments: [DType.float32, .float64])
    func everyElementwiseOpGivesTheLaunchedBits(dtype: DType) throws {
        let ops = Op.all.filter { op in
            switch op.forward {
            case .unary, .binary: op.auxiliary == 0
            default: false
            }
        }
        #expect(ops.count >= 20)
        try withDevice(.host) {
            for op in ops {
                let (low, high) = (op.sampleDomain.lowerBound, op.sampleDomain.upperBound)
                let (x, y) = (low + 0.37 * (high - low), low + 0.81 * (high - low))
                let inline =
                    op.arity == 1
                    ? try op.apply([Tensor(x, dtype: dtype)])
                    : try op.apply([Tensor(x, dtype: dtype), Tensor(y, dtype: dtype)])
                let launched =
                    op.arity == 1
                    ? try op.apply([Tensor([x, y], dtype: dtype)])
                    : try op.apply([Tensor([x, y], dtype: dtype), Tensor([y, x], dtype: dtype)])
                #expect(inline.isInline, "\(op.name) \(dtype)")
                #expect(inline.dtype == launched.dtype, "\(op.name) \(dtype)")
                #expect(Self.bits(inline) == [Self.bits(launched)[0]], "\(op.name) \(dtype) at \(x), \(y)")
            }
        }
    }

    /// A recorded scalar chain and its gradient allocate no device memory until a value is read;
    /// a read allocates the value's one element, counted in the device's memory from then on.
    @Test func aScalarChainAllocatesOnlyWhatIsRead() throws {
        let device = Device.host.isolated()
        try withDevice(device) {
            let x = Tensor(0.5)
            let before = device.memory
            let tape = GradientTape()
            tape.watch(x)
            let y = tape.record { (0..<50).reduce(x) { y, _ in y + sin(y) * 0.001 } }
            let g = try tape.gradient(of: y, wrt: x)!
            #expect(device.memory.allocations == before.allocations + 2)  // the constant 0.001 and the seed
            #expect(y.isInline && g.isInline)
            let live = device.memory.liveBytes
            let (value, slope) = (y.scalar, g.scalar)
            #expect(device.memory.allocations == before.allocations + 4)
            #expect(device.memory.liveBytes == live + 2 * 4)
            // the same chain launched op by op on one-element vectors
            let v = Tensor([0.5, 0.5])
            let tape2 = GradientTape()
            tape2.watch(v)
            let w = tape2.record { (0..<50).reduce(v) { y, _ in y + sin(y) * 0.001 } }
            let gv = try tape2.gradient(of: w, wrt: v)!
            #expect([value, value] == w.scalars)
            #expect([slope, slope] == gv.scalars)
        }
    }

    /// An inline scalar's memory is made once, however many threads ask for it at once.
    @Test func anInlineScalarsBufferIsMadeOnce() async {
        let device = Device.host.isolated()
        let y = withDevice(device) { sin(Tensor(0.5)) * 2 }
        #expect(y.isInline)
        let before = device.memory.allocations
        let values = await withTaskGroup(of: Float.self) { group in
            for _ in 0..<8 { group.addTask { y.scalar } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(values).count == 1)
        #expect(device.memory.allocations == before + 1)
    }

    /// A float scalar on the process's host device is a value (no handle): made from a number, as an
    /// op's result and as a gradient. Wherever a buffer is needed (an operand of a larger op, a
    /// reshape, a copy to another device) it gives the bits a one-element handle gives.
    @Test(arguments: [DType.float32, .float64])
    func aHostScalarIsAValueThatActsAsAOneElementTensor(dtype: DType) throws {
        try withDevice(.host) {
            let x = Tensor(0.7, dtype: dtype)
            let tape = GradientTape()
            tape.watch(x)
            let y = tape.record { sin(x) * x + 0.25 }
            let g = try tape.gradient(of: y, wrt: x)!
            for t in [x, y, g, Tensor.ones(shape: [], dtype: dtype)] {
                #expect(t.handle == nil && t.isInline && t.shape == [] && t.dtype == dtype)
            }
            // the same values as a one-element vector, whose results are handles
            let v = Tensor([0.7], dtype: dtype)
            let tape2 = GradientTape()
            tape2.watch(v)
            let w = tape2.record { sin(v) * v + 0.25 }
            let gv = try tape2.gradient(of: w, wrt: v)!
            #expect(w.handle != nil && Self.bits(y) == Self.bits(w) && Self.bits(g) == Self.bits(gv))
            // as an operand of a launched op, reshaped, summed and moved
            let big = Tensor((0..<100).map { Double($0) / 7 }, dtype: dtype)
            #expect(Self.bits(big * y) == Self.bits(big * w))
            #expect(Self.bits(y.reshaped(to: [1, 1])) == Self.bits(w))
            #expect(Self.bits(y.sum()) == Self.bits(w.sum()))
            if let cl = firstOpenCLDevice(), dtype == .float32 || cl.info.supportsFloat64 {
                let moved = y.to(cl)
                #expect(moved.device == cl && Self.bits(moved) == Self.bits(y))
                #expect(Self.bits(moved.to(.host)) == Self.bits(y))
            }
        }
    }
}
