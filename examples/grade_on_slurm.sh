#!/usr/bin/env bash
# Grade a class on a SLURM cluster: a job array of SHARDS tasks, each grading one shard of the
# submissions (`course grade --shard K/SHARDS`, K = the task id), then a merge job that starts when
# every task has succeeded and writes the class's gradebook into GRADEBOOK.
#
#   SUBMISSIONS=/shared/lab01/submissions GRADEBOOK=/shared/lab01/gradebook SHARDS=20 \
#   COURSE_GRADE_SEED=<your secret seed> bash grade_on_slurm.sh
#
# SUBMISSIONS and GRADEBOOK must be on a file system every node sees, and `course` on every node's
# PATH (sbatch passes this shell's environment to the jobs, the seed included). Site options
# (partition, account, qos) go in SBATCH_OPTIONS. Prints the merge job's id.
set -euo pipefail
: "${SUBMISSIONS:?set SUBMISSIONS to the folder of submitted notebooks}"
: "${GRADEBOOK:?set GRADEBOOK to the folder the gradebook goes in}"
: "${COURSE_GRADE_SEED:?set COURSE_GRADE_SEED to your secret seed (a new one each term)}"
SHARDS=${SHARDS:-10}
export COURSE_GRADE_SEED
mkdir -p "$GRADEBOOK"
array=$(sbatch --parsable --job-name=grade --array="0-$((SHARDS - 1))" --cpus-per-task=2 --mem=10G \
    --time=12:00:00 --output="$GRADEBOOK/slurm-%A_%a.out" ${SBATCH_OPTIONS:-} \
    --wrap="course grade '$SUBMISSIONS' --out '$GRADEBOOK' --jobs 2 --shard \$SLURM_ARRAY_TASK_ID/$SHARDS")
sbatch --parsable --job-name=grade-merge --dependency="afterok:${array%%;*}" --time=00:30:00 \
    --output="$GRADEBOOK/slurm-merge-%j.out" ${SBATCH_OPTIONS:-} --wrap="course grade merge '$GRADEBOOK'"
