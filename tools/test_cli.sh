#!/usr/bin/env bash
# test_cli.sh: ctest checks of the rotary tool from outside: exit codes, where help and errors go, their wording,
# and that `bench --json` is valid JSON whatever a config's model_type holds.
# Usage: test_cli.sh ROTARY_BINARY CASE [PYTHON]   (CASE: json, options, help, torch, plot, kv, streams, tune,
# bench_settings, tune_compare)
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
pairs = doc["table_free_pairs"]
assert pairs["pairs"] == doc["reps"], pairs
assert pairs["ratio_q1"] <= pairs["ratio_median"] <= pairs["ratio_q3"], pairs
assert pairs["table_median_ms"] > 0 and pairs["table_free_median_ms"] > 0, pairs
assert doc["shape"]["qkv"] is False, doc["shape"]
EOF
  # --qkv: q and k as views into packed QKV rows (every dim rotating, partial rotary, decode ids); the rows it keeps
  local extra
  for extra in "--tokens 4" "--tokens 4 --rotary-dim 4" "--decode 3 --table 8"; do
    # shellcheck disable=SC2086 # extra is a list of options
    "$ROTARY" bench --json --heads 2 --kv-heads 1 --head-dim 8 --reps 2 --threads 2 --qkv --table-free \
      --dtype bf16 $extra > "$TMP/qkv.json" 2> "$TMP/err" || fail "bench --qkv $extra failed: $(cat "$TMP/err")"
    grep -q 'composed and naive rows' "$TMP/err" || fail "bench --qkv $extra: stderr does not say what is left out"
    "$PYTHON" - "$TMP/qkv.json" << 'EOF' || fail "bench --qkv $extra: json"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["shape"]["qkv"] is True and doc["shape"]["in_place"] is True, doc["shape"]
assert [r["impl"] for r in doc["rows"]] == ["fused", "fused_table_free", "stream"], doc["rows"]
assert doc["rows"][1]["max_rel_err_vs_fused"] == 0, doc["rows"][1]
shape = doc["shape"]
assert doc["qk_bytes"] == shape["batch"] * shape["tokens"] * 3 * 8 * 2, doc["qk_bytes"]
assert doc["ideal_bytes"] == 2 * shape["batch"] * shape["tokens"] * 3 * shape["rotary_dim"] * 2, doc["ideal_bytes"]
EOF
  done
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
  expect 2 '' '--out-of-place does not go with --qkv' -- "$ROTARY" bench --qkv --out-of-place
  expect 2 '' '--layout does not go with --qkv' -- "$ROTARY" bench --qkv --layout bhsd
  expect 2 '' '--qkv goes with --op rope' -- "$ROTARY" bench --op kv-write --qkv
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
  expect 0 '^usage: rotary tune' '' -- "$ROTARY" tune --help
  grep -q -- '--no-save' "$TMP/out" || fail "tune --help does not explain --no-save"
  expect 0 '^usage: rotary tune' '' -- "$ROTARY" help tune
  expect 0 '^  tune ' '' -- "$ROTARY" help
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

