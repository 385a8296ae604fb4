import Foundation
import TapeCL
import TapeCLNN

/// A small attention model on a synthetic task: reverse a sequence of `length` tokens over
/// `symbols` symbols. Token embedding plus position embedding, one self-attention block (batched
/// matmul of queries and keys, softmax, weighted values, a residual connection and LayerNorm),
/// then a Dense head giving each position's logits. Used by `Examples/Attention` and the tests.
package final class AttentionModel {
    package let length: Int
    package let symbols: Int
    let tokens: Embedding
    let positions: Embedding
    let query: Dense
    let key: Dense
    let value: Dense
    let output: Dense
    let norm: LayerNorm
    let head: Dense

    package init(length: Int = 8, symbols: Int = 10, width: Int = 32, seed: UInt64 = 0) {
        self.length = length
        self.symbols = symbols
        tokens = Embedding(vocabularySize: symbols, embeddingSize: width, seed: seed &+ 1)
        positions = Embedding(vocabularySize: length, embeddingSize: width, seed: seed &+ 2)
        query = Dense(inputSize: width, outputSize: width, seed: seed &+ 3)
        key = Dense(inputSize: width, outputSize: width, seed: seed &+ 4)
        value = Dense(inputSize: width, outputSize: width, seed: seed &+ 5)
        output = Dense(inputSize: width, outputSize: width, seed: seed &+ 6)
        norm = LayerNorm(featureCount: width)
        head = Dense(inputSize: width, outputSize: symbols, seed: seed &+ 7)
    }

    package var variables: [Variable] {
        ([tokens, positions, query, key, value, output, norm, head] as [any Layer]).flatMap(\.variables)
    }

    /// Logits `[batch, length, symbols]` for int32 tokens `[batch, length]`.
    package func callAsFunction(_ ids: Tensor) -> Tensor {
        let place = Tensor((0..<length).map(Int32.init), on: ids.device)
        let h = tokens(ids) + positions(place)  // [B, L, D] + [L, D]
        let (q, k, v) = (query(h), key(h), value(h))
        let scale = 1 / Double(q.shape[2]).squareRoot()
        let weights = softmax(matmul(q, k, transposeB: true) * scale, axis: -1)  // [B, L, L]
        let attended = output(matmul(weights, v))
        return head(norm(h + attended))
    }

    /// Mean cross-entropy of each position's logits against its target token.
    package func loss(_ ids: Tensor, targets: Tensor) -> Tensor {
        sparseSoftmaxCrossEntropy(logits: self(ids), labels: targets)
    }
}

/// Batches of the reversal task: random sequences and their reverses, as int32 tensors.
package struct ReversalTask {
    package let length: Int
    package let symbols: Int
    private var state: UInt64

    package init(length: Int = 8, symbols: Int = 10, seed: UInt64) {
        self.length = length
        self.symbols = symbols
        state = seed
    }

    /// SplitMix64 (Steele, Lea and Flood, 2014): a seeded stream, the same on every machine.
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    package mutating func batch(_ size: Int, on device: Device? = nil) -> (ids: Tensor, targets: Tensor) {
        let rows = (0..<size).map { _ in (0..<length).map { _ in Int32(next() % UInt64(symbols)) } }
        return (
            Tensor(shape: [size, length], scalars: rows.flatMap { $0 }, on: device),
            Tensor(shape: [size, length], scalars: rows.flatMap { $0.reversed() }, on: device)
        )
    }
}

/// Trains `model` on the reversal task with Adam for `steps` steps of `batch` sequences, calling
/// `report(step, loss)` every 50 steps; returns the token accuracy on 512 fresh sequences.
package func trainReversal(
    _ model: AttentionModel, steps: Int, batch: Int = 64, learningRate: Double = 0.01, seed: UInt64 = 1,
    on device: Device, report: (Int, Float) -> Void = { _, _ in }
) throws -> Double {
    var task = ReversalTask(length: model.length, symbols: model.symbols, seed: seed)
    let adam = Adam(learningRate: learningRate)
    for step in 1...steps {
        let (ids, targets) = task.batch(batch, on: device)
        let tape = GradientTape()
        let loss = tape.record { model.loss(ids, targets: targets) }
        adam.update(model.variables, gradients: try tape.gradient(of: loss, wrt: model.variables))
        if step % 50 == 0 || step == steps { report(step, loss.scalar) }
    }
    let (ids, targets) = task.batch(512, on: device)
    let predicted = model(ids).argmax(axis: -1).scalars(as: Int32.self)
    let right = zip(predicted, targets.scalars(as: Int32.self)).filter { $0 == $1 }.count
    return Double(right) / Double(predicted.count)
}
