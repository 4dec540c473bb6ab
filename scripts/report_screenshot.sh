#!/usr/bin/env bash
# Render a run's report.html to a PNG in headless Chromium, to look at the layout.
#   scripts/report_screenshot.sh runs/demo [out.png] [height-px]
# Needs Debian's chromium (apt-get install -y chromium). The report loads nothing from the network; the
# flags also stop Chromium's own background connections, which a closed network refuses.
set -euo pipefail
run_dir=${1:?usage: $0 RUN_DIR [OUT.png] [HEIGHT]}
out=${2:-$run_dir/report.png}
height=${3:-7000}
report=$(realpath "$run_dir/report.html")
[ -f "$report" ] || { echo "no report.html in $run_dir (run: bakeoff report $run_dir)" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "chromium not found: apt-get install -y chromium" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
  --window-size=1280,"$height" --screenshot="$(realpath -m "$out")" "file://$report" 2>/dev/null
echo "wrote $out"
