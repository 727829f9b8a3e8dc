"""The toolkit's public surface: each package's ``__all__`` says exactly what it offers.

As httpx guards its exported members: every public name a package's face
defines or imports is in ``__all__``, and every name in ``__all__`` exists. A
notebook (``from careops.lab import Lab``) can then trust that what ``__all__``
lists is there on purpose, and a name added in passing is noticed.
"""
from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import careops

PACKAGES = ["careops"] + sorted(
    f"careops.{m.name}" for m in pkgutil.iter_modules(careops.__path__) if m.ispkg and m.name != "apps"
)


def public_members(module: types.ModuleType) -> set[str]:
    """Public names the package makes itself: functions, classes and constants of its own modules.

    A helper it imports from elsewhere (typing, the stdlib, ``careops.errors``) is not its offer.
    """
    def careops_made(value: object) -> bool:
        home = getattr(value, "__module__", None)
        if home is None or not isinstance(home, str):
            return True  # a constant
        return home == module.__name__ or home.startswith(module.__name__ + ".")

    return {name for name, value in vars(module).items()
            if not name.startswith("_") and not isinstance(value, types.ModuleType)
            and name != "annotations" and careops_made(value)}


@pytest.mark.parametrize("name", PACKAGES)
def test_all_says_exactly_what_the_package_offers(name: str) -> None:
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    exported = set(module.__all__) - {"__version__"}
    missing = sorted(n for n in exported if not hasattr(module, n))
    assert missing == [], f"{name}.__all__ names what it does not define"
    assert len(module.__all__) == len(set(module.__all__)), f"{name}.__all__ lists a name twice"
    assert public_members(module) - exported == set(), f"{name} offers names __all__ does not list"
