import COpenCL
import Foundation
import TapeCLKernels

/// An OpenCL device: one context and one in-order queue, created once per process.
///
/// Kernels come from `Kernels/*.cl` (embedded at build time), built once per element type and
/// cached (``ProgramCache``). Every op is enqueued without waiting; ``read(_:into:)`` is the only
/// wait. A launch the device cannot run (no fp64, a kernel that is missing or fails to build)
/// throws ``Unsupported`` and runs on the host instead, with a warning once.
///
/// Thread safety: the OpenCL handles and properties are immutable (an in-order queue serialises
/// the device's work); the program and kernel tables change only under `lock`.
@_spi(Runtime) public final class OpenCLBackend: Backend, @unchecked Sendable {
    let device: cl_device_id
    let context: cl_context
    let queue: cl_command_queue
    @_spi(Runtime) public let info: DeviceInfo
    let maxWorkGroupSize: Int
    /// What the kernel variants are chosen from (see ``KernelVariants``).
    @_spi(Runtime) public let properties: KernelVariants.DeviceProperties
    let correctlyRoundedDivide: Bool
    let lock = NSLock()
    var programs: [String: Result<cl_program, Unsupported>] = [:]
    struct KernelKey: Hashable { let name: String, family: String, dtype: DType, source: DType? }
    var kernels: [KernelKey: cl_kernel] = [:]
    /// Elementwise kernels by the table's op name, kind and element type (not a kernel name built per
    /// launch), hashed by the name's length and last letter and the element size (SipHash over the
    /// name was 700 instructions a launch); an op's kinds share a hash, a collision costs an equality test.
    struct ElementwiseKey: Hashable {
        let op: String, kind: ElementwiseKind, dtype: DType
        func _rawHashValue(seed: Int) -> Int {
            Int(
                truncatingIfNeeded: SplitMix64.mix(
                    UInt64(op.utf8.count << 16 | Int(op.utf8.last ?? 0) << 8 | dtype.byteSize)
                        ^ UInt64(bitPattern: Int64(seed))))
        }
    }
    enum ElementwiseKind: Hashable { case unary, fixup, fixup8, binary(BinaryVariant) }
    var elementwise: [ElementwiseKey: cl_kernel] = [:]
    /// Every program build so far (from source or a cached binary), for `tapecl devices --build-kernels`.
    var builds: [ProgramBuild] = []
    /// Fused kernels by program (see `FusedProgram`'s equality), and how often each program not
    /// built yet was asked for (see ``prepareFused(_:dtype:wait:)``).
    struct FusedKey: Hashable { let program: FusedProgram, dtype: DType }
    var fused: [FusedKey: cl_kernel] = [:]
    var fusedAsked: [FusedKey: Int] = [:]
    /// A launch goes through a queue and PoCL's (or a GPU driver's) scheduler: microseconds, more
    /// than a small elementwise op's work.
    @_spi(Runtime) public var fusesSmallResults: Bool { true }
    @_spi(Runtime) public var computesScalarsInline: Bool { false }  // its memory is the device's
    /// The batch gate (see OpenCLLaunching.swift).
    var gate: cl_event?
    var gated = 0
    /// Whether commands may still be running: set by every non-blocking enqueue (kernel, copy,
    /// fill), cleared when the in-order queue is known empty (a blocking read or write returned,
    /// or ``finish()``). Exit drains only a queue with work in it, so an idle process makes no
    /// OpenCL call from its `atexit` handler (Oclgrind tears its per-thread state down before
    /// those handlers run, and a call there corrupted its heap).
    var queued = false
    /// The matmul variant measured fastest here, by element size, and what each candidate took
    /// (see `OpenCLTuning.swift`).
    var tunedMatmul: [Int: KernelVariants.Matmul] = [:]
    var tuningReport: [Int: String] = [:]

