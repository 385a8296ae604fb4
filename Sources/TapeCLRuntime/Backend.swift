import Synchronization

/// What a backend executes for one op: the op table's forward description plus its operands.
///
/// Ops never look at the device kind; a ``Backend`` implements each ``Forward`` case once.
@_spi(Runtime) public enum Forward: Sendable {
    /// Elementwise `out = f(x)`; `kernel` names the `UNARY` line in `elementwise.cl`, `host` is the
    /// host loop (see ``UnaryLoop``).
    case unary(kernel: String, host: UnaryLoop)
    /// Elementwise `out = f(a, b)` with NumPy broadcasting; `kernel` names the `BINARY` line.
    case binary(kernel: String, host: BinaryLoop)
    /// Reduction over ``Reduction/axes`` in the fixed order of `reduce.cl` (see ``ReduceKind``).
    case reduce(ReduceKind)
    /// (Batched) matrix product with the ``Transposes`` of its parameters.
    case matmul
    /// Strided copy: `out[i] = in[Σ index_d * strides[d]]` (transpose, broadcast; see ``Strided``).
    case gather
    /// The output shares the input's buffer (reshape, identity); nothing runs.
    case alias
    /// Element type conversion to the output dtype.
    case cast
    /// Copy to another device (the op table does it; no backend runs it).
    case transfer
    /// The inputs' elements one after another (row-major).
    case concat
    /// Elements `offset ..< offset + count(output)` of the input, in order (see ``ElementRange``).
    case copyRange
    /// A chain of elementwise ops in one kernel (see ``Fusion``); `inputs` are the program's inputs.
    case fused(FusedProgram)
    /// One work-item per output element computing it from its index (indexing, gathering,
    /// comparisons, images): see ``IndexedKernel``.
    case indexed(IndexedKernel)
}

@_spi(Runtime) public enum ReduceKind: String, Sendable { case sum, max }

/// An op computed element by element from the output's index: kernel `name` of `Kernels/<family>.cl`,
/// built for the first input's element type `T`, called as
/// `name(inputs' buffers..., out, [const <family>_window g,] const ulong off)` with one work-item per
/// output element (`out[off + get_global_id(0)]`); `g` is the op's parameters as one struct (see
/// ``Parameters/kernelArgument``), absent for the ops without any. With `channelRuns` set, each
/// work-item writes the run of an image's C consecutive channels instead (one index computation for
/// all of them). `host` is the same loop on the host for a range of output indices (run on both
/// cores, `grain` indices at least to a part).
/// A class, so that ``Forward`` (copied into every launch) stays as small as its other cases.
@_spi(Runtime) public final class IndexedKernel: Sendable {
    @_spi(Runtime) public let name: String
    @_spi(Runtime) public let family: String
    @_spi(Runtime) public let grain: Int
    @_spi(Runtime) public let channelRuns: Bool
    @_spi(Runtime) public let host: @Sendable (IndexedArguments, Range<Int>) -> Void

    @_spi(Runtime) public init(
        _ name: String, family: String, grain: Int = 1 << 12, channelRuns: Bool = false,
        host: @escaping @Sendable (IndexedArguments, Range<Int>) -> Void
    ) {
        self.name = name
        self.family = family
        self.grain = grain
        self.channelRuns = channelRuns
        self.host = host
    }
}

/// What an indexed op's host loop reads: the inputs' memory and shapes, the first input's element
/// type, the output's memory and shape, and the op's parameters. Immutable; the pointers
/// are valid for the launch, whose parallel parts write disjoint ranges of the output.
@_spi(Runtime) public struct IndexedArguments: @unchecked Sendable {
    @_spi(Runtime) public let inputs: [UnsafeRawPointer]
    @_spi(Runtime) public let inputShapes: [[Int]]
    @_spi(Runtime) public let dtype: DType
    @_spi(Runtime) public let output: UnsafeMutableRawPointer
    @_spi(Runtime) public let shape: [Int]
    @_spi(Runtime) public let parameters: Parameters

    /// Input `i` as elements of `T`.
    @inlinable @_spi(Runtime) public func input<T>(_ i: Int, _: T.Type) -> UnsafePointer<T> {
        inputs[i].assumingMemoryBound(to: T.self)
    }
    /// The output as elements of `T`.
    @inlinable @_spi(Runtime) public func output<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        output.assumingMemoryBound(to: T.self)
    }
}

/// An op's input as a backend sees it: computed memory, its shape and its element type.
@_spi(Runtime) public struct Operand {
    @_spi(Runtime) public let buffer: Buffer
    @_spi(Runtime) public let shape: [Int]
    @_spi(Runtime) public let dtype: DType

    @inlinable
    @_spi(Runtime) public init(buffer: Buffer, shape: [Int], dtype: DType) {
        self.buffer = buffer
        self.shape = shape
        self.dtype = dtype
    }

