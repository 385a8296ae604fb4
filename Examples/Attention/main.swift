// A small attention model that learns to reverse sequences of 8 tokens over 10 symbols:
// token and position embeddings, one self-attention block, a Dense head (Sources/TapeCLExamples).
//
//   swift run -c release tapecl-attention [device]      e.g. host, opencl:0
import Foundation
import TapeCL
import TapeCLExamples

let device = try CommandLine.arguments.count > 1 ? Device.named(CommandLine.arguments[1]) : Device.default
try withDevice(device) {
    let model = AttentionModel(seed: 1)  // its variables on `device`
    print("training a self-attention model to reverse 8 tokens on \(device)")
    let start = Date()
    let accuracy = try trainReversal(model, steps: 400, on: device) { step, loss in
        print(String(format: "step %4d  loss %.4f", step, loss))
    }
    let seconds = Date().timeIntervalSince(start)
    print(String(format: "token accuracy on 512 new sequences: %.1f%% (%.1f s)", 100 * accuracy, seconds))
}
