#!/usr/bin/env bash
# Side-by-side benchmarks for scripts, in ONE hyperfine run:
#   1. a trivial step: `calamari run-script --script=trivial.sh` vs `bash trivial.sh`
#      (goal: under 5 ms of overhead per step);
#   2. 1,000 reads out of 5,000 variables with `x=$(get_octopusvariable ...)`: our bootstrap vs
#      an emulation of the reference's Bootstrap.sh, which forks openssl twice per read (once
#      to base64 the name, once to decrypt the value) (goal: at least 10x faster);
#   3. the same 1,000 reads with `${octopus_parameters[...]}` (goal: under 50 ms).
# Usage: benches/scripts.sh [hyperfine options]   (from the repository root)
# The reference emulation takes about 100 s per run on a busy 2-core machine (its 5,000-arm
# `case` is re-parsed by every `$(...)` subshell, plus two openssl processes per read): pass
# `-r 3` or so, and WARMUP=1 (default 3). SKIP_REFERENCE=1 leaves it out (no ratio line then).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -q -p calamari-cli --manifest-path "$root/Cargo.toml"
bin="$root/target/release/calamari"
work="$root/target/bench-scripts"
mkdir -p "$work"
cd "$work"

echo 'echo hello' > trivial.sh

# 5,000 variables.
if [ ! -f vars.json ]; then
    python3 -c '
import json
print(json.dumps([{"k": "Project.Variable%d" % i, "v": "value number %d of the deployment" % i, "s": False} for i in range(5000)]))
' > vars.json
fi

cat > read_get.sh <<'S'
for ((i = 0; i < 5000; i += 5)); do x=$(get_octopusvariable "Project.Variable$i"); done
echo "last: $x"
S
cat > read_array.sh <<'S'
start=$EPOCHREALTIME
for ((i = 0; i < 5000; i += 5)); do x=${octopus_parameters[Project.Variable$i]}; done
end=$EPOCHREALTIME
echo "last: $x"
echo "reads-only: $(( (${end/./} - ${start/./}) / 1000 )) ms" >&2
S

# The reference's way (Calamari's Bootstrap.sh, BashScriptBootstrapper.cs): a per-run AES key
# (hex, argv[1]); for every variable a `case` arm keyed by base64(name) whose body decrypts
# the value with openssl; get_octopusvariable base64-encodes the name with openssl first.
if [ ! -f reference_bootstrap.sh ]; then
    key=$(openssl rand -hex 32)
    {
        echo "#!/bin/bash"
        echo "sensitiveVariableKey=\$1"
        echo 'function decrypt_variable {'
        echo '    echo $1 | openssl enc -a -A -d -aes-256-cbc -nosalt -K $sensitiveVariableKey -iv $2'
        echo '}'
        echo 'function encode_servicemessagevalue {'
        echo '    echo -n "$1" | openssl enc -base64 -A'
        echo '}'
        echo 'function get_octopusvariable {'
        echo '    INPUT=$( encode_servicemessagevalue "$1" )'
        echo '    case $INPUT in'
        python3 -c '
import json
for v in json.load(open("vars.json")):
    print("%s\t%s" % (v["k"], v["v"]))
' | while IFS=$'\t' read -r name value; do
            iv=$(openssl rand -hex 16)
            ct=$(printf '%s' "$value" | openssl enc -a -A -aes-256-cbc -nosalt -K "$key" -iv "$iv")
            printf '        "%s")\n            decrypt_variable "%s" "%s"\n            ;;\n' \
                "$(printf '%s' "$name" | openssl enc -base64 -A)" "$ct" "${iv^^}"
        done
        echo '        *)'
        echo '            echo ""'
        echo '            ;;'
        echo '    esac'
        echo '}'
    } > reference_bootstrap.sh
    echo "$key" > reference_key
fi
cat > reference_step.sh <<S
source "$work/reference_bootstrap.sh" "\$1"
shift
source "$work/read_get.sh"
S
key=$(cat reference_key)

# Correctness first: both ways read the same last value.
ours=$("$bin" run-script --script=read_get.sh --variables=vars.json | grep '^last:')
theirs=$(bash reference_step.sh "$key" | grep '^last:')
[ "$ours" = "$theirs" ] || { echo "mismatch: '$ours' vs '$theirs'" >&2; exit 1; }
echo "both read: $ours"
"$bin" run-script --script=read_array.sh --variables=vars.json > /dev/null

reference=(-n 'reference: 1000 x $(get_octopusvariable) with openssl' "bash reference_step.sh $key")
[ -n "${SKIP_REFERENCE-}" ] && reference=()
hyperfine -N --warmup "${WARMUP:-3}" --export-json "$work/results.json" "$@" \
    -n 'bash trivial.sh' "bash trivial.sh" \
    -n 'calamari run-script trivial.sh' "$bin run-script --script=trivial.sh" \
    "${reference[@]}" \
    -n 'calamari: 1000 x $(get_octopusvariable)' "$bin run-script --script=read_get.sh --variables=vars.json" \
    -n 'calamari: 1000 x ${octopus_parameters[...]}' "$bin run-script --script=read_array.sh --variables=vars.json" \
    -n 'calamari: 5000 variables, no reads' "$bin run-script --script=trivial.sh --variables=vars.json"

python3 - "$work/results.json" <<'P'
import json, sys
r = {x["command"]: x["mean"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
bash = r["bash trivial.sh"]; ours = r["calamari run-script trivial.sh"]
ref = r.get("reference: 1000 x $(get_octopusvariable) with openssl"); get = r["calamari: 1000 x $(get_octopusvariable)"]
arr = r["calamari: 1000 x ${octopus_parameters[...]}"]; base = r["calamari: 5000 variables, no reads"]
print(f"trivial step overhead: {ours - bash:.2f} ms per step (goal < 5 ms)")
if ref:
    print(f"1000 reads via $(get_octopusvariable): ours {get:.0f} ms vs reference {ref:.0f} ms = {ref / get:.1f}x faster (goal >= 10x)")
else:
    print(f"1000 reads via $(get_octopusvariable): ours {get:.0f} ms (reference skipped)")
print(f"1000 reads via octopus_parameters: whole step {arr:.1f} ms; same step without the reads {base:.1f} ms (goal: reads < 50 ms; the script prints its reads-only time)")
P
