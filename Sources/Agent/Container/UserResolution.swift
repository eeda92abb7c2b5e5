import Bridge

/// `process.user.username` resolved against the container's own `/etc/passwd` and
/// `/etc/group` into `uid`/`gid` (guest-behaviour §7.1 sandbox step 6, workload step 7, §7.3).
/// The host sends an image's `USER` (or a pod's run-as user name) as a name; runc only knows
/// numbers and ignores the name, so without this the process would run as uid 0.
///
/// The forms are those of the OCI image spec's `User`: `user`, `uid`, `user:group`, `uid:gid`,
/// `uid:group`, `user:gid`. A name must match exactly one entry. A lone uid takes its primary
/// group from `/etc/passwd`, or 0 when no entry has it (a uid is not required to exist).
enum UserResolution {
    struct Resolved: Equatable {
        var uid: UInt32
        var gid: UInt32
    }

    /// Resolves `user` against the files under `rootfs`.
    static func resolve(_ user: String, rootfs: String) throws(BridgeError) -> Resolved {
        let parts = user.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            if let uid = UInt32(parts[0]) {
                let entry = try? single(in: "etc/passwd", rootfs: rootfs, what: "user with uid", user) { $0[2] == parts[0] }
                return Resolved(uid: uid, gid: entry.flatMap { UInt32($0[3]) } ?? 0)
            }
            let entry = try single(in: "etc/passwd", rootfs: rootfs, what: "user", user) { $0[0] == parts[0] }
            return Resolved(uid: try number(entry[2], user), gid: try number(entry[3], user))
        case 2:
            var resolved = Resolved(uid: 0, gid: 0)
            if let uid = UInt32(parts[0]) {
                resolved.uid = uid
            } else {
                resolved.uid = try number(single(in: "etc/passwd", rootfs: rootfs, what: "user", String(parts[0])) { $0[0] == parts[0] }[2], user)
            }
            if let gid = UInt32(parts[1]) {
                resolved.gid = gid
            } else {
                resolved.gid = try number(single(in: "etc/group", rootfs: rootfs, what: "group", String(parts[1])) { $0[0] == parts[1] }[2], user)
            }
            return resolved
        default:
            throw BridgeError(.fail, "invalid user '\(user)': expected user, uid, user:group or uid:gid")
        }
    }

    /// Resolves the `username` of an OCI process object in place: `uid` and `gid` set, the name
    /// removed. Returns whether there was a name.
    @discardableResult
    static func apply(to process: inout JSONValue, rootfs: String) throws(BridgeError) -> Bool {
        guard case .string(let name)? = process["user"]?["username"], !name.isEmpty else { return false }
        let resolved = try resolve(name, rootfs: rootfs)
        var user = process["user"] ?? .object([])
        user.removeMember("username")
        user.setMember(["uid"], .int(Int64(resolved.uid)))
        user.setMember(["gid"], .int(Int64(resolved.gid)))
        process.setMember(["user"], user)
        return true
    }

    /// The one entry (its colon-separated fields, at least four) of a passwd/group file that
    /// `matches`.
    /// `file` is read inside `rootfs` as the container sees it (`readContainerFile`).
    private static func single(in file: String, rootfs: String, what: String, _ name: String,
                               matching matches: ([Substring]) -> Bool) throws(BridgeError) -> [Substring] {
        let text: String
        do { text = try readContainerFile(root: rootfs, file) } catch { throw BridgeError(.fail, "failed to find \(what) \(name): \(error)") }
        var found: [[Substring]] = []
        // Lines as Go's bufio.ScanLines cuts them: at "\n", less one "\r" before it (split as
        // scalars: "\r\n" is one Character to Swift).
        let lines = text.unicodeScalars.split(separator: "\n").map { scalars -> Substring in
            var line = String.UnicodeScalarView(scalars)
            if line.last == "\r" { line.removeLast() }
            return Substring(String(line))
        }
        for line in lines where !line.hasPrefix("#") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count >= 4 && matches(fields) { found.append(fields) }
        }
        guard found.count == 1 else {
            throw BridgeError(.fail, "failed to find \(what) \(name) in /\(file): \(found.count) entries match, not 1")
        }
        return found[0]
    }

    private static func number(_ field: Substring, _ user: String) throws(BridgeError) -> UInt32 {
        guard let value = UInt32(field) else { throw BridgeError(.fail, "user '\(user)': '\(field)' is not a valid id") }
        return value
    }
}
