// Draws a ROC curve into an RGBImage, for writing with PNGImage.write.

/// A square ROC plot: false positive rate from 0 (left) to 1 (right), true positive rate
/// from 0 (bottom) to 1 (top), light grid lines every 0.1, the chance diagonal in gray and
/// the curve in blue. The image has no text, so a caller names the set in the file name.
public enum ROCPlot {
    /// Renders the curve through the points (falsePositiveRates[i], truePositiveRates[i]),
    /// joined in the given order.
    ///
    /// - Parameter size: the image's width and height in pixels, at least 64.
    public static func image(
        falsePositiveRates: [Double], truePositiveRates: [Double], size: Int = 512
    ) -> RGBImage {
        precondition(falsePositiveRates.count == truePositiveRates.count, "one TPR per FPR")
        precondition(size >= 64, "a ROC plot needs at least 64x64 pixels")
        var canvas = Canvas(size: size)
        let margin = size / 16
        let span = size - 2 * margin - 1

        func point(_ fpr: Double, _ tpr: Double) -> (Double, Double) {
            let x = Double(margin) + min(max(fpr, 0), 1) * Double(span)
            let y = Double(margin) + (1 - min(max(tpr, 0), 1)) * Double(span)
            return (x, y)
        }

        let gridColor: [UInt8] = [225, 225, 225]
        for step in 1..<10 {
            let value = Double(step) / 10
            canvas.line(from: point(value, 0), to: point(value, 1), color: gridColor, width: 1)
            canvas.line(from: point(0, value), to: point(1, value), color: gridColor, width: 1)
        }
        canvas.line(from: point(0, 0), to: point(1, 1), color: [160, 160, 160], width: 1)
        let black: [UInt8] = [0, 0, 0]
        canvas.line(from: point(0, 0), to: point(1, 0), color: black, width: 1)
        canvas.line(from: point(0, 0), to: point(0, 1), color: black, width: 1)
        canvas.line(from: point(1, 0), to: point(1, 1), color: black, width: 1)
        canvas.line(from: point(0, 1), to: point(1, 1), color: black, width: 1)

        let points = zip(falsePositiveRates, truePositiveRates).map { point($0, $1) }
        for (start, end) in zip(points, points.dropFirst()) {
            canvas.line(from: start, to: end, color: [20, 80, 200], width: 3)
        }
        return canvas.image
    }
}

private struct Canvas {
    let size: Int
    var pixels: [UInt8]

    init(size: Int) {
        self.size = size
        pixels = [UInt8](repeating: 255, count: size * size * 3)
    }

    var image: RGBImage {
        // The buffer contains size * size * 3 samples by construction.
        try! RGBImage(width: size, height: size, pixels: pixels)
    }

    /// Draws a straight line by stepping one pixel at a time along its longer axis, stamping
    /// a `width` x `width` square at each step.
    mutating func line(from start: (Double, Double), to end: (Double, Double), color: [UInt8], width: Int) {
        let dx = end.0 - start.0
        let dy = end.1 - start.1
        let steps = max(Int(max(abs(dx), abs(dy)).rounded(.up)), 1)
        for step in 0...steps {
            let t = Double(step) / Double(steps)
            stamp(x: Int((start.0 + t * dx).rounded()), y: Int((start.1 + t * dy).rounded()), color: color, width: width)
        }
    }

    private mutating func stamp(x: Int, y: Int, color: [UInt8], width: Int) {
        let low = -(width - 1) / 2
        for offsetY in low..<(low + width) {
            for offsetX in low..<(low + width) {
                let px = x + offsetX
                let py = y + offsetY
                guard px >= 0, px < size, py >= 0, py < size else { continue }
                let index = (py * size + px) * 3
                pixels[index] = color[0]
                pixels[index + 1] = color[1]
                pixels[index + 2] = color[2]
            }
        }
    }
}
