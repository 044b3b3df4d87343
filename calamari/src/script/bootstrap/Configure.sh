# Calamari for Rust: the bash bootstrap. Calamari writes it per step as Bootstrap.sh with the
# variables filled in and the user's script sourced at the end. It defines the Octopus helper
# functions and loads every variable once into the associative array `octopus_parameters`.
#
# Everything here uses bash builtins only (no openssl, no base64, no fork per read), and
# works under `set -euo pipefail` and with bash 4.3 or later. Bootstrap.sh is 0600 in a
# 0700 per-step directory that Calamari removes when the step ends.

if [ -z "${BASH_VERSINFO+x}" ] || [ "${BASH_VERSINFO[0]}" -lt 4 ] || { [ "${BASH_VERSINFO[0]}" -eq 4 ] && [ "${BASH_VERSINFO[1]}" -lt 3 ]; }; then
    echo "Calamari needs bash 4.3 or later to run bash scripts; found bash ${BASH_VERSION-unknown}." >&2
    exit 1
fi

declare -A octopus_parameters=()

# Calamari puts the variables here: one compound assignment
# `octopus_parameters=( ['name']='value' ... )` where every key and value is a single-quoted
# literal (or $'...' with \\, \' and \xHH escapes when it holds a quote), so it runs nothing
# but that assignment. bash parses it about 3x faster than a `mapfile` + loop over a
# NUL-separated file, which matters with thousands of variables.
#{{OCTOPUS_PARAMETERS}}

__octopus_b64_chars='ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

