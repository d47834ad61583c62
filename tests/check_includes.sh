#!/bin/sh
# tests/check_includes.sh -- the layers of the source tree, checked on its
# #include directives (relative, "../backends/x.h", or from the root,
# "backends/x.h"):
#   runtime/  includes nothing of ir/, passes/, backends/, frontend/
#   ir/       nothing of passes/, backends/, frontend/
#   passes/   nothing of backends/, frontend/
#   backends/ nothing of frontend/
#
#   sh tests/check_includes.sh SRCDIR      exit 1 and each offending line
#   sh tests/check_includes.sh --self-test the check on made-up trees
# Exit status 2: bad usage.
rules="runtime:ir|passes|backends|frontend ir:passes|backends|frontend passes:backends|frontend backends:frontend"

check() {
	bad=0
	for r in $rules; do
		dir=${r%%:*} deny=${r#*:}
		[ -d "$1/$dir" ] || continue
		hits=$(cd "$1" && find "$dir" -type f \( -name '*.c' -o -name '*.h' -o -name '*.def' -o -name '*.cuh' \) |
		    sort | xargs -r grep -nHE "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"(\.\./)*($deny)/" 2>/dev/null)
		if [ -n "$hits" ]; then
			echo "$hits" | sed "s#^#check_includes: $dir/ may not include ($deny)/: #"
			bad=1
		fi
	done
	return $bad
}

self_test() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-includes.XXXXXX") || exit 2
	mkdir -p "$tmp/passes" "$tmp/backends/ref" "$tmp/ir"
	printf '#include "../ir/graph.h"\n#include "pass.h"\n' >"$tmp/passes/ok.c"
	printf '#include "../../passes/pass.h"\n' >"$tmp/backends/ref/ok.c"
	ok=1
	check "$tmp" >/dev/null || { echo "check_includes: self-test: a clean tree refused"; ok=0; }
	printf '/* x */\n  #  include "../backends/backend.h"\n' >"$tmp/passes/bad.c"
	printf '#include "frontend/weights.h"\n' >"$tmp/ir/bad.h"
	out=$(check "$tmp")
	[ $? = 1 ] && echo "$out" | grep -q 'passes/bad.c:2:' && echo "$out" | grep -q 'ir/bad.h:1:' ||
	    { echo "check_includes: self-test: the bad includes were not found:"; echo "$out"; ok=0; }
	rm -rf "$tmp"
	[ $ok = 1 ] && echo "check_includes: self-test passed" && return 0
	return 1
}

case ${1:-} in
--self-test) self_test; exit $? ;;
""|-*) echo "usage: sh tests/check_includes.sh SRCDIR | --self-test" >&2; exit 2 ;;
esac
[ -d "$1" ] || { echo "check_includes: no folder $1" >&2; exit 2; }
check "$1" && echo "check_includes: $1: every layer includes only the layers below it"
