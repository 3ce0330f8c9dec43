"""The command line. `main()` owns argument handling, error handling and exit codes; each command
is one small function that wires the modules together.

`check` and `statusline` run on hot paths (scripts, every status-line render), so `main()` hands
them off before argparse or anything heavy is imported.
"""

import sys

from spillover import __version__, fastcheck
from spillover.exitcodes import ExitCode


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["check"]:
        try:
            return fastcheck.main(argv[1:])
        except Exception as exc:  # noqa: BLE001 — main() owns every error; one line, exit 1
            return _unexpected(exc, verbose=False)
    if argv[:1] == ["credential"]:
        from spillover import credential

        try:
            return credential.main(argv[1:])
        except Exception as exc:  # noqa: BLE001 — fail closed: nothing on stdout
            print(f"spillover credential: refused: unexpected {exc.__class__.__name__}", file=sys.stderr)
            return ExitCode.ERROR
    if argv[:2] == ["hook", "prompt"]:
        from spillover import guard_hook

        _pin_paths(argv[2:])

        try:
            return guard_hook.main(argv[2:])
        except Exception:  # noqa: BLE001 — a broken guard must not stop every prompt
            return ExitCode.OK
    if argv[:2] in (["hook", "stop-failure"], ["hook", "settle"]):
        from spillover import live

        try:
            _pin_paths(argv[2:])
            if argv[1] == "settle":
                from spillover import paths

                return live.settle(paths.state_dir())
            return live.hook_stop_failure(argv[2:])
        except Exception:  # noqa: BLE001 — never block or slow the client
            return ExitCode.OK
    if argv[:1] == ["statusline"]:
        from spillover.sources import statusline

        try:
            return statusline.main(argv[1:])
        except Exception:  # noqa: BLE001 — never fail Claude Code's status line
            print("spillover")
            return ExitCode.OK
    return _main(argv)


def _pin_paths(args):
    """`--config PATH --state-dir PATH` of a command Claude Code runs with the session's
    environment (hooks): spillover's own files are pinned in the command, not taken from it."""
    import os

    args = list(args)
    while args:
        name = args.pop(0)
        if name in ("--config", "--state-dir") and args:
            os.environ["SPILLOVER_CONFIG" if name == "--config" else "SPILLOVER_STATE_DIR"] = args.pop(0)


def _unexpected(exc, verbose):
    from spillover.redact import printable, redact

    if verbose:
        import traceback

        traceback.print_exc()
    from spillover.redact import KNOWN

    print(f"spillover: error: unexpected {exc.__class__.__name__}: {redact(printable(exc), KNOWN)[:300]}"
          + ("" if verbose else " (run with -v for the traceback)"), file=sys.stderr)
    return ExitCode.ERROR


