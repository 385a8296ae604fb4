import Foundation
import TapeCL

// safetensors (https://github.com/huggingface/safetensors), the weights format PyTorch, JAX and MLX
// read: an 8-byte little-endian header length N, N bytes of JSON ({"name": {"dtype": "F32",
// "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}, padded with spaces),
// then the tensors' raw little-endian bytes, offsets counted from the end of the header.

/// Writes `tensors` to `url` in the safetensors format (F32, F64, I32, I8, BOOL), in name order.
///
/// ```swift
/// try saveSafetensors(model.namedVariables.mapValues(\.value), to: URL(fileURLWithPath: "model.safetensors"))
/// ```
/// The file is replaced as a whole (a reader sees the old file or the new one, a killed process
/// leaves no partial file or temporary debris); a symbolic link is written through, not replaced.
///
/// - Throws: `TapeError.argument` in one line naming the path (`disk full while writing PATH`,
///   `no such folder: DIR`, `is a folder: PATH`, `cannot write in DIR: permission denied`), or for a
///   tensor named `__metadata__`.
public func saveSafetensors(_ tensors: [String: Tensor], to url: URL) throws {
    struct Entry: Encodable {
        let dtype: String
        let shape: [Int]
        let dataOffsets: [Int]
    }
    guard tensors["__metadata__"] == nil else {
        throw TapeError.argument("saveSafetensors: '__metadata__' is reserved by the format, not a tensor name")
    }
    var header: [String: Entry] = [:]
    var offset = 0
    let names = tensors.keys.sorted()
    for name in names {
        let t = tensors[name]!
        header[name] = Entry(
            dtype: Safetensors.name(t.dtype), shape: t.shape, dataOffsets: [offset, offset + t.byteCount])
        offset += t.byteCount
    }
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.sortedKeys]
    var json = try encoder.encode(header)
    json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))  // 8-byte aligned data
    var file = Data(capacity: 8 + json.count + offset)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
    file.append(json)
    let start = file.count
    file.count += offset
    try file.withUnsafeMutableBytes { raw in
        var at = start
        for name in names {
            let t = tensors[name]!
            try t.copyBytes(into: UnsafeMutableRawBufferPointer(rebasing: raw[at..<(at + t.byteCount)]))
            at += t.byteCount
        }
    }
    try FileWriting.write(file, to: url)
}

