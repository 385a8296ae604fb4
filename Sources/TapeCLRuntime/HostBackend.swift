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
extension Int8: HostScalar {
    static func fromDouble(_ d: Double) -> Int8 { d.isFinite && abs(d) < 9e18 ? Int8(truncatingIfNeeded: Int64(d)) : 0 }
    var double: Double { Double(self) }
}

/// Float32 and float64: elementwise loops run block by block on the tensors' own memory, with no
/// conversion (each op's loop for the type, see ``UnaryLoop``); a fused chain keeps each step in
/// a scratch row of the element type, so it is rounded after every op as separate launches store it.
/// Conversions from `Double` with the host's rules (integers truncate; non-finite and huge
/// values give 0), for the core's tensor constructors.
@_spi(Runtime) public enum HostConversion {
    @_spi(Runtime) public static func int32(_ d: Double) -> Int32 { .fromDouble(d) }
    @_spi(Runtime) public static func int8(_ d: Double) -> Int8 { .fromDouble(d) }
}

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
    private static func memory(_ t: Operand) -> UnsafePointer<Self> {
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
            }
        }
    }
}

/// Row-major walk over `shape` for the flat indices in `range`, giving each index and its offsets
/// into two operands read with strides `sa` and `sb` (0 where broadcast).
@inline(__always)
func forEachOffset(_ shape: [Int], _ sa: [Int], _ sb: [Int], _ range: Range<Int>, _ body: (Int, Int, Int) -> Void) {
    let rank = shape.count
    guard rank > 0 else {
        if !range.isEmpty { body(0, 0, 0) }
        return
    }
    var index = [Int](repeating: 0, count: rank)
    var rest = range.lowerBound
    var oa = 0
    var ob = 0
    for d in stride(from: rank - 1, through: 0, by: -1) {
        index[d] = rest % shape[d]
        rest /= shape[d]
        oa += index[d] * sa[d]
        ob += index[d] * sb[d]
    }
    for i in range {
        body(i, oa, ob)
        var d = rank - 1
        while d >= 0 {
            index[d] += 1
            oa += sa[d]
            ob += sb[d]
            if index[d] < shape[d] { break }
            oa -= sa[d] * shape[d]
            ob -= sb[d] * shape[d]
            index[d] = 0
            d -= 1
        }
    }
}

/// The fixed summation order shared with `Kernels/reduce.cl`, so host and device sums agree bit
/// for bit: 256 lanes, lane `l` adding elements `l, l+256, l+512, …` in turn, then a halving tree
/// `p[l] += p[l+s]` for `s = 128, 64, …, 1`. Rows longer than ``chunk`` with unit stride are cut
/// into chunks of `chunk` elements, each summed that way, and the chunk sums summed that way too.
@_spi(Runtime) public enum ReduceOrder {
    @_spi(Runtime) public static let lanes = 256
    @_spi(Runtime) public static let chunk = 65536

    /// Splits a reduction over a contiguous block of axes into `outer × extent × inner`.
    @_spi(Runtime) public static func plan(shape: [Int], axes: [Int]) -> (outer: Int, extent: Int, inner: Int) {
        guard let first = axes.first, let last = axes.last else { return (Shape.count(shape), 1, 1) }
        return (
            Shape.count(Array(shape[..<first])), Shape.count(Array(shape[first...last])),
            Shape.count(Array(shape[(last + 1)...]))
        )
    }

    /// The most columns ``lanes(_:extent:stride:width:_:into:)`` reduces side by side.
    @_spi(Runtime) public static let maxWidth = 16

