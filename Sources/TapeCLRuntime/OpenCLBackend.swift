import COpenCL
import Foundation
import TapeCLKernels

/// An OpenCL device: one context and one in-order queue, created once per process.
///
/// Kernels come from `Kernels/*.cl` (embedded at build time), built once per element type and
/// cached (``ProgramCache``). Every op is enqueued without waiting; ``read(_:into:)`` is the only
/// wait. A launch the device cannot run (no fp64, a kernel that is missing or fails to build)
/// throws ``Unsupported`` and runs on the host instead, with a warning once.
@_spi(Runtime) public final class OpenCLBackend: Backend, @unchecked Sendable {
    let device: cl_device_id
    let context: cl_context
    let queue: cl_command_queue
    @_spi(Runtime) public let info: DeviceInfo
    private let maxWorkGroupSize: Int
    private let correctlyRoundedDivide: Bool
    private let lock = NSLock()
    private var programs: [String: Result<cl_program, Unsupported>] = [:]
    private struct KernelKey: Hashable { let name: String, family: String, dtype: DType, source: DType? }
    private var kernels: [KernelKey: cl_kernel] = [:]
    /// Elementwise kernels by the table's op name, kind and element type (not a kernel name built per
    /// launch), hashed by the name's length and last letter and the element size (SipHash over the
    /// name was 700 instructions a launch); an op's kinds share a hash, a collision costs an equality test.
    private struct ElementwiseKey: Hashable {
        let op: String, kind: ElementwiseKind, dtype: DType
        func _rawHashValue(seed: Int) -> Int {
            Int(
                truncatingIfNeeded: SplitMix64.mix(
                    UInt64(op.utf8.count << 16 | Int(op.utf8.last ?? 0) << 8 | dtype.byteSize)
                        ^ UInt64(bitPattern: Int64(seed))))
        }
    }
    private enum ElementwiseKind: Hashable { case unary, fixup, fixup8, binary(BinaryVariant) }
    private var elementwise: [ElementwiseKey: cl_kernel] = [:]
    /// Every program build so far (from source or a cached binary), for `tapecl devices --build-kernels`.
    private var builds: [ProgramBuild] = []

