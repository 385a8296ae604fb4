import Foundation
import TapeCL
import TapeCLNN
import Testing

/// A safetensors file: the 8-byte length, `header`'s UTF-8 bytes (or `raw`), then `data`.
func safetensorsFile(_ header: String, _ data: [UInt8], raw: [UInt8]? = nil) -> Data {
    let bytes = raw ?? Array(header.utf8)
    var file = Data()
    withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { file.append(contentsOf: $0) }
    file.append(contentsOf: bytes + data)
    return file
}

/// Files read as strictly as Python's reader reads them (issue 28, items 4–6): each malformed
/// header it refuses, TapeCL refuses with a one-line error; each one it accepts loads the same values.
@Suite("safetensors, as strict as Python's reader")
struct SafetensorsTests {
    static let entry = #""dtype":"F32","shape":[2],"data_offsets":[0,8]"#
    static let eight = [UInt8](repeating: 0, count: 8)

    /// (name, file, what TapeCL's error says; nil where the file is good).
    static let cases: [(String, Data, String?)] = {
        let e = entry
        let utf16 = Array(#"{"a":{"# + e + "}}").flatMap {
            String($0).utf16.flatMap { [UInt8($0 & 255), UInt8($0 >> 8)] }
        }
        return [
            ("good", safetensorsFile(#"{"a":{"# + e + "}}", eight), nil),
            ("unknown field", safetensorsFile(#"{"a":{"# + e + #","extra":[1,{"b":null}]}}"#, eight), nil),
            ("spaces around", safetensorsFile(#" {"a":{"# + e + "}}   ", eight), nil),
            ("metadata", safetensorsFile(#"{"__metadata__":{"k":"v"},"a":{"# + e + "}}", eight), nil),
            ("null metadata", safetensorsFile(#"{"__metadata__":null,"a":{"# + e + "}}", eight), nil),
            ("escaped name", safetensorsFile(#"{"a\u0001\"b":{"# + e + "}}", eight), nil),
            ("empty", safetensorsFile("{}", []), nil),
            (
                "empty tensor beside one",
                safetensorsFile(
                    #"{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"# + e + "}}", eight), nil
            ),
            (
                "field twice", safetensorsFile(#"{"a":{"dtype":"F32","# + e + "}}", eight),
                "tensor 'a' gives dtype twice"
            ),
            (
                "true in shape",
                safetensorsFile(#"{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#, [0, 0, 0, 0]),
                "the shape of 'a' must hold integers of 0 or more"
            ),
            (
                "8.0 in data_offsets",
                safetensorsFile(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}}"#, eight),
                "the data_offsets of 'a' must hold integers"
            ),
            (
                "8e0 in data_offsets",
                safetensorsFile(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8e0]}}"#, eight),
                "must hold integers"
            ),
            (
                "negative", safetensorsFile(#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, eight),
                "must hold integers"
            ),
            (
                "leading zero", safetensorsFile(#"{"a":{"dtype":"F32","shape":[02],"data_offsets":[0,8]}}"#, eight),
                "must hold integers"
            ),
            (
                "three offsets", safetensorsFile(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}"#, eight),
                "has 3 data_offsets, not 2"
            ),
            (
                "null shape", safetensorsFile(#"{"a":{"dtype":"F32","shape":null,"data_offsets":[0,8]}}"#, eight),
                "expected '[' (the shape of 'a' is a list of integers)"
            ),
            (
                "missing field", safetensorsFile(#"{"a":{"dtype":"F32","shape":[2]}}"#, eight),
                "tensor 'a' lacks dtype, shape or data_offsets"
            ),
            (
                "hole first", safetensorsFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, eight),
                "tensor 'a' begins at byte 4: leaves a hole before it"
            ),
            (
                "hole between",
                safetensorsFile(
                    #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
                    eight + [0, 0, 0, 0]),
                "tensor 'b' begins at byte 8: leaves a hole before it"
            ),
            (
                "overlap",
                safetensorsFile(
                    #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                    eight),
                "tensor 'b' begins at byte 4: overlaps the tensor before it"
            ),
            (
                "bytes after", safetensorsFile(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, eight),
                "4 bytes after the last tensor's data"
            ),
            ("data without tensors", safetensorsFile("{}", [0]), "1 bytes after the last tensor's data"),
            ("UTF-16", safetensorsFile("", eight, raw: [0xFF, 0xFE] + utf16), "byte 0: not UTF-8"),
            ("byte-order mark", safetensorsFile("\u{FEFF}{\"a\":{" + e + "}}", eight), "expected '{'"),
            (
                "characters after", safetensorsFile(#"{"a":{"# + e + "}}x", eight),
                "characters after the header's object"
            ),
            ("NUL after", safetensorsFile(#"{"a":{"# + e + "}}\u{0}", eight), "characters after the header's object"),
            (
                "metadata not a string", safetensorsFile(#"{"__metadata__":{"k":1},"a":{"# + e + "}}", eight),
                "'__metadata__' values must be strings"
            ),
            (
                "metadata twice", safetensorsFile(#"{"__metadata__":{},"__metadata__":{},"a":{"# + e + "}}", eight),
                "'__metadata__' is given twice"
            ),
            ("raw control character", safetensorsFile("{\"a\u{1}b\":{" + e + "}}", eight), "a control character"),
            ("lone surrogate", safetensorsFile(#"{"a\ud800":{"# + e + "}}", eight), "a lone surrogate escape"),
            ("unterminated", safetensorsFile(#"{"a":{"# + e, eight), "expected ',' or '}'"),
        ]
    }()

    static func write(_ data: Data, in directory: URL, _ name: String) throws -> URL {
        let url = directory.appendingPathComponent(name.replacingOccurrences(of: " ", with: "_") + ".safetensors")
        try data.write(to: url)
        return url
    }

    @Test func malformedHeadersAreRefusedAndGoodOnesLoad() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, data, expected) in Self.cases {
            let url = try Self.write(data, in: dir, name)
            if let expected {
                do {
                    let t = try loadSafetensors(from: url, on: .host)
                    Issue.record("\(name): loaded \(t.keys.sorted()) instead of an error")
                } catch let e as TapeError {
                    #expect(e.description.contains(expected), "\(name): \(e)")
                    #expect(e.description.contains(url.path) && !e.description.contains("\n"), "\(name): \(e)")
                }
            } else {
                let t = try loadSafetensors(from: url, on: .host)
                #expect(t.count == (name == "empty" ? 0 : name.hasPrefix("empty tensor") ? 2 : 1), "\(name): \(t)")
                #expect(t.values.allSatisfy { $0.scalars(as: Float.self).allSatisfy { $0 == 0 } }, "\(name)")
            }
        }
        let escaped = try loadSafetensors(from: try Self.write(Self.cases[5].1, in: dir, "name"), on: .host)
        #expect(escaped.keys.sorted() == ["a\u{1}\"b"])
    }

    /// Python keeps the last of two tensors of one name; TapeCL refuses the file, naming it.
    @Test func aNameGivenTwiceIsRefused() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = safetensorsFile(#"{"a":{"# + Self.entry + #"},"a":{"# + Self.entry + "}}", Self.eight)
        #expect(throws: TapeError.self) { try loadSafetensors(from: try Self.write(file, in: dir, "twice")) }
        do { _ = try loadSafetensors(from: try Self.write(file, in: dir, "twice")) } catch {
            #expect("\(error)".contains("tensor 'a' is given twice"), "\(error)")
        }
    }

    /// A header longer than Python's 100,000,000-byte cap is refused before it is read.
    @Test func theHeaderIsCapped() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var file = safetensorsFile("{}", [])
        file.replaceSubrange(0..<8, with: [0x01, 0xE1, 0xF5, 0x05, 0, 0, 0, 0])  // 100,000,001
        do {
            _ = try loadSafetensors(from: try Self.write(file, in: dir, "capped"))
            Issue.record("no error")
        } catch {
            #expect(
                "\(error)".contains("the header length 100000001 is more than the 100000000 bytes the format allows"))
        }
    }

    /// BOOL bytes other than 0 and 1 are true, as NumPy reads them (they loaded as 2 and 255).
    @Test(arguments: devices) func boolBytesAreNormalised(device: Device) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = safetensorsFile(#"{"m":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}}"#, [0, 1, 2, 255])
        let m = try #require(try loadSafetensors(from: try Self.write(file, in: dir, "bool"), on: device)["m"])
        #expect(m.scalars(as: Int.self) == [0, 1, 1, 1])
        #expect(m.cast(to: .int32).scalars(as: Int32.self) == [0, 1, 1, 1])
        #expect((m .== Tensor([1, 1, 1, 1], dtype: .bool).to(device)).scalars(as: Int.self) == [0, 1, 1, 1])
    }

    /// Each case against Python's reader (safetensors and NumPy, where installed): the files it
    /// refuses, TapeCL refuses; the ones it loads, TapeCL loads with the same names and values.
    @Test(.enabled(if: pythonWithSafetensors != nil, "no Python with safetensors and numpy (make python-safetensors)"))
    func pythonRefusesWhatTapeCLRefuses() throws {
        let python = try #require(pythonWithSafetensors)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bools = safetensorsFile(#"{"m":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}}"#, [0, 1, 2, 255])
        let files = try (Self.cases + [("bool bytes", bools, nil)]).map { try Self.write($0.1, in: dir, $0.0) }
        let script = """
            import sys
            from safetensors.numpy import load_file
            for path in sys.argv[1:]:
                try:
                    t = load_file(path)
                    print(" ".join(f"{k}={[float(x) for x in v.flatten()]}" for k, v in sorted(t.items())))
                except Exception:
                    print("refused")
            """
        let r = try run(URL(fileURLWithPath: python), ["-c", script] + files.map(\.path))
        #expect(r.status == 0, "\(r.err)")
        let answers = r.out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (i, url) in files.enumerated() {
            let ours: String
            do {
                let t = try loadSafetensors(from: url, on: .host)
                ours = t.keys.sorted().map { "\($0)=\(t[$0]!.scalars(as: Double.self))" }.joined(separator: " ")
            } catch { ours = "refused" }
            #expect(ours == answers[i], "\(url.lastPathComponent): TapeCL \(ours), Python \(answers[i])")
        }
    }
}
