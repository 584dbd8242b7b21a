# vardr-init's Python hook: certifi.where() names the CA bundle vardr-init merged, and with
# VARDR_JSON_LOGS=true the app's `logging` records are JSON lines in vardr-init's event schema.
#
# vardr-init writes this file into a directory of its own beside the bundle and puts that
# directory first on the app's PYTHONPATH, so Python runs it at start as `sitecustomize`. It:
# 1. takes its own directory off sys.path again (nothing else is importable from it);
# 2. once `certifi` is imported, makes certifi.where() return the merged bundle and
#    certifi.contents() its text, if the bundle exists then (certifi keeps its own otherwise);
# 3. with JSON logs, once `logging` is imported, gives the root logger a JSON handler on stderr,
#    and once `uvicorn.config` is, turns uvicorn's default logging configuration into JSON (its
#    access log keeps stdout); an uncaught exception is one JSON object too;
# 4. runs the next sitecustomize on sys.path (yours, or your distribution's), as Python would
#    have without this file.
# Nothing is imported at start that the program would not import itself. An error of its own
# never stops Python from starting. Nothing is written into the venv.
# VARDR_PYTHON_HOOK=false turns the hook off; `python -I`, `-E` and `-S` do not run it.
# See docs/certificates.md ("The Python hook") and docs/images.md ("JSON logs").

BUNDLE = __VARDR_BUNDLE__
JSON_LOGS = __VARDR_JSON_LOGS__


def _vardr_hook():
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    # What to do to a module once its own code has run, by name.
    patches = {}
    if BUNDLE is not None:
        patches["certifi"] = _vardr_certifi(os.fsdecode(BUNDLE))
    if JSON_LOGS:
        patches.update(_vardr_json_logs())

    class Loader:
        """The module's own loader, then the patch."""

        def __init__(self, loader, patch):
            self._loader = loader
            self._patch = patch

        def __getattr__(self, name):
            return getattr(self._loader, name)

        def create_module(self, spec):
            create = getattr(self._loader, "create_module", None)
            return create(spec) if create is not None else None

        def exec_module(self, module):
            # The module names its own loader, as without the hook (importlib.resources asks it).
            module.__loader__ = module.__spec__.loader = self._loader
            self._loader.exec_module(module)
            try:
                self._patch(module)
            except Exception:
                pass

    class Finder:
        """Finds a patched module through the finders after this one, and hands its spec to
        Loader."""

        def find_spec(self, name, path=None, target=None):
            patch = patches.get(name)
            if patch is None:
                return None
            for finder in sys.meta_path[sys.meta_path.index(self) + 1 :]:
                find = getattr(finder, "find_spec", None)
                spec = find(name, path, target) if find is not None else None
                if spec is not None:
                    if hasattr(spec.loader, "exec_module"):
                        spec.loader = Loader(spec.loader, patch)
                    return spec
            return None

    if patches:
        sys.meta_path.insert(0, Finder())
    for name, patch in patches.items():
        if name in sys.modules:  # imported already, by a .pth file
            try:
                patch(sys.modules[name])
            except Exception:
                pass

    # PYTHONDONTWRITEBYTECODE (the images set it) is about the app's files; this directory is
    # vardr-init's, and this file compiled once saves every later Python start its compile. The
    # loader that found this file writes it, as it would have without the setting.
    cached = __spec__.cached
    if (
        sys.dont_write_bytecode
        and cached
        and os.path.dirname(cached) == os.path.join(here, "__pycache__")
        and not os.path.exists(cached)
    ):
        sys.dont_write_bytecode = False
        try:
            __spec__.loader.get_code(__spec__.name)
        finally:
            sys.dont_write_bytecode = True


def _vardr_certifi(bundle):
    """certifi.where() and contents() name `bundle`."""
    import os
    import stat
    import sys

    def where():
        return bundle

    def contents():
        with open(bundle, encoding="ascii") as f:
            return f.read()

    def patch(module):
        # A regular file, not a symlink: what vardr-init wrote, and only that.
        try:
            if not stat.S_ISREG(os.lstat(bundle).st_mode):
                return
        except OSError:
            return
        for m in (module, sys.modules.get(module.__name__ + ".core")):
            if m is not None:
                m.where = where
                m.contents = contents

    return patch


