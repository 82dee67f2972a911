// The five-point ArcFace alignment template, from insightface's
// python-package/insightface/utils/face_align.py (`arcface_dst` and `estimate_norm`).

/// A point in image coordinates: x to the right, y down, in pixels, with pixel centers at
/// integer coordinates (the convention of OpenCV's `warpAffine` and insightface).
public struct Point2D: Sendable, Equatable, CustomStringConvertible {
    public var x: Double
    public var y: Double

    public init(x: Double, y: Double) {
        self.x = x
        self.y = y
    }

    public var description: String { "(\(x), \(y))" }
}

/// Five facial landmarks in the order face detectors such as RetinaFace and SCRFD report them:
/// the eye on the image's left, the eye on the image's right, the nose tip, the mouth corner on
/// the image's left and the mouth corner on the image's right.
public struct FaceLandmarks: Sendable, Equatable {
    /// The five points in detector order.
    public var points: [Point2D]

    /// Wraps five points in detector order.
    ///
    /// - Throws: `AlignmentError.wrongLandmarkCount` unless there are exactly five points.
    public init(_ points: [Point2D]) throws(AlignmentError) {
        guard points.count == 5 else {
            throw .wrongLandmarkCount(found: points.count)
        }
        self.points = points
    }

    /// Reads ten numbers `x1, y1, ..., x5, y5` in detector order.
    ///
    /// - Throws: `AlignmentError.wrongLandmarkCount` unless there are exactly ten numbers.
    public init(flat values: [Double]) throws(AlignmentError) {
        guard values.count == 10 else {
            throw .wrongLandmarkCount(found: values.count / 2)
        }
        try self.init((0..<5).map { Point2D(x: values[2 * $0], y: values[2 * $0 + 1]) })
    }
}

/// The ArcFace template: where the five landmarks of a frontal face land in an aligned crop.
public enum ArcFaceTemplate {
    /// The template for a 112x112 crop, as insightface's `arcface_dst`. insightface stores it
    /// as float32, so each value here is the float32 nearest the printed decimal, which keeps
    /// the fitted matrix equal to insightface's to about 1e-12 instead of about 1e-6.
    public static let points112: [Point2D] = [
        (38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655),
        (70.7299, 92.2041),
    ].map { (x: Float, y: Float) in Point2D(x: Double(x), y: Double(y)) }

    /// Returns the template for a `size` x `size` crop, scaled as insightface's `estimate_norm`
    /// scales it: for a multiple of 112 by `size / 112`; otherwise, for a multiple of 128, by
    /// `size / 128` and then shifted right by `8 * size / 128` (the 112-wide template centred
    /// in a 128-wide crop).
    ///
    /// - Throws: `AlignmentError.unsupportedCropSize` when `size` is not a positive multiple
    ///   of 112 or 128.
    public static func points(cropSize size: Int) throws(AlignmentError) -> [Point2D] {
        guard size > 0 else {
            throw .unsupportedCropSize(size)
        }
        let ratio: Double
        let shiftX: Double
        if size % 112 == 0 {
            ratio = Double(size) / 112
            shiftX = 0
        } else if size % 128 == 0 {
            ratio = Double(size) / 128
            shiftX = 8 * ratio
        } else {
            throw .unsupportedCropSize(size)
        }
        // insightface multiplies in float32 (`arcface_dst * ratio`) and adds in float32.
        return points112.map { point in
            let x = Float(point.x) * Float(ratio) + Float(shiftX)
            let y = Float(point.y) * Float(ratio)
            return Point2D(x: Double(x), y: Double(y))
        }
    }
}
