// The argument parser of the auraface command line: long options only, in the forms
// `--name value` and `--name=value`, boolean flags, positional arguments, and `--` to end the
// options. Outside packages are not available to this project, so it is written here.

/// An option a subcommand accepts.
public struct OptionSpec: Sendable {
    /// The name without the leading dashes: `model` for `--model`.
    public var name: String
    /// The placeholder in help text, such as `FILE` or `N`; nil for a boolean flag.
    public var valueName: String?
    /// The help text: what the option sets, and in which unit.
    public var help: String

    /// Creates an option that takes a value.
    public static func value(_ name: String, _ valueName: String, _ help: String) -> OptionSpec {
        OptionSpec(name: name, valueName: valueName, help: help)
    }

    /// Creates a boolean flag.
    public static func flag(_ name: String, _ help: String) -> OptionSpec {
        OptionSpec(name: name, valueName: nil, help: help)
    }
}

/// A positional argument a subcommand accepts.
public struct PositionalSpec: Sendable {
    /// The placeholder in usage and help text, such as `MODEL.onnx`.
    public var name: String
    public var help: String
    /// True when the argument takes any number of values (only the last positional may).
    public var repeats = false
    /// True when the argument may be missing.
    public var optional = false
}

/// A subcommand's name, help text and accepted arguments.
public struct CommandSpec: Sendable {
    public var name: String
    /// One line for the command list of `auraface --help`.
    public var summary: String
    /// Usage lines, without the leading `auraface NAME`.
    public var usage: [String]
    /// Paragraphs printed after the usage lines in `--help`.
    public var discussion: String
    public var positionals: [PositionalSpec]
    public var options: [OptionSpec]

    /// The options every command accepts in addition to its own.
    static let helpOption = OptionSpec.flag("help", "Print this help and exit.")

    func option(named name: String) -> OptionSpec? {
        if name == "help" {
            return Self.helpOption
        }
        return options.first { $0.name == name }
    }
}

/// The arguments of one command line, sorted by kind.
public struct ParsedArguments: Sendable, Equatable {
    /// The boolean flags that were given.
    public var flags: Set<String> = []
    /// The value of each value option that was given.
    public var values: [String: String] = [:]
    /// Positional arguments in order.
    public var positionals: [String] = []

    /// True when `--help` or `-h` was given; the other arguments are then not checked.
    public var helpRequested: Bool { flags.contains("help") }

    public func flag(_ name: String) -> Bool {
        flags.contains(name)
    }

    public func value(_ name: String) -> String? {
        values[name]
    }
}

/// A command line that does not fit its command's specification. The message is one line and
/// names the argument at fault.
public struct UsageError: Error, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

extension CommandSpec {
    /// Sorts `arguments` (the words after the command name) into flags, option values and
    /// positionals, and checks them against this specification.
    ///
    /// `--help` or `-h` anywhere before `--` stops the checks, so `auraface embed --help` works
    /// without the required arguments. A value option takes the next word, or the text after
    /// `=`. A next word that starts with `--` is not taken as a value, so a forgotten value is
    /// reported instead of swallowing the following option.
    ///
    /// - Throws: `UsageError` for an unknown option, a missing value, a value given to a flag,
    ///   an option given twice, or too few or too many positionals.
    public func parse(_ arguments: [String]) throws(UsageError) -> ParsedArguments {
        var parsed = ParsedArguments()
        var index = 0
        var optionsEnded = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if optionsEnded || argument == "-" || !argument.hasPrefix("-") {
                parsed.positionals.append(argument)
                continue
            }
            if argument == "--" {
                optionsEnded = true
                continue
            }
            if argument == "-h" {
                parsed.flags.insert("help")
                continue
            }
            guard argument.hasPrefix("--") else {
                throw UsageError(
                    "unknown option '\(argument)' for 'auraface \(name)': options are spelled "
                        + "with two dashes; see 'auraface \(name) --help'")
            }

            let body = argument.dropFirst(2)
            let optionName: String
            var inlineValue: String?
            if let equals = body.firstIndex(of: "=") {
                optionName = String(body[..<equals])
                inlineValue = String(body[body.index(after: equals)...])
            } else {
                optionName = String(body)
            }
            guard let option = option(named: optionName) else {
                throw UsageError(
                    "unknown option '--\(optionName)' for 'auraface \(name)'; "
                        + "see 'auraface \(name) --help'")
            }
            guard !parsed.flags.contains(optionName), parsed.values[optionName] == nil else {
                throw UsageError("option --\(optionName) is given more than once")
            }

            guard let valueName = option.valueName else {
                if inlineValue != nil {
                    throw UsageError("option --\(optionName) is a flag and takes no value")
                }
                parsed.flags.insert(optionName)
                continue
            }
            if let inlineValue {
                guard !inlineValue.isEmpty else {
                    throw UsageError("option --\(optionName) requires a value \(valueName), found an empty value")
                }
                parsed.values[optionName] = inlineValue
                continue
            }
            guard index < arguments.count, !arguments[index].hasPrefix("--") else {
                throw UsageError("option --\(optionName) requires a value \(valueName)")
            }
            guard !arguments[index].isEmpty else {
                throw UsageError("option --\(optionName) requires a value \(valueName), found an empty value")
            }
            parsed.values[optionName] = arguments[index]
            index += 1
        }