def _vardr_json_logs():
    """The patches that make `logging` write JSON lines, one object per record, in vardr-init's
    event schema: `type`, `timestamp` (RFC 3339 UTC, milliseconds), `level`, `logger`,
    `message` (its trailing newlines dropped); an access line of uvicorn's adds `client`, `method`, `path`, `http_version` and
    `status`; a record with an exception adds `exception` (the whole traceback), one with
    `stack_info` adds `stack`; a record's `extra=` fields follow under their own names."""
    import sys

    def json_formatter(logging):
        import json
        import time

        # What every record has: the rest came from `extra=`. uvicorn's `color_message` is its
        # message with terminal colours.
        own = set(vars(logging.LogRecord("", 0, "", 0, "", (), None)))
        own.update(("message", "asctime", "color_message", "taskName"))

        class JsonFormatter(logging.Formatter):
            """One JSON object per record (vardr-init's; uvicorn's and logging's format options
            are accepted and have no effect)."""

            def __init__(self, *args, use_colors=None, **kwargs):
                super().__init__()

            def format(self, record):
                try:
                    message = record.getMessage().rstrip("\n")
                    problem = None
                except Exception as e:  # arguments that do not fit the format
                    message, problem = str(record.msg), f"{type(e).__name__}: {e}"
                seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                event = {
                    "type": "log",
                    "timestamp": "%s.%03dZ" % (seconds, record.msecs),
                    "level": record.levelname,
                    "logger": record.name,
                    "message": message,
                }
                args = record.args
                if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
                    event["type"] = "access"
                    event["client"], event["method"], event["path"] = args[0], args[1], args[2]
                    event["http_version"], event["status"] = args[3], args[4]
                if record.exc_info and not record.exc_text:
                    record.exc_text = self.formatException(record.exc_info)
                if record.exc_text:
                    event["exception"] = record.exc_text
                if record.stack_info:
                    event["stack"] = self.formatStack(record.stack_info)
                if problem is not None:
                    event["format_error"] = problem
                extra = {k: v for k, v in vars(record).items() if k not in own and k not in event}
                try:
                    return json.dumps({**event, **extra}, default=str, allow_nan=False, separators=(",", ":"))
                except (TypeError, ValueError, RecursionError):  # NaN, a cycle: as text
                    return json.dumps({**event, **{k: repr(v) for k, v in extra.items()}}, separators=(",", ":"))

        return JsonFormatter

    def uncaught(logging, kind, value, tb, where):
        record = logging.LogRecord(
            "python", logging.CRITICAL, "", 0, "uncaught exception%s: %s: %s",
            (where, kind.__name__, value), (kind, value, tb),
        )
        sys.stderr.write(sys.modules["_vardr_logging"].JsonFormatter().format(record) + "\n")
        sys.stderr.flush()

    def excepthook(kind, value, tb):
        try:
            import logging

            uncaught(logging, kind, value, tb, "")
        except Exception:
            sys.__excepthook__(kind, value, tb)

    def patch_logging(logging):
        import types

        module = types.ModuleType("_vardr_logging")
        module.JsonFormatter = json_formatter(logging)
        module.JsonFormatter.__module__ = module.__name__
        module.JsonFormatter.__qualname__ = "JsonFormatter"
        sys.modules[module.__name__] = module

        class Stderr(logging.StreamHandler):
            """JSON on whatever sys.stderr is when a record comes (as logging.lastResort)."""

            def __init__(self):
                logging.Handler.__init__(self)
                self.setFormatter(module.JsonFormatter())

            @property
            def stream(self):
                return sys.stderr

        handler = Stderr()
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(handler)
        logging.captureWarnings(True)

        # basicConfig() would do nothing now that the root logger has a handler: its level still
        # applies, the records stay JSON. With `filename` or `handlers` (logs sent elsewhere) or
        # `force`, it does what it does without the hook.
        basic = logging.basicConfig

        def basicConfig(**kwargs):
            mine = root.handlers == [handler]
            if mine and not ({"filename", "handlers", "force"} & kwargs.keys()):
                if kwargs.get("level") is not None:
                    root.setLevel(kwargs["level"])
                return None
            if mine:
                kwargs["force"] = True
            return basic(**kwargs)

        basicConfig.__doc__ = basic.__doc__
        logging.basicConfig = basicConfig

        import threading

        def thread_hook(args):
            if args.exc_type is SystemExit:
                return
            try:
                name = args.thread.name if args.thread is not None else "?"
                uncaught(logging, args.exc_type, args.exc_value, args.exc_traceback,
                         f" in thread {name}")
            except Exception:
                threading.__excepthook__(args)

        if threading.excepthook is threading.__excepthook__:
            threading.excepthook = thread_hook

    def patch_uvicorn(config):
        # uvicorn's default configuration (a user's --log-config is another object): its two
        # formatters become JSON, its handlers and levels stay.
        for formatter in config.LOGGING_CONFIG["formatters"].values():
            formatter["()"] = "_vardr_logging.JsonFormatter"

    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = excepthook
    return {"logging": patch_logging, "uvicorn.config": patch_uvicorn}


try:
    _vardr_hook()
except Exception:
    pass
del _vardr_hook


def _next_sitecustomize():
    # This module is being imported as `sitecustomize`: out of sys.modules, the same import finds
    # the next one on sys.path (this directory is off it now), which then takes this one's place
    # there. Its errors reach `site`, which reports them as without this file. With none, this
    # module stays (the import system expects to find it).
    import sys

    this = sys.modules.pop("sitecustomize", None)
    try:
        import sitecustomize  # noqa: F401
    except ImportError as e:
        if getattr(e, "name", "sitecustomize") != "sitecustomize":  # Python 2: no name
            raise
        if this is not None:
            sys.modules["sitecustomize"] = this


_next_sitecustomize()
del _next_sitecustomize
