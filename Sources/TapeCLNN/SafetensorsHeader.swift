// The header of a safetensors file, read as strictly as Python's reader (safetensors 0.8, Rust's
// serde_json) reads it, and in one pass over its bytes: no JSON object tree is built, so a header
// of N bytes costs its entries, not tens of times N in dictionaries and boxed numbers.

/// One tensor's entry: `"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}`.
struct SafetensorsEntry {
    let name: String
    let dtype: String
    let shape: [Int]
    let begin: Int
    let end: Int
}

/// A safetensors header: UTF-8 JSON, one object of tensor entries and an optional `__metadata__`
/// object of strings, followed only by whitespace (the format pads with spaces).
///
/// Refused, as Python's reader refuses them: bytes that are not UTF-8 (UTF-16 and UTF-32 headers,
/// a byte-order mark), anything but `{` first, a field given twice, a missing field, a `shape` or
/// `data_offsets` item that is not a non-negative integer without sign, fraction or exponent
/// (`true`, `8.0`, `8e0`, `-2`, `02`), `data_offsets` of other than two items, metadata values
/// that are not strings, control characters in strings, and anything after the object. Stricter
/// than Python: a tensor name given twice (Python keeps the last one).
struct SafetensorsHeader {
    private(set) var entries: [SafetensorsEntry] = []
    private(set) var metadata: [String: String] = [:]

    /// What is wrong and at which byte of the header.
    struct Malformed: Error {
        let message: String
    }

    private let bytes: UnsafeRawBufferPointer
    private var at = 0

    init(_ bytes: UnsafeRawBufferPointer) throws(Malformed) {
        self.bytes = bytes
        if let bad = Self.firstInvalidUTF8(bytes) { throw Malformed(message: "byte \(bad): not UTF-8") }
        skipSpace()
        try expect(UInt8(ascii: "{"), "'{' (the header is one JSON object)")
        var names = Set<String>()
        var sawMetadata = false
        try members { me, name throws(Malformed) in
            if name == "__metadata__" {
                guard !sawMetadata else { throw me.fail("'__metadata__' is given twice") }
                sawMetadata = true
                try me.readMetadata()
                return
            }
            guard names.insert(name).inserted else {
                throw me.fail("tensor '\(Self.printable(name))' is given twice")
            }
            me.entries.append(try me.readEntry(name))
        }
        skipSpace()
        guard at == bytes.count else { throw fail("characters after the header's object") }
    }

    // MARK: the format's objects

