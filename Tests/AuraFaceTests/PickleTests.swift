// The pickle reader on streams written by CPython 3.11 and NumPy 2.4 (hex below, produced
// with pickle.dumps and with Tools/make_verification_bins.py's Python2StylePickler), and on
// streams built opcode by opcode to reach each error.

import Testing

@testable import AuraFace

/// Converts a hex string ("8002...") to bytes.
func decodeHex(_ hex: String) -> [UInt8] {
    var result: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        result.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return result
}

/// Builds verification-set pickles the way the two writers of InsightFace's files lay them
/// out: Python 2 (protocol 2, images as str) and Python 3 (protocol 4, images as bytes).
enum TestPickle {
    static func python2(images: [[UInt8]], isSame: [Bool]) -> [UInt8] {
        var output: [UInt8] = [0x80, 0x02, 0x5d, 0x71, 0x00, 0x28]
        var memo: UInt8 = 1
        for image in images {
            if image.count < 256 {
                output += [0x55, UInt8(image.count)]
            } else {
                output += [0x54] + littleEndian32(image.count)
            }
            output += image + [0x71, memo]
            memo &+= 1
        }
        output += [0x65, 0x5d, 0x71, memo, 0x28]
        output += isSame.map { $0 ? 0x88 : 0x89 }
        output += [0x65, 0x86, 0x71, memo &+ 1, 0x2e]
        return output
    }

    static func protocol4(images: [[UInt8]], isSame: [Bool]) -> [UInt8] {
        var body: [UInt8] = [0x5d, 0x94, 0x28]
        for image in images {
            if image.count < 256 {
                body += [0x43, UInt8(image.count)]
            } else {
                body += [0x42] + littleEndian32(image.count)
            }
            body += image + [0x94]
        }
        body += [0x65, 0x5d, 0x94, 0x28]
        body += isSame.map { $0 ? 0x88 : 0x89 }
        body += [0x65, 0x86, 0x94, 0x2e]
        var output: [UInt8] = [0x80, 0x04, 0x95]
        var length = UInt64(body.count)
        for _ in 0..<8 {
            output.append(UInt8(length & 0xff))
            length >>= 8
        }
        return output + body
    }

    static func littleEndian32(_ value: Int) -> [UInt8] {
        (0..<4).map { UInt8((value >> (8 * $0)) & 0xff) }
    }
}

private func pickleError(_ data: [UInt8]) -> PickleError? {
    do {
        _ = try PickleReader.decode(data, path: "test.bin")
        return nil
    } catch {
        return error
    }
}

@Suite struct PickleTests {
    /// pickle.dumps(([np.frombuffer(b'\x01\x02\x03', np.uint8)], [True]), protocol=2), Python 3:
    /// GLOBAL numpy._core.multiarray._reconstruct, bytes via _codecs.encode, BINPUT/BINGET.
    static let numpyProtocol2 =
        "80025d7100636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a7101636e756d70790a6e6461727261790a71024b00857103635f636f646563730a656e636f64650a7104580100000062710558060000006c6174696e31710686710752710887710952710a284b014b0385710b636e756d70790a64747970650a710c58020000007531710d898887710e52710f284b0358010000007c71104e4e4e4affffffff4affffffff4b007471116289680458030000000102037112680686711352711474711562615d711688618671172e"

    /// The same object at protocol 4: FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINBYTES.
    static let numpyProtocol4 =
        "80049595000000000000005d948c166e756d70792e5f636f72652e6d756c74696172726179948c0c5f7265636f6e7374727563749493948c056e756d7079948c076e6461727261799493944b0085944301629487945294284b014b03859468048c0564747970659493948c02753194898887945294284b038c017c944e4e4e4affffffff4affffffff4b0074946289430301020394749462615d94886186942e"

    /// ([np.frombuffer(b'xyz', np.uint8)], [True]) as Python 2 with NumPy 1.x writes it:
    /// GLOBAL numpy.core.multiarray._reconstruct and every str as SHORT_BINSTRING.
    static let numpyPython2 =
        "80025d7100636e756d70792e636f72652e6d756c746961727261790a5f7265636f6e7374727563740a7101636e756d70790a6e6461727261790a71024b008571035501627104877105527106284b014b03857107636e756d70790a64747970650a7108550275317109898887710a52710b284b0355017c710c4e4e4e4affffffff4affffffff4b0074710d6289550378797a710e74710f62615d711088618671112e"

    /// ([np.zeros(2, dtype='<f4')], [True]) at protocol 4: a float32 array.
    static let float32Protocol4 =
        "8004959a000000000000005d948c166e756d70792e5f636f72652e6d756c74696172726179948c0c5f7265636f6e7374727563749493948c056e756d7079948c076e6461727261799493944b0085944301629487945294284b014b02859468048c0564747970659493948c02663494898887945294284b038c013c944e4e4e4affffffff4affffffff4b00749462894308000000000000000094749462615d94886186942e"

