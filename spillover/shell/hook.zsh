# spillover prompt hook for zsh: `eval "$(spillover hook zsh)"` in ~/.zshrc.
# Applies the route (route.env in the state dir) in precmd, but only when the file changed.
# When nothing changed it costs one builtin test (two stats): no fork, no read. Before sourcing it
# checks the state dir and the file are yours and only yours (see _spillover_check). The state dir is resolved once,
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
# It lives in the state dir and is written only after that dir passed _spillover_check (yours,
# nobody else can write it), so no one can plant a symlink or a FIFO under its name.
typeset -g _spillover_stamp=$_spillover_dir/hook.$$.stamp
typeset -g _spillover_applied=   # empty until the first prompt applies the route
typeset -g _spillover_route=     # SPILLOVER_ROUTE as applied: if something else changed it, re-apply
typeset -g _spillover_refused=   # the last refusal (path and problem): each is said once
typeset -gi _spillover_retry=0   # after a refusal, $SECONDS before which the checks are not repeated
# zstat reads owner and mode bits without a fork (`stat` is the fallback when the module is missing).
zmodload -F zsh/stat b:zstat 2>/dev/null


# Trust before use, as ssh does with ~/.ssh: a file is sourced only when the state dir and the
# file are yours and nobody else can write them, and the file is a regular file (not a symlink, a
# FIFO or a device); a stamp is written only when it is absent or a regular file of yours. All
# builtins (zstat), and only on the slow path (the file changed). The stamp is checked last: a
# bad stamp in a dir others can write is reported as the dir's fault. Sets _spillover_why (empty:
# trusted) and, when not trusted, _spillover_bad (the path at fault) and _spillover_fix.
# Usage: _spillover_check FILE [STAMP]
_spillover_check() {
  local d=${1%/*} dm fm
  local -a m
  typeset -g _spillover_why= _spillover_bad= _spillover_fix=
  if [[ ! -d $d || ! -O $d ]]; then
    _spillover_bad=$d _spillover_why="is not a directory of yours"
    _spillover_fix="point SPILLOVER_STATE_DIR (or XDG_STATE_HOME) at a directory only you can write, or unset it for ~/.local/state/spillover"
    return
  elif [[ -L $1 || ! -f $1 ]]; then
    _spillover_bad=$1 _spillover_why="is not a regular file" _spillover_fix="remove it, then run \`spillover tick\`"
    return
  elif [[ ! -O $1 ]]; then
    _spillover_bad=$1 _spillover_why="is not yours" _spillover_fix="remove it, then run \`spillover tick\`"
    return
  fi
  if (( ${+builtins[zstat]} )); then
    zstat -A m +mode -- $d $1 2>/dev/null && dm=$m[1] fm=$m[2]
  else
    m=(${(f)"$(command stat -L -c %a -- $d $1 2>/dev/null || command stat -L -f %Lp -- $d $1 2>/dev/null)"})
    [[ $m[1] == <-> && $m[2] == <-> ]] && dm=$(( 8#$m[1] )) fm=$(( 8#$m[2] ))
  fi
  if [[ -z $dm || -z $fm ]]; then
    _spillover_bad=$d _spillover_why="has modes that cannot be read" _spillover_fix="check that zsh/stat or \`stat\` is available"
  elif (( dm & 8#022 )); then
    _spillover_bad=$d _spillover_why="can be written by others" _spillover_fix="chmod 700 '$d'"
  elif (( fm & 8#022 )); then
    _spillover_bad=$1 _spillover_why="can be written by others" _spillover_fix="remove it, then run \`spillover tick\`"
  elif [[ -n ${2-} && ( -L $2 || ( -e $2 && ( ! -f $2 || ! -O $2 ) ) ) ]]; then
    _spillover_bad=$2 _spillover_why="is not a regular file of yours" _spillover_fix="remove it"
  fi
}

# The one line that says why a check failed: the path, its owner and mode, and the fix. Sets
# _spillover_said.
_spillover_refusal() {
  local om
  local -a u
  local -A st
  if (( ${+builtins[zstat]} )) && zstat -H st -- $_spillover_bad 2>/dev/null && zstat -s -A u +uid -- $_spillover_bad 2>/dev/null; then
    om="owner $u[1], mode $(( [##8] st[mode] & 8#7777 ))"
  else
    om=$(command stat -c 'owner %U, mode %a' -- $_spillover_bad 2>/dev/null || command stat -f 'owner %Su, mode %Lp' -- $_spillover_bad 2>/dev/null) || om=missing
  fi
  typeset -g _spillover_said="spillover: not sourcing $1: $_spillover_bad $_spillover_why ($om); fix: $_spillover_fix"
}

_spillover_apply() {
  (( SECONDS >= _spillover_retry )) || return 0
  _spillover_check $_spillover_file $_spillover_stamp
  if [[ -n $_spillover_why ]]; then
    _spillover_retry=$(( SECONDS + 30 ))
    if [[ $_spillover_refused != "$_spillover_bad $_spillover_why" ]]; then
      _spillover_refused="$_spillover_bad $_spillover_why"
      _spillover_refusal $_spillover_file
      print -ru2 -- $_spillover_said
    fi
    return 0
  fi
  _spillover_refused=
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
  [[ -e $_spillover_file || -L $_spillover_file ]] && _spillover_apply
  return 0
}

typeset -ag precmd_functions
if (( ! ${precmd_functions[(Ie)_spillover_hook]} )); then
  precmd_functions=(_spillover_hook $precmd_functions)
fi