    @inlinable @_spi(Runtime) public var rank: Int { shape.count }
    @inlinable @_spi(Runtime) public var count: Int { Shape.count(shape) }
    @inlinable @_spi(Runtime) public var byteCount: Int { count * dtype.byteSize }
}

/// Runs `body` with `count` operands made by `operand(i)` in stack memory (no array per launch:
/// W1's scalar chains spent about 5% of their instructions allocating and freeing one).
@inlinable @_spi(Runtime) public func withOperands<R>(
    count: Int, _ operand: (Int) throws -> Operand,
    _ body: (UnsafeBufferPointer<Operand>) throws -> R
) rethrows -> R {
    try withUnsafeTemporaryAllocation(of: Operand.self, capacity: count) { memory in
        let base = memory.baseAddress!
        var made = 0
        defer { base.deinitialize(count: made) }
        while made < count {
            (base + made).initialize(to: try operand(made))
            made += 1
        }
        return try body(UnsafeBufferPointer(start: base, count: count))
    }
}

/// One op's work as handed to a backend. A launch lives for one ``Backend/run(_:)`` call: its
/// `inputs` point at operands that the caller keeps for that call only (on the stack, see
/// ``withOperands(_:_:)``), so a backend must not keep them (a queued OpenCL kernel keeps its
/// buffers alive by itself). `inputs` are on the backend's device (except for `.transfer`).
@_spi(Runtime) public struct Launch {
    @_spi(Runtime) public let opName: String
    @_spi(Runtime) public let forward: Forward
    @_spi(Runtime) public let inputs: UnsafeBufferPointer<Operand>
    @_spi(Runtime) public let output: Buffer
    @_spi(Runtime) public let shape: [Int]
    @_spi(Runtime) public let dtype: DType
    /// The op's parameters (its reduced axes, strides, transposes, range or window).
    @_spi(Runtime) public let parameters: Parameters
    /// A fused program's ``FusedProgram/outputs``, in order, each of the output's shape.
    @_spi(Runtime) public let extraOutputs: [Buffer]

    @inlinable
    @_spi(Runtime) public init(
        opName: String, forward: Forward, inputs: UnsafeBufferPointer<Operand>, output: Buffer,
        shape: [Int], dtype: DType,
        parameters: Parameters, extraOutputs: [Buffer] = []
    ) {
        self.opName = opName
        self.forward = forward
        self.inputs = inputs
        self.output = output
        self.shape = shape
        self.dtype = dtype
        self.parameters = parameters
        self.extraOutputs = extraOutputs
    }
}

/// A backend that cannot run a launch (no kernel for this dtype, a program that failed to build)
/// throws this; the device then runs the op on the host with a one-time warning naming `reason`.
@_spi(Runtime) public struct Unsupported: Error {
    /// One line: why.
    @_spi(Runtime) public let reason: String
    /// More (a build log), kept for `tapecl devices --build-kernels`.
    @_spi(Runtime) public var detail = ""
    /// A program failed to build: the warning is given once for the program, naming the first op
    /// that needed it, not once for each of its ops.
    @_spi(Runtime) public var build = false
}

/// The device-specific half of a ``Device``: memory and execution. Two conformers in this build,
/// `HostBackend` and `OpenCLBackend`, each in its folder; a ``DeviceFamily`` finds a backend's
/// devices. Work is enqueued; only ``read(_:into:)`` waits.
///
/// A backend runs every ``Forward`` kind but `.alias` and `.transfer` (``DeviceCore/submit`` does those),
/// or throws ``Unsupported`` for a launch it cannot run, which then runs on the host (counted in
/// ``Device/fallbacks``). The host loops it must match bit for bit are the runtime's `Host*` files.
@_spi(Runtime) public protocol Backend: AnyObject, Sendable {
    /// One line for `tapecl devices`.
    var info: DeviceInfo { get }
    /// Fresh device memory of exactly `bytes` (the caching allocator rounds before asking).
    func allocate(bytes: Int) throws -> UnsafeMutableRawPointer
    func free(_ handle: UnsafeMutableRawPointer)
    /// Copies host bytes into `buffer` (from offset 0); `bytes` may be reused when this returns.
    func write(_ bytes: UnsafeRawBufferPointer, to buffer: Buffer) throws
    /// Fills the first `count` elements of `buffer` with `element` (one element's bytes), without
    /// a host array of the tensor's size.
    func fill(_ buffer: Buffer, with element: [UInt8], count: Int) throws
    /// Waits for queued work on `buffer`, then copies its first `into.count` bytes out.
    func read(_ buffer: Buffer, into: UnsafeMutableRawBufferPointer) throws
    /// Enqueues one op.
    func run(_ launch: Launch) throws
    /// Builds every kernel program now (else each is built on first use) and reports each build.
    func buildAll() -> [ProgramBuild]
    /// The kernel variants this device runs (see ``KernelVariants``), for `tapecl devices`; nil on the host.
    var kernelVariants: String? { get }
    /// The library that runs matrix products here (OpenBLAS on the host), or nil for TapeCL's own kernels.
    var matmulLibrary: String? { get }
    /// Waits until everything queued has run. Called for every device at process exit: PoCL runs
    /// (and compiles) queued kernels on worker threads, which crashed when the process exited under
    /// them while its LLVM's static destructors ran.
    func finish()
    /// Why this device cannot build kernels (its ops would all run on the host), or nil when a
    /// small probe program builds.
    func buildProblem() -> String?
    /// Whether a launch costs more than a small elementwise op's work (a queue and a driver between
    /// the caller and the device), so that results of any size wait to run fused (see `Fusion`);
    /// else only large ones do.
    var fusesSmallResults: Bool { get }
    /// Whether device memory is host memory and a launch costs more than one element's work, so
    /// that a one-element float elementwise result is computed by the caller with the op's host
    /// loop (``InlineElement``: the bits the launch would write) and kept in its tensor, with no
    /// buffer until something asks for one.
    var computesScalarsInline: Bool { get }
    /// Whether `program` runs as one ``Forward/fused(_:)`` launch for `dtype` now. A backend that
    /// compiles kernels may answer false until the program has proved that it repeats (`wait`:
    /// build it now); the caller then runs the program's steps one launch each, so a chain that
    /// runs once never waits for a compiler. A program that cannot be built answers true: its
    /// launch then throws ``Unsupported`` and runs on the host.
    func prepareFused(_ program: FusedProgram, dtype: DType, wait: Bool) -> Bool
}

