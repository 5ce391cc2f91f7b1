#!/bin/sh
# run.sh measures `relayctl run` delivering single-recipient messages to a
# local sink (bench/sink: accepts and discards) over 8 connections, with
# every recipient's state recorded in the store, against the ceiling: a bare
# go-smtp client loop (bench/rawsend) sending as many similar messages over
# 8 connections to the same sink, with no store. Wall time and peak RSS,
# the median of RUNS runs, printed as a markdown table.
#
#   sh bench/run.sh                          # from the repository root
#   RUNS=5 SIZES="5000 20000 100000" sh bench/run.sh
#
# Each round plans the list into a fresh database (not timed), times
# `relayctl run`, then times rawsend sending as many; the rounds
# alternate the two so that both meet the machine in the same state.
# Everything it writes goes to bench/out/ (gitignored).
set -eu

cd "$(dirname "$0")/.."
out=bench/out
RUNS=${RUNS:-3}
SIZES=${SIZES:-"5000 20000"}
CONNS=${CONNS:-8}
PER_CONN=${PER_CONN:-1000}
DOMAINS=4

if ! command -v /usr/bin/time >/dev/null; then
	apt-get update && apt-get install -y time
fi
mkdir -p "$out"

echo "building relayctl, sink and rawsend" >&2
go build -o "$out/relayctl" .
go build -o "$out/sink" ./bench/sink
go build -o "$out/rawsend" ./bench/rawsend

# The sink runs for the whole script; its address is on its first line.
"$out/sink" -listen 127.0.0.1:0 >"$out/sink.log" 2>&1 &
sink=$!
trap 'kill "$sink" 2>/dev/null || true' EXIT
tries=0
until grep -q '^listening ' "$out/sink.log" 2>/dev/null; do
	tries=$((tries + 1))
	if [ "$tries" -gt 100 ] || ! kill -0 "$sink" 2>/dev/null; then
		echo "sink did not start:" >&2
		cat "$out/sink.log" >&2
		exit 1
	fi
	sleep 0.1
done
addr=$(sed -n 's/^listening //p' "$out/sink.log")
via="smtp://$addr?tls=none"

# The message rawsend sends too: same headers, a field in subject and body.
cat >"$out/run-message.eml" <<'MSG'
From: Example Club <news@example.org>
Subject: Hello {{.first_name}}

Dear {{.first_name}},

The spring meeting is on 12 April at the club house.
See you there.
MSG

# The same shaping as rawsend's: PER_CONN messages a connection. (The
# provider table's default, 100, would otherwise cap --per-connection.)
cat >"$out/run-config.yaml" <<CFG
providers:
  default:
    per_connection: $PER_CONN
CFG

mib() {
	awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'
}

# median FILE COLUMN prints the median of a column of a times file.
median() {
	mid=$(((RUNS + 1) / 2))
	cut -d' ' -f"$2" "$1" | LC_ALL=C sort -n | sed -n "${mid}p"
}

rate() {
	awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", n / t }'
}

expected=0
for n in $SIZES; do
	list="$out/run-list-$n.csv"
	# Recipients at DOMAINS reserved domains, as rawsend addresses them.
	awk -v n="$n" -v d="$DOMAINS" 'BEGIN { print "email,first_name"; for (i = 0; i < n; i++) printf "user%d@d%d.example,Name%d\n", i, i % d, i }' >"$list"
	: >"$out/run-$n.times"
	: >"$out/rawsend-$n.times"
	# relayctl and rawsend take turns, so both meet the machine (and the
	# sink) in the same state.
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		db="$out/run.db"
		rm -f "$db" "$db-wal" "$db-shm"
		"$out/relayctl" --config "$out/run-config.yaml" --db "$db" plan "$list" --message "$out/run-message.eml" --no-mx --name bench \
			--per-job "$n" --connections "$CONNS" --per-connection "$PER_CONN" --json >/dev/null
		/usr/bin/time -f '%e %M %U %S' -o "$out/time.tmp" "$out/relayctl" --db "$db" run bench --via "$via" \
			>"$out/run-$n.out" 2>"$out/run-$n.err"
		cat "$out/time.tmp" >>"$out/run-$n.times"
		"$out/relayctl" --db "$db" status bench --json >"$out/run-$n.status.json"
		if ! grep -q "\"state\":\"done\",\"counts\":{[^}]*\"sent\":$n," "$out/run-$n.status.json"; then
			echo "run of $n did not send all $n:" >&2
			cat "$out/run-$n.status.json" "$out/run-$n.err" >&2
			exit 1
		fi
		/usr/bin/time -f '%e %M %U %S' -o "$out/time.tmp" "$out/rawsend" -addr "$addr" -n "$n" \
			-conns "$CONNS" -per-conn "$PER_CONN" -domains "$DOMAINS" >"$out/rawsend-$n.out"
		cat "$out/time.tmp" >>"$out/rawsend-$n.times"
		expected=$((expected + 2 * n))
		i=$((i + 1))
	done
done

kill "$sink"
wait "$sink" || true
trap - EXIT
got=$(sed -n 's/^received \([0-9]*\) messages.*/\1/p' "$out/sink.log")
if [ "$got" != "$expected" ]; then
	echo "the sink received $got messages, want $expected" >&2
	exit 1
fi

echo "| messages | relayctl run | msgs/s | peak RSS | CPU (user + sys) | ceiling (rawsend) | msgs/s | peak RSS | ratio |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in $SIZES; do
	t=$(median "$out/run-$n.times" 1)
	m=$(median "$out/run-$n.times" 2)
	cpu=$(awk '{ print $3 + $4 }' "$out/run-$n.times" | LC_ALL=C sort -n | sed -n "$(((RUNS + 1) / 2))p")
	r=$(rate "$n" "$t")
	ct=$(median "$out/rawsend-$n.times" 1)
	cm=$(median "$out/rawsend-$n.times" 2)
	c=$(rate "$n" "$ct")
	echo "| $n | $t s | $r | $(mib "$m") | $cpu s | $ct s | $c | $(mib "$cm") | $(awk -v a="$r" -v b="$c" 'BEGIN { printf "%.0f%%", 100 * a / b }') |"
done
echo
echo "Every run (seconds, peak KB, user s, sys s):"
for n in $SIZES; do
	echo "- relayctl run $n: $(tr '\n' ';' <"$out/run-$n.times" | sed 's/;$//; s/;/; /g')"
	echo "- rawsend $n: $(tr '\n' ';' <"$out/rawsend-$n.times" | sed 's/;$//; s/;/; /g')"
done
echo "- the sink received $got messages, as sent"
