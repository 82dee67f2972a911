// `auraface inspect`: per-tensor statistics (--tensors) and the tensor_sha256 check.

import AuraFace

/// One stored tensor's statistics for `inspect --tensors`.
struct TensorStatisticsRow {
    var name: String
    var shape: [Int]
    var statistics: TensorStatistics
}

/// The result of checking a file's tensors against its `tensor_sha256` metadata.
enum TensorHashCheck {
    /// The metadata has no `tensor_sha256`.
    case notRecorded
    /// The model was converted in memory from ONNX, so there is no stored file to check.
    case convertedInMemory
    case matched(count: Int)
    case mismatched(checked: Int, mismatches: [TensorHashMismatch])

    init(file: SafeTensorsFile, recorded: [String: String]?) {
        guard let recorded else {
            self = .notRecorded
            return
        }
        let mismatches = file.tensorHashMismatches(recorded)
        self = mismatches.isEmpty ? .matched(count: file.entries.count) : .mismatched(checked: file.entries.count, mismatches: mismatches)
    }
}

extension InspectCommand {
    static func tensorStatistics(of file: SafeTensorsFile) -> [TensorStatisticsRow] {
        file.entries.map { entry in
            TensorStatisticsRow(name: entry.name, shape: entry.shape, statistics: TensorStatistics(file.floats(for: entry)))
        }
    }

    static func tensorStatisticsTable(_ rows: [TensorStatisticsRow]) -> [String] {
        let cells = rows.map { row in
            let statistics = row.statistics
            return [
                row.name,
                "[" + row.shape.map(String.init).joined(separator: ", ") + "]",
                TensorStatistics.text(statistics.min),
                TensorStatistics.text(statistics.max),
                TensorStatistics.text(statistics.mean),
                TensorStatistics.text(statistics.std),
                String(statistics.zeroCount),
                String(statistics.nanCount),
                String(statistics.infiniteCount),
            ]
        }
        return alignedTable(
            header: ["tensor", "shape", "min", "max", "mean", "std", "zeros", "NaN", "Inf"], rows: cells,
            textColumns: 2)
    }

    static func hashCheckLines(_ check: TensorHashCheck) -> [String] {
        switch check {
        case .notRecorded:
            return ["Tensor hashes: not recorded (no tensor_sha256 in the metadata)"]
        case .convertedInMemory:
            return ["Tensor hashes: not checked (converted in memory, no stored file)"]
        case let .matched(count):
            return ["Tensor hashes: all \(count) tensors match tensor_sha256"]
        case let .mismatched(checked, mismatches):
            return ["Tensor hashes: \(mismatches.count) mismatches among \(checked) tensors"]
                + mismatches.map { "  \($0)" }
        }
    }

    static func hashCheckJSON(_ check: TensorHashCheck) -> [String: Any] {
        switch check {
        case .notRecorded:
            return ["status": "not_recorded"]
        case .convertedInMemory:
            return ["status": "not_checked"]
        case let .matched(count):
            return ["status": "matched", "checked": count]
        case let .mismatched(checked, mismatches):
            return ["status": "mismatched", "checked": checked, "mismatches": mismatches.map(\.description)]
        }
    }

    static func tensorStatisticsJSON(_ row: TensorStatisticsRow) -> [String: Any] {
        let statistics = row.statistics
        var object: [String: Any] = [
            "name": row.name, "shape": row.shape, "count": statistics.count, "zeros": statistics.zeroCount,
            "nan": statistics.nanCount, "inf": statistics.infiniteCount,
        ]
        // Absent, rather than null, when no value is finite.
        object["min"] = statistics.min
        object["max"] = statistics.max
        object["mean"] = statistics.mean
        object["std"] = statistics.std
        return object
    }
}
