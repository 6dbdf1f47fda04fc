"""Build hook for the one optional native module (everything else is in pyproject.toml).

``evidence.domain._linetree`` hashes the Merkle leaves of stored artifacts in C
with libcrypto. It is optional: where it cannot be built (no compiler or no
OpenSSL headers), the install goes on and the pure-Python route is used.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "evidence.domain._linetree",
            sources=["src/evidence/domain/_linetree.c"],
            libraries=["crypto"],
            optional=True,
        )
    ]
)
