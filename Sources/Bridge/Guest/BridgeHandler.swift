/// The one protocol the agent implements to serve the bridge: one method per v4 request.
///
/// Exists so the bridge layer (framing, decoding, validation, negotiation, concurrency, error
/// encoding, size bounds) is independent of what the requests do. `BridgeServer` calls these
/// methods concurrently, one task per request; a slow one (WaitForProcess) never delays others.
/// Inputs arrive decoded and validated (embedded documents already parsed, empty command lines
/// and incomplete OCI specs already rejected). Throw `BridgeError` to choose the HRESULT; any
/// other error is sent as E_FAIL with its description. Cancellation means the connection is gone
/// (or, for a carried WaitForProcess, the agent is stopping).
public protocol BridgeHandler: Sendable {
    /// The capabilities announced at negotiation: report only what is implemented.
    var guestCapabilities: GuestDefinedCapabilities { get }

    /// Create: register the container (runc create). On success the agent later emits exactly
    /// one container notification for it (`BridgeServer.sendNotification`).
    func createContainer(_ request: CreateContainerRequest, settings: ContainerSettings) async throws -> CreateContainerResponse
    /// Start: a no-op for Linux containers in the Go guest.
    func startContainer(_ request: StartContainerRequest) async throws
    /// ShutdownGraceful / ShutdownForced. Return `.noResponse` for the UVM ID (power-off).
    func shutdownContainer(_ request: RequestBase, forced: Bool) async throws -> ShutdownReply
    /// ExecuteProcess: returns the pid in the UVM's root pid namespace.
    func executeProcess(_ request: ExecuteProcessRequest, parameters: ProcessParameters) async throws -> UInt32
    /// WaitForProcess: the exit code when the process exits (or throws on timeout), and what
    /// to call once the response carrying it has been written (or could not be). Not cancelled
    /// when its connection ends if the server carries waits (`BridgeServer.serve(carrying:)`).
    func waitForProcess(_ request: WaitForProcessRequest) async throws -> ProcessExitAnswer
    func signalProcess(_ request: SignalProcessRequest) async throws
    func resizeConsole(_ request: ResizeConsoleRequest) async throws
    /// GetProperties: the server embeds the document, trimmed to the 64 KiB limit.
    func getProperties(_ request: GetPropertiesRequest, query: PropertyQuery) async throws -> PropertiesDocument
    func modifySettings(_ request: ModifySettingsRequest) async throws
    /// DumpStacks: free-form text; the server cuts it to fit.
    func dumpStacks(_ request: DumpStacksRequest) async throws -> String
    func deleteContainerState(_ request: DeleteContainerStateRequest) async throws
}

/// Whether a shutdown request gets an answer.
public enum ShutdownReply: Sendable {
    case respond
    /// The guest is powering off; no response is sent (§1.2 item 5).
    case noResponse
}

/// A WaitForProcess answer. `answered` runs after the response is written (`delivered` true),
/// or could not be because no negotiated connection was up (false; see `BridgeSession`): the
/// agent sends a container's exit notification only after the host was told its init's exit
/// code (guest-behaviour §7.6), which hcsshim's shim relies on (an exit notification first
/// makes it kill the init, or record exit code 1), and keeps an undelivered code for the
/// host's next wait.
public struct ProcessExitAnswer: Sendable {
    public var exitCode: UInt32
    public var answered: (@Sendable (_ delivered: Bool) async -> Void)?

    public init(exitCode: UInt32, answered: (@Sendable (_ delivered: Bool) async -> Void)? = nil) {
        self.exitCode = exitCode
        self.answered = answered
    }
}
