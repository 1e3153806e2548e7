#!/usr/bin/env bash
# Builds the repository's Dockerfile without a Docker engine: every stage is a
# debootstrap chroot, and the Dockerfile's own instructions (FROM, ARG, ENV,
# WORKDIR, COPY, RUN) are read from the file and carried out in it, so this
# script cannot drift from the Dockerfile: it has no build commands of its own.
# Then it checks the last (runtime) stage the way `docker run` would use it:
#
#   - ENTRYPOINT --version, and ENTRYPOINT CMD --check-config with an example
#     configuration bind-mounted at /etc/ferroflow (as `-v` would);
#   - ferroflowctl check-config on the same file;
#   - no -dev package, compiler or Rust toolchain in the runtime stage, and every
#     shared library of the binaries and of every DPDK PMD plugin resolves;
#   - ferroflowctl links no DPDK library; the man pages and shell completions
#     are installed, and ferroflowctl's bash completion loads;
#   - ferroflowd really starts DPDK in it (two net_null ports, --no-pci,
#     --in-memory, bounded by --exit-after, under /tmp/cpu.lock), and
#     ferroflowctl doctor passes for that configuration in it.
#
# Run as root on Debian 12 (needs debootstrap and network access to the Debian
# mirror, static.rust-lang.org and crates.io). It takes 12-30 minutes (2 cores), so it is
# not part of tests/run.sh; the README names it. Everything it mounts is
# unmounted and the chroots removed on exit, also on failure or Ctrl-C.
#
# Environment:
#   DEBIAN_MIRROR            default http://deb.debian.org/debian
#   DOCKERFILE_CHROOT_CACHE  a directory to keep debootstrap tarballs in between
#                            runs (saves a few minutes each); default: none
#   DOCKERFILE_CHROOT_KEEP=1 keep the chroots (still unmounted) for inspection
#   DOCKERFILE_CHROOT_CONFIG the example config to check (default deploy/hypervisor.toml)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

[ "$(id -u)" = 0 ] || { echo "dockerfile-chroot: run as root (debootstrap, chroot, mount)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "dockerfile-chroot: install debootstrap (apt-get install debootstrap)" >&2; exit 1; }

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CONFIG=${DOCKERFILE_CHROOT_CONFIG:-deploy/hypervisor.toml}
WORK=$(mktemp -d /var/tmp/ferroflow-dockerfile.XXXXXX)
MOUNTS=()      # every mount point this script made, unmounted in reverse order

log() { echo "dockerfile-chroot: $*" >&2; }

do_mount() { # do_mount TARGET MOUNT-ARGS...
    local target=$1; shift
    mount "$@" "$target"
    MOUNTS+=("$target")
}

unmount_all() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" || log "could not unmount ${MOUNTS[$i]}"
    done
    MOUNTS=()
}

cleanup() {
    local status=$?
    set +e
    unmount_all
    # Nothing may be left mounted below WORK before it is removed.
    if findmnt -rn -o TARGET | grep -q "^$WORK"; then
        log "still mounted below $WORK (left in place):"; findmnt -rn -o TARGET | grep "^$WORK" >&2
        status=1
    elif [ "${DOCKERFILE_CHROOT_KEEP:-0}" = 1 ]; then
        log "chroots kept in $WORK"
    else
        rm -rf --one-file-system "$WORK"
    fi
    [ "$status" = 0 ] && log "PASS" || log "FAIL (status $status)"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the Dockerfile, read into a plan of calls to the functions below --------
# The parser handles what Docker does with these instructions: line
# continuations, comments, ARG before FROM (for FROM lines) and in a stage,
# ENV in both forms, ${VAR}/$VAR/${VAR:-default} substitution, shell and exec
# form RUN, COPY [--from=STAGE] SRC... DEST. Anything else that changes the
# filesystem is refused, so a new kind of instruction cannot be silently skipped.
PLAN=$WORK/plan.sh
python3 - "$REPO/Dockerfile" >"$PLAN" <<'PY'
import json, re, shlex, sys

text = open(sys.argv[1]).read()
# Comment lines go first (also inside continuations), then continuations join.
lines = [l for l in text.splitlines() if not l.lstrip().startswith("#")]
joined, cur = [], ""
for l in lines:
    if l.rstrip().endswith("\\"):
        cur += l.rstrip()[:-1] + " "
        continue
    cur += l
    if cur.strip():
        joined.append(cur.strip())
    cur = ""
if cur.strip():
    joined.append(cur.strip())

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
global_args, stages = {}, []
env = args = None
workdir = "/"
out = []

def subst(s, vars):
    def one(m):
        name = m.group(1) or m.group(3)
        default = m.group(2)
        v = vars.get(name)
        if v is None or (v == "" and default is not None):
            return default if default is not None else ""
        return v
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)", one, s)

