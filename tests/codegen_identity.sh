#!/bin/sh
# tests/codegen_identity.sh -- proves that two versions of mambac generate
# the same code: the emitted .cu files and weights blobs, the optimized LLVM
# IR and the kernel-IR dumps of a fixed set of models, shapes, precisions
# and targets, byte for byte.  Needs no GPU.  For refactoring commits
# (docs/kernel-ir.md, "Refactoring: proving the generated code unchanged").
#
#   sh tests/codegen_identity.sh [--keep] [BASE [HEAD]]
#
# BASE (default HEAD~1) is built in a temporary git worktree; HEAD defaults
# to the working tree (uncommitted edits included; built in its own build
# directory, not build/), or a commit, built in a second worktree.  Both
# sides compile the same model files (HEAD's examples/ and a small config
# written here) in the same temporary directory, so paths cannot differ.
# Builds use cmake -DCMAKE_BUILD_TYPE=Release, target mambac only, -j2;
# generation runs $CODEGEN_IDENTITY_JOBS (default 2) commands at a time.
#
# Prints one line per pair of files (same / DIFF, with the first differing
# lines of text files) and a summary 'N same, M different'.  A command that
# fails on either side counts as different.  Exit status: 0 when every pair
# is identical, 1 otherwise, 2 on a build failure or bad usage.  The
# worktrees and the temporary directory are removed at the end (also on
# failure, SIGINT, SIGTERM, SIGHUP); --keep keeps the directory (the
# outputs are under out/base and out/head) and prints its path.

usage() {
	echo "usage: sh tests/codegen_identity.sh [--keep] [BASE [HEAD]]" >&2
	echo "  BASE: a commit (default HEAD~1); HEAD: a commit (default: the working tree)" >&2
	exit 2
}

keep=0
base_rev=
head_rev=
for a in "$@"; do
	case $a in
	--keep) keep=1 ;;
	-h|--help) usage ;;
	-*) echo "codegen_identity: unknown option '$a'" >&2; usage ;;
	*)
		if [ -z "$base_rev" ]; then base_rev=$a
		elif [ -z "$head_rev" ]; then head_rev=$a
		else usage
		fi ;;
	esac
done
[ -n "$base_rev" ] || base_rev=HEAD~1

here=$(cd "$(dirname "$0")" && pwd) || exit 2
root=$(git -C "$here" rev-parse --show-toplevel) || exit 2
jobs=${CODEGEN_IDENTITY_JOBS:-2}

base_sha=$(git -C "$root" rev-parse --verify --quiet "$base_rev^{commit}") || {
	echo "codegen_identity: '$base_rev' is not a commit" >&2; exit 2; }
if [ -n "$head_rev" ]; then
	head_sha=$(git -C "$root" rev-parse --verify --quiet "$head_rev^{commit}") || {
		echo "codegen_identity: '$head_rev' is not a commit" >&2; exit 2; }
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/codegen-identity.XXXXXX") || exit 2
bgpid=
worktrees=