/// One program build: which family and options, how long, and whether from the disk cache.
/// One kernel program's build, as ``Device/buildKernels()`` reports it.
public struct ProgramBuild: Sendable {
    /// The program's name (its source files and options).
    public let program: String
    /// How long the build (or the load from the disk cache) took.
    public let seconds: Double
    /// Whether its binary came from TapeCL's disk cache.
    public let fromDiskCache: Bool
    /// The build's error, if it failed (its ops then run on the host).
    public let error: String?
}

/// What `tapecl devices` shows of a device.
public struct DeviceInfo: Sendable, Codable {
    /// `host`, or the device family's name and the device's number (`opencl:0`).
    public var name: String
    /// `host`, or the device family's name (`opencl`).
    public var kind: String
    /// The driver's name for the device (`CL_DEVICE_NAME`; the CPU model for the host).
    public var deviceName: String
    public var vendor: String
    /// `CPU`, `GPU` or `ACCELERATOR`.
    public var type: String
    public var computeUnits: Int
    public var globalMemoryBytes: Int
    /// The largest single buffer the device allocates (`CL_DEVICE_MAX_MEM_ALLOC_SIZE`; the
    /// physical memory on the host). A larger tensor is a ``TapeError``, never a crash.
    public var maxAllocationBytes: Int
    /// The kernel language the device compiles and its version, e.g. `OpenCL C 1.2 PoCL` (nil for
    /// the host).
    public var language: String?
    public var driverVersion: String?
    public var platform: String?
    /// Whether float64 ops run on the device (else they run on the host, with a warning).
    public var supportsFloat64: Bool
    /// A GPU's FP32 peak in GFLOP/s and its memory bandwidth in GB/s, where known (see `DevicePeaks`).
    public var peakGFLOPS: Double? = nil
    public var bandwidthGBps: Double? = nil

    /// A backend's description of one of its devices.
    @_spi(Runtime) public init(
        name: String, kind: String, deviceName: String, vendor: String, type: String, computeUnits: Int,
        globalMemoryBytes: Int, maxAllocationBytes: Int, language: String?, driverVersion: String?,
        platform: String?, supportsFloat64: Bool, peakGFLOPS: Double? = nil, bandwidthGBps: Double? = nil
    ) {
        self.name = name
        self.kind = kind
        self.deviceName = deviceName
        self.vendor = vendor
        self.type = type
        self.computeUnits = computeUnits
        self.globalMemoryBytes = globalMemoryBytes
        self.maxAllocationBytes = maxAllocationBytes
        self.language = language
        self.driverVersion = driverVersion
        self.platform = platform
        self.supportsFloat64 = supportsFloat64
        self.peakGFLOPS = peakGFLOPS
        self.bandwidthGBps = bandwidthGBps
    }
}

/// Device memory owned by one tensor (or shared by a tensor and its reshaped views).
/// Returns to its device's caching allocator when the last tensor using it goes away.
/// Immutable: the pointer is an address (host memory or an OpenCL handle) the buffer owns.
@_spi(Runtime) public final class Buffer: @unchecked Sendable {
    @_spi(Runtime) public let core: DeviceCore
    @_spi(Runtime) public let handle: UnsafeMutableRawPointer
    @_spi(Runtime) public let bytes: Int
    let capacity: Int

    init(core: DeviceCore, handle: UnsafeMutableRawPointer, bytes: Int, capacity: Int) {
        self.core = core
        self.handle = handle
        self.bytes = bytes
        self.capacity = capacity
    }

    deinit { core.recycle(handle, bytes: bytes, capacity: capacity) }
}
