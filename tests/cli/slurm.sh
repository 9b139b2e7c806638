#!/bin/sh
# tests/cli/slurm.sh — the share/slurm templates on a real single-node
# slurm: munged, slurmctld and slurmd from Debian (scripts/deps.sh install
# slurm), configured in a temporary directory on 127.0.0.1 with their own
# ports and munge socket, stopped at the end.  Runs the prep array job (2
# input files -> 2 shards; a rerun skips them; a deleted shard is rebuilt
# byte for byte), a 2-rank CPU training through srun (train-multinode.sbatch
# with DLLM_DEVICE=cpu DLLM_COMM=mpi) against one process, and the
# sampling array job.  Skipped, with the reason, when slurm or mpirun is
# absent or the daemons do not start (e.g. not root).
. "$(dirname "$0")/lib.sh"
# Under make test-asan: OpenMPI's dlopen'd components leak at exit from
# modules already unloaded (their frames cannot be matched by an LSan
# suppression), so the MPI runs here check ASan/UBSan errors but not leaks;
# the same dllm code is leak-checked single-process by the other scripts.
[ -n "${DLLM_SAN_LOG:-}" ] && export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"

for c in munged slurmctld slurmd sbatch srun sinfo mpirun; do
    command -v $c > /dev/null 2>&1 || { skip "slurm templates" "$c is absent (scripts/deps.sh install slurm mpi)"; exit 0; }
done
[ "$(id -u)" = 0 ] || { skip "slurm templates" "slurmd must run as root here"; exit 0; }

S=$T/slurm
mkdir -p "$S/state" "$S/spool" "$S/log"
port=$(( 20000 + $$ % 20000 ))
head -c 1024 /dev/urandom > "$S/munge.key"; chmod 600 "$S/munge.key"
stop_all() {
    for f in "$S/slurmd.pid" "$S/slurmctld.pid" "$S/munged.pid"; do
        [ -s "$f" ] && kill "$(cat "$f")" 2> /dev/null
    done
    sleep 0.5
    for f in "$S/slurmd.pid" "$S/slurmctld.pid" "$S/munged.pid"; do
        [ -s "$f" ] && kill -9 "$(cat "$f")" 2> /dev/null
    done
    rm -rf "$T"
}
trap stop_all EXIT
if ! munged --socket="$S/munge.sock" --key-file="$S/munge.key" --pid-file="$S/munged.pid" \
        --log-file="$S/log/munged.log" --seed-file="$S/munge.seed" -f 2> "$S/log/munged.err"; then
    skip "slurm templates" "munged did not start: $(head -c 200 "$S/log/munged.err")"; exit 0
fi
host=$(hostname)
cat > "$S/slurm.conf" <<CONF
ClusterName=dllmtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SrunPortRange=$((port + 2))-$((port + 40))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$S/munge.sock
CredType=cred/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
InactiveLimit=0
MinJobAge=300
KillWait=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
export SLURM_CONF=$S/slurm.conf
unset SLURM_JOB_ID SLURM_STEP_ID SLURM_PROCID SLURM_NTASKS SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_COUNT
if ! slurmctld -c 2> "$S/log/ctld.err" || ! slurmd 2> "$S/log/slurmd.err"; then
    skip "slurm templates" "slurmctld/slurmd did not start: $(cat "$S/log/ctld.err" "$S/log/slurmd.err" | head -c 200)"; exit 0
fi
up=no
for i in $(seq 75); do
    sinfo -h -o %T 2> /dev/null | grep -q idle && { up=yes; break; }
    sleep 0.2
done
[ $up = yes ] || { skip "slurm templates" "the node did not come up: $(tail -n 3 "$S/log/slurmd.log" 2>/dev/null)"; exit 0; }
ok "single-node slurm up on 127.0.0.1:$port (munge socket in the test dir)"
export DLLM_BIN=$BIN
SB="sbatch --wait --quiet --chdir=$T"