# --op kv-write at a tiny size: the shape of its table (rows in order, the columns), of its JSON and of the sweep,
# and the options it refuses. Timings are not checked.
case_kv() {
  local KV=(--op kv-write --heads 2 --kv-heads 1 --head-dim 8 --reps 2 --threads 1)
  local cache cd mode what rows copy where
  for cache in contiguous paged; do
    for cd in bf16 fp8; do
      for mode in "--tokens 5" "--decode 3"; do
        # shellcheck disable=SC2086
        expect 0 '^rotary bench --op kv-write: ' '' -- "$ROTARY" bench "${KV[@]}" --cache $cache --cache-dtype $cd $mode
        what="kv-write --cache $cache --cache-dtype $cd $mode"
        grep -Eq '^implementation +median ms +min-max ms +passes +MiB moved +GB/s +x unfused +% of limit$' "$TMP/out" ||
          fail "$what: header columns: $(grep '^implementation' "$TMP/out")"
        rows=$(awk '/^implementation/ {t = 1; next} t && /^$/ {exit} t' "$TMP/out" | sed -E 's/ +[0-9].*//' | tr '\n' '|')
        copy=cache; [ $cd = bf16 ] || copy=converting
        [ "$rows" = "unfused: rope + $copy copy|fused rotary_kv_write|streaming pass (the limit)|" ] ||
          fail "$what: rows '$rows'"
        grep -Eq '^fused rotary_kv_write +[0-9.]+ +[0-9.]+-[0-9.]+ +([0-9.]+ +){3}[0-9.]+x +[0-9.]+%' "$TMP/out" ||
          fail "$what: fused row: $(grep '^fused' "$TMP/out")"
        where='contiguous NHD (capacity'; [ $cache = contiguous ] || where='paged NHD (vLLM slots, block 16,'
        grep -qF "$where" "$TMP/out" || fail "$what: cache not in the header: $(head -1 "$TMP/out")"
        grep -q 'Checked before timing: kv_unfused leaves what rotary_kv_write leaves' "$TMP/out" ||
          fail "$what: no check note"
      done
    done
  done
  expect 0 '^\{' '' -- "$ROTARY" bench --json "${KV[@]}" --decode 3 --cache paged --cache-dtype fp8
  "$PYTHON" - "$TMP/out" << 'EOF' || fail "bench --op kv-write --json schema"
import json, sys
doc = json.load(open(sys.argv[1]))
for key in ("version", "op", "model", "mode", "shape", "dtype", "cache_dtype", "threads", "reps", "warmups",
            "input_bytes", "ideal_bytes", "limit_stores", "rows", "stable"):
    assert key in doc, key
assert (doc["op"], doc["mode"], doc["dtype"], doc["cache_dtype"]) == ("kv-write", "decode", "bf16", "fp8"), doc
assert doc["shape"]["cache"] == "paged" and doc["shape"]["block_size"] == 16 and doc["shape"]["batch"] == 3, doc
assert [r["impl"] for r in doc["rows"]] == ["kv_unfused", "kv_fused", "kv_limit"], doc["rows"]
for r in doc["rows"]:
    for key in ("label", "median_ms", "min_ms", "max_ms", "gb_per_s", "limit_gb_per_s", "pct_of_limit", "x_unfused",
                "passes", "bytes", "max_rel_err_vs_fused", "flags"):
        assert key in r, (r["impl"], key)
    assert r["min_ms"] <= r["median_ms"] <= r["max_ms"], r
assert doc["rows"][0]["x_unfused"] == 1 and doc["rows"][0]["max_rel_err_vs_fused"] is not None, doc["rows"][0]
EOF
  # the sweep: a line per case, the 16 cases in their order
  expect 0 '^rotary bench --op kv-write --sweep' '' -- "$ROTARY" bench "${KV[@]}" --sweep --tokens 4 --decode 2
  local got want=""
  got=$(grep -E '^\| (prefill|decode) ' "$TMP/out" | cut -d'|' -f2-5 | tr -d ' ' | tr '\n' ' ')
  for mode in prefill decode; do
    for cache in contiguous paged; do
      for cd in bf16 fp8; do want+="$mode|$cache|$cd|1 $mode|$cache|$cd|2 "; done
    done
  done
  [ "$got" = "$want" ] || fail "sweep cases: '$got'"
  local num='[0-9.]+( [!~]+)?'
  grep -Eq "^\| prefill \| contiguous \| bf16 \| 1 \| $num \| $num \| $num \| [0-9.]+ \| [0-9.]+% \| [0-9.]+x \|$" \
    "$TMP/out" || fail "sweep line: $(grep -m1 '^| prefill' "$TMP/out")"
  # --sweep --json: one object per case, one per line
  expect 0 '^\{' '' -- "$ROTARY" bench "${KV[@]}" --sweep --json --tokens 4 --decode 2
  "$PYTHON" - "$TMP/out" << 'EOF' || fail "bench --op kv-write --sweep --json"
import json, sys
docs = [json.loads(line) for line in open(sys.argv[1])]
assert len(docs) == 16, len(docs)
assert [(d["mode"], d["shape"]["cache"], d["cache_dtype"], d["threads"]) for d in docs[:3]] == [
    ("prefill", "contiguous", "bf16", 1), ("prefill", "contiguous", "bf16", 2), ("prefill", "contiguous", "fp8", 1)]
assert all(len(d["rows"]) == 3 for d in docs)
EOF
  # the options of one operation are refused with the other
  expect 2 '' '--tune goes with --op rope' -- "$ROTARY" bench --op kv-write --tune
  expect 2 '' '--out-of-place goes with --op rope' -- "$ROTARY" bench --op kv-write --out-of-place
  local kv_only='--cache, --cache-dtype, --cache-layout, --block-size and --sweep go with --op kv-write'
  expect 2 '' "$kv_only" -- "$ROTARY" bench --cache paged
  expect 2 '' "$kv_only" -- "$ROTARY" bench --sweep
  expect 2 '' '--cache-layout goes with --op attention' -- "$ROTARY" bench --op kv-write --cache-layout hnd
  expect 2 '' "--cache-layout wants nhd or hnd, got 'bhsd'" -- "$ROTARY" bench --op attention --cache-layout bhsd
  expect 2 '' "--op wants rope, kv-write or attention, got 'kv'" -- "$ROTARY" bench --op kv
  expect 2 '' "--cache-dtype wants f32, f16, bf16 or fp8, got 'f64'" -- "$ROTARY" bench --op kv-write --cache-dtype f64
  expect 2 '' "--cache wants contiguous or paged, got 'hnd'" -- "$ROTARY" bench --op kv-write --cache hnd
  expect 2 '' '--block-size must be at least 1' -- "$ROTARY" bench --op kv-write --block-size 0
  expect 2 '' '--tokens does not go with --op attention' -- "$ROTARY" bench --op attention --tokens 4
  expect 0 'streaming read of K and V' '' -- "$ROTARY" bench --op attention --batch 2 --table 64 --reps 2 --threads 1
  # HND caches: checked against the composed passes (which read HND) before timing, paged with a partial block too
  expect 0 'paged HND' '' -- "$ROTARY" bench --op attention --batch 2 --table 40 --cache paged --cache-layout hnd \
    --cache-dtype fp8 --reps 2 --threads 2
}

