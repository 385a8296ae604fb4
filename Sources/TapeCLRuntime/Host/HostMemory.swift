import Foundation

/// Host memory as this process can really have it, and a check before a large host array.
///
/// Swift stops the program when an array cannot be allocated, and PoCL asserts when a buffer it
/// allocates lazily cannot be had; both are avoided by asking first. What can be had is the least
/// of three limits: the machine's available memory (`MemAvailable`), the address-space limit
/// (`ulimit -v`) less what the process has mapped, and its cgroup's `memory.max` less its usage.
@_spi(Runtime) public enum HostMemory {
    /// Requests from this size on are also tried with `malloc` (and freed) before they are made.
    static let probeFrom = 16 << 20

    /// About how many bytes this process can still allocate.
    @_spi(Runtime) public static func available() -> Int {
        var least = Int.max
        if let kib = meminfo("MemAvailable:") { least = min(least, kib * 1024) }
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            let mapped = (status("VmSize:") ?? 0) * 1024
            least = min(least, max(0, Int(clamping: limit.rlim_cur) - mapped))
        }
        if let max = number(at: "/sys/fs/cgroup/memory.max"), let used = number(at: "/sys/fs/cgroup/memory.current") {
            least = min(least, Swift.max(0, max - used))
        }
        return least == .max ? Int(ProcessInfo.processInfo.physicalMemory) : least
    }

    /// Throws unless `bytes` of host memory can be had now: more than ``available()`` is refused,
    /// and a large request is tried once with `malloc`.
    /// - Throws: ``TapeError/backend(_:)``: `WHAT: N bytes of host memory cannot be had (about M available)`.
    @_spi(Runtime) public static func reserve(_ bytes: Int, for what: @autoclosure () -> String) throws {
        guard bytes >= probeFrom else { return }
        let free = available()
        if bytes <= free, let probe = malloc(bytes) {
            Foundation.free(probe)
            return
        }
        throw TapeError.backend("\(what()): \(bytes) bytes of host memory cannot be had (about \(free) available)")
    }

    /// A `kB` figure from /proc/meminfo.
    static func meminfo(_ key: String) -> Int? { field(key, in: "/proc/meminfo") }
    /// A `kB` figure from /proc/self/status.
    static func status(_ key: String) -> Int? { field(key, in: "/proc/self/status") }

    static func field(_ key: String, in path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }

    /// A cgroup file's number (nil for `max` or when absent).
    static func number(at path: String) -> Int? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
            Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}