# __octopus_b64_encode OUT TEXT: OUT = base64 of TEXT's bytes (pure bash).
# (OUT must not start with __ob64_, the prefix of its locals.)
__octopus_b64_encode() {
    local LC_ALL=C
    local __ob64_text="$2" __ob64_out="" __ob64_i __ob64_n __ob64_a __ob64_b __ob64_c __ob64_rem
    local __ob64_len=${#__ob64_text}
    for ((__ob64_i = 0; __ob64_i + 2 < __ob64_len; __ob64_i += 3)); do
        printf -v __ob64_a '%d' "'${__ob64_text:__ob64_i:1}"
        printf -v __ob64_b '%d' "'${__ob64_text:__ob64_i+1:1}"
        printf -v __ob64_c '%d' "'${__ob64_text:__ob64_i+2:1}"
        __ob64_n=$(( ((__ob64_a & 255) << 16) | ((__ob64_b & 255) << 8) | (__ob64_c & 255) ))
        __ob64_out+="${__octopus_b64_chars:__ob64_n >> 18 & 63:1}${__octopus_b64_chars:__ob64_n >> 12 & 63:1}${__octopus_b64_chars:__ob64_n >> 6 & 63:1}${__octopus_b64_chars:__ob64_n & 63:1}"
    done
    __ob64_rem=$(( __ob64_len - __ob64_i ))
    if [ "$__ob64_rem" -eq 1 ]; then
        printf -v __ob64_a '%d' "'${__ob64_text:__ob64_i:1}"
        __ob64_n=$(( (__ob64_a & 255) << 16 ))
        __ob64_out+="${__octopus_b64_chars:__ob64_n >> 18 & 63:1}${__octopus_b64_chars:__ob64_n >> 12 & 63:1}=="
    elif [ "$__ob64_rem" -eq 2 ]; then
        printf -v __ob64_a '%d' "'${__ob64_text:__ob64_i:1}"
        printf -v __ob64_b '%d' "'${__ob64_text:__ob64_i+1:1}"
        __ob64_n=$(( ((__ob64_a & 255) << 16) | ((__ob64_b & 255) << 8) ))
        __ob64_out+="${__octopus_b64_chars:__ob64_n >> 18 & 63:1}${__octopus_b64_chars:__ob64_n >> 12 & 63:1}${__octopus_b64_chars:__ob64_n >> 6 & 63:1}="
    fi
    printf -v "$1" '%s' "$__ob64_out"
}

# __octopus_b64_decode OUT BASE64: OUT = the decoded bytes (pure bash; NUL bytes dropped).
__octopus_b64_decode() {
    local LC_ALL=C
    local __ob64_in="${2//[^A-Za-z0-9+\/]/}" __ob64_esc="" __ob64_i __ob64_c __ob64_v __ob64_bits=0 __ob64_acc=0 __ob64_prefix
    local __ob64_len=${#__ob64_in}
    for ((__ob64_i = 0; __ob64_i < __ob64_len; __ob64_i++)); do
        __ob64_c="${__ob64_in:__ob64_i:1}"
        __ob64_prefix="${__octopus_b64_chars%%"$__ob64_c"*}"
        __ob64_v=${#__ob64_prefix}
        __ob64_acc=$(( ((__ob64_acc << 6) | __ob64_v) & 0xFFFFFF ))
        __ob64_bits=$(( __ob64_bits + 6 ))
        if [ "$__ob64_bits" -ge 8 ]; then
            __ob64_bits=$(( __ob64_bits - 8 ))
            printf -v __ob64_v '%02x' $(( (__ob64_acc >> __ob64_bits) & 255 ))
            [ "$__ob64_v" != "00" ] && __ob64_esc+="\\x$__ob64_v"
        fi
    done
    printf -v "$1" '%b' "$__ob64_esc"
}

# encode_servicemessagevalue TEXT: prints base64 of TEXT.
encode_servicemessagevalue() {
    local __encoded
    __octopus_b64_encode __encoded "${1-}"
    printf '%s' "$__encoded"
}

# decode_servicemessagevalue BASE64: prints the decoded text.
decode_servicemessagevalue() {
    local __decoded
    __octopus_b64_decode __decoded "${1-}"
    printf '%s' "$__decoded"
}

# get_octopusvariable NAME: prints the variable's value (empty when unknown). Exact name
# first, then ignoring case as Octopus does.
get_octopusvariable() {
    local __name="${1-}" __key
    [ -z "$__name" ] && return 0
    if [ -n "${octopus_parameters[$__name]+x}" ]; then
        printf '%s' "${octopus_parameters[$__name]}"
        return 0
    fi
    # (bash before 4.4 treats "${!array[@]}" of an empty array as unbound under set -u)
    [ "${#octopus_parameters[@]}" -eq 0 ] && return 0
    local __lower="${__name,,}"
    for __key in "${!octopus_parameters[@]}"; do
        if [ "${__key,,}" = "$__lower" ]; then
            printf '%s' "${octopus_parameters[$__key]}"
            return 0
        fi
    done
    return 0
}

# set_octopusvariable NAME VALUE [-sensitive]: an output variable for later steps.
set_octopusvariable() {
    local __msg="##octopus[setVariable" __enc
    if [ -n "${1-}" ]; then
        __octopus_b64_encode __enc "$1"
        __msg+=" name='$__enc'"
    fi
    if [ -n "${2-}" ]; then
        __octopus_b64_encode __enc "$2"
        __msg+=" value='$__enc'"
    fi
    if [ "${3-}" = "-sensitive" ]; then
        __msg+=" sensitive='VHJ1ZQ=='"
    fi
    printf '%s]\n' "$__msg"
}

# set_environmentstate KEY VALUE [-sensitive] [TYPE]: as the reference's, an empty KEY or
# VALUE leaves its attribute out and an empty or absent TYPE is `State`; a TYPE may also be
# given third (`set_environmentstate KEY VALUE Url`) or as `type=TYPE`.
set_environmentstate() {
    local __key="${1-}" __value="${2-}" __sensitive="" __type="" __msg="##octopus[set-environmentstate" __enc __arg
    shift 2 2>/dev/null || shift $#
    for __arg in "$@"; do
        case "$__arg" in
            "") ;;
            -sensitive) __sensitive="True" ;;
            type=*) __type="${__arg#type=}" ;;
            *) __type="$__arg" ;;
        esac
    done
    if [ -n "$__key" ]; then
        __octopus_b64_encode __enc "$__key"
        __msg+=" key='$__enc'"
    fi
    if [ -n "$__value" ]; then
        __octopus_b64_encode __enc "$__value"
        __msg+=" value='$__enc'"
    fi
    if [ -n "$__sensitive" ]; then
        __msg+=" sensitive='VHJ1ZQ=='"
    fi
    __octopus_b64_encode __enc "${__type:-State}"
    printf '%s type='"'"'%s'"'"']\n' "$__msg" "$__enc"
}

