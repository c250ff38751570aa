import Foundation
import Synchronization
import Testing

@testable import AtomRPC
import AtomTesting

#if os(Linux)
import Glibc

/// The short scheduler slice of the threads on the message path: only those threads get it,
/// a thread keeps its policy and nice value, and processes without it are untouched.
@Suite("Reactor scheduling")
struct ReactorSchedulingTests {
    /// Custom slices for normal threads came with Linux 6.12; before, the kernel ignores them.
    static var kernelHasCustomSlices: Bool {
        let version = ProcessInfo.processInfo.operatingSystemVersion
        return version.majorVersion > 6 || (version.majorVersion == 6 && version.minorVersion >= 12)
    }

    /// Runs `body` on a thread of its own (a test must not change the slice of a shared pool
    /// thread) and returns what it returns.
    static func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }

    /// The threads of this process: id and name.
    static func threads() -> [(id: Int32, name: String)] {
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return ids.compactMap { id in
            guard let tid = Int32(id),
                  let name = try? String(contentsOfFile: "/proc/self/task/\(id)/comm", encoding: .utf8)
            else { return nil }
            return (tid, name.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// The slice of a thread of this process, or nil when the thread has ended since it was
    /// listed (other suites start and stop clients and contexts while this one runs).
    static func sliceIfAlive(_ thread: Int32) -> (alive: Bool, slice: Duration?) {
        let slice = ReactorScheduling.currentSlice(thread: thread)
        return (FileManager.default.fileExists(atPath: "/proc/self/task/\(thread)"), slice)
    }

    @Test("a thread gets the slice it asks for and keeps its nice value")
    func setsSliceKeepsNice() async {
        let (applied, slice, nice) = await Self.onOwnThread { () -> (Bool, Duration?, Int32) in
            // Raising one's own nice value needs no privilege; on Linux it is per thread.
            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 5)
            let applied = ReactorScheduling.setSlice(.microseconds(200))
            errno = 0
            return (applied, ReactorScheduling.currentSlice(), getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0))
        }
        #expect(nice == 5, "the nice value must survive the slice")
        if Self.kernelHasCustomSlices {
            #expect(applied)
            #expect(slice == .microseconds(200))
        } else {
            #expect(!applied, "this kernel ignores custom slices: nothing is reported applied")
        }
    }

    @Test("the kernel keeps a slice within 100 us - 100 ms")
    func clamps() async {
        let slice = await Self.onOwnThread { () -> Duration? in
            ReactorScheduling.setSlice(.microseconds(10))
            return ReactorScheduling.currentSlice()
        }
        if Self.kernelHasCustomSlices {
            #expect(slice == .microseconds(100))
        } else {
            #expect(slice == nil)
        }
    }

    @Test("a new context's I/O thread inherits the slice; the thread that made the socket keeps its own")
    func ioThreadInherits() async throws {
        let expected = ReactorScheduling.slice
        let before = Set(Self.threads().map(\.id))
        let (creatorBefore, creatorAfter, socket) = await Self.onOwnThread { () -> (Duration?, Duration?, ZMQSocket?) in
            let creatorBefore = ReactorScheduling.currentSlice()
            let socket = try? ZMQSocket(.dealer, context: ZMQContext())
            return (creatorBefore, ReactorScheduling.currentSlice(), socket)
        }
        defer { socket?.close() }
        #expect(socket != nil)
        #expect(creatorAfter == creatorBefore, "the creating thread's own slice is put back")
        // libzmq names its threads as they start: wait for the new I/O thread's name.
        var ioThreads: [Int32] = []
        _ = await eventually(timeout: .seconds(2), every: .milliseconds(10)) {
            ioThreads = Self.threads().filter { !before.contains($0.id) && $0.name.hasPrefix("ZMQbg/IO") }.map(\.id)
            return !ioThreads.isEmpty
        }
        try #require(!ioThreads.isEmpty, "no new libzmq I/O thread appeared")
        // This test's context is alive (its socket holds it), so its I/O thread is too; another
        // suite's may end while this looks, and is skipped.
        var checked = 0
        for thread in ioThreads {
            let (alive, slice) = Self.sliceIfAlive(thread)
            guard alive else { continue }
            checked += 1
            if Self.kernelHasCustomSlices, let expected {
                #expect(slice == expected)
            } else {
                #expect(slice == creatorBefore)
            }
        }
        #expect(checked > 0)
    }

    @Test("a client's reactor thread has the slice, and the process's other threads do not")
    func reactorThreadOnly() async throws {
        let client = try RPCClient(endpoint: "ipc:///tmp/atom-scheduling-\(UUID().uuidString).ipc", name: "scheduling-test")
        defer { client.close() }
        var reactors: [Int32] = []
        _ = await eventually(timeout: .seconds(2), every: .milliseconds(10)) {
            reactors = Self.threads().filter { $0.name == "atom-rpc-client" }.map(\.id)
            return !reactors.isEmpty
        }
        try #require(!reactors.isEmpty, "no client reactor thread")
        let main = getpid()
        let mainSlice = ReactorScheduling.currentSlice(thread: main)
        var checked = 0
        for thread in reactors {
            // Other suites' clients may close while this looks: those are skipped.
            let (alive, slice) = Self.sliceIfAlive(thread)
            guard alive else { continue }
            checked += 1
            if Self.kernelHasCustomSlices, let expected = ReactorScheduling.slice {
                #expect(slice == expected)
            } else {
                #expect(slice == mainSlice)
            }
        }
        #expect(checked > 0)
        if Self.kernelHasCustomSlices, let expected = ReactorScheduling.slice {
            #expect(mainSlice != expected, "the main thread keeps the kernel's slice")
        }
    }

    @Test("what a message-path thread starts gets the kernel's slice, not its own")
    func startedThreadsDoNotInherit() async {
        let (own, child, defaultSlice) = await Self.onOwnThread { () -> (Duration?, Duration?, Duration?) in
            let defaultSlice = ReactorScheduling.currentSlice()
            ReactorScheduling.applyToCurrentThread()
            let own = ReactorScheduling.currentSlice()
            let semaphore = DispatchSemaphore(value: 0)
            let box = Mutex<Duration?>(nil)
            Thread {
                box.withLock { $0 = ReactorScheduling.currentSlice() }
                semaphore.signal()
            }.start()
            semaphore.wait()
            return (own, box.withLock { $0 }, defaultSlice)
        }
        if Self.kernelHasCustomSlices, let expected = ReactorScheduling.slice {
            #expect(own == expected)
            #expect(child == defaultSlice, "a thread started by a message-path thread must not inherit its slice")
            #expect(child != expected)
        } else {
            #expect(child == own)
        }
    }

    @Test("ATOM_REACTOR_SLICE_US: the default, a value, 0 for the kernel's own, and out-of-range values refused")
    func setting() throws {
        #expect(try AtomEnvironment([:]).reactorSlice == ReactorScheduling.defaultSlice)
        #expect(try AtomEnvironment(["ATOM_REACTOR_SLICE_US": "250"]).reactorSlice == .microseconds(250))
        #expect(try AtomEnvironment(["ATOM_REACTOR_SLICE_US": "0"]).reactorSlice == nil)
        for bad in ["-1", "50", "100001", "fast"] {
            do {
                _ = try AtomEnvironment(["ATOM_REACTOR_SLICE_US": bad])
                Issue.record("accepted ATOM_REACTOR_SLICE_US=\(bad)")
            } catch {
                #expect("\(error)".contains("ATOM_REACTOR_SLICE_US"), "\(error)")
            }
        }
    }
}
#endif