    /// Reduces `width` (at most ``maxWidth``) adjacent columns at once, each in the order above: column `c` adds
    /// `x[c + k·stride]` for `k` in `0..<extent` into `out[c]`. Rows of the lane block are
    /// contiguous, so the column loop vectorises (a bias gradient sums 512 columns of 256 rows).
    @inline(__always)
    static func lanes<T: BinaryFloatingPoint>(
        _ x: UnsafePointer<T>, extent: Int, stride: Int, width: Int = 1, _ kind: ReduceKind,
        into out: UnsafeMutablePointer<T>
    ) {
        precondition(width <= maxWidth, "ReduceOrder.lanes: \(width) columns, at most \(maxWidth)")
        let initial: T = kind == .sum ? 0 : -.infinity
        withUnsafeTemporaryAllocation(of: T.self, capacity: lanes * maxWidth) { buffer in
            let p = buffer.baseAddress!
            p.initialize(repeating: initial, count: lanes * width)
            var k = 0
            while k < extent {
                let n = Swift.min(lanes, extent - k)
                if kind == .sum && width == 1 && stride == 1 {  // one contiguous row: vectorise over lanes
                    let src = x + k  // (an offset inside the loop, overflow-checked, kept it scalar)
                    for l in 0..<n { p[l] += src[l] }
                } else {
                    for l in 0..<n {
                        let (src, dst) = (x + (k + l) * stride, p + l * width)
                        if kind == .sum {
                            for c in 0..<width { dst[c] += src[c] }
                        } else {
                            for c in 0..<width where src[c] > dst[c] || src[c].isNaN { dst[c] = src[c] }
                        }
                    }
                }
                k += lanes
            }
            var s = lanes / 2
            while s > 0 {
                for l in 0..<s {
                    let (dst, src) = (p + l * width, p + (l + s) * width)
                    if kind == .sum {
                        for c in 0..<width { dst[c] += src[c] }
                    } else {
                        for c in 0..<width where src[c] > dst[c] || src[c].isNaN { dst[c] = src[c] }
                    }
                }
                s /= 2
            }
            out.update(from: p, count: width)
        }
    }

    /// One column: ``lanes(_:extent:stride:width:_:into:)`` with width 1.
    @inline(__always)
    static func lanes<T: BinaryFloatingPoint>(_ x: UnsafePointer<T>, extent: Int, stride: Int, _ kind: ReduceKind) -> T
    {
        var result: T = 0
        withUnsafeMutablePointer(to: &result) { lanes(x, extent: extent, stride: stride, kind, into: $0) }
        return result
    }
}

/// The host: plain memory and Swift loops, OpenBLAS for matmul. "Enqueueing" runs at once.
final class HostBackend: Backend {
    let info: DeviceInfo = {
        var model = "CPU"
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
            let colon = line.firstIndex(of: ":")
        {
            model = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return DeviceInfo(
            name: "host", kind: "host", deviceName: model, vendor: "host", type: "CPU",
            computeUnits: ProcessInfo.processInfo.activeProcessorCount,
            globalMemoryBytes: Int(ProcessInfo.processInfo.physicalMemory),
            maxAllocationBytes: Int(ProcessInfo.processInfo.physicalMemory),
            openCLCVersion: nil, driverVersion: nil, platform: nil, supportsFloat64: true)
    }()

    /// `posix_memalign`, which reports a failure (Swift's `allocate` stops the program instead).
    func allocate(bytes: Int) throws -> UnsafeMutableRawPointer {
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, 64, Swift.max(bytes, 64)) == 0, let pointer else {
            throw TapeError.backend("host: out of memory: \(bytes) bytes asked, \(Self.availableBytes()) available")
        }
        return pointer
    }
    func free(_ handle: UnsafeMutableRawPointer) { Foundation.free(handle) }
    func write(_ bytes: UnsafeRawBufferPointer, to buffer: Buffer) throws {
        if let base = bytes.baseAddress { buffer.handle.copyMemory(from: base, byteCount: bytes.count) }
    }
    func fill(_ buffer: Buffer, with element: [UInt8], count: Int) throws {
        func fill<T>(_: T.Type) {
            let value = element.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
            let o = buffer.handle.assumingMemoryBound(to: T.self)
            parallelFor(count) { r in (o + r.lowerBound).update(repeating: value, count: r.count) }
        }
        switch element.count {
        case 1: fill(UInt8.self)
        case 4: fill(UInt32.self)
        default: fill(UInt64.self)
        }
    }
    /// Physical memory not in use now (`_SC_AVPHYS_PAGES`), for out-of-memory messages.
    static func availableBytes() -> Int { sysconf(Int32(_SC_AVPHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE)) }
    func read(_ buffer: Buffer, into: UnsafeMutableRawBufferPointer) throws {
        if let base = into.baseAddress { base.copyMemory(from: buffer.handle, byteCount: into.count) }
    }