# set_environmenturl KEY URL
set_environmenturl() {
    set_environmentstate "${1-}" "${2-}" "Url"
}

# error_exit MESSAGE [CODE]
error_exit() {
    printf 'Error: %s\n' "${1-}" >&2
    exit "${2:-1}"
}

# new_octopusartifact PATH [NAME]: the agent collects the file after the step.
new_octopusartifact() {
    local __path="${1-}" __name="${2-}" __length __p __n __l __dir
    printf 'Collecting %s as an artifact...\n' "$__path"
    if [ -z "$__path" ] || [ ! -e "$__path" ]; then
        error_exit "Could not find the file '$__path' to collect as an artifact."
    fi
    # The full physical path, as the reference's `cd "$(dirname ...)"; pwd -P` gives it.
    case "$__path" in
        */*) __dir="${__path%/*}"; __dir="${__dir:-/}" ;;
        *) __dir=. ;;
    esac
    __dir=$(cd "$__dir" && pwd -P)
    __path="${__dir%/}/${__path##*/}"
    if [ -z "$__name" ]; then
        __name="${__path##*/}"
    fi
    __length=$(wc -c < "$__path")
    __length="${__length//[^0-9]/}"
    write_verbose "Artifact $__name will be collected from $__path after this step completes"
    __octopus_b64_encode __p "$__path"
    __octopus_b64_encode __n "$__name"
    __octopus_b64_encode __l "$__length"
    printf "##octopus[createArtifact path='%s' name='%s' length='%s']\n" "$__p" "$__n" "$__l"
}

# remove-octopustarget TARGET: the agent removes the deployment target (id or name).
remove-octopustarget() {
    local __m
    __octopus_b64_encode __m "${1-}"
    printf "##octopus[delete-target machine='%s']\n" "$__m"
}
remove_octopustarget() { remove-octopustarget "$@"; }

# new_octopustarget -n NAME -t TARGET_ID --inputs JSON --roles ROLES [--worker-pool POOL]
# [--update-if-existing]: the agent creates (or updates) a deployment target. Options in the
# reference's spellings; an unknown one is refused (in a subshell, as the reference's: the
# function returns 1).
new_octopustarget() (
    parameters="" __v=""
    while [ "$#" -gt 0 ]; do
        case "$1" in
            -n | --name) __octopus_b64_encode __v "${2-}"; parameters="$parameters name='$__v'"; shift 2 || shift ;;
            -t | --target-id) __octopus_b64_encode __v "${2-}"; parameters="$parameters targetId='$__v'"; shift 2 || shift ;;
            --inputs) __octopus_b64_encode __v "${2-}"; parameters="$parameters inputs='$__v'"; shift 2 || shift ;;
            --roles) __octopus_b64_encode __v "${2-}"; parameters="$parameters octopusRoles='$__v'"; shift 2 || shift ;;
            --worker-pool) __octopus_b64_encode __v "${2-}"; parameters="$parameters octopusDefaultWorkerPoolIdOrName='$__v'"; shift 2 || shift ;;
            --update-if-existing) __octopus_b64_encode __v "true"; parameters="$parameters updateIfExisting='$__v'"; shift ;;
            --) shift; break ;;
            -*) echo "Error: Unknown option: $1" >&2; exit 1 ;;
            *) break ;;
        esac
    done
    printf '##octopus[createStepPackageTarget %s]\n' "$parameters"
)

