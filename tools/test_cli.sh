#!/usr/bin/env bash
# test_cli.sh: ctest checks of the rotary tool from outside: exit codes, where help and errors go, their wording,
# and that `bench --json` is valid JSON whatever a config's model_type holds.
# Usage: test_cli.sh ROTARY_BINARY CASE [PYTHON]   (CASE: json, options, help, torch, plot)
set -u
ROTARY=$1
CASE=$2
PYTHON=${3:-python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILS=0
TINY=(--tokens 4 --heads 2 --kv-heads 1 --head-dim 8 --reps 2 --threads 1)

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

# expect CODE STDOUT_PATTERN STDERR_PATTERN -- command...: exit status, and extended regexps both streams must
# match ('' for an empty stream, '.' for anything).
expect() {
  local code=$1 out_re=$2 err_re=$3
  shift 4
  "$@" > "$TMP/out" 2> "$TMP/err"
  local rc=$?
  local what="$*"
  [ "$rc" = "$code" ] || fail "$what: exit $rc, wanted $code; stderr: $(head -c 300 "$TMP/err")"
  check_stream "$what" stdout "$TMP/out" "$out_re"
  check_stream "$what" stderr "$TMP/err" "$err_re"
}

check_stream() {
  local what=$1 name=$2 file=$3 re=$4
  if [ -z "$re" ]; then
    [ ! -s "$file" ] || fail "$what: $name should be empty, got: $(head -c 300 "$file")"
  elif ! grep -Eq -- "$re" "$file"; then
    fail "$what: $name does not match /$re/: $(head -c 300 "$file")"
  fi
}

# valid_json FILE: parses with Python's json and prints the value of .model
valid_json() { "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["model"])' "$1"; }

case_json() {
  # a model_type with a quote, a backslash, a control character and non-ASCII text
  printf '{"model_type": "lla\\"ma\\\\x\\t\\u00e9", "num_attention_heads": 2, "hidden_size": 16,
           "rope_theta": 10000.0}\n' > "$TMP/config.json"
  expect 0 '^\{' '' -- "$ROTARY" bench --json --config "$TMP/config.json" --tokens 4 --reps 2 --threads 1
  local model
  if ! model=$(valid_json "$TMP/out"); then
    fail "bench --json with a quote in model_type is not valid JSON: $(cat "$TMP/out")"
  elif [ "$model" != "$(printf 'lla"ma\\x\t\xc3\xa9 (default)')" ]; then
    fail "bench --json: model is '$model'"
  fi
  # every row carries the fields docs/bench.md documents
  "$ROTARY" bench --json "${TINY[@]}" --out-of-place --table-free > "$TMP/plain.json" 2> "$TMP/err" ||
    fail "bench --json (plain) failed: $(cat "$TMP/err")"
  "$PYTHON" - "$TMP/plain.json" << 'EOF' || fail "bench --json schema"
import json, sys
doc = json.load(open(sys.argv[1]))
for key in ("version", "model", "mode", "shape", "dtype", "threads", "kernel", "reps", "warmups", "qk_bytes",
            "ideal_bytes", "rows", "stable"):
    assert key in doc, key
impls = [r["impl"] for r in doc["rows"]]
assert impls == ["composed", "naive", "fused", "fused_table_free", "copy", "stream"], impls
for r in doc["rows"]:
    for key in ("impl", "label", "median_ms", "min_ms", "max_ms", "gb_per_s", "pct_of_stream", "limit_gb_per_s",
                "flags", "max_rel_err_vs_fused"):
        assert key in r, (r["impl"], key)
    assert r["min_ms"] <= r["median_ms"] <= r["max_ms"], r
EOF
}

case_options() {
  # --opt=value and --opt value are the same
  expect 0 'fused rotary_apply' '' -- "$ROTARY" bench "${TINY[@]}" --tokens=5 --dtype=bf16
  grep -q 'batch 1 x 5 tokens' "$TMP/out" || fail "--tokens=5 not taken: $(head -1 "$TMP/out")"
  grep -q 'bf16' "$TMP/out" || fail "--dtype=bf16 not taken"
  # the wrong option is the one named
  expect 2 '' '--tokens must be at least 1' -- "$ROTARY" bench --tokens 0
  grep -q -- '--batch' "$TMP/err" && fail "--tokens 0 names --batch too: $(cat "$TMP/err")"
  expect 2 '' '--batch must be at least 1' -- "$ROTARY" bench --batch 0
  expect 2 '' '--heads must be at least 1' -- "$ROTARY" bench --heads 0
  expect 2 '' "--tokens wants a whole number, got 'x'" -- "$ROTARY" bench --tokens x
  expect 2 '' "--tokens needs a value" -- "$ROTARY" bench --tokens
  expect 2 '' "--dtype wants f32, f16 or bf16, got 'f64'" -- "$ROTARY" bench --dtype=f64
  expect 2 '' "--json takes no value" -- "$ROTARY" bench --json=1
  # unknown options and commands: exit 2, the offender named, usage on stderr, nothing on stdout
  expect 2 '' "unknown option '--bogus'" -- "$ROTARY" bench --bogus
  grep -q '^usage: rotary bench' "$TMP/err" || fail "bench --bogus: no usage on stderr"
  expect 2 '' "unknown option '-x'" -- "$ROTARY" bench -x
  expect 2 '' "unexpected argument 'extra'" -- "$ROTARY" bench extra
  expect 2 '' "unknown option '--bogus'" -- "$ROTARY" info --bogus
  grep -q '^usage: rotary info' "$TMP/err" || fail "info --bogus: no usage on stderr"
  expect 2 '' "unknown command 'frobnicate'" -- "$ROTARY" frobnicate
  grep -q '^usage: rotary <command>' "$TMP/err" || fail "unknown command: no usage on stderr"
  expect 2 '' '^usage: rotary <command>' -- "$ROTARY"
  # output that cannot be written is a failure with the system's reason
  if [ -w /dev/full ]; then
    expect 1 '' 'cannot write the output: No space left on device' -- sh -c '"$0" --version > /dev/full' "$ROTARY"
    expect 1 '' 'cannot write the output: No space left on device' -- \
      sh -c '"$0" bench --json --tokens 2 --heads 1 --head-dim 2 --reps 1 > /dev/full' "$ROTARY"
  fi
  # a --config the loader cannot read: exit 2, the file and the reason named
  expect 2 '' "--config $TMP/missing.json: .*No such file or directory" -- "$ROTARY" bench --config "$TMP/missing.json"
  expect 2 '' "--config $TMP: .*(Is a directory|not a regular file)" -- "$ROTARY" bench --config "$TMP"
}

case_help() {
  for args in "--help" "-h" "help"; do
    expect 0 '^usage: rotary <command>' '' -- "$ROTARY" $args
  done
  expect 0 '^usage: rotary bench' '' -- "$ROTARY" bench --help
  expect 0 '^usage: rotary bench' '' -- "$ROTARY" bench -h
  expect 0 '^usage: rotary bench' '' -- "$ROTARY" help bench
  expect 0 '^usage: rotary info' '' -- "$ROTARY" info --help
  expect 0 '^usage: rotary info' '' -- "$ROTARY" help info
  expect 0 '^rotary [0-9]+\.[0-9]+\.[0-9]+' '' -- "$ROTARY" --version
  expect 0 '^rotary [0-9]+\.[0-9]+\.[0-9]+' '' -- "$ROTARY" version
  expect 2 '' "unknown command 'nope'" -- "$ROTARY" help nope
  # help wins over a bad value given before it, as in GNU tools
  expect 0 '^usage: rotary bench' '' -- "$ROTARY" bench --tokens 0 --help
}

# --torch drives a child over a pipe: a stand-in child that answers without torch checks the protocol, the torch
# row, and the flags (a row far faster than the fastest streaming pass; a range wider than the median).
fake_python() { # fake_python NAME BODY: an executable that ignores its arguments and runs BODY
  printf '#!/bin/sh\n%s\n' "$2" > "$TMP/$1"
  chmod +x "$TMP/$1"
}

case_torch() {
  fake_python fast 'echo ready; while read line; do echo 0.000000001; done'
  expect 0 '"impl":"torch_eager"' '' -- "$ROTARY" bench --json "${TINY[@]}" --reps 4 --torch="$TMP/fast"
  "$PYTHON" - "$TMP/out" << 'EOF' || fail "bench --torch (fast): the torch row"
import json, sys
doc = json.load(open(sys.argv[1]))
row = {r["impl"]: r for r in doc["rows"]}["torch_eager"]
assert row["median_ms"] == 1e-9 and row["flags"] == ["beats_limit"], row
assert doc["stable"] is False
EOF
  expect 0 'torch eager HF recipe \(real\) .*% !' '' -- "$ROTARY" bench "${TINY[@]}" --torch="$TMP/fast"
  grep -q '^!  more than 10% faster than the fastest streaming pass' "$TMP/out" || fail "bench --torch (fast): no footnote for !"
  fake_python jumpy 'echo ready; n=0; while read line; do n=$((n + 1)); [ $((n % 2)) = 0 ] && echo 100 || echo 1; done'
  expect 0 'torch eager HF recipe \(real\) .*~$' '' -- "$ROTARY" bench "${TINY[@]}" --reps 4 --torch="$TMP/jumpy"
  grep -q '^~  its times range wider than its median' "$TMP/out" || fail "bench --torch (jumpy): no footnote for ~"
  fake_python notorch "echo \"error: cannot import torch: No module named 'torch'\"; exit 1"
  expect 1 '' "--torch: no torch row from '.*notorch': error: cannot import torch" -- \
    "$ROTARY" bench "${TINY[@]}" --torch="$TMP/notorch"
  fake_python quitter 'echo ready; read line; exit 0'
  expect 1 '.' "the Python child stopped answering" -- "$ROTARY" bench "${TINY[@]}" --torch="$TMP/quitter"
  expect 1 '' "--torch: cannot run '$TMP/none': No such file or directory" -- \
    "$ROTARY" bench "${TINY[@]}" --torch="$TMP/none"
}

# scripts/plot_bench.py over two real runs (1 and 2 threads): a PNG comes out (needs matplotlib).
case_plot() {
  local plot
  plot="$(cd "$(dirname "$0")/.." && pwd)/scripts/plot_bench.py"
  for t in 1 2; do "$ROTARY" bench --json "${TINY[@]}" --threads $t --out-of-place || fail "bench --json --threads $t"; done \
    > "$TMP/runs.json"
  expect 0 "wrote $TMP/plot.png \(2 runs, 1 case\)" '' -- "$PYTHON" "$plot" -o "$TMP/plot.png" "$TMP/runs.json"
  [ "$(head -c 4 "$TMP/plot.png" | od -An -tx1 | tr -d ' ')" = 89504e47 ] || fail "plot_bench.py: no PNG"
  expect 1 '' 'no rotary bench --json output' -- "$PYTHON" "$plot" -o "$TMP/none.png" /dev/null
}

case "$CASE" in
  json) case_json ;;
  plot) case_plot ;;
  torch) case_torch ;;
  options) case_options ;;
  help) case_help ;;
  *) echo "unknown case '$CASE'"; exit 2 ;;
esac
[ "$FAILS" = 0 ] || { echo "$FAILS failure(s)"; exit 1; }
echo "ok: $CASE"