    private func expectSingleArray(_ value: PickleValue, bytes expected: [UInt8], isSame: Bool) {
        guard case let .tuple(parts) = value, parts.count == 2 else {
            Issue.record("expected a 2-tuple, found \(value.kindDescription)")
            return
        }
        guard case let .list(images) = parts[0], images.count == 1,
            case let .uint8Array(shape, data) = images[0]
        else {
            Issue.record("expected a list holding one uint8 array, found \(parts[0].kindDescription)")
            return
        }
        #expect(shape == [expected.count])
        #expect(Array(data) == expected)
        guard case let .list(labels) = parts[1], labels.count == 1, case let .bool(flag) = labels[0] else {
            Issue.record("expected a list holding one bool, found \(parts[1].kindDescription)")
            return
        }
        #expect(flag == isSame)
    }

    @Test func numpyArrayProtocol2FromPython3() throws {
        let value = try PickleReader.decode(decodeHex(Self.numpyProtocol2), path: "p2.bin")
        expectSingleArray(value, bytes: [1, 2, 3], isSame: true)
    }

    @Test func numpyArrayProtocol4() throws {
        let value = try PickleReader.decode(decodeHex(Self.numpyProtocol4), path: "p4.bin")
        expectSingleArray(value, bytes: [1, 2, 3], isSame: true)
    }

    @Test func numpyArrayPython2Layout() throws {
        let value = try PickleReader.decode(decodeHex(Self.numpyPython2), path: "py2.bin")
        expectSingleArray(value, bytes: Array("xyz".utf8), isSame: true)
    }

    /// Python 2 str images: SHORT_BINSTRING below 256 bytes, BINSTRING from 256.
    @Test func python2StringsShortAndLong() throws {
        // Written by Python2StylePickler for ([b'ab', b'c' * 300], [False, True]).
        let hex = "80025d71002855026162710154" + "2c010000" + String(repeating: "63", count: 300)
            + "7102655d7103288988658671042e"
        let value = try PickleReader.decode(decodeHex(hex), path: "py2.bin")
        guard case let .tuple(parts) = value, case let .list(images) = parts[0],
            case let .list(labels) = parts[1]
        else {
            Issue.record("expected (list, list), found \(value.kindDescription)")
            return
        }
        guard images.count == 2, case let .bytes(first) = images[0], case let .bytes(second) = images[1]
        else {
            Issue.record("expected two bytes images")
            return
        }
        #expect(Array(first) == Array("ab".utf8))
        #expect(Array(second) == [UInt8](repeating: 0x63, count: 300))
        guard labels.count == 2, case let .bool(a) = labels[0], case let .bool(b) = labels[1] else {
            Issue.record("expected two bools")
            return
        }
        #expect(a == false)
        #expect(b == true)
    }

    @Test func float32ArrayRejected() {
        let error = pickleError(decodeHex(Self.float32Protocol4))
        #expect(error?.reason == .unsupportedArray("dtype 'f4'"))
    }

    @Test func unsupportedOpcodeNamesByteAndOffset() {
        // PROTO 2, EMPTY_DICT ('}', 0x7d), STOP.
        let error = pickleError([0x80, 0x02, 0x7d, 0x2e])
        #expect(error?.reason == .unsupportedOpcode(0x7d))
        #expect(error?.offset == 2)
        let message = error?.description ?? ""
        #expect(message.contains("'test.bin' at byte 2"))
        #expect(message.contains("0x7d"))
    }

    @Test func globalOutsideAllowListRejected() {
        let data: [UInt8] = [0x80, 0x02, 0x63] + Array("os\nsystem\n".utf8) + [0x2e]
        let error = pickleError(data)
        #expect(error?.reason == .globalNotAllowed(module: "os", name: "system"))
        #expect(error?.offset == 2)
    }

    @Test func truncatedBinstringRejected() {
        // BINSTRING announcing 300 bytes with only 3 present.
        let data: [UInt8] = [0x80, 0x02, 0x54, 0x2c, 0x01, 0x00, 0x00, 0x61, 0x62, 0x63]
        let error = pickleError(data)
        #expect(error?.reason == .truncated(opcode: 0x54, needed: 300, available: 3))
        #expect(error?.offset == 2)
    }

    @Test func negativeBinstringLengthRejected() {
        let data: [UInt8] = [0x80, 0x02, 0x54, 0xff, 0xff, 0xff, 0xff, 0x2e]
        #expect(pickleError(data)?.reason == .invalidLength(opcode: 0x54, length: -1))
    }

