// The auraface command line: subcommand dispatch, exit codes and error reporting.

import AuraFace
import Foundation

/// The output streams of a command: results go to standard output, diagnostics to standard
/// error.
///
/// A failed write to standard output throws and ends the command with exit status 1, since its
/// result is lost. A failed write to standard error is dropped: there is nowhere left to report it.
public struct Console {
    public var writeOutput: (String) throws -> Void
    public var writeError: (String) -> Void
    /// True when standard error is a terminal, where progress bars are drawn.
    public var errorIsTerminal = false

    public init(writeOutput: @escaping (String) throws -> Void, writeError: @escaping (String) -> Void) {
        self.writeOutput = writeOutput
        self.writeError = writeError
    }

    /// Creates a console that writes to the process's standard output and standard error,
    /// unbuffered.
    public static func standardStreams() -> Console {
        var console = Console(
            writeOutput: { text in
                do {
                    try FileHandle.standardOutput.write(contentsOf: Data(text.utf8))
                } catch {
                    throw StandardOutputError(underlying: error)
                }
            },
            writeError: { try? FileHandle.standardError.write(contentsOf: Data($0.utf8)) })
        console.errorIsTerminal = isatty(STDERR_FILENO) != 0
        return console
    }

    /// Writes a line to standard output.
    func print(_ line: String) throws {
        try writeOutput(line + "\n")
    }

    /// Writes a progress or detail line to standard error, prefixed with the program name.
    func note(_ line: String) {
        writeError("auraface: \(line)\n")
    }
}

/// The process exit statuses of auraface.
public enum ExitStatus {
    public static let success: Int32 = 0
    /// A runtime failure: a file could not be read or written, the model failed to load.
    public static let failure: Int32 = 1
    /// The command line itself is wrong.
    public static let usage: Int32 = 2
}

/// A failure while a command runs, reported as one line on standard error with exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

/// A failed write to standard output, such as a full disk behind a redirection or a closed
/// descriptor.
struct StandardOutputError: Error, CustomStringConvertible {
    var underlying: any Error

    var description: String {
        "failed to write to standard output: \(describeFileError(underlying))"
    }
}

/// Ends a command with `status` and no further message, for commands whose exit status is
/// part of their result, such as `diff`. The command writes its own output first.
struct CommandExit: Error {
    var status: Int32
}

/// One subcommand: its specification and the code that runs it.
struct Command: Sendable {
    var spec: CommandSpec
    var run: @Sendable (ParsedArguments, Console) throws -> Void
}

/// The entry point of the `auraface` program.
public enum AuraFaceCommandLine {
    /// The program version printed by `--version`.
    public static let version = "0.1.0"

    static let commands: [Command] = [
        ConvertCommand.command, InspectCommand.command, EmbedCommand.command,
        CompareCommand.command, EvalCommand.command, TraceCommand.command, DiffCommand.command,
    ]

    /// Runs one command line and returns the process exit status.
    ///
    /// - Parameter arguments: the words after the program name.
    /// - Returns: 0 on success, 1 when the command failed at run time, 2 for a usage error.
    ///   Every error is written as one line, `auraface: error: ...`, to `console.writeError`.
    public static func run(_ arguments: [String], console: Console) -> Int32 {
        let known = commands.map(\.spec.name).joined(separator: ", ")
        guard let first = arguments.first else {
            return usageError(
                UsageError("missing command, expected one of \(known); see 'auraface --help'"),
                console: console)
        }
        switch first {
        case "--help", "-h", "help":
            if first == "help", arguments.count > 1 {
                guard let command = commands.first(where: { $0.spec.name == arguments[1] }) else {
                    return usageError(
                        UsageError("unknown command '\(arguments[1])', expected one of \(known)"),
                        console: console)
                }
                return writeHelp(command.spec.helpText(), console: console)
            }
            return writeHelp(topLevelHelp(), console: console)
        case "--version":
            return writeHelp(
                "auraface \(version) (weight format \(WeightFileMetadata.formatName) "
                    + "version \(WeightFileMetadata.formatVersion))\n", console: console)
        default:
            break
        }
        guard let command = commands.first(where: { $0.spec.name == first }) else {
            let what = first.hasPrefix("-") ? "unknown option '\(first)'" : "unknown command '\(first)'"
            return usageError(
                UsageError("\(what); expected one of \(known), --help or --version"), console: console)
        }

        let parsed: ParsedArguments
        do {
            parsed = try command.spec.parse(Array(arguments.dropFirst()))
        } catch {
            return usageError(error, console: console)
        }
        if parsed.helpRequested {
            return writeHelp(command.spec.helpText(), console: console)
        }
        do {
            try command.run(parsed, console)
            return ExitStatus.success
        } catch let error as UsageError {
            return usageError(error, console: console)
        } catch let exit as CommandExit {
            return exit.status
        } catch {
            console.writeError("auraface: error: \(oneLine(error))\n")
            return ExitStatus.failure
        }
    }

    /// Writes help or version text, failing with status 1 when standard output cannot take it.
    private static func writeHelp(_ text: String, console: Console) -> Int32 {
        do {
            try console.writeOutput(text)
            return ExitStatus.success
        } catch {
            console.writeError("auraface: error: \(oneLine(error))\n")
            return ExitStatus.failure
        }
    }

    private static func usageError(_ error: UsageError, console: Console) -> Int32 {
        console.writeError("auraface: error: \(oneLine(error))\n")
        return ExitStatus.usage
    }

    /// Renders the error's description with line breaks folded, so every error is one line.
    ///
    /// Messages quote names read from the input files (ONNX node and tensor names, safetensors
    /// keys), which may hold any bytes. Other control characters, such as ESC or the ASCII
    /// separators 0x1C-0x1F, are written as `\u{1B}` so a file cannot send terminal escape
    /// sequences or split the line for tools that treat them as breaks.
    static func oneLine(_ error: any Error) -> String {
        let text = String(describing: error)
        var line = ""
        for scalar in text.split(whereSeparator: \.isNewline).joined(separator: " ").unicodeScalars {
            if scalar.properties.generalCategory == .control {
                line += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            } else {
                line.unicodeScalars.append(scalar)
            }
        }
        return line
    }

    static func topLevelHelp() -> String {
        let width = (commands.map(\.spec.name.count).max() ?? 0) + 2
        var lines = [
            "Usage: auraface <command> [options] [arguments]",
            "",
            "Runs an ArcFace IResNet face embedder such as AuraFace (glintr100) on the CPU from",
            "weights converted out of its ONNX file.",
            "",
            "Commands:",
        ]
        for command in commands {
            lines.append(
                "  " + command.spec.name.padding(toLength: width, withPad: " ", startingAt: 0)
                    + command.spec.summary)
        }
        lines += [
            "",
            "Options:",
            "  --help     Print this help and exit.",
            "  --version  Print the program version and exit.",
            "",
            "Run 'auraface <command> --help' for a command's arguments and options.",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
