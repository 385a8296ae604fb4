import COpenBLAS
import Dispatch
import Foundation

/// Row-major walk over `shape` for the flat indices in `range`, giving each index and its offsets
/// into two operands read with strides `sa` and `sb` (0 where broadcast).
@inline(__always)
func forEachOffset(_ shape: [Int], _ sa: [Int], _ sb: [Int], _ range: Range<Int>, _ body: (Int, Int, Int) -> Void) {
    let rank = shape.count
    if range.isEmpty { return }  // also every shape with a 0 dimension: nothing to walk, nothing to divide by
    guard rank > 0 else {
        body(0, 0, 0)
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

/// A new backend running every launch with the host's loops (the bits every backend must give):
/// what a backend can delegate to while its own kernels are written, and what the tests' loopback
/// backend runs on.
@_spi(Runtime) public func makeHostBackend() -> any Backend { HostBackend() }

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
            language: nil, driverVersion: nil, platform: nil, supportsFloat64: true)
    }()

    /// `posix_memalign`, which reports a failure (Swift's `allocate` stops the program instead).
    func allocate(bytes: Int) throws -> UnsafeMutableRawPointer {
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, 64, Swift.max(bytes, 64)) == 0, let pointer else {
            throw TapeError.backend("out of memory: \(bytes) bytes asked, about \(HostMemory.available()) available")
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
    func read(_ buffer: Buffer, into: UnsafeMutableRawBufferPointer) throws {
        if let base = into.baseAddress { base.copyMemory(from: buffer.handle, byteCount: into.count) }
    }

    func buildAll() -> [ProgramBuild] { [] }  // nothing to build: Swift loops and OpenBLAS
    func buildProblem() -> String? { nil }
    var kernelVariants: String? { "sin, cos and exp in \(HostMath.level)" }
    var matmulLibrary: String? { HostBLAS.description }
    func finish() {}  // host loops are done when they return
    var fusesSmallResults: Bool { false }  // a host loop's call costs less than building an expression
    var computesScalarsInline: Bool { true }  // a scalar chain (W1) then allocates no buffer per op
    func prepareFused(_ program: FusedProgram, dtype: DType, wait: Bool) -> Bool { true }  // nothing to build

    /// One concrete switch per launch, so every loop below is specialized for its element type.
    func run(_ l: Launch) throws {
        if case .indexed(let kernel) = l.forward { return indexed(l, kernel) }
        switch l.dtype {
        case .float32: try run(l, Float.self)
        case .float64: try run(l, Double.self)
        case .int32: try run(general: l, Int32.self)
        case .int8: try run(general: l, Int8.self)
        case .bool: try run(general: l, UInt8.self)
        }
    }

    func run<T: HostFloat>(_ l: Launch, _: T.Type) throws {
        switch l.forward {
        case .unary(_, let f): T.unary(l, f)
        case .binary(_, let f): T.binary(l, f)
        case .fused(let program): T.fused(l, program)
        default: try run(general: l, T.self)
        }
    }

    /// int32 and int8 tensors, and the ops that are not elementwise.
    func run<T: HostScalar>(general l: Launch, _: T.Type) throws {
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
                from: l.inputs[0].buffer.handle + l.parameters.range.offset * size, byteCount: l.output.bytes)
        case .cast:
            switch l.inputs[0].dtype {
            case .float32: cast(l, from: Float.self, to: T.self)
            case .float64: cast(l, from: Double.self, to: T.self)
            case .int32: cast(l, from: Int32.self, to: T.self)
            case .int8: cast(l, from: Int8.self, to: T.self)
            case .bool: cast(l, from: UInt8.self, to: T.self)
            }
        case .fused, .alias, .transfer, .indexed: fatalError("\(l.opName) (\(l.dtype)) is not a kernel here")
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
    func converted<T: HostScalar>(_ l: Launch, _: T.Type) {
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

    func gather<T: HostScalar>(_ l: Launch, _: T.Type) {
        let x = l.inputs[0].buffer.handle.assumingMemoryBound(to: T.self)
        let o = l.output.handle.assumingMemoryBound(to: T.self)
        let strides = l.parameters.strided.strides
        if strides.allSatisfy({ $0 == 0 }) {  // one element broadcast (a sum's cotangent): a fill
            let v = x[0]
            parallelFor(Shape.count(l.shape)) { r in (o + r.lowerBound).update(repeating: v, count: r.count) }
            return
        }
        parallelFor(Shape.count(l.shape)) { r in
            forEachOffset(l.shape, strides, strides, r) { i, ix, _ in o[i] = x[ix] }
        }
    }

    /// An indexed op's host loop over the output's elements, on both cores.
    func indexed(_ l: Launch, _ kernel: IndexedKernel) {
        let arguments = IndexedArguments(
            inputs: l.inputs.map { UnsafeRawPointer($0.buffer.handle) }, inputShapes: l.inputs.map(\.shape),
            dtype: l.inputs[0].dtype, output: l.output.handle, shape: l.shape, parameters: l.parameters)
        parallelFor(Shape.count(l.shape), grain: kernel.grain) { r in kernel.host(arguments, r) }
    }

    func cast<S: HostScalar, T: HostScalar>(_ l: Launch, from: S.Type, to: T.Type) {
        let x = l.inputs[0].buffer.handle.assumingMemoryBound(to: S.self)
        let o = l.output.handle.assumingMemoryBound(to: T.self)
        parallelFor(Shape.count(l.shape)) { r in for i in r { o[i] = .fromDouble(x[i].double) } }
    }

}
