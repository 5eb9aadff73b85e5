"""Every test under tests/k8s gets the ``k8s`` marker. The fixtures ``k8s_cluster``,
``argo`` and ``argo_namespace`` live in :mod:`.fixtures`, a plugin of the whole test suite
(tests in other folders, such as the engine conformance suite, use them too)."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.k8s)
