# vardr-init's Python hook: certifi.where() names the CA bundle vardr-init merged.
#
# vardr-init writes this file into a directory of its own beside the bundle and puts that
# directory first on the app's PYTHONPATH, so Python runs it at start as `sitecustomize`. It:
# 1. takes its own directory off sys.path again (nothing else is importable from it);
# 2. once `certifi` is imported, makes certifi.where() return the merged bundle and
#    certifi.contents() its text, if the bundle exists then (certifi keeps its own otherwise);
# 3. runs the next sitecustomize on sys.path (yours, or your distribution's), as Python would
#    have without this file.
# An error of its own never stops Python from starting. Nothing is written into the venv.
# VARDR_PYTHON_HOOK=false turns the hook off; `python -I`, `-E` and `-S` do not run it.
# See docs/certificates.md ("The Python hook").

BUNDLE = __VARDR_BUNDLE__


def _vardr_hook():
    import os
    import stat
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    bundle = os.fsdecode(BUNDLE)

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

    class Loader:
        """certifi's own loader, then the patch."""

        def __init__(self, loader):
            self._loader = loader

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
                patch(module)
            except Exception:
                pass

    class Finder:
        """Finds certifi through the finders after this one, and hands its spec to Loader."""

        def find_spec(self, name, path=None, target=None):
            if name != "certifi":
                return None
            for finder in sys.meta_path[sys.meta_path.index(self) + 1 :]:
                find = getattr(finder, "find_spec", None)
                spec = find(name, path, target) if find is not None else None
                if spec is not None:
                    if hasattr(spec.loader, "exec_module"):
                        spec.loader = Loader(spec.loader)
                    return spec
            return None

    sys.meta_path.insert(0, Finder())
    if "certifi" in sys.modules:  # imported already, by a .pth file
        patch(sys.modules["certifi"])

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
