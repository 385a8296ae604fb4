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
        var problems: [String] = []
        let missing = Set(named.keys).subtracting(tensors.keys).sorted()
        let unexpected = Set(tensors.keys).subtracting(named.keys).sorted()
        if !missing.isEmpty { problems.append("\(missing.count) missing: \(WeightNames.list(missing))") }
        if !unexpected.isEmpty { problems.append("\(unexpected.count) unexpected: \(WeightNames.list(unexpected))") }
        let misshaped = named.keys.sorted().compactMap { name -> String? in
            guard let t = tensors[name], let v = named[name], t.shape != v.shape || t.dtype != v.dtype else {
                return nil
            }
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
