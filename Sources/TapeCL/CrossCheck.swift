import Synchronization

/// `TAPECL_CROSSCHECK=1`: every op on a device runs on the host as well, and the first
/// disagreement beyond ``OpCheck/tolerance(_:_:)`` is reported once on standard error, naming
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
            "TAPECL_CROSSCHECK: \(op) on \(shapes.map(Shape.describe).joined(separator: " and ")) disagrees with the host: max abs error \(absoluteError), max rel error \(relativeError) (element \(element))"
                + (tapePosition.map { ", tape entry \($0)" } ?? ", not recorded")
        }
    }

    private static let first = Mutex<Disagreement?>(nil)
    /// The first disagreement of this process, if any.
    package static var firstDisagreement: Disagreement? { first.withLock { $0 } }

    /// Reruns `op` on the host and compares; returns the disagreement (reporting the first one).
    @discardableResult
    package static func compare(_ op: Op, _ inputs: [Tensor], _ attributes: Attributes, _ result: Tensor) throws -> Disagreement? {
        let host = try op.execute(try inputs.map { try $0.to(.host, differentiable: false) }, attributes)
        let (a, b) = (try result.readScalars(as: Double.self), try host.readScalars(as: Double.self))
        let tolerance = OpCheck.tolerance(op.name, result.dtype).forward
        let worst = OpCheck.error(a, b)
        guard worst.rel > tolerance else { return nil }
        let d = Disagreement(op: op.name, shapes: inputs.map(\.shape), absoluteError: worst.abs, relativeError: worst.rel,
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
