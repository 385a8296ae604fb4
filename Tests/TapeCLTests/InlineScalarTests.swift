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
                #expect(inline.handle.isInline, "\(op.name) \(dtype)")
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
            #expect(y.handle.isInline && g.handle.isInline)
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
        #expect(y.handle.isInline)
        let before = device.memory.allocations
        let values = await withTaskGroup(of: Float.self) { group in
            for _ in 0..<8 { group.addTask { y.scalar } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(values).count == 1)
        #expect(device.memory.allocations == before + 1)
    }
}
