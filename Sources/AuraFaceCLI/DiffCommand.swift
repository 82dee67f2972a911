// `auraface diff`: two weight files compared tensor by tensor and key by key.

import AuraFace
import Foundation

enum DiffCommand {
    static let spec = CommandSpec(
        name: "diff",
        summary: "Compare two weight files tensor by tensor and their metadata key by key.",
        usage: ["[--all] A.safetensors B.safetensors"],
        discussion: """
            Reads both files as safetensors without loading a model, so files the loader \
            rejects (NaN weights, a missing tensor) can still be compared. Lists tensors only \
            in A, only in B, with different shapes, and common tensors whose values differ, \
            with the max absolute difference max|a - b| and the max relative difference \
            max|a - b| / max|b| over the tensor. Then lists the metadata keys only in A, only \
            in B or with different values. tensor_sha256 is compared as one value. Exit status: \
            0 when the files have the same tensors, bitwise, and the same metadata; 1 when \
            they differ; 2 when a file cannot be read or the command line is wrong.
            """,
        positionals: [
            PositionalSpec(name: "A.safetensors", help: "The first weight file."),
            PositionalSpec(name: "B.safetensors", help: "The second weight file, the reference for relative differences."),
        ],
        options: [.flag("all", "Also list common tensors that are bitwise equal.")])

    static let command = Command(spec: spec, run: run)

    /// The comparison of one tensor present in both files with the same shape.
    struct TensorComparison: Equatable {
        var name: String
        var shape: [Int]
        var bitwiseEqual: Bool
        /// max |a - b|, or NaN when one tensor has NaN where the other does not.
        var maxAbsoluteDifference: Double
        /// max |a - b| / max |b|; infinity when B is all zeros and A is not.
        var maxRelativeDifference: Double
    }

    /// Everything `diff` found.
    struct Report {
        var onlyInA: [String] = []
        var onlyInB: [String] = []
        var shapeDifferences: [(name: String, a: [Int], b: [Int])] = []
        var common: [TensorComparison] = []
        var metadataOnlyInA: [String] = []
        var metadataOnlyInB: [String] = []
        var metadataChanged: [(key: String, a: String, b: String)] = []

        var identical: Bool {
            onlyInA.isEmpty && onlyInB.isEmpty && shapeDifferences.isEmpty
                && common.allSatisfy(\.bitwiseEqual) && metadataOnlyInA.isEmpty
                && metadataOnlyInB.isEmpty && metadataChanged.isEmpty
        }
    }

