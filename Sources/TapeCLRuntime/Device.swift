import Foundation
import Synchronization

/// Where a tensor's memory lives and its ops run: the host, or an OpenCL device.
///
/// - `Device.host` always exists; `Device.all` lists the host and every OpenCL device found.
/// - `Device.default` is chosen once per process: `TAPECL_DEVICE` if set, else the first OpenCL
///   GPU, else the first OpenCL device, else the host.
/// - Names: `host`, `opencl` (first OpenCL device), `opencl:N` (as `tapecl devices` numbers them),
///   `opencl:gpu`, `opencl:cpu`.
///
/// ```swift
/// let gpu = try Device.named("opencl:0")
/// let y = withDevice(gpu) { Tensor.ones(shape: [3]) * 2 }   // created and computed on gpu
/// print(gpu.memory.liveBytes)
/// ```
public struct Device: Sendable, Hashable, CustomStringConvertible {
    @_spi(Runtime) public let core: DeviceCore

    @inlinable @_spi(Runtime) public init(core: DeviceCore) { self.core = core }

    /// `host` or `opencl:N`.
    public var name: String { core.name }
    public var description: String { name }
    /// What `tapecl devices` prints about this device.
    public var info: DeviceInfo { core.backend.info }
    /// Live and peak bytes of this device's tensors.
    public var memory: MemoryStats { core.stats }
    /// Starts a new peak: `memory.peakBytes` becomes the current live bytes.
    public func resetPeakMemory() { core.resetPeak() }
    /// Gives the caching allocator's spare blocks back to the device.
    public func emptyCache() { core.emptyCache() }

    public static func == (a: Device, b: Device) -> Bool { a.core === b.core }
    public func hash(into h: inout Hasher) { h.combine(ObjectIdentifier(core)) }

    /// The host: plain memory, OpenBLAS for matmul, both cores for large tensors.
    public static var host: Device { Registry.shared.host }
    /// The host and every device of every backend (OpenCL's), host first.
    public static var all: [Device] { [Registry.shared.host] + Registry.shared.accelerators }
    /// The process default (see the type's documentation); `withDevice` overrides it in a scope.
    /// A `TAPECL_DEVICE` that names no device stops the program with ``defaultDevice()``'s error
    /// (inside `withErrors`, that error is thrown and the host stands in).
    public static var `default`: Device {
        do { return try defaultDevice() } catch { return stop(error, else: host) }
    }
    /// The process default, or the error for a `TAPECL_DEVICE` that names no device here (the
    /// value and the devices there are).
    public static func defaultDevice() throws -> Device { try Registry.shared.defaultDevice.get() }
    /// The device new tensors are created on here: the innermost `withDevice`, else `default`.
    public static var current: Device { Scope.device ?? Device.default }

    /// Looks a device up by name (`host`, `opencl`, `opencl:N`, `opencl:gpu`, `opencl:cpu`).
    /// - Throws: ``TapeError/argument(_:)`` naming the devices there are.
    public static func named(_ name: String) throws -> Device {
        let r = Registry.shared
        let found =
            name.lowercased() == "default"
            ? try r.defaultDevice.get() : Registry.lookup(name, host: r.host, families: r.families)
        guard let found else {
            let names = Device.all.map(\.name).joined(separator: ", ")
            throw TapeError.argument("unknown device '\(name)': this machine has \(names)")
        }
        return found
    }

    /// Waits until everything queued on this device has run. Reading a result (`scalars`) waits
    /// for what it needs; call this before a program returns with results it never read, so that
    /// no device work is left running while the process exits.
    ///
    /// ```swift
    /// let y = withDevice(gpu) { train(model) }   // queued, not read
    /// gpu.synchronize()
    /// ```
    public func synchronize() { core.backend.finish() }

    /// ``synchronize()`` on every device: what `tapecl` does before it returns. Nothing, and no
    /// device discovery, in a process that never asked for a device.
    public static func synchronizeAll() {
        guard Registry.made.load(ordering: .acquiring) else { return }
        for device in Registry.shared.accelerators { device.synchronize() }
    }

    /// How many launches ran on the host instead of this device, and why (first reason per op).
    @_spi(Runtime) public var fallbacks: (count: Int, reasons: [String: String]) { core.fallbacks }

    /// A device with the same backend but its own allocator and memory statistics, so a test can
    /// measure what it allocates while other tests run.
    @_spi(Runtime) public func isolated() -> Device {
        Device(core: DeviceCore(name: name, backend: core.backend))
    }
}

/// Runs `body` with `device` as the device new tensors are created on (a task-local, so
/// concurrent tasks keep their own).
public func withDevice<R>(_ device: Device, _ body: () throws -> R) rethrows -> R {
    try Scope.$device.withValue(device, operation: body)
}

/// Scoped state: the device of `withDevice`, and the active tapes and accumulators.
enum Scope {
    @TaskLocal static var device: Device?
}

