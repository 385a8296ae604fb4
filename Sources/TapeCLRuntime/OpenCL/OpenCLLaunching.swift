import COpenCL
import Foundation
import TapeCLKernels

// Launching: kernel arguments, the batch gate, exact-size launches, which binary kernel serves which shapes.
extension OpenCLBackend {
    // MARK: Launching

    enum Argument {
        case buffer(UnsafeMutableRawPointer), int(Int32), ulong(UInt64), int8([Int])
        /// A struct of 32-bit integers, passed by value (an indexed kernel's parameters).
        case structure([Int32])
    }

    func set(_ kernel: cl_kernel, _ args: [Argument], from first: Int = 0) throws {
        for (i, a) in args.enumerated() {
            let index = cl_uint(first + i)
            let status: cl_int
            switch a {
            case .buffer(let h):
                var mem: cl_mem? = OpaquePointer(h)
                status = clSetKernelArg(kernel, index, MemoryLayout<cl_mem?>.size, &mem)
            case .int(var v): status = clSetKernelArg(kernel, index, 4, &v)
            case .ulong(var v): status = clSetKernelArg(kernel, index, 8, &v)
            case .int8(let values):
                var packed = (values.map(Int32.init) + [Int32](repeating: 0, count: 8)).prefix(8).map { $0 }
                status = clSetKernelArg(kernel, index, 32, &packed)
            case .structure(let fields):
                status = fields.withUnsafeBytes { clSetKernelArg(kernel, index, $0.count, $0.baseAddress) }
            }
            try check(status, "clSetKernelArg")
        }
    }

    func enqueue(_ kernel: cl_kernel, global: [Int], local: [Int]? = nil) throws {
        guard global.allSatisfy({ $0 > 0 }) else { return }
        var g = global
        let waits: [cl_event?] = try closedGate().map { [$0] } ?? []
        let status = waits.withUnsafeBufferPointer { w -> cl_int in
            let (count, list) = (cl_uint(w.count), w.isEmpty ? nil : w.baseAddress)
            if var l = local {
                return clEnqueueNDRangeKernel(queue, kernel, cl_uint(g.count), nil, &g, &l, count, list, nil)
            }
            return clEnqueueNDRangeKernel(queue, kernel, cl_uint(g.count), nil, &g, nil, count, list, nil)
        }
        try check(status, "clEnqueueNDRangeKernel")
        queued = true
        gated += 1
        // a large kernel keeps the device busy anyway
        if gated >= Self.batch || g.reduce(1, *) > Self.smallLaunch { openGate() }
    }

    // Small launches are queued in batches behind a closed gate (a user event the first of them
    // waits for; the in-order queue holds the rest behind it). PoCL's CPU device wakes its worker
    // threads for every command that finds them idle: for a scalar op that wake-up and the sleep
    // after it cost more than the kernel (W1's profile: a third of the time in context switches).
    // Opened by the 1024th launch, by a large one, and before anything waits for the queue
    // (batches of 64 took context switches from 69k to 37k a W1 run; of 1024, to 20k).
    static let batch = 1024

    /// The gate the next launch waits for: a new one for the first launch of a batch, else none.
    func closedGate() throws -> cl_event? {
        guard gate == nil else { return nil }
        var status: cl_int = 0
        gate = clCreateUserEvent(context, &status)
        try check(status, "clCreateUserEvent")
        gated = 0
        return gate
    }

    /// Lets the queued launches run (before a read, a write, or a large launch).
    func openGate() {
        guard let g = gate else { return }
        clSetUserEventStatus(g, CL_COMPLETE)
        clReleaseEvent(g)
        gate = nil
    }

    /// `n` items with no bounds check: a multiple of 64 from offset 0, then the tail with its offset
    /// (the kernel's last argument).
    func enqueueExact(_ kernel: cl_kernel, _ args: [Argument], n: Int) throws {
        let main = n <= Self.smallLaunch ? n : n / 64 * 64
        try set(kernel, args)
        for (offset, count) in [(0, main), (main, n - main)] where count > 0 {
            try set(kernel, [.ulong(UInt64(offset))], from: args.count)
            try enqueue(kernel, global: [count])
        }
    }

    /// Up to this many items, an elementwise op is one launch: its cost is the launch, not the loop.
    static let smallLaunch = 4096