    static func run(_ arguments: ParsedArguments, console: Console) throws {
        let paths = arguments.positionals
        var files: [SafeTensorsFile] = []
        for path in paths {
            do {
                files.append(try SafeTensorsFile(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                console.writeError("auraface: error: \(AuraFaceCommandLine.oneLine(error))\n")
                throw CommandExit(status: 2)
            }
        }
        let report = compare(files[0], files[1])
        for line in text(report, a: paths[0], b: paths[1], listAll: arguments.flag("all")) {
            try console.print(line)
        }
        if !report.identical {
            throw CommandExit(status: 1)
        }
    }

    static func compare(_ a: SafeTensorsFile, _ b: SafeTensorsFile) -> Report {
        var report = Report()
        let bNames = Set(b.entries.map(\.name))
        let aNames = Set(a.entries.map(\.name))
        report.onlyInA = a.entries.map(\.name).filter { !bNames.contains($0) }
        report.onlyInB = b.entries.map(\.name).filter { !aNames.contains($0) }
        for entryA in a.entries {
            guard let entryB = b.entry(named: entryA.name) else { continue }
            guard entryA.shape == entryB.shape else {
                report.shapeDifferences.append((entryA.name, entryA.shape, entryB.shape))
                continue
            }
            report.common.append(compareValues(name: entryA.name, shape: entryA.shape, a.floats(for: entryA), b.floats(for: entryB)))
        }

        for key in a.metadata.keys.sorted() {
            guard let valueB = b.metadata[key] else {
                report.metadataOnlyInA.append(key)
                continue
            }
            if a.metadata[key] != valueB {
                report.metadataChanged.append((key, a.metadata[key]!, valueB))
            }
        }
        report.metadataOnlyInB = b.metadata.keys.sorted().filter { a.metadata[$0] == nil }
        return report
    }

    static func compareValues(name: String, shape: [Int], _ a: [Float], _ b: [Float]) -> TensorComparison {
        var bitwiseEqual = true
        var maxAbsolute = 0.0
        var maxReference = 0.0
        for (x, y) in zip(a, b) {
            if x.bitPattern != y.bitPattern {
                bitwiseEqual = false
            }
            // Two NaNs (or two equal infinities) count as the same value here, although Float's
            // == returns false for NaN.
            if x.isNaN && y.isNaN || x == y {
                maxReference = max(maxReference, y.isFinite ? Double(abs(y)) : 0)
                continue
            }
            let difference = abs(Double(x) - Double(y))
            maxAbsolute = difference.isNaN || maxAbsolute.isNaN ? .nan : max(maxAbsolute, difference)
            maxReference = max(maxReference, y.isFinite ? Double(abs(y)) : 0)
        }
        let relative: Double
        if maxAbsolute == 0 {
            relative = 0
        } else {
            relative = maxReference > 0 ? maxAbsolute / maxReference : .infinity
        }
        return TensorComparison(
            name: name, shape: shape, bitwiseEqual: bitwiseEqual, maxAbsoluteDifference: maxAbsolute,
            maxRelativeDifference: relative)
    }

    static func text(_ report: Report, a: String, b: String, listAll: Bool) -> [String] {
        var lines = ["A: \(a)", "B: \(b)"]
        let differing = report.common.filter { !$0.bitwiseEqual }
        lines.append(
            "Tensors: \(report.common.count) in both with the same shape, \(differing.count) of them differ; "
                + "\(report.onlyInA.count) only in A, \(report.onlyInB.count) only in B, "
                + "\(report.shapeDifferences.count) with different shapes")
        for name in report.onlyInA {
            lines.append("  only in A: \(name)")
        }
        for name in report.onlyInB {
            lines.append("  only in B: \(name)")
        }
        for difference in report.shapeDifferences {
            lines.append("  shape differs: \(difference.name) \(difference.a) in A, \(difference.b) in B")
        }
        let listed = listAll ? report.common : differing
        if !listed.isEmpty {
            let rows = listed.map { comparison in
                [
                    comparison.name,
                    "[" + comparison.shape.map(String.init).joined(separator: ", ") + "]",
                    comparison.bitwiseEqual ? "yes" : "no",
                    String(format: "%.6g", comparison.maxAbsoluteDifference),
                    String(format: "%.6g", comparison.maxRelativeDifference),
                ]
            }
            lines += alignedTable(
                header: ["tensor", "shape", "bitwise equal", "max abs diff", "max rel diff"], rows: rows, textColumns: 3)
        }

        let metadataDifferences =
            report.metadataOnlyInA.count + report.metadataOnlyInB.count + report.metadataChanged.count
        lines.append("Metadata: \(metadataDifferences == 0 ? "identical" : "\(metadataDifferences) keys differ")")
        for key in report.metadataOnlyInA {
            lines.append("  only in A: \(key)")
        }
        for key in report.metadataOnlyInB {
            lines.append("  only in B: \(key)")
        }
        for change in report.metadataChanged {
            lines.append("  \(change.key): \(abbreviated(change.a)) in A, \(abbreviated(change.b)) in B")
        }
        lines.append(report.identical ? "The files are identical." : "The files differ.")
        return lines
    }

    /// Shortens long metadata values, such as the tensor_sha256 object, to keep lines readable.
    static func abbreviated(_ value: String) -> String {
        value.count <= 80 ? value : String(value.prefix(77)) + "..."
    }
}
