@_spi(Runtime) import TapeCLRuntime

/// Per-call parameters of an op (axes, target shape, transpose flags...), read and written as
/// `attributes.axes`. Most ops have none, and every op's attributes are copied into its launch
/// and its tape entry, so the values live in one shared box (copied on write): a copy is one
/// reference, not six.
@dynamicMemberLookup
package struct Attributes: Sendable {
    package struct Fields: Sendable {
        package var axes: [Int] = []
        package var keepDims = false
        package var shape: [Int] = []
        package var strides: [Int] = []
        package var permutation: [Int] = []
        package var transposeA = false
        package var transposeB = false
        /// Output dtype of `cast`, and the input's (for its backward).
        package var dtype: DType? = nil
        package var sourceDType: DType? = nil
        /// Target device of `to(_:)`, and the input's (for its backward).
        package var device: Device? = nil
        package var sourceDevice: Device? = nil
        /// First element of `slice`'s range in its (row-major) input.
        package var offset = 0
        /// An indexed op's integer parameters (see `IndexedKernel`).
        package var window: [Int] = []
    }
    private final class Box: @unchecked Sendable {  // mutated only while uniquely referenced
        var fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }
    private static let defaults = Fields()
    private var box: Box?
    package init() {}

    package subscript<V>(dynamicMember path: WritableKeyPath<Fields, V>) -> V {
        get { box.map { $0.fields[keyPath: path] } ?? Self.defaults[keyPath: path] }  // one field, not a copy of all
        set {
            if box == nil { box = Box(Fields()) } else if !isKnownUniquelyReferenced(&box!) { box = Box(box!.fields) }
            box!.fields[keyPath: path] = newValue
        }
    }
}

extension Attributes {
    /// What a kernel reads of these attributes (the runtime never sees the rest).
    /// Most ops have no attributes: then nothing is copied.
    var kernel: KernelParameters {
        guard let fields = box?.fields else { return KernelParameters() }
        return KernelParameters(
            axes: fields.axes, strides: fields.strides, transposeA: fields.transposeA,
            transposeB: fields.transposeB, offset: fields.offset,
            window: fields.window.isEmpty ? .init() : .init(fields.window))
    }
}