    /// Every device of every platform, in platform order. Called once (by the device registry).
    static func discover() -> [OpenCLBackend] {
        preparePoCLCache()
        var count: cl_uint = 0
        guard clGetPlatformIDs(0, nil, &count) == CL_SUCCESS, count > 0 else { return [] }
        var platforms = [cl_platform_id?](repeating: nil, count: Int(count))
        guard clGetPlatformIDs(count, &platforms, nil) == CL_SUCCESS else { return [] }
        var found: [OpenCLBackend] = []
        for case let platform? in platforms {
            var n: cl_uint = 0
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &n) == CL_SUCCESS, n > 0 else {
                continue
            }
            var ids = [cl_device_id?](repeating: nil, count: Int(n))
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), n, &ids, nil) == CL_SUCCESS else {
                continue
            }
            for case let id? in ids {
                do { found.append(try OpenCLBackend(platform: platform, device: id, index: found.count)) } catch {
                    printError("TapeCL warning: skipping an OpenCL device: \(error)")
                }
            }
        }
        return found
    }

    /// PoCL drops a device (or fails every build) when it cannot write its kernel-cache folder:
    /// a user's `POCL_CACHE_DIR` that is not a writable folder is reported once; unset, PoCL is
    /// pointed at a writable one. Only absolute `XDG_CACHE_HOME` and `HOME` count (an empty or
    /// relative one would create folders in the current directory).
    private static func preparePoCLCache() {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["POCL_CACHE_DIR"] {
            var isDirectory: ObjCBool = false
            let created =
                (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil
            let exists = FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory)
            let reason =
                !exists
                ? "it cannot be created"
                : !isDirectory.boolValue
                    ? "it is not a folder"
                    : !created || !FileManager.default.isWritableFile(atPath: dir) ? "it is not writable" : nil
            if let reason {
                Notices.warnOnce(
                    "pocl-cache",
                    "POCL_CACHE_DIR=\(dir) cannot hold PoCL's kernel cache (\(reason)): PoCL may hide its "
                        + "device or fail every kernel build"
                )
            }
            return
        }
        let base =
            env["XDG_CACHE_HOME"].flatMap { $0.hasPrefix("/") ? URL(fileURLWithPath: $0) : nil }
            ?? env["HOME"].flatMap {
                $0.hasPrefix("/") ? URL(fileURLWithPath: $0).appendingPathComponent(".cache") : nil
            }
        if let base,
            (try? FileManager.default.createDirectory(
                at: base.appendingPathComponent("pocl"), withIntermediateDirectories: true)) != nil,
            FileManager.default.isWritableFile(atPath: base.appendingPathComponent("pocl").path)
        {
            return
        }
        let fallback = FileManager.default.temporaryDirectory.appendingPathComponent("tapecl-pocl-cache")
        try? FileManager.default.createDirectory(at: fallback, withIntermediateDirectories: true)
        setenv("POCL_CACHE_DIR", fallback.path, 1)
    }

    private init(platform: cl_platform_id, device: cl_device_id, index: Int) throws {
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
        info = DeviceInfo(
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
            openCLCVersion: deviceString(CL_DEVICE_OPENCL_C_VERSION),
            driverVersion: deviceString(CL_DRIVER_VERSION),
            platform: clString { clGetPlatformInfo(platform, cl_platform_info(CL_PLATFORM_NAME), $0, $1, $2) },
            supportsFloat64: fp64 != 0 || extensions.contains("cl_khr_fp64"))
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

    @_spi(Runtime) public func allocate(bytes: Int) throws -> UnsafeMutableRawPointer {
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
    }

    // MARK: Programs and kernels

    static func cType(_ d: DType) -> String {
        switch d {
        case .float32: "float"
        case .float64: "double"
        case .int32: "int"
        case .int8: "char"
        }
    }

    /// `family` (a file of `Kernels/`) built for element type `dtype` (and source type for `convert`);
    /// or, for a fused chain, the program `generated` makes (built with `-DFUNCTIONS_ONLY`).
    private func kernel(
        _ name: String, family: String, dtype: DType, source: DType? = nil,
        generated: (() -> String)? = nil
    ) throws -> cl_kernel {
        let key = KernelKey(name: name, family: family, dtype: dtype, source: source)
        if let k = kernels[key] { return k }
        if (dtype == .float64 || source == .float64) && !info.supportsFloat64 {
            throw Unsupported(reason: "the device has no fp64")
        }
        var options = "-DT=\(Self.cType(dtype)) -DIS_FLOAT=\(dtype.isFloatingPoint ? 1 : 0)"
        // -w: PoCL's clang notes that double8 values change the ABI without AVX-512, and printed
        // "38 warnings generated." on a user's first run; the OpenCL option keeps builds quiet.
        if dtype == .float64 || source == .float64 { options += " -DUSE_FP64 -w" }
        if let source { options += " -DS=\(Self.cType(source))" }
        if generated != nil { options += " -DFUNCTIONS_ONLY" }
        if correctlyRoundedDivide { options += " -cl-fp32-correctly-rounded-divide-sqrt" }
        let programKey = family + " " + options
        let program = try self.program(family: family, options: options, key: programKey, source: generated?())
        var status: cl_int = 0
        guard let k = clCreateKernel(program, name, &status), status == CL_SUCCESS else {
            throw Unsupported(reason: "no kernel \(name) in \(family) for \(dtype) (\(clErrorName(status)))")
        }
        kernels[key] = k
        return k
    }

    private func kernel(_ kind: ElementwiseKind, _ op: String, dtype: DType) throws -> cl_kernel {
        let key = ElementwiseKey(op: op, kind: kind, dtype: dtype)
        if let k = elementwise[key] { return k }
        let name =
            switch kind {
            case .unary: "unary_" + op
            case .fixup: "fixup_" + op
            case .fixup8: "fixup8_" + op
            case .binary(let variant): "binary_\(op)_\(variant.rawValue)"
            }
        let k = try kernel(name, family: "elementwise", dtype: dtype)
        elementwise[key] = k
        return k
    }

    /// The kernel of a fused chain (see `Fusion`): `elementwise.cl`'s op functions, then one
    /// generated kernel calling them step by step. Built once per chain and dtype, then cached
    /// like every program.
    private func fusedKernel(_ p: FusedProgram, dtype: DType) throws -> cl_kernel {
        try kernel("fused", family: "fused " + p.key, dtype: dtype) {
            var parameters: [String] = []
            var body = ["    const size_t i = get_global_id(0) + off;"]
            for (k, step) in p.steps.enumerated() {
                let value: String
                switch step {
                case .input(let j, let single):
                    parameters.append("__global const T* restrict in\(j)")
                    value = single ? "in\(j)[0]" : "in\(j)[i]"
                case .unary(let name, _, let a): value = "op_\(name)(v\(a))"
                case .binary(let name, _, let a, let b): value = "bop_\(name)(v\(a), v\(b))"
                }
                body.append("    const T v\(k) = \(value);")
            }
            body.append("    out[i] = v\(p.steps.count - 1);")
            return (Self.source(family: "elementwise") ?? "") + "\n__kernel void fused("
                + (parameters + ["__global T* restrict out", "const ulong off"]).joined(separator: ", ") + ") {\n"
                + body.joined(separator: "\n") + "\n}\n"
        }
    }

    private func program(family: String, options: String, key: String, source: String? = nil) throws -> cl_program {
        if let cached = programs[key] { return try cached.get() }
        let result = Result { try build(family: family, options: options, source: source) }.mapError { error in
            (error as? Unsupported) ?? Unsupported(reason: "\(error)")
        }
        programs[key] = result
        return try result.get()
    }

    /// The family's source: `common.cl` followed by the `.cl` file without its `#include` line.
    static func source(family: String) -> String? {
        guard family != "common", let body = KernelSource.files[family + ".cl"],
            let common = KernelSource.files["common.cl"]
        else { return nil }
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false).filter {
            !$0.hasPrefix("#include \"common.cl\"")
        }
        return common + "\n" + lines.joined(separator: "\n")
    }

    private func build(family: String, options: String, source: String? = nil) throws -> cl_program {
        guard let source = source ?? Self.source(family: family) else {
            throw Unsupported(reason: "Kernels/\(family).cl is missing from this build")
        }
        let diskKey = [source, options, info.deviceName, info.driverVersion ?? ""].joined(separator: "\u{0}")
        let start = Date()
        var status: cl_int = 0
        var dev: cl_device_id? = device
        if let binary = ProgramCache.load(key: diskKey) {
            var length = binary.count
            var binaryStatus: cl_int = 0
            let program: cl_program? = binary.withUnsafeBufferPointer { b in
                var ptr: UnsafePointer<UInt8>? = b.baseAddress
                return clCreateProgramWithBinary(context, 1, &dev, &length, &ptr, &binaryStatus, &status)
            }
            if let program, status == CL_SUCCESS, binaryStatus == CL_SUCCESS,
                clBuildProgram(program, 1, &dev, options, nil, nil) == CL_SUCCESS
            {
                builds.append(
                    ProgramBuild(
                        program: family + " " + options, seconds: Date().timeIntervalSince(start), fromDiskCache: true,
                        error: nil))
                Registry.drainAtExit()
                return program
            }
            if let program { clReleaseProgram(program) }
            ProgramCache.remove(key: diskKey)  // corrupt or stale: rebuild, never trust
        }
        Notices.building(device: info.name, program: family + " " + options)
        let program: cl_program? = source.withCString { text in
            var ptr: UnsafePointer<CChar>? = text
            var length = strlen(text)
            return clCreateProgramWithSource(context, 1, &ptr, &length, &status)
        }
        try check(status, "clCreateProgramWithSource")
        guard let program else { throw TapeError.backend("clCreateProgramWithSource returned no program") }
        if clBuildProgram(program, 1, &dev, options, nil, nil) != CL_SUCCESS {
            let log = clString {
                clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), $0, $1, $2)
            }
            clReleaseProgram(program)
            throw Unsupported(reason: "Kernels/\(family).cl did not build (\(options)):\n\(log)")
        }
        builds.append(
            ProgramBuild(
                program: family + " " + options, seconds: Date().timeIntervalSince(start), fromDiskCache: false,
                error: nil))
        Notices.built(seconds: Date().timeIntervalSince(start))
        Registry.drainAtExit()
        var size = 0
        if clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil)
            == CL_SUCCESS, size > 0
        {
            var binary = [UInt8](repeating: 0, count: size)
            let ok = binary.withUnsafeMutableBufferPointer { b -> Bool in
                var ptr: UnsafeMutablePointer<UInt8>? = b.baseAddress
                return clGetProgramInfo(
                    program, cl_program_info(CL_PROGRAM_BINARIES), MemoryLayout<UnsafeMutablePointer<UInt8>?>.size,
                    &ptr, nil) == CL_SUCCESS
            }
            if ok {
                do { try ProgramCache.store(key: diskKey, binary: binary) } catch { Notices.cacheUnwritable(error) }
            }
        }
        return program
    }

    @_spi(Runtime) public func finish() {
        lock.lock()
        defer { lock.unlock() }
        openGate()
        clFinish(queue)
    }

    @_spi(Runtime) public func buildProblem() -> String? {
        lock.lock()
        defer { lock.unlock() }
        var status: cl_int = 0
        var dev: cl_device_id? = device
        let source = "__kernel void tapecl_probe(__global int* x) { x[0] = 1; }"
        let program: cl_program? = source.withCString { text in
            var ptr: UnsafePointer<CChar>? = text
            var length = strlen(text)
            return clCreateProgramWithSource(context, 1, &ptr, &length, &status)
        }
        guard let program, status == CL_SUCCESS else { return "clCreateProgramWithSource: \(clErrorName(status))" }
        defer { clReleaseProgram(program) }
        let built = clBuildProgram(program, 1, &dev, nil, nil, nil)
        guard built != CL_SUCCESS else { return nil }
        let log = clString {
            clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), $0, $1, $2)
        }
        let detail = log.split(separator: "\n").first.map(String.init) ?? ""
        return "clBuildProgram: \(clErrorName(built))" + (detail.isEmpty ? "" : " (\(detail))")
    }

    @_spi(Runtime) public func buildAll() -> [ProgramBuild] {
        lock.lock()
        defer { lock.unlock() }
        let before = builds.count
        var failures: [ProgramBuild] = []
        let families = KernelSource.files.keys.filter { $0.hasSuffix(".cl") && $0 != "common.cl" }.map {
            String($0.dropLast(3))
        }.sorted()
        for family in families {
            for dtype in DType.allCases where dtype != .float64 || info.supportsFloat64 {
                do { _ = try kernel("", family: family, dtype: dtype) } catch let u as Unsupported
                    where u.reason.hasPrefix("no kernel")
                {
                    // built; the empty kernel name only forces the build
                } catch {
                    failures.append(
                        ProgramBuild(program: "\(family) \(dtype)", seconds: 0, fromDiskCache: false, error: "\(error)")
                    )
                }
            }
        }
        return Array(builds[before...]) + failures
    }

    // MARK: Launching

    enum Argument {
        case buffer(UnsafeMutableRawPointer), int(Int32), ulong(UInt64), int8([Int])
    }

    private func set(_ kernel: cl_kernel, _ args: [Argument], from first: Int = 0) throws {
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
            }
            try check(status, "clSetKernelArg")
        }
    }

    private func enqueue(_ kernel: cl_kernel, global: [Int], local: [Int]? = nil) throws {
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
    private var gate: cl_event?
    private var gated = 0
    private static let batch = 1024

    /// The gate the next launch waits for: a new one for the first launch of a batch, else none.
    private func closedGate() throws -> cl_event? {
        guard gate == nil else { return nil }
        var status: cl_int = 0
        gate = clCreateUserEvent(context, &status)
        try check(status, "clCreateUserEvent")
        gated = 0
        return gate
    }

    /// Lets the queued launches run (before a read, a write, or a large launch).
    private func openGate() {
        guard let g = gate else { return }
        clSetUserEventStatus(g, CL_COMPLETE)
        clReleaseEvent(g)
        gate = nil
    }

    /// `n` items with no bounds check: a multiple of 64 from offset 0, then the tail with its offset
    /// (the kernel's last argument).
    private func enqueueExact(_ kernel: cl_kernel, _ args: [Argument], n: Int) throws {
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
    private static let fixups: Set<String> = {
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

    @_spi(Runtime) public func run(_ l: Launch) throws {
        lock.lock()
        defer { lock.unlock() }
        let out = Argument.buffer(l.output.handle)
        let n = Shape.count(l.shape)
        switch l.forward {
        case .unary(let name, _):
            let args: [Argument] = [.buffer(l.inputs[0].buffer.handle), out]
            let fixup = l.dtype == .float32 && Self.hasFixup(name)
            if !fixup || n > Self.smallLaunch {
                try enqueueExact(try kernel(.unary, name, dtype: l.dtype), args, n: n)
            }
            if fixup {
                let single = try kernel(.fixup, name, dtype: l.dtype)
                if n <= Self.smallLaunch {
                    try enqueueExact(single, args + [.int(1)], n: n)  // the only pass
                } else {
                    try enqueueExact(try kernel(.fixup8, name, dtype: l.dtype), args, n: n / 8)
                    try set(single, args + [.int(0), .ulong(UInt64(n / 8 * 8))])  // the last n % 8
                    try enqueue(single, global: [n % 8])
                }
            }
        case .binary(let name, _):
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
        case .gather:
            guard l.shape.count <= 8 else { throw Unsupported(reason: "rank \(l.shape.count) > 8") }
            try enqueueExact(
                try kernel("gather", family: "elementwise", dtype: l.dtype),
                [
                    .buffer(l.inputs[0].buffer.handle), out, .int(Int32(l.shape.count)), .int8(l.shape),
                    .int8(l.attributes.strides),
                ], n: n)
        case .cast:
            try enqueueExact(
                try kernel("convert", family: "elementwise", dtype: l.dtype, source: l.inputs[0].dtype),
                [.buffer(l.inputs[0].buffer.handle), out], n: n)
        case .reduce(let kind):
            try reduce(l, kind)
        case .matmul:
            try matmul(l)
        case .fused(let program):
            let k = try fusedKernel(program, dtype: l.dtype)
            try enqueueExact(k, l.inputs.map { .buffer($0.buffer.handle) } + [out], n: n)
        case .concat:
            var at = 0
            for input in l.inputs where input.byteCount > 0 {
                try copy(input.buffer, from: 0, to: l.output, at: at, bytes: input.byteCount)
                at += input.byteCount
            }
        case .copyRange:
            try copy(
                l.inputs[0].buffer, from: l.attributes.offset * l.dtype.byteSize, to: l.output, at: 0,
                bytes: l.output.bytes)
        case .alias, .transfer:
            fatalError("\(l.opName) is not a kernel")
        }
    }

    /// A device-side copy (`clEnqueueCopyBuffer`), queued behind the batch like a kernel.
    private func copy(_ source: Buffer, from: Int, to target: Buffer, at: Int, bytes: Int) throws {
        guard bytes > 0 else { return }
        let waits: [cl_event?] = try closedGate().map { [$0] } ?? []
        let status = waits.withUnsafeBufferPointer { w in
            clEnqueueCopyBuffer(
                queue, OpaquePointer(source.handle), OpaquePointer(target.handle), from, at, bytes,
                cl_uint(w.count), w.isEmpty ? nil : w.baseAddress, nil)
        }
        try check(status, "clEnqueueCopyBuffer")
        gated += 1
        if gated >= Self.batch { openGate() }
    }

    private func reduce(_ l: Launch, _ kind: ReduceKind) throws {
        let lanes = ReduceOrder.lanes
        let chunk = ReduceOrder.chunk
        guard maxWorkGroupSize >= lanes else {
            throw Unsupported(reason: "work groups of \(lanes) items are too large here")
        }
        let (outer, extent, inner) = ReduceOrder.plan(shape: l.inputs[0].shape, axes: l.attributes.axes)
        guard extent < Int(Int32.max) else { throw Unsupported(reason: "reduction of \(extent) elements") }
        let rows = try kernel("reduce_rows_\(kind.rawValue)", family: "reduce", dtype: l.dtype)
        let x = Argument.buffer(l.inputs[0].buffer.handle)
        let out = Argument.buffer(l.output.handle)
        if inner == 1 && extent > chunk {
            let chunks = (extent + chunk - 1) / chunk
            let partial = try allocate(bytes: outer * chunks * l.dtype.byteSize)
            defer { free(partial) }  // OpenCL keeps it alive until the queued kernels are done
            let chunked = try kernel("reduce_chunks_\(kind.rawValue)", family: "reduce", dtype: l.dtype)
            try set(chunked, [x, .buffer(partial), .int(Int32(extent)), .int(Int32(chunks)), .int(Int32(chunk))])
            try enqueue(chunked, global: [outer * chunks * lanes / 8], local: [lanes / 8])
            try set(rows, [.buffer(partial), out, .int(Int32(chunks)), .int(1)])
            try enqueue(rows, global: [outer * lanes], local: [lanes])
        } else if inner % 8 == 0 {  // eight columns to a work-group
            let columns = try kernel("reduce_cols8_\(kind.rawValue)", family: "reduce", dtype: l.dtype)
            try set(columns, [x, out, .int(Int32(extent)), .int(Int32(inner))])
            try enqueue(columns, global: [outer * inner / 8 * lanes], local: [lanes])
        } else {
            try set(rows, [x, out, .int(Int32(extent)), .int(Int32(inner))])
            try enqueue(rows, global: [outer * inner * lanes], local: [lanes])
        }
    }

    /// op(A)·op(B) as in `matmul.cl`: pack both operands into zero-padded panels (this also
    /// applies the transposes), then one work-item per 6 × 16 block of C.
    private func matmul(_ l: Launch) throws {
        let (a, b) = (l.inputs[0], l.inputs[1])
        let g = MatmulShape(a.shape, b.shape, l.attributes.transposeA, l.attributes.transposeB)!
        let (rows, cols) = (6, 16)  // PANEL_ROWS, PANEL_COLS
        let (panelsA, panelsB) = ((g.m + rows - 1) / rows, (g.n + cols - 1) / cols)
        let (batchA, batchB) = (a.rank == 3 ? g.batch : 1, b.rank == 3 ? g.batch : 1)
        let packedA = try allocate(bytes: batchA * panelsA * g.k * rows * l.dtype.byteSize)
        defer { free(packedA) }  // kept alive by OpenCL until the kernels are done
        let packedB = try allocate(bytes: batchB * panelsB * g.k * cols * l.dtype.byteSize)
        defer { free(packedB) }
        let pack = try kernel("pack", family: "matmul", dtype: l.dtype)
        let (ta, tb) = (l.attributes.transposeA, l.attributes.transposeB)
        try set(
            pack,
            [
                .buffer(a.buffer.handle), .ulong(UInt64(g.m * g.k)), .int(Int32(ta ? g.m : g.k)), .int(ta ? 1 : 0),
                .int(Int32(g.m)), .int(Int32(g.k)), .int(Int32(rows)), .buffer(packedA),
            ])
        try enqueue(pack, global: [(g.k + 7) / 8, panelsA, batchA])
        try set(
            pack,
            [
                .buffer(b.buffer.handle), .ulong(UInt64(g.k * g.n)), .int(Int32(tb ? g.k : g.n)), .int(tb ? 0 : 1),
                .int(Int32(g.n)), .int(Int32(g.k)), .int(Int32(cols)), .buffer(packedB),
            ])
        try enqueue(pack, global: [(g.k + 7) / 8, panelsB, batchB])
        let gemm = try kernel("gemm_packed", family: "matmul", dtype: l.dtype)
        try set(
            gemm,
            [
                .int(Int32(g.m)), .int(Int32(g.n)), .int(Int32(g.k)),
                .buffer(packedA), .ulong(UInt64(batchA > 1 ? panelsA * g.k * rows : 0)),
                .buffer(packedB), .ulong(UInt64(batchB > 1 ? panelsB * g.k * cols : 0)), .buffer(l.output.handle),
            ])
        try enqueue(gemm, global: [panelsB, panelsA, g.batch])
    }
}
