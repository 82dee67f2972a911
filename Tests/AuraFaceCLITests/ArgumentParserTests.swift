import Testing

@testable import AuraFaceCLI

@Suite("ArgumentParser")
struct ArgumentParserTests {
    static let spec = CommandSpec(
        name: "embed",
        summary: "Test command.",
        usage: ["--model FILE IMAGE..."],
        discussion: "",
        positionals: [
            PositionalSpec(name: "FIRST", help: "First argument."),
            PositionalSpec(name: "REST", help: "More arguments.", repeats: true, optional: true),
        ],
        options: [
            .value("model", "FILE", "Weights to load."),
            .value("threads", "N", "Threads."),
            .flag("raw", "Raw output."),
            .flag("verbose", "Talk more."),
        ])

    static let fixedSpec = CommandSpec(
        name: "convert", summary: "Test command.", usage: ["IN OUT"], discussion: "",
        positionals: [
            PositionalSpec(name: "IN", help: "Input."), PositionalSpec(name: "OUT", help: "Output."),
        ],
        options: [])

    @Test func sortsFlagsValuesAndPositionals() throws {
        let parsed = try Self.spec.parse(["a.png", "--model", "m.safetensors", "--raw", "b.png", "--threads=4"])

        #expect(parsed.positionals == ["a.png", "b.png"])
        #expect(parsed.value("model") == "m.safetensors")
        #expect(parsed.value("threads") == "4")
        #expect(parsed.flag("raw"))
        #expect(!parsed.flag("verbose"))
        #expect(!parsed.helpRequested)
    }

    @Test func equalsFormKeepsTextAfterFirstEquals() throws {
        let parsed = try Self.spec.parse(["--model=dir=x/m.safetensors", "a"])

        #expect(parsed.value("model") == "dir=x/m.safetensors")
    }

    @Test func valueMayStartWithSingleDash() throws {
        let parsed = try Self.spec.parse(["--threads", "-1", "a"])

        #expect(parsed.value("threads") == "-1")
    }

    @Test func doubleDashEndsOptions() throws {
        let parsed = try Self.spec.parse(["--raw", "--", "--model", "-h", "-"])

        #expect(parsed.positionals == ["--model", "-h", "-"])
        #expect(parsed.flag("raw"))
        #expect(parsed.value("model") == nil)
    }

    @Test func helpSkipsPositionalChecks() throws {
        for help in ["--help", "-h"] {
            let parsed = try Self.fixedSpec.parse([help])
            #expect(parsed.helpRequested, "\(help)")
        }
    }

    @Test func unknownOptionIsRejected() {
        #expect(throws: UsageError("unknown option '--modle' for 'auraface embed'; see 'auraface embed --help'")) {
            _ = try Self.spec.parse(["--modle", "m", "a"])
        }
        #expect(throws: UsageError("unknown option '--bogus' for 'auraface embed'; see 'auraface embed --help'")) {
            _ = try Self.spec.parse(["a", "--bogus=1"])
        }
    }

    @Test func singleDashOptionIsRejected() {
        let error = #expect(throws: UsageError.self) {
            _ = try Self.spec.parse(["-m", "x", "a"])
        }

        #expect(error?.message.contains("'-m'") == true)
        #expect(error?.message.contains("two dashes") == true)
    }

    @Test func missingValueIsRejected() {
        #expect(throws: UsageError("option --model requires a value FILE")) {
            _ = try Self.spec.parse(["a", "--model"])
        }
        // The next word is another option, so it is not taken as the value.
        #expect(throws: UsageError("option --model requires a value FILE")) {
            _ = try Self.spec.parse(["--model", "--raw", "a"])
        }
        #expect(throws: UsageError("option --model requires a value FILE, found an empty value")) {
            _ = try Self.spec.parse(["--model=", "a"])
        }
    }

    @Test func flagWithValueIsRejected() {
        #expect(throws: UsageError("option --raw is a flag and takes no value")) {
            _ = try Self.spec.parse(["--raw=yes", "a"])
        }
    }

    @Test func repeatedOptionIsRejected() {
        #expect(throws: UsageError("option --model is given more than once")) {
            _ = try Self.spec.parse(["--model", "a", "--model=b", "x"])
        }
        #expect(throws: UsageError("option --raw is given more than once")) {
            _ = try Self.spec.parse(["--raw", "x", "--raw"])
        }
    }

    @Test func missingPositionalIsRejected() {
        #expect(throws: UsageError("missing argument IN OUT for 'auraface convert'; see 'auraface convert --help'")) {
            _ = try Self.fixedSpec.parse([])
        }
        #expect(throws: UsageError("missing argument OUT for 'auraface convert'; see 'auraface convert --help'")) {
            _ = try Self.fixedSpec.parse(["in.onnx"])
        }
        #expect(throws: UsageError("missing argument FIRST for 'auraface embed'; see 'auraface embed --help'")) {
            _ = try Self.spec.parse(["--raw"])
        }
    }

    @Test func extraPositionalIsRejected() {
        #expect(throws: UsageError("unexpected argument 'c' for 'auraface convert', which takes IN OUT")) {
            _ = try Self.fixedSpec.parse(["a", "b", "c"])
        }
    }

    @Test func repeatingPositionalTakesAll() throws {
        let parsed = try Self.spec.parse(["a", "b", "c", "d"])

        #expect(parsed.positionals == ["a", "b", "c", "d"])
    }

    @Test func helpTextListsEveryOption() {
        let text = Self.spec.helpText()

        #expect(text.hasPrefix("Usage: auraface embed --model FILE IMAGE...\n"))
        for line in ["--model FILE", "--threads N", "--raw", "--verbose", "--help", "FIRST", "REST..."] {
            #expect(text.contains("  \(line) "), "\(line)")
        }
        #expect(text.contains("Weights to load."))
    }

    @Test func integerValueChecksRange() throws {
        #expect(try integerValue("8", option: "threads", range: 1...64) == 8)
        for text in ["0", "65", "two", "", "1.5"] {
            #expect(
                throws: UsageError(
                    "invalid value '\(text)' for --threads, expected a whole number from 1 to 64"), "\(text)"
            ) {
                _ = try integerValue(text, option: "threads", range: 1...64)
            }
        }
    }
}
