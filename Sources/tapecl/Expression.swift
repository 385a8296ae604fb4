import TapeCL

/// A parse or evaluation error at a 1-based column of the expression (or of a binding).
struct ExpressionError: Error, CustomStringConvertible {
    let message: String
    let column: Int?
    let context: String
    var description: String { column.map { "\(context) column \($0): \(message)" } ?? "\(context): \(message)" }
}

/// `tapecl grad`'s language: numbers, names, `+ - * / ^ @`, unary minus, parentheses and calls
/// `sin cos tan exp log sqrt tanh sigmoid relu abs sum mean`.
///
///     expr  := term (("+" | "-") term)*
///     term  := unary (("*" | "/" | "@") unary)*
///     unary := "-" unary | power
///     power := atom ("^" unary)?          // right-associative, binds tighter than unary minus
///     atom  := number | name | name "(" expr ")" | "(" expr ")"
///
/// Compiled to postfix instructions and run on a stack, so no expression length can exhaust the
/// call stack (the parser's own recursion is bounded by ``maxDepth`` levels of nesting).
struct Expression {
    enum Instruction {
        case number(Double)
        case name(String)
        case call(String)  // unary function or "neg"
        case binary(Character)
    }
    var code: [(Instruction, column: Int)] = []

    static let functions: Set<String> = [
        "sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "sum", "mean",
    ]
    static let maxDepth = 256

    /// Every name the expression reads, with the column of its first use.
    var names: [(String, Int)] {
        var seen: [(String, Int)] = []
        for case (.name(let n), let c) in code where !seen.contains(where: { $0.0 == n }) { seen.append((n, c)) }
        return seen
    }

    /// Evaluates with `bindings`; every op goes through the throwing `Tensor.apply`, so shapes
    /// that do not fit give an error at the operator's column instead of stopping the program.
    func evaluate(_ bindings: [String: Tensor], on device: Device) throws -> Tensor {
        func fail(_ message: String, _ column: Int) -> ExpressionError {
            ExpressionError(message: message, column: column, context: "expression")
        }
        var stack: [Tensor] = []
        for (instruction, column) in code {
            switch instruction {
            case .number(let v):
                stack.append(Tensor(v, on: device))
            case .name(let n):
                guard let t = bindings[n] else { throw fail("'\(n)' is not bound; add --at \(n)=VALUE", column) }
                stack.append(t)
            case .call(let f):
                let x = stack.removeLast()
                do { stack.append(try Tensor.apply(f, [x])) } catch {
                    throw fail("\(f == "neg" ? "-" : f): \(error)", column)
                }
            case .binary(let op):
                let y = stack.removeLast()
                let x = stack.removeLast()
                let name = ["+": "add", "-": "sub", "*": "mul", "/": "div", "^": "pow", "@": "matmul"][op]!
                do { stack.append(try Tensor.apply(name, [x, y])) } catch { throw fail("'\(op)': \(error)", column) }
            }
        }
        return stack[0]
    }
}

/// A recursive-descent parser with one token of look-ahead, reporting columns.
struct Parser {
    enum Token: Equatable { case number(Double), name(String), symbol(Character), end }
    private var tokens: [(Token, Int)] = []
    private var index = 0
    private var depth = 0
    private let context: String

