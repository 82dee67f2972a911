// Summary statistics of a float tensor, for `auraface trace` and `auraface inspect --tensors`.

/// Statistics of one tensor's values, accumulated in Double.
///
/// NaN and infinite values are counted and left out of every other statistic, so a tensor
/// with a few bad values still shows the range of the rest. `min`, `max`, `mean` and `std`
/// are nil when no value is finite.
struct TensorStatistics: Equatable {
    var count = 0
    var finiteCount = 0
    var zeroCount = 0
    var nanCount = 0
    /// Values that are +infinity or -infinity.
    var infiniteCount = 0
    var min: Double?
    var max: Double?
    var mean: Double?
    /// Population standard deviation (divides by the number of finite values).
    var std: Double?
    /// Euclidean norm of the finite values.
    var l2Norm: Double = 0

    init(_ values: [Float]) {
        count = values.count
        var sum = 0.0
        var sumOfSquares = 0.0
        var low = Double.infinity
        var high = -Double.infinity
        for value in values {
            if value.isNaN {
                nanCount += 1
                continue
            }
            if value.isInfinite {
                infiniteCount += 1
                continue
            }
            if value == 0 {
                zeroCount += 1
            }
            let v = Double(value)
            finiteCount += 1
            sum += v
            sumOfSquares += v * v
            low = Swift.min(low, v)
            high = Swift.max(high, v)
        }
        l2Norm = sumOfSquares.squareRoot()
        guard finiteCount > 0 else { return }
        let n = Double(finiteCount)
        let average = sum / n
        min = low
        max = high
        mean = average
        // Clamped because rounding can leave a tiny negative variance for constant tensors.
        std = Swift.max(0, sumOfSquares / n - average * average).squareRoot()
    }

    /// Formats an optional statistic for a text table: 6 significant digits, or `-` when
    /// there are no finite values.
    static func text(_ value: Double?) -> String {
        guard let value else { return "-" }
        return String(format: "%.6g", value)
    }
}

/// Formats rows of cells as a table with a header, two spaces between columns; the first
/// `textColumns` columns align left, the rest right.
func alignedTable(header: [String], rows: [[String]], textColumns: Int) -> [String] {
    let widths = (0..<header.count).map { column in
        ([header] + rows).map { $0[column].count }.max() ?? 0
    }
    func line(_ cells: [String]) -> String {
        var text = "  "
        for (column, cell) in cells.enumerated() {
            let padding = String(repeating: " ", count: widths[column] - cell.count)
            text += column < textColumns ? cell + padding : padding + cell
            if column < cells.count - 1 {
                text += "  "
            }
        }
        return text
    }
    return [line(header)] + rows.map(line)
}
