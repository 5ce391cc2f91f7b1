#!/bin/sh
# once.sh measures what cron pays on each tick while nothing is due: the
# whole binary running `relayctl run --resume --once` on a planned
# campaign of SIZE recipients whose first job starts in 30 days. Wall
# time and peak RSS of each invocation, the median of RUNS, as a markdown
# table; `relayctl version` (process start-up alone) for comparison.
#
#   sh bench/once.sh                        # from the repository root
#   RUNS=20 SIZE=1000000 sh bench/once.sh
#   VIA='smtp://127.0.0.1:1?tls=none' sh bench/once.sh
#
# The campaign is planned once into a fresh database (not timed), then
# run once untimed so that the page cache is as warm as a cron line every
# 5 minutes keeps it. Direct delivery (the default) asks a resolver that
# never answers (RELAYCTL_RESOLVER, 127.0.0.1:9): a DNS query would fail
# the run or cost seconds. Every run must exit 0 with the "nothing due"
# line. Everything it writes goes to bench/out/once/ (gitignored).
set -eu

cd "$(dirname "$0")/.."
out=bench/out/once
RUNS=${RUNS:-10}
SIZE=${SIZE:-100000}
SEED=${SEED:-1}
VIA=${VIA:-direct}

mkdir -p "$out"
nice -n 19 go build -o "$out/relayctl" .
list=bench/out/list-$SIZE.csv
if [ ! -f "$list" ]; then
	nice -n 19 go build -o "$out/genlist" ./bench/genlist
	"$out/genlist" -rows "$SIZE" -seed "$SEED" >"$list"
fi
cat >"$out/message.eml" <<'MSG'
From: Example Club <news@example.org>
Subject: Hello {{.first_name | default "friend"}}

Dear {{.first_name | default "member"}},
MSG

db=$out/once.db
rm -f "$db" "$db-wal" "$db-shm"
start=$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)
"$out/relayctl" --db "$db" plan "$list" --message "$out/message.eml" --no-mx --name once-bench \
	--start "$start" --not-after 168h --json >"$out/plan.json"
recipients=$(sed -n 's/.*"recipients":\([0-9]*\),"rejected".*/\1/p' "$out/plan.json" | head -1)
jobs=$(grep -o '"seq":' "$out/plan.json" | wc -l)

export RELAYCTL_RESOLVER=127.0.0.1:9
once() {
	"$out/relayctl" --db "$db" run --resume --once --via "$VIA" >"$out/once.out" 2>"$out/once.err"
}
once
grep -q 'nothing due; next at' "$out/once.err" || {
	echo "no 'nothing due' line:" >&2
	cat "$out/once.err" >&2
	exit 1
}

# measure NAME COMMAND...: RUNS invocations, wall milliseconds and peak KB
# of each in $out/NAME.times.
measure() {
	name=$1
	shift
	: >"$out/$name.times"
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		t0=$(date +%s%N)
		/usr/bin/time -f '%M' -o "$out/rss.tmp" "$@" >"$out/$name.out" 2>"$out/$name.err"
		t1=$(date +%s%N)
		if [ "$name" = once ] && ! grep -q 'nothing due; next at' "$out/$name.err"; then
			echo "run $i: no 'nothing due' line:" >&2
			cat "$out/$name.err" >&2
			exit 1
		fi
		echo "$(((t1 - t0) / 1000000)) $(tail -1 "$out/rss.tmp")" >>"$out/$name.times"
		i=$((i + 1))
	done
}
measure version "$out/relayctl" version
measure once "$out/relayctl" --db "$db" run --resume --once --via "$VIA"

mid=$(((RUNS + 1) / 2))
row() {
	t=$(cut -d' ' -f1 "$out/$1.times" | LC_ALL=C sort -n | sed -n "${mid}p")
	lo=$(cut -d' ' -f1 "$out/$1.times" | LC_ALL=C sort -n | head -1)
	hi=$(cut -d' ' -f1 "$out/$1.times" | LC_ALL=C sort -n | tail -1)
	m=$(cut -d' ' -f2 "$out/$1.times" | LC_ALL=C sort -n | sed -n "${mid}p")
	echo "| $2 | $t ms | $lo–$hi ms | $(awk -v k="$m" 'BEGIN { printf "%.1f MiB", k / 1024 }') |"
}
echo "$recipients recipients in $jobs jobs, first job at $start; via $VIA; median of $RUNS"
echo
echo "| command | median | range | peak RSS |"
echo "|---|---:|---:|---:|"
row once "run --resume --once, nothing due"
row version "version (start-up alone)"
echo
sed -n 's/.*msg="\([^"]*\)".*/log: \1/p' "$out/once.err"
