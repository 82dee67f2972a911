// Command-line options of auraface-soak, parsed by hand because the package takes no
// dependencies from outside the toolchain.

import AuraFace

/// The settings of one soak run.
struct SoakOptions {
    var modelPath = ""
    /// Embeddings to compute in the main loop, probe rows included.
    var count = 10_000
    /// Batch sizes cycle through 1...maxBatch.
    var maxBatch = 16
    /// The model's thread count, nil for the library's default (the CPUs this process may use).
    var threads: Int?
    /// Print a progress line each time this many more embeddings are done.
    var reportEvery = 500
    /// Embeddings excluded from the memory trend, nil for the default of `warmupEmbeddings`.
    var warmup: Int?
    /// Largest accepted RSS growth after warm-up, in KiB per 1000 embeddings.
    var maxSlopeKiBPer1000 = 256.0
    /// Seed of the synthetic images.
    var seed: UInt64 = 20_261_204
    var convolution = ConvolutionAlgorithm.winograd
    /// Accept probe embeddings that differ across batch sizes within a cosine of 0.99999.
    var allowBatchVariation = false

    /// Embeddings in one cycle of batch sizes 1...maxBatch.
    var cycleLength: Int { maxBatch * (maxBatch + 1) / 2 }

    /// The warm-up in force: the option's value, or a tenth of the run but at least one cycle
    /// of batch sizes, so that every batch size has run once before the trend starts.
    var warmupEmbeddings: Int { warmup ?? max(cycleLength, count / 10) }

    /// RSS samples that the trend will get: one at the end of each full cycle after the warm-up.
    var trendSampleCount: Int {
        let cycles = count / cycleLength
        let warmupCycles = warmupEmbeddings / cycleLength
        return max(0, cycles - warmupCycles)
    }

    /// The minimum number of RSS samples the trend is fitted to.
    static let minimumTrendSamples = 3

    static let usage = """
        usage: auraface-soak --model FILE.safetensors [options]

        Computes many embeddings with one loaded model and watches its memory. It first
        prints the peak RSS of loading, of one batch of 1 and of one batch of --max-batch.
        Then batch sizes cycle through 1, 2, ..., --max-batch. Every batch ends with a fixed
        probe image, and --count includes those rows. The probe's raw embedding must have
        the same bits in every batch of the same size and, unless --allow-batch-variation
        is given, in batches of every size. Every value must be finite.
        The first violation stops the run with exit status 1. At the end of each cycle the
        program samples VmRSS. After the warm-up it fits a least-squares line to those
        samples and exits with status 1 if RSS grows faster than --max-slope. The default
        limit, 256 KiB per 1000 embeddings, fails a leak that adds more than about 260 bytes
        of resident memory per embedding.

        options:
          --model FILE          the weight file written by `auraface convert` (required)
          --count N             embeddings to compute (default 10000)
          --max-batch N         largest batch size of the cycle (default 16)
          --threads N           threads per forward pass, the model's threadCount
                                (default: the CPUs this process may use)
          --report-every N      print RSS after every N embeddings (default 500)
          --warmup N            embeddings left out of the trend (default: a tenth of
                                --count, at least one cycle of batch sizes)
          --max-slope KIB       largest accepted RSS growth after warm-up, in KiB per
                                1000 embeddings (default 256)
          --seed N              seed of the synthetic images (default 20261204)
          --convolution NAME    3x3 stride-1 convolutions as winograd or plain
                                (im2col and GEMM) (default winograd)
          --allow-batch-variation
                                across batch sizes, accept a probe embedding with cosine
                                >= 0.99999 to its batch-1 result instead of the same bits
          -h, --help            print this help
        """

    /// Parses `arguments` (without the program name).
    static func parse(_ arguments: [String]) throws(UsageError) -> SoakOptions {
        var options = SoakOptions()
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
            case "--count":
                options.count = try integer(try value(for: argument), option: argument, minimum: 1)
            case "--max-batch":
                options.maxBatch = try integer(try value(for: argument), option: argument, minimum: 1)
            case "--threads":
                options.threads = try integer(try value(for: argument), option: argument, minimum: 1)
            case "--report-every":
                options.reportEvery = try integer(try value(for: argument), option: argument, minimum: 1)
            case "--warmup":
                options.warmup = try integer(try value(for: argument), option: argument, minimum: 0)
            case "--max-slope":
                let text = try value(for: argument)
                guard let slope = Double(text), slope.isFinite, slope >= 0 else {
                    throw UsageError("invalid value '\(text)' for --max-slope, expected a number >= 0 (KiB per 1000 embeddings)")
                }
                options.maxSlopeKiBPer1000 = slope
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
            case "--allow-batch-variation":
                options.allowBatchVariation = true
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
        guard options.trendSampleCount >= minimumTrendSamples else {
            throw UsageError(
                "--count \(options.count) with a warm-up of \(options.warmupEmbeddings) leaves "
                    + "\(options.trendSampleCount) RSS samples (one per cycle of \(options.cycleLength) embeddings), "
                    + "expected at least \(minimumTrendSamples): raise --count or lower --warmup")
        }
        return options
    }

    private static func integer(_ text: String, option: String, minimum: Int) throws(UsageError) -> Int {
        guard let value = Int(text), value >= minimum else {
            throw UsageError("invalid value '\(text)' for \(option), expected an integer >= \(minimum)")
        }
        return value
    }
}

/// A command line that auraface-soak cannot run, or a request for help.
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
