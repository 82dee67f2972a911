import Foundation

/// A 2-D affine transform `[[a, b, tx], [c, d, ty]]` mapping `(x, y)` to
/// `(a x + b y + tx, c x + d y + ty)`, the 2x3 matrix that OpenCV's `warpAffine` takes.
public struct AffineMatrix: Sendable, Equatable, CustomStringConvertible {
    /// Row-major `[a, b, tx, c, d, ty]`.
    public var matrix: [Double]

    /// Wraps a row-major 2x3 matrix.
    public init(_ a: Double, _ b: Double, _ tx: Double, _ c: Double, _ d: Double, _ ty: Double) {
        matrix = [a, b, tx, c, d, ty]
    }

    /// Returns the image of `point`.
    public func apply(_ point: Point2D) -> Point2D {
        Point2D(
            x: matrix[0] * point.x + matrix[1] * point.y + matrix[2],
            y: matrix[3] * point.x + matrix[4] * point.y + matrix[5])
    }

    /// Returns the inverse as OpenCV's `invertAffineMatrix` computes it (in Double, with a
    /// zero matrix for a singular input), which `warpAffine` uses to find source coordinates.
    public func inverted() -> AffineMatrix {
        let m = matrix
        var determinant = m[0] * m[4] - m[1] * m[3]
        determinant = determinant != 0 ? 1 / determinant : 0
        let a11 = m[4] * determinant
        let a22 = m[0] * determinant
        let a12 = -m[1] * determinant
        let a21 = -m[3] * determinant
        let b1 = -a11 * m[2] - a12 * m[5]
        let b2 = -a21 * m[2] - a22 * m[5]
        return AffineMatrix(a11, a12, b1, a21, a22, b2)
    }

    public var description: String {
        "[[\(matrix[0]), \(matrix[1]), \(matrix[2])], [\(matrix[3]), \(matrix[4]), \(matrix[5])]]"
    }
}

/// A least-squares similarity fit (rotation, uniform scale, translation; no reflection) of one
/// point set onto another, with how well it fits.
public struct SimilarityFit: Sendable, Equatable {
    /// The transform taking source points onto destination points.
    public var transform: AffineMatrix
    /// The root-mean-square distance between the mapped source points and the destination
    /// points, in destination pixels.
    public var rmsResidual: Double
    /// True when the best unconstrained linear fit flips orientation: the source points are a
    /// mirror image of the destination layout (for faces, the two eyes in the wrong order).
    public var sourceIsMirrored: Bool

    /// Fits `destination ≈ s R source + t` by least squares, as scikit-image's
    /// `SimilarityTransform.estimate` does (Umeyama, "Least-squares estimation of transformation
    /// parameters between two point patterns", IEEE TPAMI 13(4), 1991, with `_umeyama`'s
    /// handling of reflections).
    ///
    /// In 2-D the fit has a closed form. With `A` the cross-covariance of the centred points,
    /// Umeyama's rotation maximises `trace(Rᵀ A)`, which depends only on A's conformal part
    /// `p = (A00 + A11, A10 - A01) / 2`: R turns by `atan2(p.y, p.x)`, and the scale is
    /// `2 |p| / var(source)`. `2 |p|` equals `s1 + s2` (singular values) when `det A >= 0` and
    /// `s1 - s2` when `det A < 0`, the two cases `_umeyama` handles with its sign vector `d`.
    ///
    /// - Returns: nil when the points are not two equal-length, non-empty lists, or every source
    ///   point is the same (the fit is undefined; scikit-image returns NaN).
    public static func fit(from source: [Point2D], to destination: [Point2D]) -> SimilarityFit? {
        guard !source.isEmpty, source.count == destination.count else {
            return nil
        }
        let n = Double(source.count)
        let sourceMean = mean(source)
        let destinationMean = mean(destination)

        var a00 = 0.0, a01 = 0.0, a10 = 0.0, a11 = 0.0, sourceVariance = 0.0
        for (s, d) in zip(source, destination) {
            let sx = s.x - sourceMean.x, sy = s.y - sourceMean.y
            let dx = d.x - destinationMean.x, dy = d.y - destinationMean.y
            a00 += dx * sx
            a01 += dx * sy
            a10 += dy * sx
            a11 += dy * sy
            sourceVariance += sx * sx + sy * sy
        }
        a00 /= n
        a01 /= n
        a10 /= n
        a11 /= n
        sourceVariance /= n
        guard sourceVariance > 0 else {
            return nil
        }

        let px = (a00 + a11) / 2
        let py = (a10 - a01) / 2
        let norm = (px * px + py * py).squareRoot()
        let (cosine, sine) = norm > 0 ? (px / norm, py / norm) : (1.0, 0.0)
        let scale = 2 * norm / sourceVariance

        let a = scale * cosine
        let b = -scale * sine
        let c = scale * sine
        let d = scale * cosine
        let tx = destinationMean.x - (a * sourceMean.x + b * sourceMean.y)
        let ty = destinationMean.y - (c * sourceMean.x + d * sourceMean.y)
        let transform = AffineMatrix(a, b, tx, c, d, ty)

        var squaredError = 0.0
        for (s, d) in zip(source, destination) {
            let mapped = transform.apply(s)
            squaredError += (mapped.x - d.x) * (mapped.x - d.x) + (mapped.y - d.y) * (mapped.y - d.y)
        }
        return SimilarityFit(
            transform: transform, rmsResidual: (squaredError / n).squareRoot(),
            sourceIsMirrored: a00 * a11 - a01 * a10 < 0)
    }

    private static func mean(_ points: [Point2D]) -> Point2D {
        var x = 0.0, y = 0.0
        for point in points {
            x += point.x
            y += point.y
        }
        return Point2D(x: x / Double(points.count), y: y / Double(points.count))
    }
}