# ---------------------------------------------------------------- prep array job
# a small BPE tokenizer with a mask token (dllm-mask needs its id)
printf 'the cat sat on the mat\nthe dog sat on the log\n' > "$T/corpus.txt"
TOK=$T/tok.json
dllm-tok train -q --vocab-size 270 -s '<|endoftext|>' -s '<|mdm_mask|>' "$T/corpus.txt" -o "$TOK"
awk 'BEGIN { for (k = 0; k < 60; k++) print "the cat sat on the mat and the dog ran to the cat " k }' > "$T/a.txt"
awk 'BEGIN { for (k = 0; k < 60; k++) print "a dog and a cat and a mat sat on the dog " k }' > "$T/b.txt"
printf '%s\n%s\n' "$T/a.txt" "$T/b.txt" > "$T/inputs.txt"
PREP="$SB --array=0-1 $ROOT/share/slurm/prep-array.sbatch $T/inputs.txt $TOK $T/shards"
export SEQ_LEN=16 COPIES=2 TOK_ARGS=--lines
check "prep-array.sbatch: 2 array tasks (tok | pack | mask)" "$PREP"
check "... wrote shard-00000 and shard-00001" "test -s '$T/shards/shard-00000.msgpack.zst' && test -s '$T/shards/shard-00001.msgpack.zst'"
cp "$T/shards/shard-00001.msgpack.zst" "$T/keep1"
check "... rerun: both tasks skip their existing shard" "$PREP && grep -l 'exists, skipped' '$T'/dllm-prep-*_0.log '$T'/dllm-prep-*_1.log | wc -l | grep -qx 2"
rm "$T/shards/shard-00001.msgpack.zst"
check "... a deleted shard is made again" "$PREP"
same "$T/shards/shard-00001.msgpack.zst" "$T/keep1" "... byte for byte the same (deterministic)"
unset SEQ_LEN COPIES TOK_ARGS

# ---------------------------------------------------------------- 2-rank training through srun
sed -e 's/"hidden_size": 128/"hidden_size": 32/' -e 's/"intermediate_size": 352/"intermediate_size": 64/' \
    -e 's/"num_hidden_layers": 4/"num_hidden_layers": 2/' "$ROOT/share/configs/tiny.json" > "$T/t32.json"
A="--config $T/t32.json $T/shards/shard-*.msgpack.zst --batch 4 --lr 1e-2 --schedule constant --seed 3 --steps 4 -q"
check "one process" "dllm-train --threads 1 $A -o '$T/one' --metrics '$T/one.jsonl'"
check "train-multinode.sbatch: 2 tasks through srun (DLLM_DEVICE=cpu DLLM_COMM=mpi)" \
    "DLLM_DEVICE=cpu DLLM_COMM=mpi $SB --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --gpus-per-node=0 \
     $ROOT/share/slurm/train-multinode.sbatch $A -o '$T/two' --metrics '$T/two.jsonl'"
paste "$T/one.jsonl" "$T/two.jsonl" 2>/dev/null | sed -n 's/^{"step":\([0-9]*\),"loss":\([^,]*\),.*{"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2 \3 \4/p' > "$T/l.txt"
got=$(awk '{ d = $2 - $4; if (d < 0) d = -d; r = d / $4; if (r > m) m = r; if ($1 != $3 || r > 1e-6) bad = 1 }
    END { printf "%s %d steps, max relative loss difference %.3g", bad || NR != 4 ? "no" : "ok", NR, m }' "$T/l.txt")
case $got in ok*) ok "srun 2 ranks = 1 process (tolerance as tests/cli/train_dp.sh): $got";;
    *) notok "srun 2 ranks = 1 process" "$got; $(tail -n 5 "$T"/dllm-train-*.log 2>/dev/null)";; esac

# ---------------------------------------------------------------- sampling array job
# the sampling fixture checkpoint (vocab 300) with a tokenizer whose ids fit
CK=$T/ck
mkdir -p "$CK"
ln -s "$ROOT/tests/data/sample/ckpt/config.json" "$ROOT/tests/data/sample/ckpt/model.safetensors" "$CK/"
cp "$TOK" "$CK/tokenizer.json"
printf 'the cat\n' | dllm-tok -q -t "$TOK" --lines -o "$T/p0.msgpack"
printf 'a dog\n' | dllm-tok -q -t "$TOK" --lines -o "$T/p1.msgpack"
printf '%s\n%s\n' "$T/p0.msgpack" "$T/p1.msgpack" > "$T/prompts.txt"
check "sample-array.sbatch: 2 array tasks" \
    "$SB --array=0-1 $ROOT/share/slurm/sample-array.sbatch $T/prompts.txt $CK $T/samples -n 4 --steps 4"
check "... wrote p0.samples.msgpack and p1.samples.msgpack" \
    "test -s '$T/samples/p0.samples.msgpack' && test -s '$T/samples/p1.samples.msgpack'"
check "... the same as dllm-sample run by hand" \
    "dllm-sample -q -m '$CK' -n 4 --steps 4 '$T/p1.msgpack' | cmp -s - '$T/samples/p1.samples.msgpack'"
