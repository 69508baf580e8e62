"""_torchhook.py: registers rotary's torch ops (imports rotary.ops) as soon as torch is imported, never importing
torch itself: at once when torch is already imported, else when torch's own import finishes (a one-shot import
hook), so that torch.export.load finds torch.ops.rotary.* after a plain `import rotary` in either order."""
import importlib.abc
import importlib.util
import sys
import threading
import warnings

_lock = threading.Lock()


def install():
    """Called by rotary/__init__.py. Costs nothing when torch is never imported."""
    if "torch" in sys.modules:
        _register()
        return
    with _lock:
        if not any(isinstance(f, _TorchFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _TorchFinder())


def _register():
    try:
        importlib.import_module("rotary.ops")
    except Exception as e:  # torch without what rotary.ops needs: rotary itself still works
        warnings.warn(f"rotary: the torch ops could not be registered ({type(e).__name__}: {e})", RuntimeWarning,
                      stacklevel=3)


class _TorchFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for "torch" it asks the other finders and wraps the loader's exec_module once."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torch":
            return None
        with _lock:
            if self in sys.meta_path:
                sys.meta_path.remove(self)
        spec = importlib.util.find_spec("torch")
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_then_register(module):
            try:
                exec_module(module)
            finally:
                try:
                    del loader.exec_module  # back to the class's method
                except AttributeError:
                    pass
            _register()

        loader.exec_module = exec_then_register
        return spec