/// `Device.host`'s core, set once when the registry is made, before any tensor exists; it lives as long
/// as the process. A global with a constant initial value is initialised statically, so reading it is one
/// load (no lazy-initialisation check), and an unretained reference compares without reference counting:
/// the ops ask for it per op (a float scalar on this core is kept in the `Tensor` value).
@_spi(Runtime) public nonisolated(unsafe) private(set) var processHostCore: Unmanaged<DeviceCore>? = nil

/// Discovers devices once per process (PoCL fails when several threads initialise OpenCL at once):
/// the host, then the devices of each registered ``DeviceFamily``.
@_spi(Runtime) public final class Registry: Sendable {
    static let shared = Registry(families: DeviceFamily.registered)
    /// Whether ``shared`` exists (read without creating it).
    static let made = Atomic<Bool>(false)
    let host: Device
    let families: [(family: DeviceFamily, devices: [Device])]
    /// Every device but the host, family by family.
    let accelerators: [Device]
    let defaultDevice: Result<Device, TapeError>

    private init(families registered: [DeviceFamily]) {
        let host = Device(core: DeviceCore(name: "host", backend: HostBackend()))
        processHostCore = .passUnretained(host.core)
        let families = registered.map { ($0, $0.devices()) }
        let accelerators = families.flatMap(\.1)
        self.host = host
        self.families = families
        self.accelerators = accelerators
        Registry.made.store(true, ordering: .releasing)
        if !accelerators.isEmpty { Registry.drainAtExit() }
        if let name = ProcessInfo.processInfo.environment["TAPECL_DEVICE"], !name.isEmpty {
            defaultDevice = Result {
                guard let d = Self.lookup(name, host: host, families: families) else {
                    let names = ([host] + accelerators).map(\.name).joined(separator: ", ")
                    throw TapeError.argument("TAPECL_DEVICE=\(name) names no device; this machine has \(names)")
                }
                return d
            }.mapError { $0 as! TapeError }
        } else {
            defaultDevice = .success(accelerators.first { $0.info.type == "GPU" } ?? accelerators.first ?? host)
        }
    }

    /// The devices of the family named `name` (none when it is not registered or found nothing).
    func devices(of name: String) -> [Device] { families.first { $0.family.name == name }?.devices ?? [] }

    /// Makes exit wait for every OpenCL queue that still has work, before anything registered so
    /// far is torn down: a safety net for programs that return without reading their results
    /// (``Device/synchronizeAll()`` is the way to say it, as `tapecl` does before it returns).
    ///
    /// PoCL runs queued kernels on worker threads and compiles each on first run; a program that
    /// exits with work queued had those threads compile while exit tore down LLVM (a crash in 5 of
    /// 5 runs with a cold PoCL cache). Exit runs its handlers in reverse order of registration and
    /// PoCL registers its own when it first compiles, so this is registered again after every
    /// program build. An idle queue makes no OpenCL call here: Oclgrind frees its per-thread
    /// state before `atexit` handlers run, and a `clFinish` from one corrupted its heap.
    static func drainAtExit() {
        atexit { Device.synchronizeAll() }
    }

    /// Resolves a device name (see ``Device/named(_:)``): `host` (or `cpu`), or `<family>`,
    /// `<family>:N`, `<family>:gpu`, `<family>:cpu` for a registered family's devices.
    @_spi(Runtime) public static func lookup(
        _ name: String, host: Device, families: [(family: DeviceFamily, devices: [Device])]
    ) -> Device? {
        let key = name.lowercased().trimmingCharacters(in: .whitespaces)
        if key == "host" || key == "cpu" { return host }
        let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
        guard let devices = families.first(where: { $0.family.name == parts.first })?.devices else { return nil }
        switch parts.count == 2 ? parts[1] : nil {
        case nil: return devices.first
        case "gpu": return devices.first { $0.info.type == "GPU" }
        case "cpu": return devices.first { $0.info.type == "CPU" }
        case let selector?:
            guard let i = Int(selector), devices.indices.contains(i) else { return nil }
            return devices[i]
        }
    }
}

/// A kind of device that a backend drives: its name, which begins its devices' names (`opencl`:
/// `opencl:0`, `opencl:gpu`), and how to find its devices. ``registered`` lists this build's
/// families, in the order their devices follow the host in ``Device/all``.
@_spi(Runtime) public struct DeviceFamily: Sendable {
    @_spi(Runtime) public let name: String
    /// How many bytes of freed buffers each device's caching allocator keeps.
    @_spi(Runtime) public let cacheLimit: Int
    /// This machine's devices of the family, one backend each, in numbering order (none when its
    /// driver is missing). Called once per process.
    @_spi(Runtime) public let discover: @Sendable () -> [any Backend]

    @_spi(Runtime) public init(
        name: String, cacheLimit: Int = 1 << 30, discover: @escaping @Sendable () -> [any Backend]
    ) {
        self.name = name
        self.cacheLimit = cacheLimit
        self.discover = discover
    }

    /// A device for each backend `discover` finds, named `name:0`, `name:1`, …
    @_spi(Runtime) public func devices() -> [Device] {
        discover().enumerated().map { i, backend in
            Device(core: DeviceCore(name: "\(name):\(i)", backend: backend, cacheLimit: cacheLimit))
        }
    }
}
