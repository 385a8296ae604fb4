import Foundation
import Synchronization

/// What TapeCL tells a user on standard error once per process: that kernels are being built
/// (a cold start pauses for seconds), that a cache folder cannot be written. `TAPECL_QUIET=1`
/// silences the build notice; warnings always print.
enum Notices {
    private struct State {
        var announced: Set<String> = []
        var warned: Set<String> = []
        var built = 0
    }
    private static let state = Mutex(State())
    private static let quiet = ProcessInfo.processInfo.environment["TAPECL_QUIET"] == "1"
    private static let terminal = isatty(STDERR_FILENO) != 0

    /// Before a program is compiled from source: one line per device and process, then on a
    /// terminal a status line that names the program being built.
    static func building(_ kernels: String, device: String, program: String, cache: @autoclosure () -> URL?) {
        guard !quiet else { return }
        let first = state.withLock { $0.announced.insert(device).inserted }
        if first {
            let cache = cache()?.path ?? "nowhere (no cache folder)"  // read once per device
            printError("TapeCL: building \(kernels) for \(device), first use only; cached in \(cache)")
        }
        if terminal {
            let n = state.withLock { $0.built + 1 }
            let name = program.split(separator: " ").prefix(2).joined(separator: " ")
            FileHandle.standardError.write(Data("\r\u{1B}[2K  [\(n)] building \(name) …".utf8))
        }
    }

    /// After a program built: the terminal's status line is cleared.
    static func built(seconds: Double) {
        guard !quiet else { return }
        state.withLock { $0.built += 1 }
        if terminal { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
    }

    /// The disk cache cannot be written: said once, with the reason; programs are then rebuilt
    /// in every process.
    static func cacheUnwritable(_ error: any Error) {
        warnOnce("cache", "the kernel cache cannot be written (\(error)); programs are built anew in every process")
    }

    /// Prints `message` as a warning the first time `key` is seen in this process.
    static func warnOnce(_ key: String, _ message: @autoclosure () -> String) {
        let first = state.withLock { $0.warned.insert(key).inserted }
        if first { printError("TapeCL warning: \(message())") }
    }
}

/// One line on standard error.
@_spi(Runtime) public func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
