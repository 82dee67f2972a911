// Alignment against references made with scikit-image (similarity fit) and OpenCV (warpAffine):
// the astronaut fixture in Tests/Fixtures/faces and the cases of Tools/make_alignment_fixtures.py
// in Tests/Fixtures/alignment.

import Foundation
import Testing

@testable import AuraFace

private let fixturesDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

/// Compares two images sample by sample.
private struct ImageDifference {
    var maxDifference = 0
    var exactFraction = 0.0

    init(_ a: RGBImage, _ b: RGBImage) {
        precondition(a.pixels.count == b.pixels.count)
        var exact = 0
        for (x, y) in zip(a.pixels, b.pixels) {
            let difference = abs(Int(x) - Int(y))
            maxDifference = max(maxDifference, difference)
            exact += difference == 0 ? 1 : 0
        }
        exactFraction = Double(exact) / Double(a.pixels.count)
    }
}

private func expectMatrix(
    _ actual: AffineMatrix, _ expected: [Double], tolerance: Double,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    for (index, (a, e)) in zip(actual.matrix, expected).enumerated() {
        #expect(
            Swift.abs(a - e) <= tolerance, "matrix[\(index)] = \(a), expected \(e)",
            sourceLocation: sourceLocation)
    }
}

@Suite struct AlignmentTests {
    static let template = ArcFaceTemplate.points112

    static func landmarks(_ points: [Point2D]) throws -> FaceLandmarks {
        try FaceLandmarks(points)
    }

    @Test func templateOntoItselfIsIdentity() throws {
        let fit = try #require(SimilarityFit.fit(from: Self.template, to: Self.template))
        expectMatrix(fit.transform, [1, 0, 0, 0, 1, 0], tolerance: 1e-12)
        #expect(fit.rmsResidual < 1e-12)
        #expect(!fit.sourceIsMirrored)
    }

    @Test func scaledShiftedTemplateFitsHalfScale() throws {
        let source = Self.template.map { Point2D(x: 2 * $0.x + 100, y: 2 * $0.y + 50) }
        let fit = try #require(SimilarityFit.fit(from: source, to: Self.template))
        expectMatrix(fit.transform, [0.5, 0, -50, 0, 0.5, -25], tolerance: 1e-12)
        #expect(fit.rmsResidual < 1e-12)
    }

    @Test func templateTurned180DegreesFitsRotation() throws {
        let source = Self.template.map { Point2D(x: 112 - $0.x, y: 112 - $0.y) }
        let fit = try #require(SimilarityFit.fit(from: source, to: Self.template))
        expectMatrix(fit.transform, [-1, 0, 112, 0, -1, 112], tolerance: 1e-12)
        #expect(fit.rmsResidual < 1e-12)
        #expect(!fit.sourceIsMirrored)
    }

