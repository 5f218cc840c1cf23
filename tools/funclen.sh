#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# funclen.sh - functions longer than LIMIT lines (issue 10: "functions fit
# on two screens").  Usage: tools/funclen.sh [-l LIMIT] FILE...
#
# A function is counted from the first line of its signature to its closing
# brace, both included; the project's style puts a definition's name and its
# opening and closing braces at the start of a line (docs: /work style).  A
# function over the limit is allowed when its comment (the text between the
# end of the previous top-level item and the function) says why it stays
# whole, with the words "Longer than two screens".  Prints one line per
# function over the limit, "FILE:LINE NAME LINES", marked "(says why)" when
# allowed; exits 1 if any is not allowed, 2 on a usage error, else 0.
set -euo pipefail

limit=80
if [ "${1:-}" = -l ]; then
	limit=${2:?funclen.sh: -l needs a number}
	shift 2
fi
[ $# -gt 0 ] || { echo "usage: funclen.sh [-l LIMIT] FILE..." >&2; exit 2; }

awk -v limit="$limit" '
FNR == 1 { depth = 0; sig = 0; note = "" }
{
	line = $0
	code = line
	gsub(/[/][*].*[*][/]/, "", code)
	gsub(/[/][/].*/, "", code)
	if (depth == 0) {
		if (line ~ /^\{/ && sig) {
			start = sig; name = signame; why = (note ~ /Longer than two screens/)
			sig = 0
		} else if (!sig && line ~ /^[A-Za-z_][A-Za-z0-9_ \t\*]*[ \t\*]\**[A-Za-z_][A-Za-z0-9_]*\(/ &&
			   code !~ /;[ \t]*$/) {
			sig = FNR
			signame = line
			sub(/\(.*/, "", signame)
			sub(/.*[ \t\*]/, "", signame)
		} else if (sig && code ~ /;[ \t]*$/) {
			sig = 0 # a declaration over several lines
		} else if (!sig) {
			note = note "\n" line
		}
	}
	opens = gsub(/\{/, "{", code); closes = gsub(/\}/, "}", code)
	depth += opens - closes
	if (depth == 0 && start && $0 ~ /^\}/) {
		n = FNR - start + 1
		if (n > limit) {
			printf "%s:%d %s %d%s\n", FILENAME, start, name, n, why ? " (says why)" : ""
			if (!why) bad = 1
		}
		start = 0; note = ""
	} else if (depth == 0 && !sig && $0 ~ /(;|\})[ \t]*$/ && !start) {
		note = ""
	}
}
END { exit bad }
' "$@"
