import ArgumentParser
import Foundation
import TapeCL

struct Grad: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Value, gradient (and Hessian) of an expression, by GradientTape.",
        discussion: """
            The language: numbers, names bound with --at, + - * / ^ (power), unary minus, parentheses, \
            @ (matrix product) and the functions sin cos tan exp log sqrt tanh sigmoid relu abs sum mean. \
            A non-scalar expression is summed before differentiating, as GradientTape does.

            Example: tapecl grad "(x+y)^2 + 2*x*y" --at x=2 --at y=-4
            """)

    @Argument(help: "The expression, e.g. \"(x+y)^2 + 2*x*y\" or \"sum(w @ v)\".")
    var expression: String

    @Option(
        name: .customLong("at"),
        help: ArgumentHelp("Bind a name: NAME=NUMBER or NAME=[[1,2],[3,4]] (repeatable).", valueName: "binding"))
    var bindings: [String] = []

    @Option(help: "1 for the gradient, 2 to add the Hessian.")
    var order = 1

    @OptionGroup var options: CommonOptions

    static let maxLength = 100_000

    func run() throws {
        try reportingErrors {
            guard order == 1 || order == 2 else { throw UserError("--order must be 1 or 2, not \(order)") }
            guard expression.count <= Self.maxLength else {
                throw UserError("the expression is \(expression.count) characters long; the limit is \(Self.maxLength)")
            }
            let device = try options.resolveDevice()
            var parser = try Parser(expression)
            let program = try parser.parseExpression()
            let bound = try parseBindings(on: device)
            let values = Dictionary(uniqueKeysWithValues: bound)
            for (name, column) in program.names where values[name] == nil {
                throw ExpressionError(
                    message: "'\(name)' is not bound; add --at \(name)=VALUE", column: column, context: "expression")
            }
            let names = bound.map(\.name)
            let sources = bound.map(\.value)
            let result = try differentiate(program, values, sources, on: device)
            if options.json { try JSON.print(json(result, names)) } else { print(text(result, names)) }
        }
    }

    struct Result {
        let value: Tensor
        let gradients: [Tensor]
        let hessian: [[Tensor]]?
    }

    /// The `--at` bindings, in command-line order.
    func parseBindings(on device: Device) throws -> [(name: String, value: Tensor)] {
        var values: [(name: String, value: Tensor)] = []
        for binding in bindings {
            guard let eq = binding.firstIndex(of: "=") else { throw UserError("--at \(binding): expected NAME=VALUE") }
            let name = binding[..<eq].trimmingCharacters(in: .whitespaces)
            guard let first = name.first, first.isLetter || first == "_",
                name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" })
            else {
                throw UserError(
                    "--at \(binding): '\(name)' is not a name (letters, digits and _, not starting with a digit)")
            }
            guard !Expression.functions.contains(name) else {
                throw UserError("--at \(binding): '\(name)' is a function name")
            }
            guard !values.contains(where: { $0.name == name }) else {
                throw UserError("--at \(binding): '\(name)' is bound twice")
            }
            let text = String(binding[binding.index(after: eq)...])
            do {
                var parser = try Parser(text, context: "--at \(name)=")
                let (shape, scalars) = try parser.parseLiteral()
                values.append((name, Tensor(shape: shape, scalars: scalars, on: device)))
            } catch let e as ExpressionError {
                throw ExpressionError(
                    message: e.message,
                    column: e.column.map { $0 + binding.distance(from: binding.startIndex, to: eq) + 1 },
                    context: "--at \(binding):")
            }
        }
        return values
    }

    func differentiate(
        _ program: Expression, _ values: [String: Tensor], _ sources: [Tensor], on device: Device
    ) throws -> Result {
        let outer = GradientTape(persistent: true)
        let inner = GradientTape()
        let (value, gradients) = try outer.record { () throws -> (Tensor, [Tensor?]) in
            if order == 2 { outer.watch(sources) } else { outer.reset() }
            inner.watch(sources)
            let value = try inner.record { try program.evaluate(values, on: device) }
            guard value.dtype.isFloatingPoint else { return (value, []) }
            return (value, try inner.gradient(of: value, wrt: sources, unconnected: .zero))
        }
        let grads = gradients.compactMap { $0 }
        guard order == 2 else { return Result(value: value, gradients: grads, hessian: nil) }
        let hessian = try grads.map { g in
            try sources.map { s in try outer.jacobian(of: g, wrt: s, unconnected: .zero)! }
        }
        return Result(value: value, gradients: grads, hessian: hessian)
    }

    func text(_ r: Result, _ names: [String]) -> String {
        var lines = ["f = \(Format.tensor(r.value))"]
        for (n, g) in zip(names, r.gradients) { lines.append("df/d\(n) = \(Format.tensor(g))") }
        if let h = r.hessian {
            for (i, a) in names.enumerated() {
                for (j, b) in names.enumerated() { lines.append("d2f/d\(a)d\(b) = \(Format.tensor(h[i][j]))") }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// `{"gradient": {NAME: ...}, "hessian": {NAME: {NAME: ...}}, "value": ...}`; `hessian` only with `--order 2`.
    struct Output: Encodable {
        let value: TensorJSON
        let gradient: [String: TensorJSON]
        let hessian: [String: [String: TensorJSON]]?
    }

    func json(_ r: Result, _ names: [String]) -> Output {
        let hessian = r.hessian.map { h in
            Dictionary(
                uniqueKeysWithValues: names.enumerated().map { i, a in
                    (a, Dictionary(uniqueKeysWithValues: names.enumerated().map { j, b in (b, TensorJSON(h[i][j])) }))
                })
        }
        return Output(
            value: TensorJSON(r.value),
            gradient: Dictionary(uniqueKeysWithValues: zip(names, r.gradients.map(TensorJSON.init))),
            hessian: hessian)
    }
}
