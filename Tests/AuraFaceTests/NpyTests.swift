import Foundation
import Testing

@testable import AuraFace

/// Builds a .npy file from its parts: `version` selects the length field (2 bytes for 1.0,
/// 4 bytes otherwise), `header` is written as given plus '\n', `data` follows.
func npyBytes(version: (UInt8, UInt8) = (1, 0), header: String, data: [UInt8]) -> [UInt8] {
    let headerBytes = Array((header + "\n").utf8)
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version.0, version.1]
    let lengthFieldSize = version.0 == 1 ? 2 : 4
    for i in 0..<lengthFieldSize {
        bytes.append(UInt8(truncatingIfNeeded: headerBytes.count >> (8 * i)))
    }
    return bytes + headerBytes + data
}

func littleEndianBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { value in
        withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
    }
}

@Suite("Npy")
struct NpyTests {
    /// `np.save` output of `np.arange(6, dtype='<f4').reshape(2, 3) / 4 - 0.5`, written by
    /// NumPy 2.4.6: a 1.0 header that NumPy pads to 128 bytes, then six float32 values.
    static let numpyFile: [UInt8] = hexBytes(
        "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73"
            + "652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020"
            + "202020202020202020202020202020202020202020202020202020202020200a000000bf000080be000000000000803e"
            + "0000003f0000403f")

    static func hexBytes(_ text: String) -> [UInt8] {
        let digits = Array(text)
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
    }

    static let header23 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    static let values23: [Float] = [-0.5, -0.25, 0, 0.25, 0.5, 0.75]

    @Test func readsNumPyWrittenFile() throws {
        let array = try NpyArray(bytes: Self.numpyFile, path: "numpy.npy")

        #expect(array.shape == [2, 3])
        #expect(array.values == Self.values23)
    }

    @Test("reads header versions", arguments: [(1, 0), (2, 0), (3, 0)] as [(UInt8, UInt8)])
    func readsHeaderVersion(_ version: (UInt8, UInt8)) throws {
        let bytes = npyBytes(version: version, header: Self.header23, data: littleEndianBytes(Self.values23))
        let array = try NpyArray(bytes: bytes, path: "v.npy")

        #expect(array.shape == [2, 3])
        #expect(array.values == Self.values23)
    }