# --streams: the 1-D and multi-stream calls of each preset and pattern, their rows in --json (the ratio is the
# medians' ratio), and the option errors.
case_streams() {
  local model pattern
  for model in qwen2-vl-7b qwen3-vl-8b qwen2-vl-vit; do
    for pattern in text image; do
      expect 0 '^\{' '' -- "$ROTARY" bench --json --streams "$pattern" --model "$model" --tokens 40 --heads 2 \
        --kv-heads 1 --reps 3 --threads 2 --table-free --dtype bf16
      "$PYTHON" - "$TMP/out" "$model" "$pattern" << 'EOF' || fail "bench --streams $pattern --model $model --json"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["model"] == sys.argv[2] and doc["streams"]["pattern"] == sys.argv[3], doc
assert doc["streams"]["n_streams"] == (2 if sys.argv[2] == "qwen2-vl-vit" else 3), doc["streams"]
rows = doc["rows"]
assert [r["impl"] for r in rows] == ["fused_ids", "fused_streams", "fused_ids_table_free",
                                     "fused_streams_table_free"], rows
for r in rows:
    assert r["min_ms"] <= r["median_ms"] <= r["max_ms"], r
    assert r["max_rel_err_vs_reference"] <= 1.6e-2, r
for one, multi in ((rows[0], rows[1]), (rows[2], rows[3])):
    assert abs(multi["speed_vs_ids"] - one["median_ms"] / multi["median_ms"]) <= 1e-4 * multi["speed_vs_ids"]
    assert multi["round_ratio_min"] <= multi["round_ratio_median"] <= multi["round_ratio_max"], multi
if sys.argv[3] == "text":  # streams that agree give the 1-D rows: the same bits
    assert rows[1]["same_bits_as_reference"] and rows[3]["same_bits_as_reference"], rows
EOF
    done
  done
  expect 0 'per round' '' -- "$ROTARY" bench --streams image --stream-layout interleaved=8,4,4 --head-dim 32 \
    --decode 3 --heads 2 --reps 2 --threads 1
  grep -Eq '^table +[0-9.]+ ' "$TMP/out" || fail "bench --streams (decode): no table row: $(cat "$TMP/out")"
  expect 2 '' "--streams wants text or image, got 'video'" -- "$ROTARY" bench --streams video
  expect 2 '' '--streams needs a multi-stream rope' -- "$ROTARY" bench --streams text --model llama3-8b
  expect 2 '' 'the sections sum to 40, rotary_dim/2 is 64' -- "$ROTARY" bench --streams text \
    --stream-layout sections=16,24
  expect 2 '' "--stream-layout wants vision, pixtral" -- "$ROTARY" bench --stream-layout sections=16
  expect 2 '' "--stream-layout wants vision, pixtral" -- "$ROTARY" bench --stream-layout interleaved=1,2,3,4,5
  expect 2 '' '--tune does not go with --streams' -- "$ROTARY" bench --streams text --model qwen3-vl-8b --tune
  expect 2 '' '--streams and --stream-layout go with --op rope' -- "$ROTARY" bench --op kv-write --streams text
}

