#!/bin/sh
# plan.sh measures `relayctl plan --no-mx` on a generated list: wall time
# and peak RSS, the median of RUNS runs, each into a fresh database.
#
#   sh bench/plan.sh                      # from the repository root
#   RUNS=5 SIZES="100000 1000000" sh bench/plan.sh
#
# Everything it writes goes to bench/out/ (gitignored).
set -eu

cd "$(dirname "$0")/.."
out=bench/out
RUNS=${RUNS:-3}
SIZES=${SIZES:-"100000 1000000"}
SEED=${SEED:-1}

if ! command -v /usr/bin/time >/dev/null; then
	apt-get update && apt-get install -y time
fi
mkdir -p "$out"
go build -o "$out/relayctl" .
go build -o "$out/genlist" ./bench/genlist

cat >"$out/message.eml" <<'MSG'
From: Example Club <news@example.org>
Subject: Hello {{.first_name | default "friend"}}

Dear {{.first_name | default "member"}} {{.last_name | default ""}},
{{if .city}}See you in {{.city}}.{{end}}
MSG

echo "| rows | recipients | jobs | time | peak RSS | database |"
echo "|---:|---:|---:|---:|---:|---:|"
for n in $SIZES; do
	list="$out/list-$n.csv"
	[ -f "$list" ] || "$out/genlist" -rows "$n" -seed "$SEED" >"$list"
	cat "$list" >/dev/null
	: >"$out/plan-$n.times"
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		rm -f "$out/plan.db" "$out/plan.db-wal" "$out/plan.db-shm"
		/usr/bin/time -f '%e %M' -o "$out/time.tmp" "$out/relayctl" --db "$out/plan.db" \
			plan "$list" --message "$out/message.eml" --no-mx --name bench --json >"$out/plan-$n.json"
		cat "$out/time.tmp" >>"$out/plan-$n.times"
		i=$((i + 1))
	done
	mid=$(((RUNS + 1) / 2))
	t=$(cut -d' ' -f1 "$out/plan-$n.times" | LC_ALL=C sort -n | sed -n "${mid}p")
	m=$(cut -d' ' -f2 "$out/plan-$n.times" | LC_ALL=C sort -n | sed -n "${mid}p")
	recipients=$(sed -n 's/.*"recipients":\([0-9]*\),"rejected".*/\1/p' "$out/plan-$n.json" | head -1)
	jobs=$(grep -o '"seq":' "$out/plan-$n.json" | wc -l)
	db=$(du -m "$out/plan.db" | cut -f1)
	echo "| $n | $recipients | $jobs | $t s | $(awk -v k="$m" 'BEGIN { printf "%.1f MiB", k / 1024 }') | $db MiB |"
done
echo
echo "Every run (seconds, peak KB):"
for n in $SIZES; do
	echo "- plan $n: $(tr '\n' ';' <"$out/plan-$n.times" | sed 's/;$//; s/;/; /g')"
done