cleanup() {
	# the running background job (own process group: builds, generation)
	if [ -n "$bgpid" ]; then
		kill -TERM -- "-$bgpid" 2>/dev/null || kill -TERM "$bgpid" 2>/dev/null
		wait "$bgpid" 2>/dev/null
	fi
	for w in $worktrees; do
		git -C "$root" worktree remove --force "$w" 2>/dev/null
	done
	[ -n "$worktrees" ] && git -C "$root" worktree prune 2>/dev/null
	if [ "$keep" = 1 ]; then
		echo "outputs kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# in_group CMD...: run CMD in a process group of its own (setsid, so that
# a signal to this script can end it and all its children) and wait for
# it; returns its status
in_group() {
	if command -v setsid >/dev/null 2>&1; then
		setsid "$@" </dev/null &
	else
		"$@" </dev/null &
	fi
	bgpid=$!
	wait "$bgpid"
	rc=$?
	bgpid=
	return $rc
}

now() { date +%s; }
t_start=$(now)

# build SIDE SRC: configure and build mambac from SRC into $tmp/build-SIDE
build() {
	log=$tmp/build-$1.log
	echo "building $1 ($2) ..."
	if ! in_group sh -c 'cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release &&
	    cmake --build "$2" --target mambac -j2' sh "$2" "$tmp/build-$1" \
	    >"$log" 2>&1; then
		echo "codegen_identity: the build of $1 failed ($log):" >&2
		tail -n 20 "$log" >&2
		exit 2
	fi
}

# worktree SIDE SHA: check SHA out in $tmp/src-SIDE
worktree() {
	worktrees="$worktrees $tmp/src-$1"
	if ! git -C "$root" worktree add --detach "$tmp/src-$1" "$2" \
	    >"$tmp/worktree-$1.log" 2>&1; then
		echo "codegen_identity: git worktree add failed:" >&2
		cat "$tmp/worktree-$1.log" >&2
		exit 2
	fi
}

worktree base "$base_sha"
if [ -n "$head_rev" ]; then
	worktree head "$head_sha"
	head_src=$tmp/src-head
	head_desc="$(git -C "$root" log -1 --format='%h %s' "$head_sha")"
else
	head_src=$root
	head_desc="the working tree at $(git -C "$root" log -1 --format='%h' HEAD)"
fi
echo "base: $(git -C "$root" log -1 --format='%h %s' "$base_sha")"
echo "head: $head_desc"
build base "$tmp/src-base"
build head "$head_src"
t_built=$(now)

# ---- the models: the same files for both sides ----
models=$tmp/models
mkdir -p "$models" "$tmp/out/base" "$tmp/out/head" "$tmp/jobs" || exit 2
for m in spatialmamba_tiny.yaml spatialmamba_small.yaml spatialmamba_base.yaml \
    spatialmamba_tiny.graph.yaml; do
	cp "$head_src/examples/$m" "$models/$m" || exit 2
done
cat >"$models/custom16.yaml" <<'EOF'
MODEL:
  TYPE: spatial_mamba
  NAME: custom16
  SPATIALMAMBA:
    EMBED_DIM: 16
    DEPTHS: [ 1, 1, 1, 1]
    D_STATE: 1
    MLP_RATIO: 4.0
DATA:
  IMG_SIZE: 224
EOF

# ---- the cases: NAME MODEL KIND ARGS...  (KIND: compile OUTNAME | dump) ----
# Slowest first, so that the parallel jobs finish together.  Every
# precision (fp32 tf32 bf16, sm_90 and sm_80) and every target (host,
# x86-64-v3/v4, aarch64, riscv64 with and without V, a multi-CPU object)
# is covered on the small custom model at two odd shapes; tiny at 224 gets
# every precision and the host, x86-64-v3, aarch64 and riscv64; small, base
# and the graph-YAML tiny the common paths (LLVM host, CUDA fp32/bf16/tf32).
ncase=0
case_add() {
	name=$1 model=$2 kind=$3
	shift 3
	ncase=$((ncase + 1))
	for side in base head; do
		f=$tmp/jobs/$(printf '%03d' "$ncase")-$side.sh
		{
			echo "cd '$tmp/out/$side' || exit 1"
			if [ "$kind" = dump ]; then
				echo "'$tmp/build-$side/mambac' dump '$models/$model' --format kernels $* >'$name.kir' 2>'$name.err'"
			else
				echo "'$tmp/build-$side/mambac' compile '$models/$model' $* -o '$name$kind' >'$name.err' 2>&1"
			fi
			echo "echo \$? >'$name.rc'"
		} >"$f"
		echo "$f" >>"$tmp/jobs/list"
	done
}
T=spatialmamba_tiny.yaml
G=spatialmamba_tiny.graph.yaml
S=spatialmamba_small.yaml
B=spatialmamba_base.yaml
C=custom16.yaml
LL="--emit llvm-ir"
CU="--target cuda --emit cuda"
case_add small.llvm-host       $S .ll $LL
case_add base.llvm-host        $B .ll $LL
case_add tiny.llvm-host        $T .ll $LL
case_add tiny.llvm-x86-64-v3   $T .ll $LL --cpu x86-64-v3
case_add tiny.llvm-aarch64     $T .ll $LL --target aarch64-linux-gnu
case_add tiny.llvm-riscv64     $T .ll $LL --target riscv64-linux-gnu
case_add c33x47b3.obj-portable $C ""  --image-size 33x47 --batch 3 --emit obj --cpu portable
case_add base.cuda-fp32        $B ""  $CU --precision fp32
case_add base.cuda-bf16        $B ""  $CU --precision bf16
case_add base.kernels          $B dump
case_add small.cuda-fp32       $S ""  $CU --precision fp32
case_add small.cuda-bf16       $S ""  $CU --precision bf16
case_add small.kernels         $S dump
for p in fp32 tf32 bf16; do
	case_add tiny.cuda-$p      $T ""  $CU --precision $p
done
case_add tiny.cuda-bf16-sm80   $T ""  $CU --precision bf16 --sm 80
case_add tiny.kernels          $T dump
case_add graph.cuda-tf32       $G ""  $CU --precision tf32
case_add graph.kernels         $G dump
for shape in 33x47:3 32x32:1; do
	hw=${shape%:*} b=${shape#*:}
	n=c${hw}b$b
	a="--image-size $hw --batch $b"
	case_add $n.llvm-host      $C .ll $LL $a
	case_add $n.llvm-x86-64-v3 $C .ll $LL $a --cpu x86-64-v3
	case_add $n.llvm-x86-64-v4 $C .ll $LL $a --cpu x86-64-v4
	case_add $n.llvm-aarch64   $C .ll $LL $a --target aarch64-linux-gnu
	case_add $n.llvm-riscv64   $C .ll $LL $a --target riscv64-linux-gnu
	case_add $n.llvm-riscv64v  $C .ll $LL $a --target riscv64-linux-gnu --cpu generic-rv64 --features +v
	for p in fp32 tf32 bf16; do
		case_add $n.cuda-$p    $C ""  $CU $a --precision $p
		case_add $n.cuda-$p-sm80 $C "" $CU $a --precision $p --sm 80
	done
	case_add $n.kernels        $C dump $a
done

echo "generating $ncase cases x 2 sides, $jobs at a time ..."
in_group sh -c 'xargs -n 1 -P "$1" sh <"$2"' sh "$jobs" "$tmp/jobs/list"
t_gen=$(now)

# ---- compare ----
failed=
nsame=0
ndiff=0
base_out=$tmp/out/base
head_out=$tmp/out/head

# failed commands: count as different, with the first line of their stderr
for rcf in "$base_out"/*.rc "$head_out"/*.rc; do
	n=$(basename "$rcf" .rc)
	[ -f "$base_out/$n.rc" ] && rb=$(cat "$base_out/$n.rc") || rb=none
	[ -f "$head_out/$n.rc" ] && rh=$(cat "$head_out/$n.rc") || rh=none
	[ "$rb" = 0 ] && [ "$rh" = 0 ] && continue
	case " $failed " in *" $n "*) continue ;; esac
	failed="$failed $n"
	ndiff=$((ndiff + 1))
	echo "FAIL  $n: exit status base=$rb head=$rh"
	for side in base head; do
		e=$tmp/out/$side/$n.err
		[ -s "$e" ] && echo "      $side: $(grep -v 'using random weights' "$e" | head -n 1 | cut -c 1-200)"
	done
done

for f in $( (cd "$base_out" && ls; cd "$head_out" && ls) | sort -u); do
	case $f in *.rc|*.err) continue ;; esac
	if [ ! -f "$base_out/$f" ] || [ ! -f "$head_out/$f" ]; then
		[ -f "$base_out/$f" ] && only="base" || only="head"
		echo "DIFF  $f: only $only has it"
		ndiff=$((ndiff + 1))
	elif cmp -s "$base_out/$f" "$head_out/$f"; then
		echo "same  $f"
		nsame=$((nsame + 1))
	else
		ndiff=$((ndiff + 1))
		case $f in
		*.cu|*.ll|*.kir|*.h)
			echo "DIFF  $f: first differing lines (< base, > head):"
			diff "$base_out/$f" "$head_out/$f" | head -n 5 | cut -c 1-200 |
			    sed 's/^/      /' ;;
		*)
			echo "DIFF  $f: $(cmp "$base_out/$f" "$head_out/$f" 2>&1 | sed 's|.*differ: ||')" ;;
		esac
	fi
done

t_end=$(now)
echo "$nsame same, $ndiff different ($ncase cases; build $((t_built - t_start)) s, generation $((t_gen - t_built)) s, total $((t_end - t_start)) s)"
[ "$ndiff" = 0 ] && [ "$nsame" -gt 0 ] && exit 0
exit 1