# `rotary tune` on a tiny budget (the CI smoke test: it never depends on which value wins): the file it writes,
# what `rotary info` makes of it, the default path, files that fail to load, and the options it refuses.
TUNE=(--tokens 4 --heads 2 --kv-heads 1 --head-dim 8 --decode 2 --threads 1 --seconds 0.3)

# tune_table FILE: "name source after" of each row of the settings table `rotary tune` printed
tune_table() { awk '/^setting +before +after +source/ {t = 1; next} t && NF == 0 {exit} t {print $1, $4, $3}' "$1"; }
# info_table FILE: "name source value" of each setting `rotary info` printed
info_table() { awk '/^  setting +value +source/ {t = 1; next} t && !/^  [a-z_]+ / {exit} t {print $1, $3, $2}' "$1"; }

# tune_file_check FILE VERSION CPU_MODEL TUNE_ROWS: the file holds what the contract says, and exactly the
# settings the table calls tuned, with their values; the notes say what was measured.
tune_file_check() {
  "$PYTHON" - "$@" << 'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["format"] == "rotary-tuning" and doc["format_version"] == 1, doc
assert doc["library_version"] == sys.argv[2] and doc["cpu_model"] == sys.argv[3], doc
rows = [line.split() for line in open(sys.argv[4])]
assert all(source in ("tuned", "default") for _, source, _ in rows), rows
tuned = {name: after for name, source, after in rows if source == "tuned"}
value = lambda v: "off" if v == -1 else str(v)
assert {k: value(v) for k, v in doc["settings"].items()} == tuned, (doc["settings"], rows)
notes = doc["notes"]
assert notes["model"] == "llama-7b" and notes["dtype"] == "bf16" and notes["threads"] == 1, notes
assert notes["seconds"] == 0.3 and notes["date"].endswith("Z"), notes
assert [(s["name"], s["batch"], s["tokens"], s["heads"], s["kv_heads"], s["head_dim"]) for s in notes["shapes"]] == [
    ("prefill", 1, 4, 2, 1, 8), ("decode", 2, 1, 2, 1, 8)], notes["shapes"]
report = notes["report"]
assert report["before_seconds"] > 0 and report["after_seconds"] > 0 and report["candidates"] >= 0, report
assert sorted(report["before"]) == sorted(report["after"]) == sorted(r[0] for r in rows), report
EOF
}

# tune_bad_file SOURCE KEY VALUE DEST: SOURCE with one member changed ("settings.head_group" goes one level down)
tune_bad_file() {
  "$PYTHON" - "$@" << 'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
*path, last = sys.argv[2].split(".")
obj = doc
for key in path:
    obj = obj[key]
obj[last] = json.loads(sys.argv[3])
json.dump(doc, open(sys.argv[4], "w"))
EOF
}

