#!/bin/sh
# scripts/check-layers.sh — the layer rules of docs/DESIGN.md ("Layers"),
# checked on the sources (and, when built, on the objects).
#
#   share/io      nothing of ours but kernels/kphilox.h (the one Philox round function)
#   share/tok     io
#   share/model   io, kernels/kernels.h, tok (a checkpoint carries its
#                 tokenizer: conversion writes it, dl_model_open loads it)
#   kernels/      nothing of share/ (KNOWN below would list a pending exception; none)
#   X/ (a program: tok pack mask cat train sample score)
#                 its own folder, io, tok, model; never kernels, never
#                 another program's folder; nor does it CALL into kernels/
#                 (checked on the objects: kernels.h reaches programs
#                 through dl_model.h, its dl_dev_* / dl_k_* are not theirs)
# and inside each folder no cycle: among modules (x.c, x.h and x_internal.h
# are one module) by #include "...", and by calls (undefined -> defined
# symbols of the folder's build/ objects, when they exist).  Cycles are
# found by tsort(1).
#
# Prints "ok - ..." / "not ok - ..." lines (tests/cli/layers.sh runs it
# under make test); exits 1 when a rule is broken.
#   scripts/check-layers.sh [ROOT]   (default: the repository of this script)
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 3
export LC_ALL=C
TMP=$(mktemp -d "${TMPDIR:-/tmp}/dllm-layers.XXXXXX") || exit 3
trap 'rm -rf "$TMP"' EXIT
PROGRAMS="tok pack mask cat train sample score"
# Edges the architecture step removes in other branches; each line
# "FILE -> INCLUDED_FILE".  Listed ones are reported as "skip", not failed.
KNOWN=''
status=0

layer_of() {  # path -> io | tok | model | kernels | prog:X | other
    case $1 in
    share/io/*) echo io ;; share/tok/*) echo tok ;; share/model/*) echo model ;;
    kernels/*) echo kernels ;;
    *) d=${1%%/*}
       case " $PROGRAMS " in *" $d "*) echo "prog:$d" ;; *) echo other ;; esac ;;
    esac
}
allowed() {  # from-file from-layer to-file to-layer -> 0 when the edge is allowed
    [ "$2" = "$4" ] && return 0
    case $2 in
    io) [ "$3" = kernels/kphilox.h ] ;;   # the one Philox round function, shared with device code
    tok) [ "$4" = io ] ;;
    model) case $4 in io) return 0 ;; kernels) [ "$3" = kernels/kernels.h ] ;;
           tok) return 0 ;;
           *) return 1 ;; esac ;;
    kernels) return 1 ;;
    prog:*) case $4 in io|tok|model) return 0 ;; *) return 1 ;; esac ;;
    *) return 0 ;;
    esac
}

# every quoted include, resolved like the compiler: the includer's folder,
# then the -I folders of the Makefile
files=$(find share/io share/tok share/model kernels $PROGRAMS -name '*.[ch]' 2>/dev/null | sort)
: > "$TMP/edges"
for f in $files; do
    dir=${f%/*}
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" | while read -r inc; do
        to=""
        for d in "$dir" share/io share/tok share/model kernels; do
            [ -f "$d/$inc" ] && { to="$d/$inc"; break; }
        done
        [ -n "$to" ] || { echo "$f -> ?$inc"; continue; }
        echo "$f -> ${to#./}"
    done >> "$TMP/edges"
done

bad=0
while read -r from arrow to; do
    case $to in
    \?*) echo "not ok - $from includes \"${to#?}\", which is in no layer folder"; bad=$((bad + 1)); continue ;;
    esac
    lf=$(layer_of "$from"); lt=$(layer_of "$to")
    allowed "$from" "$lf" "$to" "$lt" && continue
    if printf '%s\n' "$KNOWN" | grep -qxF "$from -> $to"; then
        echo "skip - $from -> $to: known, removed by the kernels backend-table change"
        continue
    fi
    echo "not ok - $from ($lf) includes $to ($lt): not allowed"
    bad=$((bad + 1))
done < "$TMP/edges"
[ "$bad" -eq 0 ] && echo "ok - every #include follows the layer rules" || status=1

# cycles inside one folder: modules by include, then by call
module() { m=${1%.[ch]}; echo "${m%_internal}"; }   # x.c, x.h, x_internal.h: module x
cycles() {  # NAME EDGEFILE ("a b" lines)
    if [ ! -s "$2" ]; then echo "ok - $1: no cycle"; return; fi
    if tsort "$2" > /dev/null 2> "$TMP/tsort.err"; then
        echo "ok - $1: no cycle"
    else
        echo "not ok - $1: cycle among $(grep -v 'input contains a loop' "$TMP/tsort.err" | sed 's/^tsort: //' | tr '\n' ' ')"
        status=1
    fi
}
for dir in share/io share/tok share/model kernels kernels/cpu kernels/ref $PROGRAMS; do
    [ -d "$dir" ] || continue
    : > "$TMP/inc"
    while read -r from arrow to; do
        [ "${from%/*}" = "$dir" ] && [ "${to%/*}" = "$dir" ] || continue
        a=$(module "$from"); b=$(module "$to")
        [ "$a" != "$b" ] && echo "$a $b" >> "$TMP/inc"
    done < "$TMP/edges"
    cycles "$dir: includes between modules" "$TMP/inc"

    ls "$dir"/*.c > /dev/null 2>&1 || continue   # headers only
    objs=$(ls build/"$dir"/*.o 2>/dev/null)
    [ -n "$objs" ] || { echo "skip - $dir: calls: not built (make first)"; continue; }
    : > "$TMP/defs"; : > "$TMP/calls"
    for o in $objs; do
        nm --defined-only -g "$o" 2>/dev/null | awk -v m="${o%.o}" 'NF == 3 { print $3, m }' >> "$TMP/defs"
    done
    for o in $objs; do
        nm -u "$o" 2>/dev/null | awk -v m="${o%.o}" '{ print $NF, m }'
    done | sort > "$TMP/uses"
    sort "$TMP/defs" > "$TMP/defs.s"
    join "$TMP/uses" "$TMP/defs.s" | awk '$2 != $3 { print $2, $3 }' | sort -u > "$TMP/calls"
    cycles "$dir: calls between files" "$TMP/calls"
done

# calls across layers: a program's objects call no function defined in
# kernels/ (dl_dev_*, dl_k_*: programs reach the device through share/model;
# kernels.h is visible to them only because dl_model.h includes it)
kobjs=$(find build/kernels -name '*.o' 2>/dev/null)
if [ -z "$kobjs" ]; then
    echo "skip - programs' calls into kernels/: not built (make first)"
else
    for o in $kobjs; do nm --defined-only -g "$o" 2>/dev/null | awk 'NF == 3 { print $3 }'; done | sort -u > "$TMP/kdefs"
    kbad=0
    for dir in $PROGRAMS; do
        for o in build/"$dir"/*.o; do
            [ -f "$o" ] || continue
            nm -u "$o" 2>/dev/null | awk '{ print $NF }' | sort -u | join - "$TMP/kdefs" | while read -r sym; do
                echo "not ok - ${o#build/} calls $sym (kernels/): programs reach the device only through share/model"
            done
        done
    done > "$TMP/kcalls"
    if [ -s "$TMP/kcalls" ]; then cat "$TMP/kcalls"; status=1
    else echo "ok - no program calls into kernels/ directly"; fi
fi
exit $status
