# spillover prompt hook for fish: `spillover hook fish | source` in ~/.config/fish/config.fish.
# Applies the route (route.fish in the state dir) on each fish_prompt event, but only when the
# file changed. When nothing changed it costs one builtin test (two stats): no fork, no read. The state dir is
# resolved once, when this is sourced (shell start): $SPILLOVER_STATE_DIR, else
# $XDG_STATE_HOME/spillover, else ~/.local/state/spillover.
if test -n "$SPILLOVER_STATE_DIR"
    set -g _spillover_dir $SPILLOVER_STATE_DIR
else if string match -q '/*' -- "$XDG_STATE_HOME"
    set -g _spillover_dir $XDG_STATE_HOME/spillover
else
    set -g _spillover_dir $HOME/.local/state/spillover
end
set -g _spillover_file $_spillover_dir/route.fish
# A per-shell stamp: its mtime is when this shell last applied the route. The tick re-touches
# the route file after renaming it into place, so "stamp not newer" means "changed".
set -g _spillover_stamp $_spillover_dir/hook.$fish_pid.stamp
set -g _spillover_applied # empty until the first prompt applies the route
set -g _spillover_route # SPILLOVER_ROUTE as applied: if something else changed it, re-apply

function _spillover_apply
    test -O $_spillover_file; or return 0 # only a file written by us
    true 2>/dev/null >$_spillover_stamp # stamp before reading: a change made meanwhile is seen next prompt
    source $_spillover_file
    set -g _spillover_applied 1
    set -g _spillover_route "$SPILLOVER_ROUTE"
end

# Defining the function again replaces it: the event handler stays registered once.
# The common case, nothing changed: applied already, nobody changed SPILLOVER_ROUTE (a direnv
# revert), and the stamp is newer than the route file (also when the file was removed: the last
# route stays).
# (`test …; or …` rather than if/return: measurably cheaper in fish.)
function _spillover_hook --on-event fish_prompt
    test -n "$_spillover_applied" -a "$SPILLOVER_ROUTE" = "$_spillover_route" -a $_spillover_stamp -nt $_spillover_file
    or _spillover_changed
end

function _spillover_changed
    test -f $_spillover_file; and _spillover_apply
end
