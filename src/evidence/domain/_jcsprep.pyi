from collections.abc import Callable
from typing import Any

def prepare(
    value: Any, on_float: Callable[[float], Any], on_other: Callable[[Any], Any], /
) -> Any: ...
