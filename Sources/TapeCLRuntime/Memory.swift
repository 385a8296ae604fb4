import Foundation
import Synchronization

/// Memory accounting of one ``Device``: what the tensors alive now hold, and the high-water mark.
///
/// Byte counts are the tensors' own sizes (`count × dtype.byteSize`), not the rounded blocks the
/// caching allocator hands out, so a test can state exactly what a tape keeps:
/// ```swift
/// let before = device.memory.liveBytes
/// let g = try tape.gradient(of: y.sum(), wrt: x)   // a one-shot tape frees its entries here
/// // device.memory.liveBytes - before == g.byteCount (plus y, if still referenced)
/// ```
public struct MemoryStats: Sendable, Equatable, CustomStringConvertible {
    /// Bytes of all live buffers.
    public var liveBytes = 0
    /// The largest `liveBytes` since the device was created or ``Device/resetPeakMemory()``.
    public var peakBytes = 0
    /// Buffers alive now.
    public var liveAllocations = 0
    /// Buffers handed out so far (cache hits included).
    public var allocations = 0
    /// Buffers the backend really allocated (cache misses).
    public var backendAllocations = 0
    /// Bytes held by the caching allocator for reuse (not live).
    public var cachedBytes = 0
    /// Reads of tensors into host memory so far (`scalars`, `copyBytes`, transfers): each one
    /// waits for the device's queue.
    public var reads = 0

    public var description: String {
        "live \(liveBytes) B in \(liveAllocations) buffers, peak \(peakBytes) B, \(allocations) allocations "
            + "(\(backendAllocations) from the backend), cached \(cachedBytes) B"
    }
}

/// The backend plus everything device-independent: the caching allocator, memory statistics,
/// host fallback. One per ``Device``.
///
/// Thread safety: the backend and limits are immutable; the allocator's blocks and the statistics
/// live in `state`, a `Mutex`; counters are atomics.
@_spi(Runtime) public final class DeviceCore: @unchecked Sendable {
    @_spi(Runtime) public let backend: any Backend
    @_spi(Runtime) public let name: String
    private struct State {
        var stats = MemoryStats()
        /// Cached blocks by capacity: an array slot per 256-byte class up to 4 KiB, a dictionary above.
        var small = [[Block]](repeating: [], count: 17)
        var free: [Int: [Block]] = [:]
        /// Launches that ran on the host instead, and the first reason given for each op.
        var fallbacks = 0
        var fallbackReasons: [String: String] = [:]
    }
    private let state = Mutex(State())
    /// Cached blocks beyond this are given back to the backend at once.
    private let cacheLimit: Int
    /// ``DeviceInfo/maxAllocationBytes``, read once (`backend.info` copies the whole description).
    @_spi(Runtime) public let maxAllocationBytes: Int
    /// ``Backend/fusesSmallResults``, read once (it is asked for every elementwise op).
    @_spi(Runtime) public let fusesSmallResults: Bool
    /// ``Backend/computesScalarsInline``, read once.
    @_spi(Runtime) public let computesScalarsInline: Bool

    init(name: String, backend: any Backend, cacheLimit: Int = 2 << 30) {
        self.name = name
        self.backend = backend
        self.cacheLimit = cacheLimit
        maxAllocationBytes = backend.info.maxAllocationBytes
        fusesSmallResults = backend.fusesSmallResults
        computesScalarsInline = backend.computesScalarsInline
    }

    /// Block sizes: 256-byte steps up to 4 KiB, then eight steps per power of two, so a reused
    /// block wastes at most 12.5%.
    @_spi(Runtime) public static func capacity(for bytes: Int) -> Int {
        if bytes <= 4096 { return max(256, (bytes + 255) & ~255) }
        let top = Int.bitWidth - (bytes - 1).leadingZeroBitCount
        let step = 1 << (top - 4)
        return (bytes + step - 1) / step * step
    }

