import TapeCL

/// The handwritten digits shipped with TapeCL: 1,797 images of 8×8 pixels and their labels 0–9,
/// the test part of the UCI "Optical Recognition of Handwritten Digits" data set (E. Alpaydin,
/// C. Kaynak, 1998) as scikit-learn's `load_digits` distributes it. Licence: CC BY 4.0,
/// https://doi.org/10.24432/C50P49.
///
/// The split, the one `tapecl train` uses: the images are shuffled once by `seed` (SplitMix64,
/// Swift's `shuffle(using:)`), then the first 80% (1,437) are ``Split/train`` and the other 360
/// ``Split/test``. Pixels are scaled from 0–16 to [0, 1].
///
/// ```swift
/// import TapeCLData
///
/// let train = try Digits.load(split: .train, seed: 0)     // images [1437, 64], labels [1437] int32
/// var rng = SystemRandomNumberGenerator()
/// for (images, labels) in train.batches(size: 64, shuffledBy: &rng) {
///     let loss = sparseSoftmaxCrossEntropy(logits: model(images), labels: labels)   // TapeCLNN
/// }
/// ```
///
/// The file, `Sources/TapeCLData/Data/digits.txt`, is embedded in the library at build time: one
/// image per line, its 64 pixels row by row as the letters `a` (0) to `q` (16), then the digit.
public enum Digits {
    /// Which part of the shuffled images.
    public enum Split: Sendable {
        /// The first 80% (1,437 images).
        case train
        /// The last 20% (360 images).
        case test
        /// All 1,797, in the shuffled order.
        case all
    }

    /// The images of `split` after shuffling by `seed`, on `device` (else the current device).
    /// - Throws: `TapeError.argument` if the embedded file is malformed (a broken build).
    public static func load(split: Split, seed: UInt64 = 0, on device: Device? = nil) throws -> DataSet {
        var rows = try parsed()
        var rng = SplitMix64(seed: seed)
        rows.shuffle(using: &rng)
        let trainCount = rows.count * 4 / 5
        let part: ArraySlice<(pixels: [Float], label: Int32)> =
            switch split {
            case .train: rows[..<trainCount]
            case .test: rows[trainCount...]
            case .all: rows[...]
            }
        return DataSet(pixels: part.flatMap(\.pixels), labels: part.map(\.label), width: 64, device: device ?? .current)
    }

    /// Every line of the embedded file as pixels in [0, 1] and a label.
    static func parsed() throws -> [(pixels: [Float], label: Int32)] {
        guard let text = EmbeddedData.files["digits.txt"] else {
            throw TapeError.argument("Digits: this build of TapeCLData lacks Data/digits.txt")
        }
        return try text.split(separator: "\n").enumerated().map { number, line in
            let chars = Array(line.utf8)
            let letters = UInt8(ascii: "a")...UInt8(ascii: "q")
            guard chars.count == 65, chars[..<64].allSatisfy(letters.contains), (48...57).contains(chars[64]) else {
                throw TapeError.argument("Digits: line \(number + 1) of digits.txt is not 64 letters a-q and a digit")
            }
            return (chars[..<64].map { Float($0 - UInt8(ascii: "a")) / 16 }, Int32(chars[64] - UInt8(ascii: "0")))
        }
    }
}

/// Examples of a fixed width: `images` `[count, width]` float32 and `labels` `[count]` int32, on one
/// device, with host copies from which batches are made without reading the device.
public struct DataSet: Sendable {
    /// Every example, `[count, width]` float32.
    public let images: Tensor
    /// Every label, `[count]` int32.
    public let labels: Tensor
    /// The number of examples.
    public let count: Int
    private let pixels: [Float]
    private let ids: [Int32]
    private let width: Int
    private let device: Device

    init(pixels: [Float], labels: [Int32], width: Int, device: Device) {
        (self.pixels, ids, self.width, self.device, count) = (pixels, labels, width, device, labels.count)
        images = Tensor(shape: [labels.count, width], scalars: pixels, on: device)
        self.labels = Tensor(shape: [labels.count], scalars: labels, on: device)
    }

    /// The labels as Swift integers (no device read).
    public var labelValues: [Int] { ids.map(Int.init) }

    /// The examples at `indices`, in that order: images `[indices.count, width]` and labels.
    /// - Precondition: every index in `0 ..< count`.
    public func batch(_ indices: [Int]) -> (images: Tensor, labels: Tensor) {
        if let error = indexError(indices) { return stop(error, else: (.inert(), .inert(dtype: .int32))) }
        return (checkedImages(indices), Tensor(shape: [indices.count], scalars: indices.map { ids[$0] }, on: device))
    }

    /// The error naming the first index outside `0 ..< count`, if any.
    private func indexError(_ indices: [Int]) -> TapeError? {
        guard let bad = indices.first(where: { !(0..<count).contains($0) }) else { return nil }
        return TapeError.argument("DataSet.batch: index \(bad) is outside 0..<\(count)")
    }

    /// The images at `indices` alone, `[indices.count, width]` (for a caller that makes its own labels).
    /// - Precondition: every index in `0 ..< count`.
    package func images(at indices: [Int]) -> Tensor {
        if let error = indexError(indices) { return stop(error, else: .inert()) }
        return checkedImages(indices)
    }

    /// The images at `indices`, known to lie in `0 ..< count`.
    private func checkedImages(_ indices: [Int]) -> Tensor {
        Tensor(
            shape: [indices.count, width], scalars: indices.flatMap { pixels[($0 * width)..<(($0 + 1) * width)] },
            on: device)
    }

    /// One pass over the examples in an order shuffled by `rng`, `size` at a time (the last batch
    /// holds what is left). The same generator state gives the same batches.
    public func batches(
        size: Int, shuffledBy rng: inout some RandomNumberGenerator
    ) -> [(images: Tensor, labels: Tensor)] {
        var order = Array(0..<count)
        order.shuffle(using: &rng)
        return batches(size: size, order: order)
    }

    /// One pass in order, `size` at a time.
    public func batches(size: Int) -> [(images: Tensor, labels: Tensor)] {
        batches(size: size, order: Array(0..<count))
    }

    func batches(size: Int, order: [Int]) -> [(images: Tensor, labels: Tensor)] {
        guard size > 0 else {
            return stop(TapeError.argument("DataSet.batches: size must be 1 or more, not \(size)"), else: [])
        }
        return stride(from: 0, to: order.count, by: size).map { batch(Array(order[$0..<min(order.count, $0 + size)])) }
    }
}

/// Text files of this target embedded at build time (`EmbeddedData.files[name]`).
enum EmbeddedData {}