        if parsed.helpRequested {
            return parsed
        }
        try checkPositionals(parsed.positionals)
        return parsed
    }

    private func checkPositionals(_ given: [String]) throws(UsageError) {
        // An empty word is always a slip, such as an unset shell variable. As a path it would
        // name the current folder.
        if let empty = given.firstIndex(of: "") {
            let name = positionals.isEmpty ? "argument" : positionals[min(empty, positionals.count - 1)].name
            throw UsageError(
                "argument \(empty + 1) for 'auraface \(self.name)' is empty, expected \(name)")
        }
        let required = positionals.filter { !$0.optional }
        if given.count < required.count {
            let missing = required[given.count...].map(\.name).joined(separator: " ")
            throw UsageError(
                "missing argument \(missing) for 'auraface \(name)'; see 'auraface \(name) --help'")
        }
        let repeats = positionals.last?.repeats ?? false
        if !repeats && given.count > positionals.count {
            throw UsageError(
                "unexpected argument '\(given[positionals.count])' for 'auraface \(name)', which takes "
                    + (positionals.isEmpty ? "no arguments" : positionals.map(\.name).joined(separator: " ")))
        }
    }

    /// Renders the `--help` text: usage, discussion, arguments and options with what each sets.
    public func helpText() -> String {
        var lines: [String] = []
        for (index, usageLine) in usage.enumerated() {
            lines.append((index == 0 ? "Usage: " : "       ") + "auraface \(name) \(usageLine)")
        }
        lines.append("")
        lines.append(summary)
        for paragraph in discussion.components(separatedBy: "\n\n") where !paragraph.isEmpty {
            lines.append("")
            lines += wrapped(paragraph, width: Self.helpWidth)
        }

        let allOptions = options + [Self.helpOption]
        let labels =
            positionals.map { $0.name + ($0.repeats ? "..." : "") }
            + allOptions.map { option in
                "--\(option.name)" + (option.valueName.map { " \($0)" } ?? "")
            }
        let labelWidth = (labels.map(\.count).max() ?? 0) + 2
        func row(_ label: String, _ help: String) -> String {
            let indent = String(repeating: " ", count: 2 + labelWidth)
            let helpLines = wrapped(help, width: max(40, Self.helpWidth - indent.count))
            return "  " + label.padding(toLength: labelWidth, withPad: " ", startingAt: 0)
                + helpLines.joined(separator: "\n" + indent)
        }
        if !positionals.isEmpty {
            lines.append("")
            lines.append("Arguments:")
            for (positional, label) in zip(positionals, labels) {
                lines.append(row(label, positional.help))
            }
        }
        lines.append("")
        lines.append("Options:")
        for (option, label) in zip(allOptions, labels.dropFirst(positionals.count)) {
            lines.append(row(label, option.help))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension CommandSpec {
    /// The column at which help text wraps.
    static let helpWidth = 90
}

/// Splits `text` into lines of at most `width` characters at spaces; a longer word gets a line
/// of its own.
func wrapped(_ text: String, width: Int) -> [String] {
    var lines: [String] = []
    var current = ""
    for word in text.split(separator: " ", omittingEmptySubsequences: true) {
        if current.isEmpty {
            current = String(word)
        } else if current.count + 1 + word.count <= width {
            current += " " + word
        } else {
            lines.append(current)
            current = String(word)
        }
    }
    if !current.isEmpty || lines.isEmpty {
        lines.append(current)
    }
    return lines
}

/// Parses a whole-number option value within `range`.
///
/// - Throws: `UsageError` naming the option, the text found and the range expected.
func integerValue(
    _ text: String, option: String, range: ClosedRange<Int>
) throws(UsageError) -> Int {
    guard let number = Int(text), range.contains(number) else {
        throw UsageError(
            "invalid value '\(text)' for --\(option), expected a whole number from "
                + "\(range.lowerBound) to \(range.upperBound)")
    }
    return number
}