def q(*words):
    return " ".join(shlex.quote(w) for w in words)

def stage_env():
    return {**args, **env}

def kv_pairs(rest, vars):
    # ENV/ARG: KEY=VALUE [KEY=VALUE...] (values may be quoted) or KEY VALUE
    if "=" not in rest.split()[0]:
        k, v = rest.split(None, 1)
        return [(k, subst(v, vars))]
    pairs = []
    for w in shlex.split(rest):
        k, _, v = w.partition("=")
        pairs.append((k, subst(v, vars)))
    return pairs

for line in joined:
    instr, _, rest = line.partition(" ")
    instr, rest = instr.upper(), rest.strip()
    if instr == "FROM":
        words = rest.split()
        image = subst(words[0], global_args)
        name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
        m = re.fullmatch(r"debian:([a-z]+)(-slim)?", image)
        if not m:
            sys.exit(f"dockerfile-chroot: FROM {image}: only debian:SUITE[-slim] images can be made with debootstrap")
        stages.append(name)
        env, args, workdir = {"PATH": DEFAULT_PATH, "HOME": "/root"}, {}, "/"
        out.append(q("stage", name, m.group(1), image))
    elif env is None:
        if instr != "ARG":
            sys.exit(f"dockerfile-chroot: {instr} before the first FROM")
        for k, v in kv_pairs(rest, global_args) if "=" in rest else [(rest, "")]:
            global_args[k] = v
    elif instr == "ARG":
        if "=" in rest:
            args.update(kv_pairs(rest, stage_env()))
        else:
            args[rest] = global_args.get(rest, "")
    elif instr == "ENV":
        env.update(kv_pairs(rest, stage_env()))
    elif instr == "WORKDIR":
        path = subst(rest, stage_env())
        workdir = path if path.startswith("/") else workdir.rstrip("/") + "/" + path
        out.append(q("workdir", workdir))
    elif instr == "RUN":
        if rest.startswith("["):
            cmd = json.loads(rest)
        else:
            cmd = ["/bin/sh", "-c", rest]
        envs = [f"{k}={v}" for k, v in stage_env().items()]
        out.append(q("run", workdir, str(len(envs)), *envs, *cmd))
    elif instr in ("COPY", "ADD"):
        words = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        src_stage = ""
        while words and words[0].startswith("--"):
            flag = words.pop(0)
            if flag.startswith("--from="):
                src_stage = flag.split("=", 1)[1]
                if src_stage not in stages:
                    sys.exit(f"dockerfile-chroot: COPY --from={src_stage}: no such earlier stage")
            else:
                sys.exit(f"dockerfile-chroot: COPY {flag} is not supported here")
        if instr == "ADD" and any(re.match(r"https?://", w) for w in words):
            sys.exit("dockerfile-chroot: ADD from a URL is not supported here")
        words = [subst(w, stage_env()) for w in words]
        dest = words[-1]
        if not dest.startswith("/"):
            dest = workdir.rstrip("/") + "/" + dest
            if words[-1].endswith("/") or words[-1] in (".", "./"):
                dest = dest.rstrip("/.") + "/"
        out.append(q("copy", src_stage, dest, *words[:-1]))
    elif instr in ("ENTRYPOINT", "CMD"):
        if not rest.startswith("["):
            sys.exit(f"dockerfile-chroot: use the exec (JSON) form of {instr}")
        out.append(q(instr.lower(), *json.loads(rest)))
    elif instr in ("VOLUME", "EXPOSE", "LABEL", "USER", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "ONBUILD"):
        if instr in ("USER", "SHELL", "ONBUILD"):
            sys.exit(f"dockerfile-chroot: {instr} is not supported here")
        out.append(q("meta", instr, rest))
    else:
        sys.exit(f"dockerfile-chroot: unknown instruction {instr}")
