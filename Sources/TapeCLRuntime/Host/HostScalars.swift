import COpenBLAS
import Dispatch
import Foundation

/// An element type the host's casts, gathers and integer loops handle: values convert through
/// `Double`, exactly for every element type (float32 and float64 loops need none, see ``HostFloat``).
protocol HostScalar {
    static func fromDouble(_ d: Double) -> Self
    var double: Double { get }
}
extension Float: HostScalar {
    static func fromDouble(_ d: Double) -> Float { Float(d) }
    var double: Double { Double(self) }
}
extension Double: HostScalar {
    static func fromDouble(_ d: Double) -> Double { d }
    var double: Double { self }
}
extension Int32: HostScalar {
    static func fromDouble(_ d: Double) -> Int32 {
        d.isFinite && abs(d) < 9e18 ? Int32(truncatingIfNeeded: Int64(d)) : 0
    }
    var double: Double { Double(self) }
}
extension UInt8: HostScalar {  // .bool: 0 or 1
    static func fromDouble(_ d: Double) -> UInt8 { d != 0 ? 1 : 0 }
    var double: Double { Double(self) }
}
extension Int8: HostScalar {
    static func fromDouble(_ d: Double) -> Int8 { d.isFinite && abs(d) < 9e18 ? Int8(truncatingIfNeeded: Int64(d)) : 0 }
    var double: Double { Double(self) }
}

/// Conversions from `Double` with the host's rules (integers truncate; non-finite and huge
/// values give 0), for the core's tensor constructors.
@_spi(Runtime) public enum HostConversion {
    @_spi(Runtime) public static func int32(_ d: Double) -> Int32 { .fromDouble(d) }
    @_spi(Runtime) public static func int8(_ d: Double) -> Int8 { .fromDouble(d) }
    @_spi(Runtime) public static func bool(_ d: Double) -> UInt8 { .fromDouble(d) }
}

extension DType {
    /// The bytes of one element holding `value` converted as the host converts (see ``HostConversion``).
    func bytes(of value: Double) -> [UInt8] {
        switch self {
        case .float32: withUnsafeBytes(of: Float(value)) { Array($0) }
        case .float64: withUnsafeBytes(of: value) { Array($0) }
        case .int32: withUnsafeBytes(of: Int32.fromDouble(value)) { Array($0) }
        case .int8: [UInt8(bitPattern: Int8.fromDouble(value))]
        case .bool: [UInt8.fromDouble(value)]
        }
    }

    /// The least value of an integer type (a max over no elements); -inf for floats.
    var lowest: Double {
        switch self {
        case .int32: Double(Int32.min)
        case .int8: Double(Int8.min)
        case .bool: 0
        case .float32, .float64: -.infinity
        }
    }
}

/// Float32 and float64: elementwise loops run block by block on the tensors' own memory, with no
/// conversion (each op's loop for the type, see ``UnaryLoop``); a fused chain keeps each step in
/// a scratch row of the element type, so it is rounded after every op as separate launches store it.
protocol HostFloat: HostScalar {
    static func loop(_ f: UnaryLoop) -> @Sendable (UnsafePointer<Self>, UnsafeMutablePointer<Self>, Int) -> Void
    static func loop(
        _ f: BinaryLoop
    ) -> @Sendable (UnsafePointer<Self>, UnsafePointer<Self>, UnsafeMutablePointer<Self>, Int) -> Void
}
extension Float: HostFloat {
    static func loop(_ f: UnaryLoop) -> @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void {
        f.float
    }
    static func loop(
        _ f: BinaryLoop
    ) -> @Sendable (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void { f.float }
}
extension Double: HostFloat {
    static func loop(_ f: UnaryLoop) -> @Sendable (UnsafePointer<Double>, UnsafeMutablePointer<Double>, Int) -> Void {
        f.double
    }
    static func loop(
        _ f: BinaryLoop
    ) -> @Sendable (UnsafePointer<Double>, UnsafePointer<Double>, UnsafeMutablePointer<Double>, Int) -> Void {
        f.double
    }
}

extension HostFloat {
    static func memory(_ t: Operand) -> UnsafePointer<Self> {
        UnsafePointer(t.buffer.handle.assumingMemoryBound(to: Self.self))
    }

