# shellcheck shell=bash
# spillover prompt hook for bash: `eval "$(spillover hook bash)"` in ~/.bashrc.
# Applies the route (route.env in the state dir) at each prompt, but only when the file changed.
# When nothing changed it costs one builtin test (two stats): no fork, no read. The state dir is resolved once,
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
_spillover_stamp=$_spillover_dir/hook.$$.stamp
_spillover_applied=       # empty until the first prompt applies the route (a stamp may be left over from a dead shell with our PID)
_spillover_route=         # SPILLOVER_ROUTE as applied: if something else changed it (a direnv revert), re-apply

_spillover_apply() {
  [[ -O $_spillover_file ]] || return 0 # only a file written by us
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
  if [[ -f $_spillover_file ]]; then
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