print("\n".join(out))
PY
log "plan from the Dockerfile:"
sed 's/^/    /' "$PLAN" | cut -c1-200 >&2

# ---- the instructions --------------------------------------------------------
STAGE=""; ROOT=""; ENTRYPOINT=(); CMD=()
declare -A STAGE_ROOT

# Leaves the current stage: unmounts what RUN needed.
end_stage() { unmount_all; }

stage() { # stage NAME SUITE IMAGE
    end_stage
    STAGE=$1; ROOT=$WORK/stage-$1; ENTRYPOINT=(); CMD=()
    STAGE_ROOT[$1]=$ROOT
    log "== stage $1: $3 (debootstrap --variant=minbase $2)"
    local cache=${DOCKERFILE_CHROOT_CACHE:-}
    mkdir -p "$ROOT"
    if [ -n "$cache" ] && [ -f "$cache/$2-minbase.tar" ]; then
        tar -C "$ROOT" -xf "$cache/$2-minbase.tar"
    else
        debootstrap --variant=minbase "$2" "$ROOT" "$MIRROR" >"$WORK/debootstrap-$1.log" 2>&1 \
            || { tail -20 "$WORK/debootstrap-$1.log" >&2; return 1; }
        if [ -n "$cache" ]; then mkdir -p "$cache" && tar -C "$ROOT" -cf "$cache/$2-minbase.tar" .; fi
    fi
    # What Debian's official image has beyond a minbase debootstrap: the
    # updates and security suites, and no services started by package scripts.
    rm -f "$ROOT/etc/apt/sources.list"
    cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $2 $2-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $2-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"; chmod +x "$ROOT/usr/sbin/policy-rc.d"
    # What `docker build` provides to RUN: /proc, and the host's DNS.
    do_mount "$ROOT/proc" -t proc proc
    touch "$ROOT/etc/resolv.conf"
    do_mount "$ROOT/etc/resolv.conf" --bind -o ro /etc/resolv.conf
    # A network that intercepts TLS needs its CA in the build too (docker
    # build would need it the same way): the host's local CAs are visible to
    # RUN, so that installing ca-certificates adds them to the stage's bundle.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        log "[$1] the host's local CAs are visible to RUN: $(cd /usr/local/share/ca-certificates && echo *.crt)"
        mkdir -p "$ROOT/usr/local/share/ca-certificates"
        do_mount "$ROOT/usr/local/share/ca-certificates" --bind -o ro /usr/local/share/ca-certificates
    fi
}

workdir() { mkdir -p "$ROOT$1"; }

run() { # run WORKDIR NENV ENV... CMD...
    local wd=$1 n=$2; shift 2
    local envs=("${@:1:$n}"); shift "$n"
    log "[$STAGE] RUN $(printf '%q ' "$@" | cut -c1-160)"
    mkdir -p "$ROOT$wd"
    env -i "${envs[@]}" chroot "$ROOT" /bin/sh -c 'cd "$0" && exec "$@"' "$wd" "$@"
}