    private mutating func readEntry(_ name: String) throws(Malformed) -> SafetensorsEntry {
        var dtype: String?
        var shape: [Int]?
        var offsets: [Int]?
        let shown = Self.printable(name)
        try expect(UInt8(ascii: "{"), "'{' (tensor '\(shown)' is an object)")
        try members { me, field throws(Malformed) in
            switch field {
            case "dtype":
                guard dtype == nil else { throw me.fail("tensor '\(shown)' gives dtype twice") }
                dtype = try me.readString()
            case "shape":
                guard shape == nil else { throw me.fail("tensor '\(shown)' gives shape twice") }
                shape = try me.readIntegers("the shape of '\(shown)'")
            case "data_offsets":
                guard offsets == nil else { throw me.fail("tensor '\(shown)' gives data_offsets twice") }
                offsets = try me.readIntegers("the data_offsets of '\(shown)'")
                guard offsets!.count == 2 else {
                    throw me.fail("tensor '\(shown)' has \(offsets!.count) data_offsets, not 2")
                }
            default: try me.skipValue(depth: 0)  // as Python does: unknown fields are ignored
            }
        }
        guard let dtype, let shape, let offsets else {
            throw fail("tensor '\(shown)' lacks dtype, shape or data_offsets")
        }
        return SafetensorsEntry(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
    }

    private mutating func readMetadata() throws(Malformed) {
        if peek("null") { return }
        try expect(UInt8(ascii: "{"), "'{' ('__metadata__' is an object of strings)")
        try members { me, key throws(Malformed) in
            guard me.current == UInt8(ascii: "\"") else { throw me.fail("'__metadata__' values must be strings") }
            me.metadata[key] = try me.readString()
        }
    }

    /// `{` has been read: reads `"key": value` pairs, each value by `value`, through the `}`.
    private mutating func members(_ value: (inout Self, String) throws(Malformed) -> Void) throws(Malformed) {
        skipSpace()
        if current == UInt8(ascii: "}") {
            at += 1
            return
        }
        while true {
            skipSpace()
            let key = try readString()
            skipSpace()
            try expect(UInt8(ascii: ":"), "':' after a key")
            skipSpace()
            try value(&self, key)
            skipSpace()
            if current == UInt8(ascii: "}") {
                at += 1
                return
            }
            try expect(UInt8(ascii: ","), "',' or '}' after a value")
        }
    }

    /// `[n, n, …]` of integers in `0 ... Int.max`, as JSON writes them.
    private mutating func readIntegers(_ what: String) throws(Malformed) -> [Int] {
        try expect(UInt8(ascii: "["), "'[' (\(what) is a list of integers)")
        var items: [Int] = []
        skipSpace()
        if current == UInt8(ascii: "]") {
            at += 1
            return items
        }
        while true {
            skipSpace()
            items.append(try readInteger(what))
            skipSpace()
            if current == UInt8(ascii: "]") {
                at += 1
                return items
            }
            try expect(UInt8(ascii: ","), "',' or ']' in \(what)")
        }
    }

    private mutating func readInteger(_ what: String) throws(Malformed) -> Int {
        let start = at
        var value = 0
        var overflow = false
        while let d = current, d >= UInt8(ascii: "0"), d <= UInt8(ascii: "9") {
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(Int(d - UInt8(ascii: "0")))
            (value, overflow) = (sum, overflow || o1 || o2)
            at += 1
        }
        let next = current
        let isNumber = next.map { "-+.eE".utf8.contains($0) } ?? false
        guard at > start, !isNumber, !(at - start > 1 && bytes[start] == UInt8(ascii: "0")) else {
            at = start
            throw fail("\(what) must hold integers of 0 or more, written without sign, fraction or exponent")
        }
        guard !overflow else { throw fail("\(what) holds an integer larger than \(Int.max)") }
        return value
    }

    // MARK: JSON's lexical layer

    private var current: UInt8? { at < bytes.count ? bytes[at] : nil }

    private func fail(_ what: String) -> Malformed { Malformed(message: "byte \(at): \(what)") }

    private mutating func skipSpace() {
        while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { at += 1 }
    }

    private mutating func expect(_ c: UInt8, _ what: String) throws(Malformed) {
        guard current == c else { throw fail("expected \(what)") }
        at += 1
    }

    /// Consumes `word` when it comes next.
    private mutating func peek(_ word: String) -> Bool {
        let w = Array(word.utf8)
        guard at + w.count <= bytes.count, (0..<w.count).allSatisfy({ bytes[at + $0] == w[$0] }) else { return false }
        at += w.count
        return true
    }

    /// A JSON string, its escapes decoded (a lone surrogate is an error, as in serde_json).
    private mutating func readString() throws(Malformed) -> String {
        try expect(UInt8(ascii: "\""), "a string")
        var out: [UInt8] = []
        while true {
            guard let c = current else { throw fail("a string that does not end") }
            at += 1
            switch c {
            case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
            case 0..<0x20: throw fail("a control character inside a string")
            case UInt8(ascii: "\\"): try readEscape(into: &out)
            default: out.append(c)
            }
        }
    }

    private mutating func readEscape(into out: inout [UInt8]) throws(Malformed) {
        guard let e = current else { throw fail("a string that does not end") }
        at += 1
        let simple: [UInt8: UInt8] = [
            UInt8(ascii: "\""): 0x22, UInt8(ascii: "\\"): 0x5C, UInt8(ascii: "/"): 0x2F, UInt8(ascii: "b"): 0x08,
            UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A, UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09,
        ]
        if let s = simple[e] {
            out.append(s)
            return
        }
        guard e == UInt8(ascii: "u") else { throw fail("an unknown escape in a string") }
        var scalar = try readHex4()
        if (0xD800..<0xDC00).contains(scalar) {
            guard peek("\\u") else { throw fail("a lone surrogate escape in a string") }
            let low = try readHex4()
            guard (0xDC00..<0xE000).contains(low) else { throw fail("a lone surrogate escape in a string") }
            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00..<0xE000).contains(scalar) {
            throw fail("a lone surrogate escape in a string")
        }
        out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
    }

    private mutating func readHex4() throws(Malformed) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let c = current, let d = Self.hexValue(c) else { throw fail("a \\u escape without 4 hex digits") }
            v = v << 4 | d
            at += 1
        }
        return v
    }

    private static func hexValue(_ c: UInt8) -> UInt32? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(c - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// Skips any JSON value (an unknown field's), nested at most 64 deep.
    private mutating func skipValue(depth: Int) throws(Malformed) {
        guard depth < 64 else { throw fail("values nested more than 64 deep") }
        skipSpace()
        switch current {
        case UInt8(ascii: "\""): _ = try readString()
        case UInt8(ascii: "{"):
            at += 1
            try members { me, _ throws(Malformed) in try me.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            at += 1
            skipSpace()
            if current == UInt8(ascii: "]") {
                at += 1
                return
            }
            while true {
                try skipValue(depth: depth + 1)
                skipSpace()
                if current == UInt8(ascii: "]") {
                    at += 1
                    return
                }
                try expect(UInt8(ascii: ","), "',' or ']' in a list")
            }
        default:
            if peek("true") || peek("false") || peek("null") { return }
            let start = at
            while let c = current, "+-.eE0123456789".utf8.contains(c) { at += 1 }
            guard at > start,
                Double(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)) != nil
            else { throw fail("expected a JSON value") }
        }
    }

    /// The offset of the first byte that does not begin or continue a valid UTF-8 sequence, if any.
    static func firstInvalidUTF8(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        var consumed = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let s): consumed += UTF8.width(s)
            case .emptyInput: return nil
            case .error: return consumed
            }
        }
    }

    /// `name` with control characters escaped, for messages.
    static func printable(_ name: String) -> String {
        name.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? $0.escaped(asASCII: true) : String($0) }
            .joined()
    }
}