    func buildAll() -> [ProgramBuild] { [] }  // nothing to build: Swift loops and OpenBLAS
    func buildProblem() -> String? { nil }
    func finish() {}  // host loops are done when they return

    /// One concrete switch per launch, so every loop below is specialized for its element type.
    func run(_ l: Launch) throws {
        switch l.dtype {
        case .float32: try run(l, Float.self)
        case .float64: try run(l, Double.self)
        case .int32: try run(general: l, Int32.self)
        case .int8: try run(general: l, Int8.self)
        }
    }

    private func run<T: HostFloat>(_ l: Launch, _: T.Type) throws {
        switch l.forward {
        case .unary(_, let f): T.unary(l, f)
        case .binary(_, let f): T.binary(l, f)
        case .fused(let program): T.fused(l, program)
        default: try run(general: l, T.self)
        }
    }

    /// int32 and int8 tensors, and the ops that are not elementwise.
    private func run<T: HostScalar>(general l: Launch, _: T.Type) throws {
        switch l.forward {
        case .unary, .binary: converted(l, T.self)
        case .reduce(let kind): try reduce(l, kind)
        case .matmul: try matmul(l)
        case .gather: gather(l, T.self)
        case .concat:
            var at = l.output.handle
            for input in l.inputs {
                at.copyMemory(from: input.buffer.handle, byteCount: input.byteCount)
                at += input.byteCount
            }
        case .copyRange:
            let size = l.dtype.byteSize
            l.output.handle.copyMemory(
                from: l.inputs[0].buffer.handle + l.attributes.offset * size, byteCount: l.output.bytes)
        case .cast:
            switch l.inputs[0].dtype {
            case .float32: cast(l, from: Float.self, to: T.self)
            case .float64: cast(l, from: Double.self, to: T.self)
            case .int32: cast(l, from: Int32.self, to: T.self)
            case .int8: cast(l, from: Int8.self, to: T.self)
            }
        case .fused, .alias, .transfer: fatalError("\(l.opName) (\(l.dtype)) is not a kernel here")
        }
    }

    /// Elements per block: the loops run block by block on scratch rows that stay in the L1 cache.
    static let block = 1024

    /// Outputs of at least this many bytes are written around the cache (non-temporal stores):
    /// larger than a last-level cache, they would only evict what the next op reads.
    static let streamingBytes = 32 << 20

    /// Integer elementwise ops through the float64 loop, block by block on both cores: each
    /// operand's values read as ``Layout`` says and converted into a float64 row (int32 and int8
    /// values are doubles exactly), results converted back as `fromDouble` says.
    private func converted<T: HostScalar>(_ l: Launch, _: T.Type) {
        let p = l.inputs.map { UnsafePointer($0.buffer.handle.assumingMemoryBound(to: T.self)) }
        let o = l.output.handle.assumingMemoryBound(to: T.self)
        let layouts = l.inputs.map { Layout($0.shape, of: l.shape) }
        parallelFor(Shape.count(l.shape)) { r in
            withUnsafeTemporaryAllocation(of: T.self, capacity: Self.block) { copied in
                withUnsafeTemporaryAllocation(of: Double.self, capacity: 3 * Self.block) { rows in
                    let a = rows.baseAddress!  // operand j's row is a + j * block
                    let out = rows.baseAddress! + 2 * Self.block
                    for i in stride(from: r.lowerBound, to: r.upperBound, by: Self.block) {
                        let m = min(Self.block, r.upperBound - i)
                        for j in p.indices {  // operand j into row j (a, then b)
                            let values = layouts[j].elements(p[j], i, m, scratch: copied.baseAddress!)
                            for k in 0..<m { a[j * Self.block + k] = values[k].double }
                        }
                        if case .unary(_, let f) = l.forward { f.double(a, out, m) }
                        if case .binary(_, let f) = l.forward { f.double(a, a + Self.block, out, m) }
                        for k in 0..<m { o[i + k] = .fromDouble(out[k]) }
                    }
                }
            }
        }
    }