copy() { # copy FROM-STAGE DEST SRC...
    local from=$1 dest=$2; shift 2
    local srcroot=$REPO
    [ -n "$from" ] && srcroot=${STAGE_ROOT[$from]}
    log "[$STAGE] COPY ${from:+--from=$from }$* $dest"
    if [ "${dest: -1}" = / ] || [ $# -gt 1 ]; then mkdir -p "$ROOT$dest"; fi
    local src
    for src in "$@"; do
        if [ -z "$from" ] && [ "$src" = . ]; then
            # The build context, without what .dockerignore names (its plain
            # patterns: names and paths, ** prefixes).
            local excludes=()
            if [ -f "$REPO/.dockerignore" ]; then
                while read -r pat; do
                    [ -z "$pat" ] || [ "${pat:0:1}" = "#" ] && continue
                    excludes+=("--exclude=${pat#\*\*/}")
                done <"$REPO/.dockerignore"
            fi
            tar -C "$REPO" "${excludes[@]}" -cf - . | tar -C "$ROOT$dest" -xf -
        elif [ -d "$srcroot/$src" ]; then
            mkdir -p "$ROOT$dest"
            cp -a "$srcroot/$src/." "$ROOT$dest/"
        else
            cp -a "$srcroot/$src" "$ROOT$dest"
        fi
    done
}

entrypoint() { ENTRYPOINT=("$@"); }
cmd() { CMD=("$@"); }
meta() { log "[$STAGE] $1 $2 (metadata only)"; }

# shellcheck source=/dev/null
source "$PLAN"
end_stage

# ---- checks on the runtime stage, the way `docker run` uses it ---------------
FINAL=$ROOT
[ ${#ENTRYPOINT[@]} -gt 0 ] || { log "the last stage has no ENTRYPOINT"; exit 1; }
in_final() { chroot "$FINAL" "$@"; }
log "== checks on the runtime stage ($STAGE)"

devs=$(in_final dpkg-query -W -f '${Package}\n' | grep -E -- '-dev$|^(gcc|clang|cpp)(-[0-9]+)?$|^rustc$|^cargo$' || true)
[ -z "$devs" ] || { log "development packages in the runtime stage: $devs"; exit 1; }
for tool in cargo rustc gcc clang pkg-config; do
    if in_final sh -c "command -v $tool" >/dev/null; then log "$tool is in the runtime stage"; exit 1; fi
done
log "runtime packages: $(in_final dpkg-query -W -f '${Package} ' | tr -s ' ' | wc -w) installed, none of them -dev, no compiler or toolchain"
log "DPDK packages: $(in_final dpkg-query -W -f '${Package}\n' | grep -E '^(librte|libdpdk)' | tr '\n' ' ')"

# EAL loads every plugin in its directory, by the versioned names (the plain
# .so links come with -dev packages): each must load, or EAL does not start.
plugins=$(in_final sh -c 'ls /usr/lib/*-linux-gnu/dpdk/pmds-*/*.so.[0-9]* 2>/dev/null | grep -E "\.so\.[0-9]+$"' || true)
nplugins=$(echo "$plugins" | grep -c . || true)
[ "$nplugins" -gt 0 ] || { log "no PMD plugins in the runtime stage"; exit 1; }
for drv in net_vhost net_tap net_null mempool_ring bus_pci bus_vdev; do
    echo "$plugins" | grep -q "/librte_$drv\.so\." || { log "PMD plugin $drv is missing"; exit 1; }
done
# shellcheck disable=SC2086
missing=$(in_final sh -c 'for f in "$@"; do ldd "$f" | sed -n "s|^|$f: |; /not found/p"; done' sh "${ENTRYPOINT[0]}" /usr/bin/ferroflowctl $plugins)
[ -z "$missing" ] || { log "unresolved libraries:"; echo "$missing" >&2; exit 1; }
log "every library of the binaries and of the $nplugins PMD plugins resolves"

# The CLI is installed on workstations without DPDK: it links none of it.
if in_final ldd /usr/bin/ferroflowctl | grep -E 'librte_|libdpdk' >&2; then
    log "ferroflowctl links DPDK"; exit 1
fi
# The man pages and completions xtask generated in the build stage.
for f in man/man1/ferroflowd.1 man/man1/ferroflowctl.1 man/man1/ferroflowctl-port-add.1 \
    bash-completion/completions/ferroflowd bash-completion/completions/ferroflowctl \
    zsh/vendor-completions/_ferroflowctl fish/vendor_completions.d/ferroflowctl.fish; do
    [ -s "$FINAL/usr/share/$f" ] || { log "/usr/share/$f is missing from the runtime stage"; exit 1; }
done
in_final bash --norc -c 'source /usr/share/bash-completion/completions/ferroflowctl && complete -p ferroflowctl' >/dev/null \
    || { log "ferroflowctl's bash completion does not load in the runtime stage"; exit 1; }
log "man pages and bash/zsh/fish completions installed; ferroflowctl links no DPDK"

version=$(in_final "${ENTRYPOINT[@]}" --version)
log "ENTRYPOINT --version: $version"
case $version in ferroflowd\ *) ;; *) log "unexpected --version output"; exit 1 ;; esac

# The mounted configuration (docker run -v HOSTDIR:/etc/ferroflow).
CONF_DIR=$WORK/etc-ferroflow
mkdir -p "$CONF_DIR" "$FINAL/etc/ferroflow"
cp "$REPO/$CONFIG" "$CONF_DIR/ferroflow.toml"
do_mount "$FINAL/etc/ferroflow" --bind -o ro "$CONF_DIR"
log "ENTRYPOINT CMD --check-config, with $CONFIG mounted at /etc/ferroflow/ferroflow.toml:"
in_final "${ENTRYPOINT[@]}" "${CMD[@]}" --check-config
in_final /usr/bin/ferroflowctl check-config /etc/ferroflow/ferroflow.toml
unmount_all

# ferroflowd starts DPDK in the runtime stage: EAL loads the PMD plugins, makes
# two net_null ports and stops by itself. The host's /dev, /sys and hugepages
# are bind-mounted as `docker run -v /dev/hugepages:/dev/hugepages` would.
cat >"$CONF_DIR/ferroflow.toml" <<'EOF'
[eal]
lcores = "0-1"
memory_mb = 128
file_prefix = "ff-dockerfile-chroot"
extra_args = ["--no-pci"]
[bridge]
datapath_id = "00000000000000dc"
[datapath]
idle_sleep_us = 100
[grpc]
listen = "unix:/run/ferroflow/dockerfile-chroot.sock"
[[ports]]
name = "n0"
devargs = "net_null0,no-rx=1"
ofport = 1
[[ports]]
name = "n1"
devargs = "net_null1,no-rx=1"
ofport = 2
EOF
mkdir -p "$FINAL/dev/hugepages" "$FINAL/run/ferroflow"
do_mount "$FINAL/proc" -t proc proc
do_mount "$FINAL/sys" --bind -o ro /sys
do_mount "$FINAL/dev/hugepages" --bind /dev/hugepages
# Read-write, as `docker run -v` mounts it: the config store keeps a last-good copy there.
do_mount "$FINAL/etc/ferroflow" --bind "$CONF_DIR"
log "ferroflowd on two net_null ports in the runtime stage (3 s, under /tmp/cpu.lock):"
flock /tmp/cpu.lock timeout 120 chroot "$FINAL" "${ENTRYPOINT[@]}" "${CMD[@]}" --exit-after 3 \
    --stats-file /run/ferroflow/stats.json 2>"$WORK/ferroflowd.log" \
    || { cat "$WORK/ferroflowd.log" >&2; exit 1; }
grep -q '"name": *"n1"' "$FINAL/run/ferroflow/stats.json" \
    || { log "no port n1 in the stats file"; cat "$WORK/ferroflowd.log" >&2; exit 1; }
log "ferroflowd ran DPDK $(grep -o 'starting DPDK DPDK [^ ]*' "$WORK/ferroflowd.log" | head -1 | cut -d' ' -f4) with both ports and stopped cleanly"
# The host check from inside the image (its own plugin directory, the host's
# /proc and /sys): no check may fail for this configuration.
log "ferroflowctl doctor in the runtime stage:"
chroot "$FINAL" /usr/bin/ferroflowctl doctor --config /etc/ferroflow/ferroflow.toml
unmount_all