def _main(argv):
    import argparse
    import logging

    from spillover.errors import SpilloverError

    parser = build_parser(argparse)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s spillover: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return ExitCode.USAGE
    try:
        return args.func(args) or ExitCode.OK
    except SpilloverError as exc:
        from spillover import redact

        return _error(args, redact.redact(redact.printable(exc), redact.KNOWN), exc.exit_code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return ExitCode.OK
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(args, f"{where}{exc.strerror or exc}", ExitCode.ERROR)
    except Exception as exc:  # noqa: BLE001 — main() owns every error: one line, not a traceback
        if getattr(args, "json", False):
            from spillover.redact import printable, redact

            return _error(args, f"unexpected {exc.__class__.__name__}: {redact(printable(exc))[:300]}", ExitCode.ERROR)
        return _unexpected(exc, args.verbose)


def _error(args, message, code):
    """One line on stderr; for a command run with --json, `{"error": …, "exit": N}` on stdout instead."""
    if getattr(args, "json", False):
        import json

        print(json.dumps({"error": message, "exit": int(code)}))
    else:
        print(f"spillover: error: {message}", file=sys.stderr)
    return code


# --- parser -----------------------------------------------------------------------------------


def build_parser(argparse):
    parser = argparse.ArgumentParser(
        prog="spillover",
        description="Keep Claude Code working past the Pro/Max usage wall: spill to OpenRouter, an API key or a gateway before the 429, and back at the reset.",
        epilog="check exit status: 0 plan, 3 spilled, 4 blocked, 5 stale/unknown, 1 error, 2 usage",
    )
    parser.add_argument("--version", action="version", version=f"spillover {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(metavar="COMMAND")

    def command(name, func, help):
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = command("tick", cmd_tick, "decide the route once and publish it (the cron job; silent on success)")
    p.add_argument("--dry-run", action="store_true", help="print the decision, write nothing")
    p.add_argument("--poll", action="store_true", help="read the usage endpoint now (still respects a 429 backoff)")

    p = command("check", None, "exit status says the route: 0 plan, 3 spilled, 4 blocked, 5 stale")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--json", action="store_true")

    p = command("credential", None, "print a spill target's key for Claude Code's apiKeyHelper (fails closed off its route)")
    p.add_argument("--target", required=True, choices=("openrouter", "anthropic", "gateway"))

    p = command("status", cmd_status, "buckets, sources, route and why, budget, staleness")
    p.add_argument("--json", action="store_true", help="machine-readable")

    p = command("env", cmd_env, "print the current route's environment")
    p.add_argument("--shell", choices=("sh", "bash", "zsh", "fish"), default="sh")

    p = command("config", cmd_config, "print the effective configuration (secrets masked) and where each value came from")
    p.add_argument("--json", action="store_true")

    p = command("hook", cmd_hook, "print the prompt hook for a shell (eval it in your rc file)")
    p.add_argument("shell", choices=("bash", "zsh", "fish", "prompt", "stop-failure"),
                   help="prompt: Claude Code's UserPromptSubmit guard; stop-failure: its StopFailure hook (both read the hook JSON)")

    for name, verb in (("install", "install"), ("uninstall", "remove")):
        p = command(name, cmd_install if name == "install" else cmd_uninstall, f"{verb} the schedule (systemd timer, launchd agent or cron line), direnv lib, shell hook or Claude Code statusline")
        p.add_argument("what", nargs="?", default="all", choices=("schedule", "cron", "direnv", "shell", "statusline", "live", "all"))
        p.add_argument("--dry-run", action="store_true", help="show what would change")
        p.add_argument("--shell", choices=("bash", "zsh", "fish"), help="rc file to use (default: from $SHELL)")
        if name == "uninstall":
            p.add_argument("--purge", action="store_true", help="with `all`: also remove the config file and the state dir")

    p = command("exclude", cmd_exclude, "keep a project's Claude Code sessions on the plan even while spilled")
    p.add_argument("dir", nargs="?", help="the project directory")
    p.add_argument("--remove", action="store_true", help="follow the route again")
    p.add_argument("--list", action="store_true", help="the excluded projects")

    command("doctor", cmd_doctor, "check every piece and say exactly how to fix what is broken")

    command("statusline", None, "Claude Code statusLine command: records rate_limits, prints one line")

    p = command("simulate", cmd_simulate, "replay a trace of quota samples through the decision")
    p.add_argument("trace", nargs="?", help="JSONL trace (the statusline's sample shape)")
    p.add_argument("--from-history", action="store_true", help="replay what spillover recorded")
    p.add_argument("--threshold", type=float)
    p.add_argument("--resume", type=float)
    p.add_argument("--lead", type=float, metavar="MIN", help="forecast lead time in minutes")
    p.add_argument("--cost-per-hour", type=float, default=10.0, metavar="USD", help="spill cost estimate (default 10)")
    p.add_argument("--step", type=float, default=60.0, metavar="SEC", help="decision interval (default 60, the cron tick)")
    p.add_argument("--chart", action="store_true", help="draw the route across each five-hour window")
    p.add_argument("--compare", type=float, metavar="PERCENT", help="side by side with this threshold (implies --chart)")
    p.add_argument("--json", action="store_true")

    p = command("pin", cmd_pin, "force a route for a while (the manual switch)")
    from spillover import targets

    p.add_argument("route", choices=("plan",) + targets.names())
    group = p.add_mutually_exclusive_group()
    group.add_argument("--for", dest="duration", metavar="DURATION", help="e.g. 30m, 2h, 1d (default 5h)")
    group.add_argument("--until-reset", action="store_true", help="until the hot bucket resets")
    p.add_argument("--force", action="store_true", help="pin even when the target's guard fails")

    command("unpin", cmd_unpin, "remove the pin")

    p = command("budget", cmd_budget, "OpenRouter key and account balance, spend today / this week / this month")
    p.add_argument("--alert-below", type=float, metavar="USD", help="exit 1 when the budget is under USD")
    p.add_argument("--json", action="store_true")

    p = command("models", cmd_models, "Anthropic models on OpenRouter with prices and context")
    p.add_argument("--check", action="store_true", help="verify every configured model slug exists")
    p.add_argument("--json", action="store_true")

    p = command("setup", cmd_setup, "create a capped OpenRouter key for spills (needs the management key)")
    p.add_argument("what", choices=("openrouter-key",))
    p.add_argument("--limit", type=float, required=True, metavar="USD")
    p.add_argument("--reset", choices=("daily", "weekly", "monthly"))
    p.add_argument("--name", default="spillover")
    p.add_argument("--replace", action="store_true", help="replace an OPENROUTER_API_KEY already in the config file")

    p = command("history", cmd_history, "flips with reasons, time on each route, spend during spills")
    p.add_argument("--since", default="7d", metavar="DURATION")
    p.add_argument("--chart", action="store_true", help="one timeline line per five-hour window")
    p.add_argument("--json", action="store_true")

    p = command("report", cmd_report, "write one self-contained HTML page of the windows, spills and buckets")
    p.add_argument("--since", default="30d", metavar="DURATION")
    p.add_argument("-o", "--output", default="spillover-report.html", metavar="FILE", help="'-' for stdout")
    return parser


# --- commands ---------------------------------------------------------------------------------


def _config():
    from spillover import config

    cfg = config.load()
    from spillover.redact import install_log_filter

    install_log_filter(cfg)
    for warning in cfg.warnings:
        print(f"spillover: warning: {warning}", file=sys.stderr)
    return cfg


def cmd_tick(args):
    import json

    from spillover import tick
    from spillover.errors import ConfigError

    from spillover import config, logfile

    logfile.rotate()
    try:
        cfg = config.load()
    except ConfigError as exc:
        # Said once per change under a scheduler (tick.log), every time at a terminal; exit 1 either way.
        if tick.record_config_error(str(exc)) or sys.stderr.isatty():
            raise
        return ExitCode.ERROR
    from spillover.redact import install_log_filter

    install_log_filter(cfg)
    # The scheduler appends stderr to tick.log every minute: say each warning once, when it appears.
    seen = () if sys.stderr.isatty() else logfile.previous_problems()
    for warning in cfg.warnings:
        if warning not in seen:
            print(f"spillover: warning: {warning}", file=sys.stderr)
    tick.arm_deadline(tick.deadline_seconds(cfg))
    try:
        decision, state, changed = tick.run(cfg, dry_run=args.dry_run, force_poll=args.poll)
    except tick.Busy:
        import logging

        logging.getLogger("spillover").debug("another tick holds the lock; it does the work (and runs once more: the pending mark)")
        return ExitCode.OK
    finally:
        tick.disarm_deadline()
    oauth = (state.get("sources") or {}).get("oauth") or {}
    backoff = oauth.get("backoff_until")
    called = oauth.get("last_attempt_at") == state.get("decided_at")  # this tick asked (and failed)
    if args.poll and not called and isinstance(backoff, (int, float)) and backoff > decision_time(state):
        from spillover.fmt import clock

        print(f"spillover: the usage endpoint was not called: backing off after {oauth.get('error') or 'a failure'}; "
              f"the next call is allowed at {clock(backoff)}", file=sys.stderr)
    if args.dry_run:
        print(json.dumps({"route": decision.route, "status": decision.status, "reason": decision.reason,
                          "hot_bucket": decision.hot_bucket, "details": decision.details}, indent=1, sort_keys=True, default=str))
    return ExitCode.OK


def decision_time(state):
    import time

    at = state.get("decided_at")
    return at if isinstance(at, (int, float)) else time.time()


def cmd_status(args):
    from spillover import config, status
    from spillover.errors import ConfigError

    try:
        cfg = _config()
    except ConfigError as exc:
        # Still show what spillover last knew: the route in place is what matters most.
        status.show(config.load(environ={}, path="/nonexistent"), as_json=args.json, config_error=str(exc))
        return ExitCode.ERROR
    return status.show(cfg, as_json=args.json)


def cmd_env(args):
    import os

    from spillover import paths, targets
    from spillover.publishers import env_files

    name = paths.ROUTE_FISH if args.shell == "fish" else paths.ROUTE_ENV
    path = paths.state_path(name)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            sys.stdout.write(handle.read())
        return ExitCode.OK
    cfg = _config()
    pairs = targets.route_env("plan", cfg, reason="no tick has run yet")
    sys.stdout.write(env_files.render(args.shell, pairs, "plan", "no tick has run yet"))
    return ExitCode.OK


def cmd_config(args):
    import json

    from spillover import config
    from spillover.redact import mask

    cfg = _config()
    rows = []
    for key in config.KEYS:
        value = getattr(cfg, key.attr)
        shown = mask(value) if key.secret and value else value
        if isinstance(shown, tuple):
            shown = ",".join(shown)
        rows.append({"key": key.name, "value": "" if shown is None else shown, "from": cfg.origin[key.name], "help": key.help})
    if args.json:
        print(json.dumps({"config_file": cfg.path, "keys": rows}, indent=1))
        return ExitCode.OK
    print(f"config file: {cfg.path}")
    width = max(len(r["key"]) for r in rows)
    for r in rows:
        value = r["value"] if r["value"] != "" else "-"
        print(f"  {r['key']:<{width}}  {str(value):<32}  ({r['from']})")
    return ExitCode.OK


def cmd_hook(args):
    from spillover import shellhooks

    sys.stdout.write(shellhooks.snippet(args.shell))
    return ExitCode.OK


def cmd_install(args):
    from spillover import install

    return install.install(args.what, dry_run=args.dry_run, shell=args.shell)


def cmd_uninstall(args):
    from spillover import install

    return install.uninstall(args.what, dry_run=args.dry_run, shell=args.shell, purge=args.purge)


def cmd_exclude(args):
    from spillover import live

    return live.cmd_exclude(args)


def cmd_doctor(args):
    from spillover import doctor

    return doctor.run()


def cmd_simulate(args):
    from spillover import simulate

    return simulate.run(args.trace, from_history=args.from_history, threshold=args.threshold, resume=args.resume, lead=args.lead,
                        cost_per_hour=args.cost_per_hour, step=args.step, as_json=args.json, chart=args.chart, compare=args.compare)


def cmd_pin(args):
    from spillover import pins

    return pins.pin(_config(), args.route, for_=args.duration, until_reset=args.until_reset, force=args.force)


def cmd_unpin(args):
    from spillover import pins

    return pins.unpin()


def cmd_budget(args):
    from spillover import budget

    return budget.run(_config(), alert_below=args.alert_below, as_json=args.json)


def cmd_models(args):
    from spillover import budget

    return budget.models(_config(), check=args.check, as_json=args.json)


def cmd_setup(args):
    from spillover import budget

    return budget.setup_key(_config(), args.limit, reset=args.reset, name=args.name, replace=args.replace)


def cmd_history(args):
    from spillover import history

    return history.run(args.since, as_json=args.json, chart=args.chart)


def cmd_report(args):
    from spillover import report

    return report.run(_config(), args)