    /// Runs `body(start, count, out, scratch, stride)` over `0..<n` in blocks of at most ``block``,
    /// both cores for large `n`, each worker with `scratch` rows `stride` elements apart. `out` is
    /// where a block's results go: the output itself, or for a streaming output a row of its own,
    /// copied around the cache after `body`.
    static func blocks<T>(
        _ n: Int, into o: UnsafeMutablePointer<T>, scratch: Int,
        _ body: (
            _ start: Int, _ count: Int, _ out: UnsafeMutablePointer<T>, _ scratch: UnsafeMutablePointer<T>,
            _ stride: Int
        ) -> Void
    ) {
        let streaming = n * MemoryLayout<T>.stride >= streamingBytes
        parallelFor(n) { r in
            let block = min(Self.block, r.count)  // small tensors: scratch on the stack, not malloc'd
            withUnsafeTemporaryAllocation(of: T.self, capacity: (scratch + 1) * block) { memory in
                let s = memory.baseAddress!
                let staged = s + scratch * block
                var i = r.lowerBound
                while i < r.upperBound {
                    let m = min(block, r.upperBound - i)
                    body(i, m, streaming ? staged : o + i, s, block)
                    if streaming { HostMath.stream(staged, o + i, bytes: m * MemoryLayout<T>.stride) }
                    i += m
                }
            }
        }
    }

    /// How an operand of an elementwise op is read for the output's flat index `i`.
    enum Layout {
        /// The output's shape: element `i`.
        case full
        /// One element, read for every `i`.
        case single
        /// The trailing `length` elements of the output's shape (a bias row): element `i % length`.
        case row(length: Int)
        /// General broadcasting: through `strides` (0 along broadcast axes) over `shape`.
        case strided(shape: [Int], strides: [Int])

        init(_ shape: [Int], of output: [Int]) {
            if shape == output {
                self = .full
            } else if Shape.count(shape) == 1 {
                self = .single
            } else if Shape.isRow(shape, of: output) {
                self = .row(length: Shape.count(shape))
            } else {
                self = .strided(shape: output, strides: Shape.broadcastStrides(shape, to: output))
            }
        }

        /// The operand's values for output indices `i..<i+m`: in place where they lie in a row of
        /// memory, else copied into `scratch`.
        @inline(__always)
        func elements<T>(
            _ p: UnsafePointer<T>, _ i: Int, _ m: Int, scratch: UnsafeMutablePointer<T>
        ) -> UnsafePointer<T> {
            switch self {
            case .full: return p + i
            case .single: scratch.update(repeating: p[0], count: m)
            case .row(let length):
                var (k, j) = (0, i % length)
                if length - j >= m { return p + j }
                while k < m {
                    let run = min(length - j, m - k)
                    (scratch + k).update(from: p + j, count: run)
                    k += run
                    j = 0
                }
            case .strided(let shape, let strides):
                forEachOffset(shape, strides, strides, i..<i + m) { index, offset, _ in scratch[index - i] = p[offset] }
            }
            return UnsafePointer(scratch)
        }
    }

