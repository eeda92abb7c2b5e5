#!/bin/sh
# test.sh: builds init/ and exercises vsockexec end to end WITHOUT vsock, using its -u mode
# (host port P = Unix socket "<prefix>_P"), plus init's argument parsing (init itself only runs as
# PID 1 of a VM; here it is only dry-run). Nothing here touches vsock, mounts, or system state.
set -eu

cd "$(dirname "$0")"
make -s all
VE=$PWD/build/vsockexec
INIT=$PWD/build/init
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
P=$T/host   # socket prefix

fails=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }

# The "host": a Python listener. Usage: listener PORT OUT [SEND] [ACCEPTS] [DELAY]
# Binds <prefix>_PORT after DELAY seconds, accepts ACCEPTS connections one after another, sends
# SEND (then half-closes) on the first, and appends everything received to OUT. For ACCEPTS > 1
# every connection but the last is dropped after its first chunk (to exercise reconnects), and
# OUT.dropped is created once it has been closed (a program can wait for it).
cat >"$T/listener.py" <<'EOF'
import os, socket, sys, time
path, out = sys.argv[1], sys.argv[2]
send = sys.argv[3].encode() if len(sys.argv) > 3 else b""
accepts = int(sys.argv[4]) if len(sys.argv) > 4 else 1
time.sleep(float(sys.argv[5]) if len(sys.argv) > 5 else 0)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path + ".tmp"); srv.listen(4)
os.rename(path + ".tmp", path)  # appear atomically: clients see either nothing or a listener
srv.settimeout(20)
with open(out, "ab") as f:
    for n in range(accepts):
        c, _ = srv.accept()
        c.settimeout(20)
        if n == 0 and send:
            c.sendall(send); c.shutdown(socket.SHUT_WR)
        while True:
            b = c.recv(65536)
            if not b: break
            f.write(b); f.flush()
            if n < accepts - 1: break  # drop this connection mid-stream
        c.close()
        if n < accepts - 1: open(out + ".dropped", "w").close()
EOF
wait_sock() { i=0; while [ ! -S "${P}_$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done; }

# 1. stdout and stderr to two ports.
python3 "$T/listener.py" "${P}_1001" "$T/out1001" & L1=$!
python3 "$T/listener.py" "${P}_1002" "$T/out1002" & L2=$!
wait_sock 1001; wait_sock 1002
"$VE" -u "$P" -o 1001 -e 1002 sh -c 'echo to-stdout; echo to-stderr >&2'
wait $L1 $L2
[ "$(cat "$T/out1001")" = to-stdout ] && [ "$(cat "$T/out1002")" = to-stderr ] &&
    pass "-o/-e on separate ports" || fail "-o/-e on separate ports"

# 2. The same port for stdout and stderr shares one connection.
python3 "$T/listener.py" "${P}_1003" "$T/out1003" & L1=$!
wait_sock 1003
"$VE" -u "$P" -o 1003 -e 1003 sh -c 'echo a; echo b >&2; echo c'
wait $L1
[ "$(tr '\n' ' ' <"$T/out1003")" = "a b c " ] && pass "shared port" || fail "shared port"

# 3. stdin from the host, echoed back on the same connection.
python3 "$T/listener.py" "${P}_1004" "$T/out1004" "ping-from-host" & L1=$!
wait_sock 1004
"$VE" -u "$P" -i 1004 -o 1004 cat
wait $L1
[ "$(cat "$T/out1004")" = ping-from-host ] && pass "-i stdin round trip" || fail "-i stdin round trip"

# 4. Nobody listening: exit status 1 with a message.
if "$VE" -u "$P" -o 1999 true 2>"$T/err"; then fail "connect failure"; else
    [ $? -eq 1 ] && grep -q "connect to host port 1999" "$T/err" && pass "connect failure exits 1" ||
        fail "connect failure exits 1"
fi

# 5. -r: the host comes up late, drops the first connection, and the program's exit status passes
#    through. The program writes its last line only once the first connection is gone (it waits
#    for the listener's marker, at most 20 s): that line must arrive on the second connection.
python3 "$T/listener.py" "${P}_1005" "$T/out1005" "" 2 0.5 & L1=$!
set +e
"$VE" -r -u "$P" -e 1005 sh -c 'echo first >&2; i=0; until [ -e "$0" ] || [ $i -ge 400 ]; do sleep 0.05; i=$((i + 1)); done
    echo last >&2; exit 3' "$T/out1005.dropped"
rc=$?
set -e
wait $L1
[ $rc -eq 3 ] && grep -q first "$T/out1005" && grep -q last "$T/out1005" &&
    pass "-r late host, reconnect, exit status" || fail "-r late host, reconnect, exit status (rc=$rc)"

# 5b. -r: the program exits while no host listens (and none ever will): its pending output is
#     dropped after -g ms and its exit status still passes through, so PID 1 sees it end.
set +e
timeout 20 "$VE" -r -g 300 -u "$P" -e 1006 sh -c 'echo never read >&2; exit 5' 2>"$T/err1006"
rc=$?
set -e
[ $rc -eq 5 ] && grep -q "has not listened for 300 ms" "$T/err1006" &&
    pass "-r host never back: gives up after -g, exit status" || fail "-r host never back: gives up after -g, exit status (rc=$rc)"

# 6. Argument errors.
"$VE" -o 0 true 2>/dev/null && fail "port 0 rejected" || pass "port 0 rejected"
"$VE" -u "$P" -o 1 2>/dev/null && fail "missing program" || pass "missing program"
"$VE" -r -u "$P" true 2>/dev/null && fail "-r without -o/-e" || pass "-r without -o/-e"
"$VE" -r -g x -u "$P" -e 1 true 2>/dev/null && fail "-g not a number" || pass "-g not a number"

# 7. init: help, dry run, argument errors, and refusing to run when not PID 1.
"$INIT" --help | grep -q "usage: init" && pass "init --help" || fail "init --help"
plan=$("$INIT" -n -w -e 1 /bin/vsockexec -e 109 /bin/gcs -v4)
echo "$plan" | grep -q "entropy port: 1" && echo "$plan" | grep -q "writable overlays: yes" &&
    echo "$plan" | grep -q "command: \[/bin/vsockexec\] \[-e\] \[109\] \[/bin/gcs\] \[-v4\]" &&
    pass "init -n plan" || fail "init -n plan"
"$INIT" -n -e 0 x 2>/dev/null && fail "init -e 0 rejected" || pass "init -e 0 rejected"
"$INIT" -w /bin/true 2>"$T/err" && fail "init refuses non-PID 1" ||
    { grep -q "refusing to run" "$T/err" && pass "init refuses non-PID 1" || fail "init refuses non-PID 1"; }

[ $fails -eq 0 ] && echo "all tests passed" || { echo "$fails test(s) failed"; exit 1; }
