# spillover prompt hook for fish: `spillover hook fish | source` in ~/.config/fish/config.fish.
# Applies the route (route.fish in the state dir) on each fish_prompt event, but only when the
# file changed. When nothing changed it costs one builtin test (two stats): no fork, no read.
# Before sourcing it checks the state dir and the file are yours and only yours (_spillover_check). The state dir is
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
# It lives in the state dir and is written only after that dir passed _spillover_check (yours,
# nobody else can write it), so no one can plant a symlink or a FIFO under its name.
set -g _spillover_stamp $_spillover_dir/hook.$fish_pid.stamp
set -g _spillover_applied # empty until the first prompt applies the route
set -g _spillover_route # SPILLOVER_ROUTE as applied: if something else changed it, re-apply
set -g _spillover_refused # the last refusal (path and problem): each is said once
set -g _spillover_wait 0 # after a refusal, prompts before the checks are repeated (fish has no clock builtin)

# Trust before use, as ssh does with ~/.ssh: a file is sourced only when the state dir and the
# file are yours and nobody else can write them, and the file is a regular file (not a symlink, a
# FIFO or a device); a stamp is written only when it is absent or a regular file of yours. The
# builtin tests come first; the one fork (`stat`, for the mode bits) comes only when they pass,
# and only on the slow path (the file changed). The stamp is checked last: a bad stamp in a dir
# others can write is reported as the dir's fault. Sets _spillover_why (empty: trusted) and, when
# not trusted, _spillover_bad (the path at fault) and _spillover_fix.
function _spillover_check --argument-names file stamp
    set -l d (string replace -r '/[^/]*$' '' -- $file)
    set -g _spillover_why
    set -g _spillover_bad
    set -g _spillover_fix
    if not test -d $d; or not test -O $d
        set _spillover_bad $d
        set _spillover_why "is not a directory of yours"
        set _spillover_fix "point SPILLOVER_STATE_DIR (or XDG_STATE_HOME) at a directory only you can write, or unset it for ~/.local/state/spillover"
        return
    end
    set _spillover_fix "remove it, then run `spillover tick`"
    if test -L $file; or not test -f $file
        set _spillover_bad $file
        set _spillover_why "is not a regular file"
        return
    end
    if not test -O $file
        set _spillover_bad $file
        set _spillover_why "is not yours"
        return
    end
    # The modes in octal, one per line: group or others may write when either digit has bit 2.
    set -l m (command stat -L -c %a -- $d $file 2>/dev/null; or command stat -L -f %Lp -- $d $file 2>/dev/null)
    if test (count $m) -ne 2; or not string match -qr '^[0-7]+$' -- $m[1]; or not string match -qr '^[0-7]+$' -- $m[2]
        set _spillover_bad $d
        set _spillover_why "has modes that `stat` cannot read"
        set _spillover_fix "check that `stat` (GNU or BSD) is on PATH"
    else if string match -qr '([2367].|[2367])$' -- $m[1]
        set _spillover_bad $d
        set _spillover_why "can be written by others"
        set _spillover_fix "chmod 700 '$d'"
    else if string match -qr '([2367].|[2367])$' -- $m[2]
        set _spillover_bad $file
        set _spillover_why "can be written by others"
    else if test -n "$stamp"; and begin
            test -L $stamp; or begin
                test -e $stamp; and begin
                    not test -f $stamp; or not test -O $stamp
                end
            end
        end
        set _spillover_bad $stamp
        set _spillover_why "is not a regular file of yours"
        set _spillover_fix "remove it"
    end
end

# The one line that says why a check failed: the path, its owner and mode, and the fix (a fork:
# only when there is something to say). Sets _spillover_said.
function _spillover_refusal --argument-names file
    set -l om (command stat -c 'owner %U, mode %a' -- $_spillover_bad 2>/dev/null; or command stat -f 'owner %Su, mode %Lp' -- $_spillover_bad 2>/dev/null)
    or set om missing
    set -g _spillover_said "spillover: not sourcing $file: $_spillover_bad $_spillover_why ($om); fix: $_spillover_fix"
end

function _spillover_apply
    if test $_spillover_wait -gt 0
        set _spillover_wait (math $_spillover_wait - 1)
        return 0
    end
    _spillover_check $_spillover_file $_spillover_stamp
    if test -n "$_spillover_why"
        set -g _spillover_wait 100
        if test "$_spillover_refused" != "$_spillover_bad $_spillover_why"
            set -g _spillover_refused "$_spillover_bad $_spillover_why"
            _spillover_refusal $_spillover_file
            printf '%s\n' "$_spillover_said" >&2
        end
        return 0
    end
    set -g _spillover_refused
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
    test -e $_spillover_file; or test -L $_spillover_file; and _spillover_apply
end
