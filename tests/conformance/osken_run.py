#!/usr/bin/env python3
"""Runs os-ken applications, as `osken-manager` did before os-ken 4 dropped it.

    python osken_run.py [os-ken options] APP [APP...]

Every os-ken option works (--ofp-tcp-listen-port, --ofp-listen-host, --verbose,
--test-switch-target...): the os-ken command line is parsed as osken-manager
parsed it, then the named apps (module names or .py files) are loaded and run.

OSKEN_TESTER_WAIT_TIMER=<seconds> sets the switch test tool's per-step timeout
(os_ken.tests.switch.tester.WAIT_TIMER, 3 s), too short on a loaded 2-core box.
"""
import logging
import os
import sys

from os_ken.lib import hub

hub.patch(thread=False)

from os_ken import cfg  # noqa: E402
from os_ken import log  # noqa: E402

log.early_init_log(logging.DEBUG)

from os_ken import flags  # noqa: E402,F401  (registers the --test-switch-* options)
from os_ken.base.app_manager import AppManager  # noqa: E402
from os_ken.controller import controller  # noqa: E402,F401  (registers the --ofp-* options)

CONF = cfg.CONF
CONF.register_cli_opts([cfg.MultiStrOpt("app", positional=True, default=[], help="application module or file")])


def main():
    CONF(args=sys.argv[1:], prog="osken_run", project="os_ken", version="osken_run")
    log.init_log()
    hub.patch(thread=True)
    apps = CONF.app or ["os_ken.controller.ofp_handler"]
    wait = os.environ.get("OSKEN_TESTER_WAIT_TIMER")
    if wait and any(a.endswith(("tests.switch.tester", "tests/switch/tester.py")) for a in apps):
        from os_ken.tests.switch import tester

        tester.WAIT_TIMER = float(wait)
        logging.getLogger("osken_run").info("tester WAIT_TIMER=%s", wait)
    manager = AppManager.get_instance()
    manager.load_apps(apps)
    services = manager.instantiate_apps(**manager.create_contexts())
    try:
        hub.joinall(services)
    except KeyboardInterrupt:
        pass
    finally:
        manager.close()


if __name__ == "__main__":
    main()