    private func gather<T: HostScalar>(_ l: Launch, _: T.Type) {
        let x = l.inputs[0].buffer.handle.assumingMemoryBound(to: T.self)
        let o = l.output.handle.assumingMemoryBound(to: T.self)
        let strides = l.attributes.strides
        if strides.allSatisfy({ $0 == 0 }) {  // one element broadcast (a sum's cotangent): a fill
            let v = x[0]
            parallelFor(Shape.count(l.shape)) { r in (o + r.lowerBound).update(repeating: v, count: r.count) }
            return
        }
        parallelFor(Shape.count(l.shape)) { r in
            forEachOffset(l.shape, strides, strides, r) { i, ix, _ in o[i] = x[ix] }
        }
    }

    private func cast<S: HostScalar, T: HostScalar>(_ l: Launch, from: S.Type, to: T.Type) {
        let x = l.inputs[0].buffer.handle.assumingMemoryBound(to: S.self)
        let o = l.output.handle.assumingMemoryBound(to: T.self)
        parallelFor(Shape.count(l.shape)) { r in for i in r { o[i] = .fromDouble(x[i].double) } }
    }

    private func reduce(_ l: Launch, _ kind: ReduceKind) throws {
        switch l.dtype {
        case .float32: reduceFloat(l, kind, Float.self)
        case .float64: reduceFloat(l, kind, Double.self)
        case .int32: reduceInteger(l, kind, Int32.self)
        case .int8: reduceInteger(l, kind, Int8.self)
        }
    }

    private func reduceFloat<T: BinaryFloatingPoint & HostScalar>(_ l: Launch, _ kind: ReduceKind, _: T.Type) {
        let x = UnsafePointer(l.inputs[0].buffer.handle.assumingMemoryBound(to: T.self))
        let o = l.output.handle.assumingMemoryBound(to: T.self)
        let (outer, extent, inner) = ReduceOrder.plan(shape: l.inputs[0].shape, axes: l.attributes.axes)
        if inner == 1 && extent > ReduceOrder.chunk {
            let chunks = (extent + ReduceOrder.chunk - 1) / ReduceOrder.chunk
            let partial = UnsafeMutablePointer<T>.allocate(capacity: chunks)
            defer { partial.deallocate() }
            for row in 0..<outer {
                let base = x + row * extent
                parallelFor(chunks, grain: 1) { r in
                    for c in r {
                        let start = c * ReduceOrder.chunk
                        partial[c] = ReduceOrder.lanes(
                            base + start, extent: min(ReduceOrder.chunk, extent - start), stride: 1, kind)
                    }
                }
                o[row] = ReduceOrder.lanes(partial, extent: chunks, stride: 1, kind)
            }
            return
        }
        let width = ReduceOrder.maxWidth
        let groups = (inner + width - 1) / width
        parallelFor(outer * groups, grain: max(1, (1 << 15) / max(extent * width, 1))) { r in
            for i in r {
                let (row, group) = i.quotientAndRemainder(dividingBy: groups)
                let col = group * width
                ReduceOrder.lanes(
                    x + row * extent * inner + col, extent: extent, stride: inner, width: min(width, inner - col), kind,
                    into: o + row * inner + col)
            }
        }
    }

    private func reduceInteger<T: HostScalar>(_ l: Launch, _ kind: ReduceKind, _: T.Type) {
        let x = l.inputs[0].buffer.handle.assumingMemoryBound(to: T.self)
        let o = l.output.handle.assumingMemoryBound(to: T.self)
        let (outer, extent, inner) = ReduceOrder.plan(shape: l.inputs[0].shape, axes: l.attributes.axes)
        for row in 0..<outer {
            for col in 0..<inner {
                var acc = kind == .sum ? 0 : -Double.infinity
                for k in 0..<extent {
                    let v = x[(row * extent + k) * inner + col].double
                    acc = kind == .sum ? acc + v : max(acc, v)
                }
                o[row * inner + col] = .fromDouble(acc)
            }
        }
    }

