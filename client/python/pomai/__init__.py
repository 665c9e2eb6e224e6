# SPDX-License-Identifier: MIT
"""pomai — the Python client of the Pomai key-value and vector store.

A thin layer over libpomai (client/pomai.h) through cffi, with NumPy arrays
for vectors and KNN results. docs/python.md shows it at work.

    import numpy as np, pomai
    with pomai.Client("127.0.0.1", 7700) as db:
        db.set("greeting", "hello")
        db.vadd_many([f"img:{i}" for i in range(len(x))], x)
        keys, dists = db.knn(x[0], k=10)
"""
from . import errors as _errors
from .client import Client, Pending, Pipeline, Vector, parse_info
from .errors import *  # noqa: F401,F403 (the exception classes)
from .errors import PomaiError, ServerError, ClientError, error

__all__ = ["Client", "Pending", "Pipeline", "Vector", "parse_info"] + _errors.__all__

__version__ = "0.1.0"
