import COpenCL
import Foundation

/// Built OpenCL programs: in memory per device, and on disk as binaries.
///
/// The disk key hashes what changes the binary: the source, the build options, the device name
/// and the driver version (CLBlast's `BinaryCache`, tinygrad's md5 of name and version). Entries
/// live in `TAPECL_CACHE_DIR`, else `$XDG_CACHE_HOME/tapecl`, else `~/.cache/tapecl`. A corrupt or
/// stale entry fails its own check or the driver's, and is rebuilt from source, never trusted.
package enum ProgramCache {
    package static var directory: URL? {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["TAPECL_CACHE_DIR"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return URL(fileURLWithPath: xdg).appendingPathComponent("tapecl") }
        if let home = env["HOME"], !home.isEmpty { return URL(fileURLWithPath: home).appendingPathComponent(".cache/tapecl") }
        return nil
    }

    /// FNV-1a, 64 bits: stable across runs and platforms (Swift's `Hasher` is seeded per process).
    package static func fnv1a(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return h
    }

    static let magic = Array("TAPECL-CL-BINARY-1\n".utf8)

    static func file(for key: String, in directory: URL?) -> URL? {
        directory?.appendingPathComponent(String(format: "%016llx-%016llx.bin", fnv1a(key), fnv1a(String(key.reversed()))))
    }

    /// The cached binary for `key`, if a well-formed entry exists.
    package static func load(key: String, in directory: URL? = directory) -> [UInt8]? {
        guard let url = file(for: key, in: directory), let data = try? Data(contentsOf: url) else { return nil }
        let bytes = [UInt8](data)
        guard bytes.count > magic.count + 8, Array(bytes[..<magic.count]) == magic else { return nil }
        let length = bytes[magic.count..<magic.count + 8].reversed().reduce(0) { $0 << 8 | Int($1) }
        guard length == bytes.count - magic.count - 8 else { return nil }
        return Array(bytes[(magic.count + 8)...])
    }

    package static func store(key: String, binary: [UInt8], in directory: URL? = directory) {
        guard let url = file(for: key, in: directory) else { return }
        var length = binary.count
        var bytes = magic
        for _ in 0..<8 { bytes.append(UInt8(length & 0xff)); length >>= 8 }
        bytes += binary
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? Data(bytes).write(to: url, options: .atomic)
    }

    static func remove(key: String, in directory: URL? = directory) {
        if let url = file(for: key, in: directory) { try? FileManager.default.removeItem(at: url) }
    }
}
