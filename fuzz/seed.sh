#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ (gitignored) with starting inputs:
# - the committed seeds in fuzz/seeds/<target>/;
# - for parse_rules, the recordings of real kube-proxy (up to 16 KiB, the
#   -max_len the targets run with) and the reference generator's rules for
#   every node of every golden scenario.
# The other targets read their input as choices (arbitrary::Unstructured) and
# start empty: any bytes are a valid cluster state.
# Usage: fuzz/seed.sh   (from anywhere; builds kpconform and kpconform-reference)
set -euo pipefail
cd "$(dirname "$0")"
root=..
# The same place kpconform_golden::recordings() reads.
recordings="${KPCONFORM_RECORDINGS:-$root/golden/recordings}"
max_len=16384

for target in parse_rules reference_invariants normalize_roundtrip semantic_diff; do
  mkdir -p "corpus/$target"
  if [ -d "seeds/$target" ]; then
    cp seeds/"$target"/* "corpus/$target/"
  fi
done

for f in "$recordings"/*/outputs/*.rules; do
  if [ "$(wc -c <"$f")" -le "$max_len" ]; then
    cp "$f" "corpus/parse_rules/recorded-$(basename "$(dirname "$(dirname "$f")")")-$(basename "$f")"
  fi
done

(cd "$root" && cargo build -q -p kpconform -p kpconform-reference)
kpconform="$root/target/debug/kpconform"
reference="$root/target/debug/kpconform-reference"
find "$root/golden/scenarios" -name '*.yaml' | sort | while read -r scenario; do
  id=$(echo "${scenario#"$root/golden/scenarios/"}" | tr '/' '-')
  for node in node-a node-b node-c; do
    out="corpus/parse_rules/golden-${id%.yaml}-$node.rules"
    if "$kpconform" input --scenario "$scenario" --node "$node" 2>/dev/null | "$reference" >"$out" 2>/dev/null \
      && [ -s "$out" ] && [ "$(wc -c <"$out")" -le "$max_len" ]; then
      :
    else
      rm -f "$out"
    fi
  done
done
for target in parse_rules reference_invariants normalize_roundtrip semantic_diff; do
  echo "corpus/$target: $(find "corpus/$target" -type f | wc -l) inputs"
done
