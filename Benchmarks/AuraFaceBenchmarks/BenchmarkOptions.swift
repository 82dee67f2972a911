// Command-line options of auraface-bench, parsed by hand because the package takes no
// dependencies from outside the toolchain.

import AuraFace
import Foundation

/// The settings of one benchmark process.
struct BenchmarkOptions {
    var modelPath = ""
    var batchSizes = [1, 8]
    var threadCounts = [1, 2]
    /// Timed forward passes per configuration.
    var runs = 10
    /// Untimed forward passes before the timed ones, per configuration.
    var warmup = 2
    /// Timed loads of the weight file. The model of the last load is the one benchmarked.
    var loadRuns = 3
    /// Time only the loads, run no forward pass.
    var loadOnly = false
    /// Check bitwise equality across batch composition and thread counts instead of timing.
    var verifyBits = false
    var jsonPath: String?
    /// Seed of the input tensor's generator.
    var seed: UInt64 = 20_261_204
    /// The method the engine uses for its 3x3 stride-1 convolutions.
    var convolution = ConvolutionAlgorithm.winograd

    /// The largest batch size accepted. A batch of 1024 full-size faces needs about 150 MB of
    /// input and a few GB of activations; larger values only fail to allocate.
    static let maxBatchSize = 1024
    /// The largest thread count accepted, the same limit as the `auraface` CLI's `--threads`.
    static let maxThreads = 1024

    static let usage = """
        usage: auraface-bench --model FILE.safetensors [options]

        Times loading a converted weight file and AuraFaceModel.rawEmbeddings on a deterministic
        random input, then prints a table and optionally writes every figure as JSON.

        options:
          --model FILE          the weight file written by `auraface convert` (required)
          --batch-sizes LIST    comma-separated batch sizes, each 1 to 1024 (default 1,8)
          --threads LIST        comma-separated model thread counts, each 1 to 1024
                                (default 1,2)
          --runs N              timed forward passes per configuration (default 10)
          --warmup N            untimed forward passes before them (default 2)
          --load-runs N         timed loads of the weight file (default 3)
          --load-only           time the loads and run no forward pass
          --verify-bits         time nothing: check that the batch [A, B, A, C] gives each
                                face's single-image embedding bit for bit, with every
                                --threads value, and exit with status 1 if not
          --seed N              seed of the random input (default 20261204)
          --convolution NAME    3x3 stride-1 convolutions as winograd or plain
                                (im2col and GEMM) (default winograd)
          --json FILE           also write all figures to FILE as JSON
          -h, --help            print this help

        Peak RSS never goes down within a process, so to measure the peak of one
        configuration, run a process with one batch size and one thread count.
        """

    /// Parses `arguments` (without the program name).
    static func parse(_ arguments: [String]) throws(UsageError) -> BenchmarkOptions {
        var options = BenchmarkOptions()
        var index = 0

        func value(for name: String) throws(UsageError) -> String {
            index += 1
            guard index < arguments.count else {
                throw UsageError("option \(name) requires a value")
            }
            return arguments[index]
        }

        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--model":
                options.modelPath = try value(for: argument)
            case "--batch-sizes":
                options.batchSizes = try positiveIntegers(
                    try value(for: argument), option: argument, maximum: maxBatchSize)
            case "--threads":
                options.threadCounts = try positiveIntegers(
                    try value(for: argument), option: argument, maximum: maxThreads)
            case "--runs":
                options.runs = try positiveInteger(try value(for: argument), option: argument)
            case "--warmup":
                options.warmup = try integer(try value(for: argument), option: argument, minimum: 0)
            case "--load-runs":
                options.loadRuns = try positiveInteger(try value(for: argument), option: argument)
            case "--load-only":
                options.loadOnly = true
            case "--verify-bits":
                options.verifyBits = true
            case "--seed":
                let text = try value(for: argument)
                guard let seed = UInt64(text) else {
                    throw UsageError("invalid value '\(text)' for --seed, expected an integer from 0 to \(UInt64.max)")
                }
                options.seed = seed
            case "--convolution":
                let text = try value(for: argument)
                guard let convolution = ConvolutionAlgorithm(rawValue: text) else {
                    throw UsageError("invalid value '\(text)' for --convolution, expected winograd or plain")
                }
                options.convolution = convolution
            case "--json":
                options.jsonPath = try value(for: argument)
            case "-h", "--help":
                throw UsageError(helpRequested: true)
            default:
                throw UsageError("unknown argument '\(argument)'")
            }
            index += 1
        }
        guard !options.modelPath.isEmpty else {
            throw UsageError("missing --model FILE.safetensors")
        }
        return options
    }

    private static func integer(_ text: String, option: String, minimum: Int) throws(UsageError) -> Int {
        guard let value = Int(text), value >= minimum else {
            throw UsageError("invalid value '\(text)' for \(option), expected an integer >= \(minimum)")
        }
        return value
    }

    private static func positiveInteger(_ text: String, option: String) throws(UsageError) -> Int {
        try integer(text, option: option, minimum: 1)
    }

    private static func positiveIntegers(
        _ text: String, option: String, maximum: Int
    ) throws(UsageError) -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        var values: [Int] = []
        for part in parts {
            let value = try positiveInteger(String(part), option: option)
            guard value <= maximum else {
                throw UsageError("invalid value '\(part)' for \(option), expected an integer from 1 to \(maximum)")
            }
            values.append(value)
        }
        return values
    }
}

/// A command line that auraface-bench cannot run, or a request for help.
struct UsageError: Error, CustomStringConvertible {
    var message: String
    var helpRequested = false

    init(_ message: String) {
        self.message = message
    }

    init(helpRequested: Bool) {
        self.message = ""
        self.helpRequested = helpRequested
    }

    var description: String { message }
}
