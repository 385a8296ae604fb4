import COpenCL
import Foundation

/// Built OpenCL programs: in memory per device, and on disk as binaries.
///
/// The disk key is what changes the binary: the source, the build options, the device name and
/// the driver version (CLBlast's `BinaryCache`, tinygrad's md5 of name and version). Entries live
/// in `TAPECL_CACHE_DIR`, else `$XDG_CACHE_HOME/tapecl`, else `~/.cache/tapecl` (an empty variable
/// counts as unset; with none of them, nothing is cached on disk).
///
/// An entry is trusted only when it proves itself: it holds its full key and the FNV-1a checksum
/// of its binary, and both must match. A file named by another key's hash, copied over, truncated
/// or flipped is not handed to the driver (whose binary loader may crash on garbage); the program
/// is built from source and the entry replaced. Entries are written to a temporary file in the
/// same folder and renamed over the old one, so concurrent writers never leave a torn entry.
///
/// Layout: `magic`, key length (8 bytes, little-endian), key (UTF-8), binary length (8), checksum
/// of the binary (8), binary.
@_spi(Runtime) public enum ProgramCache {
    @_spi(Runtime) public static var directory: URL? {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["TAPECL_CACHE_DIR"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if let xdg = env["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return URL(fileURLWithPath: xdg).appendingPathComponent("tapecl")
        }
        if let home = env["HOME"], home.hasPrefix("/") {
            return URL(fileURLWithPath: home).appendingPathComponent(".cache/tapecl")
        }
        return nil
    }

    /// FNV-1a, 64 bits: stable across runs and platforms (Swift's `Hasher` is seeded per process).
    @_spi(Runtime) public static func fnv1a(_ text: String) -> UInt64 { fnv1a(bytes: Array(text.utf8)) }

    @_spi(Runtime) public static func fnv1a(bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return h
    }

    static let magic = Array("TAPECL-CL-BINARY-2\n".utf8)

    @_spi(Runtime) public static func file(for key: String, in directory: URL?) -> URL? {
        let name = String(format: "%016llx-%016llx.bin", fnv1a(key), fnv1a(String(key.reversed())))
        return directory?.appendingPathComponent(name)
    }

    /// The entry's bytes for `key` and `binary`.
    @_spi(Runtime) public static func encode(key: String, binary: [UInt8]) -> [UInt8] {
        let keyBytes = Array(key.utf8)
        return magic + littleEndian(UInt64(keyBytes.count)) + keyBytes + littleEndian(UInt64(binary.count))
            + littleEndian(fnv1a(bytes: binary)) + binary
    }

    /// The binary in `entry` if it is a whole entry for `key` whose checksum matches; else nil.
    @_spi(Runtime) public static func decode(_ entry: [UInt8], key: String) -> [UInt8]? {
        var reader = Reader(bytes: entry)
        guard reader.take(magic.count) == magic[...] else { return nil }
        let keyBytes = Array(key.utf8)
        guard let keyLength = reader.uint64(), keyLength == UInt64(keyBytes.count),
            reader.take(keyBytes.count) == keyBytes[...],
            let length = reader.uint64(), let checksum = reader.uint64(),
            length == UInt64(reader.remaining), let binary = reader.take(Int(length))
        else { return nil }
        let payload = Array(binary)
        return fnv1a(bytes: payload) == checksum ? payload : nil
    }

    /// The cached binary for `key`, if a verified entry exists.
    @_spi(Runtime) public static func load(key: String, in directory: URL? = directory) -> [UInt8]? {
        guard let url = file(for: key, in: directory), let data = try? Data(contentsOf: url) else { return nil }
        return decode([UInt8](data), key: key)
    }

    /// Writes the entry atomically (a temporary file renamed over the old entry), replacing
    /// whatever was there, a directory included.
    /// - Throws: the file system's error (an unwritable folder), for the caller to report once.
    @_spi(Runtime) public static func store(key: String, binary: [UInt8], in directory: URL? = directory) throws {
        guard let url = file(for: key, in: directory) else { return }
        let folder = url.deletingLastPathComponent()
        let unique = "\(ProcessInfo.processInfo.processIdentifier)-\(UInt64.random(in: 0...UInt64.max))"
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(unique).tmp")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(encode(key: key, binary: binary)).write(to: temporary)
        } catch {
            try? FileManager.default.removeItem(at: temporary)  // a full disk leaves no partial file
            throw TapeError.backend("cannot write in \(folder.path): \((error as NSError).localizedDescription)")
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            try? FileManager.default.removeItem(at: url)
        }
        guard rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw TapeError.backend("cannot write \(url.path): \(reason)")
        }
    }

    /// Runs `body` holding an exclusive lock on `key`'s entry across processes (`flock` on a
    /// `.lock` file beside the entry, released when the process ends however it ends), so that of
    /// processes starting cold at once one builds a program while the others wait, then load its
    /// binary. Runs `body` unlocked without a cache folder, when the lock file cannot be made, or
    /// after `timeout` seconds of waiting.
    static func withBuildLock<T>(
        key: String, in directory: URL? = directory, timeout: Double = 300, _ body: () throws -> T
    ) rethrows -> T {
        guard let url = file(for: key, in: directory) else { return try body() }
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let descriptor = open(url.path + ".lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return try body() }
        defer { close(descriptor) }  // releases the lock
        let deadline = Date().addingTimeInterval(timeout)
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK && Date() < deadline {
            usleep(20_000)
        }
        return try body()
    }

    static func remove(key: String, in directory: URL? = directory) {
        if let url = file(for: key, in: directory) { try? FileManager.default.removeItem(at: url) }
    }

    private static func littleEndian(_ v: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
    }

    /// Reads an entry front to back; every read is bounds-checked.
    private struct Reader {
        let bytes: [UInt8]
        var offset = 0
        var remaining: Int { bytes.count - offset }

        mutating func take(_ n: Int) -> ArraySlice<UInt8>? {
            guard n >= 0, n <= remaining else { return nil }
            defer { offset += n }
            return bytes[offset..<offset + n]
        }

        mutating func uint64() -> UInt64? {
            take(8).map { $0.reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        }
    }
}
