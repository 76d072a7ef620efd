import Foundation
import Testing

/// What one run of the `slat` executable did.
struct SlatRun {
    /// The exit status, or the signal number when `signalled`.
    var status: Int32
    /// Whether the process ended by a signal (a crash or a trap).
    var signalled: Bool
    /// Whether it was killed for running past its time limit.
    var timedOut: Bool
    var output: String
    var error: String
}

/// The built `slat` executable: `SLAT_EXECUTABLE` when set (to run these
/// tests against another build), else the one next to the test bundle.
var slatExecutable: URL? {
    if let path = ProcessInfo.processInfo.environment["SLAT_EXECUTABLE"] { return URL(fileURLWithPath: path) }
    let candidates = [
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("slat"),
        Bundle.main.bundleURL.appendingPathComponent("slat"),
        Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("slat"),
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/slat"),
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
}

/// Runs `slat` with `arguments` under a 4 GiB address-space limit, killing
/// it after `timeLimit` seconds (so a runaway build fails the test instead
/// of exhausting the machine).
func runSlat(_ arguments: [String], timeLimit: Double = 60) throws -> SlatRun {
    let process = Process()
    guard let executable = slatExecutable else {
        Issue.record("the slat executable was not built next to the tests")
        throw CocoaError(.fileNoSuchFile)
    }
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", "ulimit -v 4194304 && exec \"$0\" \"$@\"", executable.path] + arguments
    let outputFile = FileManager.default.temporaryDirectory.appendingPathComponent("slat-out-\(UUID().uuidString)")
    let errorFile = FileManager.default.temporaryDirectory.appendingPathComponent("slat-err-\(UUID().uuidString)")
    guard FileManager.default.createFile(atPath: outputFile.path, contents: nil),
          FileManager.default.createFile(atPath: errorFile.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
    defer {
        try? FileManager.default.removeItem(at: outputFile)
        try? FileManager.default.removeItem(at: errorFile)
    }
    // Files, not pipes: a runaway process's output cannot fill a pipe and stall it.
    process.standardOutput = try FileHandle(forWritingTo: outputFile)
    process.standardError = try FileHandle(forWritingTo: errorFile)
    try process.run()
    let deadline = Date().addingTimeInterval(timeLimit)
    var timedOut = false
    while process.isRunning {
        if Date() > deadline {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
            break
        }
        Thread.sleep(forTimeInterval: 0.01)
    }
    process.waitUntilExit()
    return SlatRun(
        status: process.terminationStatus, signalled: process.terminationReason == .uncaughtSignal, timedOut: timedOut,
        output: (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "",
        error: (try? String(contentsOf: errorFile, encoding: .utf8)) ?? "")
}

/// A new empty directory under the temporary directory.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("slat-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Writes `bytes` to `name` in `directory` and returns its path.
func writeFile(_ name: String, _ bytes: [UInt8], in directory: URL) throws -> String {
    let url = directory.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url.path
}

/// Writes `text` (UTF-8) to `name` in `directory` and returns its path.
func writeFile(_ name: String, _ text: String, in directory: URL) throws -> String {
    try writeFile(name, Array(text.utf8), in: directory)
}
