import Foundation
import TapeCL

// A layer's weights in a safetensors file, by the names of `namedVariables`, checked as a whole.

extension Layer {
    /// Writes every variable to `url` as safetensors, named as ``Layer/namedVariables`` names them
    /// (`weight`, or `0.weight` inside a ``Sequential``), replacing the file as a whole.
    ///
    /// ```swift
    /// try model.saveWeights(to: URL(fileURLWithPath: "model.safetensors"))
    /// ```
    /// - Throws: `TapeError.argument` naming the file (see ``saveSafetensors(_:to:)``).
    public func saveWeights(to url: URL) throws {
        try saveSafetensors(namedVariables.mapValues(\.value), to: url)
    }

    /// Sets every variable from the safetensors file at `url`, strictly: the file must hold exactly
    /// the layer's names, each with its variable's shape and dtype. Nothing is assigned unless
    /// everything fits; the values go to each variable's device.
    ///
    /// ```swift
    /// try model.loadWeights(from: URL(fileURLWithPath: "model.safetensors"))
    /// ```
    /// - Throws: `TapeError.argument` for a file that cannot be read or is malformed (see
    ///   ``loadSafetensors(from:on:)``); `TapeError.shape` naming every missing, unexpected and
    ///   mis-shaped tensor: `loadWeights: model.safetensors: 1 missing: '1.bias'; 1 unexpected: '1.b'`.
    public func loadWeights(from url: URL) throws {
        let tensors = try loadSafetensors(from: url, on: .host)
        let named = namedVariables
        let differences = Differences(tensors, expected: named.mapValues { ($0.shape, $0.dtype) })
        var problems = differences.absentAndExtra
        let misshaped = differences.misshaped.map { name in
            let (t, v) = (tensors[name]!, named[name]!)
            return
                "\(WeightNames.list([name])) is \(t.shape) \(t.dtype) in the file, \(v.shape) \(v.dtype) in the layer"
        }
        if !misshaped.isEmpty {
            problems.append(misshaped.prefix(WeightNames.shown).joined(separator: ", "))
            if misshaped.count > WeightNames.shown {
                problems.append("and \(misshaped.count - WeightNames.shown) more")
            }
        }
        guard problems.isEmpty else {
            throw TapeError.shape("loadWeights: \(url.path): " + problems.joined(separator: "; "))
        }
        for (name, v) in named { v.assign(tensors[name]!.to(v.value.device)) }
    }
}

/// How the tensors of a file differ from what a layer or an optimizer expects of them.
struct Differences {
    /// Names expected and not found, in order.
    let missing: [String]
    /// Names found and not expected, in order.
    let unexpected: [String]
    /// Names found and expected whose shape or dtype differ, in order.
    let misshaped: [String]

    init(_ found: [String: Tensor], expected: [String: (shape: [Int], dtype: DType)]) {
        missing = Set(expected.keys).subtracting(found.keys).sorted()
        unexpected = Set(found.keys).subtracting(expected.keys).sorted()
        misshaped = expected.keys.sorted().filter { name in
            guard let t = found[name], let e = expected[name] else { return false }
            return t.shape != e.shape || t.dtype != e.dtype
        }
    }

    /// `N missing: 'a', …` and `N unexpected: 'b', …`, for those there are.
    var absentAndExtra: [String] {
        (missing.isEmpty ? [] : ["\(missing.count) missing: \(WeightNames.list(missing))"])
            + (unexpected.isEmpty ? [] : ["\(unexpected.count) unexpected: \(WeightNames.list(unexpected))"])
    }
}

/// Names as messages show them.
package enum WeightNames {
    /// How many names a message lists before it counts the rest.
    package static let shown = 8

    /// Quoted, control characters escaped (`'a\u{1B}b'`), at most ``shown`` of them and then how
    /// many more (a file may hold 100,000).
    package static func list(_ names: [String]) -> String {
        let quoted = names.prefix(shown).map { "'\(SafetensorsHeader.printable($0))'" }
        return quoted.joined(separator: ", ") + (names.count > shown ? " and \(names.count - shown) more" : "")
    }
}