    @Test func templateScalingMatchesInsightface() throws {
        let t224 = try ArcFaceTemplate.points(cropSize: 224)
        let t128 = try ArcFaceTemplate.points(cropSize: 128)
        let t256 = try ArcFaceTemplate.points(cropSize: 256)
        for i in 0..<5 {
            #expect(abs(t224[i].x - 2 * Self.template[i].x) < 1e-5)
            #expect(abs(t224[i].y - 2 * Self.template[i].y) < 1e-5)
            #expect(abs(t128[i].x - (Self.template[i].x + 8)) < 1e-5)
            #expect(abs(t128[i].y - Self.template[i].y) < 1e-5)
            #expect(abs(t256[i].x - (2 * Self.template[i].x + 16)) < 1e-5)
        }
        #expect(throws: AlignmentError.unsupportedCropSize(100)) {
            try ArcFaceTemplate.points(cropSize: 100)
        }
        #expect(throws: AlignmentError.unsupportedCropSize(0)) {
            try ArcFaceTemplate.points(cropSize: 0)
        }
    }

    @Test func astronautMatchesScikitImageAndOpenCV() throws {
        let directory = fixturesDirectory.appendingPathComponent("faces")
        let json = try JSONSerialization.jsonObject(
            with: Data(contentsOf: directory.appendingPathComponent("astronaut_landmarks.json")))
        let record = try #require(json as? [String: Any])
        let points = try #require(record["landmarks_xy"] as? [[Double]])
        let matrix = try #require(record["similarity_transform_2x3"] as? [[Double]])
        let landmarks = try FaceLandmarks(points.map { Point2D(x: $0[0], y: $0[1]) })

        let photo = try PNGImage.read(contentsOf: directory.appendingPathComponent("astronaut.png"))
        let reference = try PNGImage.read(
            contentsOf: directory.appendingPathComponent("astronaut_aligned_112.png"))
        let face = try FaceAligner().align(PixelBuffer(photo), landmarks: landmarks)

        expectMatrix(face.transform, matrix.flatMap { $0 }, tolerance: 1e-4)
        #expect(face.rmsResidual < 3)
        let difference = ImageDifference(face.image, reference)
        #expect(difference.maxDifference <= 1)
        #expect(difference.exactFraction >= 0.999, "exact on \(difference.exactFraction)")
    }

    struct Case {
        var name: String
        var photo: String
        var cropSize: Int
        var landmarks: FaceLandmarks
        var matrix: [Double]
        var rmsResidual: Double
        var aligned: String
    }

    static let alignmentDirectory = fixturesDirectory.appendingPathComponent("alignment")

    static func cases() throws -> (accepted: [Case], rejected: [(String, [Point2D])]) {
        let data = try Data(contentsOf: alignmentDirectory.appendingPathComponent("cases.json"))
        let record = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        func points(_ value: Any?) throws -> [Point2D] {
            let pairs = try #require(value as? [[Double]])
            return pairs.map { Point2D(x: $0[0], y: $0[1]) }
        }
        var accepted: [Case] = []
        for entry in try #require(record["cases"] as? [[String: Any]]) {
            let matrix = try #require(entry["similarity_transform_2x3"] as? [[Double]])
            accepted.append(
                Case(
                    name: try #require(entry["name"] as? String),
                    photo: try #require(entry["photo"] as? String),
                    cropSize: try #require(entry["crop_size"] as? Int),
                    landmarks: try FaceLandmarks(points(entry["landmarks_xy"])),
                    matrix: matrix.flatMap { $0 },
                    rmsResidual: try #require(entry["rms_residual"] as? Double),
                    aligned: try #require(entry["aligned"] as? String)))
        }
        var rejected: [(String, [Point2D])] = []
        for entry in try #require(record["rejected"] as? [[String: Any]]) {
            rejected.append((try #require(entry["name"] as? String), try points(entry["landmarks_xy"])))
        }
        return (accepted, rejected)
    }

    @Test func fixtureCasesMatchScikitImageAndOpenCV() throws {
        let (cases, _) = try Self.cases()
        #expect(cases.count >= 10)
        var photos: [String: RGBImage] = [:]
        for testCase in cases {
            let photo = try photos[testCase.photo]
                ?? PNGImage.read(contentsOf: Self.alignmentDirectory.appendingPathComponent(testCase.photo))
            photos[testCase.photo] = photo
            let reference = try PNGImage.read(
                contentsOf: Self.alignmentDirectory.appendingPathComponent(testCase.aligned))
            let aligner = try FaceAligner(cropSize: testCase.cropSize)
            let face = try aligner.align(PixelBuffer(photo), landmarks: testCase.landmarks)

            // scikit-image 0.26 returns the matrix rounded to float32 when the template is
            // float32, as insightface's is: about 1.5e-6 on translations near 50.
            expectMatrix(face.transform, testCase.matrix, tolerance: 1e-5)
            #expect(
                Swift.abs(face.rmsResidual - testCase.rmsResidual) < 1e-6,
                "\(testCase.name): residual \(face.rmsResidual), expected \(testCase.rmsResidual)")
            #expect(face.image.width == testCase.cropSize)
            let difference = ImageDifference(face.image, reference)
            #expect(difference.maxDifference <= 1, "\(testCase.name): max difference \(difference.maxDifference)")
            #expect(
                difference.exactFraction >= 0.999,
                "\(testCase.name): exact on \(difference.exactFraction) of samples")
        }
    }

    @Test func badLandmarksAreRejected() throws {
        let (_, rejected) = try Self.cases()
        let aligner = FaceAligner()
        for (name, points) in rejected {
            let landmarks = try FaceLandmarks(points)
            do {
                _ = try aligner.fit(landmarks)
                Issue.record("\(name): landmarks were accepted")
            } catch {
                switch (name, error) {
                case ("eyes_and_mouth_swapped", .mirroredLandmarks),
                    ("random", .residualTooLarge), ("random", .mirroredLandmarks),
                    ("all_equal", .degenerateLandmarks):
                    break
                default:
                    Issue.record("\(name): unexpected error \(error)")
                }
            }
        }
    }

    @Test func nonFiniteLandmarkIsRejected() throws {
        var points = Self.template
        points[3].y = .nan
        let error = #expect(throws: AlignmentError.self) {
            try FaceAligner().fit(FaceLandmarks(points))
        }
        guard case let .nonFiniteLandmark(index, point) = error else {
            Issue.record("expected nonFiniteLandmark, got \(String(describing: error))")
            return
        }
        #expect(index == 3)
        #expect(point.y.isNaN)
        #expect(error?.description.contains("landmark 4") == true)
        points[3].y = 10
        points[0].x = .infinity
        #expect(throws: AlignmentError.self) { try FaceAligner().fit(FaceLandmarks(points)) }
    }

    @Test func hugeLandmarkIsRejected() throws {
        var points = Self.template
        points[2].x = 1e300
        let error = #expect(throws: AlignmentError.self) {
            try FaceAligner().fit(FaceLandmarks(points))
        }
        guard case let .landmarkOutOfRange(index, _, limit) = error else {
            Issue.record("expected landmarkOutOfRange, got \(String(describing: error))")
            return
        }
        #expect(index == 2)
        #expect(limit == FaceAligner.maxLandmarkCoordinate)
        #expect(error?.description.contains("landmark 3") == true)
        #expect(error?.description.contains("nan") == false)
    }

    @Test func rejectionMessagesNameValueAndLimit() throws {
        let mirrored = [1, 0, 2, 4, 3].map { Self.template[$0] }
        let mirrorError = #expect(throws: AlignmentError.self) {
            try FaceAligner().fit(FaceLandmarks(mirrored))
        }
        #expect(mirrorError?.description.contains("mirror image") == true)

        // A full-profile layout from insightface's face_align.py (src1) fits at about 14 pixels.
        let profile = [
            (51.642, 50.115), (57.617, 49.990), (35.740, 69.007), (51.157, 89.050), (57.025, 89.702),
        ].map { Point2D(x: $0.0, y: $0.1) }
        let profileError = #expect(throws: AlignmentError.self) {
            try FaceAligner().fit(FaceLandmarks(profile))
        }
        guard case let .residualTooLarge(residual, limit) = profileError else {
            Issue.record("expected residualTooLarge, got \(String(describing: profileError))")
            return
        }
        #expect(residual > 13)
        #expect(residual < 15)
        #expect(limit == FaceAligner.defaultMaxRMSResidual)
        #expect(profileError?.description.contains("above the limit of 10.0") == true)

        let collapsed = Array(repeating: Point2D(x: 5, y: 7), count: 5)
        let collapsedError = #expect(throws: AlignmentError.self) {
            try FaceAligner().fit(FaceLandmarks(collapsed))
        }
        #expect(collapsedError == .degenerateLandmarks(Point2D(x: 5, y: 7)))
    }

    @Test func landmarkCountIsChecked() {
        #expect(throws: AlignmentError.wrongLandmarkCount(found: 4)) {
            try FaceLandmarks(Array(Self.template.prefix(4)))
        }
        #expect(throws: AlignmentError.wrongLandmarkCount(found: 4)) {
            try FaceLandmarks(flat: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        }
    }

    @Test func fixedPointArithmeticQuantisesCoordinates() throws {
        // A half-pixel shift: both arithmetics average two neighbours exactly, (10 + 21) / 2 = 15.5
        // rounds to 16 (fixed point adds half before shifting) or 16 (half to even).
        let row: [UInt8] = [10, 10, 10, 21, 21, 21, 40, 40, 40, 80, 80, 80]
        let source = try PixelBuffer(width: 4, height: 1, format: .rgb, bytes: row)
        let shift = AffineMatrix(1, 0, -0.5, 0, 1, 0)
        for arithmetic in AffineWarp.Arithmetic.allCases {
            let crop = AffineWarp.warp(source, transform: shift, width: 4, height: 1, arithmetic: arithmetic)
            // Destination x samples source x + 0.5. The last pixel blends 80 with the black border.
            #expect(crop.pixels[0] == 16, "\(arithmetic)")
            #expect(crop.pixels[3] == 30 || crop.pixels[3] == 31, "\(arithmetic)")
            #expect(crop.pixels[9] == 40, "\(arithmetic)")
        }
    }
}
