#!/usr/bin/env bash
# The per-peer summaries of `zmtp conform` quoted in spec-notes/conformance.md: libzmq (pyzmq targets,
# Tests/InteropTests/conform_target.py) and swift-zmtp (the zmtp CLI as targets), NULL and CURVE.
#   scripts/conform-peers.sh        (after swift build; needs python3 with pyzmq)
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
Z="${ZMTP:-$root/.build/debug/zmtp}"
T="$root/Tests/InteropTests/conform_target.py"
tmp=$(mktemp -d); trap 'pkill -f "conform_target.py" ; pkill -f "zmtp [a-z]* --bind tcp://127.0.0.1:279"; rm -rf "$tmp"' EXIT
for t in PUB XPUB SUB XSUB PUSH PULL; do
  sleep 300 | python3 $T $t > $tmp/t.$t & 
  sleep 1; p=$(head -1 $tmp/t.$t | cut -d' ' -f2)
  echo "libzmq $t: $("$Z" conform tcp://127.0.0.1:$p --socket-type $t --wait 300 2>/dev/null | tail -1)"
  pkill -f "conform_target.py $t"
done
keys=$(python3 -c "import zmq; p,s=zmq.curve_keypair(); print(p.decode(), s.decode())"); pub=${keys% *}; sec=${keys#* }
sleep 300 | python3 $T PUB "$sec" > $tmp/t.CPUB & sleep 1; p=$(head -1 $tmp/t.CPUB | cut -d' ' -f2)
echo "libzmq PUB CURVE: $("$Z" conform tcp://127.0.0.1:$p --socket-type PUB --wait 300 --curve-serverkey=$pub 2>/dev/null | tail -1)"
pkill -f "conform_target.py PUB"
run() { # name port args...
  local name=$1 port=$2; shift 2
  sleep 0.7
  echo "swift-zmtp $name: $("$Z" conform tcp://127.0.0.1:$port "$@" --wait 300 2>/dev/null | tail -1)"
}
feed() { while true; do echo "$1"; sleep ${2:-0.002}; done; }
feed conform.A.1 | "$Z" pub --bind tcp://127.0.0.1:27901 --count-subscriptions 2>/dev/null & run PUB 27901 --socket-type PUB; pkill -f "zmtp [a-z]* --bind tcp://127.0.0.1:279"
feed conform.A.1 | "$Z" xpub --bind tcp://127.0.0.1:27902 --count-subscriptions >/dev/null 2>&1 & run XPUB 27902 --socket-type XPUB; pkill -f "zmtp [a-z]* --bind tcp://127.0.0.1:279"
"$Z" sub --bind tcp://127.0.0.1:27903 --subscribe conform. >/dev/null 2>&1 & run SUB 27903 --socket-type SUB; pkill -f "zmtp [a-z]* --bind tcp://127.0.0.1:279"
feed '["01636f6e666f726d2e"]' 0.05 | "$Z" xsub --bind tcp://127.0.0.1:27904 --format hex >/dev/null 2>&1 & run XSUB 27904 --socket-type XSUB; pkill -f "zmtp [a-z]* --bind tcp://127.0.0.1:279"
feed conform.1 | "$Z" push --bind tcp://127.0.0.1:27905 2>/dev/null & run PUSH 27905 --socket-type PUSH; pkill -f "zmtp [a-z]* --bind tcp://127.0.0.1:279"
"$Z" pull --bind tcp://127.0.0.1:27906 >/dev/null 2>&1 & run PULL 27906 --socket-type PULL; pkill -f "zmtp [a-z]* --bind tcp://127.0.0.1:279"
keys=$("$Z" keygen); pub=$(echo "$keys" | sed 's/.*"public":"\([^"]*\)".*/\1/'); sec=$(echo "$keys" | sed 's/.*"secret":"\([^"]*\)".*/\1/')
feed conform.A.1 | "$Z" pub --bind tcp://127.0.0.1:27907 --count-subscriptions --curve-server --curve-secret="$sec" 2>/dev/null & run "PUB CURVE" 27907 --socket-type PUB --curve-serverkey="$pub"; pkill -f "zmtp [a-z]* --bind tcp://127.0.0.1:279"
feed conform.A.1 | "$Z" xpub --bind tcp://127.0.0.1:27908 >/dev/null 2>&1 & run "XPUB (default: repeats collapse)" 27908 --socket-type XPUB; pkill -f "zmtp [a-z]* --bind tcp://127.0.0.1:279"