    @Test func readsUTF8HeaderInVersion3() throws {
        // Version 3.0 exists for UTF-8 headers; a non-ASCII byte in a 1.0 header is invalid.
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } # é"
        #expect(throws: NpyError.self) {
            _ = try NpyArray(bytes: npyBytes(header: header, data: littleEndianBytes([1])), path: "a.npy")
        }
        let header3 = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }  "
        let array = try NpyArray(
            bytes: npyBytes(version: (3, 0), header: header3, data: littleEndianBytes([1])), path: "a.npy")
        #expect(array.values == [1])
    }

    @Test func acceptsKeyOrderQuotesAndScalars() throws {
        let cases: [(header: String, shape: [Int], count: Int)] = [
            ("{\"shape\": (4,), \"fortran_order\": False, \"descr\": \"<f4\"}", [4], 4),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", [], 1),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", [0, 3], 0),
            ("{'descr':'<f4','fortran_order':False,'shape':(1,2,1,2,1)}", [1, 2, 1, 2, 1], 4),
        ]
        for testCase in cases {
            let values = (0..<testCase.count).map { Float($0) }
            let array = try NpyArray(
                bytes: npyBytes(header: testCase.header, data: littleEndianBytes(values)), path: "a.npy")
            #expect(array.shape == testCase.shape, "\(testCase.header)")
            #expect(array.values == values, "\(testCase.header)")
        }
    }

    @Test func roundTripKeepsShapeAndValues() throws {
        var generator = SampleGenerator(seed: 11)
        for shape in [[], [7], [3, 5], [2, 3, 4, 5], [1, 3, 112, 112], [4, 0, 2]] as [[Int]] {
            let values = (0..<shape.reduce(1, *)).map { _ in Float(generator.next(below: 1 << 20)) / 1024 - 512 }
            let array = try NpyArray(shape: shape, values: values)
            let bytes = array.serialized()

            #expect(try NpyArray(bytes: bytes, path: "round.npy") == array, "shape \(shape)")
        }
    }

    @Test func writerUsesNumPyVersion1Layout() throws {
        let bytes = try NpyArray(shape: [2, 3], values: Self.values23).serialized()
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)

        #expect(Array(bytes[0..<8]) == [0x93] + Array("NUMPY".utf8) + [1, 0])
        #expect((10 + headerLength) % 64 == 0)
        #expect(header.hasPrefix(Self.header23))
        #expect(header.hasSuffix("\n"))
        #expect(header.dropLast().dropFirst(Self.header23.count).allSatisfy { $0 == " " })
        #expect(Array(bytes[(10 + headerLength)...]) == littleEndianBytes(Self.values23))
        #expect(try NpyArray(shape: [5], values: [1, 2, 3, 4, 5]).serialized()[10...].starts(
            with: Array("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }".utf8)))
    }

    @Test func writeIsAtomicAndReadable() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("e.npy")
        let first = try NpyArray(shape: [1, 2], values: [1, 2])
        let second = try NpyArray(shape: [3], values: [4, 5, 6])

        try first.write(to: url)
        try second.write(to: url)

        #expect(try NpyArray(contentsOf: url) == second)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["e.npy"])
    }

    @Test func unwritablePathIsReported() throws {
        let url = URL(fileURLWithPath: "/nonexistent-directory/e.npy")
        let error = #expect(throws: NpyError.self) {
            try NpyArray(shape: [1], values: [1]).write(to: url)
        }
        guard case .unwritable(let path, _) = error else {
            Issue.record("expected unwritable, got \(String(describing: error))")
            return
        }
        #expect(path == url.path)
    }

    @Test func otherDTypesAreRejected() throws {
        for descr in ["<f8", "<f2", "<i4", "|u1", "<c8", "f4", "=f4"] {
            let header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (2,), }"
            #expect(throws: NpyError.unsupportedDType(path: "d.npy", descr: descr), "\(descr)") {
                _ = try NpyArray(bytes: npyBytes(header: header, data: [UInt8](repeating: 0, count: 8)), path: "d.npy")
            }
        }
        let structured = "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2,), }"
        #expect(throws: NpyError.self) {
            _ = try NpyArray(bytes: npyBytes(header: structured, data: [UInt8](repeating: 0, count: 8)), path: "d.npy")
        }
    }

    @Test func bigEndianIsRejectedWithHint() throws {
        let header = "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }"
        let error = #expect(throws: NpyError.self) {
            _ = try NpyArray(bytes: npyBytes(header: header, data: [UInt8](repeating: 0, count: 8)), path: "be.npy")
        }

        #expect(error == .unsupportedDType(path: "be.npy", descr: ">f4"))
        #expect(error?.description.contains("big-endian") == true)
        #expect(error?.description.contains("astype('<f4')") == true)
    }

    @Test func fortranOrderIsRejected() throws {
        let header = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }"
        let error = #expect(throws: NpyError.self) {
            _ = try NpyArray(bytes: npyBytes(header: header, data: littleEndianBytes(Self.values23)), path: "f.npy")
        }

        #expect(error == .fortranOrder(path: "f.npy"))
        #expect(error?.description.contains("C order") == true)
    }

    @Test func shortAndLongDataAreRejected() throws {
        let data = littleEndianBytes(Self.values23)
        let short = npyBytes(header: Self.header23, data: Array(data.dropLast(1)))
        let long = npyBytes(header: Self.header23, data: data + [0, 0, 0, 0])

        let shortError = #expect(throws: NpyError.self) { _ = try NpyArray(bytes: short, path: "s.npy") }
        let longError = #expect(throws: NpyError.self) { _ = try NpyArray(bytes: long, path: "l.npy") }

        #expect(shortError == .dataSizeMismatch(path: "s.npy", shape: [2, 3], expectedBytes: 24, foundBytes: 23))
        #expect(shortError?.description.contains("too short") == true)
        #expect(longError == .dataSizeMismatch(path: "l.npy", shape: [2, 3], expectedBytes: 24, foundBytes: 28))
        #expect(longError?.description.contains("too long") == true)
    }

    @Test func malformedHeadersAreRejected() throws {
        let headers = [
            "",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ",
            "{'descr': '<f4', 'fortran_order': False}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}",
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}",
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} trailing",
            "{'descr': '<f4\\n', 'fortran_order': False, 'shape': (2, 3)}",
            "[1, 2, 3]",
            String(repeating: "(", count: 40),
        ]
        for header in headers {
            let error = #expect(throws: NpyError.self, "\(header)") {
                _ = try NpyArray(bytes: npyBytes(header: header, data: littleEndianBytes(Self.values23)), path: "m.npy")
            }
            guard case .malformedHeader(let path, _) = error else {
                Issue.record("\(header.debugDescription): expected malformedHeader, got \(String(describing: error))")
                continue
            }
            #expect(path == "m.npy")
        }
    }

    @Test func badMagicVersionAndLengthAreRejected() throws {
        let valid = npyBytes(header: Self.header23, data: littleEndianBytes(Self.values23))
        var badMagic = valid
        badMagic[1] = UInt8(ascii: "n")
        var badVersion = valid
        badVersion[6] = 4

        #expect(throws: NpyError.notNpy(path: "a.npy", found: "93 6e 55 4d 50 59")) {
            _ = try NpyArray(bytes: badMagic, path: "a.npy")
        }
        #expect(throws: NpyError.notNpy(path: "a.npy", found: "")) {
            _ = try NpyArray(bytes: [], path: "a.npy")
        }
        #expect(throws: NpyError.unsupportedVersion(path: "a.npy", major: 4, minor: 0)) {
            _ = try NpyArray(bytes: badVersion, path: "a.npy")
        }
        for length in [9, 20, 60] {
            let error = #expect(throws: NpyError.self, "prefix \(length)") {
                _ = try NpyArray(bytes: Array(valid.prefix(length)), path: "a.npy")
            }
            guard case .malformedHeader = error else {
                Issue.record("prefix \(length): expected malformedHeader, got \(String(describing: error))")
                continue
            }
        }
    }

    @Test func missingFileIsReported() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let missing = directory.appendingPathComponent("x.npy")

        #expect(throws: NpyError.fileNotFound(path: missing.path)) {
            _ = try NpyArray(contentsOf: missing)
        }
    }

    @Test func valueCountMustMatchShape() {
        #expect(throws: NpyError.valueCountMismatch(shape: [2, 2], count: 3)) {
            _ = try NpyArray(shape: [2, 2], values: [1, 2, 3])
        }
        #expect(throws: NpyError.self) {
            _ = try NpyArray(shape: [-1], values: [])
        }
    }
}