case_tune_file() {
  local version cpu
  version=$("$ROTARY" --version | cut -d' ' -f2)
  cpu=$("$ROTARY" info | sed -n 's/^cpu model: //p')
  [ -n "$cpu" ] || fail "rotary info: no 'cpu model:' line"
  expect 0 '^rotary tune: llama-7b, bf16, 2 q / 1 k heads' '' -- "$ROTARY" tune "${TUNE[@]}" --out "$TMP/t.json"
  cp "$TMP/out" "$TMP/tune.txt"
  grep -q "^saved $TMP/t.json " "$TMP/tune.txt" || fail "tune --out: not said where the file went"
  grep -q '^  prefill: .*, out of place$' "$TMP/tune.txt" || fail "tune: the prefill is not out of place by default"
  expect 0 '^  decode: .*, in place$' '' -- "$ROTARY" tune "${TUNE[@]}" --in-place --out "$TMP/in-place.json"
  "$PYTHON" -c 'import json, sys
assert all(not s["out_of_place"] for s in json.load(open(sys.argv[1]))["notes"]["shapes"])' "$TMP/in-place.json" ||
    fail "tune --in-place: notes.shapes not in place: $(cat "$TMP/in-place.json")"
  grep -q "ROTARY_TUNING_FILE=$TMP/t.json" "$TMP/tune.txt" || fail "tune --out: not said how to use the file"
  grep -Eq '^total of the calls .*: before [0-9.]+ (us|ms), after [0-9.]+ (us|ms) \([-+][0-9.]+%\)$' "$TMP/tune.txt" ||
    fail "tune: no before/after totals: $(cat "$TMP/tune.txt")"
  tune_table "$TMP/tune.txt" > "$TMP/tune_rows"
  [ "$(cut -d' ' -f1 "$TMP/tune_rows" | tr '\n' ' ')" = \
    "prefetch_bytes stream_store_bytes thread_bytes tasks_per_thread head_group " ] ||
    fail "tune: settings table rows: $(cat "$TMP/tune_rows")"
  tune_file_check "$TMP/t.json" "$version" "$cpu" "$TMP/tune_rows" || fail "tune: the file: $(cat "$TMP/t.json")"
  # loaded through ROTARY_TUNING_FILE: what the file names has source file and its value, the rest the default
  expect 0 "^ROTARY_TUNING_FILE=$TMP/t.json: loaded, [0-9]+ settings? from it" '' -- \
    env ROTARY_TUNING_FILE="$TMP/t.json" "$ROTARY" info
  info_table "$TMP/out" > "$TMP/info_rows"
  [ "$(awk '$2 == "tuned" {print $1, "file", $3; next} {print $1, "default"}' "$TMP/tune_rows")" = \
    "$(awk '$2 == "file" {print; next} {print $1, $2}' "$TMP/info_rows")" ] ||
    fail "info with the tuned file: $(cat "$TMP/info_rows") against the tune table $(cat "$TMP/tune_rows")"
  grep -Eq '^  prefetch_bytes +[0-9a-z]+ +[a-z]+ +ROTARY_PREFETCH +[0-9a-z]+ +off, 0 \.\. 65536$' "$TMP/out" ||
    fail "info: prefetch_bytes row: $(grep prefetch_bytes "$TMP/out")"
  # a file that sets values whatever the run found: each one shown with source file
  tune_bad_file "$TMP/t.json" settings '{"head_group": 3, "prefetch_bytes": -1}' "$TMP/set.json"
  expect 0 "^ROTARY_TUNING_FILE=$TMP/set.json: loaded, 2 settings from it" '' -- \
    env ROTARY_TUNING_FILE="$TMP/set.json" "$ROTARY" info
  [ "$(info_table "$TMP/out" | awk '$2 != "default"' | tr '\n' ' ')" = "prefetch_bytes file off head_group file 3 " ] ||
    fail "info with set.json: $(info_table "$TMP/out")"
  # a setting's variable wins over the file
  expect 0 '^  head_group +5 +environment +ROTARY_HEAD_GROUP ' '' -- \
    env ROTARY_TUNING_FILE="$TMP/t.json" ROTARY_HEAD_GROUP=5 "$ROTARY" info
  # files that fail: reported naming the file and the field, exit 0, every setting at its default
  printf '{"format": "rotary-tuning", "settings": ' > "$TMP/cut.json"
  tune_bad_file "$TMP/t.json" settings.head_group 0 "$TMP/range.json"
  tune_bad_file "$TMP/t.json" cpu_model '"Another CPU"' "$TMP/foreign.json"
  tune_bad_file "$TMP/t.json" library_version '"0.0.1"' "$TMP/stale.json"
  local bad field
  for bad in cut:JSON range:'settings\.head_group' foreign:cpu_model stale:library_version missing:'No such file'; do
    field=${bad#*:}
    bad=${bad%%:*}
    expect 0 "^ROTARY_TUNING_FILE=$TMP/$bad.json: not loaded, the defaults are in force: $TMP/$bad.json: .*$field" '' \
      -- env ROTARY_TUNING_FILE="$TMP/$bad.json" "$ROTARY" info
    [ -z "$(info_table "$TMP/out" | awk '$2 != "default"')" ] || fail "info with $bad.json: $(info_table "$TMP/out")"
  done
}

# no --out: the default path under XDG_CACHE_HOME, its missing folders made (0755); =auto loads it
case_tune_default_path() {
  local version cache="$TMP/cache/deeper" path
  version=$("$ROTARY" --version | cut -d' ' -f2)
  expect 0 "^saved $cache/rotary/tuning-.*-$version\.json " '' -- env XDG_CACHE_HOME="$cache" "$ROTARY" tune "${TUNE[@]}"
  grep -q '^use it: ROTARY_TUNING_FILE=auto ' "$TMP/out" || fail "tune: no ROTARY_TUNING_FILE=auto hint"
  path=$(sed -n 's/^saved \(.*\) (.*/\1/p' "$TMP/out")
  [ -f "$path" ] || fail "tune: no file at '$path'"
  [ "$(stat -c %a "$TMP/cache" "$cache/rotary" | tr '\n' ' ')" = "755 755 " ] || fail "tune: folder modes"
  expect 0 "^tuning file \(default path\): $path \(present\)" '' -- env XDG_CACHE_HOME="$cache" "$ROTARY" info
  expect 0 '^ROTARY_TUNING_FILE=auto: loaded' '' -- env XDG_CACHE_HOME="$cache" ROTARY_TUNING_FILE=auto "$ROTARY" info
  expect 0 '^ROTARY_TUNING_FILE=auto: no file at the default path' '' -- \
    env XDG_CACHE_HOME="$TMP/empty" ROTARY_TUNING_FILE=auto "$ROTARY" info
  expect 0 '^not saved \(--no-save\)$' '' -- env XDG_CACHE_HOME="$TMP/nosave" "$ROTARY" tune "${TUNE[@]}" --no-save
  [ ! -e "$TMP/nosave" ] || fail "tune --no-save wrote $(find "$TMP/nosave")"
  expect 1 '' 'no default path for the tuning file: neither XDG_CACHE_HOME nor HOME is set; give --out FILE' -- \
    env -u XDG_CACHE_HOME -u HOME "$ROTARY" tune "${TUNE[@]}"
  expect 1 '.' "cannot save the tuning file: $TMP/none/t.json" -- "$ROTARY" tune "${TUNE[@]}" --out "$TMP/none/t.json"
}

# options: exit 2, the option named, nothing on stdout
case_tune_options() {
  expect 2 '' "--seconds wants a positive number, got '0'" -- "$ROTARY" tune --seconds 0
  expect 2 '' "--seconds wants a positive number, got 'x'" -- "$ROTARY" tune --seconds=x
  expect 2 '' "--min-gain wants a number from 0 up to \(not including\) 1, got '1'" -- "$ROTARY" tune --min-gain 1
  expect 2 '' '--rounds must be 3 to 1000' -- "$ROTARY" tune --rounds 2
  expect 2 '' "--settings: unknown setting 'bogus'" -- "$ROTARY" tune --settings head_group,bogus
  expect 2 '' '--tokens 0 and --decode 0 leave nothing to time' -- "$ROTARY" tune --tokens 0 --decode 0
  expect 2 '' "--tokens wants a whole number, got '-1'" -- "$ROTARY" tune --tokens -1
  expect 2 '' '--out and --no-save contradict each other' -- "$ROTARY" tune --out x.json --no-save
  expect 2 '' '--out needs a value' -- "$ROTARY" tune --out
  expect 2 '' '--no-save takes no value' -- "$ROTARY" tune --no-save=1
  expect 2 '' "--dtype wants f32, f16 or bf16, got 'f64'" -- "$ROTARY" tune --dtype f64
  expect 2 '' '--head-dim must be even, 2 to 65536' -- "$ROTARY" tune --head-dim 7
  expect 2 '' "unknown model 'nope'" -- "$ROTARY" tune --model nope
  expect 2 '' '--model and --config both describe the model' -- "$ROTARY" tune --model llama-7b --config x.json
  expect 2 '' "--config $TMP/missing.json: .*No such file or directory" -- "$ROTARY" tune --config "$TMP/missing.json"
  expect 2 '' "unknown option '--bogus'" -- "$ROTARY" tune --bogus
  grep -q '^usage: rotary tune' "$TMP/err" || fail "tune --bogus: no usage on stderr"
  expect 2 '' "unexpected argument 'extra'" -- "$ROTARY" tune extra
  expect 2 '' "ambiguous option '--t': it begins --tokens --threads" -- "$ROTARY" tune --t 1
  expect 0 '^usage: rotary tune' '' -- "$ROTARY" tune --tokens 0 --decode 0 --help # help wins over later checks
}

case_tune() {
  local name
  for name in ROTARY_TUNING_FILE ROTARY_PREFETCH ROTARY_STREAM_STORES ROTARY_THREAD_BYTES ROTARY_TASKS_PER_THREAD \
    ROTARY_HEAD_GROUP; do unset "$name"; done # the checks read the defaults
  case_tune_file
  case_tune_default_path
  case_tune_options
}

case_bench_settings() {
  # rotary bench --tuning / --set / --fused-only / --stream-candidates (tools/bench_options.c, docs/bench.md)
  expect 2 '' '--set head_group=0: 0 is outside 1 \.\. 64' -- "$ROTARY" bench --set head_group=0
  expect 2 '' "--set: unknown setting 'bogus'" -- "$ROTARY" bench --set bogus=1
  expect 2 '' "--set head_group wants a whole number, got 'x'" -- "$ROTARY" bench --set head_group=x
  expect 2 '' "--set thread_bytes wants a whole number, got 'off'" -- "$ROTARY" bench --set thread_bytes=off
  expect 2 '' '--set wants NAME=VALUE' -- "$ROTARY" bench --set head_group
  expect 2 '' "--tuning: $TMP/missing.json: file: No such file or directory" -- "$ROTARY" bench --tuning "$TMP/missing.json"
  echo '{}' > "$TMP/bad-tuning.json"
  expect 2 '' "--tuning: $TMP/bad-tuning.json: format: missing" -- "$ROTARY" bench --tuning "$TMP/bad-tuning.json"
  expect 0 'settings: prefetch_bytes off \(set\),.* head_group 16 \(set\)' '' -- \
    "$ROTARY" bench "${TINY[@]}" --set prefetch_bytes=off --set head_group=2 --set head_group=16
  # a file that loads: its settings with source "file", --set over it, in the header and in --json
  local version model
  version=$("$ROTARY" --version | sed -n 's/^rotary \([^ ]*\).*/\1/p')
  model=$("$ROTARY" info | sed -n 's/^cpu model: //p')
  "$PYTHON" -c 'import json, sys; json.dump({"format": "rotary-tuning", "format_version": 1, "library_version":
    sys.argv[1], "cpu_model": sys.argv[2], "settings": {"head_group": 4, "prefetch_bytes": -1}}, open(sys.argv[3], "w"))' \
    "$version" "$model" "$TMP/good-tuning.json" || fail "writing a tuning file"
  expect 0 'settings: prefetch_bytes off \(file\),.* head_group 2 \(set\)' '' -- \
    "$ROTARY" bench "${TINY[@]}" --fused-only --tuning "$TMP/good-tuning.json" --set head_group=2
  expect 0 '^\{' '' -- env ROTARY_TUNING_FILE="$TMP/good-tuning.json" "$ROTARY" bench --json "${TINY[@]}" --fused-only
  "$PYTHON" - "$TMP/out" << 'PYEOF' || fail "bench --json with ROTARY_TUNING_FILE: settings"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["tuning_env_error"] is None, doc["tuning_env_error"]
