# shellcheck shell=bash
# spillover prompt hook for bash: `eval "$(spillover hook bash)"` in ~/.bashrc.
# Applies the route (route.env in the state dir) at each prompt, but only when the file changed.
# When nothing changed it costs one builtin test (two stats): no fork, no read. Before sourcing it
# checks the state dir and the file are yours and only yours (see _spillover_check). The state dir is resolved once,
# when this is evaluated (shell start): $SPILLOVER_STATE_DIR, else $XDG_STATE_HOME/spillover,
# else ~/.local/state/spillover.
if [[ -n ${SPILLOVER_STATE_DIR:-} ]]; then
  _spillover_dir=$SPILLOVER_STATE_DIR
elif [[ ${XDG_STATE_HOME:-} == /* ]]; then
  _spillover_dir=$XDG_STATE_HOME/spillover
else
  _spillover_dir=$HOME/.local/state/spillover
fi
_spillover_file=$_spillover_dir/route.env
# A per-shell stamp: its mtime is when this shell last applied the route. The tick re-touches
# route.env after renaming it into place, so "stamp not newer than route.env" means "changed".
# It lives in the state dir and is written only after that dir passed _spillover_check (yours,
# nobody else can write it), so no one can plant a symlink or a FIFO under its name.
_spillover_stamp=$_spillover_dir/hook.$$.stamp
_spillover_applied=       # empty until the first prompt applies the route (a stamp may be left over from a dead shell with our PID)
_spillover_route=         # SPILLOVER_ROUTE as applied: if something else changed it (a direnv revert), re-apply
_spillover_refused=       # the last refusal (path and problem): each is said once
_spillover_retry=0        # after a refusal, $SECONDS before which the checks are not repeated


# Trust before use, as ssh does with ~/.ssh: a file is sourced only when the state dir and the
# file are yours and nobody else can write them, and the file is a regular file (not a symlink, a
# FIFO or a device); a stamp is written only when it is absent or a regular file of yours. The
# builtin tests come first; the one fork (`stat`, for the mode bits) comes only when they pass,
# and only on the slow path (the file changed). The stamp is checked last: a bad stamp in a dir
# others can write is reported as the dir's fault. Sets _spillover_why (empty: trusted) and, when
# not trusted, _spillover_bad (the path at fault) and _spillover_fix.
# Usage: _spillover_check FILE [STAMP]
_spillover_check() {
  local _spillover_d=${1%/*} _spillover_m
  _spillover_why='' _spillover_bad='' _spillover_fix=''
  if [[ ! -d $_spillover_d || ! -O $_spillover_d ]]; then
    _spillover_bad=$_spillover_d _spillover_why="is not a directory of yours"
    _spillover_fix="point SPILLOVER_STATE_DIR (or XDG_STATE_HOME) at a directory only you can write, or unset it for ~/.local/state/spillover"
  elif [[ -L $1 || ! -f $1 ]]; then
    _spillover_bad=$1 _spillover_why="is not a regular file"
    _spillover_fix="remove it, then run \`spillover tick\`"
  elif [[ ! -O $1 ]]; then
    _spillover_bad=$1 _spillover_why="is not yours"
    _spillover_fix="remove it, then run \`spillover tick\`"
  elif ! _spillover_m=$(command stat -L -c %a -- "$_spillover_d" "$1" 2>/dev/null || command stat -L -f %Lp -- "$_spillover_d" "$1" 2>/dev/null) || [[ $_spillover_m != [0-7]*$'\n'[0-7]* ]]; then
    _spillover_bad=$_spillover_d _spillover_why="has modes that \`stat\` cannot read"
    _spillover_fix="check that \`stat\` (GNU or BSD) is on PATH"
  elif ((8#${_spillover_m%%$'\n'*} & 8#022)); then
    _spillover_bad=$_spillover_d _spillover_why="can be written by others"
    _spillover_fix="chmod 700 '$_spillover_d'"
  elif ((8#${_spillover_m#*$'\n'} & 8#022)); then
    _spillover_bad=$1 _spillover_why="can be written by others"
    _spillover_fix="remove it, then run \`spillover tick\`"
  elif [[ -n ${2-} && ( -L $2 || ( -e $2 && ( ! -f $2 || ! -O $2 ) ) ) ]]; then
    _spillover_bad=$2 _spillover_why="is not a regular file of yours"
    _spillover_fix="remove it"
  fi
}

# The one line that says why a check failed: the path, its owner and mode, and the fix (a fork:
# only when there is something to say). Sets _spillover_said.
_spillover_refusal() {
  local _spillover_om
  _spillover_om=$(command stat -c 'owner %U, mode %a' -- "$_spillover_bad" 2>/dev/null ||
    command stat -f 'owner %Su, mode %Lp' -- "$_spillover_bad" 2>/dev/null) || _spillover_om=missing
  _spillover_said="spillover: not sourcing $1: $_spillover_bad $_spillover_why ($_spillover_om); fix: $_spillover_fix"
}

_spillover_apply() {
  ((SECONDS >= _spillover_retry)) || return 0
  _spillover_check "$_spillover_file" "$_spillover_stamp"
  if [[ -n $_spillover_why ]]; then
    _spillover_retry=$((SECONDS + 30))
    if [[ $_spillover_refused != "$_spillover_bad $_spillover_why" ]]; then
      _spillover_refused="$_spillover_bad $_spillover_why"
      _spillover_refusal "$_spillover_file"
      printf '%s\n' "$_spillover_said" >&2
    fi
    return 0
  fi
  _spillover_refused=
  : 2>/dev/null >|"$_spillover_stamp" # stamp before reading: a change made meanwhile is seen next prompt
  # shellcheck source=/dev/null
  . "$_spillover_file"
  _spillover_applied=1
  _spillover_route=${SPILLOVER_ROUTE-}
}

# Keeps $? for the PROMPT_COMMAND entries after it (starship, powerline read it). A global, not a
# `local`: this runs at every prompt and `local` costs as much as the test itself.
_spillover_hook() {
  _spillover_status=$?
  # The common case, nothing changed: applied already, nobody changed SPILLOVER_ROUTE (a direnv
  # revert), and the stamp is newer than the route file (also when the file was removed: the last
  # route stays).
  if [[ $_spillover_applied && ${SPILLOVER_ROUTE-} == "$_spillover_route" && $_spillover_stamp -nt $_spillover_file ]]; then
    return "$_spillover_status"
  fi
  if [[ -e $_spillover_file || -L $_spillover_file ]]; then
    _spillover_apply
  fi
  return "$_spillover_status"
}

# Install into PROMPT_COMMAND once (a string or, since bash 5.1, an array), even if evaluated twice.
_spillover_install() {
  local _spillover_item
  for _spillover_item in ${PROMPT_COMMAND[@]+"${PROMPT_COMMAND[@]}"}; do
    [[ ";${_spillover_item//$'\n'/;};" == *";_spillover_hook;"* ]] && return 0
  done
  if [[ -v PROMPT_COMMAND && ${PROMPT_COMMAND@a} == *a* ]]; then
    PROMPT_COMMAND=(_spillover_hook "${PROMPT_COMMAND[@]}")
  else
    # shellcheck disable=SC2128,SC2178 # here PROMPT_COMMAND is a string (or unset), not an array
    PROMPT_COMMAND="_spillover_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
  fi
}
_spillover_install
unset -f _spillover_install
