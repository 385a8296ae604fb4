import Foundation
import TapeCL
import TapeCLData
import TapeCLNN
@_spi(Runtime) import TapeCLRuntime
import Testing

/// The shipped digits as a library (issue 32, item 4): the split `tapecl train` uses, and batches.
@Suite("data sets")
struct DataTests {
    @Test func theDigitsSplitAsTheCommandLineSplitsThem() throws {
        let (train, test, all) = (
            try Digits.load(split: .train, seed: 0, on: .host), try Digits.load(split: .test, seed: 0, on: .host),
            try Digits.load(split: .all, seed: 0, on: .host)
        )
        #expect((train.count, test.count, all.count) == (1437, 360, 1797))
        #expect(train.images.shape == [1437, 64] && train.labels.shape == [1437] && train.labels.dtype == .int32)
        #expect(all.images.scalars == train.images.scalars + test.images.scalars)
        #expect(all.labelValues == train.labelValues + test.labelValues)
        #expect(Set(all.labelValues) == Set(0..<10))
        #expect(all.images.scalars.allSatisfy { $0 >= 0 && $0 <= 1 && ($0 * 16).rounded() == $0 * 16 })
        let other = try Digits.load(split: .train, seed: 1, on: .host)
        #expect(other.labelValues != train.labelValues, "the seed shuffles")
    }

    @Test func batchesAreSeededAndCoverEveryExample() throws {
        let train = try Digits.load(split: .train, seed: 0, on: .host)
        var a = SplitMix64(seed: 5)
        var b = SplitMix64(seed: 5)
        let first = train.batches(size: 64, shuffledBy: &a)
        let second = train.batches(size: 64, shuffledBy: &b)
        #expect(first.map(\.images.shape) == Array(repeating: [64, 64], count: 22) + [[29, 64]])
        #expect(zip(first, second).allSatisfy { $0.labels.scalars == $1.labels.scalars })
        let labels = first.flatMap { $0.labels.scalars(as: Int.self) }
        #expect(labels.sorted() == train.labelValues.sorted() && labels != train.labelValues)
        #expect(train.batches(size: 1000).map(\.labels.shape) == [[1000], [437]])
    }

    /// README's example: a model trained from the library's data reaches the command line's accuracy.
    @Test func aModelTrainsOnTheLibrarysDigits() throws {
        try withDevice(.host) {
            let train = try Digits.load(split: .train, seed: 0)
            let test = try Digits.load(split: .test, seed: 0)
            let model = Sequential([
                Dense(inputSize: 64, outputSize: 64, activation: { relu($0) }, seed: 1),
                Dense(inputSize: 64, outputSize: 10, seed: 2),
            ])
            let optimizer = Adam(learningRate: 0.01)
            var rng = SplitMix64(seed: 3)
            for _ in 0..<5 {
                for (images, labels) in train.batches(size: 64, shuffledBy: &rng) {
                    let tape = GradientTape()
                    let loss = tape.record { sparseSoftmaxCrossEntropy(logits: model(images), labels: labels) }
                    optimizer.update(model.variables, gradients: try tape.gradient(of: loss, wrt: model.variables))
                }
            }
            let predicted = model(test.images).argmax(axis: -1).scalars(as: Int.self)
            let right = zip(predicted, test.labelValues).filter { $0 == $1 }.count
            #expect(right >= 340, "\(right) of 360")
        }
    }
}
