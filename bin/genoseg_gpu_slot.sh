# shellcheck shell=bash
# One GPU per task on a machine with several GPUs (Nextflow's local executor).
#
# Sourced by the wrapper of every GPU task before it starts (conf/base.config,
# process_gpu: beforeScript), outside the container. Picks a GPU that no other task on
# this machine holds, exports CUDA_VISIBLE_DEVICES=<it> (the container engine profiles
# pass it into the container: envWhitelist), and keeps an flock on it until the task's
# wrapper exits, also when the task is killed. With more tasks than GPUs, a task waits
# here for a free one.
#
# The GPUs to share: CUDA_VISIBLE_DEVICES when it is set (the user's selection for
# Nextflow < 26.10, or the one device Nextflow >= 26.10 already allocated to this task),
# otherwise every GPU `nvidia-smi` lists. No GPU found: nothing is exported, and
# `genoseg predict --device gpu` stops with its "no GPU" exit status.
# Lock files: $GENOSEG_GPU_LOCK_DIR (default /tmp/genoseg-gpu-locks-<uid>), shared by all
# pipelines of this user on this machine.

_genoseg_gpu_slot() {
    local dir="${GENOSEG_GPU_LOCK_DIR:-/tmp/genoseg-gpu-locks-$(id -u)}"
    local ids id fd waited=0
    if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
        ids="${CUDA_VISIBLE_DEVICES//,/ }"
    else
        ids="$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | tr -d ' ' | tr '\n' ' ')" || ids=""
    fi
    if [ -z "${ids// /}" ]; then
        echo "genoseg: no GPU listed by CUDA_VISIBLE_DEVICES or nvidia-smi on $(hostname)" >&2
        return 0
    fi
    if ! command -v flock >/dev/null 2>&1; then
        echo "genoseg: flock (util-linux) not found: cannot give this task a GPU of its own" >&2
        return 0
    fi
    mkdir -p "$dir"
    while :; do
        for id in $ids; do
            exec {fd}>>"$dir/gpu-${id//[^A-Za-z0-9._-]/_}.lock"
            if flock -n "$fd"; then
                export CUDA_VISIBLE_DEVICES="$id"
                GENOSEG_GPU_LOCK_FD="$fd"
                echo "genoseg: task uses GPU ${id} (waited ${waited} s)" >&2
                return 0
            fi
            exec {fd}>&-
        done
        sleep 2
        waited=$((waited + 2))
    done
}
_genoseg_gpu_slot
