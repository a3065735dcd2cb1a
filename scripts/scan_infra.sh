#!/usr/bin/env bash
# Scan the Bicep in infra/ with checkov; exit non-zero on any finding that is not skipped
# inline (#checkov:skip=ID:reason), on a file checkov cannot parse, or if nothing was scanned.
#
#   scripts/scan_infra.sh           create the venv if needed, then scan
#   scripts/scan_infra.sh --setup   only create the venv (.venv-infra, from requirements-infra.txt)
#
# INFRA_VENV overrides the venv path; PYTHON the interpreter that creates it.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${INFRA_VENV:-.venv-infra}
python=${PYTHON:-python3}
stamp="$venv/.installed"

if [[ ! -f "$stamp" || requirements-infra.txt -nt "$stamp" ]]; then
  "$python" -m venv "$venv"
  # (grep drops pip's notes about index locations this machine's pip config lists but lacks)
  "$venv/bin/python" -m pip install --quiet --upgrade pip 2> >(grep -v "^WARNING: Location '" >&2)
  "$venv/bin/python" -m pip install --quiet -r requirements-infra.txt 2> >(grep -v "^WARNING: Location '" >&2)
  # Keep the venv out of git and of linters that honour .gitignore (ruff).
  printf '*\n' > "$venv/.gitignore"
  touch "$stamp"
fi
[[ "${1:-}" == "--setup" ]] && exit 0

report=$(mktemp -d)
trap 'rm -rf "$report"' EXIT

# --skip-download: no calls to the vendor's platform (offline, no API key); the checks ship
# with the package. --quiet prints failed checks only. checkov exits 1 when a check fails.
status=0
"$venv/bin/checkov" --directory infra --framework bicep --skip-download --compact --quiet \
  --output cli --output json --output-file-path "console,$report/results.json" || status=$?

"$venv/bin/python" - "$report/results.json" "$status" <<'PY'
import json
import sys

path, status = sys.argv[1], int(sys.argv[2])
with open(path, encoding="utf-8") as handle:
    data = json.load(handle)
runs = data if isinstance(data, list) else [data]
summary = {key: sum(run["summary"][key] for run in runs)
           for key in ("passed", "failed", "skipped", "parsing_errors", "resource_count")}
print("infra scan:", ", ".join(f"{key} {value}" for key, value in summary.items()))
problems = []
if summary["failed"]:
    problems.append(f"{summary['failed']} failed check(s)")
if summary["parsing_errors"]:
    problems.append(f"{summary['parsing_errors']} file(s) checkov could not parse")
if not summary["resource_count"]:
    problems.append("no resource scanned")
if status not in (0, 1):
    problems.append(f"checkov exited {status}")
if problems:
    sys.exit("infra scan failed: " + "; ".join(problems))
PY
