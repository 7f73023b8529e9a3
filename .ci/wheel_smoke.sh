#!/usr/bin/env bash
# Wheel smoke test: the package as a user installs it, outside any clone.
#
# Builds a wheel of this clone, installs it (torch's CPU wheel first, then the wheel with the
# `demo` and `grid` extras) into a fresh virtual environment (no system site-packages) in a
# temporary folder outside the clone, and there, from an empty folder, runs `lamp-pl demo`, a short
# fit and test of the shipped `demo` config, `lamp-pl grid --recipe lamp_main_table --dry_run` and
# `lamp-pl configs`. Every Python process of that environment records, through an audit hook, any
# file or folder it opens under the clone; the test fails if one did, or if `lamp_pl` is imported
# from anywhere but the environment. Needs the package index pip is configured with (torch, the
# dependencies); takes a few minutes on 2 CPU cores.
#
#   .ci/wheel_smoke.sh            (KEEP=1 keeps the temporary folder for a look)
set -euo pipefail
CLONE=$(cd "$(dirname "$0")/.." && pwd -P)
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lamp_pl_wheel_smoke.XXXXXX")
WORK=$(cd "$WORK" && pwd -P)
case "$WORK/" in "$CLONE"/*) echo "wheel smoke: the work folder $WORK is inside the clone" >&2; exit 1 ;; esac
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
say() { echo "wheel smoke: $*"; }

say "building the wheel of $CLONE"
# Without build isolation when the building Python has setuptools and wheel (the `test` extra
# brings them; no index needed), else pip's isolated build.
if ! "$PYTHON" -m pip wheel --no-deps --no-build-isolation -q -w "$WORK/dist" "$CLONE"; then
  "$PYTHON" -m pip wheel --no-deps -q -w "$WORK/dist" "$CLONE"
fi
WHEEL=$(ls "$WORK"/dist/lamp_pl-*.whl)
say "built $(basename "$WHEEL")"

say "installing it into a fresh virtual environment in $WORK/venv"
"$PYTHON" -m venv "$WORK/venv"
VENV_PY="$WORK/venv/bin/python"
"$VENV_PY" -m pip install -q torch==2.13.0
"$VENV_PY" -m pip install -q "$WHEEL[demo,grid]"

# The audit hook: loaded by every Python process of the venv (a .pth file runs at start-up).
SITE=$("$VENV_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cat > "$SITE/lamp_smoke_audit.py" <<'EOF'
"""Wheel smoke test only: record every path under LAMP_SMOKE_CLONE that this process opens."""
import os
import sys

_CLONE = os.environ.get("LAMP_SMOKE_CLONE")
_LOG = os.environ.get("LAMP_SMOKE_LOG")
_EVENTS = {"open", "os.listdir", "os.scandir", "os.chdir", "os.stat"}


def _hook(event, args):
    if event not in _EVENTS or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.fsdecode(args[0])
    full = os.path.realpath(path if os.path.isabs(path) else os.path.join(os.getcwd(), path))
    if full == _CLONE or full.startswith(_CLONE + os.sep):
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {event} {full} ({' '.join(sys.argv)[:200]})\n")


if _CLONE and _LOG:
    sys.addaudithook(_hook)
EOF
echo "import lamp_smoke_audit" > "$SITE/lamp_smoke_audit.pth"

RUN="$WORK/run"
mkdir -p "$RUN"
cd "$RUN"
export LAMP_SMOKE_CLONE="$CLONE" LAMP_SMOKE_LOG="$WORK/clone_reads.log"
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} TOKENIZERS_PARALLELISM=false
unset PYTHONPATH PYTHONHOME
PATH="$WORK/venv/bin:$PATH"
: > "$LAMP_SMOKE_LOG"

FILE=$(python -c 'import lamp_pl; print(lamp_pl.__file__)')
case "$FILE" in "$WORK/venv/"*) say "lamp_pl is imported from $FILE" ;;
  *) echo "wheel smoke: lamp_pl imported from $FILE, not from the environment" >&2; exit 1 ;; esac
pip show lamp-pl | grep -E '^(Name|Version|License|Home-page):'

# A short fit of the shipped demo config: its own small synthetic data (20 users), one epoch of
# two batches, one validation and one test batch; `test --ckpt_path best` reads that run's best.
TINY=(--config demo --data.synthetic.users 20 --trainer.max_epochs 1 --trainer.limit_train_batches 2
  --trainer.limit_val_batches 1 --trainer.limit_test_batches 1 --trainer.enable_progress_bar false)
say "lamp-pl demo";                      lamp-pl demo
say "lamp-pl fit --config demo (tiny)";  lamp-pl fit "${TINY[@]}"
say "lamp-pl test --config demo --ckpt_path best"
lamp-pl test "${TINY[@]}" --ckpt_path best | tee "$WORK/test.out"
grep -q "test/accuracy" "$WORK/test.out" || { echo "wheel smoke: no test metrics" >&2; exit 1; }
say "lamp-pl grid --recipe lamp_main_table --dry_run"
lamp-pl grid --recipe lamp_main_table --dry_run | tail -n 3
say "lamp-pl configs";                   lamp-pl configs | grep -q "^task/LaMP_4 "
lamp-pl configs demo > my_demo.yaml && cmp -s my_demo.yaml "$(lamp-pl configs demo --path)"

if [ -s "$LAMP_SMOKE_LOG" ]; then
  echo "wheel smoke: files under the clone were read:" >&2
  head -n 20 "$LAMP_SMOKE_LOG" >&2
  exit 1
fi
say "passed: the wheel works outside the clone, and no file under $CLONE was read"
