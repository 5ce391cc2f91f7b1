#!/bin/sh
# serve.sh measures how many messages a second `relayctl serve` accepts
# from CLIENTS (16) concurrent clients, each message committed to its
# SQLite queue and synced to disk (synchronous=FULL, in group commits)
# before its 250, beside Postfix (Debian's package) on the same machine
# taking the same load into its queue, where each queue file is fsynced
# before the 250 (Postfix's default, left on). The load is bench/smtpload:
# MESSAGES single-recipient messages of about 2 KB, 100 a connection, at
# example.net and example.org.
#
#   sudo sh bench/serve.sh                   # from the repository root
#   RUNS=5 MESSAGES=50000 sh bench/serve.sh
#
# After accepting, both do the same: they relay every message to the same
# discard sink (bench/sink, on 127.0.0.1, for the whole script), as they
# would in production, so delivery competes with acceptance for the
# machine on both sides. relayctl: `serve --via smtp://SINK?tls=none`
# with its default 10 outgoing connections; Postfix: `relayhost =
# [SINK]`, its default smtp client concurrency. Neither has limits on the
# clients (relayctl's --messages-per-minute, --recipients-per-hour and
# --connections-per-ip are 0; Postfix's defaults do not bite at 16
# connections), neither looks anything up in DNS, both log one line per
# message to a file, and Postfix has no filters, milters or chroot
# (bench/postfix/main.cf and master.cf). Each measurement starts from an
# empty queue: a fresh database, a fresh Postfix queue directory.
#
# Each round measures both, one after the other, relayctl first in odd
# rounds and Postfix first in even ones, so both meet the machine in the
# same state. A measurement: start the server, send WARMUP messages
# (untimed), wait until they are delivered, time MESSAGES, then wait until
# the queue is empty ("drained after": seconds after the last 250; and
# "accepted and delivered msgs/s": MESSAGES over the whole time), check
# that every message reached the sink, and stop the server. The machine
# may be shared: before each measurement the script waits until it is
# quiet (other processes busy under QUIET_BUSY% of the CPUs over 2 s), and
# if a build or a test binary ran during the timed load it measures
# again, up to three times; the notes under the table say when.
#
# It needs root (Postfix's daemons run as the postfix user) and installs
# Debian's postfix package if it is missing, with no system
# configuration; Postfix runs as a private instance under bench/out/postfix
# (postfix -c), never the system's. Everything it writes goes to bench/out/
# (gitignored); the report (machine, table, medians) is printed to stdout.
set -eu

cd "$(dirname "$0")/.."
root=$(pwd)
out=bench/out
RUNS=${RUNS:-3}
MESSAGES=${MESSAGES:-20000}
WARMUP=${WARMUP:-500}
CLIENTS=${CLIENTS:-16}
PER_CONN=${PER_CONN:-100}
SIZE=${SIZE:-2048}
POSTFIX_PORT=${POSTFIX_PORT:-12526}
QUIET_BUSY=${QUIET_BUSY:-15}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-600}
pf="$root/$out/postfix"

if [ "$(id -u)" != 0 ]; then
	echo "serve.sh runs Postfix, which needs root" >&2
	exit 1
fi
if ! command -v postfix >/dev/null; then
	echo "postfix main_mailer_type select No configuration" | debconf-set-selections
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
fi
if ss -ltn "sport = :$POSTFIX_PORT" | grep -q LISTEN; then
	echo "port $POSTFIX_PORT is taken: set POSTFIX_PORT" >&2
	exit 1
fi
mkdir -p "$out"

echo "building relayctl, sink and smtpload" >&2
go build -o "$out/relayctl" .
go build -o "$out/sink" ./bench/sink
go build -o "$out/smtpload" ./bench/smtpload

