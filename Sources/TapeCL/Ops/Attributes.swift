/// Per-call parameters of an op (axes, target shape, transpose flags...). Most ops have none, and
/// every op's attributes are copied into its launch and its tape entry, so the values live in one
/// shared box (copied on write): a copy is one reference, not six.
package struct Attributes: Sendable {
    private final class Values: @unchecked Sendable {
        var axes: [Int] = [], keepDims = false, shape: [Int] = [], strides: [Int] = [], permutation: [Int] = []
        var transposeA = false, transposeB = false
        /// Output dtype of `cast`, and the input's (for its backward).
        var dtype: DType? = nil, sourceDType: DType? = nil
        /// Target device of `to(_:)`, and the input's (for its backward).
        var device: Device? = nil, sourceDevice: Device? = nil

        func copy() -> Values {
            let v = Values()
            (v.axes, v.keepDims, v.shape, v.strides, v.permutation) = (axes, keepDims, shape, strides, permutation)
            (v.transposeA, v.transposeB, v.dtype, v.sourceDType, v.device, v.sourceDevice) = (transposeA, transposeB, dtype, sourceDType, device, sourceDevice)
            return v
        }
    }
    private static let defaults = Values()
    private var values: Values?
    package init() {}

    private var read: Values { values ?? Self.defaults }
    private mutating func write<V>(_ path: ReferenceWritableKeyPath<Values, V>, _ value: V) {
        if values == nil { values = Values() } else if !isKnownUniquelyReferenced(&values) { values = values!.copy() }
        values![keyPath: path] = value
    }

    package var axes: [Int] { get { read.axes } set { write(\.axes, newValue) } }
    package var keepDims: Bool { get { read.keepDims } set { write(\.keepDims, newValue) } }
    package var shape: [Int] { get { read.shape } set { write(\.shape, newValue) } }
    package var strides: [Int] { get { read.strides } set { write(\.strides, newValue) } }
    package var permutation: [Int] { get { read.permutation } set { write(\.permutation, newValue) } }
    package var transposeA: Bool { get { read.transposeA } set { write(\.transposeA, newValue) } }
    package var transposeB: Bool { get { read.transposeB } set { write(\.transposeB, newValue) } }
    package var dtype: DType? { get { read.dtype } set { write(\.dtype, newValue) } }
    package var sourceDType: DType? { get { read.sourceDType } set { write(\.sourceDType, newValue) } }
    package var device: Device? { get { read.device } set { write(\.device, newValue) } }
    package var sourceDevice: Device? { get { read.sourceDevice } set { write(\.sourceDevice, newValue) } }
}
