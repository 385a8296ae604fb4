/// The command line as ArgumentParser should read it, so that ordinary maths and negative
/// numbers work as written:
///
/// - A value-taking option followed by a word that starts with `-` takes it as its value:
///   `--order -1` becomes `--order=-1` (which the command then rejects with its own message), and
///   `--at` `-x=1` is read as a binding rather than a flag.
/// - `tapecl grad`'s expression may start with a minus: `grad "-(tanh(x))" --at x=1` and
///   `grad -- "-x" --at x=3` both work. Any word after `grad` that is not one of its options is
///   the expression; `--` marks the next word as the expression whatever it looks like. The
///   expression is moved behind a `--` of its own, after the options.
enum Arguments {
    /// Options that take a value, across every subcommand.
    static let valued: Set<String> = [
        "--at", "--order", "--device", "--seed", "--epochs", "--batch-size", "--learning-rate", "--optimizer",
        "--hidden",
    ]
    /// Flags of `tapecl grad` (everything else starting with `-` there is maths).
    static let gradFlags: Set<String> = ["--json", "-h", "--help"]

    static func normalize(_ arguments: [String]) -> [String] {
        var joined: [String] = []
        var i = 0
        while i < arguments.count {
            let word = arguments[i]
            if valued.contains(word), i + 1 < arguments.count, arguments[i + 1].hasPrefix("-"), arguments[i + 1] != "--"
            {
                joined.append(word + "=" + arguments[i + 1])
                i += 2
            } else {
                joined.append(word)
                i += 1
            }
        }
        guard joined.first == "grad" else { return joined }
        return ["grad"] + gradArguments(Array(joined.dropFirst()))
    }

    /// `grad`'s words with its options first and the expression (one word, or none) after `--`.
    static func gradArguments(_ words: [String]) -> [String] {
        var options: [String] = []
        var positional: [String] = []
        var i = 0
        while i < words.count {
            let word = words[i]
            let name = String(word.split(separator: "=", maxSplits: 1).first ?? "")
            if word == "--", i + 1 < words.count {
                positional.append(words[i + 1])
                i += 2
            } else if valued.contains(word) {
                options.append(word)
                if i + 1 < words.count { options.append(words[i + 1]) }
                i += 2
            } else if (valued.contains(name) && word.contains("=")) || gradFlags.contains(word) {
                options.append(word)
                i += 1
            } else if word.hasPrefix("--") && word.count > 2 && word.dropFirst(2).first!.isLetter {
                options.append(word)  // an unknown option: ArgumentParser names it
                i += 1
            } else {
                positional.append(word)
                i += 1
            }
        }
        return options + (positional.isEmpty ? [] : ["--"] + positional)
    }
}
