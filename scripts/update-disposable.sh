#!/usr/bin/env bash
# Refreshes listclean/data/disposable_domains.txt from the
# disposable-email-domains/disposable-email-domains blocklist (CC0-1.0),
# taken from its npm packaging so that only the npm registry is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent disposable-email-domains-js >/dev/null && tar xzf disposable-email-domains-js-*.tgz)
version=$(node -p "require('$tmp/package/package.json').version")
out=listclean/data/disposable_domains.txt
{
  echo "# Disposable-mail domains, one per line."
  echo "# Source: the disposable-email-domains/disposable-email-domains blocklist (CC0-1.0),"
  echo "# as packaged in the npm package disposable-email-domains-js@$version."
  echo "# Refresh with scripts/update-disposable.sh."
  node -e "for (const d of require('$tmp/package/dist/dict/disposable_email_blocklist.json')) console.log(d.trim().toLowerCase())" | sort -u
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out: $(grep -vc '^#' "$out") domains"
