import Foundation
import Synchronization
@_spi(Runtime) import TapeCLRuntime

/// `TAPECL_CROSSCHECK=1`: every op on a device runs on the host as well, and the first
/// disagreement beyond the op's ``Tolerance`` is reported once on standard error, naming
/// the op, the input shapes, the largest absolute and relative errors, the element, and the
/// op's position on the innermost active tape.
package enum CrossCheck {
    package struct Disagreement: Sendable, CustomStringConvertible {
        package let op: String
        package let shapes: [[Int]]
        package let absoluteError: Double
        package let relativeError: Double
        package let element: Int
        package let tapePosition: Int?
        package var description: String {
            "TAPECL_CROSSCHECK: \(op) on \(shapes.map(Shape.describe).joined(separator: " and ")) disagrees "
                + "with the host: max abs error \(absoluteError), max rel error \(relativeError) (element \(element))"
                + (tapePosition.map { ", tape entry \($0)" } ?? ", not recorded")
        }
    }

    private static let first = Mutex<Disagreement?>(nil)
    private struct Tally {
        var ops = 0
        var worst = 0.0
        var worstOp = ""
    }
    private static let tally = Mutex(Tally())

    /// Says once that the cross-check is on, and arranges the summary at exit: how many ops were
    /// checked and the worst relative error.
    package static let announce: Void = {
        printError("TAPECL_CROSSCHECK=1: every op on an OpenCL device also runs on the host and is compared")
        atexit {
            let t = CrossCheck.tally.withLock { $0 }
            let worst = t.ops == 0 ? "" : String(format: ", worst relative error %.2e (%@)", t.worst, t.worstOp)
            printError("TAPECL_CROSSCHECK: \(t.ops) device ops checked against the host\(worst)")
        }
    }()
    /// The first disagreement of this process, if any.
    package static var firstDisagreement: Disagreement? { first.withLock { $0 } }

    /// Reruns `op` on the host and compares; returns the disagreement (reporting the first one).
    @discardableResult
    package static func compare(
        _ op: Op, _ inputs: [Tensor], _ parameters: Parameters, _ result: Tensor
    ) throws -> Disagreement? {
        try Inputs.with(inputs) { try compare(op, $0, parameters, result) }
    }

    @discardableResult
    static func compare(_ op: Op, _ inputs: Inputs, _ parameters: Parameters, _ result: Tensor) throws -> Disagreement?
    {
        let host = try op.execute(try inputs.map { try $0.to(.host, differentiable: false) }, parameters)
        let (a, b) = (try result.readScalars(as: Double.self), try host.readScalars(as: Double.self))
        let tolerance = op.tolerance.bounds(result.dtype).forward
        let worst = Op.error(a, b)
        tally.withLock { t in
            t.ops += 1
            if worst.rel > t.worst || t.worstOp.isEmpty {
                t.worst = max(t.worst, worst.rel)
                t.worstOp = op.name
            }
        }
        guard worst.rel > tolerance else { return nil }
        let d = Disagreement(
            op: op.name, shapes: inputs.map(\.shape), absoluteError: worst.abs, relativeError: worst.rel,
            element: worst.at, tapePosition: Recorder.active.tapes.last.map { $0.entries.count })
        let isFirst = first.withLock { current in
            guard current == nil else { return false }
            current = d
            return true
        }
        if isFirst { printError(d.description) }
        return d
    }
}