    init(_ text: String, context: String = "expression") throws {
        self.context = context
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            let column = i + 1
            if c.isWhitespace {
                i += 1
                continue
            }
            if c.isNumber || (c == "." && i + 1 < chars.count && chars[i + 1].isNumber) {
                var j = i
                while j < chars.count && (chars[j].isNumber || chars[j] == ".") { j += 1 }
                if j < chars.count && (chars[j] == "e" || chars[j] == "E") {
                    var k = j + 1
                    if k < chars.count && (chars[k] == "+" || chars[k] == "-") { k += 1 }
                    if k < chars.count && chars[k].isNumber {
                        j = k
                        while j < chars.count && chars[j].isNumber { j += 1 }
                    }
                }
                let literal = String(chars[i..<j])
                guard let v = Double(literal) else {
                    throw ExpressionError(message: "malformed number '\(literal)'", column: column, context: context)
                }
                tokens.append((.number(v), column))
                i = j
            } else if c.isLetter || c == "_" {
                var j = i
                while j < chars.count && (chars[j].isLetter || chars[j].isNumber || chars[j] == "_") { j += 1 }
                tokens.append((.name(String(chars[i..<j])), column))
                i = j
            } else if "+-*/^@(),[]".contains(c) {
                tokens.append((.symbol(c), column))
                i += 1
            } else {
                throw ExpressionError(message: "unexpected character '\(c)'", column: column, context: context)
            }
        }
        tokens.append((.end, chars.count + 1))
    }

    private var current: Token { tokens[index].0 }
    private var column: Int { tokens[index].1 }
    private func error(_ message: String, at column: Int? = nil) -> ExpressionError {
        ExpressionError(message: message, column: column ?? self.column, context: context)
    }
    private var describeCurrent: String {
        switch current {
        case .number(let v): "number \(v)"
        case .name(let n): "'\(n)'"
        case .symbol(let c): "'\(c)'"
        case .end: "the end"
        }
    }

    private var code: [(Expression.Instruction, column: Int)] = []

    mutating func parseExpression() throws -> Expression {
        guard current != .end else { throw error("the expression is empty") }
        try expr()
        guard current == .end else { throw error("unexpected \(describeCurrent)") }
        return Expression(code: code)
    }

    private mutating func nest<T>(_ body: (inout Parser) throws -> T) throws -> T {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Expression.maxDepth else {
            throw error("expression nests deeper than \(Expression.maxDepth) levels")
        }
        return try body(&self)
    }

    private mutating func expr() throws {
        try term()
        while case .symbol(let op) = current, op == "+" || op == "-" {
            let c = column
            index += 1
            try term()
            code.append((.binary(op), c))
        }
    }

    private mutating func term() throws {
        try unary()
        while case .symbol(let op) = current, op == "*" || op == "/" || op == "@" {
            let c = column
            index += 1
            try unary()
            code.append((.binary(op), c))
        }
    }

    private mutating func unary() throws {
        guard current == .symbol("-") else { return try power() }
        let c = column
        index += 1
        try nest { try $0.unary() }
        code.append((.call("neg"), c))
    }

    private mutating func power() throws {
        try atom()
        guard current == .symbol("^") else { return }
        let c = column
        index += 1
        try nest { try $0.unary() }
        code.append((.binary("^"), c))
    }

    private mutating func atom() throws {
        let c = column
        switch current {
        case .number(let v):
            index += 1
            code.append((.number(v), c))
        case .name(let n):
            index += 1
            guard current == .symbol("(") else { return code.append((.name(n), c)) }
            guard Expression.functions.contains(n) else {
                throw error(
                    "unknown function '\(n)' (known: \(Expression.functions.sorted().joined(separator: " ")))", at: c)
            }
            index += 1
            try nest { try $0.expr() }
            guard current == .symbol(")") else {
                throw error("expected ')' to close \(n)( at column \(c), found \(describeCurrent)")
            }
            index += 1
            code.append((.call(n), c))
        case .symbol("("):
            index += 1
            try nest { try $0.expr() }
            guard current == .symbol(")") else {
                throw error("expected ')' to close '(' at column \(c), found \(describeCurrent)")
            }
            index += 1
        default:
            throw error("expected a number, a name or '(' but found \(describeCurrent)")
        }
    }

    /// A binding value: a number or a nested list of numbers (`[[1, 2], [3, 4]]`), as (shape, values).
    mutating func parseLiteral() throws -> (shape: [Int], values: [Double]) {
        let v = try literal()
        guard current == .end else { throw error("unexpected \(describeCurrent) after the value") }
        return v
    }

    private mutating func literal() throws -> (shape: [Int], values: [Double]) {
        let c = column
        switch current {
        case .symbol("-"):
            index += 1
            guard case .number(let v) = current else { throw error("expected a number after '-'") }
            index += 1
            return ([], [-v])
        case .number(let v):
            index += 1
            return ([], [v])
        case .symbol("["):
            index += 1
            var items: [(shape: [Int], values: [Double])] = []
            if current != .symbol("]") {
                while true {
                    items.append(try nest { try $0.literal() })
                    if current == .symbol(",") {
                        index += 1
                        continue
                    }
                    break
                }
            }
            guard current == .symbol("]") else {
                throw error("expected ',' or ']' in the list opened at column \(c), found \(describeCurrent)")
            }
            index += 1
            guard let first = items.first else { throw error("empty list", at: c) }
            guard items.allSatisfy({ $0.shape == first.shape }) else {
                throw error(
                    "ragged list: its elements have shapes \(items.map { "\($0.shape)" }.joined(separator: ", "))",
                    at: c)
            }
            return ([items.count] + first.shape, items.flatMap(\.values))
        default:
            throw error("expected a number or '[' but found \(describeCurrent)")
        }
    }
}