    static func unary(_ l: Launch, _ f: UnaryLoop) {
        let x = memory(l.inputs[0])
        let o = l.output.handle.assumingMemoryBound(to: Self.self)
        let n = Shape.count(l.shape)
        let run = loop(f)
        if n == 1 { return run(x, o, 1) }  // a scalar (W1's chains): no blocks, no threads
        HostBackend.blocks(n, into: o, scratch: 0) { i, m, out, _, _ in run(x + i, out, m) }
    }

    static func binary(_ l: Launch, _ f: BinaryLoop) {
        let (a, b) = (l.inputs[0], l.inputs[1])
        let (pa, pb) = (memory(a), memory(b))
        let o = l.output.handle.assumingMemoryBound(to: Self.self)
        let n = Shape.count(l.shape)
        let run = loop(f)
        if n == 1 { return run(pa, pb, o, 1) }  // one element out: each operand has one too
        let (la, lb) = (HostBackend.Layout(a.shape, of: l.shape), HostBackend.Layout(b.shape, of: l.shape))
        HostBackend.blocks(n, into: o, scratch: 2) { i, m, out, s, stride in
            run(la.elements(pa, i, m, scratch: s), lb.elements(pb, i, m, scratch: s + stride), out, m)
        }
    }

    static func fused(_ l: Launch, _ p: FusedProgram) {
        let inputs = l.inputs.map(memory)
        let o = l.output.handle.assumingMemoryBound(to: Self.self)
        let last = p.steps.count - 1
        let extra = l.extraOutputs.map { $0.handle.assumingMemoryBound(to: Self.self) }
        HostBackend.blocks(Shape.count(l.shape), into: o, scratch: p.steps.count) { i, m, out, s, stride in
            withUnsafeTemporaryAllocation(of: UnsafePointer<Self>.self, capacity: p.steps.count) { v in
                for (k, step) in p.steps.enumerated() {
                    let row = k == last ? out : s + k * stride
                    switch step {
                    case .input(let j, let single):
                        v[k] =
                            single ? HostBackend.Layout.single.elements(inputs[j], i, m, scratch: row) : inputs[j] + i
                    case .unary(_, let f, let a):
                        loop(f)(v[a], row, m)
                        v[k] = UnsafePointer(row)
                    case .binary(_, let f, let a, let b):
                        loop(f)(v[a], v[b], row, m)
                        v[k] = UnsafePointer(row)
                    }
                }
                for (j, k) in p.outputs.enumerated() { (extra[j] + i).update(from: v[k], count: m) }
            }
        }
    }
}

/// One element of a float elementwise op computed by the op's host loop, as the host backend's
/// launch of a one-element result runs it (`loop(x, out, 1)`), so the bits are the launch's. Its
/// operands and result are element bits: a float32's in the low 32 bits, a float64's in all 64.
@_spi(Runtime) public enum InlineElement {
    @_spi(Runtime) public static func unary(_ f: UnaryLoop, _ x: UInt64, _ dtype: DType) -> UInt64 {
        if dtype == .float32 {
            var (a, out) = (Float(bitPattern: UInt32(truncatingIfNeeded: x)), Float(0))
            f.float(&a, &out, 1)
            return UInt64(out.bitPattern)
        }
        var (a, out) = (Double(bitPattern: x), Double(0))
        f.double(&a, &out, 1)
        return out.bitPattern
    }

    @_spi(Runtime) public static func binary(_ f: BinaryLoop, _ x: UInt64, _ y: UInt64, _ dtype: DType) -> UInt64 {
        if dtype == .float32 {
            var a = Float(bitPattern: UInt32(truncatingIfNeeded: x))
            var b = Float(bitPattern: UInt32(truncatingIfNeeded: y))
            var out = Float(0)
            f.float(&a, &b, &out, 1)
            return UInt64(out.bitPattern)
        }
        var (a, b, out) = (Double(bitPattern: x), Double(bitPattern: y), Double(0))
        f.double(&a, &b, &out, 1)
        return out.bitPattern
    }
}