relay=
postfix_up=
sink=
cleanup() {
	[ -z "$relay" ] || kill "$relay" 2>/dev/null || true
	[ -z "$postfix_up" ] || postfix -c "$pf/etc" stop >/dev/null 2>&1 || true
	[ -z "$sink" ] || kill "$sink" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The sink runs for the whole script; its address is on its first line.
"$out/sink" -listen 127.0.0.1:0 >"$out/serve-sink.log" 2>&1 &
sink=$!
tries=0
until grep -q '^listening ' "$out/serve-sink.log" 2>/dev/null; do
	tries=$((tries + 1))
	if [ "$tries" -gt 100 ] || ! kill -0 "$sink" 2>/dev/null; then
		echo "sink did not start:" >&2
		cat "$out/serve-sink.log" >&2
		exit 1
	fi
	sleep 0.1
done
sinkaddr=$(sed -n 's/^listening //p' "$out/serve-sink.log")

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
rnd() { awk -v x="$1" -v p="$2" 'BEGIN { printf "%.*f", p, x }'; }

# cpu prints the machine's busy and total CPU time so far (jiffies).
cpu() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
# busy BEFORE AFTER prints the percentage of all CPUs busy between them.
busy() { echo "$1 $2" | awk '{ printf "%.0f", ($4 > $2) ? 100 * ($3 - $1) / ($4 - $2) : 0 }'; }

notes="$out/serve-notes.txt"
: >"$notes"
clock_skew=0
total=0 # messages sent to the sink

# quiet waits until the CPUs are under QUIET_BUSY% busy over 2 s (at most
# 5 minutes, then measures anyway), and notes any wait.
quiet() {
	waited=0
	while :; do
		a=$(cpu)
		sleep 2
		b=$(busy "$a" "$(cpu)")
		[ "$b" -lt "$QUIET_BUSY" ] && break
		if [ "$waited" -ge 300 ]; then
			echo "- $1: the machine was still ${b}% busy after 5 minutes; measured anyway (load: $(cut -d' ' -f1-3 /proc/loadavg))" >>"$notes"
			return
		fi
		sleep 8
		waited=$((waited + 10))
	done
	if [ "$waited" -gt 0 ]; then
		echo "- $1: waited ${waited} s for other work to finish (load: $(cut -d' ' -f1-3 /proc/loadavg))" >>"$notes"
	fi
}

# drain QUEUED waits until QUEUED (a command printing how many messages
# are still to deliver) prints 0, asking every half second.
drain() {
	start=$(now)
	while [ "$($1)" != 0 ]; do
		if [ "$(elapsed "$start" "$(now)" | cut -d. -f1)" -ge "$DRAIN_TIMEOUT" ]; then
			echo "the queue did not drain in $DRAIN_TIMEOUT s" >&2
			exit 1
		fi
		sleep 0.5
	done
}

relayctl_queued() {
	"$out/relayctl" --db "$out/serve.db" queue list --json 2>/dev/null | grep -o '"waiting":[1-9]' | wc -l
}

postfix_queued() {
	find "$pf/spool/maildrop" "$pf/spool/incoming" "$pf/spool/active" "$pf/spool/deferred" "$pf/spool/hold" -type f | wc -l
}

# tally prints the first 5 distinct lines of its input, in order, each
# with how many times it came.
tally() {
	awk '{ if (!($0 in n)) o[++k] = $0; n[$0]++ } END { for (i = 1; i <= k && i <= 5; i++) print n[o[i]] "x " o[i] }'
}

start_relayctl() {
	rm -f "$out/serve.db" "$out/serve.db-wal" "$out/serve.db-shm"
	# From bench/out, so no ./relayctl.yaml changes its settings.
	(cd "$out" && RELAYCTL_CONFIG='' exec ./relayctl --db serve.db serve --listen 127.0.0.1:0 --allow-ip 127.0.0.1 \
		--messages-per-minute 0 --recipients-per-hour 0 --connections-per-ip 0 \
		--via "smtp://$sinkaddr?tls=none" --log-format json 2>serve-relayctl.log) &
	relay=$!
	tries=0
	until grep -q '"msg":"listening"' "$out/serve-relayctl.log" 2>/dev/null; do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ] || ! kill -0 "$relay" 2>/dev/null; then
			echo "relayctl serve did not start:" >&2
			cat "$out/serve-relayctl.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	addr=$(sed -n 's/.*"msg":"listening","addr":"\([^"]*\)".*/\1/p' "$out/serve-relayctl.log")
}

stop_relayctl() {
	kill "$relay"
	wait "$relay" || true
	relay=
	sent=$(grep '"msg":"attempt"' "$out/serve-relayctl.log" | grep -c '"result":"sent"' || true)
	if [ "$sent" != $((WARMUP + MESSAGES)) ] || grep -q '"level":"ERROR"' "$out/serve-relayctl.log"; then
		echo "relayctl delivered $sent messages, want $((WARMUP + MESSAGES)); its log:" >&2
		grep -v '"msg":"\(queued\|attempt\|session\)"' "$out/serve-relayctl.log" | tail -20 >&2
		exit 1
	fi
	grep '"level":"WARN"' "$out/serve-relayctl.log" | sed 's/^{"time":"[^"]*",//' | tally >"$out/serve-warnings.txt"
}

# start_postfix makes a fresh instance (configuration, empty queue) and
# starts it; postfix start returns once smtpd's port is open.
start_postfix() {
	rm -rf "$pf"
	mkdir -p "$pf/etc" "$pf/spool" "$pf/lib"
	for f in main.cf master.cf; do
		sed "s|@OUT@|$pf|g; s|@PORT@|$POSTFIX_PORT|g; s|@SINKHOST@|${sinkaddr%:*}|g; s|@SINKPORT@|${sinkaddr##*:}|g" \
			"bench/postfix/$f" >"$pf/etc/$f"
	done
	chown postfix "$pf/lib"
	postfix -c "$pf/etc" check
	postfix -c "$pf/etc" start >/dev/null 2>&1 || {
		echo "postfix did not start:" >&2
		cat "$pf/maillog" >&2
		exit 1
	}
	postfix_up=1
	# Belt and braces: the queue is new, but make sure it is empty.
	postsuper -c "$pf/etc" -d ALL >/dev/null 2>&1 || true
	addr=127.0.0.1:$POSTFIX_PORT
}

stop_postfix() {
	postfix -c "$pf/etc" stop >/dev/null 2>&1
	postfix_up=
	sent=$(grep -c ' status=sent ' "$pf/maillog" || true)
	# One complaint is harmless: a new file's time stamp, finer than the
	# tick time(2) reads, can be a second ahead of it as a second turns;
	# cleanup then sets that file's time stamps back.
	skew=$(grep -c 'warning: file system clock is 1 seconds ahead' "$pf/maillog" || true)
	clock_skew=$((clock_skew + skew))
	if [ "$sent" != $((WARMUP + MESSAGES)) ] || grep -q ' \(error\|fatal\|panic\): ' "$pf/maillog"; then
		echo "postfix delivered $sent messages, want $((WARMUP + MESSAGES)); its log:" >&2
		grep -v ' status=sent \|cleanup\[\|qmgr\[.*\(removed\|from=\)\|smtpd\[.*\(client=\|connect from\)' "$pf/maillog" | tail -20 >&2
		exit 1
	fi
	grep ' warning: ' "$pf/maillog" | grep -v 'warning: \(file system clock is 1 seconds ahead\|resetting file time stamps\)' |
		sed 's/^.* postfix\/\([a-z]*\)\[[0-9]*\]: /\1: /' | tally >"$out/serve-warnings.txt"
}

# watch FILE notes in FILE, until FILE.stop exists, the programs seen
# running that compete for the CPUs (a build, a test binary: other
# people's work).
watch() {
	while [ ! -e "$1.stop" ]; do
		# shellcheck disable=SC2009 # pgrep would need one call a name
		ps -eo comm= | grep -E '^(go|compile|link|asm|cgo|vet|gcc|cc1)$|[.]test$' >>"$1" || true
		sleep 0.5
	done
}

# measure SERVER ROUND: one measurement, appended to
# bench/out/serve-SERVER.results as "round msgs/s p50 p99 drained busy
# end-to-end".
# If other work ran meanwhile it measures again, up to three times.
measure() {
	attempt=1
	while :; do
		quiet "$1 round $2"
		"start_$1"
		"$out/smtpload" -addr "$addr" -clients "$CLIENTS" -messages "$WARMUP" -per-conn "$PER_CONN" -size "$SIZE" >/dev/null
		drain "$1_queued"
		sync
		: >"$out/serve-others.txt"
		rm -f "$out/serve-others.txt.stop"
		watch "$out/serve-others.txt" &
		watcher=$!
		c0=$(cpu)
		"$out/smtpload" -addr "$addr" -clients "$CLIENTS" -messages "$MESSAGES" -per-conn "$PER_CONN" -size "$SIZE" -json \
			>"$out/serve-$1-$2.json"
		c1=$(cpu)
		t=$(now)
		: >"$out/serve-others.txt.stop"
		wait "$watcher"
		drain "$1_queued"
		d=$(elapsed "$t" "$(now)")
		"stop_$1"
		total=$((total + WARMUP + MESSAGES))
		[ -s "$out/serve-others.txt" ] || break
		others=$(sort -u "$out/serve-others.txt" | tr '\n' ' ' | sed 's/ $//')
		if [ "$attempt" -ge 3 ]; then
			echo "- $1 round $2: other work ($others) ran during all three attempts; the last is reported" >>"$notes"
			break
		fi
		echo "- $1 round $2: other work ($others) ran during the measurement; measured again" >>"$notes"
		attempt=$((attempt + 1))
	done
	while read -r line; do
		echo "- $1 round $2 logged: $line" >>"$notes"
	done <"$out/serve-warnings.txt"
	json=$(cat "$out/serve-$1-$2.json")
	field() { echo "$json" | sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p"; }
	e2e=$(awk -v n="$MESSAGES" -v t="$(field elapsed_s)" -v d="$d" 'BEGIN { print n / (t + d) }')
	echo "$2 $(field msgs_per_s) $(field p50_ms) $(field p99_ms) $d $(busy "$c0" "$c1") $e2e" >>"$out/serve-$1.results"
	echo "$1 round $2: $(rnd "$(field msgs_per_s)" 0) msgs/s" >&2
}

# The machine, as the report's header.
fsync_us=$(dd if=/dev/zero of="$out/serve-fsync.test" bs=4k count=500 oflag=dsync 2>&1 |
	awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") print int($(i - 1) / 500 * 1e6) }')
rm -f "$out/serve-fsync.test"
echo "Machine: $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM,"
echo "Linux $(uname -r), bench/out on $(df -T "$out" | awk 'NR == 2 { print $2 " (" $1 ")" }'), a synced 4 KiB write ~${fsync_us} µs (dd oflag=dsync);"
echo "$(go version | cut -d' ' -f3-), relayctl with $(go version -m "$out/relayctl" | awk '$2 == "modernc.org/sqlite" { print $2 " " $3 }'),"
echo "Postfix $(postconf -d -h mail_version) (Debian package $(dpkg-query -W -f '${Version}' postfix))."
echo "Load: $MESSAGES messages of $SIZE bytes, 1 recipient, from $CLIENTS clients, $PER_CONN messages a connection; $WARMUP more untimed first; $RUNS rounds."
echo

rm -f "$out/serve-relayctl.results" "$out/serve-postfix.results"
i=1
while [ "$i" -le "$RUNS" ]; do
	if [ $((i % 2)) = 1 ]; then
		measure relayctl "$i"
		measure postfix "$i"
	else
		measure postfix "$i"
		measure relayctl "$i"
	fi
	i=$((i + 1))
done

kill "$sink"
wait "$sink" || true
sink=
got=$(sed -n 's/^received \([0-9]*\) messages.*/\1/p' "$out/serve-sink.log")
if [ "$got" != "$total" ]; then
	echo "the sink received $got messages, want $total" >&2
	exit 1
fi

# median FILE COLUMN prints the median of a results column.
median() {
	cut -d' ' -f"$2" "$1" | LC_ALL=C sort -g | sed -n "$(((RUNS + 1) / 2))p"
}

echo "| server | round | accepted msgs/s | p50 ms | p99 ms | drained after | CPU busy | accepted and delivered msgs/s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for s in relayctl postfix; do
	while read -r r rate p50 p99 d b e2e; do
		echo "| $s | $r | $(rnd "$rate" 0) | $(rnd "$p50" 1) | $(rnd "$p99" 1) | $d s | $b% | $(rnd "$e2e" 0) |"
	done <"$out/serve-$s.results"
done
echo
echo "| server | accepted msgs/s (median) | p50 ms (median) | p99 ms (median) | drained after (median) | accepted and delivered msgs/s (median) |"
echo "|---|---:|---:|---:|---:|---:|"
for s in relayctl postfix; do
	f="$out/serve-$s.results"
	echo "| $s | $(rnd "$(median "$f" 2)" 0) | $(rnd "$(median "$f" 3)" 1) | $(rnd "$(median "$f" 4)" 1) | $(median "$f" 5) s | $(rnd "$(median "$f" 7)" 0) |"
done
echo
echo "Accepted msgs/s: $MESSAGES over the time from the first connection to the last 250; p50 and p99 are of the reply"
echo "to the final dot. Drained after: how long after the last 250 the queue was empty (all delivered to the sink)."
echo "CPU busy: the whole machine's, both CPUs, during the timed load. Accepted and delivered msgs/s: $MESSAGES"
echo "over the time from the first connection until the queue was empty."
echo "The sink received $got messages, as sent."
if [ "$clock_skew" -gt 0 ]; then
	echo "- Postfix's cleanup warned $clock_skew times that \"file system clock is 1 seconds ahead of local clock\": file time stamps finer than time(2), a second's turn; harmless (cleanup resets that file's time stamps)" >>"$notes"
fi
if [ -s "$notes" ]; then
	echo
	echo "Notes:"
	cat "$notes"
fi
