import Synchronization

/// What a backend executes for one op: the op table's forward description plus its operands.
///
/// Ops never look at the device kind; a ``Backend`` implements each ``Forward`` case once.
package enum Forward: Sendable {
    /// Elementwise `out = f(x)`; `kernel` names the `UNARY` line in `elementwise.cl`, `host` is the
    /// host loop (see ``UnaryLoop``).
    case unary(kernel: String, host: UnaryLoop)
    /// Elementwise `out = f(a, b)` with NumPy broadcasting; `kernel` names the `BINARY` line.
    case binary(kernel: String, host: BinaryLoop)
    /// Reduction over `attributes.axes` in the fixed order of `reduce.cl` (see ``ReduceKind``).
    case reduce(ReduceKind)
    /// (Batched) matrix product with the transpose flags of ``Attributes``.
    case matmul
    /// Strided copy: `out[i] = in[Σ index_d * attributes.strides[d]]` (transpose, broadcast).
    case gather
    /// The output shares the input's buffer (reshape, identity); nothing runs.
    case alias
    /// Element type conversion to the output dtype.
    case cast
    /// Copy to another device (`attributes.device`).
    case transfer
    /// The inputs' elements one after another (row-major), into an output of `attributes.shape`.
    case concat
    /// Elements `attributes.offset ..< attributes.offset + count(output)` of the input, in order.
    case copyRange
    /// A chain of elementwise ops in one kernel (see ``Fusion``); `inputs` are the program's inputs.
    case fused(FusedProgram)
}

package enum ReduceKind: String, Sendable { case sum, max }

/// An op's input as a backend sees it: computed memory, its shape and its element type.
package struct Operand {
    package let buffer: Buffer
    package let shape: [Int]
    package let dtype: DType

    package init(buffer: Buffer, shape: [Int], dtype: DType) {
        self.buffer = buffer
        self.shape = shape
        self.dtype = dtype
    }

    package var rank: Int { shape.count }
    package var count: Int { Shape.count(shape) }
    package var byteCount: Int { count * dtype.byteSize }
}

/// One op's work as handed to a backend. `inputs` are on the backend's device (except for `.transfer`).
package struct Launch {
    package let opName: String
    package let forward: Forward
    package let inputs: [Operand]
    package let output: Buffer
    package let shape: [Int]
    package let dtype: DType
    package let attributes: Attributes

    package init(opName: String, forward: Forward, inputs: [Operand], output: Buffer, shape: [Int], dtype: DType,
                 attributes: Attributes) {
        self.opName = opName
        self.forward = forward
        self.inputs = inputs
        self.output = output
        self.shape = shape
        self.dtype = dtype
        self.attributes = attributes
    }
}

/// A backend that cannot run a launch (no kernel for this dtype, a program that failed to build)
/// throws this; the device then runs the op on the host with a one-time warning naming `reason`.
package struct Unsupported: Error { package let reason: String }

/// The device-specific half of a ``Device``: memory and execution. Two conformers: `HostBackend`
/// and `OpenCLBackend`. Work is enqueued; only ``read(_:into:)`` waits.
package protocol Backend: AnyObject, Sendable {
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
    /// Waits until everything queued has run. Called for every device at process exit: PoCL runs
    /// (and compiles) queued kernels on worker threads, which crashed when the process exited under
    /// them while its LLVM's static destructors ran.
    func finish()
    /// Why this device cannot build kernels (its ops would all run on the host), or nil when a
    /// small probe program builds.
    func buildProblem() -> String?
}

/// One program build: which family and options, how long, and whether from the disk cache.
package struct ProgramBuild: Sendable {
    package let program: String
    package let seconds: Double
    package let fromDiskCache: Bool
    package let error: String?
}

/// What `tapecl devices` shows of a device.
public struct DeviceInfo: Sendable, Codable {
    /// `host` or `opencl:N`.
    public var name: String
    /// `host` or `opencl`.
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
    /// `CL_DEVICE_OPENCL_C_VERSION`, e.g. `OpenCL C 1.2 PoCL` (nil for the host).
    public var openCLCVersion: String?
    public var driverVersion: String?
    public var platform: String?
    /// Whether float64 ops run on the device (else they run on the host, with a warning).
    public var supportsFloat64: Bool
}

/// Device memory owned by one tensor (or shared by a tensor and its reshaped views).
/// Returns to its device's caching allocator when the last tensor using it goes away.
package final class Buffer: @unchecked Sendable {
    package let core: DeviceCore
    package let handle: UnsafeMutableRawPointer
    package let bytes: Int
    let capacity: Int

    init(core: DeviceCore, handle: UnsafeMutableRawPointer, bytes: Int, capacity: Int) {
        self.core = core
        self.handle = handle
        self.bytes = bytes
        self.capacity = capacity
    }

    deinit { core.recycle(handle, bytes: bytes, capacity: capacity) }
}
