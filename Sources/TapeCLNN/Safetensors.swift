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
/// - Throws: a file error from Foundation; `TapeError.argument` for a name of `__metadata__`.
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
    try file.write(to: url, options: .atomic)
}

/// The tensors of the safetensors file at `url`, on `device` (else the current device).
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
    guard length <= UInt64(file.count - 8) else {
        throw bad("the header length \(length) is more than the \(file.count - 8) bytes after it (truncated?)")
    }
    let dataStart = 8 + Int(length)
    let json = file.subdata(in: 8..<dataStart)
    guard let object = try? JSONSerialization.jsonObject(with: json), let header = object as? [String: Any] else {
        throw bad("the \(length)-byte header is not a JSON object")
    }
    let dataCount = file.count - dataStart
    var tensors: [String: Tensor] = [:]
    var ranges: [(Int, Int, String)] = []
    for (name, value) in header where name != "__metadata__" {
        guard let entry = value as? [String: Any], let dtypeName = entry["dtype"] as? String,
            let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
        else { throw bad("tensor '\(name)' lacks dtype, shape or data_offsets") }
        guard let dtype = Safetensors.dtype(dtypeName) else {
            throw bad("tensor '\(name)' has dtype \(dtypeName); TapeCL reads F32, F64, I32, I8 and BOOL")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("tensor '\(name)' has shape \(shape)") }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, begin <= end, end <= dataCount else {
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
            throw bad("tensor '\(name)' has \(end - begin) bytes for shape \(shape) of \(dtypeName)")
        }
        ranges.append((begin, end, name))
        tensors[name] = try file.withUnsafeBytes { raw in
            try Tensor(
                shape: shape, dtype: dtype,
                bytes: UnsafeRawBufferPointer(rebasing: raw[(dataStart + begin)..<(dataStart + end)]), on: device)
        }
    }
    ranges.sort { ($0.0, $0.1) < ($1.0, $1.1) }
    for (a, b) in zip(ranges, ranges.dropFirst()) where b.0 < a.1 {
        throw bad("tensors '\(a.2)' and '\(b.2)' overlap")
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
    static let names: [(DType, String)] = [
        (.float32, "F32"), (.float64, "F64"), (.int32, "I32"), (.int8, "I8"), (.bool, "BOOL"),
    ]
    static func name(_ dtype: DType) -> String { names.first { $0.0 == dtype }!.1 }
    static func dtype(_ name: String) -> DType? { names.first { $0.1 == name }?.0 }
}