# fail_step [MESSAGE]: fails the step with an optional result message.
fail_step() {
    local __enc
    if [ -n "${1-}" ]; then
        __octopus_b64_encode __enc "$1"
        printf "##octopus[resultMessage message='%s']\n" "$__enc"
    fi
    exit 1
}

# update_progress PERCENTAGE [MESSAGE]
update_progress() {
    local __pct __msg
    __octopus_b64_encode __pct "${1-}"
    __octopus_b64_encode __msg "${2-}"
    printf "##octopus[progress percentage='%s' message='%s']\n" "$__pct" "$__msg"
}

__octopus_write_level() {
    printf '##octopus[stdout-%s]\n%s\n##octopus[stdout-default]\n' "$1" "$2"
}

write_verbose() { __octopus_write_level verbose "${1-}"; }
write_highlight() { __octopus_write_level highlight "${1-}"; }
write_wait() { __octopus_write_level wait "${1-}"; }
write_warning() { __octopus_write_level warning "${1-}"; }

# log_environment_information: the reference's verbose "Bash Environment Information" block
# (nothing when Octopus.Action.Script.SuppressEnvironmentLogging is True). Calamari logs the
# same block itself before the script starts, read from the kernel without starting a
# process; this function is for a script that wants it again, and so uses the commands.
log_environment_information() {
    local __suppress
    __suppress=$(get_octopusvariable "Octopus.Action.Script.SuppressEnvironmentLogging")
    if [ "${__suppress,,}" = "true" ]; then
        return 0
    fi
    printf '%s\n' "##octopus[stdout-verbose]" "Bash Environment Information:" \
        "  OperatingSystem: $(uname -a)" \
        "  CurrentUser: $(id -un 2>/dev/null || id -u)" \
        "  HostName: ${HOSTNAME:-$(uname -n)}" \
        "  ProcessorCount: $(getconf _NPROCESSORS_ONLN)" \
        "  CurrentDirectory: $PWD" \
        "  TempDirectory: ${TMPDIR:-/tmp}" \
        "  HostProcessID: $$" \
        "##octopus[stdout-default]"
}

# report_kubernetes_manifest MANIFEST [NAMESPACE]: tells the agent which Kubernetes objects
# were applied. One `k8s-manifest-applied` message per document of MANIFEST; documents are
# separated by lines that read `---` once trimmed, and each keeps its lines with a newline
# after every one. Empty documents are skipped.
report_kubernetes_manifest() {
    local __manifest="${1-}" __namespace="${2-}" __line __trimmed __current="" __doc __enc __ns=""
    local -a __docs=()
    while IFS= read -r __line; do
        __trimmed="${__line#"${__line%%[![:space:]]*}"}"
        __trimmed="${__trimmed%"${__trimmed##*[![:space:]]}"}"
        if [ "$__trimmed" = "---" ]; then
            __docs+=("$__current")
            __current=""
        else
            __current+="$__line"$'\n'
        fi
    done <<< "$__manifest"
    __docs+=("$__current")
    if [ -n "$__namespace" ]; then
        __octopus_b64_encode __enc "$__namespace"
        __ns=" ns='$__enc'"
    fi
    for __doc in "${__docs[@]}"; do
        if [ -n "$__doc" ]; then
            __octopus_b64_encode __enc "$__doc"
            printf "##octopus[k8s-manifest-applied manifest='%s'%s]\n" "$__enc" "$__ns"
        fi
    done
}

# report_kubernetes_manifest_file PATH [NAMESPACE]: report_kubernetes_manifest with the
# file's contents (trailing newlines dropped); a verbose note when there is no such file.
report_kubernetes_manifest_file() {
    local __path="${1-}" __namespace="${2-}" __manifest=""
    if [ ! -f "$__path" ]; then
        write_verbose "No Kubernetes manifest file was found at '$__path'."
        return 0
    fi
    IFS= read -r -d '' __manifest < "$__path" || true
    while [ "${__manifest%$'\n'}" != "$__manifest" ]; do
        __manifest="${__manifest%$'\n'}"
    done
    report_kubernetes_manifest "$__manifest" "$__namespace"
}