    /// Throws unless a buffer of `bytes` can exist on this device at all (at most
    /// ``DeviceInfo/maxAllocationBytes``): checked when an op is applied, before its result is
    /// allocated or deferred (a pending result allocates later, where it could not throw).
    /// - Throws: ``TapeError/backend(_:)`` naming `op`, the shape, the bytes asked and available.
    @inlinable
    @_spi(Runtime) public func checkAllocatable(
        _ bytes: Int, op: @autoclosure () -> String, shape: @autoclosure () -> [Int], dtype: DType
    ) throws {
        if bytes > maxAllocationBytes { throw tooLarge(bytes, op: op(), shape: shape(), dtype: dtype) }
    }
    @usableFromInline
    func tooLarge(_ bytes: Int, op: String, shape: [Int], dtype: DType) -> TapeError {
        let limit = maxAllocationBytes
        return TapeError.backend(
            "\(op): a \(dtype) result of shape \(Shape.describe(shape)) needs \(bytes) bytes; \(name) "
                + "allocates at most \(limit) bytes a buffer (\(stats.liveBytes) bytes live)"
        )
    }

    @_spi(Runtime) public func allocate(bytes: Int) throws -> Buffer {
        let capacity = Self.capacity(for: bytes)
        let reused: UnsafeMutableRawPointer? = state.withLock { s -> Block? in
            s.stats.allocations += 1
            s.stats.liveAllocations += 1
            s.stats.liveBytes += bytes
            s.stats.peakBytes = max(s.stats.peakBytes, s.stats.liveBytes)
            let h = capacity <= 4096 ? s.small[capacity >> 8].popLast() : s.free[capacity]?.popLast()
            if h != nil { s.stats.cachedBytes -= capacity }
            return h
        }?.handle
        if let reused { return Buffer(core: self, handle: reused, bytes: bytes, capacity: capacity) }
        let handle: UnsafeMutableRawPointer
        do {
            handle = try backend.allocate(bytes: capacity)
        } catch {
            emptyCache()  // out of memory with blocks cached: give them back and try once more
            do { handle = try backend.allocate(bytes: capacity) } catch {
                let live = state.withLock { s in
                    s.stats.liveAllocations -= 1
                    s.stats.liveBytes -= bytes
                    return s.stats.liveBytes
                }
                throw TapeError.backend("\(name): cannot allocate \(bytes) bytes (\(live) bytes live): \(error)")
            }
        }
        state.withLock { $0.stats.backendAllocations += 1 }
        return Buffer(core: self, handle: handle, bytes: bytes, capacity: capacity)
    }

    /// ``allocate(bytes:)`` for `op`'s result, its failure naming the op, the shape and the bytes.
    @_spi(Runtime) public func allocate(
        bytes: Int, op: @autoclosure () -> String, shape: @autoclosure () -> [Int], dtype: DType
    ) throws -> Buffer {
        do { return try allocate(bytes: bytes) } catch {
            throw TapeError.backend(
                "\(op()): a \(dtype) result of shape \(Shape.describe(shape())) needs \(bytes) bytes; \(error)")
        }
    }

    func recycle(_ handle: UnsafeMutableRawPointer, bytes: Int, capacity: Int) {
        let block = Block(handle: handle)
        let keep = state.withLock { s in
            s.stats.liveAllocations -= 1
            s.stats.liveBytes -= bytes
            guard s.stats.cachedBytes + capacity <= cacheLimit else { return false }
            if capacity <= 4096 {
                s.small[capacity >> 8].append(block)
            } else {
                s.free[capacity, default: []].append(block)
            }
            s.stats.cachedBytes += capacity
            return true
        }
        if !keep { backend.free(handle) }
    }

    @_spi(Runtime) public func emptyCache() {
        let blocks = state.withLock { s in
            let all = s.free.values.flatMap { $0 } + s.small.flatMap { $0 }
            s.free = [:]
            s.small = [[Block]](repeating: [], count: 17)
            s.stats.cachedBytes = 0
            return all
        }
        for b in blocks { backend.free(b.handle) }
    }

    @_spi(Runtime) public var stats: MemoryStats { state.withLock { $0.stats } }

    /// How many launches ran on the host instead of this device so far, and why (first reason per
    /// op): `tapecl check` fails an op whose device run fell back, so a check never passes on a
    /// device where nothing ran.
    @_spi(Runtime) public var fallbacks: (count: Int, reasons: [String: String]) {
        state.withLock { ($0.fallbacks, $0.fallbackReasons) }
    }
    /// Reads `buffer` into host memory (waiting for the queue), counted in ``MemoryStats/reads``.
    @_spi(Runtime) public func read(_ buffer: Buffer, into destination: UnsafeMutableRawBufferPointer) throws {
        state.withLock { $0.stats.reads += 1 }
        try backend.read(buffer, into: destination)
    }

