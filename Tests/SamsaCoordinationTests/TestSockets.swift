import Foundation
import Glibc

/// Blocking POSIX sockets on 127.0.0.1 for the tests' fake server and proxy (each connection gets
/// its own thread; nothing here runs on an event loop).
enum TestSockets {
    /// A listening socket on 127.0.0.1 and its port.
    static func listen() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, Glibc.listen(fd, 64) == 0 else {
            Glibc.close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) { pointer in
            _ = pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// A connection to 127.0.0.1:`port`, or nil if refused.
    static func connect(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else {
            Glibc.close(fd)
            return nil
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return fd
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// Exactly `count` bytes, or nil at the end of the stream (or an error).
    static func read(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + filled, count - filled, 0) }
            if n <= 0 { return nil }
            filled += n
        }
        return bytes
    }

    /// One length-prefixed frame (ZooKeeper's framing), or nil at the end of the stream.
    static func readFrame(_ fd: Int32) -> [UInt8]? {
        guard let prefix = read(fd, 4) else { return nil }
        let length = Int(Int32(bigEndian: prefix.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
        guard length >= 0, length <= 16 << 20 else { return nil }
        return length == 0 ? [] : read(fd, length)
    }

    @discardableResult
    static func write(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// Ends a connection at once, waking any thread blocked on it.
    static func hangUp(_ fd: Int32) {
        shutdown(fd, Int32(SHUT_RDWR))
    }
}

/// Big-endian jute encoding for the fake server's replies.
struct JuteBytes {
    var bytes: [UInt8] = []
    mutating func int(_ value: Int32) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
    mutating func long(_ value: Int64) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
    mutating func buffer(_ value: [UInt8]) {
        int(Int32(value.count))
        bytes += value
    }
    mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }
    mutating func stat() {
        for _ in 0..<4 { long(1) }
        for _ in 0..<3 { int(0) }
        long(0)
        int(0)
        int(0)
        long(1)
    }
    /// With its length prefix.
    var frame: [UInt8] {
        var framed = JuteBytes()
        framed.int(Int32(bytes.count))
        return framed.bytes + bytes
    }

    static func int(_ bytes: [UInt8], at offset: Int) -> Int32 {
        guard bytes.count >= offset + 4 else { return 0 }
        return Int32(bigEndian: bytes[offset..<offset + 4].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) })
    }
}