    /// Whether `elementwise.cl` defines a second pass `fixup_NAME` for a unary op (sin, cos).
    static func hasFixup(_ name: String) -> Bool { fixups.contains(name) }
    static let fixups: Set<String> = {
        let text = KernelSource.files["elementwise.cl"] ?? ""
        return Set(
            text.split(separator: "\n").compactMap {
                $0.hasPrefix("FIXUP(") ? $0.dropFirst(6).split(separator: ",").first.map(String.init) : nil
            })
    }()

    /// Which `binary_*` kernel serves operands of these shapes (see `elementwise.cl`). Pure, so
    /// it is unit-tested without a device.
    @_spi(Runtime) public enum BinaryVariant: String, Sendable { case vv, sv, vs, vr, rv, g }

    @_spi(Runtime) public static func binaryVariant(_ a: [Int], _ b: [Int], output: [Int]) -> BinaryVariant {
        if a == output && b == output { return .vv }
        if Shape.count(a) == 1 && b == output { return .sv }
        if Shape.count(b) == 1 && a == output { return .vs }
        if Shape.count(output) <= Int(Int32.max) {  // the row index is taken in 32 bits
            if a == output && Shape.isRow(b, of: output) { return .vr }
            if b == output && Shape.isRow(a, of: output) { return .rv }
        }
        return .g
    }

    // MARK: Kernels with several forms

    /// A unary op: its kernel, and for the float32 functions whose OpenCL result is refined on the
    /// device (`hasFixup`) the fix-up pass, eight elements per item over large tensors.
    func unary(_ l: Launch, _ name: String, out: Argument, n: Int) throws {
        let args: [Argument] = [.buffer(l.inputs[0].buffer.handle), out]
        let fixup = l.dtype == .float32 && Self.hasFixup(name)
        if !fixup || n > Self.smallLaunch {
            try enqueueExact(try kernel(.unary, name, dtype: l.dtype), args, n: n)
        }
        guard fixup else { return }
        let single = try kernel(.fixup, name, dtype: l.dtype)
        if n <= Self.smallLaunch {
            try enqueueExact(single, args + [.int(1)], n: n)  // the only pass
        } else {
            try enqueueExact(try kernel(.fixup8, name, dtype: l.dtype), args, n: n / 8)
            try set(single, args + [.int(0), .ulong(UInt64(n / 8 * 8))])  // the last n % 8
            try enqueue(single, global: [n % 8])
        }
    }

    /// A binary op in the variant its operands' shapes call for (see ``binaryVariant(_:_:output:)``).
    func binary(_ l: Launch, _ name: String, out: Argument, n: Int) throws {
        let (a, b) = (l.inputs[0], l.inputs[1])
        let variant = Self.binaryVariant(a.shape, b.shape, output: l.shape)
        let k = try kernel(.binary(variant), name, dtype: l.dtype)
        var args: [Argument] = [.buffer(a.buffer.handle), .buffer(b.buffer.handle), out]
        if variant == .vr || variant == .rv {
            args.append(.int(Int32(Shape.count(variant == .vr ? b.shape : a.shape))))
        }
        if variant == .g {
            guard l.shape.count <= 8 else { throw Unsupported(reason: "rank \(l.shape.count) > 8") }
            args += [
                .int(Int32(l.shape.count)), .int8(l.shape), .int8(Shape.broadcastStrides(a.shape, to: l.shape)),
                .int8(Shape.broadcastStrides(b.shape, to: l.shape)),
            ]
        }
        try enqueueExact(k, args, n: n)
    }

    /// An indexed op: its inputs, the output and its parameters as one struct argument (see
    /// ``IndexedKernel``), one item per output element or per run of an image's channels.
    func indexed(_ l: Launch, _ k: IndexedKernel, out: Argument, n: Int) throws {
        guard n < Int(Int32.max), l.inputs.allSatisfy({ $0.count < Int(Int32.max) }) else {
            throw Unsupported(reason: "2^31 elements or more (the kernels index in 32 bits)")
        }
        try enqueueExact(
            try kernel(k.name, family: k.family, dtype: l.inputs[0].dtype),
            l.inputs.map { .buffer($0.buffer.handle) } + [out]
                + (l.parameters.kernelArgument.map { [.structure($0)] } ?? []),
            n: k.channelRuns ? n / Swift.max(l.parameters.window.c, 1) : n)
    }
}
