#!/bin/sh
# clean.sh measures `relayctl clean --no-mx` against the shell baseline
# `cut -d, -f1 LIST | sort -u`: wall time and peak RSS at 100k and 1M rows,
# each the median of RUNS runs, printed as a markdown table.
#
#   sh bench/clean.sh            # from the repository root
#   RUNS=5 SIZES="100000 1000000 5000000" sh bench/clean.sh
#
# Everything it writes goes to bench/out/ (gitignored). The lists are read
# once before timing, so every run, the baseline's included, reads from the
# page cache.
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

echo "building relayctl and genlist" >&2
go build -o "$out/relayctl" .
go build -o "$out/genlist" ./bench/genlist

default_locale=$(locale 2>/dev/null | sed -n 's/^LC_COLLATE="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p')
: "${default_locale:=unknown}"

# measure NAME CMD... runs CMD RUNS times under /usr/bin/time, each after
# calling the function $before if it is set, and prints the median wall time
# (s) and median peak RSS (KB) on one line.
measure() {
	name=$1
	shift
	: >"$out/$name.times"
	i=0
	while [ "$i" -lt "$RUNS" ]; do
		${before:+$before}
		/usr/bin/time -f '%e %M' -o "$out/time.tmp" "$@" >/dev/null
		cat "$out/time.tmp" >>"$out/$name.times"
		i=$((i + 1))
	done
	mid=$(((RUNS + 1) / 2))
	t=$(cut -d' ' -f1 "$out/$name.times" | LC_ALL=C sort -n | sed -n "${mid}p")
	m=$(cut -d' ' -f2 "$out/$name.times" | LC_ALL=C sort -n | sed -n "${mid}p")
	echo "$t $m"
}

# fresh_db gives each clean run a new database, as a first run would have.
fresh_db() {
	rm -f "$out/bench.db" "$out/bench.db-wal" "$out/bench.db-shm"
}

mib() {
	awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "n/a" }'
}

rows_table=""
for n in $SIZES; do
	list="$out/list-$n.csv"
	echo "generating $list" >&2
	"$out/genlist" -rows "$n" -seed "$SEED" >"$list"
	cat "$list" >/dev/null

	echo "timing clean on $n rows" >&2
	fresh_db
	"$out/relayctl" --db "$out/bench.db" clean --no-mx --json "$list" >"$out/summary-$n.json"
	before=fresh_db
	set -- $(measure "clean-$n" "$out/relayctl" --db "$out/bench.db" clean --no-mx --json "$list")
	before=
	ct=$1 cm=$2

	# sh -c: the peak RSS time reports is then the largest of sh, cut and sort.
	echo "timing cut | sort -u on $n rows" >&2
	set -- $(measure "sort-default-$n" sh -c 'cut -d, -f1 "$1" | sort -u' sh "$list")
	dt=$1 dm=$2
	set -- $(measure "sort-C-$n" env LC_ALL=C sh -c 'cut -d, -f1 "$1" | sort -u' sh "$list")
	st=$1 sm=$2

	rows_table="$rows_table
| $n | $ct s | $(mib "$cm") | $dt s | $(mib "$dm") | $(ratio "$ct" "$dt") | $st s | $(mib "$sm") | $(ratio "$ct" "$st") |"
done

echo
echo "relayctl clean --no-mx vs cut -d, -f1 | sort -u: median of $RUNS runs, $(nproc) CPUs, $(go env GOVERSION)"
echo
echo "| rows | clean | clean peak RSS | baseline ($default_locale) | its RSS | ratio | baseline (LC_ALL=C) | its RSS | ratio |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|$rows_table"
echo
echo "Every run (seconds, peak KB):"
for n in $SIZES; do
	for name in clean sort-default sort-C; do
		echo "- $name $n: $(tr '\n' ';' <"$out/$name-$n.times" | sed 's/;$//; s/;/; /g')"
	done
done
echo
for n in $SIZES; do
	echo "clean's summary, $n rows: $(cat "$out/summary-$n.json")"
done