    @_spi(Runtime) public func resetPeak() { state.withLock { $0.stats.peakBytes = $0.stats.liveBytes } }

    /// Prints `message` to standard error the first time `key` is seen on this device.
    @_spi(Runtime) public func warnOnce(_ key: String, _ message: @autoclosure () -> String) {
        Notices.warnOnce(name + ":" + key, message())
    }

    /// A cached block (device memory is only touched by its owner; the pointer is an address).
    struct Block: @unchecked Sendable { let handle: UnsafeMutableRawPointer }

    /// Launches run so far (what fusion saves is counted in them).
    @_spi(Runtime) public var launches: Int { launched.load(ordering: .relaxed) }
    private let launched = Atomic<Int>(0)

    /// Runs `launch` on the backend; one it cannot run goes to the host, with a warning once per op.
    @_spi(Runtime) public func run(_ launch: Launch) throws {
        if try emptyLaunch(launch) { return }
        launched.add(1, ordering: .relaxed)
        do {
            try backend.run(launch)
        } catch let u as Unsupported {
            state.withLock { s in
                s.fallbacks += 1
                if s.fallbackReasons[launch.opName] == nil { s.fallbackReasons[launch.opName] = u.reason }
            }
            if u.build {
                warnOnce(
                    "build:\(u.reason)",
                    "\(u.reason); \(launch.opName) (\(launch.dtype)) and the other ops of that program run on the "
                        + "host on \(name)")
            } else {
                warnOnce(
                    "fallback:\(launch.opName):\(launch.dtype)",
                    "\(launch.opName) (\(launch.dtype)) runs on the host on \(name): \(u.reason)")
            }
            try runOnHost(launch)
        }
    }

    /// Tensors with no elements, on every backend, before any kernel or loop sees them (a kernel
    /// indexes by the output's elements; a host loop divides by dimensions): a launch with no output
    /// elements does nothing, and one whose output has elements while an input has none gives TF's
    /// result, the identity of its reduction (a sum 0, a max -inf, a matrix product over K = 0 zeros),
    /// or, for `concat`, the other inputs back to back (an ordinary launch, with its host fallback).
    /// Returns whether the launch was handled.
    private func emptyLaunch(_ launch: Launch) throws -> Bool {
        let count = Shape.count(launch.shape)
        if count == 0 { return true }
        guard launch.inputs.contains(where: { $0.count == 0 }) else { return false }
        let identity: Double
        switch launch.forward {
        case .reduce(.sum), .matmul: identity = 0
        case .reduce(.max): identity = launch.dtype.lowest
        case .concat:
            let nonEmpty = launch.inputs.filter { $0.count > 0 }
            try nonEmpty.withUnsafeBufferPointer { inputs in
                try run(
                    Launch(
                        opName: launch.opName, forward: launch.forward, inputs: inputs, output: launch.output,
                        shape: launch.shape, dtype: launch.dtype, parameters: launch.parameters))
            }
            return true
        default: return false  // the op's own kernel handles it (an indexed op reads no empty input)
        }
        try backend.fill(launch.output, with: launch.dtype.bytes(of: identity), count: count)
        return true
    }

    /// The host fallback: inputs to host memory, the host backend's loop, the result back.
    private func runOnHost(_ launch: Launch) throws {
        let host = Device.host
        let inputs = try launch.inputs.map { input in
            let copy = try host.core.allocate(bytes: input.byteCount)
            try backend.read(
                input.buffer, into: UnsafeMutableRawBufferPointer(start: copy.handle, count: input.byteCount))
            return Operand(buffer: copy, shape: input.shape, dtype: input.dtype)
        }
        let outs = try ([launch.output] + launch.extraOutputs).map { try host.core.allocate(bytes: $0.bytes) }
        try inputs.withUnsafeBufferPointer { operands in
            try host.core.backend.run(
                Launch(
                    opName: launch.opName, forward: launch.forward, inputs: operands, output: outs[0],
                    shape: launch.shape, dtype: launch.dtype, parameters: launch.parameters,
                    extraOutputs: Array(outs.dropFirst())))
        }
        for (out, target) in zip(outs, [launch.output] + launch.extraOutputs) {
            try backend.write(UnsafeRawBufferPointer(start: out.handle, count: out.bytes), to: target)
        }
    }
}
