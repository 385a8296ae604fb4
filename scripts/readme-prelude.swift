// The names README's snippets use without making them (a model, a batch, an optimizer), as globals:
// `scripts/readme-snippets.py` type-checks each snippet as the body of a function after this file,
// so a snippet's own declarations shadow these.
import Foundation
import TapeCL
import TapeCLData
import TapeCLDistributed
import TapeCLNN

let x = Tensor.randomNormal(shape: [4, 8, 8, 1], seed: 1)
let y = Tensor([Int32(0), 1, 2, 3])
let model = Sequential([Flatten(), Dense(inputSize: 64, outputSize: 10, seed: 2)])
let optimizer = Adam(learningRate: 0.01)
let logits = Tensor.zeros(shape: [4, 10])
let table = Tensor.zeros(shape: [10, 3])
let ids = Tensor([Int32(1), 2])
let loss = Tensor(1)
var runningLoss = Tensor(0)
let batches: [(Tensor, Tensor)] = []
let images = Tensor.zeros(shape: [2, 8, 8, 1])
let w = Tensor.zeros(shape: [3, 3, 1, 4])
