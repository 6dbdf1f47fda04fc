"""Build hook for the optional native modules (everything else is in pyproject.toml).

``evidence.domain._linetree`` hashes the Merkle leaves of artifacts in C with
libcrypto; ``evidence.domain._jcsprep`` is the walk that prepares records for
canonical JSON. Both are optional: where one cannot be built (no compiler, or
no OpenSSL headers), the install goes on and its pure-Python twin is used.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "evidence.domain._linetree",
            sources=["src/evidence/domain/_linetree.c"],
            libraries=["crypto"],
            optional=True,
        ),
        Extension(
            "evidence.domain._jcsprep",
            sources=["src/evidence/domain/_jcsprep.c"],
            optional=True,
        ),
    ]
)
