import Synchronization
@_spi(Runtime) import TapeCLRuntime

/// A backend written outside the runtime, the way a new one is (the "Adding a backend" article):
/// a type conforming to `Backend` and a `DeviceFamily` that finds its devices. It keeps tensors in
/// buffers of its own and runs each launch with the host's loops; unlike the host it computes no
/// scalar inline and fuses small results, as OpenCL does, so the op table runs through the
/// scheduling paths of a device. Its family is not registered (that would be one line in the
/// runtime's Backends.swift): the tests make its one device from the family and run the op table
/// on it.
final class LoopbackBackend: Backend {
    private let loops = makeHostBackend()
    /// Launches run so far, to show that the work ran here.
    let launches = Atomic<Int>(0)

    let info = DeviceInfo(
        name: "loopback:0", kind: "loopback", deviceName: "host loops in memory of its own", vendor: "TapeCL tests",
        type: "CPU", computeUnits: 2, globalMemoryBytes: 8 << 30, maxAllocationBytes: 4 << 30, language: nil,
        driverVersion: nil, platform: "TapeCL tests", supportsFloat64: true)

    // Memory: buffers of its own (its device's allocator counts them), in host memory, so the host
    // backend's calls serve.
    func allocate(bytes: Int) throws -> UnsafeMutableRawPointer { try loops.allocate(bytes: bytes) }
    func free(_ handle: UnsafeMutableRawPointer) { loops.free(handle) }
    func write(_ bytes: UnsafeRawBufferPointer, to buffer: Buffer) throws { try loops.write(bytes, to: buffer) }
    func fill(_ buffer: Buffer, with element: [UInt8], count: Int) throws {
        try loops.fill(buffer, with: element, count: count)
    }
    func read(_ buffer: Buffer, into: UnsafeMutableRawBufferPointer) throws { try loops.read(buffer, into: into) }
    func run(_ launch: Launch) throws {
        launches.add(1, ordering: .relaxed)
        try loops.run(launch)
    }
    func buildAll() -> [ProgramBuild] { [] }
    var kernelVariants: String? { nil }
    var matmulLibrary: String? { loops.matmulLibrary }
    func finish() {}
    func buildProblem() -> String? { nil }
    var fusesSmallResults: Bool { true }
    var computesScalarsInline: Bool { false }
    func prepareFused(_ program: FusedProgram, dtype: DType, wait: Bool) -> Bool { true }
}

/// The loopback family: one device, `loopback:0`.
let loopbackFamily = DeviceFamily(name: "loopback", cacheLimit: 64 << 20) { [LoopbackBackend()] }
/// The loopback device, made once per test process.
let loopback = loopbackFamily.devices()[0]