    /// Each product's rows (and batches) are split over the host's pool; OpenBLAS itself runs
    /// single-threaded (see ``HostBLAS``).
    private func matmul(_ l: Launch) throws {
        try HostBLAS.ready()
        guard l.dtype.isFloatingPoint else {
            throw TapeError.dtype("matmul: \(l.dtype) is not supported (float32 and float64 are)")
        }
        let (a, b) = (l.inputs[0], l.inputs[1])
        let (ta, tb) = (l.attributes.transposeA, l.attributes.transposeB)
        let g = MatmulShape(a.shape, b.shape, ta, tb)!
        let lda = ta ? g.m : g.k
        let ldb = tb ? g.k : g.n
        let parts = g.m * g.n * g.k >= 1 << 20 ? min(hostCores, g.m) : 1
        parallelFor(g.batch * parts, grain: 1) { r in
            for item in r {
                let (batch, part) = item.quotientAndRemainder(dividingBy: parts)
                let (r0, r1) = (g.m * part / parts, g.m * (part + 1) / parts)
                // Rows r0..<r1 of op(A): row offset r0·lda, or column offset r0 when A is stored transposed.
                let ia = (a.rank == 3 ? batch * g.m * g.k : 0) + (ta ? r0 : r0 * lda)
                let ib = b.rank == 3 ? batch * g.k * g.n : 0
                let io = batch * g.m * g.n + r0 * g.n
                gemm(
                    l.dtype, ta, tb, r1 - r0, g.n, g.k, a.buffer.handle, ia, lda, b.buffer.handle, ib, ldb,
                    l.output.handle, io)
            }
        }
    }

    /// One single-threaded CBLAS product on row-major data, offsets in elements.
    private func gemm(
        _ dtype: DType, _ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int,
        _ a: UnsafeMutableRawPointer, _ ia: Int, _ lda: Int, _ b: UnsafeMutableRawPointer, _ ib: Int, _ ldb: Int,
        _ c: UnsafeMutableRawPointer, _ ic: Int
    ) {
        let (opA, opB) = (ta ? Int32(1) : 0, tb ? Int32(1) : 0)
        if dtype == .float32 {
            tapecl_sgemm(
                opA, opB, Int32(m), Int32(n), Int32(k), a.assumingMemoryBound(to: Float.self) + ia, Int32(lda),
                b.assumingMemoryBound(to: Float.self) + ib, Int32(ldb), c.assumingMemoryBound(to: Float.self) + ic,
                Int32(n))
        } else {
            tapecl_dgemm(
                opA, opB, Int32(m), Int32(n), Int32(k), a.assumingMemoryBound(to: Double.self) + ia, Int32(lda),
                b.assumingMemoryBound(to: Double.self) + ib, Int32(ldb), c.assumingMemoryBound(to: Double.self) + ic,
                Int32(n))
        }
    }
}

/// The geometry of `op(a) @ op(b)`: a is `[batch?, M, K]` (or `[batch?, K, M]` transposed),
/// b is `[batch?, K, N]`; a rank-2 operand is shared by every batch. `nil` when they do not fit.
@_spi(Runtime) public struct MatmulShape {
    @_spi(Runtime) public let batch: Int, m: Int, n: Int, k: Int
    @_spi(Runtime) public let output: [Int]

    @_spi(Runtime) public init?(_ a: [Int], _ b: [Int], _ ta: Bool, _ tb: Bool) {
        guard (2...3).contains(a.count), (2...3).contains(b.count) else { return nil }
        let ba = a.count == 3 ? a[0] : nil
        let bb = b.count == 3 ? b[0] : nil
        if let ba, let bb, ba != bb { return nil }
        let (ar, ac) = (a[a.count - 2], a[a.count - 1])
        let (br, bc) = (b[b.count - 2], b[b.count - 1])
        let (m, ka) = ta ? (ac, ar) : (ar, ac)
        let (kb, n) = tb ? (bc, br) : (br, bc)
        guard ka == kb else { return nil }
        self.batch = ba ?? bb ?? 1
        (self.m, self.n, self.k) = (m, n, ka)
        output = (ba ?? bb).map { [$0, m, n] } ?? [m, n]
    }
}