/// The tensors of the safetensors file at `url`, on `device` (else the current device).
///
/// Read as strictly as Python's reader reads the format (see `SafetensorsHeader` in the source): the header
/// is at most 100,000,000 bytes, the tensors' bytes cover the data exactly, without holes,
/// overlaps or bytes after the last one. BOOL bytes other than 0 load as `true` (1), as NumPy
/// reads them.
///
/// - Throws: `TapeError.argument` naming the file and what is wrong with it: one that cannot be read
///   (`no such file: PATH`, `is a folder: PATH`, `cannot read PATH: permission denied`), truncated, a
///   header that is not the format's JSON, an unknown dtype, offsets past the end or not matching the
///   shape. A malformed file is never a crash.
public func loadSafetensors(from url: URL, on device: Device? = nil) throws -> [String: Tensor] {
    let file: Data
    do { file = try Data(contentsOf: url, options: .mappedIfSafe) } catch {
        throw TapeError.argument(unreadable(url))
    }
    func bad(_ what: String) -> TapeError { TapeError.argument("loadSafetensors: \(url.path): \(what)") }
    guard file.count >= 8 else { throw bad("\(file.count) bytes: too short for the 8-byte header length") }
    let length = file.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    guard length <= Safetensors.maxHeaderBytes else {
        throw bad("the header length \(length) is more than the \(Safetensors.maxHeaderBytes) bytes the format allows")
    }
    guard length <= UInt64(file.count - 8) else {
        throw bad("the header length \(length) is more than the \(file.count - 8) bytes after it (truncated?)")
    }
    let dataStart = 8 + Int(length)
    let header: SafetensorsHeader
    do {
        header = try file.withUnsafeBytes { raw throws(SafetensorsHeader.Malformed) in
            try SafetensorsHeader(UnsafeRawBufferPointer(rebasing: raw[8..<dataStart]))
        }
    } catch {
        throw bad("header (\(length) bytes), \((error as? SafetensorsHeader.Malformed)?.message ?? "\(error)")")
    }
    let dataCount = file.count - dataStart
    var tensors: [String: Tensor] = [:]
    let dtypes = try header.entries.map { entry -> DType in
        let name = SafetensorsHeader.printable(entry.name)
        guard let dtype = Safetensors.dtype(entry.dtype) else {
            throw bad("tensor '\(name)' has dtype \(entry.dtype); TapeCL reads F32, F64, I32, I8 and BOOL")
        }
        let (shape, begin, end) = (entry.shape, entry.begin, entry.end)
        guard begin <= end, end <= dataCount else {
            throw bad("tensor '\(name)' has data_offsets [\(begin), \(end)] outside the \(dataCount) bytes of data")
        }
        // The non-zero dimensions' product is checked too: a shape with no elements must still have
        // strides that Int can hold.
        let (nonZero, overflow) = shape.filter { $0 != 0 }.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || o)
        }
        guard !overflow, nonZero.multipliedReportingOverflow(by: dtype.byteSize).overflow == false else {
            throw bad("tensor '\(name)' has shape \(shape): more elements than Int can count")
        }
        let count = shape.contains(0) ? 0 : nonZero
        guard end - begin == count * dtype.byteSize else {
            throw bad("tensor '\(name)' has \(end - begin) bytes for shape \(shape) of \(entry.dtype)")
        }
        return dtype
    }
    // As Python checks: in offset order, each tensor begins where the one before ends, the first at 0,
    // and the last ends at the end of the file.
    var covered = 0
    for entry in header.entries.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
        guard entry.begin == covered else {
            let what = entry.begin < covered ? "overlaps the tensor before it" : "leaves a hole before it"
            throw bad("tensor '\(SafetensorsHeader.printable(entry.name))' begins at byte \(entry.begin): \(what)")
        }
        covered = entry.end
    }
    guard covered == dataCount else {
        throw bad("\(dataCount - covered) bytes after the last tensor's data: the file is not what its header says")
    }
    for (entry, dtype) in zip(header.entries, dtypes) {
        tensors[entry.name] = try file.withUnsafeBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[(dataStart + entry.begin)..<(dataStart + entry.end)])
            guard dtype == .bool, bytes.contains(where: { $0 > 1 }) else {
                return try Tensor(shape: entry.shape, dtype: dtype, bytes: bytes, on: device)
            }
            let normalised = bytes.map { $0 == 0 ? UInt8(0) : 1 }  // NumPy's bool(x): x != 0
            return try normalised.withUnsafeBytes {
                try Tensor(shape: entry.shape, dtype: dtype, bytes: $0, on: device)
            }
        }
    }
    return tensors
}

/// Why the file at `url` cannot be read, in one line naming it once (Foundation's error is a
/// multi-line dump of its domain, code and user info).
func unreadable(_ url: URL) -> String {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
        return "no such file: \(url.path)"
    }
    if isFolder.boolValue { return "is a folder: \(url.path)" }
    if !FileManager.default.isReadableFile(atPath: url.path) { return "cannot read \(url.path): permission denied" }
    return "cannot read \(url.path)"
}

/// The format's dtype names.
enum Safetensors {
    /// The longest header Python's reader accepts (`MAX_HEADER_SIZE`).
    static let maxHeaderBytes: UInt64 = 100_000_000
    static let names: [(DType, String)] = [
        (.float32, "F32"), (.float64, "F64"), (.int32, "I32"), (.int8, "I8"), (.bool, "BOOL"),
    ]
    static func name(_ dtype: DType) -> String { names.first { $0.0 == dtype }!.1 }
    static func dtype(_ name: String) -> DType? { names.first { $0.1 == name }?.0 }
}