    init(platform: cl_platform_id, device: cl_device_id, index: Int) throws {
        self.device = device
        func deviceString(_ p: Int32) -> String { clString { clGetDeviceInfo(device, cl_device_info(p), $0, $1, $2) } }
        let type = clValue(cl_device_type(0)) { clGetDeviceInfo(device, cl_device_info(CL_DEVICE_TYPE), $0, $1, $2) }
        let extensions = deviceString(CL_DEVICE_EXTENSIONS)
        let fp64 = clValue(cl_device_fp_config(0)) {
            clGetDeviceInfo(device, cl_device_info(CL_DEVICE_DOUBLE_FP_CONFIG), $0, $1, $2)
        }
        let fp32 = clValue(cl_device_fp_config(0)) {
            clGetDeviceInfo(device, cl_device_info(CL_DEVICE_SINGLE_FP_CONFIG), $0, $1, $2)
        }
        correctlyRoundedDivide = fp32 & cl_device_fp_config(CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0
        maxWorkGroupSize = clValue(0) {
            clGetDeviceInfo(device, cl_device_info(CL_DEVICE_MAX_WORK_GROUP_SIZE), $0, $1, $2)
        }
        let localMemory = clValue(cl_ulong(0)) {
            clGetDeviceInfo(device, cl_device_info(CL_DEVICE_LOCAL_MEM_SIZE), $0, $1, $2)
        }
        let floatWidth = clValue(cl_uint(0)) {
            clGetDeviceInfo(device, cl_device_info(CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT), $0, $1, $2)
        }
        let doubleWidth = clValue(cl_uint(0)) {
            clGetDeviceInfo(device, cl_device_info(CL_DEVICE_PREFERRED_VECTOR_WIDTH_DOUBLE), $0, $1, $2)
        }
        properties = KernelVariants.DeviceProperties(
            type: type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 ? "GPU" : "CPU", localMemoryBytes: Int(localMemory),
            maxWorkGroupSize: maxWorkGroupSize, floatVectorWidth: Int(floatWidth), doubleVectorWidth: Int(doubleWidth))
        var described = DeviceInfo(
            name: "opencl:\(index)", kind: "opencl", deviceName: deviceString(CL_DEVICE_NAME),
            vendor: deviceString(CL_DEVICE_VENDOR),
            type: type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0
                ? "GPU" : type & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 ? "CPU" : "ACCELERATOR",
            computeUnits: Int(
                clValue(cl_uint(0)) { clGetDeviceInfo(device, cl_device_info(CL_DEVICE_MAX_COMPUTE_UNITS), $0, $1, $2) }
            ),
            globalMemoryBytes: Int(
                clValue(cl_ulong(0)) {
                    clGetDeviceInfo(device, cl_device_info(CL_DEVICE_GLOBAL_MEM_SIZE), $0, $1, $2)
                }),
            maxAllocationBytes: Int(
                clValue(cl_ulong(0)) {
                    clGetDeviceInfo(device, cl_device_info(CL_DEVICE_MAX_MEM_ALLOC_SIZE), $0, $1, $2)
                }),
            language: deviceString(CL_DEVICE_OPENCL_C_VERSION),
            driverVersion: deviceString(CL_DRIVER_VERSION),
            platform: clString { clGetPlatformInfo(platform, cl_platform_info(CL_PLATFORM_NAME), $0, $1, $2) },
            supportsFloat64: fp64 != 0 || extensions.contains("cl_khr_fp64"))
        if described.type == "GPU" {
            let clock = clValue(cl_uint(0)) {
                clGetDeviceInfo(device, cl_device_info(CL_DEVICE_MAX_CLOCK_FREQUENCY), $0, $1, $2)
            }
            var lanes: Int?
            if extensions.contains("cl_nv_device_attribute_query") {
                let major = clValue(cl_uint(0)) { clGetDeviceInfo(device, cl_device_info(0x4000), $0, $1, $2) }
                let minor = clValue(cl_uint(0)) { clGetDeviceInfo(device, cl_device_info(0x4001), $0, $1, $2) }
                lanes = DevicePeaks.nvidiaLanesPerUnit(major: Int(major), minor: Int(minor))
            }
            described.peakGFLOPS = DevicePeaks.fp32GFLOPS(
                computeUnits: described.computeUnits, clockMHz: Int(clock), lanesPerUnit: lanes)
            described.bandwidthGBps = DevicePeaks.bandwidthGBps(deviceName: described.deviceName)
        }
        info = described
        var status: cl_int = 0
        var id: cl_device_id? = device
        guard let context = clCreateContext(nil, 1, &id, nil, nil, &status) else {
            try check(status, "clCreateContext")
            throw TapeError.backend("clCreateContext failed")
        }
        self.context = context
        guard let queue = clCreateCommandQueue(context, device, 0, &status) else {
            clReleaseContext(context)
            try check(status, "clCreateCommandQueue")
            throw TapeError.backend("clCreateCommandQueue failed")
        }
        self.queue = queue
    }

    // MARK: Memory

    /// A CPU device's buffers are host memory that PoCL allocates on first use, asserting when it
    /// cannot: they are checked against what the host can give first (``HostMemory``).
    @_spi(Runtime) public func allocate(bytes: Int) throws -> UnsafeMutableRawPointer {
        if info.type == "CPU" { try HostMemory.reserve(bytes, for: "out of memory") }
        var status: cl_int = 0
        let mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), max(bytes, 4), nil, &status)
        try check(status, "clCreateBuffer")
        return UnsafeMutableRawPointer(mem!)
    }

    @_spi(Runtime) public func free(_ handle: UnsafeMutableRawPointer) { clReleaseMemObject(OpaquePointer(handle)) }

    @_spi(Runtime) public func write(_ bytes: UnsafeRawBufferPointer, to buffer: Buffer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        lock.lock()
        defer { lock.unlock() }
        openGate()
        try check(
            clEnqueueWriteBuffer(
                queue, OpaquePointer(buffer.handle), cl_bool(CL_TRUE), 0, bytes.count, base, 0, nil, nil),
            "clEnqueueWriteBuffer")
        queued = false  // blocking, behind everything queued before it
    }

    @_spi(Runtime) public func fill(_ buffer: Buffer, with element: [UInt8], count: Int) throws {
        guard count > 0 else { return }
        lock.lock()
        defer { lock.unlock() }
        openGate()
        try element.withUnsafeBytes { e in
            try check(
                clEnqueueFillBuffer(
                    queue, OpaquePointer(buffer.handle), e.baseAddress, e.count, 0, count * e.count, 0, nil, nil),
                "clEnqueueFillBuffer")
        }
        queued = true
    }

    @_spi(Runtime) public func read(_ buffer: Buffer, into: UnsafeMutableRawBufferPointer) throws {
        guard let base = into.baseAddress, into.count > 0 else { return }
        lock.lock()
        defer { lock.unlock() }
        openGate()
        try check(
            clEnqueueReadBuffer(
                queue, OpaquePointer(buffer.handle), cl_bool(CL_TRUE), 0, into.count, base, 0, nil, nil),
            "clEnqueueReadBuffer")
        queued = false  // blocking, behind everything queued before it
    }

    @_spi(Runtime) public func run(_ l: Launch) throws {
        lock.lock()
        defer { lock.unlock() }
        let out = Argument.buffer(l.output.handle)
        let n = Shape.count(l.shape)
        switch l.forward {
        case .unary(let name, _):
            try unary(l, name, out: out, n: n)
        case .binary(let name, _):
            try binary(l, name, out: out, n: n)
        case .gather:
            guard l.shape.count <= 8 else { throw Unsupported(reason: "rank \(l.shape.count) > 8") }
            try enqueueExact(
                try kernel("gather", family: "elementwise", dtype: l.dtype),
                [
                    .buffer(l.inputs[0].buffer.handle), out, .int(Int32(l.shape.count)), .int8(l.shape),
                    .int8(l.parameters.strided.strides),
                ], n: n)
        case .cast:
            try enqueueExact(
                try kernel("convert", family: "convert", dtype: l.dtype, source: l.inputs[0].dtype),
                [.buffer(l.inputs[0].buffer.handle), out], n: n)
        case .reduce(let kind):
            try reduce(l, kind)
        case .matmul:
            try matmul(l)
        case .fused(let program):
            let k = try fusedKernel(program, dtype: l.dtype)
            try enqueueExact(
                k, l.inputs.map { .buffer($0.buffer.handle) } + [out] + l.extraOutputs.map { .buffer($0.handle) }, n: n)
        case .concat:
            var at = 0
            for input in l.inputs where input.byteCount > 0 {
                try copy(input.buffer, from: 0, to: l.output, at: at, bytes: input.byteCount)
                at += input.byteCount
            }
        case .copyRange:
            try copy(
                l.inputs[0].buffer, from: l.parameters.range.offset * l.dtype.byteSize, to: l.output, at: 0,
                bytes: l.output.bytes)
        case .indexed(let k):
            try indexed(l, k, out: out, n: n)
        case .alias, .transfer:
            fatalError("\(l.opName) is not a kernel")
        }
    }

}