assert doc["settings"]["head_group"] == {"value": 4, "source": "file"}, doc["settings"]
assert doc["settings"]["prefetch_bytes"] == {"value": -1, "source": "file"}, doc["settings"]
assert doc["settings"]["thread_bytes"]["source"] == "default", doc["settings"]
PYEOF
  expect 0 '^\{' '' -- "$ROTARY" bench --json "${TINY[@]}" --fused-only --stream-candidates --set tasks_per_thread=2
  "$PYTHON" - "$TMP/out" << 'PYEOF' || fail "bench --json --fused-only --stream-candidates --set"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["settings"]["tasks_per_thread"] == {"value": 2, "source": "set"}, doc["settings"]
impls = [r["impl"] for r in doc["rows"]]
pass_ = doc["stream_pass"]
ids = [c["impl"] for c in pass_["candidates"]]
assert impls == ["fused"] + ids + ["stream"], impls
assert sum(c["former"] for c in pass_["candidates"]) == 1, pass_
assert pass_["median_ms"] == min(c["median_ms"] for c in pass_["candidates"]), pass_
PYEOF
  expect 0 'ROTARY_TUNING_FILE did not load, so it is ignored: .*format: missing' '' -- \
    env ROTARY_TUNING_FILE="$TMP/bad-tuning.json" "$ROTARY" bench "${TINY[@]}" --fused-only
  expect 2 '' '--fused-only does not go with --streams' -- "$ROTARY" bench --streams text --model qwen3-vl-8b --fused-only
  expect 2 '' '--stream-candidates goes with --op rope' -- "$ROTARY" bench --op kv-write --stream-candidates
  # --tune: a row per candidate value of each setting, each checked, and the summary
  expect 0 '^tune: the fastest value of each setting' '' -- "$ROTARY" bench "${TINY[@]}" --fused-only --tune
  grep -Eq '^\(c\) head_group [0-9]+ ' "$TMP/out" || fail "bench --tune: no head_group row"
  grep -q 'the [0-9]* --tune rows 0)' "$TMP/out" || fail "bench --tune: the rows are not checked bit for bit"
}

