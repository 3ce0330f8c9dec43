# spillover prompt hook for zsh: `eval "$(spillover hook zsh)"` in ~/.zshrc.
# Applies the route (route.env in the state dir) in precmd, but only when the file changed.
# When nothing changed it costs one builtin test (two stats): no fork, no read. The state dir is resolved once,
# when this is evaluated (shell start): $SPILLOVER_STATE_DIR, else $XDG_STATE_HOME/spillover,
# else ~/.local/state/spillover.
if [[ -n ${SPILLOVER_STATE_DIR:-} ]]; then
  typeset -g _spillover_dir=$SPILLOVER_STATE_DIR
elif [[ ${XDG_STATE_HOME:-} == /* ]]; then
  typeset -g _spillover_dir=$XDG_STATE_HOME/spillover
else
  typeset -g _spillover_dir=$HOME/.local/state/spillover
fi
typeset -g _spillover_file=$_spillover_dir/route.env
# A per-shell stamp: its mtime is when this shell last applied the route. The tick re-touches
# route.env after renaming it into place, so "stamp not newer than route.env" means "changed".
typeset -g _spillover_stamp=$_spillover_dir/hook.$$.stamp
typeset -g _spillover_applied=   # empty until the first prompt applies the route
typeset -g _spillover_route=     # SPILLOVER_ROUTE as applied: if something else changed it, re-apply

_spillover_apply() {
  [[ -O $_spillover_file ]] || return 0 # only a file written by us
  : 2>/dev/null >|$_spillover_stamp # stamp before reading: a change made meanwhile is seen next prompt
  . $_spillover_file
  _spillover_applied=1
  _spillover_route=${SPILLOVER_ROUTE-}
}

# zsh keeps $? across precmd functions by itself.
_spillover_hook() {
  # The common case, nothing changed: applied already, nobody changed SPILLOVER_ROUTE (a direnv
  # revert), and the stamp is newer than the route file (also when the file was removed: the last
  # route stays).
  [[ -n $_spillover_applied && ${SPILLOVER_ROUTE-} == "$_spillover_route" && $_spillover_stamp -nt $_spillover_file ]] && return
  [[ -f $_spillover_file ]] && _spillover_apply
  return 0
}

typeset -ag precmd_functions
if (( ! ${precmd_functions[(Ie)_spillover_hook]} )); then
  precmd_functions=(_spillover_hook $precmd_functions)
fi
