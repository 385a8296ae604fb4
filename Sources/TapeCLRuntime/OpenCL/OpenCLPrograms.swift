import COpenCL
import Foundation
import TapeCLKernels

// Programs and kernels: options per dtype, building from source or from the disk cache, finishing.
extension OpenCLBackend {
    // MARK: Programs and kernels

    static func cType(_ d: DType) -> String {
        switch d {
        case .float32: "float"
        case .float64: "double"
        case .int32: "int"
        case .int8: "char"
        case .bool: "uchar"
        }
    }

    /// `family` (a file of `Kernels/`) built for element type `dtype` (and source type for `convert`);
    /// or, for a fused chain, the program `generated` makes (built with `-DFUNCTIONS_ONLY`).
    func kernel(
        _ name: String, family: String, dtype: DType, source: DType? = nil, defines: String = "",
        generated: (() -> String)? = nil
    ) throws -> cl_kernel {
        let key = KernelKey(name: name + defines, family: family, dtype: dtype, source: source)
        if let k = kernels[key] { return k }
        if (dtype == .float64 || source == .float64) && !info.supportsFloat64 {
            throw Unsupported(reason: "the device has no fp64")
        }
        var options = "-DT=\(Self.cType(dtype)) -DIS_FLOAT=\(dtype.isFloatingPoint ? 1 : 0)"
        // -w: PoCL's clang notes that double8 values change the ABI without AVX-512, and printed
        // "38 warnings generated." on a user's first run; the OpenCL option keeps builds quiet.
        if dtype == .float64 || source == .float64 { options += " -DUSE_FP64 -w" }
        if dtype == .bool { options += " -DIS_BOOL=1" }
        if let source { options += " -DS=\(Self.cType(source)) -DS_IS_FLOAT=\(source.isFloatingPoint ? 1 : 0)" }
        if generated != nil { options += " -DFUNCTIONS_ONLY" }
        if !defines.isEmpty { options += " " + defines }
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

    func kernel(_ kind: ElementwiseKind, _ op: String, dtype: DType) throws -> cl_kernel {
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
    func fusedKernel(_ p: FusedProgram, dtype: DType) throws -> cl_kernel {
        let key = FusedKey(program: p, dtype: dtype)
        if let k = fused[key] { return k }
        let k = try kernel("fused", family: "fused " + p.key, dtype: dtype) { Self.fusedSource(p) }
        fused[key] = k
        return k
    }

    static func fusedSource(_ p: FusedProgram) -> String {
        var parameters: [String] = []
        var body = ["    const size_t i = get_global_id(0) + off;"]
        for (k, step) in p.steps.enumerated() {
            let value: String
            switch step {
            case .input(let j, let single):
                parameters.append("__global const T* restrict in\(j)")
                value = single ? "in\(j)[0]" : "in\(j)[i]"
            case .unary(let name, _, let a): value = "\(hasFixup(name) ? "exact" : "op")_\(name)(v\(a))"
            case .binary(let name, _, let a, let b): value = "bop_\(name)(v\(a), v\(b))"
            }
            body.append("    const T v\(k) = \(value);")
        }
        body.append("    out[i] = v\(p.steps.count - 1);")
        parameters.append("__global T* restrict out")
        for (j, k) in p.outputs.enumerated() {
            parameters.append("__global T* restrict out\(j)")
            body.append("    out\(j)[i] = v\(k);")
        }
        return (source(family: "elementwise") ?? "") + "\n__kernel void fused("
            + (parameters + ["const ulong off"]).joined(separator: ", ") + ") {\n"
            + body.joined(separator: "\n") + "\n}\n"
    }

    /// See ``Backend/prepareFused(_:dtype:wait:)``. A program is built (or loaded from the disk
    /// cache) the ``fusedBuildAt``-th time it is asked for: a chain that repeats, as a training
    /// loop's do, runs fused from then on; one that never repeats is never compiled. A build takes
    /// 20-40 ms on PoCL here (W1's eleven programs: 0.3 s in all, once), on the caller's thread:
    /// PoCL's compiler on another thread raced the process's exit (LLVM torn down under it).
    @_spi(Runtime) public func prepareFused(_ p: FusedProgram, dtype: DType, wait: Bool) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let key = FusedKey(program: p, dtype: dtype)
        if fused[key] != nil { return true }
        fusedAsked[key, default: 0] += 1
        guard wait || fusedAsked[key]! >= Self.fusedBuildAt else { return false }
        fusedAsked[key] = nil
        _ = try? fusedKernel(p, dtype: dtype)  // a failure is thrown again by the launch, which then runs on the host
        return true
    }
    static let fusedBuildAt = 3

    func program(family: String, options: String, key: String, source: String? = nil) throws -> cl_program {
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

    /// The program from the disk cache, else built from source. The first build of a program is
    /// serialised across processes (``ProgramCache/withBuildLock(key:in:timeout:_:)``): six processes
    /// starting cold at once build it once, and the others load that binary. A failed build is
    /// tried once more before the failure is kept (and the program's ops run on the host).
    func build(family: String, options: String, source: String? = nil) throws -> cl_program {
        guard let source = source ?? Self.source(family: family) else {
            throw Unsupported(reason: "Kernels/\(family).cl is missing from this build")
        }
        let diskKey = [source, options, info.deviceName, info.driverVersion ?? ""].joined(separator: "\u{0}")
        if let program = loadCached(family, options, key: diskKey) { return program }
        return try ProgramCache.withBuildLock(key: diskKey) {
            // built by another process meanwhile
            if let program = loadCached(family, options, key: diskKey) { return program }
            do { return try buildFromSource(family, options, source, key: diskKey) } catch {
                return try buildFromSource(family, options, source, key: diskKey)
            }
        }
    }

    /// The program from a verified disk-cache entry, built for this device; nil when there is none
    /// or it does not load (the entry is then removed).
    private func loadCached(_ family: String, _ options: String, key: String) -> cl_program? {
        guard let binary = ProgramCache.load(key: key) else { return nil }
        let start = Date()
        var status: cl_int = 0
        var dev: cl_device_id? = device
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
        ProgramCache.remove(key: key)  // corrupt or stale: rebuild, never trust
        return nil
    }

    /// Compiles the program and stores its binary in the disk cache.
    /// - Throws: ``Unsupported`` whose reason is the build log's first line (the whole log follows it).
    private func buildFromSource(
        _ family: String, _ options: String, _ source: String, key: String
    ) throws
        -> cl_program
    {
        let start = Date()
        var status: cl_int = 0
        var dev: cl_device_id? = device
        Notices.building(
            "OpenCL kernels", device: info.name, program: family + " " + options, cache: ProgramCache.directory)
        let program: cl_program? = source.withCString { text in
            var ptr: UnsafePointer<CChar>? = text
            var length = strlen(text)
            return clCreateProgramWithSource(context, 1, &ptr, &length, &status)
        }
        try check(status, "clCreateProgramWithSource")
        guard let program else { throw TapeError.backend("clCreateProgramWithSource returned no program") }
        let built = clBuildProgram(program, 1, &dev, options, nil, nil)
        if built != CL_SUCCESS {
            let log = clString {
                clGetProgramBuildInfo(program, device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), $0, $1, $2)
            }
            clReleaseProgram(program)
            let first = log.split(separator: "\n").first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            throw Unsupported(
                reason:
                    "Kernels/\(family).cl did not build (\(clErrorName(built))): \(first.map(String.init) ?? "no log")",
                detail: "options \(options)\n\(log)", build: true)
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
                do { try ProgramCache.store(key: key, binary: binary) } catch { Notices.cacheUnwritable(error) }
            }
        }
        return program
    }