case_tune_compare() {
  # scripts/tune-compare.sh (scripts/bench-all.sh COMPARE_TUNING, bench_summary.py --compare), tiny shapes: a smoke
  # test of the plumbing, not a timing
  local script version model
  script="$(cd "$(dirname "$0")/.." && pwd)/scripts/tune-compare.sh"
  version=$("$ROTARY" --version | sed -n 's/^rotary \([^ ]*\).*/\1/p')
  model=$("$ROTARY" info | sed -n 's/^cpu model: //p')
  "$PYTHON" -c 'import json, sys; json.dump({"format": "rotary-tuning", "format_version": 1, "library_version":
    sys.argv[1], "cpu_model": sys.argv[2], "settings": {"head_group": 4}}, open(sys.argv[3], "w"))' \
    "$version" "$model" "$TMP/tuning.json" || fail "writing a tuning file"
  expect 0 '^\| `--threads 2 --decode 64 --model llama3-8b .*` \| fused \| 1 \| ' 'tune-compare.sh: done' -- \
    env RUNS=1 BENCH_ARGS="--reps 2 --heads 2 --kv-heads 2" OUT="$TMP/raw.txt" bash "$script" "$TMP/tuning.json" "$ROTARY"
  grep -q '^tuned settings: .*head_group 4 (file)' "$TMP/out" || fail "tune-compare.sh: the tuned side's settings"
  grep -q '^default settings: .*head_group [0-9]* (default)' "$TMP/out" || fail "tune-compare.sh: the default side"
  [ "$(grep -c '^| `' "$TMP/out")" = 12 ] || fail "tune-compare.sh: not 12 table rows: $(cat "$TMP/out")"
  [ "$(grep -c '^### \[tuned\] ' "$TMP/raw.txt")" = 10 ] || fail "tune-compare.sh: not 10 tuned runs"
  echo '{}' > "$TMP/bad.json"
  expect 2 '' 'format: missing' -- bash "$script" "$TMP/bad.json" "$ROTARY"
}

case "$CASE" in
  bench_settings) case_bench_settings ;;
  tune_compare) case_tune_compare ;;
  tune) case_tune ;;
  streams) case_streams ;;
  kv) case_kv ;;
  json) case_json ;;
  plot) case_plot ;;
  torch) case_torch ;;
  options) case_options ;;
  help) case_help ;;
  *) echo "unknown case '$CASE'"; exit 2 ;;
esac
[ "$FAILS" = 0 ] || { echo "$FAILS failure(s)"; exit 1; }
echo "ok: $CASE"