    @Test func hugeBinbytes8LengthRejected() {
        let data: [UInt8] = [0x80, 0x04, 0x8e] + [UInt8](repeating: 0xff, count: 8)
        #expect(pickleError(data)?.reason == .invalidLength(opcode: 0x8e, length: -1))
    }

    @Test func missingStopRejected() {
        let error = pickleError([0x80, 0x02, 0x5d])
        #expect(error?.reason == .missingStop)
        #expect(error?.offset == 3)
    }

    @Test func unsetMemoEntryRejected() {
        #expect(pickleError([0x80, 0x02, 0x68, 0x05, 0x2e])?.reason == .missingMemoEntry(5))
    }

    @Test func appendWithoutListRejected() {
        // NEWTRUE, NEWTRUE, APPEND: the target of APPEND is a bool.
        let error = pickleError([0x80, 0x02, 0x88, 0x88, 0x61, 0x2e])
        #expect(error?.reason == .unexpectedValue(opcode: 0x61, expected: "a list", found: "a bool"))
    }

    @Test func emptyStackRejected() {
        #expect(pickleError([0x80, 0x02, 0x2e])?.reason == .stackUnderflow(opcode: 0x2e))
        #expect(pickleError([0x80, 0x02, 0x86, 0x2e])?.reason == .stackUnderflow(opcode: 0x86))
    }

    @Test func listContainingItselfRejected() {
        // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND: the list is appended to itself.
        let error = pickleError([0x80, 0x02, 0x5d, 0x71, 0x00, 0x68, 0x00, 0x61, 0x2e])
        #expect(error?.reason == .nestingTooDeep(limit: PickleReader.maxNestingDepth))
        #expect(error?.offset == 8)
        let message = error?.description ?? ""
        #expect(message.contains("nested at most 100 deep"))
        #expect(message.contains("a list that contains itself"))
    }

    @Test func nestingAtLimitAccepted() throws {
        // NONE, then TUPLE1 100 times: 100 tuples inside one another.
        let data: [UInt8] = [0x80, 0x02, 0x4e] + [UInt8](repeating: 0x85, count: 100) + [0x2e]
        var value = try PickleReader.decode(data, path: "nested.bin")
        var depth = 0
        while case let .tuple(items) = value, items.count == 1 {
            value = items[0]
            depth += 1
        }
        #expect(depth == 100)
        guard case .none = value else {
            Issue.record("expected None inside the tuples, found \(value.kindDescription)")
            return
        }
    }

    @Test func nestingPastLimitRejected() {
        for count in [101, 200_000] {
            let data: [UInt8] =
                [0x80, 0x02, 0x4e] + [UInt8](repeating: 0x85, count: count) + [0x2e]
            let error = pickleError(data)
            #expect(error?.reason == .nestingTooDeep(limit: 100), "\(count) tuples")
            #expect(error?.offset == 3 + count, "\(count) tuples")
        }
    }

    @Test(.timeLimit(.minutes(1))) func sharedListsConvertedOnce() throws {
        // List i holds list i - 1 twice, through the memo, for 60 levels: 2^60 paths to the
        // innermost list, which decoding must not follow one by one.
        var data: [UInt8] = [0x80, 0x02, 0x5d, 0x71, 0x00]
        for level in 1..<60 {
            let index = UInt8(level)
            data += [0x5d, 0x71, index, 0x68, index - 1, 0x61, 0x68, index - 1, 0x61]
        }
        data.append(0x2e)
        var value = try PickleReader.decode(data, path: "shared.bin")
        var depth = 0
        while case let .list(items) = value, items.count == 2 {
            value = items[1]
            depth += 1
        }
        #expect(depth == 59)
        guard case let .list(innermost) = value else {
            Issue.record("expected the innermost list, found \(value.kindDescription)")
            return
        }
        #expect(innermost.isEmpty)
    }

    @Test func builtLayoutsDecodeToSameContent() throws {
        let images: [[UInt8]] = [Array("short".utf8), [UInt8](repeating: 7, count: 700)]
        for data in [
            TestPickle.python2(images: images, isSame: [true]),
            TestPickle.protocol4(images: images, isSame: [true]),
        ] {
            let value = try PickleReader.decode(data, path: "built.bin")
            guard case let .tuple(parts) = value, case let .list(decoded) = parts[0] else {
                Issue.record("expected (list, list), found \(value.kindDescription)")
                continue
            }
            let decodedBytes = decoded.compactMap { item -> [UInt8]? in
                if case let .bytes(slice) = item { Array(slice) } else { nil }
            }
            #expect(decodedBytes == images)
        }
    }
}
