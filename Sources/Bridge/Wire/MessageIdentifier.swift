/// The 32-bit `Type` field of a bridge header (bridge-protocol.md §3). It exists as its own type
/// so that the type nibble, the request→response mapping and the names used in error texts are
/// computed in one place, for known and unknown identifiers alike.
public struct MessageIdentifier: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    /// The type nibble (bits 28–31).
    public enum Kind: UInt32, Sendable {
        case none = 0
        case request = 1
        case response = 2
        case notification = 3
    }

    /// The kind encoded in the top nibble, or nil for nibbles 4–15 (never valid).
    @inlinable public var kind: Kind? { Kind(rawValue: rawValue >> 28) }

    /// The identifier with the type nibble cleared (category, message id, version).
    @inlinable public var procedure: UInt32 { rawValue & 0x0FFF_FFFF }

    /// `0x20000000 | (self & 0x0FFFFFFF)`: what the guest answers for any incoming identifier,
    /// including unknown ones and ones that are not requests (§3.1).
    @inlinable public var responseIdentifier: MessageIdentifier {
        MessageIdentifier(0x2000_0000 | procedure)
    }

    /// The request identifier with the same procedure (used by the host side).
    @inlinable public var requestIdentifier: MessageIdentifier {
        MessageIdentifier(0x1000_0000 | procedure)
    }

    // MARK: Requests (host → guest)
    public static let create = MessageIdentifier(0x1010_0101)
    public static let start = MessageIdentifier(0x1010_0201)
    public static let shutdownGraceful = MessageIdentifier(0x1010_0301)
    public static let shutdownForced = MessageIdentifier(0x1010_0401)
    public static let executeProcess = MessageIdentifier(0x1010_0501)
    public static let waitForProcess = MessageIdentifier(0x1010_0601)
    public static let signalProcess = MessageIdentifier(0x1010_0701)
    public static let resizeConsole = MessageIdentifier(0x1010_0801)
    public static let getProperties = MessageIdentifier(0x1010_0901)
    public static let modifySettings = MessageIdentifier(0x1010_0A01)
    public static let negotiateProtocol = MessageIdentifier(0x1010_0B01)
    public static let dumpStacks = MessageIdentifier(0x1010_0C01)
    public static let deleteContainerState = MessageIdentifier(0x1010_0D01)
    /// Host enum only; the Linux guest answers E_NOTIMPL.
    public static let updateContainer = MessageIdentifier(0x1010_0E01)
    /// Host enum only; the Linux guest answers E_NOTIMPL.
    public static let lifecycleNotification = MessageIdentifier(0x1010_0F01)
    /// Windows guests only; the Linux guest answers E_NOTIMPL.
    public static let modifyServiceSettings = MessageIdentifier(0x1020_0101)

    // MARK: Notifications (guest → host)
    /// The only notification the host accepts (§9).
    public static let containerNotification = MessageIdentifier(0x3010_0101)

    /// The name hcsshim's guest prints for this identifier in "function not supported" texts:
    /// its constant name when it has one, else the decimal value (Go's `%v` of the type).
    public var guestName: String {
        switch rawValue {
        case 0: return "None"
        case 0x1010_0101: return "ComputeSystemCreateV1"
        case 0x1010_0201: return "ComputeSystemStartV1"
        case 0x1010_0301: return "ComputeSystemShutdownGracefulV1"
        case 0x1010_0401: return "ComputeSystemShutdownForcedV1"
        case 0x1010_0501: return "ComputeSystemExecuteProcessV1"
        case 0x1010_0601: return "ComputeSystemWaitForProcessV1"
        case 0x1010_0701: return "ComputeSystemSignalProcessV1"
        case 0x1010_0801: return "ComputeSystemResizeConsoleV1"
        case 0x1010_0901: return "ComputeSystemGetPropertiesV1"
        case 0x1010_0A01: return "ComputeSystemModifySettingsV1"
        case 0x1010_0B01: return "ComputeSystemNegotiateProtocolV1"
        case 0x1010_0C01: return "ComputeSystemDumpStacksV1"
        case 0x1010_0D01: return "ComputeSystemDeleteContainerStateV1"
        case 0x2010_0101: return "ComputeSystemResponseCreateV1"
        case 0x2010_0201: return "ComputeSystemResponseStartV1"
        case 0x2010_0301: return "ComputeSystemResponseShutdownGracefulV1"
        case 0x2010_0401: return "ComputeSystemResponseShutdownForcedV1"
        case 0x2010_0501: return "ComputeSystemResponseExecuteProcessV1"
        case 0x2010_0601: return "ComputeSystemResponseWaitForProcessV1"
        case 0x2010_0701: return "ComputeSystemResponseSignalProcessV1"
        case 0x2010_0801: return "ComputeSystemResponseResizeConsoleV1"
        case 0x2010_0901: return "ComputeSystemResponseGetPropertiesV1"
        case 0x2010_0A01: return "ComputeSystemResponseModifySettingsV1"
        case 0x2010_0B01: return "ComputeSystemResponseNegotiateProtocolV1"
        case 0x2010_0C01: return "ComputeSystemResponseDumpStacksV1"
        case 0x3010_0101: return "ComputeSystemNotificationV1"
        default: return String(rawValue)
        }
    }

    public var description: String { "0x" + String(rawValue, radix: 16) + "(\(guestName))" }
}
