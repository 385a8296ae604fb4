import TapeCL
import Foundation
for d in Device.all {
    withDevice(d) {
        let s = Tensor(2.0), s2 = Tensor(3.0)
        for _ in 0..<1000 { _ = s * s2 }
        var t0 = Date()
        for _ in 0..<20000 { _ = s * s2 }
        print(d, "scalar mul µs:", Date().timeIntervalSince(t0) * 50)
        // W1 chain
        let x = Tensor(0.5)
        for rep in 0..<3 {
            t0 = Date()
            let tape = GradientTape()
            tape.watch(x)
            let y = tape.record { () -> Tensor in var y = x; for _ in 0..<1000 { y = y + sin(y) * 0.001 }; return y }
            let g = try! tape.gradient(of: y, wrt: x)!
            let gv = g.scalar
            if rep == 2 { print(d, "W1 µs/op:", Date().timeIntervalSince(t0) * 1e6 / 3000, y.scalar, gv) }
        }
    }
}
