@testable import Agent
import Bridge
import Testing

/// runc's failures become the HRESULTs hcsshim's host acts on (guest-behaviour §10).
@Suite("runc errors", .timeLimit(.minutes(5)))
struct RuncErrorTests {
    @Test("the rules match as Go's guest matches them; 'does not exist' only for a whole log-file message")
    func mapping() {
        let log = #"{"level":"info","msg":"starting"}"# + "\n" + #"{"level":"error","msg":"container abc does not exist"}"# + "\n"
        #expect(RuncErrorMapping.hresult(for: RuncErrorMapping.message(log: log, stderr: "")) == .systemNotFound)
        // The same words in the stderr of kill/delete/ps/update: the host must not take a failure
        // for "already gone".
        let stderr = #"time="2026-12-01T13:00:00Z" level=error msg="container abc does not exist""#
        #expect(RuncErrorMapping.hresult(for: RuncErrorMapping.message(log: nil, stderr: stderr)) == .fail)
        #expect(RuncErrorMapping.hresult(for: "unable to mount: the container path does not exist here") == .fail)
        #expect(RuncErrorMapping.hresult(for: "container with given ID already exists") == .systemAlreadyExists)
        #expect(RuncErrorMapping.hresult(for: "invalid container ID format: ..") == .invalidArgument)
        #expect(RuncErrorMapping.hresult(for: "cannot delete container abc that is not stopped: running") == .invalidState)
        #expect(RuncErrorMapping.hresult(for: #"time="x" level=error msg="container not running""#) == .systemAlreadyStopped)
        // Case matters, as in Go: these are not runc's words.
        #expect(RuncErrorMapping.hresult(for: "Container Not Running") == .fail)
    }
}