    /// TapeCL's own kernels run matrix products here.
    @_spi(Runtime) public var matmulLibrary: String? { nil }

    @_spi(Runtime) public var kernelVariants: String? {
        lock.lock()
        defer { lock.unlock() }
        func variant(_ size: Int) -> (KernelVariants.Matmul, String) {
            if KernelVariants.forced == nil && Self.tuningEnabled,
                let tuned = tunedMatmul[size].map({ ($0, tuningReport[size] ?? "") }) ?? loadTuning(elementSize: size)
            {
                return (tuned.0, "measured: " + tuned.1)
            }
            let how = KernelVariants.forced.map { "forced by TAPECL_KERNEL_VARIANTS=\($0)" }
            return (
                KernelVariants.matmul(properties, elementSize: size, forced: KernelVariants.forced),
                how ?? (Self.tuningEnabled ? "from the device's properties until measured" : "TAPECL_TUNE=0")
            )
        }
        let (f32, f64) = (variant(4), variant(8))
        return "matmul by \(f32.0) (\(f32.1))" + (info.supportsFloat64 ? ", float64 by \(f64.0) (\(f64.1))" : "")
    }

    @_spi(Runtime) public func finish() {
        lock.lock()
        defer { lock.unlock() }
        guard queued else { return }  // an idle queue: no OpenCL call (see `queued`)
        openGate()
        clFinish(queue)
        queued = false
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
                    let text = (error as? Unsupported).map { "\($0.reason)\n\($0.detail)" } ?? "\(error)"
                    failures.append(
                        ProgramBuild(program: "\(family) \(dtype)", seconds: 0, fromDiskCache: false, error: text))
                }
            }
        }
        return Array(builds[before...]) + failures
    }

}
